/* SPDX-License-Identifier: MIT */
/*
 * Log levels, shared by the host's log (src/core/log.h) and the plugin ABI's
 * lg_host_api_t.log. Values are ABI: never renumbered.
 */
#ifndef LLMGATE_LOG_H
#define LLMGATE_LOG_H

enum { LG_LOG_ERR = 0, LG_LOG_WARN = 1, LG_LOG_INFO = 2, LG_LOG_DEBUG = 3 };

#endif

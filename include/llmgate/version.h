/* SPDX-License-Identifier: MIT */
/*
 * llmgate version numbers. The plugin ABI version lives in plugin.h; this is
 * the product version reported by `llmgate --version` and in /health.
 */
#ifndef LLMGATE_VERSION_H
#define LLMGATE_VERSION_H

#define LG_VERSION_MAJOR 0
#define LG_VERSION_MINOR 1
#define LG_VERSION_PATCH 0
#define LG_VERSION_STRING "0.1.0"

#endif

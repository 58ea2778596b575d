/* SPDX-License-Identifier: MIT */
/*
 * Access log: one JSON object per request and line, appended with a single
 * write() so lines from several workers never interleave. Never contains
 * keys or prompts.
 */
#ifndef LG_CORE_ACCESSLOG_H
#define LG_CORE_ACCESSLOG_H

#include <jansson.h>

/** Open the log: a path (appended), "stderr", or NULL to disable. Returns 0 or -1 (errno set). */
int lg_accesslog_open(const char *target);
int lg_accesslog_enabled(void);
/** Write one record (reference stolen). */
void lg_accesslog_write(json_t *record);

#endif

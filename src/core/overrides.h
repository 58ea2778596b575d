/* SPDX-License-Identifier: MIT */
/*
 * Operator overrides of the config: --listen HOST:PORT (repeatable), --workers N, --log-level LEVEL on the command
 * line, LLMGATE_LISTEN (comma-separated HOST:PORT list), LLMGATE_WORKERS, LLMGATE_LOG_LEVEL in the environment. The
 * command line wins over the environment, both win over the file (or the embedded default). They become a JSON patch
 * of top-level config keys applied before validation, so every check (loopback-only modes, ranges) sees the result.
 */
#ifndef LG_CORE_OVERRIDES_H
#define LG_CORE_OVERRIDES_H

#include <stddef.h>
#include <jansson.h>

#define LG_OVERRIDES_MAX_LISTEN 16

typedef struct lg_overrides {
    const char *listen[LG_OVERRIDES_MAX_LISTEN]; /* borrowed (argv) */
    size_t num_listen;
    const char *workers;   /* borrowed; NULL = not given */
    const char *log_level; /* borrowed; NULL = not given */
} lg_overrides_t;

/**
 * Build the patch: environment first, then o (the command line) on top. Returns a new object (possibly empty), or
 * NULL with a message naming the flag or variable (e.g. "--listen 'x': expected HOST:PORT").
 */
json_t *lg_overrides_patch(const lg_overrides_t *o, char *err, size_t errlen);

/** Parse "HOST:PORT", "[v6]:PORT" or ":PORT" (all interfaces) into address + port; 0 on success. */
int lg_overrides_parse_listen(const char *s, char *addr, size_t addrlen, unsigned *port);

#endif

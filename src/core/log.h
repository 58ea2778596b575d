/* SPDX-License-Identifier: MIT */
/*
 * Process log: leveled, module-tagged lines to a swappable sink (stderr by
 * default; tests capture it). The level is checked before the arguments are
 * evaluated. Never pass secrets: keys are redacted by callers, not here.
 */
#ifndef LG_CORE_LOG_H
#define LG_CORE_LOG_H

#include <stdarg.h>
#include "llmgate/log.h" /* LG_LOG_ERR .. LG_LOG_DEBUG */

extern int lg_log_level; /* lines above this level are dropped */

/** Sink receives one complete line without trailing newline. Default writes to stderr. */
typedef void (*lg_log_sink_t)(int level, const char *module, const char *line);
void lg_log_set_sink(lg_log_sink_t sink);
/** Parse "err|warn|info|debug"; returns -1 if unknown. */
int lg_log_level_parse(const char *name);

void lg_log_write(int level, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void lg_log_vwrite(int level, const char *module, const char *fmt, va_list ap);

#define LG_LOG(level, module, ...)                                                                                                 \
    do {                                                                                                                           \
        if ((level) <= lg_log_level)                                                                                               \
            lg_log_write((level), (module), __VA_ARGS__);                                                                          \
    } while (0)

#endif

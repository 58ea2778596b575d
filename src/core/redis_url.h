/* SPDX-License-Identifier: MIT */
/*
 * The "cluster.redis" URL: redis://[[user]:password@]host[:port][/db].
 * A pure parser (no I/O, no allocation) so config validation, the CLI and
 * the fuzz target share one definition of what a valid URL is.
 */
#ifndef LG_CORE_REDIS_URL_H
#define LG_CORE_REDIS_URL_H

#include <stddef.h>

#define LG_REDIS_URL_MAX 1024

typedef struct lg_redis_url {
    char host[256];     /* name or IPv4/IPv6 literal (brackets removed) */
    int port;           /* default 6379 */
    int db;             /* 0..15 by default Redis config; we accept 0..1000000 */
    char user[128];     /* "" = none (AUTH with the password only) */
    char password[256]; /* "" = none; percent-decoded */
} lg_redis_url_t;

/**
 * Parse url[0..len) into *out. Returns 0, or -1 with a reason (a static string naming what is wrong, never containing
 * the password) in *why. Only the "redis" scheme (plain TCP) is accepted; TLS ("rediss") is refused with a reason.
 */
int lg_redis_url_parse(const char *url, size_t len, lg_redis_url_t *out, const char **why);

#endif

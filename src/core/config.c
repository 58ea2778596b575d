/* SPDX-License-Identifier: MIT */
/*
 * JSON config loader and validator: turns one JSON document (a file or the
 * embedded default) into the immutable lg_config_t snapshot. Every problem is
 * reported with its JSON path and several are collected per run, so a broken
 * file is fixed in one pass. Unknown keys are errors: a typo must never fall
 * back to a default silently.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/config.h"
#include "core/util.h"
#include "core/redis_url.h"

#define CONFIG_MAX_FILE_BYTES ((size_t)16 << 20)
#define CONFIG_MAX_WORKERS 256
#define PATH_LEN 320      /* JSON paths in messages; longer ones are cut, the message stays useful */
#define MAP_KEY_SHOWN 120 /* bytes of a map key quoted in a path */
#define PICO_PER_USD INT64_C(1000000000000)

/* Policies the policy VM ships; naming one without a "policies" entry is allowed (path NULL = shipped). */
static const char *const shipped_policies[] = {"default", "price", "latency", "throughput", "weighted", "auto", NULL};

/* Parse state: the error sink and where relative paths resolve. */
struct ctx {
    char *err;
    size_t errlen;
    size_t used;
    unsigned nerr;
    const char *base_dir;
};

static json_t *xdeep_copy(const json_t *v)
{
    json_t *copy = json_deep_copy(v);
    if (copy == NULL) {
        fputs("llmgate: out of memory while loading the config\n", stderr);
        abort();
    }
    return copy;
}

/* ---- error collection ---- */

static void append_err(struct ctx *c, const char *s)
{
    size_t room = c->errlen - 1 - c->used, n = strlen(s);
    if (n > room)
        n = room;
    memcpy(c->err + c->used, s, n);
    c->used += n;
    c->err[c->used] = '\0';
}

__attribute__((format(printf, 3, 4))) static void fail(struct ctx *c, const char *path, const char *fmt, ...)
{
    char msg[768];
    int n = 0;
    va_list ap;

    c->nerr++;
    if (c->err == NULL || c->errlen == 0)
        return;
    if (path != NULL && path[0] != '\0')
        n = snprintf(msg, sizeof(msg), "%s: ", path);
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    /* values from the file end up in messages; keep the result one printable line */
    for (char *p = msg; *p != '\0'; ++p)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (c->nerr > 1)
        append_err(c, "; ");
    append_err(c, msg);
}

/* ---- JSON paths for messages ---- */

/* Bounded append at out[o]; a path cut at PATH_LEN only shortens a message. Safe when s aliases out at the same offset. */
static size_t path_put(char *out, size_t o, const char *s, size_t max)
{
    for (; *s != '\0' && max > 0 && o < PATH_LEN - 1; --max)
        out[o++] = *s++;
    out[o] = '\0';
    return o;
}

static void path_key(char *out, const char *parent, const char *key)
{
    size_t o = path_put(out, 0, parent, SIZE_MAX);
    if (o > 0)
        o = path_put(out, o, ".", 1);
    path_put(out, o, key, MAP_KEY_SHOWN);
}

static void path_idx(char *out, const char *parent, size_t i)
{
    char idx[32];
    snprintf(idx, sizeof(idx), "[%zu]", i);
    path_put(out, path_put(out, 0, parent, SIZE_MAX), idx, SIZE_MAX);
}

/* parent["key"], with '"' and '\\' escaped so the path reads like the JSON it points to */
static void path_map(char *out, const char *parent, const char *key)
{
    size_t o = path_put(out, 0, parent, SIZE_MAX), shown = 0;
    char esc[3] = {'\\', 0, 0};

    o = path_put(out, o, "[\"", SIZE_MAX);
    for (; *key != '\0'; ++key, ++shown) {
        if (shown == MAP_KEY_SHOWN) {
            o = path_put(out, o, "...", SIZE_MAX);
            break;
        }
        esc[1] = *key;
        o = path_put(out, o, *key == '"' || *key == '\\' ? esc : esc + 1, SIZE_MAX);
    }
    path_put(out, o, "\"]", SIZE_MAX);
}

/* ---- typed accessors: each reports its own error and returns 0 / -1 ---- */

static int want_object(struct ctx *c, const json_t *v, const char *path)
{
    if (json_is_object(v))
        return 0;
    fail(c, path, "expected object");
    return -1;
}

/* Every key of obj must be in allowed (NULL-terminated). */
static void check_keys(struct ctx *c, const json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    char p[PATH_LEN];

    json_object_foreach((json_t *)obj, key, v)
    {
        const char *const *a = allowed;
        while (*a != NULL && strcmp(*a, key) != 0)
            ++a;
        if (*a == NULL) {
            path_key(p, path, key);
            fail(c, p, "unknown key");
        }
    }
}

static int get_str(struct ctx *c, const json_t *v, const char *path, char **out)
{
    /* jansson rejects "\u0000" unless JSON_ALLOW_NUL, so strlen() equals the JSON length */
    if (!json_is_string(v) || json_string_length(v) == 0) {
        fail(c, path, "expected non-empty string");
        return -1;
    }
    free(*out);
    *out = lg_strdup(json_string_value(v));
    return 0;
}

static int get_int(struct ctx *c, const json_t *v, const char *path, int64_t lo, int64_t hi, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        fail(c, path, "expected integer %lld..%lld", (long long)lo, (long long)hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* Optional member of obj: absent keeps the default already in *field. */
static void opt_u32(struct ctx *c, const json_t *obj, const char *parent, const char *key, int64_t lo, int64_t hi, uint32_t *field)
{
    json_t *v = json_object_get(obj, key);
    char p[PATH_LEN];
    int64_t n;
    if (v == NULL)
        return;
    path_key(p, parent, key);
    if (get_int(c, v, p, lo, hi, &n) == 0)
        *field = (uint32_t)n;
}

static void opt_bool(struct ctx *c, const json_t *obj, const char *parent, const char *key, int *field)
{
    json_t *v = json_object_get(obj, key);
    char p[PATH_LEN];
    if (v == NULL)
        return;
    if (!json_is_boolean(v)) {
        path_key(p, parent, key);
        fail(c, p, "expected boolean");
        return;
    }
    *field = json_is_true(v);
}

static void opt_str(struct ctx *c, const json_t *obj, const char *parent, const char *key, char **field)
{
    json_t *v = json_object_get(obj, key);
    char p[PATH_LEN];
    if (v == NULL)
        return;
    path_key(p, parent, key);
    get_str(c, v, p, field);
}

static void free_strv(char **v)
{
    if (v == NULL)
        return;
    for (char **s = v; *s != NULL; ++s)
        free(*s);
    free(v);
}

/* Array of non-empty strings into a NULL-terminated list. */
static int get_strv(struct ctx *c, const json_t *v, const char *path, char ***out, size_t *num)
{
    char p[PATH_LEN];
    size_t i, n = 0;
    json_t *e;
    char **list;
    int rc = 0;

    if (!json_is_array(v)) {
        fail(c, path, "expected array of strings");
        return -1;
    }
    list = lg_calloc(json_array_size(v) + 1, sizeof(*list));
    json_array_foreach(v, i, e)
    {
        path_idx(p, path, i);
        if (get_str(c, e, p, &list[n]) == 0)
            ++n;
        else
            rc = -1;
    }
    free_strv(*out);
    *out = list;
    if (num != NULL)
        *num = n;
    return rc;
}

static int in_list(const char *const *list, const char *s)
{
    for (; *list != NULL; ++list)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* Relative paths resolve against the config file's folder, so the gateway can be started from anywhere. */
static char *resolve_path(const struct ctx *c, const char *p)
{
    size_t nb, np;
    char *out;
    if (p[0] == '/' || c->base_dir == NULL)
        return lg_strdup(p);
    nb = strlen(c->base_dir);
    np = strlen(p);
    out = lg_calloc(nb + np + 2, 1);
    memcpy(out, c->base_dir, nb);
    if (nb > 0 && out[nb - 1] != '/')
        out[nb++] = '/';
    memcpy(out + nb, p, np + 1);
    return out;
}

static int is_slug(const char *s, int allow_underscore)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || (allow_underscore && *s == '_')))
        return 0;
    for (++s; *s != '\0'; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* RFC 9110 token characters: what an HTTP header name may contain. */
static int is_header_name(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; ++s)
        if (!(((unsigned)*s > 0x20 && (unsigned)*s < 0x7f) && strchr("\"(),/:;<=>?@[\\]{}", *s) == NULL))
            return 0;
    return 1;
}

/* ---- prices ---- */

enum { PRICE_OK = 0, PRICE_SYNTAX = -1, PRICE_NEGATIVE = -2, PRICE_RANGE = -3 };

/*
 * Exact decimal text ("0.000000123", "3e-6") to pico-USD, digit by digit: going through a double would turn
 * 0.0000003 into 299999.99999999997 pico. Digits below one pico round half up.
 */
static int price_from_text(const char *s, int64_t *out)
{
    const char *p = s;
    size_t ndig;
    long exp10 = 0, point, top;
    int neg = 0, seen_digit = 0;
    char buf[64];
    size_t nbuf = 0;
    int64_t acc = 0;

    if (*p == '-') {
        neg = 1;
        ++p;
    }
    /* collect significant digits (leading zeros dropped) and where the decimal point sits relative to them */
    for (; *p >= '0' && *p <= '9'; ++p) {
        seen_digit = 1;
        if (nbuf == 0 && *p == '0')
            continue;
        if (nbuf < sizeof(buf))
            buf[nbuf] = *p;
        ++nbuf;
    }
    point = (long)nbuf; /* significant digits before the point */
    if (*p == '.') {
        for (++p; *p >= '0' && *p <= '9'; ++p) {
            seen_digit = 1;
            if (nbuf == 0 && *p == '0') {
                --point; /* 0.00x: each leading fractional zero moves the first significant digit right */
                continue;
            }
            if (nbuf < sizeof(buf))
                buf[nbuf] = *p;
            ++nbuf;
        }
    }
    if (!seen_digit)
        return PRICE_SYNTAX;
    if (*p == 'e' || *p == 'E') {
        int eneg = 0, edig = 0;
        ++p;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        for (; *p >= '0' && *p <= '9'; ++p, ++edig)
            if (exp10 < 100000) /* clamp: anything this large over- or underflows anyway */
                exp10 = exp10 * 10 + (*p - '0');
        if (edig == 0)
            return PRICE_SYNTAX;
        if (eneg)
            exp10 = -exp10;
    }
    if (*p != '\0')
        return PRICE_SYNTAX;
    ndig = nbuf < sizeof(buf) ? nbuf : sizeof(buf); /* digits past 64 significant ones cannot matter at pico scale */
    if (ndig == 0) {
        *out = 0;
        return PRICE_OK;
    }
    if (neg)
        return PRICE_NEGATIVE;
    /* buf[k] is worth 10^(point - 1 - k) USD = 10^(top - k) pico */
    top = point + exp10 - 1 + 12;
    if (top > 18)
        return PRICE_RANGE;
    for (long e = top; e >= 0; --e) {
        long k = top - e;
        int d = k < (long)ndig ? buf[k] - '0' : 0;
        if (acc > (INT64_MAX - d) / 10)
            return PRICE_RANGE;
        acc = acc * 10 + d;
    }
    /* the digit worth 10^-1 pico decides rounding */
    if (top + 1 >= 0 && top + 1 < (long)ndig && buf[top + 1] >= '5') {
        if (acc == INT64_MAX)
            return PRICE_RANGE;
        ++acc;
    }
    *out = acc;
    return PRICE_OK;
}

static int price_from_json(const json_t *v, int64_t *out)
{
    if (json_is_string(v))
        return price_from_text(json_string_value(v), out);
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0)
            return PRICE_NEGATIVE;
        if (n > INT64_MAX / PICO_PER_USD)
            return PRICE_RANGE;
        *out = (int64_t)n * PICO_PER_USD;
        return PRICE_OK;
    }
    if (json_is_real(v)) {
        char text[40];
        double d = json_real_value(v);
        if (!isfinite(d))
            return PRICE_SYNTAX;
        if (d < 0)
            return PRICE_NEGATIVE;
        /* 17 significant digits identify the double exactly; the text parser then rounds once, to the nearest pico */
        snprintf(text, sizeof(text), "%.17g", d);
        return price_from_text(text, out);
    }
    return PRICE_SYNTAX;
}

int lg_price_parse(const json_t *value, int64_t *out_pico)
{
    int64_t v;
    if (value == NULL || price_from_json(value, &v) != PRICE_OK)
        return -1;
    *out_pico = v;
    return 0;
}

static void parse_pricing(struct ctx *c, const json_t *obj, const char *path, lg_price_t *price)
{
    static const char *const keys[] = {
        "prompt",  "completion", "input_cache_read", "input_cache_write", "input_cache_write_1h", "internal_reasoning",
        "request", NULL};
    int64_t *fields[] = {&price->prompt,         &price->completion, &price->cache_read, &price->cache_write,
                         &price->cache_write_1h, &price->reasoning,  &price->request};
    char p[PATH_LEN];

    if (want_object(c, obj, path) != 0)
        return;
    check_keys(c, obj, path, keys);
    for (size_t i = 0; keys[i] != NULL; ++i) {
        json_t *v = json_object_get(obj, keys[i]);
        if (v == NULL)
            continue;
        path_key(p, path, keys[i]);
        switch (price_from_json(v, fields[i])) {
        case PRICE_OK:
            break;
        case PRICE_NEGATIVE:
            fail(c, p, "negative price");
            break;
        case PRICE_RANGE:
            fail(c, p, "price out of range");
            break;
        default:
            fail(c, p, "expected decimal USD amount (string like \"0.000003\" or number)");
            break;
        }
    }
}

/* ---- listeners ---- */

static void check_readable_file(struct ctx *c, const char *path, const char *file)
{
    struct stat st;
    /* stat + access instead of open: a FIFO named here would block an open() forever */
    if (stat(file, &st) != 0 || access(file, R_OK) != 0)
        fail(c, path, "cannot read \"%s\": %s", file, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        fail(c, path, "\"%s\" is not a regular file", file);
}

static void parse_tls(struct ctx *c, const json_t *tls, const char *path, lg_listener_conf_t *l)
{
    static const char *const keys[] = {"cert", "key", NULL};
    json_t *cert, *key;
    char p[PATH_LEN];
    char *s = NULL;

    if (json_is_null(tls) || want_object(c, tls, path) != 0)
        return;
    check_keys(c, tls, path, keys);
    cert = json_object_get(tls, "cert");
    key = json_object_get(tls, "key");
    if ((cert == NULL) != (key == NULL)) {
        fail(c, path, "cert and key must be given together");
        return;
    }
    if (cert == NULL)
        return;
    path_key(p, path, "cert");
    if (get_str(c, cert, p, &s) == 0) {
        l->tls_cert = resolve_path(c, s);
        check_readable_file(c, p, l->tls_cert);
    }
    free(s);
    s = NULL;
    path_key(p, path, "key");
    if (get_str(c, key, p, &s) == 0) {
        l->tls_key = resolve_path(c, s);
        check_readable_file(c, p, l->tls_key);
    }
    free(s);
}

static void parse_listener(struct ctx *c, const json_t *obj, const char *path, lg_listener_conf_t *l)
{
    static const char *const keys[] = {"address", "port", "tls", NULL};
    json_t *v;
    char p[PATH_LEN];
    int64_t port;

    l->port = 4000;
    if (want_object(c, obj, path) != 0)
        return;
    check_keys(c, obj, path, keys);
    if ((v = json_object_get(obj, "address")) != NULL) {
        unsigned char addr[sizeof(struct in6_addr)];
        path_key(p, path, "address");
        if (get_str(c, v, p, &l->address) == 0 && inet_pton(AF_INET, l->address, addr) != 1 &&
            inet_pton(AF_INET6, l->address, addr) != 1)
            fail(c, p, "expected IPv4 or IPv6 address");
    }
    if ((v = json_object_get(obj, "port")) != NULL) {
        path_key(p, path, "port");
        if (get_int(c, v, p, 1, 65535, &port) == 0)
            l->port = (uint16_t)port;
    }
    if ((v = json_object_get(obj, "tls")) != NULL) {
        path_key(p, path, "tls");
        parse_tls(c, v, p, l);
    }
}

static void parse_listeners(struct ctx *c, const json_t *v, lg_config_t *conf)
{
    char p[PATH_LEN];
    size_t i;
    json_t *e;

    if (v == NULL) {
        conf->num_listeners = 1;
        conf->listeners = lg_calloc(1, sizeof(*conf->listeners));
        conf->listeners[0].port = 4000;
    } else if (!json_is_array(v) || json_array_size(v) == 0) {
        fail(c, "listeners", "expected non-empty array");
        return;
    } else {
        conf->num_listeners = json_array_size(v);
        conf->listeners = lg_calloc(conf->num_listeners, sizeof(*conf->listeners));
        json_array_foreach(v, i, e)
        {
            path_idx(p, "listeners", i);
            parse_listener(c, e, p, &conf->listeners[i]);
        }
    }
    for (i = 0; i < conf->num_listeners; ++i)
        if (conf->listeners[i].address == NULL)
            conf->listeners[i].address = lg_strdup("127.0.0.1");
    for (i = 0; i < conf->num_listeners; ++i)
        for (size_t j = 0; j < i; ++j)
            if (conf->listeners[i].port == conf->listeners[j].port &&
                strcmp(conf->listeners[i].address, conf->listeners[j].address) == 0) {
                path_idx(p, "listeners", i);
                fail(c, p, "duplicate listener %s:%u", conf->listeners[i].address, (unsigned)conf->listeners[i].port);
            }
}

/* ---- providers ---- */

static int is_env_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (++s; *s != '\0'; ++s)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int is_http_url(const char *s)
{
    const char *host;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return 0;
    if (*host == '\0' || *host == '/')
        return 0;
    for (; *s != '\0'; ++s)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static void parse_headers(struct ctx *c, const json_t *obj, const char *path, lg_provider_conf_t *pc)
{
    const char *key;
    json_t *v;
    char p[PATH_LEN];
    int bad = 0;

    if (json_is_null(obj) || want_object(c, obj, path) != 0)
        return;
    json_object_foreach((json_t *)obj, key, v)
    {
        path_map(p, path, key);
        if (!is_header_name(key)) {
            fail(c, p, "invalid header name");
            bad = 1;
        } else if (!json_is_string(v)) {
            fail(c, p, "expected string");
            bad = 1;
        } else if (strpbrk(json_string_value(v), "\r\n") != NULL) {
            fail(c, p, "header value must not contain CR or LF");
            bad = 1;
        }
    }
    if (!bad && json_object_size(obj) > 0)
        pc->headers = xdeep_copy(obj);
}

/* Same rule as lg_plugin_resolve: a '/' or a ".so" suffix means a file, anything else a plugin name. */
static int is_plugin_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n > 3 && strcmp(s + n - 3, ".so") == 0);
}

static void parse_provider(struct ctx *c, const json_t *obj, const char *path, lg_provider_conf_t *pc)
{
    static const char *const keys[] = {"name",     "plugin",         "base_url", "api_key",  "api_key_env", "headers", "options",
                                       "timeouts", "max_concurrent", "queue",    "required", "enabled",     NULL};
    static const char *const timeout_keys[] = {"connect_ms", "first_byte_ms", "idle_ms", "total_ms", NULL};
    static const char *const queue_keys[] = {"size", "timeout_ms", NULL};
    json_t *v;
    char p[PATH_LEN];

    pc->connect_timeout_ms = 5000;
    pc->first_byte_timeout_ms = 60000;
    pc->idle_timeout_ms = 30000;
    pc->total_timeout_ms = 600000;
    pc->queue_size = 64;
    pc->queue_timeout_ms = 5000;
    pc->enabled = 1;
    if (want_object(c, obj, path) != 0)
        return;
    check_keys(c, obj, path, keys);

    path_key(p, path, "name");
    if ((v = json_object_get(obj, "name")) == NULL)
        fail(c, p, "missing required key");
    else if (get_str(c, v, p, &pc->name) == 0 && !is_slug(pc->name, 0))
        fail(c, p, "expected [a-z0-9][a-z0-9._-]*");

    opt_str(c, obj, path, "plugin", &pc->plugin);
    if (pc->plugin != NULL && is_plugin_path(pc->plugin)) {
        char *abs = resolve_path(c, pc->plugin);
        free(pc->plugin);
        pc->plugin = abs;
    }
    if (pc->plugin == NULL && pc->name != NULL)
        pc->plugin = lg_strdup(pc->name);

    path_key(p, path, "base_url");
    if ((v = json_object_get(obj, "base_url")) != NULL) {
        if (!json_is_string(v) || !is_http_url(json_string_value(v))) {
            fail(c, p, "expected http(s) URL");
        } else {
            size_t n;
            pc->base_url = lg_strdup(json_string_value(v));
            /* adapters append "/chat/completions" etc.; one canonical form avoids "//" */
            n = strlen(pc->base_url);
            while (n > 0 && pc->base_url[n - 1] == '/')
                pc->base_url[--n] = '\0';
        }
    } else if (pc->plugin != NULL && strcmp(pc->plugin, "mock") != 0) {
        fail(c, p, "missing required key (only the \"mock\" plugin runs without one)");
    }

    opt_str(c, obj, path, "api_key", &pc->api_key);
    path_key(p, path, "api_key_env");
    if ((v = json_object_get(obj, "api_key_env")) != NULL && get_str(c, v, p, &pc->api_key_env) == 0 &&
        !is_env_name(pc->api_key_env))
        fail(c, p, "expected environment variable name [A-Za-z_][A-Za-z0-9_]*");
    if (json_object_get(obj, "api_key") != NULL && json_object_get(obj, "api_key_env") != NULL)
        fail(c, path, "api_key and api_key_env are mutually exclusive");

    if ((v = json_object_get(obj, "headers")) != NULL) {
        path_key(p, path, "headers");
        parse_headers(c, v, p, pc);
    }
    if ((v = json_object_get(obj, "options")) != NULL && !json_is_null(v)) {
        path_key(p, path, "options");
        if (want_object(c, v, p) == 0)
            pc->options = xdeep_copy(v);
    }
    if ((v = json_object_get(obj, "timeouts")) != NULL) {
        path_key(p, path, "timeouts");
        if (want_object(c, v, p) == 0) {
            check_keys(c, v, p, timeout_keys);
            opt_u32(c, v, p, "connect_ms", 1, 86400000, &pc->connect_timeout_ms);
            opt_u32(c, v, p, "first_byte_ms", 1, 86400000, &pc->first_byte_timeout_ms);
            opt_u32(c, v, p, "idle_ms", 1, 86400000, &pc->idle_timeout_ms);
            opt_u32(c, v, p, "total_ms", 1, 86400000, &pc->total_timeout_ms);
        }
    }
    opt_u32(c, obj, path, "max_concurrent", 0, 1000000, &pc->max_concurrent);
    if ((v = json_object_get(obj, "queue")) != NULL) {
        path_key(p, path, "queue");
        if (want_object(c, v, p) == 0) {
            check_keys(c, v, p, queue_keys);
            opt_u32(c, v, p, "size", 0, 1000000, &pc->queue_size);
            opt_u32(c, v, p, "timeout_ms", 0, 3600000, &pc->queue_timeout_ms);
        }
    }
    opt_bool(c, obj, path, "required", &pc->required);
    opt_bool(c, obj, path, "enabled", &pc->enabled);

    /* A missing key variable is not an error: the default config names every provider and enables those with keys. */
    if (pc->api_key_env != NULL && pc->api_key == NULL) {
        const char *secret = getenv(pc->api_key_env);
        if (secret != NULL && secret[0] != '\0')
            pc->api_key = lg_strdup(secret);
        else
            pc->enabled = 0;
    }
}

static void parse_providers(struct ctx *c, const json_t *v, lg_config_t *conf)
{
    char p[PATH_LEN];
    size_t i;
    json_t *e;

    if (v == NULL)
        return;
    if (!json_is_array(v)) {
        fail(c, "providers", "expected array");
        return;
    }
    conf->num_providers = json_array_size(v);
    conf->providers = lg_calloc(conf->num_providers, sizeof(*conf->providers));
    json_array_foreach(v, i, e)
    {
        path_idx(p, "providers", i);
        parse_provider(c, e, p, &conf->providers[i]);
        if (conf->providers[i].name == NULL)
            continue;
        for (size_t j = 0; j < i; ++j)
            if (conf->providers[j].name != NULL && strcmp(conf->providers[j].name, conf->providers[i].name) == 0) {
                path_key(p, p, "name");
                fail(c, p, "duplicate provider \"%s\" (also providers[%zu])", conf->providers[i].name, j);
                break;
            }
    }
}

/* ---- models ---- */

static int valid_model_id(const char *id, const char **why)
{
    if (id[0] == '\0') {
        *why = "empty";
        return 0;
    }
    for (const char *s = id; *s != '\0'; ++s) {
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
            *why = "whitespace or control character";
            return 0;
        }
        if (*s == ':') {
            *why = "':' is reserved for variants such as :nitro";
            return 0;
        }
    }
    return 1;
}

/* OpenRouter's Quantization enum (PublicEndpoint.quantization, provider.quantizations) */
const char *const lg_quantizations[] = {"int4",  "int8", "fp4",  "mxfp4", "nvfp4",   "fp6", "fp8",
                                        "mxfp8", "fp16", "bf16", "fp32",  "unknown", NULL};

static void parse_endpoint_data_policy(struct ctx *c, const json_t *obj, const char *path, lg_endpoint_conf_t *ep)
{
    json_t *v;
    char p[PATH_LEN];
    path_key(p, path, "data_collection");
    if ((v = json_object_get(obj, "data_collection")) != NULL) {
        if (json_is_string(v) && strcmp(json_string_value(v), "allow") == 0)
            ep->data_collection = 1;
        else if (json_is_string(v) && strcmp(json_string_value(v), "deny") == 0)
            ep->data_collection = 0;
        else
            fail(c, p, "expected \"allow\" or \"deny\"");
    }
    opt_bool(c, obj, path, "zdr", &ep->zdr);
    opt_bool(c, obj, path, "distillable", &ep->distillable);
    path_key(p, path, "quantization");
    if ((v = json_object_get(obj, "quantization")) != NULL && get_str(c, v, p, &ep->quantization) == 0 &&
        !in_list(lg_quantizations, ep->quantization))
        fail(c, p, "expected one of int4, int8, fp4, mxfp4, nvfp4, fp6, fp8, mxfp8, fp16, bf16, fp32, unknown");
}

static void parse_endpoint(struct ctx *c, const json_t *obj, const char *path, const lg_config_t *conf, lg_endpoint_conf_t *ep)
{
    static const char *const keys[] = {"provider",
                                       "model",
                                       "pricing",
                                       "context_length",
                                       "max_completion_tokens",
                                       "supported_parameters",
                                       "weight",
                                       "tier",
                                       "data_collection",
                                       "zdr",
                                       "distillable",
                                       "quantization",
                                       NULL};
    static const char *const tiers[] = {"standard", "priority", "flex", NULL};
    json_t *v;
    char p[PATH_LEN];
    char *provider = NULL;

    ep->provider_index = SIZE_MAX;
    ep->weight = 1.0;
    ep->data_collection = 1;
    if (want_object(c, obj, path) != 0)
        goto done;
    check_keys(c, obj, path, keys);

    path_key(p, path, "provider");
    if ((v = json_object_get(obj, "provider")) == NULL) {
        fail(c, p, "missing required key");
    } else if (get_str(c, v, p, &provider) == 0) {
        for (size_t i = 0; i < conf->num_providers; ++i)
            if (conf->providers[i].name != NULL && strcmp(conf->providers[i].name, provider) == 0)
                ep->provider_index = i;
        if (ep->provider_index == SIZE_MAX)
            fail(c, p, "unknown provider \"%s\"", provider);
    }
    path_key(p, path, "model");
    if ((v = json_object_get(obj, "model")) == NULL)
        fail(c, p, "missing required key");
    else
        get_str(c, v, p, &ep->upstream_model);
    if ((v = json_object_get(obj, "pricing")) != NULL) {
        path_key(p, path, "pricing");
        parse_pricing(c, v, p, &ep->price);
    }
    opt_u32(c, obj, path, "context_length", 0, UINT32_MAX, &ep->context_length);
    opt_u32(c, obj, path, "max_completion_tokens", 0, UINT32_MAX, &ep->max_completion_tokens);
    if ((v = json_object_get(obj, "supported_parameters")) != NULL) {
        path_key(p, path, "supported_parameters");
        get_strv(c, v, p, &ep->supported_params, &ep->num_supported_params);
    }
    if ((v = json_object_get(obj, "weight")) != NULL) {
        path_key(p, path, "weight");
        if (!json_is_number(v) || !(json_number_value(v) >= 0) || !isfinite(json_number_value(v)))
            fail(c, p, "expected number >= 0");
        else
            ep->weight = json_number_value(v);
    }
    path_key(p, path, "tier");
    if ((v = json_object_get(obj, "tier")) != NULL && get_str(c, v, p, &ep->tier) == 0 && !in_list(tiers, ep->tier))
        fail(c, p, "expected \"standard\", \"priority\" or \"flex\"");
    parse_endpoint_data_policy(c, obj, path, ep);
done:
    if (ep->tier == NULL)
        ep->tier = lg_strdup("standard");
    free(provider);
}

/*
 * "auto": {"models": ["a/x", "b/y"]} (a router model, OpenRouter's openrouter/auto). Returns 1 when obj has one (the
 * ids are resolved by resolve_auto_models once every model is parsed), 0 otherwise.
 */
static int parse_auto_model(struct ctx *c, const json_t *obj, const char *path, lg_model_conf_t *m)
{
    static const char *const keys[] = {"models", NULL};
    const json_t *v = json_object_get(obj, "auto"), *list;
    char p[PATH_LEN], pp[PATH_LEN];
    if (v == NULL || json_is_null(v))
        return 0;
    path_key(p, path, "auto");
    if (want_object(c, v, p) != 0)
        return 1;
    check_keys(c, v, p, keys);
    path_key(pp, p, "models");
    list = json_object_get(v, "models");
    if (list == NULL || !json_is_array(list) || json_array_size(list) == 0)
        fail(c, pp, "expected a non-empty array of model ids");
    else if (get_strv(c, list, pp, &m->auto_models, &m->num_auto_models) == 0 && m->num_auto_models > 32)
        fail(c, pp, "at most 32 models");
    if (json_object_get(obj, "endpoints") != NULL) {
        path_key(pp, path, "endpoints");
        fail(c, pp, "an auto model has no endpoints of its own (its candidates are the endpoints of auto.models)");
    }
    if (m->policy == NULL)
        m->policy = lg_strdup("auto");
    return 1;
}

/* A model's response-cache settings: {"enabled": bool, "ttl_s": 1..86400, "scope": "key" | "shared"}. */
static void parse_model_cache(struct ctx *c, const json_t *v, const char *path, lg_model_conf_t *m)
{
    static const char *const keys[] = {"enabled", "ttl_s", "scope", NULL};
    char p[PATH_LEN];
    path_key(p, path, "cache");
    if (want_object(c, v, p) != 0)
        return;
    check_keys(c, v, p, keys);
    if (json_object_get(v, "enabled") != NULL)
        opt_bool(c, v, p, "enabled", &m->cache_enabled);
    opt_u32(c, v, p, "ttl_s", 1, 86400, &m->cache_ttl_s);
    const json_t *scope = json_object_get(v, "scope");
    if (scope != NULL) {
        const char *s = json_string_value(scope);
        char sp[PATH_LEN];
        path_key(sp, p, "scope");
        if (s != NULL && strcmp(s, "key") == 0)
            m->cache_shared = 0;
        else if (s != NULL && strcmp(s, "shared") == 0)
            m->cache_shared = 1;
        else
            fail(c, sp, "expected \"key\" or \"shared\"");
    }
}

static void parse_model(struct ctx *c, const char *id, const json_t *obj, const char *path, const lg_config_t *conf,
                        lg_model_conf_t *m)
{
    static const char *const keys[] = {"name",
                                       "description",
                                       "created",
                                       "context_length",
                                       "modality",
                                       "input_modalities",
                                       "output_modalities",
                                       "tokenizer",
                                       "supported_parameters",
                                       "policy",
                                       "endpoints",
                                       "midstream_failover",
                                       "auto",
                                       "cache",
                                       NULL};
    static const char *const text_only[] = {"text", NULL};
    const char *why;
    json_t *v, *e;
    char p[PATH_LEN];
    int64_t n;
    size_t i;

    m->id = lg_strdup(id);
    m->cache_enabled = -1;
    if (!valid_model_id(id, &why))
        fail(c, path, "invalid model id (%s)", why);
    if (want_object(c, obj, path) != 0)
        goto defaults;
    check_keys(c, obj, path, keys);

    opt_str(c, obj, path, "name", &m->name);
    if ((v = json_object_get(obj, "description")) != NULL && !json_is_null(v)) {
        path_key(p, path, "description");
        if (!json_is_string(v))
            fail(c, p, "expected string or null");
        else
            m->description = lg_strdup(json_string_value(v));
    }
    if ((v = json_object_get(obj, "created")) != NULL) {
        path_key(p, path, "created");
        if (get_int(c, v, p, 0, INT64_MAX, &n) == 0)
            m->created = n;
    }
    opt_u32(c, obj, path, "context_length", 0, UINT32_MAX, &m->context_length);
    opt_str(c, obj, path, "modality", &m->modality);
    if ((v = json_object_get(obj, "input_modalities")) != NULL) {
        path_key(p, path, "input_modalities");
        get_strv(c, v, p, &m->input_modalities, NULL);
    }
    if ((v = json_object_get(obj, "output_modalities")) != NULL) {
        path_key(p, path, "output_modalities");
        get_strv(c, v, p, &m->output_modalities, NULL);
    }
    opt_str(c, obj, path, "tokenizer", &m->tokenizer);
    if ((v = json_object_get(obj, "supported_parameters")) != NULL) {
        path_key(p, path, "supported_parameters");
        get_strv(c, v, p, &m->supported_params, &m->num_supported_params);
    }
    if ((v = json_object_get(obj, "policy")) != NULL && !json_is_null(v)) {
        path_key(p, path, "policy");
        get_str(c, v, p, &m->policy); /* existence is checked once all policies are known */
    }
    opt_bool(c, obj, path, "midstream_failover", &m->midstream_failover);
    if ((v = json_object_get(obj, "cache")) != NULL)
        parse_model_cache(c, v, path, m);

    path_key(p, path, "endpoints");
    if (parse_auto_model(c, obj, path, m) != 0) {
        /* an auto model routes to other models' endpoints: none of its own */
    } else if ((v = json_object_get(obj, "endpoints")) == NULL || !json_is_array(v) || json_array_size(v) == 0) {
        fail(c, p, "expected at least one endpoint");
    } else {
        m->num_endpoints = json_array_size(v);
        m->endpoints = lg_calloc(m->num_endpoints, sizeof(*m->endpoints));
        json_array_foreach(v, i, e)
        {
            char ep_path[PATH_LEN];
            path_idx(ep_path, p, i);
            parse_endpoint(c, e, ep_path, conf, &m->endpoints[i]);
        }
    }

defaults:
    if (m->name == NULL)
        m->name = lg_strdup(id);
    if (m->modality == NULL)
        m->modality = lg_strdup("text->text");
    if (m->tokenizer == NULL)
        m->tokenizer = lg_strdup("Other");
    for (int k = 0; k < 2; ++k) {
        char ***list = k == 0 ? &m->input_modalities : &m->output_modalities;
        if (*list == NULL) {
            *list = lg_calloc(2, sizeof(**list));
            (*list)[0] = lg_strdup(text_only[0]);
        }
    }
    /* empty list rather than NULL, so consumers iterate without a check; endpoints use NULL to mean "inherit" */
    if (m->supported_params == NULL)
        m->supported_params = lg_calloc(1, sizeof(*m->supported_params));
    if (m->context_length == 0)
        for (i = 0; i < m->num_endpoints; ++i)
            if (m->endpoints[i].context_length > m->context_length)
                m->context_length = m->endpoints[i].context_length;
}

static void parse_models(struct ctx *c, const json_t *v, lg_config_t *conf)
{
    const char *id;
    json_t *e;
    char p[PATH_LEN];

    if (v == NULL)
        return;
    if (want_object(c, v, "models") != 0)
        return;
    /* object keys are unique: the parser runs with JSON_REJECT_DUPLICATES */
    conf->models = lg_calloc(json_object_size(v), sizeof(*conf->models));
    json_object_foreach((json_t *)v, id, e)
    {
        path_map(p, "models", id);
        parse_model(c, id, e, p, conf, &conf->models[conf->num_models++]);
    }
}

/* ---- policies and routing ---- */

static void parse_policies(struct ctx *c, const json_t *v, lg_config_t *conf)
{
    static const char *const keys[] = {"path", "settings", NULL};
    const char *name;
    json_t *e, *m;
    char p[PATH_LEN], pp[PATH_LEN];
    size_t n = v != NULL && json_is_object(v) ? json_object_size(v) : 0;

    /* room for every shipped policy too, which resolve_policy may append */
    conf->policies = lg_calloc(n + sizeof(shipped_policies) / sizeof(shipped_policies[0]), sizeof(*conf->policies));
    if (v == NULL || want_object(c, v, "policies") != 0)
        return;
    json_object_foreach((json_t *)v, name, e)
    {
        lg_policy_conf_t *pol = &conf->policies[conf->num_policies++];
        char *file = NULL;
        pol->name = lg_strdup(name);
        path_map(p, "policies", name);
        if (!is_slug(name, 1))
            fail(c, p, "invalid policy name (expected [a-z0-9_][a-z0-9._-]*)");
        if (json_is_string(e)) {
            get_str(c, e, p, &file);
        } else if (json_is_object(e)) {
            check_keys(c, e, p, keys);
            path_key(pp, p, "path");
            if ((m = json_object_get(e, "path")) != NULL)
                get_str(c, m, pp, &file);
            else if (!in_list(shipped_policies, name))
                fail(c, pp, "missing required key (only shipped policies may omit it)");
            if ((m = json_object_get(e, "settings")) != NULL && !json_is_null(m)) {
                path_key(pp, p, "settings");
                if (want_object(c, m, pp) == 0)
                    pol->settings = xdeep_copy(m);
            }
        } else {
            fail(c, p, "expected path string or {\"path\", \"settings\"} object");
        }
        if (file != NULL)
            pol->path = resolve_path(c, file);
        free(file);
    }
}

static void resolve_policy(struct ctx *c, lg_config_t *conf, const char *name, const char *path)
{
    if (lg_config_find_policy(conf, name) != NULL)
        return;
    if (!in_list(shipped_policies, name)) {
        fail(c, path, "unknown policy \"%s\" (not in \"policies\" and not shipped)", name);
        return;
    }
    /* path NULL: the policy VM locates the shipped file itself */
    conf->policies[conf->num_policies++].name = lg_strdup(name);
}

/* Headers that carry secrets (the client's key, a cookie, Cloudflare AI Gateway's own token): a policy may log what
 * it reads, so these never reach one. */
static int is_credential_header(const char *lower)
{
    static const char *const secret[] = {"authorization",      "proxy-authorization",  "x-api-key",      "cookie",
                                         "x-llmgate-internal", "cf-aig-authorization", "x-goog-api-key", NULL};
    for (size_t i = 0; secret[i] != NULL; ++i)
        if (strcmp(lower, secret[i]) == 0)
            return 1;
    return 0;
}

static void parse_routing(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"default_policy",
                                       "max_attempts",
                                       "keepalive_interval_ms",
                                       "keepalive",
                                       "policy_instruction_budget",
                                       "policy_memory_mb",
                                       "unhealthy_after_failures",
                                       "unhealthy_cooldown_ms",
                                       "expose_headers",
                                       "session_ttl_s",
                                       "session_max_entries",
                                       "session_max_bytes",
                                       NULL};
    const char *r = "routing";
    json_t *v;
    char p[PATH_LEN];
    size_t i;

    if (obj == NULL || want_object(c, obj, r) != 0)
        return;
    check_keys(c, obj, r, keys);
    opt_str(c, obj, r, "default_policy", &conf->default_policy);
    opt_u32(c, obj, r, "max_attempts", 1, 64, &conf->max_attempts);
    opt_u32(c, obj, r, "keepalive_interval_ms", 100, 600000, &conf->keepalive_interval_ms);
    if ((v = json_object_get(obj, "keepalive")) != NULL) {
        const char *s = json_string_value(v);
        if (s != NULL && strcmp(s, "comment") == 0)
            conf->keepalive = LG_KEEPALIVE_COMMENT;
        else if (s != NULL && strcmp(s, "off") == 0)
            conf->keepalive = LG_KEEPALIVE_OFF;
        else
            fail(c, "routing.keepalive", "expected \"comment\" or \"off\"");
    }
    opt_u32(c, obj, r, "policy_instruction_budget", 1000, 1000000000, &conf->policy_instruction_budget);
    opt_u32(c, obj, r, "policy_memory_mb", 1, 4096, &conf->policy_memory_mb);
    opt_u32(c, obj, r, "unhealthy_after_failures", 1, 1000000, &conf->unhealthy_after_failures);
    opt_u32(c, obj, r, "unhealthy_cooldown_ms", 0, 86400000, &conf->unhealthy_cooldown_ms);
    opt_u32(c, obj, r, "session_ttl_s", 0, 30 * 86400, &conf->session_ttl_s);
    opt_u32(c, obj, r, "session_max_entries", 16, 16777216, &conf->session_max_entries);
    opt_u32(c, obj, r, "session_max_bytes", 65536, UINT32_MAX, &conf->session_max_bytes);
    if ((v = json_object_get(obj, "expose_headers")) != NULL &&
        get_strv(c, v, "routing.expose_headers", &conf->expose_headers, NULL) == 0) {
        for (i = 0; conf->expose_headers[i] != NULL; ++i) {
            char *h = conf->expose_headers[i];
            path_idx(p, "routing.expose_headers", i);
            if (!is_header_name(h))
                fail(c, p, "invalid header name");
            /* h2o hands policies lower-case names; compare like with like */
            for (; *h != '\0'; ++h)
                if (*h >= 'A' && *h <= 'Z')
                    *h = (char)(*h - 'A' + 'a');
            if (is_credential_header(conf->expose_headers[i]))
                fail(c, p, "\"%s\" carries a credential and is never exposed to policies", conf->expose_headers[i]);
        }
    }
}

/* ---- top level ---- */

/* ---- store and auth ---- */

/* store.url: a PostgreSQL connection URL; the store target is the URL itself (the store picks its backend from it) */
static void parse_store_url(struct ctx *c, lg_config_t *conf, char *url, int have_path)
{
    if (have_path)
        fail(c, "store", "path and url are mutually exclusive");
    if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0)
        fail(c, "store.url", "expected postgresql://[user[:password]@]host[:port]/dbname[?param=value]");
    else if (strlen(url) > 4096)
        fail(c, "store.url", "URL too long (4096 bytes at most)");
    else
        for (const char *p = url; *p != '\0'; ++p)
            if ((unsigned char)*p < 0x21 || *p == 0x7f) {
                fail(c, "store.url", "spaces and control characters must be percent-encoded");
                break;
            }
    conf->store_path = url;
}

/* ---- cluster (scale-out) ---- */

static int fail_mode(struct ctx *c, const json_t *obj, const char *key, int *closed)
{
    json_t *v = json_object_get(obj, key);
    char p[PATH_LEN];
    const char *s;
    if (v == NULL)
        return 0;
    path_key(p, "cluster.on_redis_down", key);
    s = json_string_value(v);
    if (s != NULL && strcmp(s, "open") == 0)
        *closed = 0;
    else if (s != NULL && strcmp(s, "closed") == 0)
        *closed = 1;
    else {
        fail(c, p, "expected \"open\" (keep serving on local limits) or \"closed\" (refuse with 503)");
        return -1;
    }
    return 0;
}

static void parse_cluster(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"redis", "name", "timeout_ms", "connect_timeout_ms", "on_redis_down", "share_health", NULL};
    static const char *const down_keys[] = {"rate_limits", "credit", NULL};
    lg_cluster_conf_t *cl = &conf->cluster;
    json_t *v;

    if (obj == NULL || json_is_null(obj) || want_object(c, obj, "cluster") != 0)
        return;
    check_keys(c, obj, "cluster", keys);
    if ((v = json_object_get(obj, "redis")) == NULL) {
        fail(c, "cluster.redis", "required: redis://host:port/db");
    } else if (get_str(c, v, "cluster.redis", &cl->redis_url) == 0) {
        lg_redis_url_t u;
        const char *why = NULL;
        if (lg_redis_url_parse(cl->redis_url, strlen(cl->redis_url), &u, &why) != 0)
            fail(c, "cluster.redis", "%s", why);
    }
    opt_str(c, obj, "cluster", "name", &cl->name);
    if (cl->name != NULL && (!is_slug(cl->name, 1) || strlen(cl->name) > 64))
        fail(c, "cluster.name", "expected up to 64 lower-case letters, digits, '-', '_' or '.'");
    opt_u32(c, obj, "cluster", "timeout_ms", 1, 60000, &cl->timeout_ms);
    opt_u32(c, obj, "cluster", "connect_timeout_ms", 1, 60000, &cl->connect_timeout_ms);
    opt_bool(c, obj, "cluster", "share_health", &cl->share_health);
    if ((v = json_object_get(obj, "on_redis_down")) != NULL && want_object(c, v, "cluster.on_redis_down") == 0) {
        check_keys(c, v, "cluster.on_redis_down", down_keys);
        fail_mode(c, v, "rate_limits", &cl->rate_limits_fail_closed);
        fail_mode(c, v, "credit", &cl->credit_fail_closed);
    }
    if (cl->name == NULL)
        cl->name = lg_strdup("llmgate");
}

/* "cache": {"max_bytes": 65536..4294967295} (the response cache's memory cap). */
static void parse_cache(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"max_bytes", NULL};
    if (obj == NULL || want_object(c, obj, "cache") != 0)
        return;
    check_keys(c, obj, "cache", keys);
    opt_u32(c, obj, "cache", "max_bytes", 65536, UINT32_MAX, &conf->cache_max_bytes);
}

static void parse_store(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"path", "url", "flush_interval_ms", "queue_capacity", NULL};
    char *path = NULL, *url = NULL;

    if (obj != NULL && json_is_null(obj)) {
        /* no store: no API keys, no ledger (a bare router; loopback listeners only, checked with auth) */
        conf->store_path = NULL;
        return;
    }
    if (obj != NULL && want_object(c, obj, "store") == 0) {
        check_keys(c, obj, "store", keys);
        opt_str(c, obj, "store", "path", &path);
        opt_u32(c, obj, "store", "flush_interval_ms", 1, 1000, &conf->ledger_flush_interval_ms);
        opt_u32(c, obj, "store", "queue_capacity", 1, 16777216, &conf->ledger_queue_capacity);
        opt_str(c, obj, "store", "url", &url);
    }
    if (url != NULL) {
        parse_store_url(c, conf, url, path != NULL);
        free(path);
        return;
    }
    /* relative to the config file's folder; for the embedded default base_dir is the current directory */
    conf->store_path = resolve_path(c, path != NULL ? path : "llmgate.db");
    free(path);
}

/* An admin secret travels in "Authorization: Bearer ...": printable ASCII, no spaces. */
static int is_bearer_token(const char *s)
{
    for (; *s != '\0'; ++s)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int is_loopback_address(const char *a)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, a, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, a, &v6) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (IN6_IS_ADDR_LOOPBACK(&v6))
            return 1;
        return memcmp(v6.s6_addr, mapped, sizeof(mapped)) == 0 && v6.s6_addr[12] == 127; /* ::ffff:127.x.y.z */
    }
    return 0;
}

int lg_config_listeners_loopback(const lg_config_t *conf)
{
    for (size_t i = 0; i < conf->num_listeners; ++i)
        if (conf->listeners[i].address == NULL || !is_loopback_address(conf->listeners[i].address))
            return 0;
    return 1;
}

static void parse_auth(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"admin_key", "admin_key_env", "require_keys", "dashboard_session_ttl_s", NULL};
    json_t *v;

    if (obj != NULL && want_object(c, obj, "auth") == 0) {
        check_keys(c, obj, "auth", keys);
        if (json_object_get(obj, "admin_key") != NULL && json_object_get(obj, "admin_key_env") != NULL)
            fail(c, "auth", "admin_key and admin_key_env are mutually exclusive");
        if ((v = json_object_get(obj, "admin_key")) != NULL && get_str(c, v, "auth.admin_key", &conf->admin_key) == 0 &&
            !is_bearer_token(conf->admin_key))
            fail(c, "auth.admin_key", "expected printable ASCII without spaces");
        if ((v = json_object_get(obj, "admin_key_env")) != NULL && get_str(c, v, "auth.admin_key_env", &conf->admin_key_env) == 0 &&
            !is_env_name(conf->admin_key_env))
            fail(c, "auth.admin_key_env", "expected environment variable name [A-Za-z_][A-Za-z0-9_]*");
        if ((v = json_object_get(obj, "require_keys")) != NULL) {
            if (json_is_boolean(v))
                conf->require_keys = json_is_true(v);
            else if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0)
                conf->require_keys = -1;
            else
                fail(c, "auth.require_keys", "expected \"auto\", true or false");
        }
        opt_u32(c, obj, "auth", "dashboard_session_ttl_s", 1, 7 * 86400, &conf->dashboard_session_ttl_s);
    }
    if (conf->admin_key == NULL) {
        const char *val;
        if (conf->admin_key_env == NULL)
            conf->admin_key_env = lg_strdup("LLMGATE_ADMIN_KEY");
        /* unset or empty: no admin API (not an error), like a provider without its key */
        if ((val = getenv(conf->admin_key_env)) != NULL && val[0] != '\0') {
            if (!is_bearer_token(val))
                fail(c, "auth.admin_key_env", "the value of %s must be printable ASCII without spaces", conf->admin_key_env);
            else
                conf->admin_key = lg_strdup(val);
        }
    }
    /* a gateway reachable from the network must never run open, whatever the key count */
    if (conf->require_keys == 0 && conf->num_listeners > 0 && !lg_config_listeners_loopback(conf))
        fail(c, "auth.require_keys", "false is only allowed when every listener is loopback (127.0.0.1, ::1)");
    /* keys live in the store: without one, only a loopback gateway may run (open) */
    if (conf->store_path == NULL && conf->num_listeners > 0 && !lg_config_listeners_loopback(conf))
        fail(c, "store", "null is only allowed when every listener is loopback (API keys are kept in the store)");
}

/* "scheme://host[:port]" with no path, or "*" */
static int is_origin(const char *s)
{
    const char *p = strstr(s, "://");
    if (strcmp(s, "*") == 0)
        return 1;
    if (p == NULL || p == s || p[3] == '\0')
        return 0;
    for (const char *q = s; q < p; ++q)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '+' || *q == '-' ||
              *q == '.'))
            return 0;
    for (p += 3; *p != '\0'; ++p)
        if (*p == '/' || *p == '?' || *p == '#' || (unsigned char)*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* "host" or "host:port", "[v6]" or "[v6]:port": printable, no spaces, slashes, commas or userinfo */
static int is_host(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; ++s)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f || *s == '/' || *s == ',' || *s == '@')
            return 0;
    return 1;
}

/* MCP server and virtual server names: [a-z0-9_-]{1,64} (they become URL path segments, name prefixes and log tags) */
static int is_mcp_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s != '\0'; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* tool name prefixes stay within the MCP tool-name alphabet [A-Za-z0-9_.-] (SEP-986) */
static int is_mcp_prefix(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s != '\0'; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
              *s == '.'))
            return 0;
    return 1;
}

static void parse_mcp_server(struct ctx *c, const char *name, const json_t *obj, const char *path, lg_mcp_server_conf_t *sc)
{
    static const char *const keys[] = {"command", "args",       "env",     "cwd",       "url", "headers",
                                       "prefix",  "timeout_ms", "enabled", "rest_path", NULL};
    const char *key;
    json_t *v;
    char p[PATH_LEN];

    sc->name = lg_strdup(name);
    sc->timeout_ms = 30000;
    sc->enabled = 1;
    sc->args = lg_calloc(1, sizeof(*sc->args));
    sc->env = lg_calloc(1, sizeof(*sc->env));
    if (!is_mcp_name(name))
        fail(c, path, "server name must match [a-z0-9_-]{1,64}");
    if (want_object(c, obj, path) != 0)
        return;
    check_keys(c, obj, path, keys);
    opt_str(c, obj, path, "command", &sc->command);
    opt_u32(c, obj, path, "timeout_ms", 1, 3600000, &sc->timeout_ms);
    opt_bool(c, obj, path, "enabled", &sc->enabled);
    if ((v = json_object_get(obj, "args")) != NULL) {
        path_key(p, path, "args");
        get_strv(c, v, p, &sc->args, NULL);
    }
    if ((v = json_object_get(obj, "env")) != NULL) {
        json_t *e;
        size_t n = 0;
        path_key(p, path, "env");
        if (want_object(c, v, p) == 0) {
            free_strv(sc->env);
            sc->env = lg_calloc(json_object_size(v) + 1, sizeof(*sc->env));
            json_object_foreach(v, key, e)
            {
                char pe[PATH_LEN];
                path_map(pe, p, key);
                if (!is_env_name(key)) {
                    fail(c, pe, "expected environment variable name [A-Za-z_][A-Za-z0-9_]*");
                } else if (!json_is_string(e)) {
                    fail(c, pe, "expected string");
                } else {
                    size_t len = strlen(key) + json_string_length(e) + 2;
                    sc->env[n] = lg_calloc(len, 1);
                    snprintf(sc->env[n++], len, "%s=%s", key, json_string_value(e));
                }
            }
        }
    }
    if ((v = json_object_get(obj, "cwd")) != NULL) {
        char *s = NULL;
        path_key(p, path, "cwd");
        if (get_str(c, v, p, &s) == 0)
            sc->cwd = resolve_path(c, s);
        free(s);
    }
    if ((v = json_object_get(obj, "url")) != NULL) {
        path_key(p, path, "url");
        if (get_str(c, v, p, &sc->url) == 0 && !is_http_url(sc->url))
            fail(c, p, "expected http(s) URL");
    }
    if ((v = json_object_get(obj, "headers")) != NULL) {
        lg_provider_conf_t tmp = {0};
        path_key(p, path, "headers");
        parse_headers(c, v, p, &tmp);
        sc->headers = tmp.headers;
    }
    if ((sc->command == NULL) == (sc->url == NULL))
        fail(c, path, "expected exactly one of \"command\" (stdio server) or \"url\" (Streamable HTTP server)");
    if (sc->command == NULL &&
        (json_object_get(obj, "args") != NULL || json_object_get(obj, "env") != NULL || json_object_get(obj, "cwd") != NULL))
        fail(c, path, "\"args\", \"env\" and \"cwd\" need \"command\"");
    if (sc->url == NULL && json_object_get(obj, "headers") != NULL)
        fail(c, path, "\"headers\" needs \"url\"");
    v = json_object_get(obj, "prefix");
    path_key(p, path, "prefix");
    if (v == NULL || json_is_true(v))
        sc->prefix = lg_strdup(name);
    else if (json_is_false(v))
        sc->prefix = NULL;
    else if (json_is_string(v) && is_mcp_prefix(json_string_value(v)))
        sc->prefix = lg_strdup(json_string_value(v));
    else
        fail(c, p, "expected true, false or a string matching [A-Za-z0-9_.-]{1,64}");
    if ((v = json_object_get(obj, "rest_path")) != NULL) {
        /* REST facade mount for this upstream's tools: POST <rest_path>/<tool> (e.g. "/api/swarm") */
        path_key(p, path, "rest_path");
        if (get_str(c, v, p, &sc->rest_path) == 0) {
            const char *r = sc->rest_path;
            int ok = strncmp(r, "/api/", 5) == 0 && r[5] != '\0' && r[strlen(r) - 1] != '/' && strncmp(r, "/api/admin", 10) != 0 &&
                     strncmp(r, "/api/mcp", 8) != 0;
            for (const char *q = r + 1; ok && *q != '\0'; ++q)
                ok = (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_' || *q == '-' || *q == '/';
            if (!ok)
                fail(c, p, "expected a path \"/api/<name>\" ([a-z0-9_/-], not /api/mcp or /api/admin, no trailing '/')");
        }
    }
}

static void parse_mcp_servers(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    const char *key;
    json_t *v;
    char p[PATH_LEN];

    if (want_object(c, obj, "mcp.servers") != 0)
        return;
    conf->mcp.servers = lg_calloc(json_object_size(obj), sizeof(*conf->mcp.servers));
    json_object_foreach((json_t *)obj, key, v)
    {
        lg_mcp_server_conf_t *sc = &conf->mcp.servers[conf->mcp.num_servers++];
        path_map(p, "mcp.servers", key);
        parse_mcp_server(c, key, v, p, sc);
        for (size_t i = 0; i + 1 < conf->mcp.num_servers; ++i) {
            const lg_mcp_server_conf_t *o = &conf->mcp.servers[i];
            if (sc->enabled && o->enabled && sc->prefix != NULL && o->prefix != NULL && strcmp(sc->prefix, o->prefix) == 0)
                fail(c, p, "prefix \"%s\" is also used by server \"%s\"", sc->prefix, o->name);
        }
    }
}

/* tool patterns: tool-name characters, optionally ending in one '*' */
static int is_tool_pattern(const char *s)
{
    for (; *s != '\0'; ++s) {
        if (*s == '*')
            return s[1] == '\0';
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
              *s == '.'))
            return 0;
    }
    return 1;
}

static void parse_mcp_vservers(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"tools", NULL};
    const char *key;
    json_t *v, *t;
    char p[PATH_LEN], pt[PATH_LEN];

    if (want_object(c, obj, "mcp.virtual_servers") != 0)
        return;
    conf->mcp.vservers = lg_calloc(json_object_size(obj), sizeof(*conf->mcp.vservers));
    json_object_foreach((json_t *)obj, key, v)
    {
        lg_mcp_vserver_conf_t *vs = &conf->mcp.vservers[conf->mcp.num_vservers++];
        path_map(p, "mcp.virtual_servers", key);
        vs->name = lg_strdup(key);
        vs->tools = lg_calloc(1, sizeof(*vs->tools));
        if (!is_mcp_name(key))
            fail(c, p, "virtual server name must match [a-z0-9_-]{1,64}");
        else if (strcmp(key, "conformance") == 0)
            fail(c, p, "\"conformance\" is reserved for the conformance fixture server");
        if (want_object(c, v, p) != 0)
            continue;
        check_keys(c, v, p, keys);
        path_key(pt, p, "tools");
        if ((t = json_object_get(v, "tools")) == NULL) {
            fail(c, pt, "required");
        } else if (get_strv(c, t, pt, &vs->tools, &vs->num_tools) == 0) {
            if (vs->num_tools == 0)
                fail(c, pt, "expected at least one tool name or pattern");
            for (size_t i = 0; i < vs->num_tools; ++i) {
                char pi[PATH_LEN];
                path_idx(pi, pt, i);
                if (!is_tool_pattern(vs->tools[i]))
                    fail(c, pi, "expected a tool name [A-Za-z0-9_.-], optionally ending in '*'");
            }
        }
    }
}

static void parse_mcp_circuit(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"failures", "open_ms", NULL};
    if (want_object(c, obj, "mcp.circuit") != 0)
        return;
    check_keys(c, obj, "mcp.circuit", keys);
    opt_u32(c, obj, "mcp.circuit", "failures", 1, 1000, &conf->mcp.circuit_failures);
    opt_u32(c, obj, "mcp.circuit", "open_ms", 100, 3600000, &conf->mcp.circuit_open_ms);
}

/* "scheme://host[:port]" for mcp.auth.issuer: https, or http on a loopback host (tests, local use) */
static int is_issuer(const char *s)
{
    const char *h;
    if (strncmp(s, "https://", 8) == 0)
        h = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        h = s + 7;
    else
        return 0;
    if (!is_origin(s) || *h == '\0')
        return 0;
    if (h == s + 7) {
        size_t n = strcspn(h, ":");
        if (h[0] == '[')
            n = strcspn(h, "]") + 1;
        char host[64];
        if (n >= sizeof(host))
            return 0;
        memcpy(host, h, n);
        host[n] = '\0';
        if (strcmp(host, "localhost") != 0 && strcmp(host, "[::1]") != 0 &&
            !(strncmp(host, "127.", 4) == 0 && is_loopback_address(host)))
            return 0;
    }
    return 1;
}

/* mcp.auth: "keys" (default) or "oauth" for some or all listeners (mcp/README.md §OAuth) */
static void parse_mcp_auth(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"mode",
                                       "listeners",
                                       "issuer",
                                       "access_token_ttl_s",
                                       "refresh_token_ttl_s",
                                       "code_ttl_s",
                                       "consent_ttl_s",
                                       "max_clients",
                                       "dynamic_registration",
                                       "client_id_metadata_documents",
                                       "admin_approval",
                                       "allow_loopback_metadata_urls",
                                       NULL};
    const char *m = "mcp.auth";
    lg_mcp_oauth_conf_t *o = &conf->mcp.oauth;
    char *mode = NULL;
    json_t *v;
    char p[PATH_LEN];

    if (want_object(c, obj, m) != 0)
        return;
    check_keys(c, obj, m, keys);
    opt_str(c, obj, m, "mode", &mode);
    if (mode != NULL && strcmp(mode, "oauth") == 0)
        o->enabled = 1;
    else if (mode != NULL && strcmp(mode, "keys") != 0)
        fail(c, "mcp.auth.mode", "expected \"keys\" or \"oauth\"");
    free(mode);
    opt_str(c, obj, m, "issuer", &o->issuer);
    opt_u32(c, obj, m, "access_token_ttl_s", 1, 86400, &o->access_token_ttl_s);
    opt_u32(c, obj, m, "refresh_token_ttl_s", 60, 31622400, &o->refresh_token_ttl_s);
    opt_u32(c, obj, m, "code_ttl_s", 1, 60, &o->code_ttl_s);
    opt_u32(c, obj, m, "consent_ttl_s", 30, 3600, &o->consent_ttl_s);
    opt_u32(c, obj, m, "max_clients", 1, 1000000, &o->max_clients);
    opt_bool(c, obj, m, "dynamic_registration", &o->dynamic_registration);
    opt_bool(c, obj, m, "client_id_metadata_documents", &o->client_id_metadata_documents);
    opt_bool(c, obj, m, "admin_approval", &o->admin_approval);
    opt_bool(c, obj, m, "allow_loopback_metadata_urls", &o->allow_loopback_metadata_urls);
    if ((v = json_object_get(obj, "listeners")) != NULL && get_strv(c, v, "mcp.auth.listeners", &o->listeners, NULL) == 0) {
        for (size_t i = 0; o->listeners[i] != NULL; ++i) {
            int found = 0;
            for (size_t k = 0; k < conf->num_listeners && !found; ++k) {
                char a[320];
                snprintf(a, sizeof(a), "%s:%u", conf->listeners[k].address != NULL ? conf->listeners[k].address : "127.0.0.1",
                         (unsigned)conf->listeners[k].port);
                found = strcmp(a, o->listeners[i]) == 0;
            }
            path_idx(p, "mcp.auth.listeners", i);
            if (!found)
                fail(c, p, "\"%s\" is not one of the listeners (write \"address:port\" as in \"listeners\")", o->listeners[i]);
        }
    }
    if (o->issuer != NULL && !is_issuer(o->issuer))
        fail(c, "mcp.auth.issuer",
             "expected the public base URL \"https://host[:port]\" without a path (http only for loopback hosts)");
    if (o->enabled && o->issuer == NULL)
        fail(c, "mcp.auth.issuer", "required when mode is \"oauth\" (the public base URL clients reach the gateway at)");
    if (o->enabled && !o->dynamic_registration && !o->client_id_metadata_documents)
        fail(c, "mcp.auth", "dynamic_registration and client_id_metadata_documents are both off: no client could register");
}

static void parse_mcp(struct ctx *c, const json_t *obj, lg_config_t *conf)
{
    static const char *const keys[] = {"enabled",
                                       "allowed_origins",
                                       "allowed_hosts",
                                       "session_ttl_s",
                                       "max_message_bytes",
                                       "conformance_fixtures",
                                       "servers",
                                       "virtual_servers",
                                       "circuit",
                                       "tool_rate_limits",
                                       "auth",
                                       "sampling_model",
                                       NULL};
    const char *m = "mcp";
    json_t *v;
    char p[PATH_LEN];
    size_t i;

    if (obj == NULL || want_object(c, obj, m) != 0)
        return;
    check_keys(c, obj, m, keys);
    opt_bool(c, obj, m, "enabled", &conf->mcp.enabled);
    opt_bool(c, obj, m, "conformance_fixtures", &conf->mcp.conformance_fixtures);
    opt_u32(c, obj, m, "session_ttl_s", 1, 604800, &conf->mcp.session_ttl_s);
    opt_u32(c, obj, m, "max_message_bytes", 1024, 1 << 30, &conf->mcp.max_message_bytes);
    opt_str(c, obj, m, "sampling_model", &conf->mcp.sampling_model);
    if ((v = json_object_get(obj, "allowed_origins")) != NULL &&
        get_strv(c, v, "mcp.allowed_origins", &conf->mcp.allowed_origins, NULL) == 0) {
        for (i = 0; conf->mcp.allowed_origins[i] != NULL; ++i) {
            path_idx(p, "mcp.allowed_origins", i);
            if (!is_origin(conf->mcp.allowed_origins[i]))
                fail(c, p, "expected \"scheme://host[:port]\" or \"*\"");
        }
    }
    if ((v = json_object_get(obj, "allowed_hosts")) != NULL &&
        get_strv(c, v, "mcp.allowed_hosts", &conf->mcp.allowed_hosts, NULL) == 0) {
        for (i = 0; conf->mcp.allowed_hosts[i] != NULL; ++i) {
            path_idx(p, "mcp.allowed_hosts", i);
            if (!is_host(conf->mcp.allowed_hosts[i]))
                fail(c, p, "expected \"host\" or \"host:port\"");
        }
    }
    if ((v = json_object_get(obj, "servers")) != NULL)
        parse_mcp_servers(c, v, conf);
    if ((v = json_object_get(obj, "virtual_servers")) != NULL)
        parse_mcp_vservers(c, v, conf);
    if ((v = json_object_get(obj, "circuit")) != NULL)
        parse_mcp_circuit(c, v, conf);
    if ((v = json_object_get(obj, "auth")) != NULL)
        parse_mcp_auth(c, v, conf);
    if ((v = json_object_get(obj, "tool_rate_limits")) != NULL && want_object(c, v, "mcp.tool_rate_limits") == 0) {
        size_t n = json_object_size(v), k = 0;
        const char *name;
        json_t *lim;
        conf->mcp.tool_limit_patterns = lg_calloc(n + 1, sizeof(char *));
        conf->mcp.tool_limit_rpm = lg_calloc(n + 1, sizeof(uint32_t));
        json_object_foreach(v, name, lim)
        {
            path_map(p, "mcp.tool_rate_limits", name);
            if (name[0] == '\0' || strlen(name) > 200) {
                fail(c, p, "expected a tool name or \"prefix*\" pattern");
                continue;
            }
            if (!json_is_integer(lim) || json_integer_value(lim) < 1 || json_integer_value(lim) > 1000000) {
                fail(c, p, "expected calls per minute, an integer 1..1000000");
                continue;
            }
            conf->mcp.tool_limit_patterns[k] = lg_strdup(name);
            conf->mcp.tool_limit_rpm[k++] = (uint32_t)json_integer_value(lim);
        }
    }
}

static void resolve_auto_models(struct ctx *c, lg_config_t *conf);

static void parse_root(struct ctx *c, const json_t *root, lg_config_t *conf)
{
    static const char *const keys[] = {"listeners",  "workers",   "limits",     "shutdown_timeout_ms",
                                       "access_log", "log_level", "plugin_dir", "routing",
                                       "policies",   "providers", "models",     "store",
                                       "auth",       "mcp",       "cluster",    "cache",
                                       NULL};
    static const char *const limit_keys[] = {"max_body_bytes", "max_upstream_bytes", NULL};
    static const char *const levels[] = {"err", "warn", "info", "debug", NULL};
    json_t *v;
    int64_t n;
    uint32_t u;

    check_keys(c, root, "", keys);
    parse_listeners(c, json_object_get(root, "listeners"), conf);

    if ((v = json_object_get(root, "workers")) != NULL && get_int(c, v, "workers", 0, CONFIG_MAX_WORKERS, &n) == 0)
        conf->workers = (unsigned)n;
    if (conf->workers == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        conf->workers = cpus < 1 ? 1 : cpus > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (unsigned)cpus;
    }

    if ((v = json_object_get(root, "limits")) != NULL && want_object(c, v, "limits") == 0) {
        check_keys(c, v, "limits", limit_keys);
        u = (uint32_t)conf->max_body_bytes;
        opt_u32(c, v, "limits", "max_body_bytes", 1, 1 << 30, &u);
        conf->max_body_bytes = u;
        u = (uint32_t)conf->max_upstream_bytes;
        opt_u32(c, v, "limits", "max_upstream_bytes", 1, 1 << 30, &u);
        conf->max_upstream_bytes = u;
    }
    opt_u32(c, root, "", "shutdown_timeout_ms", 0, 3600000, &conf->shutdown_timeout_ms);

    if ((v = json_object_get(root, "access_log")) != NULL) {
        const char *s = json_string_value(v);
        free(conf->access_log);
        conf->access_log = NULL;
        if (json_is_null(v) || (s != NULL && strcmp(s, "off") == 0))
            ; /* off */
        else if (s != NULL && strcmp(s, "stderr") == 0)
            conf->access_log = lg_strdup("stderr");
        else if (s != NULL && s[0] != '\0')
            conf->access_log = resolve_path(c, s);
        else
            fail(c, "access_log", "expected file path, \"stderr\", \"off\" or null");
    }
    if ((v = json_object_get(root, "log_level")) != NULL) {
        const char *s = json_string_value(v);
        if (s == NULL || !in_list(levels, s)) {
            fail(c, "log_level", "expected \"err\", \"warn\", \"info\" or \"debug\"");
        } else {
            free(conf->log_level);
            conf->log_level = lg_strdup(s);
        }
    }
    if ((v = json_object_get(root, "plugin_dir")) != NULL && !json_is_null(v)) {
        char *s = NULL;
        if (get_str(c, v, "plugin_dir", &s) == 0)
            conf->plugin_dir = resolve_path(c, s);
        free(s);
    }

    parse_store(c, json_object_get(root, "store"), conf);
    parse_cache(c, json_object_get(root, "cache"), conf);
    parse_auth(c, json_object_get(root, "auth"), conf);
    parse_mcp(c, json_object_get(root, "mcp"), conf);
    parse_cluster(c, json_object_get(root, "cluster"), conf);

    /* order matters: endpoints need the providers, policy references need the policies map */
    parse_policies(c, json_object_get(root, "policies"), conf);
    parse_routing(c, json_object_get(root, "routing"), conf);
    parse_providers(c, json_object_get(root, "providers"), conf);
    parse_models(c, json_object_get(root, "models"), conf);

    resolve_auto_models(c, conf);

    if (conf->default_policy == NULL)
        conf->default_policy = lg_strdup("default");
    resolve_policy(c, conf, conf->default_policy, "routing.default_policy");
    for (size_t i = 0; i < conf->num_models; ++i) {
        char p[PATH_LEN], pp[PATH_LEN];
        if (conf->models[i].policy == NULL)
            continue;
        path_map(p, "models", conf->models[i].id);
        path_key(pp, p, "policy");
        resolve_policy(c, conf, conf->models[i].policy, pp);
    }
}

/* auto.models ids -> model indices: each must be an ordinary model of the catalog, listed once */
static void resolve_auto_models(struct ctx *c, lg_config_t *conf)
{
    for (size_t i = 0; i < conf->num_models; ++i) {
        lg_model_conf_t *m = &conf->models[i];
        if (m->num_auto_models == 0)
            continue;
        m->auto_model_index = lg_calloc(m->num_auto_models, sizeof(*m->auto_model_index));
        for (size_t k = 0; k < m->num_auto_models; ++k) {
            char p[PATH_LEN], pp[PATH_LEN], pi[PATH_LEN];
            path_map(p, "models", m->id);
            path_key(pp, p, "auto.models");
            path_idx(pi, pp, k);
            size_t j = 0;
            while (j < conf->num_models && strcmp(conf->models[j].id, m->auto_models[k]) != 0)
                ++j;
            if (j == conf->num_models)
                fail(c, pi, "unknown model \"%s\"", m->auto_models[k]);
            else if (conf->models[j].auto_models != NULL)
                fail(c, pi, "\"%s\" is an auto model itself (auto models list ordinary models)", m->auto_models[k]);
            for (size_t d = 0; d < k; ++d)
                if (strcmp(m->auto_models[d], m->auto_models[k]) == 0)
                    fail(c, pi, "\"%s\" is listed twice", m->auto_models[k]);
            m->auto_model_index[k] = (uint32_t)(j < conf->num_models ? j : 0);
        }
    }
}

static lg_config_t *config_new(void)
{
    lg_config_t *conf = lg_calloc(1, sizeof(*conf));
    conf->max_body_bytes = (size_t)8 << 20;
    conf->max_upstream_bytes = (size_t)32 << 20;
    conf->shutdown_timeout_ms = 15000;
    conf->access_log = lg_strdup("stderr");
    conf->log_level = lg_strdup("info");
    conf->max_attempts = 8;
    conf->keepalive_interval_ms = 2000;
    conf->keepalive = LG_KEEPALIVE_COMMENT;
    conf->policy_instruction_budget = 1000000;
    conf->policy_memory_mb = 64;
    conf->unhealthy_after_failures = 3;
    conf->unhealthy_cooldown_ms = 30000;
    conf->session_ttl_s = 3600;
    conf->session_max_entries = 65536;
    conf->session_max_bytes = 32u << 20;
    conf->expose_headers = lg_calloc(1, sizeof(*conf->expose_headers));
    conf->ledger_flush_interval_ms = 200;
    conf->ledger_queue_capacity = 65536;
    conf->cluster.timeout_ms = 100;
    conf->cluster.connect_timeout_ms = 1000;
    conf->cluster.share_health = 1;
    conf->cache_max_bytes = 64u * 1024 * 1024;
    conf->require_keys = -1;
    conf->dashboard_session_ttl_s = 8 * 3600;
    conf->mcp.enabled = 1;
    conf->mcp.session_ttl_s = 1800;
    conf->mcp.max_message_bytes = (uint32_t)4 << 20;
    conf->mcp.circuit_failures = 5;
    conf->mcp.circuit_open_ms = 30000;
    conf->mcp.allowed_origins = lg_calloc(1, sizeof(*conf->mcp.allowed_origins));
    conf->mcp.allowed_hosts = lg_calloc(1, sizeof(*conf->mcp.allowed_hosts));
    conf->mcp.oauth.access_token_ttl_s = 3600;
    conf->mcp.oauth.refresh_token_ttl_s = 2592000;
    conf->mcp.oauth.code_ttl_s = 60;
    conf->mcp.oauth.consent_ttl_s = 600;
    conf->mcp.oauth.max_clients = 10000;
    conf->mcp.oauth.dynamic_registration = 1;
    conf->mcp.oauth.client_id_metadata_documents = 1;
    conf->mcp.oauth.admin_approval = 1;
    return conf;
}

/* operator overrides (lg_config_set_overrides): top-level keys replacing the file's before validation */
static json_t *config_overrides;

void lg_config_set_overrides(json_t *patch)
{
    json_decref(config_overrides);
    config_overrides = patch;
}

static lg_config_t *parse_text(const char *text, size_t len, const char *base_dir, const char *source, char *err, size_t errlen)
{
    struct ctx c = {.err = err, .errlen = errlen};
    json_error_t jerr;
    json_t *root;
    lg_config_t *conf;
    char cwd[PATH_MAX];

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    /* duplicate keys would silently shadow each other (two models with one id); make them syntax errors */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fail(&c, source, "JSON syntax error at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        fail(&c, source, "expected a JSON object at the top level");
        json_decref(root);
        return NULL;
    }

    if (config_overrides != NULL)
        json_object_update(root, config_overrides);

    conf = config_new();
    if (source != NULL)
        conf->source_path = lg_strdup(source);
    if (base_dir == NULL)
        base_dir = getcwd(cwd, sizeof(cwd)) != NULL ? cwd : ".";
    conf->base_dir = lg_strdup(base_dir);
    c.base_dir = conf->base_dir;

    parse_root(&c, root, conf);
    json_decref(root);
    if (c.nerr > 0) {
        lg_config_free(conf);
        return NULL;
    }
    return conf;
}

lg_config_t *lg_config_parse(const char *json_text, size_t len, const char *base_dir, char *err, size_t errlen)
{
    return parse_text(json_text, len, base_dir, NULL, err, errlen);
}

lg_config_t *lg_config_load(const char *path, char *err, size_t errlen)
{
    struct ctx c = {.err = err, .errlen = errlen};
    char *text, *real, *slash;
    size_t len = 0, got;
    lg_config_t *conf;
    FILE *fp;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL)
        return parse_text(lg_config_embedded_default, strlen(lg_config_embedded_default), NULL, NULL, err, errlen);

    if ((fp = fopen(path, "rb")) == NULL) {
        fail(&c, path, "cannot open config: %s", strerror(errno));
        return NULL;
    }
    /* read up to one byte past the cap: works for pipes and /dev/stdin too, where the size is unknown */
    text = lg_calloc(CONFIG_MAX_FILE_BYTES + 2, 1);
    do {
        got = fread(text + len, 1, CONFIG_MAX_FILE_BYTES + 1 - len, fp);
        len += got;
    } while (got > 0 && len <= CONFIG_MAX_FILE_BYTES);
    if (ferror(fp)) {
        fail(&c, path, "cannot read config: %s", strerror(errno));
        fclose(fp);
        free(text);
        return NULL;
    }
    fclose(fp);
    if (len > CONFIG_MAX_FILE_BYTES) {
        fail(&c, path, "config file larger than 16 MiB");
        free(text);
        return NULL;
    }

    /* an absolute base survives a later chdir (daemonising, workers) */
    real = realpath(path, NULL);
    if (real == NULL)
        real = lg_strdup(path);
    slash = strrchr(real, '/');
    if (slash == NULL)
        strcpy(real, ".");
    else if (slash == real)
        slash[1] = '\0';
    else
        *slash = '\0';
    conf = parse_text(text, len, real, path, err, errlen);
    free(real);
    free(text);
    return conf;
}

void lg_config_free(lg_config_t *conf)
{
    size_t i, j;

    if (conf == NULL)
        return;
    free(conf->source_path);
    free(conf->base_dir);
    for (i = 0; i < conf->num_listeners; ++i) {
        free(conf->listeners[i].address);
        free(conf->listeners[i].tls_cert);
        free(conf->listeners[i].tls_key);
    }
    free(conf->listeners);
    free(conf->access_log);
    free(conf->log_level);
    free(conf->plugin_dir);
    free(conf->default_policy);
    free_strv(conf->expose_headers);
    free_strv(conf->mcp.allowed_origins);
    free_strv(conf->mcp.allowed_hosts);
    for (i = 0; i < conf->mcp.num_servers; ++i) {
        lg_mcp_server_conf_t *sc = &conf->mcp.servers[i];
        free(sc->name);
        free(sc->command);
        free_strv(sc->args);
        if (sc->env != NULL)
            for (char **e = sc->env; *e != NULL; ++e)
                memset(*e, 0, strlen(*e)); /* env often carries the upstream's secrets */
        free_strv(sc->env);
        free(sc->cwd);
        free(sc->url);
        json_decref(sc->headers);
        free(sc->prefix);
        free(sc->rest_path);
    }
    free(conf->mcp.servers);
    free(conf->mcp.sampling_model);
    for (i = 0; i < conf->mcp.num_vservers; ++i) {
        free(conf->mcp.vservers[i].name);
        free_strv(conf->mcp.vservers[i].tools);
    }
    free(conf->mcp.vservers);
    free_strv(conf->mcp.oauth.listeners);
    free(conf->mcp.oauth.issuer);
    free_strv(conf->mcp.tool_limit_patterns);
    free(conf->mcp.tool_limit_rpm);
    for (i = 0; i < conf->num_policies; ++i) {
        free(conf->policies[i].name);
        free(conf->policies[i].path);
        json_decref(conf->policies[i].settings);
    }
    free(conf->policies);
    for (i = 0; i < conf->num_providers; ++i) {
        lg_provider_conf_t *pc = &conf->providers[i];
        free(pc->name);
        free(pc->plugin);
        free(pc->base_url);
        if (pc->api_key != NULL) {
            /* do not leave secrets lying around in freed heap */
            memset(pc->api_key, 0, strlen(pc->api_key));
            free(pc->api_key);
        }
        free(pc->api_key_env);
        json_decref(pc->headers);
        json_decref(pc->options);
    }
    free(conf->providers);
    for (i = 0; i < conf->num_models; ++i) {
        lg_model_conf_t *m = &conf->models[i];
        free(m->id);
        free(m->name);
        free(m->description);
        free(m->modality);
        free_strv(m->input_modalities);
        free_strv(m->output_modalities);
        free(m->tokenizer);
        free_strv(m->supported_params);
        free(m->policy);
        free_strv(m->auto_models);
        free(m->auto_model_index);
        for (j = 0; j < m->num_endpoints; ++j) {
            free(m->endpoints[j].upstream_model);
            free_strv(m->endpoints[j].supported_params);
            free(m->endpoints[j].tier);
            free(m->endpoints[j].quantization);
        }
        free(m->endpoints);
    }
    free(conf->models);
    free(conf->store_path);
    free(conf->cluster.redis_url);
    free(conf->cluster.name);
    if (conf->admin_key != NULL) {
        memset(conf->admin_key, 0, strlen(conf->admin_key));
        free(conf->admin_key);
    }
    free(conf->admin_key_env);
    free(conf);
}

const lg_model_conf_t *lg_config_find_model(const lg_config_t *conf, const char *id)
{
    for (size_t i = 0; i < conf->num_models; ++i)
        if (strcmp(conf->models[i].id, id) == 0)
            return &conf->models[i];
    return NULL;
}

const lg_provider_conf_t *lg_config_find_provider(const lg_config_t *conf, const char *name)
{
    for (size_t i = 0; i < conf->num_providers; ++i)
        if (conf->providers[i].name != NULL && strcmp(conf->providers[i].name, name) == 0)
            return &conf->providers[i];
    return NULL;
}

const lg_policy_conf_t *lg_config_find_policy(const lg_config_t *conf, const char *name)
{
    for (size_t i = 0; i < conf->num_policies; ++i)
        if (strcmp(conf->policies[i].name, name) == 0)
            return &conf->policies[i];
    return NULL;
}

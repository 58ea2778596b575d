/* SPDX-License-Identifier: MIT */
/*
 * `llmgate keys ...` and `llmgate usage ...`: key management and usage
 * reports straight on the SQLite store, for operators and scripts (--json).
 * Every input is validated before the store is touched; a bad value exits 2
 * with the option named, a missing key or a store failure exits 1.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "cluster/cluster.h"
#include "domain/key.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/util.h"
#include "domain/key.h"
#include "store/store.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define PICO_PER_USD INT64_C(1000000000000)

enum cmd {
    C_CREATE = 1 << 0,
    C_LIST = 1 << 1,
    C_SHOW = 1 << 2,
    C_UPDATE = 1 << 3,
    C_DISABLE = 1 << 4,
    C_ENABLE = 1 << 5,
    C_DELETE = 1 << 6,
    C_USAGE = 1 << 7
};
#define C_ALL 0xff
#define C_EDIT (C_CREATE | C_UPDATE)

struct opts {
    const char *config, *db;
    const char *name, *credit, *reset, *rpm, *tpm, *models, *tools, *expires, *metadata;
    const char *key, *model, *provider, *since, *until, *by;
    int json, help;
    const char *pos[8];
    int npos;
};

static const struct option_def {
    const char *name;
    size_t offset; /* of the const char * field; SIZE_MAX = flag */
    unsigned cmds;
} option_defs[] = {
    {"config", offsetof(struct opts, config), C_ALL},
    {"db", offsetof(struct opts, db), C_ALL},
    {"name", offsetof(struct opts, name), C_EDIT},
    {"credit-limit", offsetof(struct opts, credit), C_EDIT},
    {"reset", offsetof(struct opts, reset), C_EDIT},
    {"rpm", offsetof(struct opts, rpm), C_EDIT},
    {"tpm", offsetof(struct opts, tpm), C_EDIT},
    {"models", offsetof(struct opts, models), C_EDIT},
    {"tools", offsetof(struct opts, tools), C_EDIT},
    {"expires-in", offsetof(struct opts, expires), C_EDIT},
    {"metadata", offsetof(struct opts, metadata), C_EDIT},
    {"key", offsetof(struct opts, key), C_USAGE},
    {"model", offsetof(struct opts, model), C_USAGE},
    {"provider", offsetof(struct opts, provider), C_USAGE},
    {"since", offsetof(struct opts, since), C_USAGE},
    {"until", offsetof(struct opts, until), C_USAGE},
    {"by", offsetof(struct opts, by), C_USAGE},
    {"json", SIZE_MAX, C_ALL},
};

static void usage_text(FILE *out)
{
    fputs("usage: llmgate keys create --name NAME [--credit-limit USD|none] [--reset none|daily|weekly|monthly]\n"
          "                           [--rpm N] [--tpm N] [--models a,b|*] [--tools x,y|*] [--expires-in 30d|12h|never]\n"
          "                           [--metadata JSON] [--json]\n"
          "       llmgate keys list [--json]\n"
          "       llmgate keys show ID [--json]\n"
          "       llmgate keys update ID [--name NAME] [same options as create]\n"
          "       llmgate keys disable|enable|delete ID\n"
          "       llmgate usage [--key ID] [--model M] [--provider P] [--since YYYY-MM-DD|-7d] [--until YYYY-MM-DD|-1d]\n"
          "                     [--by key|model|provider|day] [--json]\n"
          "global: --config FILE (use its store.path) or --db PATH (default ./llmgate.db)\n"
          "limits: --credit-limit 0..1000000 USD (none = unlimited), --rpm/--tpm 0..10000000 (0 = unlimited).\n"
          "--until with a date includes that whole day (UTC). The secret of a new key is printed once.\n"
          "A running gateway applies key changes after SIGHUP (kill -HUP <pid>) or when made through its admin API.\n"
          "exit status: 0 ok, 1 not found or store error, 2 invalid input\n",
          out);
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;
    fputs("llmgate: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

/* Caller text echoed in messages stays one printable line. */
static const char *shown(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < size; ++i)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    char buf[80];
    memset(o, 0, sizeof(*o));
    for (int i = 2; i < argc; ++i) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (o->npos == (int)(sizeof(o->pos) / sizeof(o->pos[0])))
                return bad("too many arguments");
            o->pos[o->npos++] = a;
            continue;
        }
        const char *eq = strchr(a + 2, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2);
        const struct option_def *d = NULL;
        for (size_t k = 0; k < sizeof(option_defs) / sizeof(option_defs[0]); ++k)
            if (strlen(option_defs[k].name) == nlen && strncmp(option_defs[k].name, a + 2, nlen) == 0)
                d = &option_defs[k];
        if (d == NULL)
            return bad("unknown option %s (see llmgate keys --help)", shown(a, buf, sizeof(buf)));
        if (d->offset == SIZE_MAX) {
            if (eq != NULL)
                return bad("--%s takes no value", d->name);
            o->json = 1;
            continue;
        }
        const char *val;
        if (eq != NULL)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i]; /* taken as is, even when it starts with '-' ("--since -7d") */
        else
            return bad("--%s needs a value", d->name);
        *(const char **)((char *)o + d->offset) = val;
    }
    return 0;
}

/* Options given that the command does not take are mistakes worth reporting, not ignoring. */
static int check_options_for(const struct opts *o, unsigned cmd, const char *cmdname)
{
    for (size_t k = 0; k < sizeof(option_defs) / sizeof(option_defs[0]); ++k) {
        const struct option_def *d = &option_defs[k];
        int given = d->offset == SIZE_MAX ? o->json : *(const char *const *)((const char *)o + d->offset) != NULL;
        if (given && (d->cmds & cmd) == 0)
            return bad("--%s does not apply to %s", d->name, cmdname);
    }
    if (o->config != NULL && o->db != NULL)
        return bad("--config and --db are mutually exclusive");
    return 0;
}

/* ---- value parsers: 0 ok, else EXIT_USAGE after a message ---- */

static int parse_count(const char *opt, const char *s, uint32_t *out)
{
    char buf[64];
    uint64_t v = 0;
    if (*s == '\0')
        return bad("--%s: expected an integer 0..%d", opt, LG_KEY_MAX_RATE);
    for (const char *p = s; *p != '\0'; ++p) {
        if (*p < '0' || *p > '9' || v > LG_KEY_MAX_RATE)
            return bad("--%s: expected an integer 0..%d, got \"%s\"", opt, LG_KEY_MAX_RATE, shown(s, buf, sizeof(buf)));
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > LG_KEY_MAX_RATE)
        return bad("--%s: %s is above the maximum %d", opt, shown(s, buf, sizeof(buf)), LG_KEY_MAX_RATE);
    *out = (uint32_t)v;
    return 0;
}

static int parse_credit(const char *s, int64_t *out)
{
    char buf[64], *end;
    if (strcmp(s, "none") == 0 || strcmp(s, "unlimited") == 0) {
        *out = -1;
        return 0;
    }
    double d = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !isfinite(d) || isspace((unsigned char)*s))
        return bad("--credit-limit: expected a USD amount like 25 or 0.50 (or none), got \"%s\"", shown(s, buf, sizeof(buf)));
    if (d < 0 || d > LG_KEY_MAX_CREDIT_USD)
        return bad("--credit-limit: %s is outside 0..%d USD", shown(s, buf, sizeof(buf)), LG_KEY_MAX_CREDIT_USD);
    /* exact decimal to pico (no binary rounding) through the config's price parser */
    json_t *j = json_string(s);
    int rc = j != NULL ? lg_price_parse(j, out) : -1;
    json_decref(j);
    if (rc != 0)
        return bad("--credit-limit: expected a USD amount, got \"%s\"", shown(s, buf, sizeof(buf)));
    return 0;
}

static int parse_duration_s(const char *opt, const char *s, int64_t *out)
{
    char buf[64], *end;
    long long n;
    int64_t unit;
    if (!isdigit((unsigned char)s[0]))
        goto badval;
    n = strtoll(s, &end, 10);
    if (end[0] == '\0' || end[1] != '\0')
        goto badval;
    switch (end[0]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        goto badval;
    }
    if (n <= 0 || n > LG_KEY_MAX_EXPIRES_S / unit)
        return bad("--%s: %s is outside 1s..100 years", opt, shown(s, buf, sizeof(buf)));
    *out = (int64_t)n * unit;
    return 0;
badval:
    return bad("--%s: expected a duration like 30d, 12h, 45m, 2w, got \"%s\"", opt, shown(s, buf, sizeof(buf)));
}

/* "a,b,c" → NULL-terminated list; "*" alone = NULL (everything allowed). */
static int parse_list(const char *opt, const char *s, int (*valid)(const char *, const char **), char ***out)
{
    char buf[80];
    size_t n = 0;
    char **v;
    const char *why;

    *out = NULL;
    if (strcmp(s, "*") == 0)
        return 0;
    v = lg_malloc(sizeof(*v) * (LG_KEY_MAX_LIST_ITEMS + 1));
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char *item = lg_malloc(len + 1);
        memcpy(item, p, len);
        item[len] = '\0';
        if (n == LG_KEY_MAX_LIST_ITEMS || !valid(item, &why)) {
            int rc = n == LG_KEY_MAX_LIST_ITEMS ? bad("--%s: more than %d entries", opt, LG_KEY_MAX_LIST_ITEMS)
                                                : bad("--%s: \"%s\": %s", opt, shown(item, buf, sizeof(buf)), why);
            free(item);
            v[n] = NULL;
            for (size_t i = 0; i < n; ++i)
                free(v[i]);
            free(v);
            return rc;
        }
        v[n++] = item;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    v[n] = NULL;
    *out = v;
    return 0;
}

/* Apply the edit options present in o to k (create and update share this). */
static int apply_edits(const struct opts *o, lg_key_record_t *k)
{
    const char *why;
    char buf[80];
    int rc;

    if (o->name != NULL) {
        if (!lg_key_name_valid(o->name, &why))
            return bad("--name: %s", why);
        free(k->name);
        k->name = lg_strdup(o->name);
    }
    if (o->credit != NULL && (rc = parse_credit(o->credit, &k->credit_limit_pico)) != 0)
        return rc;
    if (o->reset != NULL) {
        int p = lg_reset_period_parse(o->reset);
        if (p < 0)
            return bad("--reset: expected none, daily, weekly or monthly, got \"%s\"", shown(o->reset, buf, sizeof(buf)));
        k->reset_period = (lg_reset_period_t)p;
    }
    if (o->rpm != NULL && (rc = parse_count("rpm", o->rpm, &k->rpm)) != 0)
        return rc;
    if (o->tpm != NULL && (rc = parse_count("tpm", o->tpm, &k->tpm)) != 0)
        return rc;
    if (o->models != NULL) {
        char **v;
        if ((rc = parse_list("models", o->models, lg_key_model_valid, &v)) != 0)
            return rc;
        lg_strv_free(k->allowed_models);
        k->allowed_models = v;
    }
    if (o->tools != NULL) {
        char **v;
        if ((rc = parse_list("tools", o->tools, lg_key_tool_valid, &v)) != 0)
            return rc;
        lg_strv_free(k->allowed_tools);
        k->allowed_tools = v;
    }
    if (o->expires != NULL) {
        int64_t secs;
        if (strcmp(o->expires, "never") == 0) {
            k->expires_at = 0;
        } else {
            if ((rc = parse_duration_s("expires-in", o->expires, &secs)) != 0)
                return rc;
            k->expires_at = lg_unix_time() + secs;
        }
    }
    if (o->metadata != NULL) {
        json_error_t jerr;
        json_t *m;
        if (strlen(o->metadata) > LG_KEY_MAX_METADATA_BYTES)
            return bad("--metadata: larger than %d bytes", LG_KEY_MAX_METADATA_BYTES);
        if ((m = json_loads(o->metadata, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
            return bad("--metadata: invalid JSON at column %d: %s", jerr.column, jerr.text);
        if (!json_is_object(m)) {
            json_decref(m);
            return bad("--metadata: expected a JSON object");
        }
        json_decref(k->metadata);
        k->metadata = m;
    }
    return 0;
}

/* ---- output ---- */

/* Exact USD from pico: "12.5", "0.000003" (no float rounding in reports). */
static void fmt_usd(int64_t pico, char *out, size_t size)
{
    char frac[16];
    int neg = pico < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)pico : (uint64_t)pico;
    int n = snprintf(frac, sizeof(frac), "%012llu", (unsigned long long)(u % (uint64_t)PICO_PER_USD));
    while (n > 2 && frac[n - 1] == '0')
        frac[--n] = '\0';
    snprintf(out, size, "%s%llu.%s", neg ? "-" : "", (unsigned long long)(u / (uint64_t)PICO_PER_USD), frac);
}

static void fmt_date(int64_t unix_s, char *out, size_t size)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M", &tm);
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (text != NULL) {
        puts(text);
        free(text);
    }
}

/* At most width display characters of s (UTF-8 aware, control characters shown as '?'). */
static void print_cell(const char *s, int width)
{
    int cols = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0' && cols < width) {
        size_t len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 1;
        if (cols == width - 1 && p[strnlen((const char *)p, len)] != '\0') { /* more follows: mark the cut */
            fputs("~", stdout);
            ++cols;
            break;
        }
        if (*p < 0x20 || *p == 0x7f)
            putchar('?');
        else
            fwrite(p, 1, strnlen((const char *)p, len), stdout);
        p += strnlen((const char *)p, len);
        ++cols;
    }
    for (; cols < width; ++cols)
        putchar(' ');
}

static const char *key_status(const lg_key_record_t *k)
{
    if (k->disabled)
        return "disabled";
    if (k->expires_at != 0 && k->expires_at <= lg_unix_time())
        return "expired";
    return "active";
}

static void print_strv(const char *label, char *const *v)
{
    printf("%-14s", label);
    if (v == NULL) {
        puts("all");
        return;
    }
    for (size_t i = 0; v[i] != NULL; ++i)
        printf("%s%s", i > 0 ? "," : "", v[i]);
    putchar('\n');
}

static void print_key_text(const lg_key_record_t *k)
{
    char buf[64];
    printf("%-14s%s\n", "id:", k->id);
    printf("%-14s", "name:");
    print_cell(k->name, LG_KEY_NAME_MAX);
    printf("\n%-14s%s...\n", "hint:", k->hint);
    printf("%-14s%s\n", "status:", key_status(k));
    fmt_date(k->created_at, buf, sizeof(buf));
    printf("%-14s%s UTC\n", "created:", buf);
    if (k->expires_at != 0) {
        fmt_date(k->expires_at, buf, sizeof(buf));
        printf("%-14s%s UTC\n", "expires:", buf);
    } else {
        printf("%-14s%s\n", "expires:", "never");
    }
    if (k->credit_limit_pico >= 0) {
        fmt_usd(k->credit_limit_pico, buf, sizeof(buf));
        printf("%-14s%s USD (reset %s)\n", "credit limit:", buf, lg_reset_period_name(k->reset_period));
    } else {
        printf("%-14s%s\n", "credit limit:", "unlimited");
    }
    printf("%-14s%u%s\n", "rpm:", (unsigned)k->rpm, k->rpm == 0 ? " (unlimited)" : "");
    printf("%-14s%u%s\n", "tpm:", (unsigned)k->tpm, k->tpm == 0 ? " (unlimited)" : "");
    print_strv("models:", k->allowed_models);
    print_strv("tools:", k->allowed_tools);
    if (k->metadata != NULL) {
        char *m = json_dumps(k->metadata, JSON_COMPACT | JSON_ENSURE_ASCII);
        printf("%-14s%s\n", "metadata:", m != NULL ? m : "?");
        free(m);
    }
}

static void note_sighup(const struct opts *o)
{
    if (!o->json)
        fputs("note: a running gateway applies this after SIGHUP (kill -HUP <pid>); the admin API applies changes at once\n",
              stderr);
}

/* ---- commands ---- */

static int store_error(lg_store_t *s, int rc, const char *what, const char *id)
{
    char buf[80];
    if (rc == LG_ENOTFOUND) {
        fprintf(stderr, "llmgate: key not found: %s\n", shown(id, buf, sizeof(buf)));
        return EXIT_FAIL;
    }
    fprintf(stderr, "llmgate: %s: %s\n", what, lg_store_errmsg(s));
    return EXIT_FAIL;
}

static int cmd_create(lg_store_t *s, const struct opts *o)
{
    lg_key_record_t k;
    char secret[LG_KEY_SECRET_LEN + 1];
    int rc;

    lg_key_record_init(&k);
    if (o->name == NULL)
        return bad("keys create: --name is required");
    if ((rc = apply_edits(o, &k)) != 0)
        goto out;
    if (lg_key_generate(&k, secret) != 0) {
        fputs("llmgate: cannot read random bytes for the key\n", stderr);
        rc = EXIT_FAIL;
        goto out;
    }
    if ((rc = lg_store_key_insert(s, &k)) != 0) {
        rc = store_error(s, rc, "create key", k.id);
        goto out;
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "key", json_string(secret));
        json_object_set_new(j, "data", lg_key_record_to_json(&k));
        print_json(j);
        json_decref(j);
        fputs("llmgate: store the key now; it cannot be shown again\n", stderr);
    } else {
        printf("id:     %s\n", k.id);
        printf("secret: %s\n", secret);
        puts("store it now; it cannot be shown again");
        note_sighup(o);
    }
    rc = EXIT_OK;
out:
    memset(secret, 0, sizeof(secret));
    lg_key_record_clear(&k);
    return rc;
}

static int cmd_list(lg_store_t *s, const struct opts *o)
{
    lg_key_record_t **keys;
    size_t n;
    int rc;

    if (o->npos > 0)
        return bad("keys list takes no arguments");
    if ((rc = lg_store_key_list(s, &keys, &n)) != 0)
        return store_error(s, rc, "list keys", "");
    if (o->json) {
        json_t *j = json_object(), *a = json_array();
        for (size_t i = 0; i < n; ++i)
            json_array_append_new(a, lg_key_record_to_json(keys[i]));
        json_object_set_new(j, "data", a);
        print_json(j);
        json_decref(j);
    } else if (n == 0) {
        puts("no keys (create one with: llmgate keys create --name NAME)");
    } else {
        printf("%-24s  %-24s  %-13s  %-12s  %-7s  %-8s  %-8s  %-8s  %s\n", "ID", "NAME", "HINT", "LIMIT_USD", "RESET", "RPM", "TPM",
               "STATUS", "CREATED (UTC)");
        for (size_t i = 0; i < n; ++i) {
            const lg_key_record_t *k = keys[i];
            char limit[40], created[40];
            if (k->credit_limit_pico >= 0)
                fmt_usd(k->credit_limit_pico, limit, sizeof(limit));
            else
                snprintf(limit, sizeof(limit), "-");
            fmt_date(k->created_at, created, sizeof(created));
            printf("%-24s  ", k->id);
            print_cell(k->name, 24);
            printf("  %-10s...  %-12s  %-7s  %-8u  %-8u  %-8s  %s\n", k->hint, limit, lg_reset_period_name(k->reset_period),
                   (unsigned)k->rpm, (unsigned)k->tpm, key_status(k), created);
        }
    }
    lg_store_key_list_free(keys, n);
    return EXIT_OK;
}

/* Loads the key named by the one positional argument. */
static int load_key(lg_store_t *s, const struct opts *o, const char *cmdname, lg_key_record_t **k)
{
    char buf[80];
    int rc;
    if (o->npos != 1)
        return bad("%s: expected exactly one key id", cmdname);
    if (!lg_key_id_valid(o->pos[0], strlen(o->pos[0])))
        return bad("%s: \"%s\" is not a key id (key_ followed by 20 letters or digits)", cmdname,
                   shown(o->pos[0], buf, sizeof(buf)));
    if ((rc = lg_store_key_get(s, o->pos[0], k)) != 0)
        return store_error(s, rc, cmdname, o->pos[0]);
    return 0;
}

static int cmd_show(lg_store_t *s, const struct opts *o)
{
    lg_key_record_t *k;
    json_t *usage = NULL;
    int rc;

    if ((rc = load_key(s, o, "keys show", &k)) != 0)
        return rc;
    int64_t now_ms = lg_unix_ms();
    if ((rc = lg_store_key_usage(s, k->id, now_ms, &usage)) != 0) {
        rc = store_error(s, rc, "key usage", k->id);
        lg_key_record_free(k);
        return rc;
    }
    if (o->json) {
        json_t *j = lg_key_record_to_json(k);
        json_object_update(j, usage);
        json_t *wrap = json_pack("{so}", "data", j);
        print_json(wrap);
        json_decref(wrap);
    } else {
        static const char *const names[] = {"usage_pico", "usage_daily_pico", "usage_weekly_pico", "usage_monthly_pico"};
        static const char *const labels[] = {"usage total:", "usage today:", "usage week:", "usage month:"};
        print_key_text(k);
        for (int i = 0; i < 4; ++i) {
            char buf[40];
            fmt_usd(json_integer_value(json_object_get(usage, names[i])), buf, sizeof(buf));
            printf("%-14s%s USD\n", labels[i], buf);
        }
    }
    json_decref(usage);
    lg_key_record_free(k);
    return EXIT_OK;
}

static int cmd_update(lg_store_t *s, const struct opts *o, unsigned cmd)
{
    lg_key_record_t *k;
    const char *cmdname = cmd == C_UPDATE ? "keys update" : cmd == C_DISABLE ? "keys disable" : "keys enable";
    int rc;

    if (cmd == C_UPDATE && o->name == NULL && o->credit == NULL && o->reset == NULL && o->rpm == NULL && o->tpm == NULL &&
        o->models == NULL && o->tools == NULL && o->expires == NULL && o->metadata == NULL)
        return bad("keys update: nothing to change (give --name, --credit-limit, --rpm, ...)");
    if ((rc = load_key(s, o, cmdname, &k)) != 0)
        return rc;
    if (cmd == C_UPDATE)
        rc = apply_edits(o, k);
    else
        k->disabled = cmd == C_DISABLE;
    if (rc == 0 && (rc = lg_store_key_update(s, k)) != 0)
        rc = store_error(s, rc, cmdname, k->id);
    if (rc == 0) {
        if (o->json) {
            json_t *wrap = json_pack("{so}", "data", lg_key_record_to_json(k));
            print_json(wrap);
            json_decref(wrap);
        } else {
            printf("%s: %s\n", cmd == C_UPDATE ? "updated" : cmd == C_DISABLE ? "disabled" : "enabled", k->id);
            note_sighup(o);
        }
    }
    lg_key_record_free(k);
    return rc;
}

static int cmd_delete(lg_store_t *s, const struct opts *o)
{
    char buf[80];
    int rc;
    if (o->npos != 1)
        return bad("keys delete: expected exactly one key id");
    if (!lg_key_id_valid(o->pos[0], strlen(o->pos[0])))
        return bad("keys delete: \"%s\" is not a key id", shown(o->pos[0], buf, sizeof(buf)));
    if ((rc = lg_store_key_delete(s, o->pos[0])) != 0)
        return store_error(s, rc, "keys delete", o->pos[0]);
    if (o->json) {
        json_t *j = json_pack("{s{sssb}}", "data", "id", o->pos[0], "deleted", 1);
        print_json(j);
        json_decref(j);
    } else {
        printf("deleted: %s\n", o->pos[0]);
        note_sighup(o);
    }
    return EXIT_OK;
}

/* "YYYY-MM-DD" (UTC midnight; end_of_day moves to the next midnight) or "-N[mhdw]" before now. */
static int parse_when(const char *opt, const char *s, int end_of_day, int64_t now_ms, int64_t *out)
{
    char buf[64];
    if (s[0] == '-') {
        int64_t secs;
        if (parse_duration_s(opt, s + 1, &secs) != 0)
            return EXIT_USAGE;
        *out = now_ms - secs * 1000;
        return 0;
    }
    int y, m, d, n = 0;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || s[4] != '-' || s[7] != '-' ||
        !isdigit((unsigned char)s[5]) || !isdigit((unsigned char)s[8]))
        return bad("--%s: expected YYYY-MM-DD or -7d (relative), got \"%s\"", opt, shown(s, buf, sizeof(buf)));
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    time_t t = timegm(&tm);
    /* timegm normalises 2024-02-31 to March 2: a changed field means the date does not exist */
    if (y < 1970 || y > 9999 || tm.tm_year != y - 1900 || tm.tm_mon != m - 1 || tm.tm_mday != d)
        return bad("--%s: no such date \"%s\"", opt, shown(s, buf, sizeof(buf)));
    *out = ((int64_t)t + (end_of_day ? 86400 : 0)) * 1000;
    return 0;
}

static int build_usage_query(const struct opts *o, lg_usage_query_t *qp)
{
    lg_usage_query_t q = {0};
    const char *why;
    char buf[80];

    int64_t now_ms = lg_unix_ms();
    if (o->npos > 0)
        return bad("usage takes options only, got \"%s\"", shown(o->pos[0], buf, sizeof(buf)));
    if (o->key != NULL && !lg_key_id_valid(o->key, strlen(o->key)))
        return bad("--key: \"%s\" is not a key id", shown(o->key, buf, sizeof(buf)));
    if (o->model != NULL && !lg_key_model_valid(o->model, &why))
        return bad("--model: %s", why);
    if (o->provider != NULL && !lg_key_tool_valid(o->provider, &why))
        return bad("--provider: expected a provider name like openai");
    if (o->since != NULL && parse_when("since", o->since, 0, now_ms, &q.since_ms) != 0)
        return EXIT_USAGE;
    if (o->until != NULL && parse_when("until", o->until, 1, now_ms, &q.until_ms) != 0)
        return EXIT_USAGE;
    if (q.since_ms > 0 && q.until_ms > 0 && q.until_ms <= q.since_ms)
        return bad("--until must be after --since");
    if (o->by != NULL && strcmp(o->by, "key") != 0 && strcmp(o->by, "model") != 0 && strcmp(o->by, "provider") != 0 &&
        strcmp(o->by, "day") != 0)
        return bad("--by: expected key, model, provider or day, got \"%s\"", shown(o->by, buf, sizeof(buf)));
    q.key_id = o->key;
    q.model = o->model;
    q.provider = o->provider;
    q.group_by = o->by;
    *qp = q;
    return 0;
}

static int cmd_usage(lg_store_t *s, const struct opts *o, const lg_usage_query_t *q)
{
    json_t *res, *row;
    size_t i;
    int rc;

    if ((rc = lg_store_usage_query(s, q, &res)) != 0)
        return store_error(s, rc, "usage", "");
    if (o->json) {
        print_json(res);
        json_decref(res);
        return EXIT_OK;
    }
    printf("%-32s  %10s  %14s  %17s  %s\n", o->by != NULL ? o->by : "", "REQUESTS", "PROMPT_TOKENS", "COMPLETION_TOKENS",
           "COST_USD");
    json_t *data = json_object_get(res, "data");
    for (int pass = 0; pass < 2; ++pass) {
        size_t count = pass == 0 ? (o->by != NULL ? json_array_size(data) : 0) : 1;
        for (i = 0; i < count; ++i) {
            char cost[40];
            const char *label;
            row = pass == 0 ? json_array_get(data, i) : json_object_get(res, "total");
            label = pass == 0 ? json_string_value(json_object_get(row, o->by)) : "total";
            fmt_usd(json_integer_value(json_object_get(row, "cost_pico")), cost, sizeof(cost));
            print_cell(label != NULL && label[0] != '\0' ? label : "(none)", 32);
            printf("  %10lld  %14lld  %17lld  %s\n", (long long)json_integer_value(json_object_get(row, "requests")),
                   (long long)json_integer_value(json_object_get(row, "prompt_tokens")),
                   (long long)json_integer_value(json_object_get(row, "completion_tokens")), cost);
        }
    }
    json_decref(res);
    return EXIT_OK;
}

/* ---- entry ---- */

/* Scale-out: a running cluster hears about the change at once (otherwise at its next re-sync). Never fails the command:
 * the change is committed either way. */
static void announce_key_change(const struct opts *o)
{
    char err[1024];
    lg_config_t *conf;
    if (o->db != NULL || (conf = lg_config_load(o->config, err, sizeof(err))) == NULL)
        return;
    if (lg_cluster_publish_keys_changed_blocking(conf, err, sizeof(err)) != 0)
        fprintf(stderr,
                "llmgate: warning: the change is stored, but the replicas were not notified (%s); they apply it at their "
                "next key re-sync (restart, SIGHUP, or any other key change)\n",
                err);
    lg_config_free(conf);
}

static char *db_path_for(const struct opts *o)
{
    char err[2048];
    lg_config_t *conf;
    char *path;

    if (o->db != NULL) {
        if (o->db[0] == '\0') {
            bad("--db: empty path");
            return NULL;
        }
        return lg_strdup(o->db);
    }
    /* --config: that file's store.path; none: the embedded default, i.e. ./llmgate.db like a plain `llmgate` start */
    if ((conf = lg_config_load(o->config, err, sizeof(err))) == NULL) {
        bad("%s: %s", o->config != NULL ? o->config : "embedded default config", err);
        return NULL;
    }
    if (conf->store_path == NULL) {
        bad("%s: \"store\" is null: this gateway keeps no keys or usage", o->config != NULL ? o->config : "config");
        lg_config_free(conf);
        return NULL;
    }
    path = lg_strdup(conf->store_path);
    lg_config_free(conf);
    return path;
}

int lg_cli_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        unsigned cmd;
    } subs[] = {{"create", C_CREATE},   {"list", C_LIST},     {"show", C_SHOW},    {"update", C_UPDATE},
                {"disable", C_DISABLE}, {"enable", C_ENABLE}, {"delete", C_DELETE}};
    struct opts o;
    unsigned cmd = 0;
    char cmdname[32], buf[80];
    int rc;

    if (argc < 2)
        return bad("expected keys or usage");
    if ((rc = parse_args(argc, argv, &o)) != 0)
        return rc;
    if (strcmp(argv[1], "usage") == 0) {
        cmd = C_USAGE;
        snprintf(cmdname, sizeof(cmdname), "usage");
    } else if (strcmp(argv[1], "keys") == 0) {
        if (o.npos == 0) {
            if (o.help) {
                usage_text(stdout);
                return EXIT_OK;
            }
            usage_text(stderr);
            return EXIT_USAGE;
        }
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); ++i)
            if (strcmp(o.pos[0], subs[i].name) == 0)
                cmd = subs[i].cmd;
        if (cmd == 0)
            return bad("unknown command keys %s (create, list, show, update, disable, enable, delete)",
                       shown(o.pos[0], buf, sizeof(buf)));
        snprintf(cmdname, sizeof(cmdname), "keys %s", o.pos[0]);
        memmove(o.pos, o.pos + 1, sizeof(o.pos[0]) * (size_t)(o.npos - 1));
        o.npos--;
    } else {
        return bad("unknown command %s", shown(argv[1], buf, sizeof(buf)));
    }
    if (o.help) {
        usage_text(stdout);
        return EXIT_OK;
    }
    if ((rc = check_options_for(&o, cmd, cmdname)) != 0)
        return rc;

    /* validate everything before the store is opened (or created): bad input must not leave a database behind */
    lg_usage_query_t q = {0};
    if (cmd & C_EDIT) {
        lg_key_record_t scratch;
        lg_key_record_init(&scratch);
        rc = apply_edits(&o, &scratch);
        lg_key_record_clear(&scratch);
        if (rc != 0)
            return rc;
    }
    if (cmd == C_CREATE && (o.name == NULL || o.npos > 0))
        return bad(o.name == NULL ? "keys create: --name is required" : "keys create takes options only");
    if (cmd & (C_SHOW | C_UPDATE | C_DISABLE | C_ENABLE | C_DELETE)) {
        if (o.npos != 1)
            return bad("%s: expected exactly one key id", cmdname);
        if (!lg_key_id_valid(o.pos[0], strlen(o.pos[0])))
            return bad("%s: \"%s\" is not a key id (key_ followed by 20 letters or digits)", cmdname,
                       shown(o.pos[0], buf, sizeof(buf)));
    }
    if (cmd == C_UPDATE && o.name == NULL && o.credit == NULL && o.reset == NULL && o.rpm == NULL && o.tpm == NULL &&
        o.models == NULL && o.tools == NULL && o.expires == NULL && o.metadata == NULL)
        return bad("keys update: nothing to change (give --name, --credit-limit, --rpm, ...)");
    if (cmd == C_LIST && o.npos > 0)
        return bad("keys list takes no arguments");
    if (cmd == C_USAGE && (rc = build_usage_query(&o, &q)) != 0)
        return rc;

    char err[1024], *path = db_path_for(&o);
    if (path == NULL)
        return EXIT_USAGE;
    lg_store_t *s = lg_store_open(path, err, sizeof(err));
    free(path);
    if (s == NULL) {
        fprintf(stderr, "llmgate: %s\n", err);
        return EXIT_FAIL;
    }
    switch (cmd) {
    case C_CREATE:
        rc = cmd_create(s, &o);
        break;
    case C_LIST:
        rc = cmd_list(s, &o);
        break;
    case C_SHOW:
        rc = cmd_show(s, &o);
        break;
    case C_UPDATE:
    case C_DISABLE:
    case C_ENABLE:
        rc = cmd_update(s, &o, cmd);
        break;
    case C_DELETE:
        rc = cmd_delete(s, &o);
        break;
    default:
        rc = cmd_usage(s, &o, &q);
        break;
    }
    lg_store_close(s);
    fflush(stdout);
    if (rc == 0 && (cmd & (C_CREATE | C_UPDATE | C_DISABLE | C_ENABLE | C_DELETE)))
        announce_key_change(&o);
    return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/metrics/metrics.c: the output is parsed with a small
 * exposition-format (0.0.4) parser and checked for structure (one HELP/TYPE
 * per family, before its samples, families contiguous), exact counter totals
 * recorded from several threads while scrapes run, histogram invariants,
 * label escaping, exact cost sums, "other" folding and collectors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llmgate/error.h"
#include "metrics/metrics.h"

/* ---- a small exposition-format parser ---- */

#define MAX_LABELS 8

typedef struct {
    char name[128];
    int nl;
    char lname[MAX_LABELS][64];
    char lval[MAX_LABELS][600];
    char raw[64]; /* value as written */
    double value;
} sample_t;

typedef struct {
    char name[128];
    char type[16];
    int helps, types, has_samples;
    char help[256];
} family_t;

typedef struct {
    sample_t *s;
    size_t n, cap;
    family_t f[128];
    size_t nf;
} expo_t;

static family_t *find_family(expo_t *e, const char *name)
{
    for (size_t i = 0; i < e->nf; i++)
        if (strcmp(e->f[i].name, name) == 0)
            return &e->f[i];
    return NULL;
}

static family_t *get_family(expo_t *e, const char *name)
{
    family_t *f = find_family(e, name);
    if (f != NULL)
        return f;
    assert_true(e->nf < sizeof(e->f) / sizeof(e->f[0]));
    f = &e->f[e->nf++];
    memset(f, 0, sizeof(*f));
    assert_true(strlen(name) < sizeof(f->name));
    strcpy(f->name, name);
    return f;
}

static int is_name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

/** Family a sample belongs to: histogram suffixes resolve to the histogram family. */
static family_t *family_of(expo_t *e, const char *sample_name)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t ln = strlen(sample_name), ls = strlen(suffixes[i]);
        if (ln > ls && strcmp(sample_name + ln - ls, suffixes[i]) == 0) {
            char base[128];
            memcpy(base, sample_name, ln - ls);
            base[ln - ls] = '\0';
            family_t *f = find_family(e, base);
            if (f != NULL && strcmp(f->type, "histogram") == 0)
                return f;
        }
    }
    return find_family(e, sample_name);
}

/** Parse text; fails the test on any format violation. */
static void expo_parse(expo_t *e, const char *text, size_t len)
{
    memset(e, 0, sizeof(*e));
    family_t *current = NULL;
    const char *p = text, *end = text + len;
    assert_int_equal(strlen(text), len);
    if (len > 0)
        assert_int_equal(text[len - 1], '\n');
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        char line[2048];
        size_t ll = (size_t)(nl - p);
        assert_true(ll < sizeof(line));
        memcpy(line, p, ll);
        line[ll] = '\0';
        p = nl + 1;
        assert_true(ll > 0);
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            int is_help = line[2] == 'H';
            char *name = line + 7, *sp = strchr(name, ' ');
            assert_non_null(sp);
            *sp = '\0';
            family_t *f = get_family(e, name);
            if (f->has_samples)
                fail_msg("%s for %s after its samples", is_help ? "HELP" : "TYPE", name);
            if (is_help) {
                f->helps++;
                snprintf(f->help, sizeof(f->help), "%s", sp + 1);
            } else {
                f->types++;
                snprintf(f->type, sizeof(f->type), "%s", sp + 1);
                assert_true(strcmp(f->type, "counter") == 0 || strcmp(f->type, "gauge") == 0 || strcmp(f->type, "histogram") == 0);
            }
            current = f;
            continue;
        }
        assert_int_not_equal(line[0], '#');
        /* sample */
        if (e->n == e->cap) {
            e->cap = e->cap ? e->cap * 2 : 256;
            e->s = realloc(e->s, e->cap * sizeof(*e->s));
            assert_non_null(e->s);
        }
        sample_t *s = &e->s[e->n++];
        memset(s, 0, sizeof(*s));
        const char *q = line;
        size_t k = 0;
        while (is_name_char(*q, k == 0)) {
            assert_true(k + 1 < sizeof(s->name));
            s->name[k++] = *q++;
        }
        assert_true(k > 0);
        if (*q == '{') {
            q++;
            while (*q != '}') {
                assert_true(s->nl < MAX_LABELS);
                size_t j = 0;
                while (is_name_char(*q, j == 0) && *q != ':')
                    s->lname[s->nl][j++] = *q++;
                assert_true(j > 0);
                assert_int_equal(*q++, '=');
                assert_int_equal(*q++, '"');
                j = 0;
                while (*q != '"') {
                    assert_int_not_equal(*q, '\0');
                    char c = *q++;
                    if (c == '\\') {
                        c = *q++;
                        if (c == 'n')
                            c = '\n';
                        else if (c != '\\' && c != '"')
                            fail_msg("bad escape \\%c in %s", c, line);
                    }
                    assert_true(j + 1 < sizeof(s->lval[0]));
                    s->lval[s->nl][j++] = c;
                }
                q++;
                s->nl++;
                if (*q == ',')
                    q++;
                else
                    assert_int_equal(*q, '}');
            }
            q++;
        }
        assert_int_equal(*q++, ' ');
        snprintf(s->raw, sizeof(s->raw), "%s", q);
        assert_null(strchr(s->raw, ' ')); /* no timestamps */
        if (strcmp(q, "+Inf") == 0)
            s->value = INFINITY;
        else if (strcmp(q, "-Inf") == 0)
            s->value = -INFINITY;
        else if (strcmp(q, "NaN") == 0)
            s->value = NAN;
        else {
            char *ep;
            s->value = strtod(q, &ep);
            assert_true(ep != q && *ep == '\0');
        }
        family_t *f = family_of(e, s->name);
        if (f == NULL)
            fail_msg("sample %s without HELP/TYPE", s->name);
        assert_int_equal(f->helps, 1);
        assert_int_equal(f->types, 1);
        if (f != current)
            fail_msg("samples of %s are not contiguous", f->name);
        f->has_samples = 1;
    }
    for (size_t i = 0; i < e->nf; i++) {
        if (e->f[i].helps != 1 || e->f[i].types != 1)
            fail_msg("family %s: %d HELP, %d TYPE", e->f[i].name, e->f[i].helps, e->f[i].types);
    }
}

static void expo_free(expo_t *e)
{
    free(e->s);
    e->s = NULL;
}

static const char *label_of(const sample_t *s, const char *name)
{
    for (int i = 0; i < s->nl; i++)
        if (strcmp(s->lname[i], name) == 0)
            return s->lval[i];
    return NULL;
}

/** Labels as alternating name, value ...; NULL-terminated. Matches samples with exactly these labels. */
static const sample_t *vfind(const expo_t *e, const char *name, va_list ap)
{
    const char *want[2 * MAX_LABELS];
    int nw = 0;
    const char *ln;
    while ((ln = va_arg(ap, const char *)) != NULL) {
        want[nw++] = ln;
        want[nw++] = va_arg(ap, const char *);
    }
    for (size_t i = 0; i < e->n; i++) {
        const sample_t *s = &e->s[i];
        if (strcmp(s->name, name) != 0 || s->nl * 2 != nw)
            continue;
        int ok = 1;
        for (int j = 0; j < nw && ok; j += 2) {
            const char *v = label_of(s, want[j]);
            ok = v != NULL && strcmp(v, want[j + 1]) == 0;
        }
        if (ok)
            return s;
    }
    return NULL;
}

static const sample_t *find(const expo_t *e, const char *name, ...) __attribute__((sentinel));
static const sample_t *find(const expo_t *e, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const sample_t *s = vfind(e, name, ap);
    va_end(ap);
    return s;
}

/** Value of a sample that must exist. */
static double val(const expo_t *e, const char *name, ...) __attribute__((sentinel));
static double val(const expo_t *e, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const sample_t *s = vfind(e, name, ap);
    va_end(ap);
    if (s == NULL)
        fail_msg("sample %s not found", name);
    return s->value;
}

/** Sum of all samples with this name. */
static double sum_all(const expo_t *e, const char *name)
{
    double t = 0;
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, name) == 0)
            t += e->s[i].value;
    return t;
}

/** Key of a sample's labels except le, to group histogram series. */
static void series_key(const sample_t *s, char *out, size_t n)
{
    out[0] = '\0';
    for (int i = 0; i < s->nl; i++) {
        if (strcmp(s->lname[i], "le") == 0)
            continue;
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s=%s;", s->lname[i], s->lval[i]);
    }
}

/** Every histogram: buckets in increasing le, cumulative, last +Inf, +Inf == _count, _sum present. Returns series checked. */
static int check_histograms(const expo_t *e)
{
    int series = 0;
    for (size_t fi = 0; fi < e->nf; fi++) {
        const family_t *f = &e->f[fi];
        if (strcmp(f->type, "histogram") != 0)
            continue;
        char bname[160], cname[160], sname[160];
        snprintf(bname, sizeof(bname), "%s_bucket", f->name);
        snprintf(cname, sizeof(cname), "%s_count", f->name);
        snprintf(sname, sizeof(sname), "%s_sum", f->name);
        for (size_t i = 0; i < e->n; i++) {
            const sample_t *s = &e->s[i];
            if (strcmp(s->name, bname) != 0 || strcmp(label_of(s, "le"), "0.0005") != 0)
                continue;
            /* first bucket of a series: walk its buckets (they are consecutive) */
            char key[1024], k2[1024];
            series_key(s, key, sizeof(key));
            double prev_le = -1, prev_v = -1;
            size_t j = i;
            for (; j < e->n && strcmp(e->s[j].name, bname) == 0; j++) {
                series_key(&e->s[j], k2, sizeof(k2));
                if (strcmp(key, k2) != 0)
                    break;
                const char *les = label_of(&e->s[j], "le");
                double le = strcmp(les, "+Inf") == 0 ? INFINITY : strtod(les, NULL);
                assert_true(le > prev_le);
                assert_true(e->s[j].value >= prev_v);
                prev_le = le;
                prev_v = e->s[j].value;
            }
            assert_true(isinf(prev_le));
            assert_int_equal(j - i, 18);
            /* _sum and _count follow with the same labels */
            assert_true(j + 1 < e->n);
            assert_string_equal(e->s[j].name, sname);
            series_key(&e->s[j], k2, sizeof(k2));
            assert_string_equal(key, k2);
            assert_string_equal(e->s[j + 1].name, cname);
            series_key(&e->s[j + 1], k2, sizeof(k2));
            assert_string_equal(key, k2);
            assert_true(e->s[j + 1].value == prev_v);
            series++;
        }
    }
    return series;
}

static void render_parse(expo_t *e)
{
    size_t len = 0;
    char *text = lg_metrics_render(&len);
    assert_non_null(text);
    expo_parse(e, text, len);
    free(text);
}

static int setup(void **state)
{
    (void)state;
    lg_metrics_init(3);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lg_metrics_shutdown();
    return 0;
}

/* ---- concurrent recording while scraping ---- */

#define EVENTS 10000
#define NTHREADS 5 /* workers 0..2 on their shards, two more share the non-worker shard */

static int ids_m[2], id_p;
static _Atomic int go;

static void *recorder(void *arg)
{
    unsigned shard = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&go))
        ;
    for (int j = 0; j < EVENTS; j++) {
        int m = ids_m[j % 2];
        lg_metrics_request(shard, LG_ROUTE_CHAT, m, id_p, j % 3 == 0 ? 500 : 200, 0.001 * (j % 7), j % 2 ? 0.0005 : -1, 10, 5,
                           1000000, j % 2);
        lg_metrics_attempt(shard, id_p, m, j % 4 != 0, LG_ERRCLASS_TIMEOUT);
        if (j % 10 == 0)
            lg_metrics_fallback(shard, m);
        lg_metrics_rejected(shard, j % 2 ? "rpm" : "tpm");
        if (j % 100 == 0)
            lg_metrics_policy_error(shard);
        lg_metrics_mcp_call(shard, "srv", "tool", j % 2, 0.01);
    }
    return NULL;
}

static void test_metrics_concurrent_totals(void **state)
{
    (void)state;
    ids_m[0] = lg_metrics_model_id("m1");
    ids_m[1] = lg_metrics_model_id("m2");
    id_p = lg_metrics_provider_id("p1");
    assert_int_equal(lg_metrics_mcp_server_id("srv"), 1);
    assert_int_equal(lg_metrics_mcp_tool_id("tool"), 1);
    assert_int_equal(lg_metrics_shared_shard(), 3);

    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, recorder, (void *)(i < 3 ? i : 3)), 0);
    atomic_store(&go, 1);
    /* scrape while the workers record: every render must be well-formed and counters never go down */
    double prev = 0;
    for (int r = 0; r < 20; r++) {
        expo_t e;
        render_parse(&e);
        check_histograms(&e);
        double t = sum_all(&e, "llmgate_requests_total");
        assert_true(t >= prev);
        prev = t;
        expo_free(&e);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);

    /* expected per thread, by simulation */
    uint64_t req[2][2] = {{0}}, dur_ns = 0, att_ok = 0, att_to = 0, fb[2] = {0}, rpm = 0, tpm = 0, pol = 0, mok = 0;
    for (int j = 0; j < EVENTS; j++) {
        req[j % 2][j % 3 == 0]++;
        dur_ns += (uint64_t)(j % 7) * 1000000;
        if (j % 4 != 0)
            att_ok++;
        else
            att_to++;
        fb[j % 2] += j % 10 == 0;
        if (j % 2)
            rpm++;
        else
            tpm++;
        pol += j % 100 == 0;
        mok += j % 2;
    }
    expo_t e;
    render_parse(&e);
    assert_int_equal(check_histograms(&e), 3); /* duration{chat}, ttft{m2}, mcp{srv} */
    const char *mn[2] = {"m1", "m2"};
    for (int m = 0; m < 2; m++) {
        assert_true(val(&e, "llmgate_requests_total", "route", "chat", "model", mn[m], "provider", "p1", "status", "200", NULL) ==
                    NTHREADS * req[m][0]);
        assert_true(val(&e, "llmgate_requests_total", "route", "chat", "model", mn[m], "provider", "p1", "status", "500", NULL) ==
                    NTHREADS * req[m][1]);
        assert_true(val(&e, "llmgate_tokens_total", "model", mn[m], "provider", "p1", "direction", "prompt", NULL) ==
                    NTHREADS * EVENTS / 2 * 10);
        assert_true(val(&e, "llmgate_tokens_total", "model", mn[m], "provider", "p1", "direction", "completion", NULL) ==
                    NTHREADS * EVENTS / 2 * 5);
        /* 25000 x 1e6 pico = 0.025 USD, exactly */
        assert_string_equal(find(&e, "llmgate_cost_usd_total", "model", mn[m], "provider", "p1", NULL)->raw, "0.025");
        if (fb[m] != 0)
            assert_true(val(&e, "llmgate_fallbacks_total", "model", mn[m], NULL) == NTHREADS * fb[m]);
        else /* j % 10 == 0 is always even: only m1 falls back; untouched series are absent */
            assert_null(find(&e, "llmgate_fallbacks_total", "model", mn[m], NULL));
        /* TTFT only for odd j (m2) */
        if (m == 1)
            assert_true(val(&e, "llmgate_time_to_first_token_seconds_count", "model", "m2", NULL) == NTHREADS * EVENTS / 2);
        else
            assert_null(find(&e, "llmgate_time_to_first_token_seconds_count", "model", "m1", NULL));
    }
    assert_true(sum_all(&e, "llmgate_requests_total") == NTHREADS * EVENTS);
    assert_true(val(&e, "llmgate_request_duration_seconds_count", "route", "chat", NULL) == NTHREADS * EVENTS);
    assert_true(fabs(val(&e, "llmgate_request_duration_seconds_sum", "route", "chat", NULL) - NTHREADS * dur_ns / 1e9) < 1e-6);
    assert_true(val(&e, "llmgate_streamed_requests_total", "route", "chat", NULL) == NTHREADS * EVENTS / 2);
    assert_true(val(&e, "llmgate_upstream_attempts_total", "provider", "p1", "model", "m1", "outcome", "ok", NULL) +
                    val(&e, "llmgate_upstream_attempts_total", "provider", "p1", "model", "m2", "outcome", "ok", NULL) ==
                NTHREADS * att_ok);
    assert_true(sum_all(&e, "llmgate_upstream_attempts_total") == NTHREADS * EVENTS);
    assert_true(val(&e, "llmgate_upstream_attempts_total", "provider", "p1", "model", "m1", "outcome", "timeout", NULL) ==
                NTHREADS * att_to); /* j % 4 == 0 is always even: m1 */
    assert_true(val(&e, "llmgate_rejections_total", "reason", "rpm", NULL) == NTHREADS * rpm);
    assert_true(val(&e, "llmgate_rejections_total", "reason", "tpm", NULL) == NTHREADS * tpm);
    assert_true(val(&e, "llmgate_rejections_total", "reason", "auth", NULL) == 0);
    assert_true(val(&e, "llmgate_policy_errors_total", NULL) == NTHREADS * pol);
    assert_true(val(&e, "llmgate_mcp_tool_calls_total", "server", "srv", "tool", "tool", "outcome", "ok", NULL) == NTHREADS * mok);
    assert_true(val(&e, "llmgate_mcp_tool_calls_total", "server", "srv", "tool", "tool", "outcome", "error", NULL) ==
                NTHREADS * (EVENTS - mok));
    assert_true(val(&e, "llmgate_mcp_tool_duration_seconds_count", "server", "srv", NULL) == NTHREADS * EVENTS);
    assert_string_equal(find(&e, "llmgate_mcp_tool_duration_seconds_sum", "server", "srv", NULL)->raw, "500");
    assert_true(val(&e, "llmgate_metrics_overflow_total", "table", "requests", NULL) == 0);
    expo_free(&e);
}

/* ---- histograms ---- */

static void test_metrics_histogram_buckets(void **state)
{
    (void)state;
    int m = lg_metrics_model_id("gpt");
    /* on a bound goes into that bucket (le is inclusive) */
    const double obs[] = {0.0001, 0.0005, 0.0007, 0.003, 0.3, 1.0, 7.5, 200.0, -1.0 /* clamps to 0 */};
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        lg_metrics_request(1, LG_ROUTE_EMBEDDINGS, m, 0, 200, obs[i], obs[i] >= 0 ? obs[i] : -1, 0, 0, 0, 0);
    expo_t e;
    render_parse(&e);
    assert_int_equal(check_histograms(&e), 2);
#define B(le) val(&e, "llmgate_request_duration_seconds_bucket", "route", "embeddings", "le", le, NULL)
    assert_true(B("0.0005") == 3); /* -1 (as 0), 0.0001, 0.0005 */
    assert_true(B("0.001") == 4);
    assert_true(B("0.0025") == 4);
    assert_true(B("0.005") == 5);
    assert_true(B("0.25") == 5);
    assert_true(B("0.5") == 6);
    assert_true(B("1") == 7);
    assert_true(B("5") == 7);
    assert_true(B("10") == 8);
    assert_true(B("120") == 8);
    assert_true(B("+Inf") == 9);
#undef B
    assert_true(val(&e, "llmgate_request_duration_seconds_count", "route", "embeddings", NULL) == 9);
    /* exact decimal sum: 0.0001+0.0005+0.0007+0.003+0.3+1+7.5+200 */
    assert_string_equal(find(&e, "llmgate_request_duration_seconds_sum", "route", "embeddings", NULL)->raw, "208.8043");
    assert_true(val(&e, "llmgate_time_to_first_token_seconds_count", "model", "gpt", NULL) == 8);
    assert_null(find(&e, "llmgate_request_duration_seconds_count", "route", "chat", NULL)); /* untouched: absent */
    assert_string_equal(find_family(&e, "llmgate_request_duration_seconds")->type, "histogram");
    assert_null(find_family(&e, "llmgate_request_duration_seconds_bucket"));
    expo_free(&e);
}

/* ---- label escaping ---- */

static void esc_collector(lg_metrics_writer_t *w, void *arg)
{
    (void)arg;
    lg_metrics_write_gauge(w, "llmgate_test_gauge", "help with \\ backslash\nand newline", 1.5, "name", "q\"b\\s\nn", NULL);
}

static void test_metrics_label_escaping(void **state)
{
    (void)state;
    const char *weird = "org/model \"x\" \\ y\nz";
    int m = lg_metrics_model_id(weird);
    assert_true(m > 0);
    assert_int_equal(lg_metrics_model_lookup(weird), m);
    lg_metrics_request(0, LG_ROUTE_CHAT, m, 0, 200, 0.01, -1, 0, 0, 0, 0);
    lg_metrics_add_collector(esc_collector, NULL);

    size_t len;
    char *text = lg_metrics_render(&len);
    assert_non_null(strstr(text, "model=\"org/model \\\"x\\\" \\\\ y\\nz\""));
    assert_non_null(strstr(text, "name=\"q\\\"b\\\\s\\nn\"} 1.5\n"));
    assert_non_null(strstr(text, "# HELP llmgate_test_gauge help with \\\\ backslash\\nand newline\n"));
    expo_t e;
    expo_parse(&e, text, len);
    free(text);
    assert_true(val(&e, "llmgate_requests_total", "route", "chat", "model", weird, "provider", "other", "status", "200", NULL) ==
                1);
    assert_true(val(&e, "llmgate_test_gauge", "name", "q\"b\\s\nn", NULL) == 1.5);
    expo_free(&e);
}

/* ---- cost ---- */

static void test_metrics_cost_exact(void **state)
{
    (void)state;
    int m = lg_metrics_model_id("a"), p = lg_metrics_provider_id("b");
    for (unsigned s = 0; s < 3; s++)
        lg_metrics_request(s, LG_ROUTE_CHAT, m, p, 200, 0.1, 0.05, 1, 1, 1000000 /* $0.000001 */, 0);
    int m2 = lg_metrics_model_id("big");
    lg_metrics_request(0, LG_ROUTE_CHAT, m2, p, 200, 0.1, -1, 1, 1, INT64_C(1500000000000), 0); /* $1.5 */
    lg_metrics_request(1, LG_ROUTE_CHAT, m2, p, 200, 0.1, -1, 1, 1, INT64_C(3), 0);             /* 3 pico */
    lg_metrics_request(2, LG_ROUTE_CHAT, m2, p, 200, 0.1, -1, 0, 0, -5, 0);                     /* ignored */
    expo_t e;
    render_parse(&e);
    const sample_t *s = find(&e, "llmgate_cost_usd_total", "model", "a", "provider", "b", NULL);
    assert_non_null(s);
    assert_string_equal(s->raw, "0.000003");
    assert_true(s->value == 0.000003);
    assert_string_equal(find(&e, "llmgate_cost_usd_total", "model", "big", "provider", "b", NULL)->raw, "1.500000000003");
    assert_true(val(&e, "llmgate_tokens_total", "model", "a", "provider", "b", "direction", "prompt", NULL) == 3);
    expo_free(&e);
}

/* ---- registry ---- */

static void test_metrics_unknown_is_other(void **state)
{
    (void)state;
    int a = lg_metrics_model_id("alpha"), b = lg_metrics_model_id("beta");
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    /* reload: same names keep their ids, new ones are appended */
    assert_int_equal(lg_metrics_model_id("beta"), b);
    assert_int_equal(lg_metrics_model_id("gamma"), 3);
    assert_int_equal(lg_metrics_model_id("alpha"), a);
    assert_int_equal(lg_metrics_model_lookup("alpha"), a);
    assert_int_equal(lg_metrics_model_lookup("nope"), 0);
    assert_int_equal(lg_metrics_model_lookup(NULL), 0);
    assert_int_equal(lg_metrics_model_id(NULL), 0);
    assert_int_equal(lg_metrics_model_id(""), 0);
    assert_int_equal(lg_metrics_model_id("other"), 0);
    char longname[LG_METRICS_MAX_NAME_LEN + 2];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(lg_metrics_model_id(longname), 0);
    /* models and providers are separate spaces */
    assert_int_equal(lg_metrics_provider_lookup("alpha"), 0);
    assert_int_equal(lg_metrics_provider_id("alpha"), 1);

    lg_metrics_request(0, LG_ROUTE_CHAT, lg_metrics_model_lookup("nope"), 0, 200, 0.01, 0.01, 1, 1, 0, 0);
    lg_metrics_request(0, LG_ROUTE_CHAT, 9999, -3, 700, 0.01, -1, 0, 0, 0, 0); /* bad ids, odd status */
    lg_metrics_request(0, (lg_route_t)77, a, 0, 101, 0.01, -1, 0, 0, 0, 0);    /* bad route */
    lg_metrics_attempt(0, 0, 0, 0, (lg_errclass_t)99);
    lg_metrics_rejected(0, "weird");
    lg_metrics_rejected(0, NULL);
    lg_metrics_mcp_call(0, "unknown", "t", 1, 0.1);
    expo_t e;
    render_parse(&e);
    assert_true(val(&e, "llmgate_requests_total", "route", "chat", "model", "other", "provider", "other", "status", "200", NULL) ==
                1);
    assert_true(
        val(&e, "llmgate_requests_total", "route", "chat", "model", "other", "provider", "other", "status", "other", NULL) == 1);
    assert_true(
        val(&e, "llmgate_requests_total", "route", "other", "model", "alpha", "provider", "other", "status", "other", NULL) == 1);
    assert_true(val(&e, "llmgate_time_to_first_token_seconds_count", "model", "other", NULL) == 1);
    assert_true(val(&e, "llmgate_upstream_attempts_total", "provider", "other", "model", "other", "outcome", "other", NULL) == 1);
    assert_true(val(&e, "llmgate_rejections_total", "reason", "other", NULL) == 2);
    assert_true(val(&e, "llmgate_mcp_tool_calls_total", "server", "other", "tool", "other", "outcome", "ok", NULL) == 1);
    expo_free(&e);
}

static void test_metrics_registry_full(void **state)
{
    (void)state;
    char name[32];
    for (int i = 1; i <= LG_METRICS_MAX_MODELS; i++) {
        snprintf(name, sizeof(name), "model-%d", i);
        assert_int_equal(lg_metrics_model_id(name), i);
    }
    assert_int_equal(lg_metrics_model_id("one-too-many"), 0);
    assert_int_equal(lg_metrics_model_id("model-512"), 512); /* existing names still resolve */
    assert_int_equal(lg_metrics_model_lookup("model-77"), 77);
    lg_metrics_fallback(0, 512);
    expo_t e;
    render_parse(&e);
    assert_true(val(&e, "llmgate_metrics_overflow_total", "table", "model_names", NULL) == 1);
    assert_true(val(&e, "llmgate_fallbacks_total", "model", "model-512", NULL) == 1);
    expo_free(&e);
}

/* ---- sparse table overflow ---- */

static void test_metrics_table_overflow(void **state)
{
    (void)state;
    int m[4];
    char name[16];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        m[i] = lg_metrics_model_id(name);
    }
    /* 10 routes x 400 statuses x 4 models = 16000 distinct keys in one shard > 8192 slots */
    uint64_t events = 0;
    for (int r = 0; r < LG_ROUTE__COUNT; r++)
        for (int st = 200; st < 600; st++)
            for (int i = 0; i < 4; i++) {
                lg_metrics_request(2, (lg_route_t)r, m[i], 0, st, 0.001, -1, 0, 0, 0, 0);
                events++;
            }
    /* an existing key still counts in place after the table filled up */
    lg_metrics_request(2, LG_ROUTE_CHAT, m[0], 0, 200, 0.001, -1, 0, 0, 0, 0);
    events++;
    expo_t e;
    render_parse(&e);
    double ovf = val(&e, "llmgate_metrics_overflow_total", "table", "requests", NULL);
    assert_true(ovf > 0);
    assert_true(sum_all(&e, "llmgate_requests_total") == (double)events); /* nothing lost */
    assert_true(val(&e, "llmgate_requests_total", "route", "chat", "model", "m0", "provider", "other", "status", "200", NULL) == 2);
    assert_true(
        val(&e, "llmgate_requests_total", "route", "other", "model", "other", "provider", "other", "status", "other", NULL) == ovf);
    size_t series = 0;
    for (size_t i = 0; i < e.n; i++)
        series += strcmp(e.s[i].name, "llmgate_requests_total") == 0;
    assert_true(series <= LG_METRICS_REQ_SLOTS + 1);
    printf("overflow: %zu series, %.0f events folded into \"other\"\n", series, ovf);
    expo_free(&e);
}

/* ---- collectors ---- */

static void coll_a(lg_metrics_writer_t *w, void *arg)
{
    int *calls = arg;
    (*calls)++;
    lg_metrics_write_gauge(w, "llmgate_provider_in_flight", "In-flight upstream requests per provider.", 3, "provider", "p1", NULL);
    lg_metrics_write_gauge(w, "llmgate_endpoint_healthy", "1 if the endpoint is healthy.", 1, "provider", "p1", "model", "m", NULL);
    /* interleaved: must still be grouped under one header */
    lg_metrics_write_gauge(w, "llmgate_provider_in_flight", "ignored help", 0, "provider", "p2", NULL);
    lg_metrics_write_counter(w, "llmgate_ledger_dropped_total", "Ledger rows dropped.", 12345678901.0, NULL);
    lg_metrics_write_gauge(w, "llmgate_ledger_queue_depth", "Ledger rows waiting.", 0.25, NULL);
    /* dropped: type conflict, bad names */
    lg_metrics_write_counter(w, "llmgate_provider_in_flight", "x", 1, NULL);
    lg_metrics_write_gauge(w, "bad name", "x", 1, NULL);
    lg_metrics_write_gauge(w, "llmgate_x", "x", 1, "0bad", "v", NULL);
    lg_metrics_write_gauge(w, "llmgate_requests_total", "x", 1, NULL); /* built-in counter */
}

static void coll_b(lg_metrics_writer_t *w, void *arg)
{
    (void)arg;
    lg_metrics_write_gauge(w, "llmgate_provider_in_flight", "x", 7, "provider", "p3", NULL);
    lg_metrics_write_gauge(w, "llmgate_special", "x", NAN, "k", "nan", NULL);
    lg_metrics_write_gauge(w, "llmgate_special", "x", -INFINITY, "k", "ninf", NULL);
    lg_metrics_write_gauge(w, "llmgate_special", "x", 0.1, "k", "tenth", NULL);
}

static void test_metrics_collectors(void **state)
{
    (void)state;
    int calls = 0;
    lg_metrics_request(0, LG_ROUTE_CHAT, 0, 0, 200, 0.01, -1, 0, 0, 0, 0);
    lg_metrics_add_collector(coll_a, &calls);
    lg_metrics_add_collector(coll_b, NULL);
    expo_t e;
    render_parse(&e);
    assert_int_equal(calls, 1);
    const family_t *f = find_family(&e, "llmgate_provider_in_flight");
    assert_non_null(f);
    assert_string_equal(f->type, "gauge");
    assert_string_equal(f->help, "In-flight upstream requests per provider.");
    assert_true(val(&e, "llmgate_provider_in_flight", "provider", "p1", NULL) == 3);
    assert_true(val(&e, "llmgate_provider_in_flight", "provider", "p2", NULL) == 0);
    assert_true(val(&e, "llmgate_provider_in_flight", "provider", "p3", NULL) == 7);
    assert_true(val(&e, "llmgate_endpoint_healthy", "provider", "p1", "model", "m", NULL) == 1);
    assert_string_equal(find(&e, "llmgate_ledger_dropped_total", NULL)->raw, "12345678901");
    assert_string_equal(find_family(&e, "llmgate_ledger_dropped_total")->type, "counter");
    assert_string_equal(find(&e, "llmgate_ledger_queue_depth", NULL)->raw, "0.25");
    assert_string_equal(find(&e, "llmgate_special", "k", "nan", NULL)->raw, "NaN");
    assert_string_equal(find(&e, "llmgate_special", "k", "ninf", NULL)->raw, "-Inf");
    assert_string_equal(find(&e, "llmgate_special", "k", "tenth", NULL)->raw, "0.1");
    assert_null(find_family(&e, "llmgate_x"));
    assert_int_equal(sum_all(&e, "llmgate_provider_in_flight"), 10);
    assert_true(sum_all(&e, "llmgate_requests_total") == 1);
    assert_string_equal(find_family(&e, "llmgate_requests_total")->type, "counter");
    expo_free(&e);
}

/* ---- misc ---- */

static void test_metrics_errclass(void **state)
{
    (void)state;
    assert_int_equal(lg_err_class(LG_ETIMEOUT), LG_ERRCLASS_TIMEOUT);
    assert_int_equal(lg_err_class(LG_EUPSTREAM_RATELIMIT), LG_ERRCLASS_RATE_LIMITED);
    assert_int_equal(lg_err_class(LG_EOVERLOADED), LG_ERRCLASS_OVERLOADED);
    assert_int_equal(lg_err_class(LG_EUPSTREAM), LG_ERRCLASS_SERVER_ERROR);
    assert_int_equal(lg_err_class(LG_EBADRESPONSE), LG_ERRCLASS_BAD_RESPONSE);
    assert_int_equal(lg_err_class(LG_EUPSTREAM_REJECTED), LG_ERRCLASS_REJECTED);
    assert_int_equal(lg_err_class(LG_EUPSTREAM_AUTH), LG_ERRCLASS_AUTH);
    assert_int_equal(lg_err_class(LG_EQUEUEFULL), LG_ERRCLASS_QUEUE_FULL);
    assert_int_equal(lg_err_class(LG_ECANCELLED), LG_ERRCLASS_CANCELLED);
    assert_int_equal(lg_err_class(LG_EINTERNAL), LG_ERRCLASS_OTHER);
    assert_int_equal(lg_err_class(0), LG_ERRCLASS_OTHER);
    assert_string_equal(lg_metrics_errclass_name(LG_ERRCLASS_QUEUE_FULL), "queue_full");
    assert_string_equal(lg_metrics_errclass_name((lg_errclass_t)-1), "other");
    assert_string_equal(lg_metrics_route_name(LG_ROUTE_MESSAGES), "messages");
    assert_string_equal(lg_metrics_route_name(LG_ROUTE__COUNT), "other");
}

static void test_metrics_before_init(void **state)
{
    (void)state;
    lg_metrics_shutdown(); /* undo setup */
    lg_metrics_request(0, LG_ROUTE_CHAT, 0, 0, 200, 0.01, -1, 0, 0, 0, 0);
    lg_metrics_attempt(0, 0, 0, 1, LG_ERRCLASS_OTHER);
    lg_metrics_fallback(0, 0);
    lg_metrics_rejected(0, "rpm");
    lg_metrics_policy_error(0);
    lg_metrics_mcp_call(0, "a", "b", 1, 0.1);
    size_t len = 1;
    char *text = lg_metrics_render(&len);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    lg_metrics_init(1);
    lg_metrics_init(5); /* second init is a no-op */
    assert_int_equal(lg_metrics_shared_shard(), 1);
    lg_metrics_policy_error(42); /* out of range: shared shard */
    expo_t e;
    render_parse(&e);
    assert_true(val(&e, "llmgate_policy_errors_total", NULL) == 1);
    expo_free(&e);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_metrics_hot_path_cost(void **state)
{
    (void)state;
    int m[8], p[4];
    char name[16];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "model%d", i);
        m[i] = lg_metrics_model_id(name);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "prov%d", i);
        p[i] = lg_metrics_provider_id(name);
    }
    const int n = 1000000;
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        lg_metrics_request(0, LG_ROUTE_CHAT, m[i & 7], p[i & 3], (i & 15) == 0 ? 429 : 200, 0.2 + (i & 63) * 0.01,
                           0.05 + (i & 31) * 0.001, 100 + (i & 7), 50, 12345, i & 1);
    double t1 = now_s();
    for (int i = 0; i < n; i++)
        lg_metrics_attempt(0, p[i & 3], m[i & 7], (i & 7) != 0, LG_ERRCLASS_SERVER_ERROR);
    double t2 = now_s();
    for (int i = 0; i < n; i++)
        lg_metrics_request(3, LG_ROUTE_CHAT, m[i & 7], p[i & 3], 200, 0.2, 0.05, 100, 50, 12345, 0);
    double t3 = now_s();
    volatile int sink = 0;
    for (int i = 0; i < n / 10; i++)
        sink += lg_metrics_model_lookup("model5");
    double t4 = now_s();
    size_t len;
    char *text = lg_metrics_render(&len);
    double t5 = now_s();
    free(text);
    printf("lg_metrics_request: %.1f ns/op (worker shard), %.1f ns/op (shared shard); lg_metrics_attempt: %.1f ns/op; "
           "model_lookup: %.1f ns/op; render: %.2f ms (%zu bytes)\n",
           (t1 - t0) / n * 1e9, (t3 - t2) / n * 1e9, (t2 - t1) / n * 1e9, (t4 - t3) / (n / 10) * 1e9, (t5 - t4) * 1e3, len);
    assert_true(sink > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_concurrent_totals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_histogram_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_label_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_cost_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_unknown_is_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_registry_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_table_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_collectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_errclass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_before_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_hot_path_cost, setup, teardown),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}

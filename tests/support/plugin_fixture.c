/* SPDX-License-Identifier: MIT */
/*
 * Shared fixture runner for the provider-plugin tests; see plugin_fixture.h. Streams are checked the strictest way any
 * runner did before: every replay (whole, split in two at every offset, byte by byte, and the same with CRLF and
 * lone-CR line endings) must match the expected file and give exactly what the whole as-is replay gave.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "plugin/loader.h"
#include "upstream/sse.h"
#include "plugin_fixture.h"

static const struct pf_plugin *cfg;
static lg_plugin_t *plugin;
static const lg_provider_t *P;
static char fixture_dir[1024];

static const struct {
    const char *name;
    int err;
} err_names[] = {{"OK", 0},
#define LG__ERR_NAME(name, num, status, type, msg) {#name, LG_##name},
                 LG_ERRNO_MAP(LG__ERR_NAME)
#undef LG__ERR_NAME
};

const lg_provider_t *pf_setup(const struct pf_plugin *c)
{
    const char *src = getenv("LLMGATE_SOURCE_DIR");
    char path[1200], err[512];
    cfg = c;
    if (src == NULL || lg_plugin_resolve(c->name, NULL, path, sizeof(path)) != 0) {
        fprintf(stderr, "LLMGATE_SOURCE_DIR / LLMGATE_PLUGIN_DIR not set or %s.so missing (run through ctest)\n", c->name);
        return NULL;
    }
    if (lg_plugin_load(path, &plugin, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    P = plugin->provider;
    snprintf(fixture_dir, sizeof(fixture_dir), "%s/tests/data/providers/%s", src, c->name);
    return P;
}

void pf_teardown(void)
{
    lg_plugin_unload(plugin);
    plugin = NULL;
    P = NULL;
}

/* ---- small helpers ---- */

const char *pf_or_default(const char *s, const char *def)
{
    return s != NULL ? s : def;
}

int pf_err_from_name(const char *s)
{
    for (size_t i = 0; s != NULL && i < sizeof(err_names) / sizeof(err_names[0]); ++i)
        if (strcmp(err_names[i].name, s) == 0)
            return err_names[i].err;
    fail_msg("unknown error name %s", s != NULL ? s : "(null)");
    return 1;
}

const char *pf_err_name(int err)
{
    for (size_t i = 0; i < sizeof(err_names) / sizeof(err_names[0]); ++i)
        if (err_names[i].err == err)
            return err_names[i].name;
    return "?";
}

char *pf_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    buf[got] = '\0';
    *len = got;
    return buf;
}

char *pf_read_fixture(const char *name, size_t *len)
{
    char path[2400];
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    char *t = pf_read_file(path, len);
    if (t == NULL)
        fail_msg("cannot read %s", path);
    return t;
}

json_t *pf_load_json(const char *name)
{
    char path[2400];
    json_error_t e;
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    json_t *j = json_load_file(path, 0, &e);
    if (j == NULL)
        fail_msg("%s: %s (line %d)", path, e.text, e.line);
    return j;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

int pf_each_fixture(const char *suffix, void (*fn)(const char *file, const char *casename))
{
    struct dirent **list;
    int n = scandir(fixture_dir, &list, NULL, alphasort), count = 0;
    assert_true(n >= 0);
    for (int i = 0; i < n; ++i) {
        if (has_suffix(list[i]->d_name, suffix)) {
            char casename[256];
            snprintf(casename, sizeof(casename), "%.*s", (int)(strlen(list[i]->d_name) - strlen(suffix)), list[i]->d_name);
            print_message("case %s%s\n", casename, suffix);
            fn(list[i]->d_name, casename);
            ++count;
        }
        free(list[i]);
    }
    free(list);
    return count;
}

void pf_assert_json_equal(const char *label, json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("%s: JSON differs\n--- got\n%s\n--- want\n%s\n", label, g ? g : "(null)", w ? w : "(null)");
        free(g);
        free(w);
        fail_msg("%s: JSON mismatch", label);
    }
}

void pf_assert_message(const char *label, const char *msg, const char *want)
{
    if (want != NULL && strstr(msg, want) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", label, msg, want);
}

/* expected rc (absent = "OK") of member key of j */
static int want_rc(json_t *j, const char *key)
{
    return pf_err_from_name(pf_or_default(json_string_value(json_object_get(j, key)), "OK"));
}

void *pf_create(json_t *conf)
{
    json_t *def = NULL;
    if (conf == NULL) {
        conf = def = json_loads(cfg->default_conf, 0, NULL);
        assert_non_null(def);
    }
    void *inst = NULL;
    lg_errbuf_t e = {{0}};
    int rc = P->create(conf, &inst, &e);
    if (rc != 0)
        fail_msg("create failed: %s", e.msg);
    json_decref(def);
    return inst;
}

lg_api_kind_t pf_kind_from(json_t *j)
{
    const char *k = json_string_value(j);
    if (k == NULL || strcmp(k, "chat") == 0)
        return LG_API_CHAT;
    if (strcmp(k, "completions") == 0)
        return LG_API_COMPLETIONS;
    if (strcmp(k, "embeddings") == 0)
        return LG_API_EMBEDDINGS;
    fail_msg("bad kind %s", k);
    return LG_API_CHAT;
}

void pf_free_req(lg_http_req_t *r)
{
    const lg_host_api_t *h = lg_plugin_host_api();
    h->free_mem(r->method);
    h->free_mem(r->url);
    h->free_mem(r->body);
    for (size_t i = 0; i < r->num_headers; ++i) {
        h->free_mem(r->headers[i].name);
        h->free_mem(r->headers[i].value);
    }
}

const char *pf_find_header(const lg_http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->num_headers; ++i)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* The request body a response/stream fixture names ("body" or "request_body"), else {}; new reference. */
static json_t *fixture_request_body(json_t *want)
{
    json_t *b = json_object_get(want, "body");
    if (b == NULL)
        b = json_object_get(want, "request_body");
    return b != NULL ? json_incref(b) : json_object();
}

/* ---- request translation ---- */

void pf_run_request_case(const char *file, const char *casename)
{
    json_t *fx = pf_load_json(file);
    json_t *callj = json_object_get(fx, "call"), *expect = json_object_get(fx, "expect");
    void *inst = pf_create(json_object_get(fx, "conf"));
    if (cfg->prepare != NULL)
        cfg->prepare(inst, fx);
    lg_call_t call = {
        .struct_size = sizeof(lg_call_t),
        .kind = pf_kind_from(json_object_get(callj, "kind")),
        .stream = json_is_true(json_object_get(callj, "stream")),
        .body = json_object_get(fx, "body"),
        .upstream_model = pf_or_default(json_string_value(json_object_get(callj, "upstream_model")), cfg->request_model),
        .public_model = json_string_value(json_object_get(callj, "public_model")),
        .max_output_tokens = json_integer_value(json_object_get(callj, "max_output_tokens")),
        .request_id = "gen-test",
    };
    json_t *before = json_deep_copy(call.body);
    lg_http_req_t req;
    memset(&req, 0, sizeof(req));
    lg_errbuf_t e = {{0}};
    int rc = P->build_request(inst, &call, &req, &e);
    int want = want_rc(expect, "rc");
    if (rc != want)
        fail_msg("%s: build_request returned %s (%s), want %s", casename, pf_err_name(rc), e.msg, pf_err_name(want));
    if (rc != 0) {
        pf_assert_message(casename, e.msg, json_string_value(json_object_get(expect, "message")));
    } else {
        char up[300];
        snprintf(up, sizeof(up), "%s.upstream.json", casename);
        json_t *want_body = pf_load_json(up);
        json_t *got = json_loadb(req.body, req.body_len, 0, NULL);
        assert_non_null(got);
        pf_assert_json_equal(casename, got, want_body);
        json_decref(got);
        json_decref(want_body);
        assert_string_equal(req.method, "POST");
        const char *url = pf_or_default(json_string_value(json_object_get(expect, "url")), cfg->default_url);
        if (url != NULL)
            assert_string_equal(req.url, url);
        const char *hname;
        json_t *hval;
        json_object_foreach(json_object_get(expect, "headers"), hname, hval)
        {
            const char *v = pf_find_header(&req, hname);
            if (v == NULL || strcmp(v, json_string_value(hval)) != 0)
                fail_msg("%s: header %s is \"%s\", want \"%s\"", casename, hname, v ? v : "(absent)", json_string_value(hval));
        }
        size_t i;
        json_t *absent;
        json_array_foreach(json_object_get(expect, "absent_headers"), i, absent)
        {
            if (pf_find_header(&req, json_string_value(absent)) != NULL)
                fail_msg("%s: header %s must be absent", casename, json_string_value(absent));
        }
        /* header names are unique (case-insensitively) and values carry no CR/LF */
        for (size_t a = 0; a < req.num_headers; ++a) {
            assert_null(strpbrk(req.headers[a].value, "\r\n"));
            for (size_t b = a + 1; b < req.num_headers; ++b)
                assert_int_not_equal(strcasecmp(req.headers[a].name, req.headers[b].name), 0);
        }
        if (cfg->check_request != NULL)
            cfg->check_request(casename, &req);
    }
    pf_assert_json_equal(casename, (json_t *)call.body, before); /* the client body is never modified */
    pf_free_req(&req);
    json_decref(before);
    P->destroy(inst);
    json_decref(fx);
}

/* ---- create() ---- */

void pf_run_conf_case(const char *file, const char *casename)
{
    json_t *fx = pf_load_json(file);
    void *inst = (void *)(uintptr_t)1;
    lg_errbuf_t e = {{0}};
    int rc = P->create(json_object_get(fx, "conf"), &inst, &e);
    int want = pf_err_from_name(json_string_value(json_object_get(fx, "rc")));
    if (rc != want)
        fail_msg("%s: create returned %s (%s), want %s", casename, pf_err_name(rc), e.msg, pf_err_name(want));
    if (rc != 0) {
        assert_null(inst);
        pf_assert_message(casename, e.msg, json_string_value(json_object_get(fx, "message")));
    } else {
        P->destroy(inst);
    }
    json_decref(fx);
}

/* ---- non-streaming responses ---- */

void pf_run_response_case(const char *file, const char *casename)
{
    char exp[300];
    size_t len;
    char *body = pf_read_fixture(file, &len);
    snprintf(exp, sizeof(exp), "%s.expected.json", casename);
    json_t *want = pf_load_json(exp);
    void *inst = pf_create(NULL);
    json_t *req_body = fixture_request_body(want);
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = pf_kind_from(json_object_get(want, "kind")),
                      .body = req_body,
                      .upstream_model = cfg->upstream_model,
                      .public_model = cfg->public_model};
    json_t *status = json_object_get(want, "status");
    json_t *out = NULL;
    lg_errbuf_t e = {{0}};
    int rc = P->parse_response(inst, &call, status ? (int)json_integer_value(status) : 200, body, len, &out, &e);
    int wrc = want_rc(want, "rc");
    if (rc != wrc)
        fail_msg("%s: parse_response returned %s (%s), want %s", casename, pf_err_name(rc), e.msg, pf_err_name(wrc));
    if (rc == 0) {
        pf_assert_json_equal(casename, out, json_object_get(want, "out"));
        if (cfg->check_response != NULL)
            cfg->check_response(casename, out);
    } else {
        assert_null(out);
        pf_assert_message(casename, e.msg, json_string_value(json_object_get(want, "message")));
    }
    json_decref(out);
    json_decref(req_body);
    json_decref(want);
    P->destroy(inst);
    free(body);
}

/* ---- streams through the host SSE parser ---- */

static int on_event(void *ctx, const lg_sse_event_t *ev)
{
    struct pf_replay *r = ctx;
    lg_stream_out_t out;
    memset(&out, 0, sizeof(out));
    lg_errbuf_t e = {{0}};
    int rc = P->parse_stream_event(r->inst, r->ss, ev, &out, &e);
    assert_true(out.num_chunks <= LG_STREAM_MAX_CHUNKS);
    for (size_t i = 0; i < out.num_chunks; ++i) {
        assert_null(json_object_get(out.chunks[i], "usage"));
        json_array_append_new(r->chunks, out.chunks[i]);
    }
    if (out.usage != NULL) {
        json_decref(r->usage);
        r->usage = out.usage;
    }
    r->done |= out.done;
    if (rc != 0) {
        r->rc = rc;
        return 1;
    }
    if (out.error != 0) {
        r->error = out.error;
        r->error_status = out.error_status;
        snprintf(r->error_message, sizeof(r->error_message), "%s", out.error_message);
        snprintf(r->provider_code, sizeof(r->provider_code), "%s", out.provider_code);
        return 1; /* the host ends the attempt at an in-band error */
    }
    return 0;
}

void pf_replay_stream(void *inst, const lg_call_t *call, const char *text, size_t len, const size_t *cuts, size_t ncuts,
                      struct pf_replay *r)
{
    memset(r, 0, sizeof(*r));
    r->inst = inst;
    r->chunks = json_array();
    assert_int_equal(P->stream_begin(inst, call, &r->ss), 0);
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 1 << 20, on_event, NULL, r);
    size_t pos = 0;
    int stopped = 0;
    for (size_t i = 0; i <= ncuts && !stopped; ++i) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (end > pos)
            stopped = lg_sse_parser_feed(&p, text + pos, end - pos) != 0;
        pos = end > pos ? end : pos;
    }
    lg_sse_parser_finish(&p);
    lg_sse_parser_dispose(&p);
    if (r->error == 0 && r->rc == 0) {
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t e = {{0}};
        r->end_rc = P->stream_end(inst, r->ss, &out, &e);
        snprintf(r->end_message, sizeof(r->end_message), "%s", e.msg);
        assert_int_equal(out.num_chunks, 0);
        assert_null(out.usage);
    }
    P->stream_free(inst, r->ss);
}

void pf_replay_free(struct pf_replay *r)
{
    json_decref(r->chunks);
    json_decref(r->usage);
}

static void check_replay(const char *label, const struct pf_replay *r, json_t *want)
{
    assert_int_equal(r->rc, 0);
    pf_assert_json_equal(label, r->chunks, json_object_get(want, "chunks"));
    json_t *wu = json_object_get(want, "usage");
    if (wu == NULL || json_is_null(wu)) {
        if (r->usage != NULL)
            pf_assert_json_equal(label, r->usage, json_null());
    } else {
        pf_assert_json_equal(label, r->usage, wu);
    }
    if (r->done != json_is_true(json_object_get(want, "done")))
        fail_msg("%s: done %d", label, r->done);
    json_t *we = json_object_get(want, "error");
    if (we == NULL || json_is_null(we)) {
        if (r->error != 0)
            fail_msg("%s: unexpected in-band error %s (%s)", label, pf_err_name(r->error), r->error_message);
        int wrc = want_rc(want, "end");
        if (r->end_rc != wrc)
            fail_msg("%s: stream_end returned %s (%s), want %s", label, pf_err_name(r->end_rc), r->end_message, pf_err_name(wrc));
        pf_assert_message(label, r->end_message, json_string_value(json_object_get(want, "end_message")));
    } else {
        int werr = pf_err_from_name(json_string_value(json_object_get(we, "err")));
        if (r->error != werr)
            fail_msg("%s: in-band error %s, want %s", label, pf_err_name(r->error), pf_err_name(werr));
        assert_int_equal(r->error_status, json_integer_value(json_object_get(we, "status")));
        assert_string_equal(r->provider_code, pf_or_default(json_string_value(json_object_get(we, "provider_code")), ""));
        const char *m = json_string_value(json_object_get(we, "message"));
        if (m != NULL)
            assert_string_equal(r->error_message, m);
        /* an in-band error never comes with a finish_reason */
        size_t i, j;
        json_t *c, *ch;
        json_array_foreach(r->chunks, i, c)
        {
            json_array_foreach(json_object_get(c, "choices"), j, ch)
            {
                assert_true(json_is_null(json_object_get(ch, "finish_reason")));
            }
        }
    }
}

static void assert_same_replay(const char *label, const struct pf_replay *a, const struct pf_replay *b)
{
    pf_assert_json_equal(label, a->chunks, b->chunks);
    if (a->usage == NULL || b->usage == NULL)
        assert_true(a->usage == NULL && b->usage == NULL);
    else
        pf_assert_json_equal(label, a->usage, b->usage);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->error, b->error);
    assert_int_equal(a->error_status, b->error_status);
    assert_string_equal(a->error_message, b->error_message);
    assert_string_equal(a->provider_code, b->provider_code);
    assert_int_equal(a->end_rc, b->end_rc);
}

/* Rewrites every LF (not already preceded by CR) as `eol`. */
static char *with_line_endings(const char *text, size_t len, const char *eol, size_t *outlen)
{
    char *o = malloc(len * 2 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) {
            memcpy(o + n, eol, strlen(eol));
            n += strlen(eol);
        } else {
            o[n++] = text[i];
        }
    }
    o[n] = '\0';
    *outlen = n;
    return o;
}

/* One replay of text cut at cuts[], checked against want and against the reference replay (NULL = none). */
static void replay_and_check(const char *casename, const char *variant, size_t split, void *inst, const lg_call_t *call,
                             const char *text, size_t len, const size_t *cuts, size_t ncuts, json_t *want,
                             const struct pf_replay *ref, struct pf_replay *keep)
{
    char label[400];
    snprintf(label, sizeof(label), "%s [%s, split %zu]", casename, variant, split);
    struct pf_replay r;
    pf_replay_stream(inst, call, text, len, cuts, ncuts, &r);
    check_replay(label, &r, want);
    if (ref != NULL)
        assert_same_replay(label, ref, &r);
    if (keep != NULL)
        *keep = r;
    else
        pf_replay_free(&r);
}

static void replay_all_ways(const char *casename, const char *variant, void *inst, const lg_call_t *call, const char *text,
                            size_t len, json_t *want, const struct pf_replay *ref)
{
    replay_and_check(casename, variant, 0, inst, call, text, len, NULL, 0, want, ref, NULL);
    for (size_t k = 1; k < len; ++k)
        replay_and_check(casename, variant, k, inst, call, text, len, &k, 1, want, ref, NULL);
    size_t *every = malloc((len + 1) * sizeof(size_t));
    for (size_t k = 0; k < len; ++k)
        every[k] = k + 1;
    replay_and_check(casename, variant, (size_t)-1, inst, call, text, len, every, len, want, ref, NULL);
    free(every);
}

void pf_run_sse_case(const char *file, const char *casename)
{
    char exp[300];
    size_t len;
    char *text = pf_read_fixture(file, &len);
    snprintf(exp, sizeof(exp), "%s.expected.json", casename);
    json_t *want = pf_load_json(exp);
    void *inst = pf_create(NULL);
    json_t *body = fixture_request_body(want);
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = pf_kind_from(json_object_get(want, "kind")),
                      .stream = 1,
                      .body = body,
                      .upstream_model = cfg->upstream_model,
                      .public_model = cfg->public_model};

    struct pf_replay whole;
    replay_and_check(casename, "whole", 0, inst, &call, text, len, NULL, 0, want, NULL, &whole);
    replay_all_ways(casename, "as-is", inst, &call, text, len, want, &whole);
    if (memchr(text, '\r', len) == NULL) {
        size_t n;
        char *crlf = with_line_endings(text, len, "\r\n", &n);
        replay_all_ways(casename, "crlf", inst, &call, crlf, n, want, &whole);
        free(crlf);
        char *cr = with_line_endings(text, len, "\r", &n);
        replay_all_ways(casename, "cr", inst, &call, cr, n, want, &whole);
        free(cr);
    }
    pf_replay_free(&whole);
    P->destroy(inst);
    json_decref(body);
    json_decref(want);
    free(text);
}

/* ---- classify_error ---- */

void pf_check_classify_table(size_t min_cases)
{
    json_t *cases = pf_load_json("classify_error.cases.json");
    void *inst = pf_create(NULL);
    size_t i;
    json_t *c;
    assert_true(json_array_size(cases) >= min_cases);
    json_array_foreach(cases, i, c)
    {
        const char *body = json_string_value(json_object_get(c, "body"));
        const char *name = json_string_value(json_object_get(c, "name"));
        int status = (int)json_integer_value(json_object_get(c, "status"));
        lg_upstream_error_t u;
        memset(&u, 0x5a, sizeof(u));
        P->classify_error(inst, status, body, body != NULL ? strlen(body) : 0, &u);
        print_message("classify %s: %s retryable=%d code=%s msg=%s\n", name, pf_err_name(u.err), u.retryable, u.provider_code,
                      u.message);
        int want = pf_err_from_name(json_string_value(json_object_get(c, "err")));
        if (u.err != want)
            fail_msg("classify %s: got %s, want %s", name, pf_err_name(u.err), pf_err_name(want));
        if (u.retryable != json_is_true(json_object_get(c, "retryable")))
            fail_msg("classify %s: retryable %d", name, u.retryable);
        json_t *ws = json_object_get(c, "want_status");
        assert_int_equal(u.status, ws != NULL ? (int)json_integer_value(ws) : status);
        const char *pc = json_string_value(json_object_get(c, "provider_code"));
        if (pc != NULL)
            assert_string_equal(u.provider_code, pc);
        const char *m = json_string_value(json_object_get(c, "message"));
        if (m != NULL)
            assert_string_equal(u.message, m);
        const char *nm = json_string_value(json_object_get(c, "message_lacks"));
        if (nm != NULL && strstr(u.message, nm) != NULL)
            fail_msg("classify %s: message leaks \"%s\": %s", name, nm, u.message);
        json_t *ra = json_object_get(c, "retry_after_ms");
        assert_int_equal(u.retry_after_ms, ra != NULL ? json_integer_value(ra) : 0);
        assert_true(memchr(u.message, '\0', sizeof(u.message)) != NULL);
        assert_true(memchr(u.provider_code, '\0', sizeof(u.provider_code)) != NULL);
    }
    P->destroy(inst);
    json_decref(cases);
}

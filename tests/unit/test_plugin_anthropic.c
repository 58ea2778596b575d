/* SPDX-License-Identifier: MIT */
/*
 * Fixture runner for the `anthropic` plugin, driving the real anthropic.so through the loader. Fixtures were written
 * from Anthropic's public Messages API documentation (request/response shapes, streaming event reference, error
 * types) and providers.md §1/§4. tests/data/providers/anthropic/ holds:
 *   <case>.request.json  {conf?, call{kind,stream,upstream_model,max_output_tokens}, body,
 *                         expect{rc, url, headers, absent_headers, message}} → <case>.upstream.json (exact body)
 *   <case>.response.json (raw upstream body) → <case>.expected.json {status?, body?, rc, out | message}
 *   stream_<case>.sse    (raw upstream stream) → stream_<case>.expected.json
 *                        {body?, chunks, usage, done, error{err,status,provider_code,message} | null, end, end_message}
 *   <case>.conf.json     {conf, rc, message}: create() results
 *   classify_error.cases.json  [{name, status, body, err, retryable, want_status?, provider_code?, message?,
 *                                message_lacks?}]
 * Streams go through the host's SSE parser (src/upstream/sse.c) as one piece, byte by byte, split in two at every
 * offset, and again with CRLF and lone-CR line endings: every variant must give exactly the expected chunks.
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

static lg_plugin_t *plugin;
static const lg_provider_t *P;
static char fixture_dir[1024];

#define TEST_KEY "sk-ant-api03-test-0123456789"

static const struct {
    const char *name;
    int err;
} err_names[] = {{"OK", 0},
#define LG__ERR_NAME(name, num, status, type, msg) {#name, LG_##name},
                 LG_ERRNO_MAP(LG__ERR_NAME)
#undef LG__ERR_NAME
};

static const char *or_default(const char *s, const char *def)
{
    return s != NULL ? s : def;
}

static int err_from_name(const char *s)
{
    for (size_t i = 0; s != NULL && i < sizeof(err_names) / sizeof(err_names[0]); ++i)
        if (strcmp(err_names[i].name, s) == 0)
            return err_names[i].err;
    fail_msg("unknown error name %s", s != NULL ? s : "(null)");
    return 1;
}

static const char *err_name(int err)
{
    for (size_t i = 0; i < sizeof(err_names) / sizeof(err_names[0]); ++i)
        if (err_names[i].err == err)
            return err_names[i].name;
    return "?";
}

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("LLMGATE_SOURCE_DIR");
    char path[1200], err[512];
    if (src == NULL || lg_plugin_resolve("anthropic", NULL, path, sizeof(path)) != 0) {
        fprintf(stderr, "LLMGATE_SOURCE_DIR / LLMGATE_PLUGIN_DIR not set or anthropic.so missing (run through ctest)\n");
        return -1;
    }
    if (lg_plugin_load(path, &plugin, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    P = plugin->provider;
    snprintf(fixture_dir, sizeof(fixture_dir), "%s/tests/data/providers/anthropic", src);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lg_plugin_unload(plugin);
    return 0;
}

/* ---- fixture helpers ---- */

static char *read_file(const char *path, size_t *len)
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

static json_t *load_json(const char *name)
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

/* Calls fn for each fixture file ending in suffix (sorted); returns the count. */
static int each_fixture(const char *suffix, void (*fn)(const char *file, const char *casename))
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

static void assert_json_equal(const char *casename, json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("%s: JSON differs\n--- got\n%s\n--- want\n%s\n", casename, g ? g : "(null)", w ? w : "(null)");
        free(g);
        free(w);
        fail_msg("%s: JSON mismatch", casename);
    }
}

static void *create_instance(json_t *conf)
{
    json_t *def = NULL;
    if (conf == NULL)
        conf = def = json_pack("{ss ss}", "name", "anthropic", "api_key", TEST_KEY);
    void *inst = NULL;
    lg_errbuf_t e = {{0}};
    int rc = P->create(conf, &inst, &e);
    if (rc != 0)
        fail_msg("create failed: %s", e.msg);
    json_decref(def);
    return inst;
}

static lg_api_kind_t kind_from(json_t *j)
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

static void free_req(lg_http_req_t *r)
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

static const char *find_header(const lg_http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->num_headers; ++i)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* ---- provider table ---- */

static void test_anthropic_table(void **state)
{
    (void)state;
    assert_string_equal(P->name, "anthropic");
    assert_int_equal(P->capabilities, LG_CAP_CHAT | LG_CAP_STREAM);
    assert_null(P->local_respond);
}

/* ---- request translation ---- */

static void run_request_case(const char *file, const char *casename)
{
    json_t *fx = load_json(file);
    json_t *callj = json_object_get(fx, "call"), *body = json_object_get(fx, "body"), *expect = json_object_get(fx, "expect");
    json_t *before = json_deep_copy(body);
    void *inst = create_instance(json_object_get(fx, "conf"));

    lg_call_t call = {
        .struct_size = sizeof(lg_call_t),
        .kind = kind_from(json_object_get(callj, "kind")),
        .stream = json_is_true(json_object_get(callj, "stream")),
        .body = body,
        .upstream_model = json_string_value(json_object_get(callj, "upstream_model")),
        .public_model = json_string_value(json_object_get(callj, "public_model")),
        .max_output_tokens = json_integer_value(json_object_get(callj, "max_output_tokens")),
        .request_id = "gen-test",
    };
    lg_http_req_t req;
    memset(&req, 0, sizeof(req));
    lg_errbuf_t e = {{0}};
    int rc = P->build_request(inst, &call, &req, &e);
    int want_rc = err_from_name(or_default(json_string_value(json_object_get(expect, "rc")), "OK"));
    if (rc != want_rc)
        fail_msg("%s: build_request returned %s (%s), want %s", casename, err_name(rc), e.msg, err_name(want_rc));
    if (rc != 0) {
        const char *m = json_string_value(json_object_get(expect, "message"));
        if (m != NULL && strstr(e.msg, m) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", casename, e.msg, m);
    } else {
        char up[300];
        snprintf(up, sizeof(up), "%s.upstream.json", casename);
        json_t *want = load_json(up);
        json_error_t je;
        json_t *got = json_loadb(req.body, req.body_len, 0, &je);
        assert_non_null(got);
        assert_json_equal(casename, got, want);
        json_decref(got);
        json_decref(want);
        assert_string_equal(req.method, "POST");
        assert_string_equal(req.url,
                            or_default(json_string_value(json_object_get(expect, "url")), "https://api.anthropic.com/v1/messages"));
        const char *hname;
        json_t *hval;
        json_object_foreach(json_object_get(expect, "headers"), hname, hval)
        {
            const char *v = find_header(&req, hname);
            if (v == NULL || strcmp(v, json_string_value(hval)) != 0)
                fail_msg("%s: header %s is \"%s\", want \"%s\"", casename, hname, v ? v : "(absent)", json_string_value(hval));
        }
        size_t i;
        json_t *absent;
        json_array_foreach(json_object_get(expect, "absent_headers"), i, absent)
        {
            if (find_header(&req, json_string_value(absent)) != NULL)
                fail_msg("%s: header %s must be absent", casename, json_string_value(absent));
        }
        /* never an OpenAI auth header; names unique (case-insensitively); values carry no CR/LF */
        assert_null(find_header(&req, "Authorization"));
        for (size_t a = 0; a < req.num_headers; ++a) {
            assert_null(strpbrk(req.headers[a].value, "\r\n"));
            for (size_t b = a + 1; b < req.num_headers; ++b)
                assert_int_not_equal(strcasecmp(req.headers[a].name, req.headers[b].name), 0);
        }
    }
    /* the client body is never modified */
    assert_json_equal(casename, body, before);
    free_req(&req);
    P->destroy(inst);
    json_decref(before);
    json_decref(fx);
}

static void test_anthropic_request_fixtures(void **state)
{
    (void)state;
    assert_true(each_fixture(".request.json", run_request_case) >= 25);
}

/* ---- create() ---- */

static void run_conf_case(const char *file, const char *casename)
{
    json_t *fx = load_json(file);
    void *inst = (void *)(uintptr_t)1;
    lg_errbuf_t e = {{0}};
    int rc = P->create(json_object_get(fx, "conf"), &inst, &e);
    int want = err_from_name(json_string_value(json_object_get(fx, "rc")));
    if (rc != want)
        fail_msg("%s: create returned %s (%s), want %s", casename, err_name(rc), e.msg, err_name(want));
    if (rc != 0) {
        assert_null(inst);
        const char *m = json_string_value(json_object_get(fx, "message"));
        if (m != NULL && strstr(e.msg, m) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", casename, e.msg, m);
    } else {
        P->destroy(inst);
    }
    json_decref(fx);
}

static void test_anthropic_conf_fixtures(void **state)
{
    (void)state;
    assert_true(each_fixture(".conf.json", run_conf_case) >= 5);
}

/* ---- non-streaming responses ---- */

static void run_response_case(const char *file, const char *casename)
{
    char path[2400], exp[300];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, file);
    char *body = read_file(path, &len);
    assert_non_null(body);
    snprintf(exp, sizeof(exp), "%s.expected.json", casename);
    json_t *want = load_json(exp);
    void *inst = create_instance(NULL);
    json_t *req_body = json_object_get(want, "body") != NULL ? json_incref(json_object_get(want, "body")) : json_object();
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = LG_API_CHAT,
                      .body = req_body,
                      .upstream_model = "claude-sonnet-4-20250514",
                      .public_model = "anthropic/claude-sonnet-4"};
    json_t *status = json_object_get(want, "status");
    json_t *out = NULL;
    lg_errbuf_t e = {{0}};
    int rc = P->parse_response(inst, &call, status ? (int)json_integer_value(status) : 200, body, len, &out, &e);
    int want_rc = err_from_name(or_default(json_string_value(json_object_get(want, "rc")), "OK"));
    if (rc != want_rc)
        fail_msg("%s: parse_response returned %s (%s), want %s", casename, err_name(rc), e.msg, err_name(want_rc));
    if (rc == 0) {
        assert_json_equal(casename, out, json_object_get(want, "out"));
    } else {
        assert_null(out);
        const char *m = json_string_value(json_object_get(want, "message"));
        if (m != NULL && strstr(e.msg, m) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", casename, e.msg, m);
    }
    json_decref(out);
    json_decref(req_body);
    json_decref(want);
    P->destroy(inst);
    free(body);
}

static void test_anthropic_response_fixtures(void **state)
{
    (void)state;
    assert_true(each_fixture(".response.json", run_response_case) >= 8);
}

/* ---- streams, through the host SSE parser ---- */

struct replay {
    void *inst, *ss;
    json_t *chunks, *usage;
    int done, error, error_status, rc;
    char error_message[256], provider_code[64];
};

static int on_event(void *ctx, const lg_sse_event_t *ev)
{
    struct replay *r = ctx;
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

/* Replays text cut at the given offsets (pieces[0..n-1] are the lengths; the rest is one last piece). */
static void check_replay(const char *casename, const char *variant, size_t split, void *inst, json_t *body, const char *text,
                         size_t len, const size_t *cuts, size_t ncuts, json_t *want)
{
    struct replay r;
    memset(&r, 0, sizeof(r));
    r.inst = inst;
    r.chunks = json_array();
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = LG_API_CHAT,
                      .stream = 1,
                      .body = body,
                      .upstream_model = "claude-sonnet-4-20250514",
                      .public_model = "anthropic/claude-sonnet-4"};
    assert_int_equal(P->stream_begin(inst, &call, &r.ss), 0);
    lg_sse_parser_t sp;
    lg_sse_parser_init(&sp, 1 << 20, on_event, NULL, &r);
    size_t pos = 0;
    for (size_t i = 0; i <= ncuts; ++i) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (end > pos && lg_sse_parser_feed(&sp, text + pos, end - pos) != 0)
            break;
        pos = end > pos ? end : pos;
    }
    lg_sse_parser_finish(&sp);
    lg_sse_parser_dispose(&sp);

    char label[400];
    snprintf(label, sizeof(label), "%s [%s, split %zu]", casename, variant, split);
    assert_int_equal(r.rc, 0);
    assert_json_equal(label, r.chunks, json_object_get(want, "chunks"));
    json_t *wu = json_object_get(want, "usage");
    if (wu == NULL || json_is_null(wu)) {
        if (r.usage != NULL)
            assert_json_equal(label, r.usage, json_null());
    } else {
        assert_json_equal(label, r.usage, wu);
    }
    if (r.done != json_is_true(json_object_get(want, "done")))
        fail_msg("%s: done %d", label, r.done);
    json_t *we = json_object_get(want, "error");
    if (we == NULL || json_is_null(we)) {
        if (r.error != 0)
            fail_msg("%s: unexpected in-band error %s (%s)", label, err_name(r.error), r.error_message);
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t e = {{0}};
        int rc = P->stream_end(inst, r.ss, &out, &e);
        int want_rc = err_from_name(or_default(json_string_value(json_object_get(want, "end")), "OK"));
        if (rc != want_rc)
            fail_msg("%s: stream_end returned %s (%s), want %s", label, err_name(rc), e.msg, err_name(want_rc));
        const char *m = json_string_value(json_object_get(want, "end_message"));
        if (m != NULL && strstr(e.msg, m) == NULL)
            fail_msg("%s: stream_end message \"%s\" lacks \"%s\"", label, e.msg, m);
        assert_int_equal(out.num_chunks, 0);
        assert_null(out.usage);
    } else {
        int werr = err_from_name(json_string_value(json_object_get(we, "err")));
        if (r.error != werr)
            fail_msg("%s: in-band error %s, want %s", label, err_name(r.error), err_name(werr));
        assert_int_equal(r.error_status, json_integer_value(json_object_get(we, "status")));
        assert_string_equal(r.provider_code, or_default(json_string_value(json_object_get(we, "provider_code")), ""));
        const char *m = json_string_value(json_object_get(we, "message"));
        if (m != NULL)
            assert_string_equal(r.error_message, m);
    }
    P->stream_free(inst, r.ss);
    json_decref(r.chunks);
    json_decref(r.usage);
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

static void replay_all_ways(const char *casename, const char *variant, void *inst, json_t *body, const char *text, size_t len,
                            json_t *want)
{
    check_replay(casename, variant, 0, inst, body, text, len, NULL, 0, want);
    for (size_t k = 1; k < len; ++k)
        check_replay(casename, variant, k, inst, body, text, len, &k, 1, want);
    size_t *every = malloc((len + 1) * sizeof(size_t));
    for (size_t k = 0; k < len; ++k)
        every[k] = k + 1;
    check_replay(casename, variant, (size_t)-1, inst, body, text, len, every, len, want);
    free(every);
}

static void run_sse_case(const char *file, const char *casename)
{
    char path[2400], exp[300];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, file);
    char *text = read_file(path, &len);
    assert_non_null(text);
    snprintf(exp, sizeof(exp), "%s.expected.json", casename);
    json_t *want = load_json(exp);
    void *inst = create_instance(NULL);
    json_t *body = json_object_get(want, "body") != NULL ? json_incref(json_object_get(want, "body")) : json_object();

    replay_all_ways(casename, "as-is", inst, body, text, len, want);
    if (memchr(text, '\r', len) == NULL) {
        size_t n;
        char *crlf = with_line_endings(text, len, "\r\n", &n);
        replay_all_ways(casename, "crlf", inst, body, crlf, n, want);
        free(crlf);
        char *cr = with_line_endings(text, len, "\r", &n);
        replay_all_ways(casename, "cr", inst, body, cr, n, want);
        free(cr);
    }
    P->destroy(inst);
    json_decref(body);
    json_decref(want);
    free(text);
}

static void test_anthropic_stream_fixtures(void **state)
{
    (void)state;
    assert_true(each_fixture(".sse", run_sse_case) >= 12);
}

/* ---- classify_error ---- */

static void test_anthropic_classify_error_table(void **state)
{
    (void)state;
    json_t *cases = load_json("classify_error.cases.json");
    void *inst = create_instance(NULL);
    size_t i;
    json_t *c;
    assert_true(json_array_size(cases) >= 15);
    json_array_foreach(cases, i, c)
    {
        const char *body = json_string_value(json_object_get(c, "body"));
        const char *name = json_string_value(json_object_get(c, "name"));
        int status = (int)json_integer_value(json_object_get(c, "status"));
        lg_upstream_error_t u;
        memset(&u, 0x5a, sizeof(u));
        P->classify_error(inst, status, body, body != NULL ? strlen(body) : 0, &u);
        print_message("classify %s: %s retryable=%d code=%s msg=%s\n", name, err_name(u.err), u.retryable, u.provider_code,
                      u.message);
        int want = err_from_name(json_string_value(json_object_get(c, "err")));
        if (u.err != want)
            fail_msg("classify %s: got %s, want %s", name, err_name(u.err), err_name(want));
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
        assert_int_equal(u.retry_after_ms, 0);
        assert_true(memchr(u.message, '\0', sizeof(u.message)) != NULL);
        assert_true(memchr(u.provider_code, '\0', sizeof(u.provider_code)) != NULL);
    }
    P->destroy(inst);
    json_decref(cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_table),           cmocka_unit_test(test_anthropic_request_fixtures),
        cmocka_unit_test(test_anthropic_conf_fixtures),   cmocka_unit_test(test_anthropic_response_fixtures),
        cmocka_unit_test(test_anthropic_stream_fixtures), cmocka_unit_test(test_anthropic_classify_error_table),
    };
    return cmocka_run_group_tests_name("plugin_anthropic", tests, setup, teardown);
}

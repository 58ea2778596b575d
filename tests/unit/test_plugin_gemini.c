/* SPDX-License-Identifier: MIT */
/*
 * Fixture runner for the `gemini` plugin, driving the real gemini.so through the loader. tests/data/providers/gemini/:
 *   <case>.request.json  {conf?, call, body, prime?, expect{rc, url, headers, absent_headers, message}}
 *                        → <case>.upstream.json (the Gemini request body). `prime` is a list of {"response": <Gemini
 *                        body>} or {"sse": "<file>.sse"} fed through the same instance first (fills its
 *                        thought-signature cache, as turn 1 of a conversation does).
 *   <case>.response.json (raw upstream body) → <case>.expected.json {kind, status, request_body?, rc, out | message}
 *   stream_<case>.sse    (raw upstream stream) → stream_<case>.expected.json {chunks, usage, done, error, end}.
 *                        Replayed through the host's SSE parser (src/upstream/sse.c): whole, split in two at every
 *                        byte offset, and one byte at a time; every replay must give the same result.
 *   <case>.conf.json     {conf, rc, message}: create() outcomes
 *   classify_error.cases.json  [{name, status, body, err, retryable, want_status?, provider_code?, message?, ...}]
 * Plus hand-written tests for the thoughtSignature round trip (§2.1) and the bounded signature cache.
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

#define TEST_KEY "AIzaSyTest-0123456789abcdefghijklmnopq"

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
    if (src == NULL || lg_plugin_resolve("gemini", NULL, path, sizeof(path)) != 0) {
        fprintf(stderr, "LLMGATE_SOURCE_DIR / LLMGATE_PLUGIN_DIR not set or gemini.so missing (run through ctest)\n");
        return -1;
    }
    if (lg_plugin_load(path, &plugin, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    P = plugin->provider;
    snprintf(fixture_dir, sizeof(fixture_dir), "%s/tests/data/providers/gemini", src);
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

static char *read_fixture(const char *name, size_t *len)
{
    char path[2400];
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    char *t = read_file(path, len);
    if (t == NULL)
        fail_msg("cannot read %s", path);
    return t;
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
        conf = def = json_pack("{ss ss}", "name", "gemini", "api_key", TEST_KEY);
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
    memset(r, 0, sizeof(*r));
}

static const char *find_header(const lg_http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->num_headers; ++i)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* ---- streams through the host SSE parser ---- */

struct replay {
    void *inst, *ss;
    json_t *chunks, *usage;
    int done, error, error_status, end_rc;
    char error_message[256], provider_code[64], end_message[256];
};

static int on_event(void *ctx, const lg_sse_event_t *ev)
{
    struct replay *r = ctx;
    lg_stream_out_t out;
    memset(&out, 0, sizeof(out));
    lg_errbuf_t e = {{0}};
    assert_int_equal(P->parse_stream_event(r->inst, r->ss, ev, &out, &e), 0);
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
    if (out.error != 0) {
        r->error = out.error;
        r->error_status = out.error_status;
        snprintf(r->error_message, sizeof(r->error_message), "%s", out.error_message);
        snprintf(r->provider_code, sizeof(r->provider_code), "%s", out.provider_code);
        return 1; /* the host ends the stream at an in-band error */
    }
    return 0;
}

/* Feeds text in pieces ending at cuts[] (ascending, < len) and then the rest; stream_end at EOF unless an error. */
static void replay_stream(void *inst, const lg_call_t *call, const char *text, size_t len, const size_t *cuts, size_t ncuts,
                          struct replay *r)
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
        pos = end;
    }
    lg_sse_parser_finish(&p);
    lg_sse_parser_dispose(&p);
    if (r->error == 0) {
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t e = {{0}};
        r->end_rc = P->stream_end(inst, r->ss, &out, &e);
        snprintf(r->end_message, sizeof(r->end_message), "%s", e.msg);
        assert_int_equal(out.num_chunks, 0);
    }
    P->stream_free(inst, r->ss);
}

static void replay_free(struct replay *r)
{
    json_decref(r->chunks);
    json_decref(r->usage);
}

static void assert_same_replay(const char *casename, struct replay *a, struct replay *b)
{
    assert_json_equal(casename, a->chunks, b->chunks);
    if (a->usage == NULL || b->usage == NULL)
        assert_true(a->usage == NULL && b->usage == NULL);
    else
        assert_json_equal(casename, a->usage, b->usage);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->error, b->error);
    assert_int_equal(a->error_status, b->error_status);
    assert_string_equal(a->error_message, b->error_message);
    assert_int_equal(a->end_rc, b->end_rc);
}

static lg_call_t stream_call(json_t *body)
{
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = LG_API_CHAT,
                      .stream = 1,
                      .body = body,
                      .upstream_model = "gemini-2.5-flash",
                      .public_model = "google/gemini-2.5-flash"};
    return call;
}

/* ---- request translation ---- */

static void prime_instance(void *inst, json_t *prime)
{
    size_t i;
    json_t *p;
    json_t *req_body = json_object();
    json_array_foreach(prime, i, p)
    {
        json_t *resp = json_object_get(p, "response");
        const char *sse = json_string_value(json_object_get(p, "sse"));
        if (resp != NULL) {
            char *text = json_dumps(resp, JSON_COMPACT);
            lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req_body, .upstream_model = "gemini-3-pro"};
            json_t *out = NULL;
            lg_errbuf_t e = {{0}};
            assert_int_equal(P->parse_response(inst, &call, 200, text, strlen(text), &out, &e), 0);
            json_decref(out);
            free(text);
        } else if (sse != NULL) {
            size_t len;
            char *text = read_fixture(sse, &len);
            lg_call_t call = stream_call(req_body);
            struct replay r;
            replay_stream(inst, &call, text, len, NULL, 0, &r);
            replay_free(&r);
            free(text);
        }
    }
    json_decref(req_body);
}

static void run_request_case(const char *file, const char *casename)
{
    json_t *fx = load_json(file);
    json_t *callj = json_object_get(fx, "call"), *body = json_object_get(fx, "body"), *expect = json_object_get(fx, "expect");
    json_t *before = json_deep_copy(body);
    void *inst = create_instance(json_object_get(fx, "conf"));
    prime_instance(inst, json_object_get(fx, "prime"));

    lg_call_t call = {
        .struct_size = sizeof(lg_call_t),
        .kind = kind_from(json_object_get(callj, "kind")),
        .stream = json_is_true(json_object_get(callj, "stream")),
        .body = body,
        .upstream_model = or_default(json_string_value(json_object_get(callj, "upstream_model")), "gemini-2.5-flash"),
        .public_model = json_string_value(json_object_get(callj, "public_model")),
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
        const char *url = json_string_value(json_object_get(expect, "url"));
        if (url != NULL)
            assert_string_equal(req.url, url);
        /* the key never travels in the URL */
        assert_null(strstr(req.url, "key="));
        assert_null(strstr(req.url, "AIza"));
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
        for (size_t a = 0; a < req.num_headers; ++a) {
            assert_null(strpbrk(req.headers[a].value, "\r\n"));
            for (size_t b = a + 1; b < req.num_headers; ++b)
                assert_int_not_equal(strcasecmp(req.headers[a].name, req.headers[b].name), 0);
        }
    }
    assert_json_equal(casename, body, before); /* the client body is never modified */
    free_req(&req);
    P->destroy(inst);
    json_decref(before);
    json_decref(fx);
}

static void test_gemini_request_fixtures(void **state)
{
    (void)state;
    assert_true(each_fixture(".request.json", run_request_case) >= 20);
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

static void test_gemini_conf_fixtures(void **state)
{
    (void)state;
    assert_true(each_fixture(".conf.json", run_conf_case) >= 5);
}

/* ---- non-streaming responses ---- */

static void run_response_case(const char *file, const char *casename)
{
    char exp[300];
    size_t len;
    char *body = read_fixture(file, &len);
    snprintf(exp, sizeof(exp), "%s.expected.json", casename);
    json_t *want = load_json(exp);
    void *inst = create_instance(NULL);
    json_t *rb = json_object_get(want, "request_body");
    json_t *req_body = rb != NULL ? json_incref(rb) : json_object();
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = kind_from(json_object_get(want, "kind")),
                      .body = req_body,
                      .upstream_model = "gemini-2.5-flash",
                      .public_model = "google/gemini-2.5-flash"};
    json_t *status = json_object_get(want, "status");
    json_t *out = NULL;
    lg_errbuf_t e = {{0}};
    int rc = P->parse_response(inst, &call, status ? (int)json_integer_value(status) : 200, body, len, &out, &e);
    int want_rc = err_from_name(or_default(json_string_value(json_object_get(want, "rc")), "OK"));
    if (rc != want_rc)
        fail_msg("%s: parse_response returned %s (%s), want %s", casename, err_name(rc), e.msg, err_name(want_rc));
    if (rc == 0) {
        assert_json_equal(casename, out, json_object_get(want, "out"));
        /* §2.3: total = prompt + completion, cached tokens are a subset and never added */
        json_t *u = json_object_get(out, "usage");
        if (u != NULL)
            assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")),
                             json_integer_value(json_object_get(u, "prompt_tokens")) +
                                 json_integer_value(json_object_get(u, "completion_tokens")));
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

static void test_gemini_response_fixtures(void **state)
{
    (void)state;
    assert_true(each_fixture(".response.json", run_response_case) >= 12);
}

/* ---- streams ---- */

static void run_sse_case(const char *file, const char *casename)
{
    char exp[300];
    size_t len;
    char *text = read_fixture(file, &len);
    snprintf(exp, sizeof(exp), "%s.expected.json", casename);
    json_t *want = load_json(exp);
    void *inst = create_instance(NULL);
    json_t *req_body = json_object();
    lg_call_t call = stream_call(req_body);

    struct replay whole;
    replay_stream(inst, &call, text, len, NULL, 0, &whole);

    assert_json_equal(casename, whole.chunks, json_object_get(want, "chunks"));
    json_t *wu = json_object_get(want, "usage");
    if (wu == NULL || json_is_null(wu))
        assert_null(whole.usage);
    else
        assert_json_equal(casename, whole.usage, wu);
    assert_int_equal(whole.done, json_is_true(json_object_get(want, "done")));
    json_t *we = json_object_get(want, "error");
    if (we == NULL || json_is_null(we)) {
        assert_int_equal(whole.error, 0);
        int want_rc = err_from_name(or_default(json_string_value(json_object_get(want, "end")), "OK"));
        if (whole.end_rc != want_rc)
            fail_msg("%s: stream_end returned %s (%s), want %s", casename, err_name(whole.end_rc), whole.end_message,
                     err_name(want_rc));
        const char *m = json_string_value(json_object_get(want, "end_message"));
        if (m != NULL)
            assert_non_null(strstr(whole.end_message, m));
    } else {
        int werr = err_from_name(json_string_value(json_object_get(we, "err")));
        if (whole.error != werr)
            fail_msg("%s: in-band error %s, want %s", casename, err_name(whole.error), err_name(werr));
        assert_int_equal(whole.error_status, json_integer_value(json_object_get(we, "status")));
        assert_string_equal(whole.provider_code, or_default(json_string_value(json_object_get(we, "provider_code")), ""));
        const char *m = json_string_value(json_object_get(we, "message"));
        if (m != NULL)
            assert_string_equal(whole.error_message, m);
    }
    /* an in-band error never comes with a "stop" */
    if (whole.error != 0) {
        size_t i, j;
        json_t *c, *ch;
        json_array_foreach(whole.chunks, i, c)
        {
            json_array_foreach(json_object_get(c, "choices"), j, ch)
            {
                assert_true(json_is_null(json_object_get(ch, "finish_reason")));
            }
        }
    }

    /* the same transcript split at every byte offset, and fed one byte at a time */
    for (size_t cut = 1; cut < len; ++cut) {
        struct replay r;
        replay_stream(inst, &call, text, len, &cut, 1, &r);
        assert_same_replay(casename, &whole, &r);
        replay_free(&r);
    }
    size_t *cuts = malloc(len * sizeof(*cuts));
    for (size_t i = 0; i + 1 < len; ++i)
        cuts[i] = i + 1;
    struct replay bytes;
    replay_stream(inst, &call, text, len, cuts, len > 0 ? len - 1 : 0, &bytes);
    assert_same_replay(casename, &whole, &bytes);
    replay_free(&bytes);
    free(cuts);

    replay_free(&whole);
    P->destroy(inst);
    json_decref(req_body);
    json_decref(want);
    free(text);
}

static void test_gemini_stream_fixtures(void **state)
{
    (void)state;
    assert_true(each_fixture(".sse", run_sse_case) >= 10);
}

/* ---- classify_error ---- */

static void test_gemini_classify_error_table(void **state)
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
        json_t *ra = json_object_get(c, "retry_after_ms");
        if (ra != NULL)
            assert_int_equal(u.retry_after_ms, json_integer_value(ra));
        assert_true(memchr(u.message, '\0', sizeof(u.message)) != NULL);
        assert_true(memchr(u.provider_code, '\0', sizeof(u.provider_code)) != NULL);
    }
    P->destroy(inst);
    json_decref(cases);
}

/* ---- thoughtSignature round trip (providers.md §2.1) ---- */

/* Builds a chat request and returns the parsed upstream body. */
static json_t *build_body(void *inst, json_t *body)
{
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = body, .upstream_model = "gemini-3-pro-preview"};
    lg_http_req_t req;
    memset(&req, 0, sizeof(req));
    lg_errbuf_t e = {{0}};
    int rc = P->build_request(inst, &call, &req, &e);
    if (rc != 0)
        fail_msg("build_request: %s (%s)", err_name(rc), e.msg);
    json_t *got = json_loadb(req.body, req.body_len, 0, NULL);
    assert_non_null(got);
    free_req(&req);
    return got;
}

/* turn 2: user, the assistant message exactly as the client got it (optionally without extra_content), tool results */
static json_t *turn2_body(json_t *assistant, int drop_extra)
{
    json_t *msg = json_deep_copy(assistant);
    json_t *msgs = json_pack("[{ss ss}]", "role", "user", "content", "Weather in Paris and London? Book the warmer one.");
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc)
    {
        if (drop_extra)
            json_object_del(tc, "extra_content");
    }
    json_array_append_new(msgs, msg);
    json_array_foreach(json_object_get(assistant, "tool_calls"), i, tc)
    {
        json_array_append_new(msgs, json_pack("{ss sO ss}", "role", "tool", "tool_call_id", json_object_get(tc, "id"), "content",
                                              i == 0 ? "{\"temp_c\":21}" : "14 degrees"));
    }
    return json_pack("{so}", "messages", msgs);
}

/* the functionCall parts of the model turn of an upstream body */
static json_t *model_parts(json_t *up)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(up, "contents"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "role")), "model") == 0)
            return json_object_get(c, "parts");
    }
    fail_msg("no model turn");
    return NULL;
}

static json_t *parse_turn1(void *inst, const char *fixture, json_t **raw_out)
{
    size_t len;
    char *text = read_fixture(fixture, &len);
    *raw_out = json_loadb(text, len, 0, NULL);
    json_t *req = json_object();
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req, .upstream_model = "gemini-3-pro-preview"};
    json_t *out = NULL;
    lg_errbuf_t e = {{0}};
    assert_int_equal(P->parse_response(inst, &call, 200, text, len, &out, &e), 0);
    free(text);
    json_decref(req);
    json_t *msg = json_incref(json_object_get(json_array_get(json_object_get(out, "choices"), 0), "message"));
    json_decref(out);
    return msg;
}

static void test_gemini_thought_signature_roundtrip(void **state)
{
    (void)state;
    void *inst = create_instance(NULL);
    json_t *raw;
    json_t *assistant = parse_turn1(inst, "thought_signature_turn1.response.json", &raw);
    json_t *raw_parts = json_object_get(json_object_get(json_array_get(json_object_get(raw, "candidates"), 0), "content"), "parts");
    const char *sig1 = json_string_value(json_object_get(json_array_get(raw_parts, 0), "thoughtSignature"));
    assert_non_null(sig1);
    json_t *tcs = json_object_get(assistant, "tool_calls");
    assert_int_equal(json_array_size(tcs), 2);
    /* turn 1 → the client sees the signature inside the tool call; Gemini 3 signs only the first parallel call */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(json_array_get(tcs, 0), "extra_content"), "google"),
                            "thought_signature")),
                        sig1);
    assert_null(json_object_get(json_array_get(tcs, 1), "extra_content"));

    for (int drop = 0; drop <= 1; ++drop) {
        /* extra_content kept: works on any instance (another worker); dropped: restored from this instance's cache */
        void *target = drop ? inst : create_instance(NULL);
        json_t *body = turn2_body(assistant, drop);
        json_t *up = build_body(target, body);
        json_t *parts = model_parts(up);
        assert_int_equal(json_array_size(parts), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(parts, 0), "thoughtSignature")), sig1);
        assert_null(json_object_get(json_array_get(parts, 1), "thoughtSignature"));
        /* function responses mapped back by name */
        json_t *last = json_array_get(json_object_get(up, "contents"), json_array_size(json_object_get(up, "contents")) - 1);
        assert_string_equal(json_string_value(json_object_get(last, "role")), "user");
        json_t *fr = json_object_get(json_array_get(json_object_get(last, "parts"), 1), "functionResponse");
        assert_string_equal(json_string_value(json_object_get(fr, "name")), "get_weather");
        assert_string_equal(json_string_value(json_object_get(json_object_get(fr, "response"), "result")), "14 degrees");
        json_decref(up);
        json_decref(body);
        if (target != inst)
            P->destroy(target);
    }
    /* dropped extra_content on an instance that never saw turn 1: no signature can be invented */
    void *other = create_instance(NULL);
    json_t *body = turn2_body(assistant, 1);
    json_t *up = build_body(other, body);
    assert_null(json_object_get(json_array_get(model_parts(up), 0), "thoughtSignature"));
    json_decref(up);
    json_decref(body);
    P->destroy(other);

    json_decref(assistant);
    json_decref(raw);
    P->destroy(inst);
}

/* streamed turn 1 fills the cache too */
static void test_gemini_thought_signature_stream_cache(void **state)
{
    (void)state;
    void *inst = create_instance(NULL);
    size_t len;
    char *text = read_fixture("stream_function_call_signature.sse", &len);
    json_t *req = json_object();
    lg_call_t call = stream_call(req);
    struct replay r;
    replay_stream(inst, &call, text, len, NULL, 0, &r);
    json_t *tc = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(r.chunks, i, c)
    {
        json_t *t = json_object_get(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta"), "tool_calls");
        if (t != NULL)
            tc = json_array_get(t, 0);
    }
    assert_non_null(tc);
    const char *sig = json_string_value(
        json_object_get(json_object_get(json_object_get(tc, "extra_content"), "google"), "thought_signature"));
    assert_non_null(sig);
    json_t *assistant = json_pack("{ss sn s[{sO ss s{sO sO}}]}", "role", "assistant", "content", "tool_calls", "id",
                                  json_object_get(tc, "id"), "type", "function", "function", "name",
                                  json_object_get(json_object_get(tc, "function"), "name"), "arguments",
                                  json_object_get(json_object_get(tc, "function"), "arguments"));
    json_t *body = turn2_body(assistant, 1);
    json_t *up = build_body(inst, body);
    assert_string_equal(json_string_value(json_object_get(json_array_get(model_parts(up), 0), "thoughtSignature")), sig);
    json_decref(up);
    json_decref(body);
    json_decref(assistant);
    replay_free(&r);
    json_decref(req);
    free(text);
    P->destroy(inst);
}

/* options.thought_signature_cache bounds the cache (FIFO); 0 disables it */
static void test_gemini_signature_cache_bounded(void **state)
{
    (void)state;
    for (int cap = 0; cap <= 2; cap += 2) {
        json_t *conf = json_pack("{ss ss s{si}}", "name", "g", "api_key", TEST_KEY, "options", "thought_signature_cache", cap);
        void *inst = create_instance(conf);
        json_decref(conf);
        char ids[3][64];
        json_t *req = json_object();
        for (int k = 0; k < 3; ++k) {
            char body[512];
            snprintf(body, sizeof(body),
                     "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"k\":%d}},"
                     "\"thoughtSignature\":\"SIG%d\"}]},\"finishReason\":\"STOP\"}],\"responseId\":\"r%d\"}",
                     k, k, k);
            lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req, .upstream_model = "gemini-3-pro-preview"};
            json_t *out = NULL;
            lg_errbuf_t e = {{0}};
            assert_int_equal(P->parse_response(inst, &call, 200, body, strlen(body), &out, &e), 0);
            json_t *tc = json_array_get(
                json_object_get(json_object_get(json_array_get(json_object_get(out, "choices"), 0), "message"), "tool_calls"), 0);
            snprintf(ids[k], sizeof(ids[k]), "%s", json_string_value(json_object_get(tc, "id")));
            json_decref(out);
        }
        for (int k = 0; k < 3; ++k) {
            json_t *assistant = json_pack("{ss sn s[{ss ss s{ss ss}}]}", "role", "assistant", "content", "tool_calls", "id",
                                          ids[k], "type", "function", "function", "name", "f", "arguments", "{}");
            json_t *body = turn2_body(assistant, 1);
            json_t *up = build_body(inst, body);
            const char *got = json_string_value(json_object_get(json_array_get(model_parts(up), 0), "thoughtSignature"));
            char want[16];
            snprintf(want, sizeof(want), "SIG%d", k);
            if (cap == 0 || k == 0)
                assert_null(got); /* disabled, or evicted as the oldest of three in a cache of two */
            else
                assert_string_equal(got, want);
            json_decref(up);
            json_decref(body);
            json_decref(assistant);
        }
        json_decref(req);
        P->destroy(inst);
    }
}

/* synthesized ids are deterministic and unique within a response, also for identical calls */
static void test_gemini_synthesized_ids(void **state)
{
    (void)state;
    void *inst = create_instance(NULL);
    const char *body = "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
                       "{\"functionCall\":{\"name\":\"f\",\"args\":{}}},{\"functionCall\":{\"name\":\"f\",\"args\":{}}},"
                       "{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]},\"finishReason\":\"STOP\"}]}";
    json_t *req = json_object();
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req, .upstream_model = "gemini-2.0-flash"};
    json_t *first = NULL;
    for (int round = 0; round < 2; ++round) {
        json_t *out = NULL;
        lg_errbuf_t e = {{0}};
        assert_int_equal(P->parse_response(inst, &call, 200, body, strlen(body), &out, &e), 0);
        json_t *tcs = json_object_get(json_object_get(json_array_get(json_object_get(out, "choices"), 0), "message"), "tool_calls");
        assert_int_equal(json_array_size(tcs), 3);
        for (size_t a = 0; a < 3; ++a) {
            const char *ia = json_string_value(json_object_get(json_array_get(tcs, a), "id"));
            assert_true(strncmp(ia, "call_", 5) == 0);
            for (size_t b = a + 1; b < 3; ++b)
                assert_string_not_equal(ia, json_string_value(json_object_get(json_array_get(tcs, b), "id")));
        }
        if (first == NULL)
            first = json_incref(tcs);
        else
            assert_json_equal("synthesized_ids", tcs, first);
        json_decref(out);
    }
    json_decref(first);
    json_decref(req);
    P->destroy(inst);
}

/* a self-referencing schema is inlined to a bounded depth and size, never leaving "$ref" for Gemini to reject */
static void test_gemini_recursive_ref_bounded(void **state)
{
    (void)state;
    void *inst = create_instance(NULL);
    json_t *body = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
                              "\"function\":{\"name\":\"tree\",\"parameters\":{\"$ref\":\"#/$defs/Node\",\"$defs\":{\"Node\":"
                              "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/Node\"},\"b\":{\"$ref\":\"#/$defs/Node\"},"
                              "\"c\":{\"$ref\":\"#/$defs/Node\"},\"d\":{\"$ref\":\"#/$defs/Node\"},\"kids\":{\"type\":\"array\","
                              "\"items\":{\"$ref\":\"#/$defs/Node\"}},\"v\":{\"type\":\"string\"}}}}}}}]}",
                              0, NULL);
    assert_non_null(body);
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = body, .upstream_model = "gemini-2.5-flash"};
    lg_http_req_t req;
    memset(&req, 0, sizeof(req));
    lg_errbuf_t e = {{0}};
    assert_int_equal(P->build_request(inst, &call, &req, &e), 0);
    assert_true(req.body_len < 512 * 1024);
    assert_null(strstr(req.body, "$ref"));
    assert_null(strstr(req.body, "$defs"));
    assert_non_null(strstr(req.body, "\"v\":{\"type\":\"string\"}"));
    free_req(&req);
    json_decref(body);
    P->destroy(inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemini_request_fixtures),
        cmocka_unit_test(test_gemini_conf_fixtures),
        cmocka_unit_test(test_gemini_response_fixtures),
        cmocka_unit_test(test_gemini_stream_fixtures),
        cmocka_unit_test(test_gemini_classify_error_table),
        cmocka_unit_test(test_gemini_thought_signature_roundtrip),
        cmocka_unit_test(test_gemini_thought_signature_stream_cache),
        cmocka_unit_test(test_gemini_signature_cache_bounded),
        cmocka_unit_test(test_gemini_synthesized_ids),
        cmocka_unit_test(test_gemini_recursive_ref_bounded),
    };
    return cmocka_run_group_tests_name("plugin_gemini", tests, setup, teardown);
}

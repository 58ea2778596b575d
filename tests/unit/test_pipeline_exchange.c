/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/pipeline/ as a whole (lifecycle, attempts, reply, relay,
 * settle, the local source) on a real libuv loop and a real h2o request whose
 * output stream is captured here instead of a socket. The in-process `mock`
 * plugin is the upstream. Covered: the commit point (the held role chunk
 * leaves with the first token), fallback before it, keep-alives while an
 * attempt fails slowly, in-process provider errors that must answer (they
 * hung before), back-pressure from a slow client, the shutdown cut (error
 * event + [DONE]), and a client that leaves mid-stream. Every test ends with
 * every handle closed and uv_loop_close() == 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/snapshot.h"
#include "http/skins.h"
#include "metrics/metrics.h"
#include "pipeline/exchange.h"

/* ---- a captured h2o request ---- */

struct fake {
    uv_loop_t loop;
    h2o_globalconf_t gconf;
    h2o_hostconf_t *host;
    h2o_context_t ctx;
    h2o_conn_t *conn;
    h2o_req_t req;
    int req_live;
    h2o_ostream_t ostr;
    uv_timer_t proceed_timer; /* h2o's proceed arrives from the loop, as after a socket write */
    int hold_proceed;         /* a slow client: no proceed until released */
    int proceed_owed;
    char *out;
    size_t len, cap;
    size_t sends, first_send_len;
    int final;
    lg_pipeline_worker_t pw;
    unsigned freed;
    lg_snapshot_t *snap;
    void **pstates;
};

static struct fake F;

static const h2o_conn_callbacks_t conn_callbacks = {NULL};

static void on_proceed_timer(uv_timer_t *t)
{
    (void)t;
    if (F.req_live && !F.final)
        h2o_proceed_response(&F.req);
}

static void do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    (void)self;
    (void)req;
    size_t n = 0;
    for (size_t i = 0; i < bufcnt; ++i) {
        if (F.len + bufs[i].len + 1 > F.cap) {
            F.cap = (F.len + bufs[i].len + 1) * 2;
            F.out = realloc(F.out, F.cap);
        }
        memcpy(F.out + F.len, bufs[i].base, bufs[i].len);
        F.len += bufs[i].len;
        F.out[F.len] = '\0';
        n += bufs[i].len;
    }
    if (F.sends++ == 0)
        F.first_send_len = n;
    if (state != H2O_SEND_STATE_IN_PROGRESS) {
        F.final = 1;
        return;
    }
    if (F.hold_proceed)
        F.proceed_owed = 1;
    else
        uv_timer_start(&F.proceed_timer, on_proceed_timer, 0, 0);
}

static void on_freed(void *owner)
{
    (void)owner;
    ++F.freed;
}

static void release_runtime(void *ref)
{
    (void)ref;
}

static json_t *provider_conf(const lg_provider_conf_t *p)
{
    json_t *o = json_pack("{s:s}", "name", p->name);
    if (p->options != NULL)
        json_object_set(o, "options", p->options);
    return o;
}

static const char config_text[] =
    "{\"listeners\":[{\"address\":\"127.0.0.1\",\"port\":1}],\"store\":null,"
    "\"routing\":{\"keepalive_interval_ms\":100},"
    "\"providers\":["
    "{\"name\":\"m1\",\"plugin\":\"mock\"},"
    "{\"name\":\"m2\",\"plugin\":\"mock\"},"
    "{\"name\":\"slow\",\"plugin\":\"mock\",\"options\":{\"first_delay_ms\":350}},"
    "{\"name\":\"paced\",\"plugin\":\"mock\",\"options\":{\"chunk_delay_ms\":15}}],"
    "\"models\":{"
    "\"t/echo\":{\"endpoints\":[{\"provider\":\"m1\",\"model\":\"echo\",\"pricing\":{\"prompt\":\"0.000001\",\"completion\":"
    "\"0.000002\"}}]},"
    "\"t/fb\":{\"endpoints\":[{\"provider\":\"m1\",\"model\":\"error-500\"},{\"provider\":\"m2\",\"model\":\"echo\"}]},"
    "\"t/err\":{\"endpoints\":[{\"provider\":\"m1\",\"model\":\"error-503\"}]},"
    "\"t/unknown\":{\"endpoints\":[{\"provider\":\"m1\",\"model\":\"no-such-model\"},{\"provider\":\"m2\",\"model\":\"echo\"}]},"
    "\"t/slowfb\":{\"endpoints\":[{\"provider\":\"slow\",\"model\":\"error-502\"},{\"provider\":\"m2\",\"model\":\"echo\"}]},"
    "\"t/paced\":{\"endpoints\":[{\"provider\":\"paced\",\"model\":\"lorem\",\"pricing\":{\"prompt\":\"0.000001\",\"completion\":"
    "\"0.000002\"}}]}}}";

static int setup(void **state)
{
    (void)state;
    char path[1024];
    const char *src = getenv("LLMGATE_SOURCE_DIR");
    if (src != NULL && getenv("LLMGATE_POLICY_DIR") == NULL) {
        snprintf(path, sizeof(path), "%s/policies", src);
        setenv("LLMGATE_POLICY_DIR", path, 1);
    }
    lg_metrics_init(1);
    char err[1024];
    lg_config_t *conf = lg_config_parse(config_text, sizeof(config_text) - 1, NULL, err, sizeof(err));
    if (conf == NULL)
        fail_msg("config: %s", err);
    F.snap = lg_snapshot_create(conf, 1, err, sizeof(err));
    if (F.snap == NULL)
        fail_msg("snapshot: %s", err);
    F.pstates = calloc(F.snap->conf->num_providers, sizeof(void *));
    for (size_t i = 0; i < F.snap->conf->num_providers; ++i) {
        assert_non_null(F.snap->plugins[i]);
        json_t *pc = provider_conf(&F.snap->conf->providers[i]);
        lg_errbuf_t perr = {{0}};
        void *st = NULL;
        assert_int_equal(F.snap->plugins[i]->provider->create(pc, &st, &perr), 0);
        json_decref(pc);
        F.pstates[i] = st != NULL ? st : (void *)&F.pstates[i];
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (F.snap == NULL)
        return 0;
    for (size_t i = 0; i < F.snap->conf->num_providers; ++i)
        F.snap->plugins[i]->provider->destroy(F.pstates[i] == (void *)&F.pstates[i] ? NULL : F.pstates[i]);
    free(F.pstates);
    lg_snapshot_unref(F.snap);
    return 0;
}

static void fake_open(void)
{
    lg_snapshot_t *snap = F.snap;
    void **pstates = F.pstates;
    memset(&F, 0, sizeof(F));
    F.snap = snap;
    F.pstates = pstates;
    assert_int_equal(uv_loop_init(&F.loop), 0);
    h2o_config_init(&F.gconf);
    F.host = h2o_config_register_host(&F.gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_context_init(&F.ctx, &F.loop, &F.gconf);
    struct timeval tv = {0, 0};
    F.conn = h2o_create_connection(sizeof(h2o_conn_t), &F.ctx, F.gconf.hosts, tv, &conn_callbacks);
    h2o_init_request(&F.req, F.conn, NULL);
    F.req.version = 0x200; /* no HTTP/1 socket watch */
    F.req.hostconf = F.host;
    F.req.pathconf = &F.host->fallback_path;
    F.ostr.do_send = do_send;
    F.req._ostr_top = &F.ostr;
    F.req_live = 1;
    uv_timer_init(&F.loop, &F.proceed_timer);
    lg_pipeline_worker_init(&F.pw, &F.loop, NULL, 0, NULL);
    F.pw.request_done = on_freed;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Dispose the request (if still alive), close everything, and require a clean loop. */
static void fake_close(void)
{
    if (F.req_live) {
        F.req_live = 0;
        h2o_dispose_request(&F.req);
    }
    uv_run(&F.loop, UV_RUN_NOWAIT);
    assert_int_equal(F.freed, 1); /* the exchange is gone */
    assert_null(F.pw.live);
    assert_null(F.pw.waitq_head);
    free(F.conn);
    h2o_context_dispose(&F.ctx);
    h2o_config_dispose(&F.gconf);
    uv_walk(&F.loop, close_walk, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    free(F.out);
}

static void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until *flag or ms pass; returns the flag. A short tick bounds each poll: a flag set by a timer callback
 * is seen at once instead of after the loop's next blocking wait. */
static int run_until(const int *flag, uint64_t ms)
{
    uv_timer_t deadline, tick;
    int expired = 0;
    uv_timer_init(&F.loop, &deadline);
    uv_timer_init(&F.loop, &tick);
    deadline.data = &expired;
    uv_timer_start(&deadline, on_deadline, ms, 0);
    uv_timer_start(&tick, on_tick, 2, 2);
    while (!*flag && !expired)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT);
    return *flag;
}

static int has_text(const char *needle)
{
    return F.out != NULL && strstr(F.out, needle) != NULL;
}

static int text_seen;

/* Run until the output holds needle (or the stream ended, or ms pass). */
static int run_until_text(const char *needle, uint64_t ms)
{
    uv_timer_t deadline, tick;
    int expired = 0;
    uv_timer_init(&F.loop, &deadline);
    uv_timer_init(&F.loop, &tick);
    deadline.data = &expired;
    uv_timer_start(&deadline, on_deadline, ms, 0);
    uv_timer_start(&tick, on_tick, 2, 2);
    while (!has_text(needle) && !F.final && !expired)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT);
    text_seen = has_text(needle);
    return text_seen;
}

/* Start a request through the pipeline's handler-facing API, as handler_generate.c does. */
static lg_exchange_t *start(const lg_skin_t *skin, const char *body)
{
    lg_pipeline_runtime_t rt = {.snap = F.snap, .pstates = F.pstates, .vm = NULL, .ref = NULL, .release = release_runtime};
    lg_exchange_t *x = lg_exchange_create(&F.pw, &F.req, skin, &rt);
    char err[512];
    assert_int_equal(skin->parse(body, strlen(body), lg_exchange_request(x), err, sizeof(err)), 0);
    json_t *meta = NULL;
    int rc = lg_exchange_route(x, &meta, err, sizeof(err));
    json_decref(meta);
    assert_int_equal(rc, 0);
    lg_exchange_run(x);
    return x;
}

static size_t count(const char *needle)
{
    size_t n = 0;
    for (const char *p = F.out; p != NULL && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        ++n;
    return n;
}

/* ---- tests ---- */

static void test_exchange_stream_commit_point(void **state)
{
    (void)state;
    fake_open();
    lg_exchange_t *x = start(&lg_skin_openai_chat,
                             "{\"model\":\"t/echo\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}]}");
    lg_exchange_release(x);
    assert_true(run_until(&F.final, 5000));
    assert_int_equal(F.req.res.status, 200);
    /* the role chunk was held and left in the same write as the first content */
    char *first = strndup(F.out, F.first_send_len);
    assert_non_null(strstr(first, "\"role\":\"assistant\""));
    assert_non_null(strstr(first, "\"content\":\"a"));
    free(first);
    assert_non_null(strstr(F.out, "\"finish_reason\":\"stop\""));
    assert_non_null(strstr(F.out, "\"usage\":{"));
    assert_non_null(strstr(F.out, "\"cost\":"));
    assert_int_equal(count("data: [DONE]\n\n"), 1);
    assert_true(F.len >= 14 && memcmp(F.out + F.len - 14, "data: [DONE]\n\n", 14) == 0);
    assert_null(strstr(F.out, "\"error\""));
    fake_close();
}

static void test_exchange_fallback_before_commit(void **state)
{
    (void)state;
    fake_open();
    lg_exchange_t *x = start(&lg_skin_openai_chat, "{\"model\":\"t/fb\",\"stream\":true,\"provider\":{\"order\":[\"m1\",\"m2\"]},"
                                                   "\"messages\":[{\"role\":\"user\",\"content\":\"fall over\"}]}");
    lg_exchange_release(x);
    assert_true(run_until(&F.final, 5000));
    assert_null(strstr(F.out, "\"error\""));
    assert_non_null(strstr(F.out, "\"provider\":\"m2\""));
    assert_null(strstr(F.out, "\"provider\":\"m1\""));
    assert_non_null(strstr(F.out, "\"content\":\"fall"));
    fake_close();
}

static void test_exchange_local_errors_answer(void **state)
{
    (void)state;
    /* a single failing in-process endpoint: a whole-body error, not a hang */
    fake_open();
    lg_exchange_t *x = start(&lg_skin_openai_chat, "{\"model\":\"t/err\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    lg_exchange_release(x);
    assert_true(run_until(&F.final, 5000));
    assert_int_equal(F.req.res.status, 503);
    assert_non_null(strstr(F.out, "\"error\":{"));
    fake_close();

    /* the same as a stream: still an answer (before any byte: the whole-body error) */
    fake_open();
    x = start(&lg_skin_openai_chat, "{\"model\":\"t/err\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    lg_exchange_release(x);
    assert_true(run_until(&F.final, 5000));
    assert_int_equal(F.req.res.status, 503);
    fake_close();

    /* an unknown model at the in-process provider falls over to the next endpoint */
    fake_open();
    x = start(&lg_skin_openai_chat, "{\"model\":\"t/unknown\",\"provider\":{\"order\":[\"m1\",\"m2\"]},"
                                    "\"messages\":[{\"role\":\"user\",\"content\":\"still answered\"}]}");
    lg_exchange_release(x);
    assert_true(run_until(&F.final, 5000));
    assert_int_equal(F.req.res.status, 200);
    assert_non_null(strstr(F.out, "\"content\":\"still answered\""));
    assert_non_null(strstr(F.out, "\"provider\":\"m2\""));
    fake_close();
}

static void test_exchange_keepalive_then_fallback(void **state)
{
    (void)state;
    fake_open();
    lg_exchange_t *x =
        start(&lg_skin_openai_chat, "{\"model\":\"t/slowfb\",\"stream\":true,\"provider\":{\"order\":[\"slow\",\"m2\"]},"
                                    "\"messages\":[{\"role\":\"user\",\"content\":\"late answer\"}]}");
    lg_exchange_release(x);
    assert_true(run_until(&F.final, 5000));
    /* keep-alives went out while the slow endpoint failed; the client never saw that failure */
    const char *ka = strstr(F.out, ": PROCESSING\n\n");
    const char *content = strstr(F.out, "\"content\":\"late");
    assert_non_null(ka);
    assert_non_null(content);
    assert_true(ka < content);
    assert_null(strstr(F.out, "\"error\""));
    assert_int_equal(count("data: [DONE]\n\n"), 1);
    fake_close();
}

static void test_exchange_anthropic_skin(void **state)
{
    (void)state;
    fake_open();
    lg_exchange_t *x = start(&lg_skin_anthropic_messages, "{\"model\":\"t/echo\",\"max_tokens\":20,\"stream\":true,"
                                                          "\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}");
    lg_exchange_release(x);
    assert_true(run_until(&F.final, 5000));
    assert_non_null(strstr(F.out, "event: message_start\n"));
    assert_non_null(strstr(F.out, "event: message_stop\n"));
    assert_null(strstr(F.out, "data: [DONE]"));
    assert_null(strstr(F.out, "chat.completion.chunk"));
    fake_close();

    fake_open();
    x = start(&lg_skin_anthropic_messages,
              "{\"model\":\"t/err\",\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    lg_exchange_release(x);
    assert_true(run_until(&F.final, 5000));
    assert_int_equal(F.req.res.status, 529); /* overload, Anthropic's way */
    assert_non_null(strstr(F.out, "\"type\":\"overloaded_error\""));
    fake_close();
}

static void test_exchange_slow_client_and_cut(void **state)
{
    (void)state;
    fake_open();
    F.hold_proceed = 1; /* the client does not read: nothing after the first write until it does */
    lg_exchange_t *x =
        start(&lg_skin_openai_chat, "{\"model\":\"t/paced\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_true(run_until_text("Lorem", 5000));
    size_t sends = F.sends;
    int flag = 0;
    run_until(&flag, 100); /* several paced events arrive meanwhile: queued, not sent */
    assert_int_equal(F.sends, sends);
    assert_true(x->rl.outq.len > 0);
    F.hold_proceed = 0;
    if (F.proceed_owed)
        uv_timer_start(&F.proceed_timer, on_proceed_timer, 0, 0);
    assert_true(run_until_text("ipsum", 5000));

    /* the shutdown deadline: the stream ends with the error event and [DONE], settled once */
    lg_pipeline_cut_all(&F.pw);
    assert_true(run_until(&F.final, 5000));
    assert_non_null(strstr(F.out, "\"error_type\":\"temporarily_unavailable\""));
    assert_non_null(strstr(F.out, "\"finish_reason\":\"error\""));
    assert_true(F.len >= 14 && memcmp(F.out + F.len - 14, "data: [DONE]\n\n", 14) == 0);
    assert_int_equal(x->st.outcome, LG_OUTCOME_FAILED_LATE);
    assert_int_equal(x->st.status, 503);
    assert_true(x->st.settled);
    assert_true(x->st.billed.completion_tokens > 0); /* what was streamed is billed */
    assert_true(x->st.cost_pico > 0);
    assert_null(strstr(F.out, "\"finish_reason\":\"stop\""));
    lg_exchange_release(x);
    fake_close();
}

static void test_exchange_client_gone_cancels(void **state)
{
    (void)state;
    fake_open();
    lg_exchange_t *x =
        start(&lg_skin_openai_chat, "{\"model\":\"t/paced\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    lg_exchange_release(x);
    assert_true(run_until_text("Lorem", 5000));
    /* the client leaves: the request is disposed, the source stops, the exchange is freed once its handles closed */
    F.req_live = 0;
    h2o_dispose_request(&F.req);
    int flag = 0;
    run_until(&flag, 50);
    assert_int_equal(F.freed, 1);
    assert_false(F.final);
    fake_close();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exchange_stream_commit_point), cmocka_unit_test(test_exchange_fallback_before_commit),
        cmocka_unit_test(test_exchange_local_errors_answer), cmocka_unit_test(test_exchange_keepalive_then_fallback),
        cmocka_unit_test(test_exchange_anthropic_skin),      cmocka_unit_test(test_exchange_slow_client_and_cut),
        cmocka_unit_test(test_exchange_client_gone_cancels),
    };
    return cmocka_run_group_tests_name("exchange", tests, setup, teardown);
}

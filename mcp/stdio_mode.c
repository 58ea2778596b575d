/* SPDX-License-Identifier: MIT */
/*
 * Stdio transport (see stdio_mode.h): one libuv loop on the main thread reads
 * stdin line by line and feeds the server core with one session; answers,
 * notifications and server->client requests go to stdout, one JSON object per
 * line. Client responses and cancellations are delivered straight to this
 * loop's worker state (there is no inbox: a single loop serves everything).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "llmgate/version.h"
#include "mcp/auth.h"
#include "mcp/builtin.h"
#include "mcp/federation.h"
#include "mcp/fixtures.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"
#include "mcp/stdio_mode.h"
#include "metrics/metrics.h"
#include "runtime/snapshot.h"

#define EOF_DRAIN_MS 30000

static uv_loop_t loop;
static lg_mcp_worker_t mw;
static lg_mcp_registry_t *reg;
static uint32_t ttl_s = 604800, max_bytes;
static char *line;
static size_t line_len, line_cap;
static int at_eof;
static uint64_t eof_at_ms;
static uv_timer_t drain_timer;
static union {
    uv_pipe_t pipe;
    uv_tty_t tty;
} in;

/* ---- notifications from the upstream thread (list_changed, resources/updated) ---- */

struct note {
    char *method;
    char *uri; /* resources/updated only */
    struct note *next;
};

static pthread_mutex_t notes_mu = PTHREAD_MUTEX_INITIALIZER;
static struct note *notes_head, **notes_tail = &notes_head;
static size_t notes_len;
static uv_async_t notes_async;
static int notes_ready;

static void write_msg(json_t *msg);

static void queue_note(const char *method, const char *uri)
{
    struct note *n = lg_malloc(sizeof(*n));
    n->method = lg_strdup(method);
    n->uri = uri != NULL ? lg_strdup(uri) : NULL;
    n->next = NULL;
    pthread_mutex_lock(&notes_mu);
    if (notes_len < 1024) { /* a client that never reads stdout: keep the newest few, drop the flood */
        *notes_tail = n;
        notes_tail = &n->next;
        ++notes_len;
        n = NULL;
    }
    int ready = notes_ready;
    pthread_mutex_unlock(&notes_mu);
    if (n != NULL) {
        free(n->method);
        free(n->uri);
        free(n);
    }
    if (ready)
        uv_async_send(&notes_async);
}

/* Runs on the upstream thread: only the default endpoint is served on stdio. */
static void stdio_list_changed(const char *server, const char *kind)
{
    if (server != NULL && server[0] != '\0')
        return;
    char method[64];
    snprintf(method, sizeof(method), "notifications/%s/list_changed", kind);
    queue_note(method, NULL);
}

static void stdio_resource_updated(const char *uri)
{
    queue_note("notifications/resources/updated", uri);
}

static lg_mcp_session_t *session;

static void on_notes(uv_async_t *a)
{
    (void)a;
    pthread_mutex_lock(&notes_mu);
    struct note *list = notes_head;
    notes_head = NULL;
    notes_tail = &notes_head;
    notes_len = 0;
    pthread_mutex_unlock(&notes_mu);
    while (list != NULL) {
        struct note *n = list->next;
        /* nothing before the client's initialize (it would not expect a notification yet) */
        if (session != NULL && (list->uri == NULL || lg_mcp_session_subscribed(session, list->uri)))
            write_msg(lg_jsonrpc_make_notification(list->method, list->uri != NULL ? json_pack("{s:s}", "uri", list->uri) : NULL));
        free(list->method);
        free(list->uri);
        free(list);
        list = n;
    }
}

static void write_msg(json_t *msg)
{
    if (msg == NULL)
        return;
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (s == NULL)
        return;
    /* JSON_COMPACT never emits a raw newline (strings escape it): one message per line */
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(s);
}

static int sink_emit(lg_mcp_sink_t *sink, json_t *msg)
{
    (void)sink;
    write_msg(msg);
    return 0;
}

static void sink_respond(lg_mcp_sink_t *sink, json_t *msg)
{
    (void)sink;
    write_msg(msg);
}

static lg_mcp_sink_t sink = {sink_emit, sink_respond};

static lg_mcp_session_t *implicit_session(void)
{
    /* lenient: a client that skips initialize still gets one session */
    if (session == NULL)
        session = lg_mcp_session_create(NULL, "", LG_MCP_LATEST_VERSION, NULL, NULL, ttl_s);
    return session;
}

static void handle_msg(lg_jsonrpc_msg_t *m)
{
    switch (m->kind) {
    case LG_JSONRPC_REQUEST:
        if (strcmp(m->method, "initialize") == 0) {
            lg_mcp_session_t *s = NULL;
            int status;
            json_t *resp = lg_mcp_server_initialize(reg, m, NULL, ttl_s, &s, &status);
            if (s != NULL) {
                if (session != NULL) {
                    lg_mcp_server_detach_sink(&mw, &sink); /* a re-initialize starts over */
                    lg_mcp_session_close(session);
                    lg_mcp_session_unref(session);
                }
                session = s;
            }
            write_msg(resp);
            return;
        }
        if (implicit_session() == NULL) {
            write_msg(lg_jsonrpc_make_error(m->id, LG_JSONRPC_SERVER_ERROR, "cannot create a session", NULL));
            return;
        }
        lg_mcp_session_t *live = lg_mcp_session_lookup(lg_mcp_session_id(session), strlen(lg_mcp_session_id(session)), NULL,
                                                       ""); /* refreshes the idle timer */
        if (live != NULL)
            lg_mcp_session_unref(live);
        lg_mcp_server_dispatch(&mw, session, reg, m, &sink);
        return;
    case LG_JSONRPC_NOTIFICATION:
        if (session == NULL)
            return;
        if (strcmp(m->method, "notifications/cancelled") == 0) {
            json_t *rid = json_object_get(m->params, "requestId");
            if (lg_jsonrpc_id_valid(rid)) {
                char key[96];
                lg_jsonrpc_id_key(rid, key, sizeof(key));
                lg__mcp_server_cancel(&mw, lg_mcp_session_id(session), key);
            }
            return;
        }
        lg_mcp_server_notification(&mw, session, m);
        return;
    default: /* a client's answer to our request (sampling, elicitation, roots) */
        if (session != NULL)
            lg__mcp_server_deliver_response(&mw, lg_mcp_session_id(session), m->root);
        return;
    }
}

static void handle_line(const char *buf, size_t len)
{
    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        --len;
    if (len == 0)
        return;
    lg_jsonrpc_msg_t m;
    json_t *batch = NULL;
    lg_jsonrpc_err_t err;
    memset(&m, 0, sizeof(m));
    memset(&err, 0, sizeof(err));
    int rc = lg_jsonrpc_parse(buf, len, max_bytes, &m, &batch, &err);
    if (rc == LG_JSONRPC_PARSED_ERROR) {
        write_msg(lg_jsonrpc_make_error(err.id, err.code, err.message, NULL));
        lg_jsonrpc_err_dispose(&err);
        return;
    }
    if (rc == LG_JSONRPC_PARSED_BATCH) {
        /* newline-delimited stdio carries one message per line (MCP 2025-06-18 removed batching) */
        json_decref(batch);
        write_msg(lg_jsonrpc_make_error(NULL, LG_JSONRPC_INVALID_REQUEST, "JSON-RPC batches are not supported on stdio", NULL));
        return;
    }
    handle_msg(&m);
    lg_jsonrpc_msg_dispose(&m);
}

static void finish(void)
{
    LG_LOG(LG_LOG_INFO, "mcp", "stdio: stdin closed; exiting");
    lg_mcp_server_detach_sink(&mw, &sink); /* cancel what is left */
    fflush(stdout);
    lg_mcp_federation_shutdown();
    exit(0);
}

static void on_drain(uv_timer_t *t)
{
    (void)t;
    if (mw.calls == NULL || uv_now(&loop) - eof_at_ms >= EOF_DRAIN_MS)
        finish();
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    if (line_cap - line_len < suggested) {
        line_cap = line_len + suggested;
        line = lg_realloc(line, line_cap);
    }
    buf->base = line + line_len;
    buf->len = line_cap - line_len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0) {
        if (n != UV_EOF)
            LG_LOG(LG_LOG_ERR, "mcp", "stdio: read: %s", uv_strerror((int)n));
        if (line_len > 0) {
            handle_line(line, line_len);
            line_len = 0;
        }
        uv_read_stop(s);
        at_eof = 1;
        eof_at_ms = uv_now(&loop);
        uv_timer_init(&loop, &drain_timer);
        uv_timer_start(&drain_timer, on_drain, 0, 20);
        return;
    }
    size_t start = line_len;
    line_len += (size_t)n;
    /* hand out every complete line; keep the tail */
    size_t from = 0;
    for (size_t i = start; i < line_len; ++i) {
        if (line[i] != '\n')
            continue;
        handle_line(line + from, i - from);
        from = i + 1;
    }
    if (from > 0) {
        memmove(line, line + from, line_len - from);
        line_len -= from;
    }
    if (max_bytes != 0 && line_len > (size_t)max_bytes + 1) {
        /* an endless line: answer once and drop it */
        write_msg(lg_jsonrpc_make_error(NULL, LG_JSONRPC_INVALID_REQUEST, "message too large", NULL));
        line_len = 0;
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: llmgate mcp --stdio [--config FILE]\n"
                 "  serves the gateway's MCP tools (federated servers, built-ins) as newline-delimited JSON-RPC on\n"
                 "  stdin/stdout; logs go to stderr; exits on stdin EOF\n");
}

int lg_mcp_stdio_main(int argc, char **argv)
{
    const char *config_path = NULL;
    int stdio = 0;
    for (int i = 2; i < argc; ++i) {
        if (strcmp(argv[i], "--stdio") == 0) {
            stdio = 1;
        } else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "llmgate mcp: unknown argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!stdio) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char err[4096];
    lg_config_t *conf = lg_config_load(config_path, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "llmgate mcp: %s: %s\n", config_path != NULL ? config_path : "embedded default config", err);
        return 1;
    }
    int level = lg_log_level_parse(conf->log_level);
    if (level >= 0)
        lg_log_level = level;
    lg_metrics_init(1);
    lg_snapshot_t *snap = lg_snapshot_create(conf, 1, err, sizeof(err));
    if (snap == NULL) {
        fprintf(stderr, "llmgate mcp: %s: %s\n", config_path != NULL ? config_path : "embedded default config", err);
        return 1;
    }
    if (!snap->conf->mcp.enabled) {
        fprintf(stderr, "llmgate mcp: \"mcp\".\"enabled\" is false in the config\n");
        return 1;
    }
    max_bytes = snap->conf->mcp.max_message_bytes;
    uv_loop_init(&loop);
    mw.index = 0;
    mw.loop = &loop;

    uv_async_init(&loop, &notes_async, on_notes);
    uv_unref((uv_handle_t *)&notes_async); /* stdin keeps the loop alive, not this */
    pthread_mutex_lock(&notes_mu);
    notes_ready = 1;
    pthread_mutex_unlock(&notes_mu);
    lg__mcp_federation_set_notifiers(stdio_list_changed, stdio_resource_updated);
    lg_mcp_auth_install(); /* no keys on stdio (the local user owns the process): the audit log line per tool call */
    lg_mcp_builtin_set_standalone(snap);
    lg_mcp_builtin_register();
    lg_mcp_federation_register();
    lg_mcp_fixtures_register();
    lg_mcp_federation_apply(snap->conf);
    reg = lg_mcp_registry_for(snap->conf, snap->generation, "", 0);
    if (reg == NULL) {
        fprintf(stderr, "llmgate mcp: no MCP registry\n");
        return 1;
    }

    uv_handle_type t = uv_guess_handle(0);
    int rc;
    if (t == UV_TTY) {
        rc = uv_tty_init(&loop, &in.tty, 0, 1);
    } else {
        rc = uv_pipe_init(&loop, &in.pipe, 0);
        if (rc == 0)
            rc = uv_pipe_open(&in.pipe, 0);
    }
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&in, on_alloc, on_read);
    if (rc != 0) {
        fprintf(stderr, "llmgate mcp: cannot read stdin (use a pipe): %s\n", uv_strerror(rc));
        return 1;
    }
    LG_LOG(LG_LOG_INFO, "mcp", "llmgate %s: serving MCP on stdio (%zu providers)", LG_VERSION_STRING,
           lg_mcp_registry_num_providers(reg));
    uv_run(&loop, UV_RUN_DEFAULT);
    finish();
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Async Redis connection on a libuv loop (see redis_conn.h). The uv_poll glue
 * is ours rather than hiredis' adapter header so that every handle is closed
 * and freed on our terms and a failed poll init cannot leak.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <hiredis/async.h>
#include <openssl/evp.h>
#include "cluster/redis_conn.h"
#include "core/log.h"
#include "core/util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* One command in flight. Doubly linked so any op can leave the list (replies come in order, but a script re-sent as
 * EVAL moves to the back). */
struct op {
    struct op *prev, *next;
    lg_redis_conn_t *conn; /* NULL once failed/answered */
    lg_redis_cb *cb;
    void *arg;
    int64_t deadline_ms;
    const lg_redis_script_t *script; /* script ops keep their arguments for the EVAL fallback */
    int numkeys, argc;
    const char **argv;
    size_t *argvlen;
    int resent;
};

struct poll_glue {
    uv_poll_t poll;
    uv_check_t flush; /* writes the commands queued during this loop turn, once, after the I/O callbacks */
    redisAsyncContext *ac;
    int events;    /* what hiredis wants watched */
    int watching;  /* what the poll handle watches now (changes cost an epoll_ctl) */
    int connected; /* before, WRITABLE must really be polled: that is how hiredis sees the connect complete */
    int in_flush;
    int open_handles;
};

struct lg_redis_conn {
    uv_loop_t *loop;
    lg_redis_state_t state;
    redisAsyncContext *ac;
    struct op head; /* sentinel of the pending list */
    size_t pending;
    uv_timer_t timer; /* deadlines while connected/connecting; reconnect delay while in backoff */
    uint32_t backoff_ms;
    int64_t connect_started_ms;
    char *ip, *user, *password, *label, *pattern;
    int port, db;
    uint32_t timeout_ms, connect_timeout_ms;
    lg_redis_state_cb *on_state;
    lg_redis_message_cb *on_message;
    void *state_arg;
    _Atomic uint64_t commands, failures, reconnects, timeouts;
    int logged_down; /* "unreachable" said once per outage */
};

static void start_connect(lg_redis_conn_t *c);

void lg_redis_script_init(lg_redis_script_t *s)
{
    unsigned char md[20];
    unsigned int len = sizeof(md);
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(s->source, strlen(s->source), md, &len, EVP_sha1(), NULL) != 1)
        abort();
    for (int i = 0; i < 20; ++i) {
        s->sha[2 * i] = hex[md[i] >> 4];
        s->sha[2 * i + 1] = hex[md[i] & 15];
    }
    s->sha[40] = '\0';
}

/* ---- uv_poll glue for hiredis ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct poll_glue *g = h->data;
    if (g->ac == NULL)
        return;
    /* an error on the socket: let hiredis read it and notice the failure */
    if (status < 0)
        events = UV_READABLE;
    if (events & UV_READABLE) {
        redisAsyncHandleRead(g->ac);
        if (g->ac == NULL)
            return; /* the read freed the context (cleanup ran) */
    }
    if (events & UV_WRITABLE)
        redisAsyncHandleWrite(g->ac);
}

static void glue_update(struct poll_glue *g)
{
    if (g->events == g->watching)
        return;
    g->watching = g->events;
    if (g->events != 0)
        uv_poll_start(&g->poll, g->events, on_poll);
    else
        uv_poll_stop(&g->poll);
}

static void on_flush(uv_check_t *h)
{
    struct poll_glue *g = h->data;
    uv_check_stop(&g->flush);
    if (g->ac == NULL)
        return;
    g->in_flush = 1;
    redisAsyncHandleWrite(g->ac); /* the socket is nearly always writable: no poll round for it */
    g->in_flush = 0;
}

static void glue_add_read(void *p)
{
    struct poll_glue *g = p;
    g->events |= UV_READABLE;
    glue_update(g);
}

static void glue_del_read(void *p)
{
    struct poll_glue *g = p;
    g->events &= ~UV_READABLE;
    glue_update(g);
}

/*
 * hiredis asks for WRITABLE after every queued command. Once connected we write in the loop's check phase instead:
 * one write for all commands of this turn (pipelining) and no epoll_ctl to arm and disarm WRITABLE per command. Only
 * a write that could not finish (socket buffer full) polls WRITABLE for real.
 */
static void glue_add_write(void *p)
{
    struct poll_glue *g = p;
    if (!g->connected || g->in_flush) {
        g->events |= UV_WRITABLE;
        glue_update(g);
    } else {
        uv_check_start(&g->flush, on_flush);
    }
}

static void glue_del_write(void *p)
{
    struct poll_glue *g = p;
    g->events &= ~UV_WRITABLE;
    glue_update(g);
}

static void glue_closed(uv_handle_t *h)
{
    struct poll_glue *g = h->data;
    if (--g->open_handles == 0)
        free(g);
}

static void glue_cleanup(void *p)
{
    struct poll_glue *g = p;
    g->ac = NULL; /* hiredis is freeing the context */
    uv_poll_stop(&g->poll);
    uv_check_stop(&g->flush);
    uv_close((uv_handle_t *)&g->poll, glue_closed);
    uv_close((uv_handle_t *)&g->flush, glue_closed);
}

static int glue_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    /* commands are small and latency-bound: never let Nagle hold one back behind an unacknowledged write */
    int one = 1;
    setsockopt(ac->c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct poll_glue *g = lg_malloc(sizeof(*g));
    memset(g, 0, sizeof(*g));
    if (uv_poll_init_socket(loop, &g->poll, ac->c.fd) != 0) {
        free(g);
        return -1;
    }
    uv_check_init(loop, &g->flush);
    g->poll.data = g;
    g->flush.data = g;
    g->open_handles = 2;
    g->ac = ac;
    ac->ev.data = g;
    ac->ev.addRead = glue_add_read;
    ac->ev.delRead = glue_del_read;
    ac->ev.addWrite = glue_add_write;
    ac->ev.delWrite = glue_del_write;
    ac->ev.cleanup = glue_cleanup;
    return 0;
}

/* ---- pending list ---- */

static void op_link(lg_redis_conn_t *c, struct op *o)
{
    o->conn = c;
    o->prev = c->head.prev;
    o->next = &c->head;
    c->head.prev->next = o;
    c->head.prev = o;
    ++c->pending;
}

static void op_unlink(struct op *o)
{
    if (o->conn == NULL)
        return;
    o->prev->next = o->next;
    o->next->prev = o->prev;
    --o->conn->pending;
    o->conn = NULL;
}

/* ---- state ---- */

static void set_state(lg_redis_conn_t *c, lg_redis_state_t s)
{
    int was_up = c->state == LG_REDIS_READY, up = s == LG_REDIS_READY;
    c->state = s;
    if (was_up != up && c->on_state != NULL)
        c->on_state(c->state_arg, up);
}

static void on_timer(uv_timer_t *t);

/* Forget the context (hiredis frees it, failing every pending op) and retry after the backoff. */
static void drop(lg_redis_conn_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    if (!c->logged_down) {
        LG_LOG(LG_LOG_WARN, "cluster", "redis %s:%d (%s): %s; reconnecting with backoff", c->ip, c->port, c->label, why);
        c->logged_down = 1;
    }
    c->ac = NULL;
    if (c->state != LG_REDIS_CLOSED)
        set_state(c, LG_REDIS_BACKOFF);
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac); /* pending callbacks run now with reply NULL */
    }
    if (c->state == LG_REDIS_CLOSED)
        return;
    c->backoff_ms = c->backoff_ms == 0 ? BACKOFF_MIN_MS : c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    uv_timer_start(&c->timer, on_timer, c->backoff_ms, 0);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    lg_redis_conn_t *c = ac->data;
    if (c == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        ((redisAsyncContext *)ac)->data = NULL;
        c->ac = NULL;
        char why[160];
        snprintf(why, sizeof(why), "connect failed: %s", ac->errstr != NULL ? ac->errstr : "error");
        drop(c, why);
        return;
    }
    ((struct poll_glue *)ac->ev.data)->connected = 1;
    if (c->logged_down)
        LG_LOG(LG_LOG_INFO, "cluster", "redis %s:%d (%s): connected", c->ip, c->port, c->label);
    c->logged_down = 0;
    c->backoff_ms = 0;
    set_state(c, LG_REDIS_READY);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    lg_redis_conn_t *c = ac->data;
    if (c == NULL)
        return;   /* we dropped it ourselves */
    c->ac = NULL; /* hiredis frees it after this callback */
    drop(c, "connection lost");
}

/* ---- replies ---- */

static void op_free(struct op *o)
{
    free(o);
}

static int send_op(lg_redis_conn_t *c, struct op *o);

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct op *o = privdata;
    lg_redis_conn_t *c = o->conn;
    redisReply *reply = r;
    if (c != NULL && reply != NULL && reply->type == REDIS_REPLY_ERROR && o->script != NULL && !o->resent && reply->len >= 8 &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* the server does not have the script (first use, restart, SCRIPT FLUSH): send the source once */
        op_unlink(o);
        o->resent = 1;
        if (c->ac != NULL && send_op(c, o) == 0)
            return;
        reply = NULL;
    }
    op_unlink(o);
    if (reply == NULL && c != NULL)
        atomic_fetch_add_explicit(&c->failures, 1, memory_order_relaxed);
    if (o->cb != NULL)
        o->cb(o->arg, reply);
    op_free(o);
}

/* Issue o on the connection (EVALSHA/EVAL for scripts). Links it on success. */
static int send_op(lg_redis_conn_t *c, struct op *o)
{
    int rc;
    if (o->script != NULL) {
        const char *argv[64];
        size_t lens[64];
        char nk[16];
        if (o->argc + 3 > 64)
            return -1;
        snprintf(nk, sizeof(nk), "%d", o->numkeys);
        argv[0] = o->resent ? "EVAL" : "EVALSHA";
        lens[0] = strlen(argv[0]);
        argv[1] = o->resent ? o->script->source : o->script->sha;
        lens[1] = strlen(argv[1]);
        argv[2] = nk;
        lens[2] = strlen(nk);
        for (int i = 0; i < o->argc; ++i) {
            argv[3 + i] = o->argv[i];
            lens[3 + i] = o->argvlen[i];
        }
        rc = redisAsyncCommandArgv(c->ac, on_reply, o, o->argc + 3, argv, lens);
    } else {
        rc = redisAsyncCommandArgv(c->ac, on_reply, o, o->argc, o->argv, o->argvlen);
    }
    if (rc != REDIS_OK)
        return -1;
    op_link(c, o);
    return 0;
}

static struct op *op_new(lg_redis_cb *cb, void *arg, const lg_redis_script_t *script, int numkeys, int argc, const char **argv,
                         const size_t *argvlen, int keep_args, int64_t deadline)
{
    size_t extra = 0;
    if (keep_args) {
        extra = (size_t)argc * (sizeof(char *) + sizeof(size_t));
        for (int i = 0; i < argc; ++i)
            extra += argvlen[i] + 1;
    }
    struct op *o = lg_malloc(sizeof(*o) + extra);
    memset(o, 0, sizeof(*o));
    o->cb = cb;
    o->arg = arg;
    o->script = script;
    o->numkeys = numkeys;
    o->argc = argc;
    o->deadline_ms = deadline;
    if (keep_args) {
        char *p = (char *)(o + 1);
        o->argv = (const char **)p;
        p += (size_t)argc * sizeof(char *);
        o->argvlen = (size_t *)p;
        p += (size_t)argc * sizeof(size_t);
        for (int i = 0; i < argc; ++i) {
            memcpy(p, argv[i], argvlen[i]);
            p[argvlen[i]] = '\0';
            o->argv[i] = p;
            o->argvlen[i] = argvlen[i];
            p += argvlen[i] + 1;
        }
    } else {
        o->argv = argv;
        o->argvlen = (size_t *)argvlen;
    }
    return o;
}

int lg_redis_call(lg_redis_conn_t *c, lg_redis_cb *cb, void *arg, int argc, const char **argv, const size_t *argvlen)
{
    if (c->state != LG_REDIS_READY || c->ac == NULL)
        return -1;
    struct op *o = op_new(cb, arg, NULL, 0, argc, argv, argvlen, 0, lg_now_ms() + c->timeout_ms);
    if (send_op(c, o) != 0) {
        op_free(o);
        return -1;
    }
    o->argv = NULL; /* hiredis formatted the command: the caller's arrays may go */
    o->argvlen = NULL;
    atomic_fetch_add_explicit(&c->commands, 1, memory_order_relaxed);
    return 0;
}

int lg_redis_eval(lg_redis_conn_t *c, const lg_redis_script_t *script, lg_redis_cb *cb, void *arg, int numkeys, int argc,
                  const char **argv, const size_t *argvlen)
{
    if (c->state != LG_REDIS_READY || c->ac == NULL || argc > 60)
        return -1;
    struct op *o = op_new(cb, arg, script, numkeys, argc, argv, argvlen, 1, lg_now_ms() + c->timeout_ms);
    if (send_op(c, o) != 0) {
        op_free(o);
        return -1;
    }
    atomic_fetch_add_explicit(&c->commands, 1, memory_order_relaxed);
    return 0;
}

/* ---- subscriber ---- */

static void on_sub(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    lg_redis_conn_t *c = privdata;
    redisReply *reply = r;
    if (reply == NULL || c == NULL || c->state == LG_REDIS_CLOSED)
        return;
    /* ["pmessage", pattern, channel, payload]; the first reply is the ["psubscribe", pattern, count] confirmation */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 && reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "pmessage") == 0 && reply->element[2]->type == REDIS_REPLY_STRING &&
        reply->element[3]->type == REDIS_REPLY_STRING && c->on_message != NULL)
        c->on_message(c->state_arg, reply->element[2]->str, reply->element[2]->len, reply->element[3]->str, reply->element[3]->len);
}

/* ---- connect, deadlines ---- */

static void internal_reply(void *arg, const redisReply *reply)
{
    lg_redis_conn_t *c = arg;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && c->ac != NULL) {
        LG_LOG(LG_LOG_ERR, "cluster", "redis %s:%d (%s): set-up command refused: %.*s", c->ip, c->port, c->label, (int)reply->len,
               reply->str);
    }
}

static void queue_internal(lg_redis_conn_t *c, int argc, const char **argv)
{
    size_t lens[4];
    for (int i = 0; i < argc; ++i)
        lens[i] = strlen(argv[i]);
    struct op *o = op_new(internal_reply, c, NULL, 0, argc, argv, lens, 0, lg_now_ms() + c->connect_timeout_ms + c->timeout_ms);
    if (send_op(c, o) != 0)
        op_free(o);
}

static void start_connect(lg_redis_conn_t *c)
{
    redisAsyncContext *ac = redisAsyncConnect(c->ip, c->port);
    atomic_fetch_add_explicit(&c->reconnects, 1, memory_order_relaxed);
    if (ac == NULL || ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "connect failed: %s", ac != NULL && ac->errstr != NULL ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        drop(c, why);
        return;
    }
    if (glue_attach(ac, c->loop) != 0) {
        redisAsyncFree(ac);
        drop(c, "cannot watch the socket");
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    set_state(c, LG_REDIS_CONNECTING);
    c->connect_started_ms = lg_now_ms();
    /* hiredis buffers these until the connection is up: they go first, before any caller's command */
    if (c->password != NULL && c->password[0] != '\0') {
        const char *auth_user[3] = {"AUTH", c->user, c->password};
        const char *auth[2] = {"AUTH", c->password};
        if (c->user != NULL && c->user[0] != '\0')
            queue_internal(c, 3, auth_user);
        else
            queue_internal(c, 2, auth);
    }
    if (c->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", c->db);
        const char *sel[2] = {"SELECT", db};
        queue_internal(c, 2, sel);
    }
    if (c->pattern != NULL)
        redisAsyncCommand(ac, on_sub, c, "PSUBSCRIBE %s", c->pattern);
    uv_timer_start(&c->timer, on_timer, c->timeout_ms / 2 + 1, c->timeout_ms / 2 + 1);
}

static void on_timer(uv_timer_t *t)
{
    lg_redis_conn_t *c = t->data;
    int64_t now = lg_now_ms();
    if (c->state == LG_REDIS_BACKOFF) {
        start_connect(c);
        return;
    }
    if (c->state == LG_REDIS_CONNECTING && now - c->connect_started_ms > (int64_t)c->connect_timeout_ms) {
        drop(c, "connect timed out");
        return;
    }
    for (struct op *o = c->head.next; o != &c->head; o = o->next)
        if (o->deadline_ms <= now) {
            atomic_fetch_add_explicit(&c->timeouts, 1, memory_order_relaxed);
            drop(c, "command timed out");
            return;
        }
}

lg_redis_conn_t *lg_redis_conn_new(uv_loop_t *loop, const lg_redis_conn_opts_t *opts)
{
    lg_redis_conn_t *c = lg_malloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->head.next = c->head.prev = &c->head;
    c->ip = lg_strdup(opts->ip);
    c->user = opts->user != NULL ? lg_strdup(opts->user) : NULL;
    c->password = opts->password != NULL ? lg_strdup(opts->password) : NULL;
    c->label = lg_strdup(opts->label != NULL ? opts->label : "redis");
    c->pattern = opts->subscribe_pattern != NULL ? lg_strdup(opts->subscribe_pattern) : NULL;
    c->port = opts->port;
    c->db = opts->db;
    c->timeout_ms = opts->timeout_ms != 0 ? opts->timeout_ms : 100;
    c->connect_timeout_ms = opts->connect_timeout_ms != 0 ? opts->connect_timeout_ms : 1000;
    c->on_state = opts->on_state;
    c->on_message = opts->on_message;
    c->state_arg = opts->state_arg;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    start_connect(c);
    return c;
}

lg_redis_state_t lg_redis_conn_state(const lg_redis_conn_t *c)
{
    return c->state;
}

void lg_redis_conn_counters(const lg_redis_conn_t *c, lg_redis_counters_t *out)
{
    lg_redis_conn_t *m = (lg_redis_conn_t *)c;
    out->commands = atomic_load_explicit(&m->commands, memory_order_relaxed);
    out->failures = atomic_load_explicit(&m->failures, memory_order_relaxed);
    out->reconnects = atomic_load_explicit(&m->reconnects, memory_order_relaxed);
    out->timeouts = atomic_load_explicit(&m->timeouts, memory_order_relaxed);
}

static void conn_freed(uv_handle_t *h)
{
    lg_redis_conn_t *c = h->data;
    free(c->ip);
    free(c->user);
    free(c->password);
    free(c->label);
    free(c->pattern);
    free(c);
}

void lg_redis_conn_close(lg_redis_conn_t *c)
{
    if (c == NULL)
        return;
    c->on_state = NULL;
    c->on_message = NULL;
    c->logged_down = 1; /* no "reconnecting" message for a deliberate close */
    set_state(c, LG_REDIS_CLOSED);
    drop(c, "closed");
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_freed);
}

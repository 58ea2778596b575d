/* SPDX-License-Identifier: MIT */
/*
 * The MCP upstream thread and the per-worker mailboxes (see upstream_thread.h).
 * Jobs are plain {fn, arg} nodes in mutex-guarded FIFO lists; a uv_async_t
 * wakes the receiving loop, which swaps the whole list out and runs it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/util.h"
#include "mcp/upstream_thread.h"

struct job {
    lg_mcp_job_fn fn;
    void *arg;
    struct job *next;
};

struct jobq {
    struct job *head, *tail;
};

static void jobq_push(struct jobq *q, lg_mcp_job_fn fn, void *arg)
{
    struct job *j = lg_malloc(sizeof(*j));
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    if (q->tail != NULL)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static void jobq_run(struct job *j)
{
    while (j != NULL) {
        struct job *next = j->next;
        j->fn(j->arg);
        free(j);
        j = next;
    }
}

/* ---- the upstream thread ---- */

static pthread_mutex_t up_mu = PTHREAD_MUTEX_INITIALIZER;
static int up_accepting; /* posts allowed; guarded by up_mu */
static _Atomic int up_running;
static struct jobq up_q;
static uv_loop_t up_loop;
static uv_async_t up_wake;
static uv_thread_t up_thread;
static lg_upclient_t *up_client;
static int up_final_seen; /* the stop job ran: close everything after the current batch */

static void on_up_wake(uv_async_t *a);

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void up_main(void *arg)
{
    (void)arg;
    uv_run(&up_loop, UV_RUN_DEFAULT);
    /* anything a buggy owner left open must not block the join */
    uv_walk(&up_loop, close_walk, NULL);
    uv_run(&up_loop, UV_RUN_DEFAULT);
}

int lg__mcp_upthread_start(void)
{
    int rc = 0;
    pthread_mutex_lock(&up_mu);
    if (!atomic_load(&up_running)) {
        memset(&up_q, 0, sizeof(up_q));
        up_final_seen = 0;
        up_client = NULL;
        uv_loop_init(&up_loop);
        uv_async_init(&up_loop, &up_wake, on_up_wake);
        if (uv_thread_create(&up_thread, up_main, NULL) != 0) {
            uv_close((uv_handle_t *)&up_wake, NULL);
            uv_run(&up_loop, UV_RUN_DEFAULT);
            uv_loop_close(&up_loop);
            LG_LOG(LG_LOG_ERR, "mcp", "cannot start the MCP upstream thread");
            rc = -1;
        } else {
            up_accepting = 1;
            atomic_store(&up_running, 1);
        }
    }
    pthread_mutex_unlock(&up_mu);
    return rc;
}

int lg__mcp_upthread_post(lg_mcp_job_fn fn, void *arg)
{
    pthread_mutex_lock(&up_mu);
    if (!up_accepting) {
        pthread_mutex_unlock(&up_mu);
        return -1;
    }
    jobq_push(&up_q, fn, arg);
    uv_async_send(&up_wake);
    pthread_mutex_unlock(&up_mu);
    return 0;
}

uv_loop_t *lg__mcp_upthread_loop(void)
{
    return &up_loop;
}

lg_upclient_t *lg__mcp_upthread_client(void)
{
    if (up_client == NULL && !up_final_seen)
        up_client = lg_upclient_create(&up_loop, NULL);
    return up_client;
}

/* the last job: marks the batch so the wake handler closes the thread's own handles after running it */
static void final_marker(void *arg)
{
    (void)arg;
    up_final_seen = 1;
}

static void on_up_wake(uv_async_t *a)
{
    (void)a;
    pthread_mutex_lock(&up_mu);
    struct job *j = up_q.head;
    up_q.head = up_q.tail = NULL;
    pthread_mutex_unlock(&up_mu);
    jobq_run(j);
    if (up_final_seen && !uv_is_closing((uv_handle_t *)&up_wake)) {
        if (up_client != NULL) {
            lg_upclient_destroy(up_client, NULL, NULL);
            up_client = NULL;
        }
        uv_close((uv_handle_t *)&up_wake, NULL);
    }
}

void lg__mcp_upthread_stop(lg_mcp_job_fn on_stop, void *arg)
{
    pthread_mutex_lock(&up_mu);
    if (!atomic_load(&up_running) || !up_accepting) {
        pthread_mutex_unlock(&up_mu);
        return;
    }
    if (on_stop != NULL)
        jobq_push(&up_q, on_stop, arg);
    jobq_push(&up_q, final_marker, NULL);
    up_accepting = 0;
    uv_async_send(&up_wake);
    pthread_mutex_unlock(&up_mu);
    uv_thread_join(&up_thread);
    if (uv_loop_close(&up_loop) != 0)
        LG_LOG(LG_LOG_WARN, "mcp", "upstream loop closed with handles still open");
    atomic_store(&up_running, 0);
}

/* ---- worker mailboxes ---- */

struct mailbox {
    uv_loop_t *loop;
    uv_async_t async;
    int open;    /* guarded by mb_mu */
    int closing; /* lg__mcp_mailbox_close ran, its close callback did not yet */
    struct jobq q;
    struct mailbox *next;
};

static pthread_mutex_t mb_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mailbox *mailboxes; /* never freed: one per worker loop for the life of the process */

static void on_mail(uv_async_t *a)
{
    struct mailbox *mb = a->data;
    pthread_mutex_lock(&mb_mu);
    struct job *j = mb->q.head;
    mb->q.head = mb->q.tail = NULL;
    pthread_mutex_unlock(&mb_mu);
    jobq_run(j);
}

static void on_mail_closed(uv_handle_t *h)
{
    struct mailbox *mb = h->data;
    pthread_mutex_lock(&mb_mu);
    mb->open = 0;
    mb->closing = 0;
    struct job *j = mb->q.head;
    mb->q.head = mb->q.tail = NULL;
    pthread_mutex_unlock(&mb_mu);
    /* the loop is going away: whatever was still queued for it cannot run there; drop the nodes (their args leak, the
     * process or test is ending) */
    while (j != NULL) {
        struct job *next = j->next;
        free(j);
        j = next;
    }
}

void lg__mcp_mailbox_prepare(uv_loop_t *loop)
{
    pthread_mutex_lock(&mb_mu);
    struct mailbox *mb = mailboxes;
    while (mb != NULL && mb->loop != loop)
        mb = mb->next;
    if (mb == NULL) {
        mb = lg_malloc(sizeof(*mb));
        memset(mb, 0, sizeof(*mb));
        mb->loop = loop;
        mb->next = mailboxes;
        mailboxes = mb;
    }
    if (!mb->open) { /* never armed, or its close callback already ran */
        /* a closed mailbox of a loop that lived at this address before (tests) is re-armed in place */
        memset(&mb->async, 0, sizeof(mb->async));
        uv_async_init(loop, &mb->async, on_mail);
        mb->async.data = mb;
        uv_unref((uv_handle_t *)&mb->async);
        mb->open = 1;
    }
    pthread_mutex_unlock(&mb_mu);
}

int lg__mcp_mailbox_post(uv_loop_t *loop, lg_mcp_job_fn fn, void *arg)
{
    int rc = -1;
    pthread_mutex_lock(&mb_mu);
    for (struct mailbox *mb = mailboxes; mb != NULL; mb = mb->next) {
        if (mb->loop != loop)
            continue;
        if (mb->open && !mb->closing) {
            jobq_push(&mb->q, fn, arg);
            uv_async_send(&mb->async);
            rc = 0;
        }
        break;
    }
    pthread_mutex_unlock(&mb_mu);
    return rc;
}

void lg__mcp_mailbox_close(uv_loop_t *loop)
{
    pthread_mutex_lock(&mb_mu);
    struct mailbox *mb = mailboxes;
    while (mb != NULL && mb->loop != loop)
        mb = mb->next;
    int close = mb != NULL && mb->open && !mb->closing;
    if (close)
        mb->closing = 1;
    pthread_mutex_unlock(&mb_mu);
    if (close)
        uv_close((uv_handle_t *)&mb->async, on_mail_closed);
}

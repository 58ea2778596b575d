/* SPDX-License-Identifier: MIT */
/*
 * stdio MCP upstream transport (see upstream_stdio.h). One heap object owns
 * the process handle, three pipes and a timer; it frees itself once every
 * handle's close callback ran.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/util.h"
#include "mcp/upstream_stdio.h"

#define STDERR_LINE_MAX 2048
#define STDERR_LINES_PER_SEC 20
#define WRITE_BACKLOG_MAX ((size_t)64 << 20)

extern char **environ;

struct lg_mcp_stdio {
    uv_loop_t *loop;
    lg_mcp_stdio_callbacks_t cb;
    void *ud;
    char module[80]; /* "mcp/<name>" */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    int open_handles; /* freed when this reaches 0 */
    int pid;
    int exited, stopping, closed_reported, stop_step;
    uint32_t grace_ms;
    char why[200]; /* set when we kill the child ourselves */
    /* stdout framing */
    char *line;
    size_t line_len, line_cap, line_max;
    /* stderr relay */
    char eline[STDERR_LINE_MAX + 1];
    size_t eline_len;
    int64_t ewindow_ms;
    unsigned ewindow_lines, esuppressed;
};

static void maybe_free(struct lg_mcp_stdio *s)
{
    if (s->open_handles > 0)
        return;
    free(s->line);
    free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct lg_mcp_stdio *s = h->data;
    --s->open_handles;
    maybe_free(s);
}

static void close_handle(struct lg_mcp_stdio *s, uv_handle_t *h)
{
    (void)s;
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

static void close_all(struct lg_mcp_stdio *s)
{
    close_handle(s, (uv_handle_t *)&s->in);
    close_handle(s, (uv_handle_t *)&s->out);
    close_handle(s, (uv_handle_t *)&s->err);
    close_handle(s, (uv_handle_t *)&s->timer);
    if (s->exited)
        close_handle(s, (uv_handle_t *)&s->proc);
}

static void signal_group(struct lg_mcp_stdio *s, int sig)
{
    if (s->exited || s->pid <= 0)
        return;
    /* the child leads its own process group (UV_PROCESS_DETACHED = setsid): npx and shell wrappers take their
     * grandchildren down with them */
    if (kill(-s->pid, sig) != 0)
        kill(s->pid, sig);
}

static void report_closed(struct lg_mcp_stdio *s, const char *why)
{
    if (s->closed_reported || s->stopping)
        return;
    s->closed_reported = 1;
    s->cb.on_closed(s->ud, why);
}

/* ---- stderr: one log line per child line, at most STDERR_LINES_PER_SEC per second ---- */

static void stderr_line(struct lg_mcp_stdio *s, const char *l, size_t n)
{
    int64_t now = lg_now_ms();
    if (now - s->ewindow_ms >= 1000) {
        if (s->esuppressed > 0)
            LG_LOG(LG_LOG_WARN, s->module, "%u stderr lines suppressed (rate limit)", s->esuppressed);
        s->ewindow_ms = now;
        s->ewindow_lines = 0;
        s->esuppressed = 0;
    }
    if (++s->ewindow_lines > STDERR_LINES_PER_SEC) {
        ++s->esuppressed;
        return;
    }
    while (n > 0 && (l[n - 1] == '\r' || l[n - 1] == ' '))
        --n;
    if (n == 0)
        return;
    char buf[STDERR_LINE_MAX + 1];
    for (size_t i = 0; i < n; ++i)
        buf[i] = ((unsigned char)l[i] < 0x20 && l[i] != '\t') || l[i] == 0x7f ? '?' : l[i];
    buf[n] = '\0';
    LG_LOG(LG_LOG_INFO, s->module, "%s", buf);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = lg_malloc(suggested);
    buf->len = suggested;
}

static void on_err_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct lg_mcp_stdio *s = st->data;
    for (ssize_t i = 0; i < nread; ++i) {
        char ch = buf->base[i];
        if (ch == '\n' || s->eline_len == STDERR_LINE_MAX) {
            stderr_line(s, s->eline, s->eline_len);
            s->eline_len = 0;
            if (ch == '\n')
                continue;
        }
        s->eline[s->eline_len++] = ch;
    }
    free(buf->base);
    if (nread < 0) {
        if (s->eline_len > 0)
            stderr_line(s, s->eline, s->eline_len);
        s->eline_len = 0;
        uv_read_stop(st);
    }
}

/* ---- stdout: newline-delimited JSON-RPC ---- */

static void on_eof_timer(uv_timer_t *t)
{
    struct lg_mcp_stdio *s = t->data;
    if (s->exited || s->stopping)
        return;
    snprintf(s->why, sizeof(s->why), "closed its stdout");
    signal_group(s, SIGKILL);
}

static void stdout_line(struct lg_mcp_stdio *s, const char *l, size_t n)
{
    while (n > 0 && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
        --n;
    if (n == 0 || s->stopping)
        return;
    json_error_t jerr;
    json_t *msg = json_loadb(l, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(msg)) {
        /* stdout must carry MCP only; a stray line is logged (cut) and skipped rather than fatal */
        LG_LOG(LG_LOG_WARN, s->module, "non-JSON-RPC line on stdout ignored: %.120s%s", msg == NULL ? jerr.text : "not an object",
               "");
        json_decref(msg);
        return;
    }
    s->cb.on_message(s->ud, msg);
}

static void on_out_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct lg_mcp_stdio *s = st->data;
    if (nread > 0) {
        const char *p = buf->base, *end = buf->base + nread;
        while (p < end && !s->closed_reported) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t chunk = (size_t)((nl != NULL ? nl : end) - p);
            if (s->line_len + chunk > s->line_max) {
                snprintf(s->why, sizeof(s->why), "stdout line over %zu bytes", s->line_max);
                LG_LOG(LG_LOG_ERR, s->module, "%s: killing the server", s->why);
                uv_read_stop(st);
                signal_group(s, SIGKILL);
                break;
            }
            if (nl != NULL && s->line_len == 0) {
                stdout_line(s, p, chunk); /* whole line inside this read: no copy */
            } else {
                if (s->line_len + chunk > s->line_cap) {
                    size_t cap = s->line_cap != 0 ? s->line_cap : 4096;
                    while (cap < s->line_len + chunk)
                        cap *= 2;
                    s->line = lg_realloc(s->line, cap);
                    s->line_cap = cap;
                }
                memcpy(s->line + s->line_len, p, chunk);
                s->line_len += chunk;
                if (nl != NULL) {
                    stdout_line(s, s->line, s->line_len);
                    s->line_len = 0;
                }
            }
            p += chunk + (nl != NULL ? 1 : 0);
        }
    }
    free(buf->base);
    if (nread < 0) {
        uv_read_stop(st);
        /* usually the child is exiting (its exit status is the better report); one that lives on without stdout is
         * useless and killed after a short grace */
        if (!s->exited && !s->stopping)
            uv_timer_start(&s->timer, on_eof_timer, 1000, 0);
    }
}

/* ---- process ---- */

static void on_child_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct lg_mcp_stdio *s = p->data;
    char why[256];
    s->exited = 1;
    if (s->why[0] != '\0')
        snprintf(why, sizeof(why), "%s", s->why);
    else if (term_signal != 0)
        snprintf(why, sizeof(why), "killed by signal %d", term_signal);
    else
        snprintf(why, sizeof(why), "exited with status %lld", (long long)status);
    if (s->stopping)
        LG_LOG(LG_LOG_INFO, s->module, "server stopped (pid %d, %s)", s->pid, why);
    else
        LG_LOG(LG_LOG_WARN, s->module, "server pid %d %s", s->pid, why);
    uv_timer_stop(&s->timer);
    /* callback first (it may still look at the pid), then close; the object lives until the close callbacks ran */
    s->open_handles++;
    report_closed(s, why);
    s->stopping = 1;
    close_all(s);
    s->open_handles--;
    maybe_free(s);
}

static char **merged_env(char *const *over)
{
    size_t n = 0, m = 0;
    while (environ != NULL && environ[n] != NULL)
        ++n;
    while (over != NULL && over[m] != NULL)
        ++m;
    char **env = lg_malloc((n + m + 1) * sizeof(*env));
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int shadowed = 0;
        for (size_t j = 0; j < m && !shadowed; ++j)
            shadowed = strncmp(over[j], environ[i], nl) == 0 && over[j][nl] == '=';
        if (!shadowed)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; ++j)
        env[k++] = over[j];
    env[k] = NULL;
    return env;
}

lg_mcp_stdio_t *lg__mcp_stdio_spawn(uv_loop_t *loop, const lg_mcp_stdio_opts_t *opts, const lg_mcp_stdio_callbacks_t *cb, void *ud,
                                    char *err, size_t errlen)
{
    struct lg_mcp_stdio *s = lg_malloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->cb = *cb;
    s->ud = ud;
    s->line_max = opts->max_line_bytes != 0 ? opts->max_line_bytes : LG_MCP_STDIO_MAX_LINE;
    s->grace_ms = opts->stop_grace_ms != 0 ? opts->stop_grace_ms : 2000;
    snprintf(s->module, sizeof(s->module), "mcp/%s", opts->name);
    s->ewindow_ms = lg_now_ms();

    uv_pipe_init(loop, &s->in, 0);
    uv_pipe_init(loop, &s->out, 0);
    uv_pipe_init(loop, &s->err, 0);
    uv_timer_init(loop, &s->timer);
    s->in.data = s->out.data = s->err.data = s->timer.data = s;
    s->open_handles = 4;

    size_t na = 0;
    while (opts->args != NULL && opts->args[na] != NULL)
        ++na;
    char **argv = lg_malloc((na + 2) * sizeof(*argv));
    argv[0] = (char *)opts->command;
    for (size_t i = 0; i < na; ++i)
        argv[i + 1] = opts->args[i];
    argv[na + 1] = NULL;
    char **env = merged_env(opts->env);

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&s->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&s->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&s->err;
    uv_process_options_t po;
    memset(&po, 0, sizeof(po));
    memset(&s->proc, 0, sizeof(s->proc));
    po.exit_cb = on_child_exit;
    po.file = opts->command;
    po.args = argv;
    po.env = env;
    po.cwd = opts->cwd;
    po.flags = UV_PROCESS_DETACHED;
    po.stdio_count = 3;
    po.stdio = stdio;
    int rc = uv_spawn(loop, &s->proc, &po);
    s->proc.data = s;
    free(argv);
    free(env);
    if (rc != 0) {
        snprintf(err, errlen, "spawn %s: %s", opts->command, uv_strerror(rc));
        s->stopping = 1;
        close_all(s);
        /* libuv initializes the process handle before it can fail: it must be closed like the others */
        if (s->proc.type == UV_PROCESS) {
            s->open_handles++;
            close_handle(s, (uv_handle_t *)&s->proc);
        }
        return NULL;
    }
    s->open_handles++; /* the process handle */
    s->pid = s->proc.pid;
    uv_read_start((uv_stream_t *)&s->out, on_alloc, on_out_read);
    uv_read_start((uv_stream_t *)&s->err, on_alloc, on_err_read);
    LG_LOG(LG_LOG_INFO, s->module, "started %s (pid %d)", opts->command, s->pid);
    return s;
}

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write means the child is going away: its exit is reported by on_child_exit */
    free(w->data);
    free(w);
}

int lg__mcp_stdio_send(lg_mcp_stdio_t *s, const json_t *msg)
{
    if (s->stopping || s->exited || uv_is_closing((uv_handle_t *)&s->in))
        return -1;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&s->in) > WRITE_BACKLOG_MAX)
        return -1;
    /* compact dumps escape every control character inside strings: a message is always one line */
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text == NULL)
        return -1;
    size_t n = strlen(text);
    char *line = lg_realloc(text, n + 1);
    line[n] = '\n';
    uv_write_t *w = lg_malloc(sizeof(*w));
    w->data = line;
    uv_buf_t b = uv_buf_init(line, (unsigned)(n + 1));
    if (uv_write(w, (uv_stream_t *)&s->in, &b, 1, on_written) != 0) {
        free(line);
        free(w);
        return -1;
    }
    return 0;
}

int lg__mcp_stdio_pid(const lg_mcp_stdio_t *s)
{
    return s->pid;
}

static void on_stop_timer(uv_timer_t *t)
{
    struct lg_mcp_stdio *s = t->data;
    if (s->exited)
        return;
    if (s->stop_step == 0) {
        LG_LOG(LG_LOG_INFO, s->module, "pid %d still running %u ms after stdin closed: SIGTERM", s->pid, s->grace_ms);
        signal_group(s, SIGTERM);
        s->stop_step = 1;
        uv_timer_start(&s->timer, on_stop_timer, s->grace_ms, 0);
    } else {
        LG_LOG(LG_LOG_WARN, s->module, "pid %d ignored SIGTERM: SIGKILL", s->pid);
        signal_group(s, SIGKILL);
    }
}

void lg__mcp_stdio_stop(lg_mcp_stdio_t *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    /* EOF on stdin is the polite way to end an MCP stdio server */
    close_handle(s, (uv_handle_t *)&s->in);
    if (!s->exited)
        uv_timer_start(&s->timer, on_stop_timer, s->grace_ms, 0);
}

void lg__mcp_stdio_kill(lg_mcp_stdio_t *s, const char *why)
{
    if (s->stopping || s->exited)
        return;
    snprintf(s->why, sizeof(s->why), "%s", why);
    signal_group(s, SIGKILL);
}

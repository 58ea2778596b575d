/* SPDX-License-Identifier: MIT */
/*
 * A tiny stdio MCP server for the federation tests: newline-delimited
 * JSON-RPC on stdin/stdout, diagnostics on stderr. Tools: echo, add, slow
 * (answers after "ms"), crash (exits without answering), progress (sends
 * notifications/progress first), log (a notifications/message first), toggle
 * (adds the tool "extra" and sends notifications/tools/list_changed), fail
 * (JSON-RPC error; with a "topology" argument a -32603 validation message), bad (isError result). tools/list pages hold 2 tools.
 * One resource (fake://a), one template (fake://t/{id}), one prompt (greet). Environment: FAKE_HANG_INIT=1 never answers
 * initialize; FAKE_NOISE=N writes N stderr lines at start.
 */
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct delayed {
    long long due_ms;
    json_t *id;
    json_t *result;
    struct delayed *next;
};

static struct delayed *delayed;
static int extra_tool;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(json_t *msg)
{
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    char *s = json_dumps(msg, JSON_COMPACT);
    fprintf(stdout, "%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(msg);
}

static void respond(json_t *id, json_t *result)
{
    emit(json_pack("{s:O,s:o}", "id", id, "result", result));
}

static void respond_error(json_t *id, int code, const char *message)
{
    emit(json_pack("{s:O,s:{s:i,s:s}}", "id", id, "error", "code", code, "message", message));
}

static json_t *text_result(const char *text, int is_error)
{
    json_t *r = json_pack("{s:[{s:s,s:s}]}", "content", "type", "text", "text", text);
    if (is_error)
        json_object_set_new(r, "isError", json_true());
    return r;
}

static json_t *tool(const char *name)
{
    return json_pack("{s:s,s:s,s:{s:s}}", "name", name, "description", name, "inputSchema", "type", "object");
}

static json_t *all_tools(void)
{
    static const char *const names[] = {"echo", "add", "slow", "crash", "progress", "log", "toggle", "fail", "bad", NULL};
    json_t *a = json_array();
    for (const char *const *n = names; *n != NULL; ++n)
        json_array_append_new(a, tool(*n));
    if (extra_tool)
        json_array_append_new(a, tool("extra"));
    return a;
}

static void tools_list(json_t *id, json_t *params)
{
    json_t *all = all_tools();
    size_t off = 0;
    const char *cursor = json_string_value(json_object_get(params, "cursor"));
    if (cursor != NULL)
        off = strtoul(cursor, NULL, 10);
    json_t *page = json_array();
    for (size_t i = off; i < json_array_size(all) && i < off + 2; ++i)
        json_array_append(page, json_array_get(all, i));
    json_t *res = json_pack("{s:o}", "tools", page);
    if (off + 2 < json_array_size(all)) {
        char c[32];
        snprintf(c, sizeof(c), "%zu", off + 2);
        json_object_set_new(res, "nextCursor", json_string(c));
    }
    json_decref(all);
    respond(id, res);
}

static void tools_call(json_t *id, json_t *params)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    json_t *args = json_object_get(params, "arguments");
    json_t *tok = json_object_get(json_object_get(params, "_meta"), "progressToken");
    char buf[512];
    if (name == NULL) {
        respond_error(id, -32602, "missing name");
    } else if (strcmp(name, "echo") == 0) {
        const char *m = json_string_value(json_object_get(args, "message"));
        snprintf(buf, sizeof(buf), "Echo: %s", m != NULL ? m : "");
        respond(id, text_result(buf, 0));
    } else if (strcmp(name, "add") == 0) {
        long long a = json_integer_value(json_object_get(args, "a")), b = json_integer_value(json_object_get(args, "b"));
        snprintf(buf, sizeof(buf), "%lld", a + b);
        json_t *r = text_result(buf, 0);
        json_object_set_new(r, "structuredContent", json_pack("{s:I}", "sum", (json_int_t)(a + b)));
        respond(id, r);
    } else if (strcmp(name, "slow") == 0) {
        struct delayed *d = calloc(1, sizeof(*d));
        d->due_ms = now_ms() + json_integer_value(json_object_get(args, "ms"));
        d->id = json_incref(id);
        d->result = text_result("slow done", 0);
        d->next = delayed;
        delayed = d;
    } else if (strcmp(name, "crash") == 0) {
        fprintf(stderr, "crashing on request\n");
        exit(3);
    } else if (strcmp(name, "progress") == 0) {
        for (int i = 1; i <= 3 && tok != NULL; ++i)
            emit(json_pack("{s:s,s:{s:O,s:i,s:i,s:s}}", "method", "notifications/progress", "params", "progressToken", tok,
                           "progress", i, "total", 3, "message", "step"));
        respond(id, text_result("progress done", 0));
    } else if (strcmp(name, "log") == 0) {
        emit(json_pack("{s:s,s:{s:s,s:s,s:s}}", "method", "notifications/message", "params", "level", "warning", "logger", "fake",
                       "data", "log from tool"));
        respond(id, text_result("log done", 0));
    } else if (strcmp(name, "toggle") == 0) {
        extra_tool = !extra_tool;
        emit(json_pack("{s:s}", "method", "notifications/tools/list_changed"));
        respond(id, text_result(extra_tool ? "extra on" : "extra off", 0));
    } else if (strcmp(name, "fail") == 0 && json_object_get(args, "topology") != NULL) {
        /* how some servers (ruv-swarm) reject an argument: -32603 with a validation message */
        respond_error(id, -32603, "topology must be one of: mesh, hierarchical, ring, star");
    } else if (strcmp(name, "fail") == 0) {
        respond_error(id, -32603, "fake failure");
    } else if (strcmp(name, "bad") == 0) {
        respond(id, text_result("bad things", 1));
    } else if (strcmp(name, "extra") == 0 && extra_tool) {
        respond(id, text_result("extra!", 0));
    } else {
        respond_error(id, -32602, "Unknown tool");
    }
}

static void handle(json_t *msg)
{
    const char *method = json_string_value(json_object_get(msg, "method"));
    json_t *id = json_object_get(msg, "id");
    json_t *params = json_object_get(msg, "params");
    if (method == NULL)
        return; /* responses to our (non-existent) requests */
    if (id == NULL) {
        if (strcmp(method, "notifications/cancelled") == 0) {
            json_t *rid = json_object_get(params, "requestId");
            fprintf(stderr, "cancelled %lld\n", (long long)json_integer_value(rid));
            for (struct delayed **pp = &delayed; *pp != NULL; pp = &(*pp)->next) {
                if (json_equal((*pp)->id, rid)) {
                    struct delayed *d = *pp;
                    *pp = d->next;
                    json_decref(d->id);
                    json_decref(d->result);
                    free(d);
                    break;
                }
            }
        }
        return;
    }
    if (strcmp(method, "initialize") == 0) {
        if (getenv("FAKE_HANG_INIT") != NULL)
            return;
        respond(id,
                json_pack("{s:s,s:{s:{s:b},s:{},s:{},s:{}},s:{s:s,s:s}}", "protocolVersion", "2025-11-25", "capabilities", "tools",
                          "listChanged", 1, "resources", "prompts", "completions", "serverInfo", "name", "fake", "version", "1.0"));
    } else if (strcmp(method, "ping") == 0) {
        respond(id, json_object());
    } else if (strcmp(method, "tools/list") == 0) {
        tools_list(id, params);
    } else if (strcmp(method, "tools/call") == 0) {
        tools_call(id, params);
    } else if (strcmp(method, "resources/list") == 0) {
        respond(id, json_pack("{s:[{s:s,s:s}]}", "resources", "uri", "fake://a", "name", "a"));
    } else if (strcmp(method, "resources/templates/list") == 0) {
        respond(id, json_pack("{s:[{s:s,s:s}]}", "resourceTemplates", "uriTemplate", "fake://t/{id}", "name", "t"));
    } else if (strcmp(method, "resources/read") == 0) {
        const char *uri = json_string_value(json_object_get(params, "uri"));
        respond(id, json_pack("{s:[{s:s,s:s}]}", "contents", "uri", uri != NULL ? uri : "", "text", "resource text"));
    } else if (strcmp(method, "prompts/list") == 0) {
        respond(id, json_pack("{s:[{s:s}]}", "prompts", "name", "greet"));
    } else if (strcmp(method, "prompts/get") == 0) {
        respond(id, json_pack("{s:[{s:s,s:{s:s,s:s}}]}", "messages", "role", "user", "content", "type", "text", "text", "hello"));
    } else if (strcmp(method, "completion/complete") == 0) {
        respond(id, json_pack("{s:{s:[s]}}", "completion", "values", "x"));
    } else {
        respond_error(id, -32601, "Method not found");
    }
}

int main(void)
{
    static char line[1 << 20];
    size_t len = 0;
    const char *noise = getenv("FAKE_NOISE");
    fprintf(stderr, "fake MCP server starting\n");
    for (int i = 0; noise != NULL && i < atoi(noise); ++i)
        fprintf(stderr, "noise line %d\n", i);
    for (;;) {
        int timeout = -1;
        long long now = now_ms();
        for (struct delayed *d = delayed; d != NULL; d = d->next) {
            int t = d->due_ms <= now ? 0 : (int)(d->due_ms - now);
            if (timeout < 0 || t < timeout)
                timeout = t;
        }
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int n = poll(&pfd, 1, timeout);
        now = now_ms();
        for (struct delayed **pp = &delayed; *pp != NULL;) {
            struct delayed *d = *pp;
            if (d->due_ms <= now) {
                *pp = d->next;
                respond(d->id, d->result);
                json_decref(d->id);
                free(d);
            } else {
                pp = &d->next;
            }
        }
        if (n <= 0)
            continue;
        ssize_t r = read(0, line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            return 0; /* stdin closed: the polite way to stop us */
        len += (size_t)r;
        char *start = line, *nl;
        while ((nl = memchr(start, '\n', len - (size_t)(start - line))) != NULL) {
            json_t *msg = json_loadb(start, (size_t)(nl - start), 0, NULL);
            if (msg != NULL)
                handle(msg);
            json_decref(msg);
            start = nl + 1;
        }
        len -= (size_t)(start - line);
        memmove(line, start, len);
    }
}

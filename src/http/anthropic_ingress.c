/* SPDX-License-Identifier: MIT */
/*
 * Anthropic Messages skin (see anthropic_ingress.h): requests are validated
 * strictly and turned into OpenAI chat requests; OpenAI completions and chunks
 * are turned back into Anthropic messages and named SSE events in Anthropic's
 * exact event order (message_start, then per block content_block_start /
 * _delta / _stop, message_delta with stop_reason and usage, message_stop).
 *
 * Request mapping notes (where Anthropic has no OpenAI equivalent):
 * - text blocks join with "\n\n" into a string content unless a block carries
 *   cache_control (then content parts keep it); same for `system`.
 * - tool_result blocks become one `tool` message each, before the rest of the
 *   user turn; is_error:true prefixes the content with "Error: "; images inside a
 *   tool_result move into the user message that follows the tool messages.
 * - document blocks: base64 / url PDFs → OpenRouter `file` parts; text sources →
 *   text; `content` sources → their text blocks; file ids → 400.
 * - thinking, redacted_thinking and server-tool blocks (server_tool_use,
 *   *_tool_result, mcp_*, container_upload, search_result) are dropped;
 *   server tools in `tools` (a `type` other than "custom") are dropped.
 * - thinking {enabled,budget_tokens} → reasoning {max_tokens}; adaptive →
 *   reasoning {enabled:true}; disabled → nothing. output_format /
 *   output_config.format json_schema → response_format json_schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http/anthropic_ingress.h"
#include "http/ingress_common.h"
#include "core/error.h"
#include "llmgate/error.h"

/* ------------------------------------------------------------------------------------------------------------------------ */
/* request: Anthropic → OpenAI                                                                                              */

#define BAD(...)                                                                                                                   \
    do {                                                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                                                        \
        rc = LG_EINVAL;                                                                                                            \
        goto out;                                                                                                                  \
    } while (0)

/* Fields the gateway itself reads (request.c); passed through untouched. */

/* Block types Anthropic defines that have no meaning for a non-Anthropic upstream: dropped, not rejected. */
static const char *const dropped_blocks[] = {"thinking",
                                             "redacted_thinking",
                                             "server_tool_use",
                                             "web_search_tool_result",
                                             "web_fetch_tool_result",
                                             "code_execution_tool_result",
                                             "bash_code_execution_tool_result",
                                             "text_editor_code_execution_tool_result",
                                             "tool_search_tool_result",
                                             "mcp_tool_use",
                                             "mcp_tool_result",
                                             "container_upload",
                                             "search_result",
                                             NULL};

static int in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; ++i)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Append s to a "\n\n"-joined string accumulator (NULL = empty). Returns the new accumulator. */
static json_t *join_text(json_t *acc, const char *s)
{
    if (acc == NULL)
        return json_string(s);
    size_t a = json_string_length(acc), b = strlen(s);
    char *buf = lg_malloc(a + b + 3);
    memcpy(buf, json_string_value(acc), a);
    memcpy(buf + a, "\n\n", 2);
    memcpy(buf + a + 2, s, b + 1);
    json_t *r = json_stringn(buf, a + b + 2);
    free(buf);
    json_decref(acc);
    return r;
}

/* Content of a message made of text parts: a joined string when no part carries cache_control, else the parts themselves. */
static json_t *text_parts_content(json_t *parts, int has_cache)
{
    if (has_cache)
        return json_incref(parts);
    json_t *acc = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) acc = join_text(acc, json_string_value(json_object_get(p, "text")));
    return acc != NULL ? acc : json_string("");
}

/* A {type:"text",text,cache_control?} block → OpenAI text part (new). Sets *has_cache. */
static int text_part(json_t *blk, const char *path, json_t **part, int *has_cache, char *err, size_t errlen)
{
    int rc = 0;
    json_t *text = json_object_get(blk, "text");
    if (!json_is_string(text))
        BAD("%s.text: expected string", path);
    *part = json_pack("{s:s,s:O}", "type", "text", "text", text);
    json_t *cc = json_object_get(blk, "cache_control");
    if (cc != NULL && !json_is_null(cc)) {
        if (!json_is_object(cc))
            BAD("%s.cache_control: expected object", path);
        json_object_set(*part, "cache_control", cc);
        *has_cache = 1;
    }
out:
    if (rc != 0) {
        json_decref(*part);
        *part = NULL;
    }
    return rc;
}

/* blk.source: an object with a string "type". */
static int block_source(json_t *blk, const char *path, json_t **src, const char **type, char *err, size_t errlen)
{
    int rc = 0;
    *src = json_object_get(blk, "source");
    if (!json_is_object(*src))
        BAD("%s.source: expected object", path);
    *type = json_string_value(json_object_get(*src, "type"));
    if (*type == NULL)
        BAD("%s.source.type: expected string", path);
out:
    return rc;
}

/* A "base64" source → "data:<media_type>;base64,<data>", a "url" source → its url; *out is a new reference. */
static int source_url(json_t *src, int base64, const char *path, json_t **out, char *err, size_t errlen)
{
    int rc = 0;
    *out = NULL;
    if (base64) {
        const char *mt = json_string_value(json_object_get(src, "media_type"));
        json_t *data = json_object_get(src, "data");
        if (mt == NULL || *mt == '\0')
            BAD("%s.source.media_type: expected non-empty string", path);
        if (!json_is_string(data))
            BAD("%s.source.data: expected string", path);
        size_t mlen = strlen(mt), dlen = json_string_length(data);
        char *url = lg_malloc(mlen + dlen + 14);
        memcpy(url, "data:", 5);
        memcpy(url + 5, mt, mlen);
        memcpy(url + 5 + mlen, ";base64,", 8);
        memcpy(url + 13 + mlen, json_string_value(data), dlen);
        *out = json_stringn(url, mlen + dlen + 13);
        free(url);
    } else {
        json_t *url = json_object_get(src, "url");
        if (!json_is_string(url) || json_string_length(url) == 0)
            BAD("%s.source.url: expected non-empty string", path);
        *out = json_incref(url);
    }
out:
    return rc;
}

static int image_part(json_t *blk, const char *path, json_t **part, char *err, size_t errlen)
{
    int rc;
    json_t *src, *u;
    const char *st;
    *part = NULL;
    if ((rc = block_source(blk, path, &src, &st, err, errlen)) != 0)
        return rc;
    if (strcmp(st, "base64") != 0 && strcmp(st, "url") != 0)
        BAD("%s.source.type: unsupported image source \"%.40s\"", path, st);
    if ((rc = source_url(src, st[0] == 'b', path, &u, err, errlen)) != 0)
        return rc;
    *part = json_pack("{s:s,s:{s:o}}", "type", "image_url", "image_url", "url", u);
out:
    return rc;
}

/* document block → appended parts (file part for PDFs, text parts otherwise). */
static int document_parts(json_t *blk, const char *path, json_t *parts, char *err, size_t errlen)
{
    int rc;
    json_t *src;
    const char *st;
    if ((rc = block_source(blk, path, &src, &st, err, errlen)) != 0)
        return rc;
    const char *title = json_string_value(json_object_get(blk, "title"));
    const char *fname = title != NULL && *title != '\0' ? title : "document.pdf";
    if (strcmp(st, "base64") == 0 || strcmp(st, "url") == 0) {
        json_t *fd;
        if ((rc = source_url(src, st[0] == 'b', path, &fd, err, errlen)) != 0)
            return rc;
        json_array_append_new(parts, json_pack("{s:s,s:{s:s,s:o}}", "type", "file", "file", "filename", fname, "file_data", fd));
    } else if (strcmp(st, "text") == 0) {
        json_t *data = json_object_get(src, "data");
        if (!json_is_string(data))
            BAD("%s.source.data: expected string", path);
        json_t *t = title != NULL ? join_text(json_string(title), json_string_value(data)) : json_incref(data);
        json_array_append_new(parts, json_pack("{s:s,s:o}", "type", "text", "text", t));
    } else if (strcmp(st, "content") == 0) {
        json_t *c = json_object_get(src, "content");
        if (json_is_string(c)) {
            json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "text", "text", c));
        } else if (json_is_array(c)) {
            size_t k;
            json_t *b;
            json_array_foreach(c, k, b)
            {
                const char *bt = json_string_value(json_object_get(b, "type"));
                if (bt == NULL || strcmp(bt, "text") != 0 || !json_is_string(json_object_get(b, "text")))
                    BAD("%s.source.content[%zu]: expected text block", path, k);
                json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(b, "text")));
            }
        } else {
            BAD("%s.source.content: expected string or array", path);
        }
    } else {
        BAD("%s.source.type: unsupported document source \"%.40s\"", path, st);
    }
out:
    return rc;
}

/* tool_result block → one tool message (appended to tool_msgs); images and documents go to user_parts. */
static int tool_result(json_t *blk, const char *path, json_t *tool_msgs, json_t *user_parts, char *err, size_t errlen)
{
    int rc = 0;
    json_t *acc = NULL;
    json_t *id = json_object_get(blk, "tool_use_id");
    if (!json_is_string(id) || json_string_length(id) == 0)
        BAD("%s.tool_use_id: expected non-empty string", path);
    json_t *is_error = json_object_get(blk, "is_error");
    if (is_error != NULL && !json_is_null(is_error) && !json_is_boolean(is_error))
        BAD("%s.is_error: expected boolean", path);
    json_t *cc = json_object_get(blk, "cache_control");
    if (cc != NULL && !json_is_null(cc) && !json_is_object(cc))
        BAD("%s.cache_control: expected object", path);
    json_t *c = json_object_get(blk, "content");
    if (c == NULL || json_is_null(c)) {
        /* empty result */
    } else if (json_is_string(c)) {
        acc = json_incref(c);
    } else if (json_is_array(c)) {
        size_t k;
        json_t *b;
        json_array_foreach(c, k, b)
        {
            char sub[160];
            snprintf(sub, sizeof(sub), "%s.content[%zu]", path, k);
            if (!json_is_object(b))
                BAD("%s: expected object", sub);
            const char *bt = json_string_value(json_object_get(b, "type"));
            if (bt == NULL)
                BAD("%s.type: expected string", sub);
            if (strcmp(bt, "text") == 0) {
                json_t *text = json_object_get(b, "text");
                if (!json_is_string(text))
                    BAD("%s.text: expected string", sub);
                acc = join_text(acc, json_string_value(text));
            } else if (strcmp(bt, "image") == 0) {
                /* OpenAI tool messages carry text only: the image rides in the user message after the tool messages */
                json_t *part = NULL;
                if ((rc = image_part(b, sub, &part, err, errlen)) != 0)
                    goto out;
                json_array_append_new(user_parts, part);
            } else if (strcmp(bt, "document") == 0) {
                if ((rc = document_parts(b, sub, user_parts, err, errlen)) != 0)
                    goto out;
            } else if (strcmp(bt, "search_result") != 0) { /* search_result: dropped */
                BAD("%s.type: unknown block type \"%.40s\"", sub, bt);
            }
        }
    } else {
        BAD("%s.content: expected string or array", path);
    }
    if (acc == NULL)
        acc = json_string("");
    if (json_is_true(is_error)) {
        /* OpenAI has no is_error: tell the model in the text */
        size_t n = json_string_length(acc);
        char *buf = lg_malloc(n + 8);
        memcpy(buf, "Error: ", 7);
        memcpy(buf + 7, json_string_value(acc), n + 1);
        json_decref(acc);
        acc = json_stringn(buf, n + 7);
        free(buf);
    }
    json_t *content =
        json_is_object(cc) ? json_pack("[{s:s,s:O,s:O}]", "type", "text", "text", acc, "cache_control", cc) : json_incref(acc);
    json_array_append_new(tool_msgs, json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id", id, "content", content));
out:
    json_decref(acc);
    return rc;
}

static int tool_use(json_t *blk, const char *path, json_t *tool_calls, char *err, size_t errlen)
{
    int rc = 0;
    json_t *id = json_object_get(blk, "id"), *name = json_object_get(blk, "name"), *input = json_object_get(blk, "input");
    if (!json_is_string(id) || json_string_length(id) == 0)
        BAD("%s.id: expected non-empty string", path);
    if (!json_is_string(name) || json_string_length(name) == 0)
        BAD("%s.name: expected non-empty string", path);
    if (!json_is_object(input))
        BAD("%s.input: expected object", path);
    char *args = json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY);
    if (args == NULL)
        BAD("%s.input: cannot be encoded", path);
    json_array_append_new(
        tool_calls, json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", id, "type", "function", "function", "name", name, "arguments", args));
    free(args);
out:
    return rc;
}

/* One Anthropic message → zero or more OpenAI messages appended to msgs. */
static int convert_system_at(json_t *sys, const char *where, json_t *msgs, char *err, size_t errlen);

static int convert_message(json_t *m, size_t i, json_t *msgs, char *err, size_t errlen)
{
    int rc = 0;
    json_t *parts = json_array(), *tool_calls = json_array(), *tool_msgs = json_array();
    int has_cache = 0, only_text = 1;
    if (!json_is_object(m))
        BAD("messages[%zu]: expected object", i);
    const char *role = json_string_value(json_object_get(m, "role"));
    if (role == NULL)
        BAD("messages[%zu].role: expected string", i);
    int user = strcmp(role, "user") == 0;
    if (strcmp(role, "system") == 0) {
        /* not in Anthropic's API, but what Claude Code sends for model ids it does not know (environment notes between
         * turns): kept as a system message in place; the anthropic plugin hoists it into `system` again */
        char where[48];
        snprintf(where, sizeof(where), "messages[%zu].content", i);
        rc = convert_system_at(json_object_get(m, "content"), where, msgs, err, errlen);
        goto out;
    }
    if (!user && strcmp(role, "assistant") != 0)
        BAD("messages[%zu].role: must be \"user\", \"assistant\" or \"system\", got \"%.40s\"", i, role);
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", role, "content", content));
        goto out;
    }
    if (!json_is_array(content))
        BAD("messages[%zu].content: expected string or array", i);
    if (json_array_size(content) == 0)
        BAD("messages[%zu].content: must not be empty", i);

    size_t j;
    json_t *blk;
    json_array_foreach(content, j, blk)
    {
        char path[96];
        snprintf(path, sizeof(path), "messages[%zu].content[%zu]", i, j);
        if (!json_is_object(blk))
            BAD("%s: expected object", path);
        const char *type = json_string_value(json_object_get(blk, "type"));
        if (type == NULL)
            BAD("%s.type: expected string", path);
        if (strcmp(type, "text") == 0) {
            json_t *part = NULL;
            if ((rc = text_part(blk, path, &part, &has_cache, err, errlen)) != 0)
                goto out;
            json_array_append_new(parts, part);
        } else if (strcmp(type, "image") == 0 || strcmp(type, "document") == 0) {
            if (!user)
                BAD("%s.type: %s blocks are only allowed in user messages", path, type);
            if (type[0] == 'i') {
                json_t *part = NULL;
                if ((rc = image_part(blk, path, &part, err, errlen)) != 0)
                    goto out;
                json_array_append_new(parts, part);
            } else if ((rc = document_parts(blk, path, parts, err, errlen)) != 0) {
                goto out;
            }
        } else if (strcmp(type, "tool_use") == 0) {
            if (user)
                BAD("%s.type: tool_use blocks are only allowed in assistant messages", path);
            if ((rc = tool_use(blk, path, tool_calls, err, errlen)) != 0)
                goto out;
        } else if (strcmp(type, "tool_result") == 0) {
            if (!user)
                BAD("%s.type: tool_result blocks are only allowed in user messages", path);
            if ((rc = tool_result(blk, path, tool_msgs, parts, err, errlen)) != 0)
                goto out;
        } else if (in_list(type, dropped_blocks)) {
            /* no equivalent upstream; thinking is regenerated by the model anyway */
        } else {
            BAD("%s.type: unknown block type \"%.40s\"", path, type);
        }
    }
    size_t k;
    json_t *p;
    json_array_foreach(parts, k, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "type")), "text") != 0)
            only_text = 0;
    }

    /* OpenAI wants each tool message right after the assistant message with the calls, so they go first. */
    json_array_extend(msgs, tool_msgs);
    if (user) {
        if (json_array_size(parts) != 0)
            json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "user", "content",
                                                  only_text ? text_parts_content(parts, has_cache) : json_incref(parts)));
    } else if (json_array_size(parts) != 0 || json_array_size(tool_calls) != 0) {
        json_t *msg = json_pack("{s:s}", "role", "assistant");
        json_object_set_new(msg, "content", json_array_size(parts) != 0 ? text_parts_content(parts, has_cache) : json_null());
        if (json_array_size(tool_calls) != 0)
            json_object_set(msg, "tool_calls", tool_calls);
        json_array_append_new(msgs, msg);
    }
out:
    json_decref(parts);
    json_decref(tool_calls);
    json_decref(tool_msgs);
    return rc;
}

static int convert_system(json_t *sys, json_t *msgs, char *err, size_t errlen)
{
    return convert_system_at(sys, "system", msgs, err, errlen);
}

/* system text (a string or text blocks) → one OpenAI system message; where names it in errors ("system",
 * "messages[3].content") */
static int convert_system_at(json_t *sys, const char *where, json_t *msgs, char *err, size_t errlen)
{
    int rc = 0;
    json_t *parts = json_array();
    int has_cache = 0;
    if (sys == NULL || json_is_null(sys))
        goto out;
    if (json_is_string(sys)) {
        if (json_string_length(sys) != 0)
            json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", sys));
        goto out;
    }
    if (!json_is_array(sys))
        BAD("%s: expected string or array of text blocks", where);
    size_t i;
    json_t *blk;
    json_array_foreach(sys, i, blk)
    {
        char path[64];
        snprintf(path, sizeof(path), "%s[%zu]", where, i);
        if (!json_is_object(blk))
            BAD("%s: expected object", path);
        const char *type = json_string_value(json_object_get(blk, "type"));
        if (type == NULL || strcmp(type, "text") != 0)
            BAD("%s.type: expected \"text\"", path);
        json_t *part = NULL;
        if ((rc = text_part(blk, path, &part, &has_cache, err, errlen)) != 0)
            goto out;
        json_array_append_new(parts, part);
    }
    if (json_array_size(parts) != 0)
        json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "system", "content", text_parts_content(parts, has_cache)));
out:
    json_decref(parts);
    return rc;
}

/* tools → OpenAI tools (new array in *out, NULL when none survive). */
static int convert_tools(json_t *tools, json_t **out_tools, char *err, size_t errlen)
{
    int rc = 0;
    json_t *res = json_array();
    *out_tools = NULL;
    if (!json_is_array(tools))
        BAD("tools: expected array");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (!json_is_object(t))
            BAD("tools[%zu]: expected object", i);
        json_t *type = json_object_get(t, "type");
        if (type != NULL && !json_is_null(type)) {
            if (!json_is_string(type))
                BAD("tools[%zu].type: expected string", i);
            if (strcmp(json_string_value(type), "custom") != 0)
                continue; /* server tool (web_search_20250305, bash_…): only Anthropic runs these */
        }
        json_t *name = json_object_get(t, "name"), *desc = json_object_get(t, "description"),
               *schema = json_object_get(t, "input_schema"), *strict = json_object_get(t, "strict");
        if (!json_is_string(name) || json_string_length(name) == 0)
            BAD("tools[%zu].name: expected non-empty string", i);
        if (desc != NULL && !json_is_null(desc) && !json_is_string(desc))
            BAD("tools[%zu].description: expected string", i);
        if (!json_is_object(schema))
            BAD("tools[%zu].input_schema: expected object", i);
        if (strict != NULL && !json_is_null(strict) && !json_is_boolean(strict))
            BAD("tools[%zu].strict: expected boolean", i);
        json_t *fn = json_pack("{s:O}", "name", name);
        if (json_is_string(desc))
            json_object_set(fn, "description", desc);
        json_object_set(fn, "parameters", schema);
        if (json_is_boolean(strict))
            json_object_set(fn, "strict", strict);
        json_array_append_new(res, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    if (json_array_size(res) != 0)
        *out_tools = json_incref(res);
out:
    json_decref(res);
    return rc;
}

static int convert_tool_choice(json_t *tc, json_t *dst, int have_tools, char *err, size_t errlen)
{
    int rc = 0;
    if (tc == NULL || json_is_null(tc))
        goto out;
    if (!json_is_object(tc))
        BAD("tool_choice: expected object");
    const char *type = json_string_value(json_object_get(tc, "type"));
    if (type == NULL)
        BAD("tool_choice.type: expected string");
    json_t *choice;
    if (strcmp(type, "auto") == 0) {
        choice = json_string("auto");
    } else if (strcmp(type, "any") == 0) {
        choice = json_string("required");
    } else if (strcmp(type, "none") == 0) {
        choice = json_string("none");
    } else if (strcmp(type, "tool") == 0) {
        json_t *name = json_object_get(tc, "name");
        if (!json_is_string(name) || json_string_length(name) == 0)
            BAD("tool_choice.name: expected non-empty string");
        choice = json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name", name);
    } else {
        BAD("tool_choice.type: unknown type \"%.40s\"", type);
    }
    json_t *dp = json_object_get(tc, "disable_parallel_tool_use");
    if (dp != NULL && !json_is_null(dp) && !json_is_boolean(dp)) {
        json_decref(choice);
        BAD("tool_choice.disable_parallel_tool_use: expected boolean");
    }
    /* OpenAI rejects tool_choice without tools (all may have been server tools we dropped). */
    if (!have_tools) {
        json_decref(choice);
        goto out;
    }
    json_object_set_new(dst, "tool_choice", choice);
    if (json_is_true(dp))
        json_object_set_new(dst, "parallel_tool_calls", json_false());
out:
    return rc;
}

static int convert_thinking(json_t *th, json_t *dst, char *err, size_t errlen)
{
    int rc = 0;
    if (th == NULL || json_is_null(th))
        goto out;
    if (!json_is_object(th))
        BAD("thinking: expected object");
    const char *type = json_string_value(json_object_get(th, "type"));
    if (type == NULL)
        BAD("thinking.type: expected string");
    if (strcmp(type, "enabled") == 0) {
        json_t *b = json_object_get(th, "budget_tokens");
        if (!json_is_integer(b) || json_integer_value(b) < 1)
            BAD("thinking.budget_tokens: expected positive integer");
        json_object_set_new(dst, "reasoning", json_pack("{s:O}", "max_tokens", b));
    } else if (strcmp(type, "adaptive") == 0) {
        json_object_set_new(dst, "reasoning", json_pack("{s:b}", "enabled", 1));
    } else if (strcmp(type, "disabled") != 0) {
        BAD("thinking.type: unknown type \"%.40s\"", type);
    }
out:
    return rc;
}

/* output_format {type:"json_schema",schema} (or output_config.format) → response_format. */
static int convert_output_format(json_t *fmt, const char *name, json_t *dst, char *err, size_t errlen)
{
    int rc = 0;
    if (fmt == NULL || json_is_null(fmt))
        goto out;
    if (!json_is_object(fmt))
        BAD("%s: expected object", name);
    const char *type = json_string_value(json_object_get(fmt, "type"));
    if (type == NULL || strcmp(type, "json_schema") != 0)
        BAD("%s.type: expected \"json_schema\"", name);
    json_t *schema = json_object_get(fmt, "schema");
    if (!json_is_object(schema))
        BAD("%s.schema: expected object", name);
    json_object_set_new(
        dst, "response_format",
        json_pack("{s:s,s:{s:s,s:O,s:b}}", "type", "json_schema", "json_schema", "name", "output", "schema", schema, "strict", 1));
out:
    return rc;
}

static int convert_fallbacks(json_t *in, json_t *dst, char *err, size_t errlen)
{
    int rc = 0;
    json_t *fb = json_object_get(in, "fallbacks");
    if (fb == NULL || json_is_null(fb))
        goto out;
    if (!json_is_array(fb))
        BAD("fallbacks: expected array");
    if (json_object_get(in, "models") != NULL && !json_is_null(json_object_get(in, "models")))
        BAD("fallbacks: cannot be combined with models");
    if (json_array_size(fb) > LG_ANTHROPIC_MAX_FALLBACKS)
        BAD("fallbacks: at most %d entries", LG_ANTHROPIC_MAX_FALLBACKS);
    if (json_array_size(fb) == 0)
        goto out;
    json_t *models = json_array();
    json_array_append(models, json_object_get(in, "model"));
    size_t i;
    json_t *f;
    json_array_foreach(fb, i, f)
    {
        json_t *m = json_is_object(f) ? json_object_get(f, "model") : f;
        if (!json_is_string(m) || json_string_length(m) == 0) {
            json_decref(models);
            BAD("fallbacks[%zu].model: expected non-empty string", i);
        }
        json_array_append(models, m);
    }
    json_object_set_new(dst, "models", models);
out:
    return rc;
}

int lg_anthropic_request_to_openai(const json_t *cin, json_t **outp, char *err, size_t errlen)
{
    int rc = 0;
    json_t *in = (json_t *)cin; /* jansson getters are not const-correct; nothing below modifies in */
    json_t *out = json_object(), *msgs = json_array(), *tools = NULL;
    *outp = NULL;
    if (errlen != 0)
        err[0] = '\0';
    if (!json_is_object(in))
        BAD("body: expected JSON object");

    json_t *model = json_object_get(in, "model");
    if (model == NULL || json_is_null(model))
        BAD("model: required");
    if (!json_is_string(model) || json_string_length(model) == 0)
        BAD("model: expected non-empty string");
    json_object_set(out, "model", model);

    json_t *mt = json_object_get(in, "max_tokens");
    if (mt == NULL || json_is_null(mt))
        BAD("max_tokens: required");
    if (!json_is_integer(mt))
        BAD("max_tokens: expected integer");
    if (json_integer_value(mt) < 1)
        BAD("max_tokens: must be greater than or equal to 1");

    json_t *messages = json_object_get(in, "messages");
    if (messages == NULL || json_is_null(messages))
        BAD("messages: required");
    if (!json_is_array(messages))
        BAD("messages: expected array");
    if (json_array_size(messages) == 0)
        BAD("messages: must not be empty");

    if ((rc = convert_system(json_object_get(in, "system"), msgs, err, errlen)) != 0)
        goto out;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        if ((rc = convert_message(m, i, msgs, err, errlen)) != 0)
            goto out;
    }
    json_object_set(out, "messages", msgs);
    json_object_set(out, "max_tokens", mt);

    json_t *v;
    if ((v = json_object_get(in, "stop_sequences")) != NULL && !json_is_null(v)) {
        if (!json_is_array(v))
            BAD("stop_sequences: expected array of strings");
        size_t k;
        json_t *s;
        json_array_foreach(v, k, s)
        {
            if (!json_is_string(s))
                BAD("stop_sequences[%zu]: expected string", k);
        }
        if (json_array_size(v) != 0)
            json_object_set(out, "stop", v);
    }
    static const char *const numbers[] = {"temperature", "top_p", NULL};
    for (size_t k = 0; numbers[k] != NULL; ++k) {
        if ((v = json_object_get(in, numbers[k])) == NULL || json_is_null(v))
            continue;
        if (!json_is_number(v))
            BAD("%s: expected number", numbers[k]);
        json_object_set(out, numbers[k], v);
    }
    if ((v = json_object_get(in, "top_k")) != NULL && !json_is_null(v)) {
        if (!json_is_integer(v))
            BAD("top_k: expected integer");
        json_object_set(out, "top_k", v);
    }
    if ((v = json_object_get(in, "stream")) != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v))
            BAD("stream: expected boolean");
        json_object_set(out, "stream", v);
    }
    if ((v = json_object_get(in, "metadata")) != NULL && !json_is_null(v)) {
        if (!json_is_object(v))
            BAD("metadata: expected object");
        json_t *uid = json_object_get(v, "user_id");
        if (uid != NULL && !json_is_null(uid)) {
            if (!json_is_string(uid))
                BAD("metadata.user_id: expected string");
            json_object_set(out, "user", uid);
        }
    }
    if ((v = json_object_get(in, "tools")) != NULL && !json_is_null(v)) {
        if ((rc = convert_tools(v, &tools, err, errlen)) != 0)
            goto out;
        if (tools != NULL)
            json_object_set(out, "tools", tools);
    }
    if ((rc = convert_tool_choice(json_object_get(in, "tool_choice"), out, tools != NULL, err, errlen)) != 0 ||
        (rc = convert_thinking(json_object_get(in, "thinking"), out, err, errlen)) != 0 ||
        (rc = convert_output_format(json_object_get(in, "output_format"), "output_format", out, err, errlen)) != 0)
        goto out;
    if ((v = json_object_get(in, "output_config")) != NULL && !json_is_null(v)) {
        if (!json_is_object(v))
            BAD("output_config: expected object");
        if ((rc = convert_output_format(json_object_get(v, "format"), "output_config.format", out, err, errlen)) != 0)
            goto out;
        /* effort (low | medium | high | max) is the reasoning effort OpenRouter's `reasoning.effort` names */
        json_t *effort = json_object_get(v, "effort");
        if (effort != NULL && !json_is_null(effort)) {
            if (!json_is_string(effort))
                BAD("output_config.effort: expected string");
            json_t *r = json_object_get(out, "reasoning");
            if (r == NULL)
                json_object_set_new(out, "reasoning", r = json_object());
            json_object_set(r, "effort", effort);
        }
    }
    lg__ingress_copy_routing_fields(in, out);
    if ((rc = convert_fallbacks(in, out, err, errlen)) != 0)
        goto out;
out:
    json_decref(msgs);
    json_decref(tools);
    if (rc != 0) {
        json_decref(out);
        return rc;
    }
    *outp = out;
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* response: OpenAI → Anthropic                                                                                             */

const char *lg_anthropic_stop_reason(const char *fr)
{
    if (fr == NULL)
        return "end_turn";
    if (strcmp(fr, "length") == 0)
        return "max_tokens";
    if (strcmp(fr, "tool_calls") == 0 || strcmp(fr, "function_call") == 0)
        return "tool_use";
    if (strcmp(fr, "content_filter") == 0)
        return "refusal";
    return "end_turn"; /* stop, error and anything unknown */
}

static json_int_t usage_int(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) > 0)
        return json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 9e15)
        return (json_int_t)json_real_value(v);
    return 0;
}

/* OpenAI usage → Anthropic usage fields set on dst (input_tokens excludes cache reads and writes, §1.3). */
static void set_usage(json_t *dst, const json_t *usage, int with_output_first)
{
    json_t *pd = json_object_get(usage, "prompt_tokens_details");
    json_int_t prompt = usage_int(usage, "prompt_tokens"), out = usage_int(usage, "completion_tokens");
    json_int_t cached = usage_int(pd, "cached_tokens"), written = usage_int(pd, "cache_write_tokens");
    json_int_t input = prompt - cached - written;
    if (input < 0)
        input = 0;
    if (with_output_first)
        json_object_set_new(dst, "output_tokens", json_integer(out));
    json_object_set_new(dst, "input_tokens", json_integer(input));
    json_object_set_new(dst, "cache_creation_input_tokens", json_integer(written));
    json_object_set_new(dst, "cache_read_input_tokens", json_integer(cached));
    if (!with_output_first)
        json_object_set_new(dst, "output_tokens", json_integer(out));
}

/* Parsed tool arguments: an object, or {} for "" / invalid / non-object JSON. */
static json_t *parse_args(const char *s, size_t len)
{
    json_t *v = s != NULL ? json_loadb(s, len, JSON_DECODE_ANY, NULL) : NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        v = json_object();
    }
    return v;
}

json_t *lg_anthropic_response_from_openai(const json_t *copenai, const char *msg_id)
{
    json_t *openai = (json_t *)copenai;
    json_t *choice = json_array_get(json_object_get(openai, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_array();
    json_t *model = json_object_get(openai, "model");

    const char *reasoning = json_string_value(json_object_get(msg, "reasoning"));
    if (reasoning == NULL)
        reasoning = json_string_value(json_object_get(msg, "reasoning_content"));
    if (reasoning != NULL && *reasoning != '\0')
        json_array_append_new(content, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", reasoning, "signature", ""));

    json_t *c = json_object_get(msg, "content"), *text = NULL;
    if (json_is_string(c)) {
        text = json_incref(c);
    } else if (json_is_array(c)) {
        size_t i;
        json_t *p;
        json_array_foreach(c, i, p)
        {
            json_t *t = json_object_get(p, "text");
            if (json_is_string(t))
                text = join_text(text, json_string_value(t));
        }
    }
    if (text == NULL || json_string_length(text) == 0) {
        json_t *refusal = json_object_get(msg, "refusal");
        if (json_is_string(refusal) && json_string_length(refusal) != 0) {
            json_decref(text);
            text = json_incref(refusal);
        }
    }
    if (text != NULL && json_string_length(text) != 0)
        json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text", "text", text));
    json_decref(text);

    int n_tools = 0;
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (name == NULL || *name == '\0')
            continue; /* never an empty tool_use block */
        json_t *id = json_object_get(tc, "id");
        char synth[32];
        if (!json_is_string(id) || json_string_length(id) == 0) {
            lg_random_id(synth, "toolu_", 24);
            id = NULL;
        }
        json_t *args = json_object_get(fn, "arguments");
        json_t *input = json_is_object(args)   ? json_incref(args)
                        : json_is_string(args) ? parse_args(json_string_value(args), json_string_length(args))
                                               : json_object();
        json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                                                 id != NULL ? json_string_value(id) : synth, "name", name, "input", input));
        ++n_tools;
    }

    const char *stop = lg_anthropic_stop_reason(json_string_value(json_object_get(choice, "finish_reason")));
    if (n_tools != 0 && strcmp(stop, "end_turn") == 0)
        stop = "tool_use"; /* some providers say "stop" after tool calls; Claude Code keys on tool_use */

    json_t *usage = json_object();
    set_usage(usage, json_object_get(openai, "usage"), 0);
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", msg_id != NULL ? msg_id : "", "type", "message", "role",
                     "assistant", "model", json_is_string(model) ? json_string_value(model) : "", "content", content, "stop_reason",
                     stop, "stop_sequence", "usage", usage);
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* errors                                                                                                                   */

const char *lg_anthropic_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    case 408:
    case 504:
        return "timeout_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

/* OpenRouter error_type when no lg_err_t is known. */
static const char *status_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request";
    case 401:
        return "authentication";
    case 402:
        return "payment_required";
    case 403:
        return "permission_denied";
    case 404:
        return "not_found";
    case 413:
        return "payload_too_large";
    case 429:
        return "rate_limit_exceeded";
    case 502:
        return "provider_unavailable";
    case 503:
    case 529:
        return "provider_overloaded";
    case 408:
    case 504:
        return "timeout";
    default:
        return status >= 400 && status < 500 ? "invalid_request" : "server";
    }
}

int lg_anthropic_error_status(int lg_err, int http_status)
{
    if (lg_err < 0 && (http_status == 0 || http_status == lg_err_status(lg_err)))
        return lg_err_anthropic_status(lg_err); /* the error table: overload answers 529 */
    return http_status != 0 ? http_status : lg_err_status(lg_err);
}

json_t *lg_anthropic_error_json(int lg_err, int http_status, const char *msg)
{
    int status = http_status != 0 ? http_status : lg_err_status(lg_err);
    const char *et = lg_err < 0 ? lg_err_type(lg_err) : status_error_type(status);
    if (msg == NULL)
        msg = lg_err < 0 ? lg_strerror(lg_err) : "error";
    /* the error table knows the Anthropic type of every lg_err_t; a status passed through from an upstream (a 404 for
     * a rejected request, say) is mapped by its status */
    const char *type = lg_err < 0 && lg_anthropic_error_status(lg_err, 0) == lg_anthropic_error_status(lg_err, status)
                           ? lg_err_anthropic_type(lg_err)
                           : lg_anthropic_error_type(status);
    return json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "error", "error", "type", type, "message", msg, "error_type", et);
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* streaming: OpenAI chunks → Anthropic events                                                                              */

#define MAX_STREAM_TOOLS 128
#define MAX_TOOL_ARGS (16u << 20)

enum block_kind { BLK_NONE, BLK_TEXT, BLK_THINKING, BLK_TOOL };

struct tool_slot {
    json_int_t oa_index; /* OpenAI tool_calls[].index */
    char *id, *name;
    lg_buf_t args; /* every argument fragment so far */
    size_t sent;   /* bytes of args already emitted as input_json_delta */
    int block;     /* Anthropic block index, -1 = not opened yet */
    int closed;
    size_t checked_len; /* args.len when `complete` was computed */
    int complete;       /* args parse as one JSON value */
};

struct lg_anthropic_stream {
    char *msg_id, *model;
    int64_t input_estimate;
    int started, done;
    int next_block; /* next Anthropic content block index */
    enum block_kind open_kind;
    int open_block;   /* index of the open block, -1 = none */
    size_t open_tool; /* slot of the open tool_use block */
    struct tool_slot *tools;
    size_t num_tools;
    int tool_blocks;         /* tool_use blocks emitted */
    const char *stop_reason; /* from finish_reason, NULL = none yet */
    json_t *last_usage;
    size_t dropped;
    int overflow; /* out's cap was hit once: everything after is refused */
};

static int emit(lg_anthropic_stream_t *s, lg_buf_t *out, json_t *ev)
{
    /* ev's first key is "type" (json_pack keeps insertion order) */
    const char *type = json_string_value(json_object_get(ev, "type"));
    char *data = json_dumps(ev, JSON_COMPACT);
    int rc = 0;
    if (data == NULL || lg_buf_append(out, "event: ", 7) != 0 || lg_buf_append(out, type, strlen(type)) != 0 ||
        lg_buf_append(out, "\ndata: ", 7) != 0 || lg_buf_append(out, data, strlen(data)) != 0 || lg_buf_append(out, "\n\n", 2) != 0)
        rc = LG_ETOOLARGE;
    free(data);
    json_decref(ev);
    if (rc != 0 && s != NULL)
        s->overflow = 1;
    return rc;
}

lg_anthropic_stream_t *lg_anthropic_stream_create(const char *msg_id, const char *model, int64_t input_tokens_estimate)
{
    lg_anthropic_stream_t *s = lg_malloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->msg_id = lg_strdup(msg_id != NULL ? msg_id : "");
    s->model = lg_strdup(model != NULL ? model : "");
    s->input_estimate = input_tokens_estimate > 0 ? input_tokens_estimate : 0;
    s->open_block = -1;
    return s;
}

void lg_anthropic_stream_destroy(lg_anthropic_stream_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->num_tools; ++i) {
        free(s->tools[i].id);
        free(s->tools[i].name);
        lg_buf_dispose(&s->tools[i].args);
    }
    free(s->tools);
    json_decref(s->last_usage);
    free(s->msg_id);
    free(s->model);
    free(s);
}

size_t lg_anthropic_stream_dropped_bytes(const lg_anthropic_stream_t *s)
{
    return s->dropped;
}

int lg_anthropic_stream_ping(lg_buf_t *out)
{
    static const char ping[] = "event: ping\ndata: {\"type\": \"ping\"}\n\n";
    return lg_buf_append(out, ping, sizeof(ping) - 1) != 0 ? LG_ETOOLARGE : 0;
}

int lg_anthropic_stream_begin(lg_anthropic_stream_t *s, lg_buf_t *out)
{
    if (s->overflow)
        return LG_ETOOLARGE;
    if (s->started)
        return 0;
    s->started = 1;
    return emit(s, out,
                json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:I,s:i,s:i,s:i}}}", "type", "message_start", "message", "id",
                          s->msg_id, "type", "message", "role", "assistant", "model", s->model, "content", "stop_reason",
                          "stop_sequence", "usage", "input_tokens", (json_int_t)s->input_estimate, "cache_creation_input_tokens", 0,
                          "cache_read_input_tokens", 0, "output_tokens", 0));
}

static int close_block(lg_anthropic_stream_t *s, lg_buf_t *out)
{
    if (s->open_block < 0)
        return 0;
    if (s->open_kind == BLK_TOOL)
        s->tools[s->open_tool].closed = 1;
    int idx = s->open_block;
    s->open_block = -1;
    s->open_kind = BLK_NONE;
    return emit(s, out, json_pack("{s:s,s:i}", "type", "content_block_stop", "index", idx));
}

static int open_block(lg_anthropic_stream_t *s, lg_buf_t *out, enum block_kind kind, json_t *block)
{
    int rc = close_block(s, out);
    if (rc != 0) {
        json_decref(block);
        return rc;
    }
    s->open_kind = kind;
    s->open_block = s->next_block++;
    return emit(s, out, json_pack("{s:s,s:i,s:o}", "type", "content_block_start", "index", s->open_block, "content_block", block));
}

/* text or thinking delta; opens the right block first when needed. */
static int text_delta(lg_anthropic_stream_t *s, lg_buf_t *out, enum block_kind kind, json_t *text)
{
    int rc = 0;
    if (s->open_kind != kind) {
        json_t *blk = kind == BLK_TEXT ? json_pack("{s:s,s:s}", "type", "text", "text", "")
                                       : json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "", "signature", "");
        if ((rc = open_block(s, out, kind, blk)) != 0)
            return rc;
    }
    if (kind == BLK_TEXT)
        return emit(s, out,
                    json_pack("{s:s,s:i,s:{s:s,s:O}}", "type", "content_block_delta", "index", s->open_block, "delta", "type",
                              "text_delta", "text", text));
    return emit(s, out,
                json_pack("{s:s,s:i,s:{s:s,s:O}}", "type", "content_block_delta", "index", s->open_block, "delta", "type",
                          "thinking_delta", "thinking", text));
}

/* Send the not-yet-sent part of an open tool's arguments. */
static int tool_flush_args(lg_anthropic_stream_t *s, lg_buf_t *out, struct tool_slot *t)
{
    if (t->sent == t->args.len)
        return 0;
    /* fragments come from parsed JSON strings, so each is valid UTF-8 on its own and so is their concatenation */
    json_t *frag = json_stringn(t->args.data + t->sent, t->args.len - t->sent);
    if (frag == NULL) {
        s->dropped += t->args.len - t->sent;
        t->sent = t->args.len;
        return 0;
    }
    t->sent = t->args.len;
    return emit(s, out,
                json_pack("{s:s,s:i,s:{s:s,s:o}}", "type", "content_block_delta", "index", t->block, "delta", "type",
                          "input_json_delta", "partial_json", frag));
}

static int tool_args_complete(struct tool_slot *t)
{
    if (t->checked_len != t->args.len || t->args.len == 0) {
        t->checked_len = t->args.len;
        json_t *v = t->args.len != 0 ? json_loadb(t->args.data, t->args.len, JSON_DECODE_ANY, NULL) : NULL;
        t->complete = v != NULL;
        json_decref(v);
    }
    return t->complete;
}

static int tool_open(lg_anthropic_stream_t *s, lg_buf_t *out, size_t slot)
{
    struct tool_slot *t = &s->tools[slot];
    if (t->id == NULL) {
        char id[32];
        lg_random_id(id, "toolu_", 24);
        t->id = lg_strdup(id);
    }
    int rc =
        open_block(s, out, BLK_TOOL, json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", t->id, "name", t->name, "input"));
    if (rc != 0)
        return rc;
    t->block = s->open_block;
    s->open_tool = slot;
    s->tool_blocks++;
    return tool_flush_args(s, out, t);
}

/* Open slot's block if it is ready and the open block (if a tool) is done with its arguments. */
static int tool_try_open(lg_anthropic_stream_t *s, lg_buf_t *out, size_t slot)
{
    struct tool_slot *t = &s->tools[slot];
    if (t->block >= 0 || t->id == NULL || t->name == NULL)
        return 0;
    if (s->open_kind == BLK_TOOL && !tool_args_complete(&s->tools[s->open_tool]))
        return 0; /* the open call may still be receiving arguments: keep buffering this one */
    return tool_open(s, out, slot);
}

static struct tool_slot *tool_find(lg_anthropic_stream_t *s, const json_t *tc, size_t *slot)
{
    json_t *jidx = json_object_get(tc, "index");
    const char *id = json_string_value(json_object_get(tc, "id"));
    size_t i;
    if (json_is_integer(jidx)) {
        for (i = 0; i < s->num_tools; ++i)
            if (s->tools[i].oa_index == json_integer_value(jidx))
                goto found;
    } else if (id != NULL && *id != '\0') {
        /* no index (some OpenAI-compatible servers): match by id, else a new call */
        for (i = 0; i < s->num_tools; ++i)
            if (s->tools[i].id != NULL && strcmp(s->tools[i].id, id) == 0)
                goto found;
    } else if (s->num_tools != 0) {
        i = s->num_tools - 1; /* no index, no id: continuation of the latest call */
        goto found;
    }
    if (s->num_tools == MAX_STREAM_TOOLS)
        return NULL;
    s->tools = lg_realloc(s->tools, (s->num_tools + 1) * sizeof(*s->tools));
    i = s->num_tools++;
    memset(&s->tools[i], 0, sizeof(s->tools[i]));
    s->tools[i].oa_index = json_is_integer(jidx) ? json_integer_value(jidx) : -1 - (json_int_t)i;
    s->tools[i].block = -1;
    lg_buf_init(&s->tools[i].args, MAX_TOOL_ARGS);
found:
    *slot = i;
    return &s->tools[i];
}

static int tool_delta(lg_anthropic_stream_t *s, lg_buf_t *out, const json_t *tc)
{
    size_t slot;
    struct tool_slot *t = tool_find(s, tc, &slot);
    json_t *fn = json_object_get(tc, "function");
    json_t *args = json_object_get(fn, "arguments");
    if (t == NULL) {
        s->dropped += json_string_length(args);
        return 0;
    }
    const char *id = json_string_value(json_object_get(tc, "id"));
    const char *name = json_string_value(json_object_get(fn, "name"));
    /* first non-empty value wins: some servers repeat id/name on every delta */
    if (t->id == NULL && id != NULL && *id != '\0')
        t->id = lg_strdup(id);
    if (t->name == NULL && name != NULL && *name != '\0')
        t->name = lg_strdup(name);
    if (json_is_string(args) && json_string_length(args) != 0) {
        if (t->closed) {
            s->dropped += json_string_length(args); /* cannot reopen a stopped block */
        } else if (lg_buf_append(&t->args, json_string_value(args), json_string_length(args)) != 0) {
            s->dropped += json_string_length(args);
        }
    }
    if (t->block >= 0)
        return t->closed ? 0 : tool_flush_args(s, out, t);
    return tool_try_open(s, out, slot);
}

int lg_anthropic_stream_chunk(lg_anthropic_stream_t *s, const json_t *cchunk, lg_buf_t *out)
{
    json_t *chunk = (json_t *)cchunk;
    int rc;
    if (s->done)
        return 0;
    if ((rc = lg_anthropic_stream_begin(s, out)) != 0)
        return rc;
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        json_decref(s->last_usage);
        s->last_usage = json_deep_copy(usage);
    }
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    if (!json_is_object(choice))
        return 0;
    json_t *delta = json_object_get(choice, "delta");
    if (json_is_object(delta)) {
        json_t *r = json_object_get(delta, "reasoning");
        if (!json_is_string(r))
            r = json_object_get(delta, "reasoning_content");
        if (json_is_string(r) && json_string_length(r) != 0 && (rc = text_delta(s, out, BLK_THINKING, r)) != 0)
            return rc;
        json_t *c = json_object_get(delta, "content");
        if (!json_is_string(c) || json_string_length(c) == 0)
            c = json_object_get(delta, "refusal");
        if (json_is_string(c) && json_string_length(c) != 0 && (rc = text_delta(s, out, BLK_TEXT, c)) != 0)
            return rc;
        size_t i;
        json_t *tc;
        json_array_foreach(json_object_get(delta, "tool_calls"), i, tc)
        {
            if (json_is_object(tc) && (rc = tool_delta(s, out, tc)) != 0)
                return rc;
        }
    }
    const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
    if (fr != NULL)
        s->stop_reason = lg_anthropic_stop_reason(fr);
    return 0;
}

int lg_anthropic_stream_finish(lg_anthropic_stream_t *s, const json_t *usage, lg_buf_t *out)
{
    int rc;
    if (s->done)
        return 0;
    if ((rc = lg_anthropic_stream_begin(s, out)) != 0)
        return rc;
    /* buffered calls, in arrival order; a call that never got a name cannot become a tool_use block */
    for (size_t i = 0; i < s->num_tools; ++i) {
        struct tool_slot *t = &s->tools[i];
        if (t->block >= 0)
            continue;
        if (t->name == NULL) {
            s->dropped += t->args.len;
            continue;
        }
        if ((rc = tool_open(s, out, i)) != 0)
            return rc;
    }
    if ((rc = close_block(s, out)) != 0)
        return rc;
    s->done = 1;
    const char *stop = s->stop_reason != NULL ? s->stop_reason : "end_turn";
    if (s->tool_blocks != 0 && strcmp(stop, "end_turn") == 0)
        stop = "tool_use";
    json_t *u = json_object();
    set_usage(u, usage != NULL ? usage : s->last_usage, 1);
    if ((rc = emit(s, out,
                   json_pack("{s:s,s:{s:s,s:n},s:o}", "type", "message_delta", "delta", "stop_reason", stop, "stop_sequence",
                             "usage", u))) != 0)
        return rc;
    return emit(s, out, json_pack("{s:s}", "type", "message_stop"));
}

int lg_anthropic_stream_error(lg_anthropic_stream_t *s, int lg_err, const char *message, lg_buf_t *out)
{
    int rc;
    if (s->done)
        return 0;
    s->done = 1;
    if ((rc = close_block(s, out)) != 0)
        return rc;
    return emit(s, out, lg_anthropic_error_json(lg_err, 0, message));
}

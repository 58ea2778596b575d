/* SPDX-License-Identifier: MIT */
/*
 * OpenAI Responses API skin ↔ the internal Chat Completions normal form (see responses_ingress.h).
 *
 * Request (stateless, as OpenRouter serves it):
 * - `store: true` and a non-null `previous_response_id` are refused (400): clients resend the history in `input`.
 * - `instructions` → a leading system message; `input` string → one user message; input items:
 *   message {role user|assistant|system|developer, content string | input_text / input_image / input_file /
 *   output_text / refusal parts} → chat messages (developer → system); consecutive `function_call` items → one
 *   assistant message with tool_calls; `function_call_output` → a tool message; `reasoning` items → the next assistant
 *   message's reasoning_details (summary text with its signature, or encrypted_content), so providers that need their
 *   reasoning back (Anthropic thinking signatures) get it.
 * - flat function tools {type:"function", name, description, parameters, strict} → chat tools; tool_choice
 *   auto|none|required|{type:"function",name}; `text.format` json_schema / json_object → response_format; `reasoning`
 *   {effort, summary, max_tokens, exclude} → reasoning; max_output_tokens → max_tokens; temperature, top_p, top_k,
 *   parallel_tool_calls, user, metadata, seed, stop, stream as they are.
 * Response: output items in the order reasoning, message (output_text), function_call; finish_reason length →
 * status incomplete (max_output_tokens), content_filter → incomplete (content_filter); usage with input/output names.
 * Stream: the event sequence of the Responses API with `sequence_number` 0, 1, 2, …
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "http/ingress_common.h"
#include "http/responses_ingress.h"

#define BAD(...)                                                                                                                   \
    do {                                                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                                                        \
        rc = LG_EINVAL;                                                                                                            \
        goto out;                                                                                                                  \
    } while (0)

#define MAX_ITEM_BYTES (16u << 20) /* one text, reasoning or arguments buffer */

/* members copied to the chat request as they are */
static const char *const passthrough_fields[] = {"temperature", "top_p", "top_k",  "parallel_tool_calls", "user",
                                                 "seed",        "stop",  "stream", "frequency_penalty",   "presence_penalty",
                                                 NULL};
/* members a response object echoes */
static const char *const echo_fields[] = {
    "instructions", "metadata", "tools", "tool_choice",       "parallel_tool_calls", "temperature",      "top_p",
    "reasoning",    "text",     "user",  "max_output_tokens", "frequency_penalty",   "presence_penalty", NULL};

static int streq(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

/* ---- request ---- */

/* one content part of an input message → a chat content part (new), or NULL with err set */
static int content_part(json_t *p, const char *path, json_t **part, int *text_only, char *err, size_t errlen)
{
    int rc = 0;
    *part = NULL;
    if (!json_is_object(p))
        BAD("%s: expected object", path);
    const char *type = json_string_value(json_object_get(p, "type"));
    if (type == NULL)
        BAD("%s.type: expected string", path);
    if (streq(type, "input_text") || streq(type, "output_text") || streq(type, "text") || streq(type, "refusal")) {
        json_t *t = json_object_get(p, streq(type, "refusal") ? "refusal" : "text");
        if (!json_is_string(t))
            BAD("%s.%s: expected string", path, streq(type, "refusal") ? "refusal" : "text");
        *part = json_pack("{s:s,s:O}", "type", "text", "text", t);
    } else if (streq(type, "input_image")) {
        json_t *url = json_object_get(p, "image_url");
        if (!json_is_string(url))
            BAD("%s.image_url: expected string (a URL or a data: URL; file_id is not supported)", path);
        json_t *iu = json_pack("{s:O}", "url", url);
        json_t *detail = json_object_get(p, "detail");
        if (json_is_string(detail))
            json_object_set(iu, "detail", detail);
        *part = json_pack("{s:s,s:o}", "type", "image_url", "image_url", iu);
        *text_only = 0;
    } else if (streq(type, "input_file")) {
        json_t *data = json_object_get(p, "file_data"), *url = json_object_get(p, "file_url");
        if (!json_is_string(data) && !json_is_string(url))
            BAD("%s: expected file_data or file_url (file_id is not supported)", path);
        json_t *file = json_object();
        if (json_is_string(data))
            json_object_set(file, "file_data", data);
        else
            json_object_set(file, "file_data", url);
        json_t *name = json_object_get(p, "filename");
        if (json_is_string(name))
            json_object_set(file, "filename", name);
        *part = json_pack("{s:s,s:o}", "type", "file", "file", file);
        *text_only = 0;
    } else {
        BAD("%s.type: unknown content type \"%.40s\"", path, type);
    }
out:
    return rc;
}

/* content string | parts → chat content (a string when every part is text, else the parts) */
static int message_content(json_t *content, const char *path, json_t **out_content, char *err, size_t errlen)
{
    int rc = 0;
    json_t *parts = json_array();
    *out_content = NULL;
    if (json_is_string(content)) {
        *out_content = json_incref(content);
        goto out;
    }
    if (!json_is_array(content))
        BAD("%s: expected string or array of content parts", path);
    int text_only = 1;
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        char pp[96];
        snprintf(pp, sizeof(pp), "%s[%zu]", path, i);
        json_t *part = NULL;
        if ((rc = content_part(p, pp, &part, &text_only, err, errlen)) != 0)
            goto out;
        json_array_append_new(parts, part);
    }
    if (text_only) {
        /* plain text joins into one string: the widest-supported form */
        lg_buf_t b;
        lg_buf_init(&b, MAX_ITEM_BYTES);
        json_array_foreach(parts, i, p)
        {
            const char *t = json_string_value(json_object_get(p, "text"));
            if (i > 0)
                lg_buf_append(&b, "\n", 1);
            lg_buf_append(&b, t, strlen(t));
        }
        *out_content = json_stringn(b.data != NULL ? b.data : "", b.len);
        lg_buf_dispose(&b);
    } else {
        *out_content = json_incref(parts);
    }
out:
    json_decref(parts);
    return rc;
}

/* the assistant message tool calls and reasoning accumulate into until a non-assistant item closes it */
struct pending {
    json_t *msg; /* NULL = none open */
};

static json_t *pending_assistant(struct pending *pa)
{
    if (pa->msg == NULL)
        pa->msg = json_pack("{s:s,s:n}", "role", "assistant", "content");
    return pa->msg;
}

static void pending_flush(struct pending *pa, json_t *msgs)
{
    if (pa->msg != NULL)
        json_array_append_new(msgs, pa->msg);
    pa->msg = NULL;
}

static int reasoning_item(json_t *it, const char *path, struct pending *pa, char *err, size_t errlen)
{
    int rc = 0;
    json_t *details = json_object_get(pending_assistant(pa), "reasoning_details");
    if (details == NULL)
        json_object_set_new(pa->msg, "reasoning_details", details = json_array());
    json_t *enc = json_object_get(it, "encrypted_content"), *sig = json_object_get(it, "signature");
    json_t *fmt = json_object_get(it, "format"), *summary = json_object_get(it, "summary");
    if (summary != NULL && !json_is_array(summary))
        BAD("%s.summary: expected array", path);
    if (json_is_string(enc) && json_string_length(enc) > 0) {
        json_t *d = json_pack("{s:s,s:O}", "type", "reasoning.encrypted", "data", enc);
        if (json_is_string(fmt))
            json_object_set(d, "format", fmt);
        json_array_append_new(details, d);
    }
    size_t i;
    json_t *s;
    json_array_foreach(summary, i, s)
    {
        json_t *text = json_object_get(s, "text");
        if (!json_is_string(text))
            BAD("%s.summary[%zu].text: expected string", path, i);
        json_t *d = json_pack("{s:s,s:O}", "type", "reasoning.text", "text", text);
        if (json_is_string(sig) && i + 1 == json_array_size(summary))
            json_object_set(d, "signature", sig); /* the signature covers the whole thought: on its last part */
        if (json_is_string(fmt))
            json_object_set(d, "format", fmt);
        json_array_append_new(details, d);
    }
out:
    return rc;
}

static int function_call_item(json_t *it, const char *path, struct pending *pa, char *err, size_t errlen)
{
    int rc = 0;
    json_t *call_id = json_object_get(it, "call_id"), *name = json_object_get(it, "name"), *args = json_object_get(it, "arguments");
    if (!json_is_string(call_id) || json_string_length(call_id) == 0)
        BAD("%s.call_id: expected non-empty string", path);
    if (!json_is_string(name) || json_string_length(name) == 0)
        BAD("%s.name: expected non-empty string", path);
    if (args != NULL && !json_is_string(args))
        BAD("%s.arguments: expected string (JSON text)", path);
    json_t *msg = pending_assistant(pa);
    json_t *calls = json_object_get(msg, "tool_calls");
    if (calls == NULL)
        json_object_set_new(msg, "tool_calls", calls = json_array());
    json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:o}}", "id", call_id, "type", "function", "function", "name", name,
                                           "arguments", args != NULL ? json_incref(args) : json_string("{}")));
out:
    return rc;
}

static int input_items(json_t *input, json_t *msgs, char *err, size_t errlen)
{
    int rc = 0;
    struct pending pa = {NULL};
    if (json_is_string(input)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", input));
        goto out;
    }
    if (!json_is_array(input))
        BAD("input: expected string or array of items");
    if (json_array_size(input) == 0)
        BAD("input: must not be empty");
    size_t i;
    json_t *it;
    json_array_foreach(input, i, it)
    {
        char path[48];
        snprintf(path, sizeof(path), "input[%zu]", i);
        if (!json_is_object(it))
            BAD("%s: expected object", path);
        json_t *tv = json_object_get(it, "type");
        if (tv != NULL && !json_is_string(tv))
            BAD("%s.type: expected string", path);
        const char *type = tv != NULL ? json_string_value(tv) : "message";
        if (streq(type, "message")) {
            const char *role = json_string_value(json_object_get(it, "role"));
            if (role == NULL)
                BAD("%s.role: expected string", path);
            if (!streq(role, "user") && !streq(role, "assistant") && !streq(role, "system") && !streq(role, "developer"))
                BAD("%s.role: must be \"user\", \"assistant\", \"system\" or \"developer\", got \"%.40s\"", path, role);
            char cpath[64];
            snprintf(cpath, sizeof(cpath), "%s.content", path);
            json_t *content = NULL;
            if ((rc = message_content(json_object_get(it, "content"), cpath, &content, err, errlen)) != 0)
                goto out;
            if (streq(role, "assistant")) {
                /* an assistant turn's text joins the pending message that may hold its reasoning, and the function
                 * calls that follow it join too (Responses lists them as separate items, chat as one message) */
                if (pa.msg != NULL &&
                    (json_object_get(pa.msg, "tool_calls") != NULL || !json_is_null(json_object_get(pa.msg, "content"))))
                    pending_flush(&pa, msgs);
                json_object_set_new(pending_assistant(&pa), "content", content);
            } else {
                pending_flush(&pa, msgs);
                json_array_append_new(
                    msgs, json_pack("{s:s,s:o}", "role", streq(role, "developer") ? "system" : role, "content", content));
            }
        } else if (streq(type, "function_call")) {
            if ((rc = function_call_item(it, path, &pa, err, errlen)) != 0)
                goto out;
        } else if (streq(type, "function_call_output")) {
            pending_flush(&pa, msgs);
            json_t *call_id = json_object_get(it, "call_id"), *output = json_object_get(it, "output");
            if (!json_is_string(call_id) || json_string_length(call_id) == 0)
                BAD("%s.call_id: expected non-empty string", path);
            json_t *content = NULL;
            char opath[64];
            snprintf(opath, sizeof(opath), "%s.output", path);
            if ((rc = message_content(output, opath, &content, err, errlen)) != 0)
                goto out;
            json_array_append_new(msgs, json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id", call_id, "content", content));
        } else if (streq(type, "reasoning")) {
            if ((rc = reasoning_item(it, path, &pa, err, errlen)) != 0)
                goto out;
        } else if (streq(type, "item_reference")) {
            BAD("%s: item_reference needs stored responses; llmgate's Responses API is stateless, send the item itself", path);
        } else {
            BAD("%s.type: unknown item type \"%.40s\"", path, type);
        }
    }
    pending_flush(&pa, msgs);
out:
    json_decref(pa.msg);
    return rc;
}

static int convert_tools(json_t *tools, json_t *dst, char *err, size_t errlen)
{
    int rc = 0;
    if (tools == NULL || json_is_null(tools))
        goto out;
    if (!json_is_array(tools))
        BAD("tools: expected array");
    json_t *out_tools = json_array();
    json_object_set_new(dst, "tools", out_tools);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (!json_is_object(t))
            BAD("tools[%zu]: expected object", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!streq(type, "function"))
            BAD("tools[%zu].type: only \"function\" tools are supported, got \"%.40s\"", i, type != NULL ? type : "");
        json_t *name = json_object_get(t, "name");
        if (!json_is_string(name) || json_string_length(name) == 0)
            BAD("tools[%zu].name: expected non-empty string", i);
        json_t *fn = json_pack("{s:O}", "name", name);
        static const char *const keep[] = {"description", "parameters", "strict", NULL};
        for (const char *const *k = keep; *k != NULL; ++k) {
            json_t *v = json_object_get(t, *k);
            if (v != NULL && !json_is_null(v))
                json_object_set(fn, *k, v);
        }
        json_t *params = json_object_get(fn, "parameters");
        if (params != NULL && !json_is_object(params)) {
            json_decref(fn);
            BAD("tools[%zu].parameters: expected object (a JSON Schema)", i);
        }
        json_array_append_new(out_tools, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
out:
    return rc;
}

static int convert_tool_choice(json_t *tc, json_t *dst, char *err, size_t errlen)
{
    int rc = 0;
    if (tc == NULL || json_is_null(tc))
        goto out;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (!streq(s, "auto") && !streq(s, "none") && !streq(s, "required"))
            BAD("tool_choice: expected \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\":…}");
        json_object_set(dst, "tool_choice", tc);
        goto out;
    }
    const char *type = json_string_value(json_object_get(tc, "type"));
    json_t *name = json_object_get(tc, "name");
    if (!json_is_object(tc) || !streq(type, "function") || !json_is_string(name))
        BAD("tool_choice: expected \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\":…}");
    json_object_set_new(dst, "tool_choice", json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name", name));
out:
    return rc;
}

static int convert_text(json_t *text, json_t *dst, char *err, size_t errlen)
{
    int rc = 0;
    if (text == NULL || json_is_null(text))
        goto out;
    if (!json_is_object(text))
        BAD("text: expected object");
    json_t *fmt = json_object_get(text, "format");
    if (fmt == NULL || json_is_null(fmt))
        goto out;
    const char *type = json_string_value(json_object_get(fmt, "type"));
    if (streq(type, "text"))
        goto out;
    if (streq(type, "json_object")) {
        json_object_set_new(dst, "response_format", json_pack("{s:s}", "type", "json_object"));
        goto out;
    }
    if (!streq(type, "json_schema"))
        BAD("text.format.type: expected \"text\", \"json_object\" or \"json_schema\"");
    json_t *name = json_object_get(fmt, "name"), *schema = json_object_get(fmt, "schema");
    if (!json_is_string(name) || json_string_length(name) == 0)
        BAD("text.format.name: expected non-empty string");
    if (!json_is_object(schema))
        BAD("text.format.schema: expected object (a JSON Schema)");
    json_t *js = json_pack("{s:O,s:O}", "name", name, "schema", schema);
    json_t *strict = json_object_get(fmt, "strict"), *desc = json_object_get(fmt, "description");
    if (json_is_boolean(strict))
        json_object_set(js, "strict", strict);
    if (json_is_string(desc))
        json_object_set(js, "description", desc);
    json_object_set_new(dst, "response_format", json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
out:
    return rc;
}

int lg_responses_request_to_openai(const json_t *cin, json_t **outp, json_t **echop, char *err, size_t errlen)
{
    json_t *in = (json_t *)cin; /* read only */
    int rc = 0;
    json_t *out = json_object(), *echo = json_object(), *msgs = json_array(), *v;
    *outp = NULL;
    *echop = NULL;
    if (!json_is_object(in))
        BAD("body: expected a JSON object");
    json_t *model = json_object_get(in, "model");
    if (model != NULL && !json_is_string(model))
        BAD("model: expected string");
    if (model == NULL && json_object_get(in, "models") == NULL)
        BAD("model: required");
    if (json_is_true(json_object_get(in, "store")))
        BAD("store: true is not supported: llmgate's Responses API is stateless, send the whole conversation in input");
    if ((v = json_object_get(in, "store")) != NULL && !json_is_boolean(v) && !json_is_null(v))
        BAD("store: expected boolean");
    if ((v = json_object_get(in, "previous_response_id")) != NULL && !json_is_null(v))
        BAD("previous_response_id: not supported: llmgate's Responses API is stateless, send the whole conversation in input");
    if ((v = json_object_get(in, "conversation")) != NULL && !json_is_null(v))
        BAD("conversation: not supported: llmgate's Responses API is stateless, send the whole conversation in input");
    if (json_is_true(json_object_get(in, "background")))
        BAD("background: true is not supported");
    if (model != NULL)
        json_object_set(out, "model", model);

    json_t *instr = json_object_get(in, "instructions");
    if (instr != NULL && !json_is_null(instr)) {
        if (!json_is_string(instr))
            BAD("instructions: expected string");
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", instr));
    }
    json_t *input = json_object_get(in, "input");
    if (input == NULL || json_is_null(input))
        BAD("input: required");
    if ((rc = input_items(input, msgs, err, errlen)) != 0)
        goto out;
    json_object_set(out, "messages", msgs);

    if ((rc = convert_tools(json_object_get(in, "tools"), out, err, errlen)) != 0 ||
        (rc = convert_tool_choice(json_object_get(in, "tool_choice"), out, err, errlen)) != 0 ||
        (rc = convert_text(json_object_get(in, "text"), out, err, errlen)) != 0)
        goto out;
    if ((v = json_object_get(in, "max_output_tokens")) != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            BAD("max_output_tokens: expected positive integer");
        json_object_set(out, "max_tokens", v);
    }
    if ((v = json_object_get(in, "reasoning")) != NULL && !json_is_null(v)) {
        if (!json_is_object(v))
            BAD("reasoning: expected object");
        json_t *r = json_object();
        static const char *const keep[] = {"effort", "max_tokens", "exclude", "enabled", NULL};
        for (const char *const *k = keep; *k != NULL; ++k)
            if (json_object_get(v, *k) != NULL && !json_is_null(json_object_get(v, *k)))
                json_object_set(r, *k, json_object_get(v, *k));
        json_object_set_new(out, "reasoning", r);
    }
    if ((v = json_object_get(in, "metadata")) != NULL && !json_is_null(v) && !json_is_object(v))
        BAD("metadata: expected object");
    for (size_t k = 0; passthrough_fields[k] != NULL; ++k)
        if ((v = json_object_get(in, passthrough_fields[k])) != NULL && !json_is_null(v))
            json_object_set(out, passthrough_fields[k], v);
    if (json_is_true(json_object_get(in, "stream")))
        json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
    lg__ingress_copy_routing_fields(in, out);
    for (size_t k = 0; echo_fields[k] != NULL; ++k)
        if ((v = json_object_get(in, echo_fields[k])) != NULL)
            json_object_set(echo, echo_fields[k], v);
    *outp = out;
    *echop = echo;
    out = echo = NULL;
out:
    json_decref(out);
    json_decref(echo);
    json_decref(msgs);
    return rc;
}

/* ---- response objects ---- */

static json_t *usage_details(const json_t *u, const char *obj, const char *key)
{
    json_t *v = json_object_get(json_object_get(u, obj), key);
    return json_integer(json_is_integer(v) ? json_integer_value(v) : 0);
}

json_t *lg_responses_usage(const json_t *u)
{
    json_int_t in = json_integer_value(json_object_get(u, "prompt_tokens")),
               out = json_integer_value(json_object_get(u, "completion_tokens"));
    json_t *r =
        json_pack("{s:I,s:{s:o},s:I,s:{s:o},s:I}", "input_tokens", in, "input_tokens_details", "cached_tokens",
                  usage_details(u, "prompt_tokens_details", "cached_tokens"), "output_tokens", out, "output_tokens_details",
                  "reasoning_tokens", usage_details(u, "completion_tokens_details", "reasoning_tokens"), "total_tokens", in + out);
    json_t *cost = json_object_get(u, "cost");
    if (json_is_number(cost))
        json_object_set(r, "cost", cost);
    json_object_set_new(r, "is_byok", json_false());
    json_t *cd = json_object_get(u, "cost_details");
    if (json_is_object(cd)) {
        json_t *p = json_object_get(cd, "upstream_inference_prompt_cost"),
               *c = json_object_get(cd, "upstream_inference_completions_cost");
        json_object_set_new(r, "cost_details",
                            json_pack("{s:n,s:f,s:f}", "upstream_inference_cost", "upstream_inference_input_cost",
                                      json_number_value(p), "upstream_inference_output_cost", json_number_value(c)));
    }
    return r;
}

/* a new response object shell: status, no output yet */
static json_t *response_shell(const char *resp_id, const char *model, int64_t created_at, const json_t *echo, const char *status)
{
    json_t *r = json_pack("{s:s,s:s,s:I,s:n,s:s,s:s,s:[],s:n,s:n,s:n,s:b,s:b,s:s}", "id", resp_id, "object", "response",
                          "created_at", (json_int_t)created_at, "completed_at", "status", status, "model", model, "output", "error",
                          "incomplete_details", "previous_response_id", "store", 0, "background", 0, "truncation", "disabled");
    static const struct {
        const char *name;
        int kind; /* 0 null, 1 object, 2 array, 3 "auto", 4 true */
    } defaults[] = {{"instructions", 0},        {"metadata", 1},    {"tools", 2}, {"tool_choice", 3},
                    {"parallel_tool_calls", 4}, {"temperature", 0}, {"top_p", 0}, {"max_output_tokens", 0},
                    {"reasoning", 0},           {"text", 1},        {"user", 0},  {"frequency_penalty", 0},
                    {"presence_penalty", 0}};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); ++i) {
        json_t *v = json_object_get(echo, defaults[i].name);
        if (v != NULL && !json_is_null(v)) {
            json_object_set(r, defaults[i].name, v);
            continue;
        }
        json_t *d = defaults[i].kind == 1   ? json_object()
                    : defaults[i].kind == 2 ? json_array()
                    : defaults[i].kind == 3 ? json_string("auto")
                    : defaults[i].kind == 4 ? json_true()
                                            : json_null();
        json_object_set_new(r, defaults[i].name, d);
    }
    if (json_object_size(json_object_get(r, "text")) == 0)
        json_object_set_new(r, "text", json_pack("{s:{s:s}}", "format", "type", "text"));
    return r;
}

static void item_id(char *out, size_t cap, const char *prefix, const char *resp_id, size_t n)
{
    const char *suffix = resp_id != NULL ? strchr(resp_id, '_') : NULL;
    snprintf(out, cap, "%s_%s_%zu", prefix, suffix != NULL ? suffix + 1 : "llmgate", n);
}

static json_t *reasoning_output(const json_t *details, const char *text, const char *id)
{
    json_t *summary = json_array(), *item = json_pack("{s:s,s:s,s:o}", "type", "reasoning", "id", id, "summary", summary);
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d)
    {
        const char *type = json_string_value(json_object_get(d, "type"));
        json_t *sig = json_object_get(d, "signature"), *fmt = json_object_get(d, "format");
        if (streq(type, "reasoning.text") || streq(type, "reasoning.summary")) {
            json_t *t = json_object_get(d, streq(type, "reasoning.text") ? "text" : "summary");
            if (json_is_string(t))
                json_array_append_new(summary, json_pack("{s:s,s:O}", "type", "summary_text", "text", t));
        } else if (streq(type, "reasoning.encrypted") && json_is_string(json_object_get(d, "data"))) {
            json_object_set(item, "encrypted_content", json_object_get(d, "data"));
        }
        if (json_is_string(sig))
            json_object_set(item, "signature", sig);
        if (json_is_string(fmt))
            json_object_set(item, "format", fmt);
    }
    if (json_array_size(summary) == 0 && text != NULL && text[0] != '\0')
        json_array_append_new(summary, json_pack("{s:s,s:s}", "type", "summary_text", "text", text));
    return item;
}

static json_t *message_output(const char *text, size_t len, const char *id)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s%,s:[]}]}", "type", "message", "id", id, "status", "completed", "role",
                     "assistant", "content", "type", "output_text", "text", text, len, "annotations");
}

static void set_final_status(json_t *r, const char *finish_reason)
{
    if (streq(finish_reason, "length") || streq(finish_reason, "content_filter")) {
        json_object_set_new(r, "status", json_string("incomplete"));
        json_object_set_new(r, "incomplete_details",
                            json_pack("{s:s}", "reason", streq(finish_reason, "length") ? "max_output_tokens" : "content_filter"));
    } else {
        json_object_set_new(r, "status", json_string("completed"));
    }
}

json_t *lg_responses_response_from_openai(const json_t *openai, const char *resp_id, const char *model, int64_t created_at,
                                          const json_t *echo)
{
    json_t *r = response_shell(resp_id, model, created_at, echo, "completed");
    json_t *output = json_object_get(r, "output");
    const json_t *choice = json_array_get(json_object_get(openai, "choices"), 0);
    const json_t *msg = json_object_get(choice, "message");
    char id[96];
    size_t n = 0;
    const char *reasoning = json_string_value(json_object_get(msg, "reasoning"));
    const json_t *details = json_object_get(msg, "reasoning_details");
    if ((reasoning != NULL && reasoning[0] != '\0') || json_array_size(details) != 0) {
        item_id(id, sizeof(id), "rs", resp_id, n++);
        json_array_append_new(output, reasoning_output(details, reasoning, id));
    }
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content) && json_string_length(content) != 0) {
        item_id(id, sizeof(id), "msg", resp_id, n++);
        json_array_append_new(output, message_output(json_string_value(content), json_string_length(content), id));
    }
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        item_id(id, sizeof(id), "fc", resp_id, n++);
        json_t *call_id = json_object_get(tc, "id");
        json_array_append_new(
            output,
            json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "type", "function_call", "id", id, "status", "completed", "call_id",
                      json_is_string(call_id) ? json_incref(call_id) : json_string(id), "name",
                      json_string_value(json_object_get(fn, "name")) != NULL ? json_string_value(json_object_get(fn, "name")) : "",
                      "arguments", args != NULL ? args : "{}"));
    }
    set_final_status(r, json_string_value(json_object_get(choice, "finish_reason")));
    json_object_set_new(r, "completed_at", json_integer((json_int_t)created_at));
    json_object_set_new(r, "usage", lg_responses_usage(json_object_get(openai, "usage")));
    return r;
}

/* ---- streaming ---- */

#define MAX_STREAM_CALLS 128

enum item_kind { ITEM_REASONING, ITEM_MESSAGE, ITEM_CALL };

struct out_item {
    enum item_kind kind;
    char id[96];
    int output_index;
    json_int_t oa_index; /* tool calls: OpenAI tool_calls[].index */
    char *call_id, *name;
    lg_buf_t text; /* text, reasoning text or arguments so far */
    size_t sent;   /* bytes of text already sent as deltas (calls before they open) */
    int opened, done;
    json_t *details; /* reasoning_details seen (reasoning items) */
};

struct lg_responses_stream {
    char *resp_id, *model;
    int64_t created_at;
    json_t *echo;
    int started, finished;
    json_int_t seq;
    struct out_item *items;
    size_t num_items;
    int next_output;
    int open_text; /* index into items of the open message, -1 */
    int open_reasoning;
    const char *finish_reason; /* static copy of the last seen finish_reason */
    json_t *last_usage;
    int overflow;
};

static int emit(lg_responses_stream_t *s, lg_buf_t *out, json_t *ev)
{
    int rc = 0;
    if (s->overflow) {
        json_decref(ev);
        return LG_ETOOLARGE;
    }
    json_object_set_new(ev, "sequence_number", json_integer(s->seq++));
    const char *type = json_string_value(json_object_get(ev, "type"));
    char *data = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (data == NULL || lg_buf_append(out, "event: ", 7) != 0 || lg_buf_append(out, type, strlen(type)) != 0 ||
        lg_buf_append(out, "\ndata: ", 7) != 0 || lg_buf_append(out, data, strlen(data)) != 0 || lg_buf_append(out, "\n\n", 2) != 0)
        rc = LG_ETOOLARGE;
    free(data);
    json_decref(ev);
    if (rc != 0)
        s->overflow = 1;
    return rc;
}

lg_responses_stream_t *lg_responses_stream_create(const char *resp_id, const char *model, int64_t created_at, const json_t *echo)
{
    lg_responses_stream_t *s = lg_malloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->resp_id = lg_strdup(resp_id != NULL ? resp_id : "resp_llmgate");
    s->model = lg_strdup(model != NULL ? model : "");
    s->created_at = created_at;
    s->echo = echo != NULL ? json_incref((json_t *)echo) : NULL;
    s->open_text = s->open_reasoning = -1;
    return s;
}

void lg_responses_stream_destroy(lg_responses_stream_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->num_items; ++i) {
        free(s->items[i].call_id);
        free(s->items[i].name);
        lg_buf_dispose(&s->items[i].text);
        json_decref(s->items[i].details);
    }
    free(s->items);
    json_decref(s->echo);
    json_decref(s->last_usage);
    free(s->resp_id);
    free(s->model);
    free(s);
}

int lg_responses_stream_ping(lg_buf_t *out)
{
    static const char ping[] = ": keep-alive\n\n";
    return lg_buf_append(out, ping, sizeof(ping) - 1) != 0 ? LG_ETOOLARGE : 0;
}

static json_t *item_json(const lg_responses_stream_t *s, const struct out_item *it)
{
    const char *status = it->done ? "completed" : "in_progress";
    switch (it->kind) {
    case ITEM_REASONING: {
        json_t *j = reasoning_output(it->details, NULL, it->id);
        if (json_array_size(json_object_get(j, "summary")) == 0 && it->text.len != 0)
            json_array_append_new(json_object_get(j, "summary"),
                                  json_pack("{s:s,s:s%}", "type", "summary_text", "text", it->text.data, it->text.len));
        return j;
    }
    case ITEM_MESSAGE:
        if (!it->done)
            return json_pack("{s:s,s:s,s:s,s:s,s:[]}", "type", "message", "id", it->id, "status", status, "role", "assistant",
                             "content");
        return message_output(it->text.data != NULL ? it->text.data : "", it->text.len, it->id);
    case ITEM_CALL:
        (void)s;
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s%}", "type", "function_call", "id", it->id, "status", status, "call_id",
                         it->call_id != NULL ? it->call_id : it->id, "name", it->name != NULL ? it->name : "", "arguments",
                         it->done ? (it->text.data != NULL ? it->text.data : "") : "", it->done ? it->text.len : 0);
    }
    return json_object();
}

static json_t *snapshot(const lg_responses_stream_t *s, const char *status)
{
    json_t *r = response_shell(s->resp_id, s->model, s->created_at, s->echo, status);
    json_t *output = json_object_get(r, "output");
    for (size_t i = 0; i < s->num_items; ++i)
        if (s->items[i].opened)
            json_array_append_new(output, item_json(s, &s->items[i]));
    return r;
}

int lg_responses_stream_begin(lg_responses_stream_t *s, lg_buf_t *out)
{
    if (s->started)
        return 0;
    s->started = 1;
    int rc = emit(s, out, json_pack("{s:s,s:o}", "type", "response.created", "response", snapshot(s, "in_progress")));
    if (rc == 0)
        rc = emit(s, out, json_pack("{s:s,s:o}", "type", "response.in_progress", "response", snapshot(s, "in_progress")));
    return rc;
}

static struct out_item *new_item(lg_responses_stream_t *s, enum item_kind kind)
{
    s->items = realloc(s->items, (s->num_items + 1) * sizeof(*s->items));
    if (s->items == NULL)
        abort();
    struct out_item *it = &s->items[s->num_items];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->output_index = -1;
    lg_buf_init(&it->text, MAX_ITEM_BYTES);
    item_id(it->id, sizeof(it->id), kind == ITEM_REASONING ? "rs" : kind == ITEM_MESSAGE ? "msg" : "fc", s->resp_id, s->num_items);
    s->num_items++;
    return it;
}

static int open_item(lg_responses_stream_t *s, struct out_item *it, lg_buf_t *out)
{
    it->opened = 1;
    it->output_index = s->next_output++;
    int rc = emit(s, out,
                  json_pack("{s:s,s:i,s:o}", "type", "response.output_item.added", "output_index", it->output_index, "item",
                            item_json(s, it)));
    if (rc == 0 && it->kind == ITEM_MESSAGE)
        rc = emit(s, out,
                  json_pack("{s:s,s:s,s:i,s:i,s:{s:s,s:s,s:[]}}", "type", "response.content_part.added", "item_id", it->id,
                            "output_index", it->output_index, "content_index", 0, "part", "type", "output_text", "text", "",
                            "annotations"));
    if (rc == 0 && it->kind == ITEM_REASONING)
        rc = emit(s, out,
                  json_pack("{s:s,s:s,s:i,s:i,s:{s:s,s:s}}", "type", "response.reasoning_summary_part.added", "item_id", it->id,
                            "output_index", it->output_index, "summary_index", 0, "part", "type", "summary_text", "text", ""));
    return rc;
}

static int close_item(lg_responses_stream_t *s, struct out_item *it, lg_buf_t *out)
{
    if (!it->opened || it->done)
        return 0;
    int rc = 0;
    const char *text = it->text.data != NULL ? it->text.data : "";
    if (it->kind == ITEM_MESSAGE) {
        rc = emit(s, out,
                  json_pack("{s:s,s:s,s:i,s:i,s:s%,s:[]}", "type", "response.output_text.done", "item_id", it->id, "output_index",
                            it->output_index, "content_index", 0, "text", text, it->text.len, "logprobs"));
        if (rc == 0)
            rc = emit(s, out,
                      json_pack("{s:s,s:s,s:i,s:i,s:{s:s,s:s%,s:[]}}", "type", "response.content_part.done", "item_id", it->id,
                                "output_index", it->output_index, "content_index", 0, "part", "type", "output_text", "text", text,
                                it->text.len, "annotations"));
    } else if (it->kind == ITEM_REASONING) {
        rc = emit(s, out,
                  json_pack("{s:s,s:s,s:i,s:i,s:s%}", "type", "response.reasoning_summary_text.done", "item_id", it->id,
                            "output_index", it->output_index, "summary_index", 0, "text", text, it->text.len));
        if (rc == 0)
            rc = emit(s, out,
                      json_pack("{s:s,s:s,s:i,s:i,s:{s:s,s:s%}}", "type", "response.reasoning_summary_part.done", "item_id", it->id,
                                "output_index", it->output_index, "summary_index", 0, "part", "type", "summary_text", "text", text,
                                it->text.len));
    } else {
        rc = emit(s, out,
                  json_pack("{s:s,s:s,s:i,s:s,s:s%}", "type", "response.function_call_arguments.done", "item_id", it->id,
                            "output_index", it->output_index, "name", it->name != NULL ? it->name : "", "arguments", text,
                            it->text.len));
    }
    it->done = 1;
    if (rc == 0)
        rc = emit(s, out,
                  json_pack("{s:s,s:i,s:o}", "type", "response.output_item.done", "output_index", it->output_index, "item",
                            item_json(s, it)));
    return rc;
}

static int text_delta(lg_responses_stream_t *s, lg_buf_t *out, enum item_kind kind, const char *t, size_t len)
{
    int *open = kind == ITEM_MESSAGE ? &s->open_text : &s->open_reasoning;
    int rc = 0;
    if (len == 0)
        return 0;
    if (*open < 0) {
        /* a new text item closes the other kind's open item: Responses output is a sequence, not interleaved text */
        int *other = kind == ITEM_MESSAGE ? &s->open_reasoning : &s->open_text;
        if (*other >= 0 && (rc = close_item(s, &s->items[*other], out)) != 0)
            return rc;
        *other = -1;
        struct out_item *it = new_item(s, kind);
        *open = (int)(it - s->items);
        if ((rc = open_item(s, it, out)) != 0)
            return rc;
    }
    struct out_item *it = &s->items[*open];
    if (lg_buf_append(&it->text, t, len) != 0)
        return LG_ETOOLARGE;
    if (kind == ITEM_MESSAGE)
        return emit(s, out,
                    json_pack("{s:s,s:s,s:i,s:i,s:s%,s:[]}", "type", "response.output_text.delta", "item_id", it->id,
                              "output_index", it->output_index, "content_index", 0, "delta", t, len, "logprobs"));
    return emit(s, out,
                json_pack("{s:s,s:s,s:i,s:i,s:s%}", "type", "response.reasoning_summary_text.delta", "item_id", it->id,
                          "output_index", it->output_index, "summary_index", 0, "delta", t, len));
}

static struct out_item *call_slot(lg_responses_stream_t *s, json_int_t oa_index)
{
    for (size_t i = 0; i < s->num_items; ++i)
        if (s->items[i].kind == ITEM_CALL && s->items[i].oa_index == oa_index)
            return &s->items[i];
    size_t calls = 0;
    for (size_t i = 0; i < s->num_items; ++i)
        calls += s->items[i].kind == ITEM_CALL;
    if (calls >= MAX_STREAM_CALLS)
        return NULL;
    struct out_item *it = new_item(s, ITEM_CALL);
    it->oa_index = oa_index;
    return it;
}

static int call_delta(lg_responses_stream_t *s, lg_buf_t *out, const json_t *tc)
{
    int rc = 0;
    json_t *ix = json_object_get(tc, "index");
    struct out_item *it = call_slot(s, json_is_integer(ix) ? json_integer_value(ix) : 0);
    if (it == NULL)
        return 0; /* over the cap: dropped */
    size_t slot = (size_t)(it - s->items);
    const char *id = json_string_value(json_object_get(tc, "id"));
    json_t *fn = json_object_get(tc, "function");
    const char *name = json_string_value(json_object_get(fn, "name"));
    const char *args = json_string_value(json_object_get(fn, "arguments"));
    if (id != NULL && it->call_id == NULL)
        it->call_id = lg_strdup(id);
    if (name != NULL && it->name == NULL)
        it->name = lg_strdup(name);
    if (args != NULL && lg_buf_append(&it->text, args, strlen(args)) != 0)
        return LG_ETOOLARGE;
    if (!it->opened && it->name != NULL) {
        /* text before a tool call ends the message item */
        if (s->open_text >= 0 && (rc = close_item(s, &s->items[s->open_text], out)) != 0)
            return rc;
        if (s->open_reasoning >= 0 && (rc = close_item(s, &s->items[s->open_reasoning], out)) != 0)
            return rc;
        s->open_text = s->open_reasoning = -1;
        if ((rc = open_item(s, &s->items[slot], out)) != 0)
            return rc;
    }
    it = &s->items[slot];
    if (it->opened && it->text.len > it->sent) {
        rc = emit(s, out,
                  json_pack("{s:s,s:s,s:i,s:s%}", "type", "response.function_call_arguments.delta", "item_id", it->id,
                            "output_index", it->output_index, "delta", it->text.data + it->sent, it->text.len - it->sent));
        it->sent = it->text.len;
    }
    return rc;
}

static const char *static_finish(const char *fr)
{
    static const char *const known[] = {"stop", "length", "tool_calls", "content_filter", "error", NULL};
    for (const char *const *k = known; *k != NULL; ++k)
        if (streq(fr, *k))
            return *k;
    return fr != NULL ? "stop" : NULL;
}

int lg_responses_stream_chunk(lg_responses_stream_t *s, const json_t *chunk, lg_buf_t *out)
{
    if (s->finished)
        return 0;
    int rc = lg_responses_stream_begin(s, out);
    json_t *u = json_object_get(chunk, "usage");
    if (json_is_object(u)) {
        json_decref(s->last_usage);
        s->last_usage = json_incref(u);
    }
    size_t i;
    json_t *choice;
    json_array_foreach(json_object_get(chunk, "choices"), i, choice)
    {
        if (rc != 0)
            break;
        json_t *delta = json_object_get(choice, "delta");
        json_t *rd = json_object_get(delta, "reasoning_details");
        if (json_is_array(rd) && json_array_size(rd) != 0) {
            if (s->open_reasoning < 0 && s->open_text < 0) {
                /* details may come before any reasoning text: open the item now so they attach to it */
                struct out_item *it = new_item(s, ITEM_REASONING);
                s->open_reasoning = (int)(it - s->items);
                rc = open_item(s, it, out);
            }
            if (rc == 0 && s->open_reasoning >= 0) {
                struct out_item *it = &s->items[s->open_reasoning];
                if (it->details == NULL)
                    it->details = json_array();
                size_t k;
                json_t *d;
                json_array_foreach(rd, k, d)
                {
                    /* summary text arrives as reasoning deltas; keep only what the final item needs (signature, data) */
                    json_t *keep = json_deep_copy(d);
                    json_object_del(keep, "text");
                    json_array_append_new(it->details, keep);
                }
            }
        }
        const char *reasoning = json_string_value(json_object_get(delta, "reasoning"));
        if (rc == 0 && reasoning != NULL)
            rc = text_delta(s, out, ITEM_REASONING, reasoning, strlen(reasoning));
        const char *content = json_string_value(json_object_get(delta, "content"));
        if (rc == 0 && content != NULL)
            rc = text_delta(s, out, ITEM_MESSAGE, content, strlen(content));
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(delta, "tool_calls"), k, tc)
        {
            if (rc != 0)
                break;
            rc = call_delta(s, out, tc);
        }
        const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
        if (fr != NULL)
            s->finish_reason = static_finish(fr);
    }
    return rc;
}

int lg_responses_stream_finish(lg_responses_stream_t *s, const json_t *usage, lg_buf_t *out)
{
    if (s->finished)
        return 0;
    int rc = lg_responses_stream_begin(s, out);
    for (size_t i = 0; rc == 0 && i < s->num_items; ++i) {
        struct out_item *it = &s->items[i];
        if (it->kind == ITEM_CALL && !it->opened && it->name != NULL && (rc = open_item(s, it, out)) == 0 &&
            it->text.len > it->sent) {
            rc = emit(s, out,
                      json_pack("{s:s,s:s,s:i,s:s%}", "type", "response.function_call_arguments.delta", "item_id", it->id,
                                "output_index", it->output_index, "delta", it->text.data + it->sent, it->text.len - it->sent));
            it->sent = it->text.len;
        }
    }
    /* close in output order */
    for (int oi = 0; rc == 0 && oi < s->next_output; ++oi)
        for (size_t i = 0; rc == 0 && i < s->num_items; ++i)
            if (s->items[i].output_index == oi)
                rc = close_item(s, &s->items[i], out);
    if (rc != 0)
        return rc;
    s->finished = 1;
    json_t *r = snapshot(s, "completed");
    set_final_status(r, s->finish_reason);
    json_object_set_new(r, "completed_at", json_integer((json_int_t)lg_unix_time()));
    json_object_set_new(r, "usage", lg_responses_usage(usage != NULL ? usage : s->last_usage));
    const char *status = json_string_value(json_object_get(r, "status"));
    return emit(
        s, out,
        json_pack("{s:s,s:o}", "type", streq(status, "incomplete") ? "response.incomplete" : "response.completed", "response", r));
}

int lg_responses_stream_error(lg_responses_stream_t *s, int lg_err, const char *message, lg_buf_t *out)
{
    if (s->finished)
        return 0;
    int rc = lg_responses_stream_begin(s, out);
    s->finished = 1;
    if (rc != 0)
        return rc;
    json_t *r = snapshot(s, "failed");
    const char *code = lg_err == LG_ERATELIMIT || lg_err == LG_EUPSTREAM_RATELIMIT ? "rate_limit_exceeded"
                       : lg_err == LG_EINVAL || lg_err == LG_ECONTEXT              ? "invalid_prompt"
                                                                                   : "server_error";
    json_object_set_new(r, "error",
                        json_pack("{s:s,s:s}", "code", code, "message", message != NULL ? message : lg_strerror(lg_err)));
    json_object_set_new(r, "error_type", json_string(lg_err_type(lg_err)));
    json_object_set_new(r, "usage", s->last_usage != NULL ? lg_responses_usage(s->last_usage) : json_null());
    return emit(s, out, json_pack("{s:s,s:o}", "type", "response.failed", "response", r));
}

/* SPDX-License-Identifier: MIT */
/*
 * `anthropic` provider plugin: the Anthropic Messages API (POST {base_url}/messages).
 * Translates OpenAI chat requests into Messages requests (system hoisting, role
 * merging, tool_use / tool_result blocks, images, thinking) and Messages
 * responses / named-event SSE streams back into OpenAI chat objects and chunks.
 * See plugins/README.md.
 *
 * Decisions worth knowing (each has a fixture in tests/data/providers/anthropic/):
 *  - system/developer messages anywhere are hoisted, in order, into `system`: a string (parts joined with "\n\n") or,
 *    when any part carries cache_control, an array of text blocks keeping each cache_control.
 *  - messages that end up with no content blocks (empty strings) are skipped; consecutive same-role turns are merged
 *    (tool messages are user turns, so parallel tool results fold into one user turn). A conversation that starts
 *    with an assistant turn gets a minimal user turn "." in front (Anthropic requires the first turn to be user).
 *  - max_tokens is always sent: max_completion_tokens, else max_tokens, else the catalog's max output, else
 *    options.default_max_tokens (4096).
 *  - dropped (logged at debug): n, seed, logprobs, top_logprobs, logit_bias, frequency/presence_penalty,
 *    response_format json_object (Anthropic has no JSON mode without a schema), stream_options, metadata,
 *    service_tier and any other unknown member.
 *  - response_format json_schema → output_config.format {type: json_schema, schema} (Anthropic's structured outputs).
 *  - reasoning / reasoning_effort → thinking {budget_tokens}, budget kept in [1024, max_tokens-1]; thinking is left
 *    out when max_tokens <= 1024 or tool_choice forces a tool (Anthropic rejects that combination); with thinking on,
 *    temperature and top_k are dropped and top_p < 0.95 is dropped (Anthropic rejects them).
 *  - thinking blocks come back as message.reasoning plus OpenRouter-style reasoning_details (with the signature), and
 *    assistant reasoning_details with a signature go upstream again as thinking blocks (round trip for tool use).
 *  - tool call ids are made safe for Anthropic's ^[a-zA-Z0-9_-]+$ (other bytes → '_'), the same way on tool_use and
 *    tool_result so they still match.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "llmgate/plugin.h"
#include "json/scan.h"

LG_PLUGIN_DECLARE_HOST;
#include "../common/plugin_util.h"

#define PLUGIN_NAME "anthropic"
#define PLUGIN_VERSION "1.0.0"
#define DEFAULT_BASE_URL "https://api.anthropic.com/v1"
#define DEFAULT_VERSION "2023-06-01"
#define DEFAULT_MAX_TOKENS 4096
#define MIN_THINKING_BUDGET 1024
#define MAX_BETAS 32
#define NUM_BASE_HEADERS 5 /* Content-Type, Accept, x-api-key, anthropic-version, anthropic-beta */
#define MAX_EXTRA_HEADERS (LG_HTTP_MAX_HEADERS - NUM_BASE_HEADERS)
#define MAX_STREAM_BLOCKS 4096 /* content block indexes above this are ignored (defends the map) */
#define REASONING_FORMAT "anthropic-claude-v1"

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

struct instance {
    struct pu_common c; /* api_key NULL = no x-api-key header */
    char *version;      /* anthropic-version */
    char *beta;         /* comma-joined anthropic-beta, NULL = none */
    int64_t default_max_tokens;
    double temperature_max;
};

static void an_destroy(void *state)
{
    struct instance *in = state;
    if (in == NULL)
        return;
    pu_common_dispose(&in->c);
    lg_host->free_mem(in->version);
    lg_host->free_mem(in->beta);
    lg_host->free_mem(in);
}

static int has_ctl(const char *s)
{
    for (; *s != '\0'; ++s)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static int parse_option(void *instance, const char *key, json_t *v, lg_errbuf_t *err)
{
    struct instance *in = instance;
    if (strcmp(key, "anthropic_version") == 0) {
        if (!json_is_string(v) || json_string_length(v) == 0 || has_ctl(json_string_value(v))) {
            pu_seterr(err, "options.anthropic_version must be a non-empty string");
            return LG_EINVAL;
        }
        lg_host->free_mem(in->version);
        in->version = pu_strdup(json_string_value(v));
    } else if (strcmp(key, "anthropic_beta") == 0) {
        if (!json_is_array(v) || json_array_size(v) > MAX_BETAS) {
            pu_seterr(err, "options.anthropic_beta must be an array of at most %d strings", MAX_BETAS);
            return LG_EINVAL;
        }
        size_t total = 1;
        for (size_t i = 0; i < json_array_size(v); ++i) {
            json_t *b = json_array_get(v, i);
            if (!json_is_string(b) || json_string_length(b) == 0 || has_ctl(json_string_value(b)) ||
                strchr(json_string_value(b), ',') != NULL) {
                pu_seterr(err, "options.anthropic_beta[%zu] must be a non-empty string without commas", i);
                return LG_EINVAL;
            }
            total += json_string_length(b) + 1;
        }
        lg_host->free_mem(in->beta);
        in->beta = NULL;
        if (json_array_size(v) > 0) {
            in->beta = lg_host->alloc(total);
            in->beta[0] = '\0';
            for (size_t i = 0; i < json_array_size(v); ++i) {
                if (i > 0)
                    strcat(in->beta, ",");
                strcat(in->beta, json_string_value(json_array_get(v, i)));
            }
        }
    } else if (strcmp(key, "default_max_tokens") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            pu_seterr(err, "options.default_max_tokens must be a positive integer");
            return LG_EINVAL;
        }
        in->default_max_tokens = (int64_t)json_integer_value(v);
    } else if (strcmp(key, "temperature_max") == 0) {
        if (!json_is_number(v) || !(json_number_value(v) > 0.0) || json_number_value(v) > 2.0) {
            pu_seterr(err, "options.temperature_max must be a number in (0, 2]");
            return LG_EINVAL;
        }
        in->temperature_max = json_number_value(v);
    } else {
        return PU_UNKNOWN_OPTION;
    }
    return 0;
}

static int an_create(const json_t *conf, void **state, lg_errbuf_t *err)
{
    *state = NULL;
    struct instance *in = lg_host->alloc(sizeof(*in));
    memset(in, 0, sizeof(*in));
    in->default_max_tokens = DEFAULT_MAX_TOKENS;
    in->temperature_max = 1.0;
    in->version = pu_strdup(DEFAULT_VERSION);
    if (pu_common_parse(&in->c, conf, PLUGIN_NAME, DEFAULT_BASE_URL, MAX_EXTRA_HEADERS, err) != 0 ||
        pu_parse_options(conf, in->c.name, parse_option, in, err) != 0) {
        an_destroy(in);
        return LG_EINVAL;
    }
    *state = in;
    return 0;
}

/* ---- request: OpenAI chat → Anthropic Messages ---------------------------------------------------------------------- */

/* Appends blocks (stolen) to the conversation, merging into the previous turn when it has the same role. */
static void push_turn(json_t *turns, const char *role, json_t *blocks)
{
    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return;
    }
    size_t n = json_array_size(turns);
    json_t *last = n > 0 ? json_array_get(turns, n - 1) : NULL;
    if (last != NULL && pu_streq(json_string_value(json_object_get(last, "role")), role)) {
        json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_t *t = json_object();
    json_object_set_new(t, "role", json_string(role));
    json_object_set_new(t, "content", blocks);
    json_array_append_new(turns, t);
}

static json_t *text_block(const char *text, size_t len, json_t *cache_control)
{
    json_t *b = json_object();
    json_object_set_new(b, "type", json_string("text"));
    json_object_set_new(b, "text", json_stringn(text, len));
    if (json_is_object(cache_control))
        json_object_set(b, "cache_control", cache_control);
    return b;
}

/* Anthropic tool ids must match ^[a-zA-Z0-9_-]+$: other bytes become '_' (same rule for tool_use and tool_result). */
static json_t *safe_tool_id(const char *id)
{
    size_t n = strlen(id);
    char *s = lg_host->alloc(n + 1);
    for (size_t i = 0; i < n; ++i) {
        char c = id[i];
        s[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ? c : '_';
    }
    s[n] = '\0';
    json_t *j = json_string(s);
    lg_host->free_mem(s);
    return j;
}

/* data:<media type>[;params];base64,<data> → {type:"base64", media_type, data}; NULL when not base64. */
static json_t *data_uri_source(const char *uri)
{
    const char *meta = uri + 5, *comma = strchr(meta, ',');
    if (comma == NULL)
        return NULL;
    size_t mlen = (size_t)(comma - meta);
    if (mlen < 7 || strncasecmp(comma - 7, ";base64", 7) != 0)
        return NULL;
    size_t tlen = strcspn(meta, ";,");
    if (tlen == 0 || comma[1] == '\0')
        return NULL;
    json_t *src = json_object();
    json_object_set_new(src, "type", json_string("base64"));
    if (tlen == 9 && strncasecmp(meta, "image/jpg", 9) == 0)
        json_object_set_new(src, "media_type", json_string("image/jpeg"));
    else
        json_object_set_new(src, "media_type", json_stringn(meta, tlen));
    json_object_set_new(src, "data", json_string(comma + 1));
    return src;
}

/* {type, source (stolen)} plus the part's cache_control. */
static json_t *source_block(const char *type, json_t *src, const json_t *part)
{
    json_t *b = json_object();
    json_object_set_new(b, "type", json_string(type));
    json_object_set_new(b, "source", src);
    json_t *cc = json_object_get(part, "cache_control");
    if (json_is_object(cc))
        json_object_set(b, "cache_control", cc);
    return b;
}

static int image_block(const json_t *part, json_t **out, lg_errbuf_t *err)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : json_string_value(json_object_get(iu, "url"));
    json_t *src = NULL;
    if (url == NULL) {
        pu_seterr(err, "image_url part without a url");
        return LG_EINVAL;
    }
    if (strncasecmp(url, "data:", 5) == 0) {
        src = data_uri_source(url);
        if (src == NULL) {
            pu_seterr(err, "image data URI must be base64 with a media type");
            return LG_EINVAL;
        }
    } else if (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0) {
        src = json_object();
        json_object_set_new(src, "type", json_string("url"));
        json_object_set_new(src, "url", json_string(url));
    } else {
        pu_seterr(err, "image URL must be http(s) or a data URI");
        return LG_EINVAL;
    }
    *out = source_block("image", src, part);
    return 0;
}

/* OpenAI `file` part with a base64 PDF data URI → document block. */
static int document_block(const json_t *part, json_t **out, lg_errbuf_t *err)
{
    json_t *f = json_object_get(part, "file");
    const char *data = json_string_value(json_object_get(f, "file_data"));
    json_t *src = data != NULL && strncasecmp(data, "data:", 5) == 0 ? data_uri_source(data) : NULL;
    if (src == NULL) {
        pu_seterr(err, "file parts need file_data as a base64 data URI (file_id is not supported by Anthropic)");
        return LG_EUNSUPPORTED;
    }
    *out = source_block("document", src, part);
    return 0;
}

/*
 * Content (string, array of parts, or null) → Anthropic blocks appended to `blocks`. user: text, image_url, file;
 * assistant/system: text only (other parts are skipped). Empty texts are skipped (Anthropic rejects empty blocks).
 */
static int content_blocks(const struct instance *in, const json_t *content, int user, json_t *blocks, lg_errbuf_t *err)
{
    if (content == NULL || json_is_null(content))
        return 0;
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            json_array_append_new(blocks, text_block(json_string_value(content), json_string_length(content), NULL));
        return 0;
    }
    if (!json_is_array(content)) {
        pu_seterr(err, "message content must be a string, an array of parts or null");
        return LG_EINVAL;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (pu_streq(type, "text") || (type == NULL && json_is_string(text))) {
            if (!json_is_string(text)) {
                pu_seterr(err, "text part without text");
                return LG_EINVAL;
            }
            if (json_string_length(text) > 0)
                json_array_append_new(
                    blocks, text_block(json_string_value(text), json_string_length(text), json_object_get(part, "cache_control")));
            continue;
        }
        if (!user) {
            lg_host->log(LG_LOG_DEBUG, in->c.name, "skipped a non-text content part (%s)", type != NULL ? type : "?");
            continue;
        }
        json_t *b = NULL;
        int rc;
        if (pu_streq(type, "image_url"))
            rc = image_block(part, &b, err);
        else if (pu_streq(type, "file"))
            rc = document_block(part, &b, err);
        else {
            pu_seterr(err, "content part type \"%s\" is not supported by Anthropic", type != NULL ? type : "?");
            rc = LG_EUNSUPPORTED;
        }
        if (rc != 0)
            return rc;
        json_array_append_new(blocks, b);
    }
    return 0;
}

/* Text of a tool message's content (string or text parts, concatenated). */
static json_t *tool_result_text(const json_t *content)
{
    if (json_is_string(content))
        return json_incref((json_t *)content);
    json_t *s = json_string("");
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t != NULL) {
            char *joined = pu_printf("%s%s", json_string_value(s), t);
            json_string_set(s, joined);
            lg_host->free_mem(joined);
        }
    }
    return s;
}

/* Assistant reasoning_details (OpenRouter shape) with a signature → thinking / redacted_thinking blocks. */
static void thinking_blocks(const json_t *msg, json_t *blocks)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(msg, "reasoning_details"), i, d)
    {
        const char *type = json_string_value(json_object_get(d, "type"));
        if (pu_streq(type, "reasoning.text")) {
            json_t *text = json_object_get(d, "text"), *sig = json_object_get(d, "signature");
            if (!json_is_string(sig) || json_string_length(sig) == 0)
                continue; /* Anthropic rejects unsigned thinking */
            json_t *b = json_object();
            json_object_set_new(b, "type", json_string("thinking"));
            json_object_set_new(b, "thinking", json_is_string(text) ? json_incref(text) : json_string(""));
            json_object_set(b, "signature", sig);
            json_array_append_new(blocks, b);
        } else if (pu_streq(type, "reasoning.encrypted")) {
            json_t *data = json_object_get(d, "data");
            if (json_is_string(data) && json_string_length(data) > 0)
                json_array_append_new(blocks, json_pack("{ss sO}", "type", "redacted_thinking", "data", data));
        }
    }
}

static int tool_use_blocks(const json_t *msg, json_t *blocks, lg_errbuf_t *err)
{
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (id == NULL || *id == '\0' || name == NULL || *name == '\0') {
            pu_seterr(err, "assistant tool_calls[%zu] needs an id and a function name", i);
            return LG_EINVAL;
        }
        json_t *args = json_object_get(fn, "arguments"), *input = NULL;
        if (json_is_object(args))
            input = json_incref(args);
        else if (json_is_string(args) && json_string_length(args) > 0) {
            input = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
            if (!json_is_object(input)) {
                json_decref(input);
                input = NULL;
            }
        }
        if (input == NULL)
            input = json_object(); /* "" or invalid JSON: Anthropic needs an object */
        json_t *b = json_object();
        json_object_set_new(b, "type", json_string("tool_use"));
        json_object_set_new(b, "id", safe_tool_id(id));
        json_object_set_new(b, "name", json_string(name));
        json_object_set_new(b, "input", input);
        json_array_append_new(blocks, b);
    }
    return 0;
}

/* A turn whose content is a single plain text block is sent as a string (the common, readable form). */
static void simplify_turns(json_t *turns)
{
    size_t i;
    json_t *t;
    json_array_foreach(turns, i, t)
    {
        json_t *c = json_object_get(t, "content");
        json_t *b = json_array_get(c, 0);
        if (json_array_size(c) == 1 && pu_streq(json_string_value(json_object_get(b, "type")), "text") && json_object_size(b) == 2)
            json_object_set(t, "content", json_object_get(b, "text"));
    }
}

static int translate_messages(const struct instance *in, const json_t *messages, json_t *body, lg_errbuf_t *err)
{
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        pu_seterr(err, "messages must be a non-empty array");
        return LG_EINVAL;
    }
    json_t *turns = json_array(), *sys = json_array();
    int sys_cache = 0, rc = 0;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (role == NULL) {
            pu_seterr(err, "messages[%zu] has no role", i);
            rc = LG_EINVAL;
            break;
        }
        json_t *blocks = json_array();
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            rc = content_blocks(in, content, 0, blocks, err);
            size_t j;
            json_t *b;
            json_array_foreach(blocks, j, b)
            {
                sys_cache |= json_object_get(b, "cache_control") != NULL;
            }
            json_array_extend(sys, blocks);
            json_decref(blocks);
        } else if (strcmp(role, "user") == 0) {
            rc = content_blocks(in, content, 1, blocks, err);
            push_turn(turns, "user", blocks);
        } else if (strcmp(role, "assistant") == 0) {
            thinking_blocks(m, blocks);
            rc = content_blocks(in, content, 0, blocks, err);
            if (rc == 0)
                rc = tool_use_blocks(m, blocks, err);
            push_turn(turns, "assistant", blocks);
        } else if (strcmp(role, "tool") == 0) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            if (id == NULL || *id == '\0') {
                json_decref(blocks);
                pu_seterr(err, "messages[%zu]: tool message without tool_call_id", i);
                rc = LG_EINVAL;
                break;
            }
            json_t *b = json_object();
            json_object_set_new(b, "type", json_string("tool_result"));
            json_object_set_new(b, "tool_use_id", safe_tool_id(id));
            json_t *text = tool_result_text(content);
            if (json_string_length(text) > 0)
                json_object_set_new(b, "content", text);
            else
                json_decref(text);
            json_array_append_new(blocks, b);
            push_turn(turns, "user", blocks); /* consecutive tool messages fold into one user turn */
        } else {
            json_decref(blocks);
            pu_seterr(err, "messages[%zu]: role \"%s\" is not supported", i, role);
            rc = LG_EINVAL;
            break;
        }
        if (rc != 0)
            break;
    }
    if (rc == 0 && json_array_size(turns) == 0) {
        pu_seterr(err, "no user or assistant message with content");
        rc = LG_EINVAL;
    }
    if (rc != 0) {
        json_decref(turns);
        json_decref(sys);
        return rc;
    }
    if (!pu_streq(json_string_value(json_object_get(json_array_get(turns, 0), "role")), "user")) {
        json_t *first = json_array();
        json_array_append_new(first, text_block(".", 1, NULL));
        json_t *t = json_object();
        json_object_set_new(t, "role", json_string("user"));
        json_object_set_new(t, "content", first);
        json_array_insert_new(turns, 0, t);
    }
    simplify_turns(turns);
    json_object_set_new(body, "messages", turns);

    if (json_array_size(sys) > 0 && sys_cache) {
        json_object_set_new(body, "system", sys);
    } else {
        if (json_array_size(sys) > 0) {
            size_t total = 1, j;
            json_t *b;
            json_array_foreach(sys, j, b)
            {
                total += json_string_length(json_object_get(b, "text")) + 2;
            }
            char *joined = lg_host->alloc(total), *p = joined;
            json_array_foreach(sys, j, b)
            {
                if (j > 0)
                    memcpy(p, "\n\n", 2), p += 2;
                size_t n = json_string_length(json_object_get(b, "text"));
                memcpy(p, json_string_value(json_object_get(b, "text")), n);
                p += n;
            }
            json_object_set_new(body, "system", json_stringn(joined, (size_t)(p - joined)));
            lg_host->free_mem(joined);
        }
        json_decref(sys);
    }
    return 0;
}

static int translate_tools(const struct instance *in, const json_t *req, json_t *body, int *forced, lg_errbuf_t *err)
{
    json_t *tools = json_object_get(req, "tools"), *out = json_array();
    size_t i;
    json_t *t;
    *forced = 0;
    json_array_foreach(tools, i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *fn = json_object_get(t, "function");
        if (type != NULL && strcmp(type, "function") != 0) {
            lg_host->log(LG_LOG_DEBUG, in->c.name, "dropped tool of type %s", type);
            continue;
        }
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (name == NULL || *name == '\0') {
            json_decref(out);
            pu_seterr(err, "tools[%zu] has no function name", i);
            return LG_EINVAL;
        }
        json_t *a = json_object();
        json_object_set_new(a, "name", json_string(name));
        json_t *desc = json_object_get(fn, "description");
        if (json_is_string(desc) && json_string_length(desc) > 0)
            json_object_set(a, "description", desc);
        json_t *params = json_object_get(fn, "parameters");
        if (json_is_object(params))
            json_object_set(a, "input_schema", params);
        else
            json_object_set_new(a, "input_schema", json_pack("{ss s{}}", "type", "object", "properties"));
        json_t *cc = json_object_get(t, "cache_control");
        if (json_is_object(cc))
            json_object_set(a, "cache_control", cc);
        json_array_append_new(out, a);
    }
    if (json_array_size(out) == 0) {
        json_decref(out); /* Anthropic rejects tool_choice without tools */
        return 0;
    }
    json_object_set_new(body, "tools", out);

    json_t *tc = json_object_get(req, "tool_choice"), *choice = NULL;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "auto") == 0)
            choice = json_pack("{ss}", "type", "auto");
        else if (strcmp(s, "required") == 0 || strcmp(s, "any") == 0)
            choice = json_pack("{ss}", "type", "any");
        else if (strcmp(s, "none") == 0)
            choice = json_pack("{ss}", "type", "none");
        else {
            pu_seterr(err, "tool_choice \"%s\" is not supported", s);
            return LG_EINVAL;
        }
    } else if (json_is_object(tc)) {
        const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
        if (name == NULL)
            name = json_string_value(json_object_get(tc, "name"));
        if (name == NULL || *name == '\0') {
            pu_seterr(err, "tool_choice object needs function.name");
            return LG_EINVAL;
        }
        choice = json_pack("{ss ss}", "type", "tool", "name", name);
    }
    if (json_is_false(json_object_get(req, "parallel_tool_calls"))) {
        if (choice == NULL)
            choice = json_pack("{ss}", "type", "auto");
        if (!pu_streq(json_string_value(json_object_get(choice, "type")), "none"))
            json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice != NULL) {
        const char *ct = json_string_value(json_object_get(choice, "type"));
        *forced = pu_streq(ct, "any") || pu_streq(ct, "tool");
        json_object_set_new(body, "tool_choice", choice);
    }
    return 0;
}

/* Positive integer member (integers, or whole non-negative reals); 0 when absent or invalid. */
static int64_t positive_int(const json_t *v)
{
    int present;
    json_int_t n = pu_tokens(v, &present);
    return present && n > 0 ? (int64_t)n : 0;
}

static int64_t effort_budget(const char *effort)
{
    if (effort == NULL)
        return 0;
    if (strcmp(effort, "minimal") == 0 || strcmp(effort, "low") == 0)
        return 1024;
    if (strcmp(effort, "medium") == 0)
        return 4096;
    if (strcmp(effort, "high") == 0)
        return 16384;
    if (strcmp(effort, "xhigh") == 0 || strcmp(effort, "max") == 0)
        return 32768;
    return 0; /* "none" or unknown: no thinking */
}

/* Thinking budget asked for by reasoning {effort|max_tokens|enabled} or reasoning_effort; 0 = none. */
static int64_t requested_budget(const json_t *req)
{
    json_t *r = json_object_get(req, "reasoning");
    if (json_is_object(r)) {
        if (json_is_false(json_object_get(r, "enabled")))
            return 0;
        int64_t mt = positive_int(json_object_get(r, "max_tokens"));
        if (mt > 0)
            return mt;
        const char *effort = json_string_value(json_object_get(r, "effort"));
        if (effort != NULL)
            return effort_budget(effort);
        if (json_is_true(json_object_get(r, "enabled")))
            return effort_budget("medium");
    }
    return effort_budget(json_string_value(json_object_get(req, "reasoning_effort")));
}

static const char *const known_params[] = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "reasoning",
    "reasoning_effort",
    "include_reasoning",
    "response_format",
};

static void log_dropped(const struct instance *in, const json_t *req)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)req, key, v)
    {
        size_t i;
        for (i = 0; i < sizeof(known_params) / sizeof(known_params[0]); ++i)
            if (strcmp(key, known_params[i]) == 0)
                break;
        if (i == sizeof(known_params) / sizeof(known_params[0]) && !json_is_null(v))
            lg_host->log(LG_LOG_DEBUG, in->c.name, "dropped unsupported parameter %s", key);
    }
}

static int build_body(const struct instance *in, const lg_call_t *call, json_t *b, lg_errbuf_t *err)
{
    const json_t *req = call->body;
    int rc = translate_messages(in, json_object_get(req, "messages"), b, err);
    if (rc != 0)
        return rc;

    int64_t max_tokens = positive_int(json_object_get(req, "max_completion_tokens"));
    if (max_tokens == 0)
        max_tokens = positive_int(json_object_get(req, "max_tokens"));
    if (max_tokens == 0)
        max_tokens = call->max_output_tokens > 0 ? call->max_output_tokens : in->default_max_tokens;
    json_object_set_new(b, "max_tokens", json_integer(max_tokens));

    int forced = 0;
    rc = translate_tools(in, req, b, &forced, err);
    if (rc != 0)
        return rc;

    json_t *stop = json_object_get(req, "stop"), *seqs = json_array();
    if (json_is_string(stop))
        json_array_append(seqs, stop);
    else if (json_is_array(stop)) {
        size_t i;
        json_t *s;
        json_array_foreach(stop, i, s)
        {
            if (json_is_string(s))
                json_array_append(seqs, s);
        }
    }
    /* Anthropic rejects empty / whitespace-only stop sequences */
    for (size_t i = json_array_size(seqs); i-- > 0;) {
        const char *s = json_string_value(json_array_get(seqs, i));
        if (s[strspn(s, " \t\r\n")] == '\0')
            json_array_remove(seqs, i);
    }
    if (json_array_size(seqs) > 0)
        json_object_set_new(b, "stop_sequences", seqs);
    else
        json_decref(seqs);

    int64_t budget = requested_budget(req);
    if (budget > 0 && forced) {
        lg_host->log(LG_LOG_DEBUG, in->c.name, "thinking left out: tool_choice forces a tool");
        budget = 0;
    }
    if (budget > 0) {
        if (budget >= max_tokens)
            budget = max_tokens - 1;
        if (budget < MIN_THINKING_BUDGET) {
            if (max_tokens - 1 >= MIN_THINKING_BUDGET)
                budget = MIN_THINKING_BUDGET;
            else {
                lg_host->log(LG_LOG_DEBUG, in->c.name, "thinking left out: max_tokens %lld too small", (long long)max_tokens);
                budget = 0;
            }
        }
    }
    if (budget > 0)
        json_object_set_new(b, "thinking", json_pack("{ss sI}", "type", "enabled", "budget_tokens", (json_int_t)budget));

    json_t *temp = json_object_get(req, "temperature");
    if (json_is_number(temp)) {
        double t = json_number_value(temp);
        if (budget > 0)
            lg_host->log(LG_LOG_DEBUG, in->c.name, "dropped temperature: not allowed with thinking");
        else if (isfinite(t))
            json_object_set_new(b, "temperature", json_real(t < 0 ? 0 : t > in->temperature_max ? in->temperature_max : t));
    }
    json_t *top_p = json_object_get(req, "top_p");
    if (json_is_number(top_p) && !(budget > 0 && json_number_value(top_p) < 0.95))
        json_object_set(b, "top_p", top_p);
    json_t *top_k = json_object_get(req, "top_k");
    if (json_is_number(top_k) && budget == 0)
        json_object_set(b, "top_k", top_k);

    json_t *rf = json_object_get(req, "response_format");
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (pu_streq(json_string_value(json_object_get(rf, "type")), "json_schema") && json_is_object(schema))
        json_object_set_new(b, "output_config", json_pack("{s{ss sO}}", "format", "type", "json_schema", "schema", schema));

    json_t *user = json_object_get(req, "user");
    if (json_is_string(user) && json_string_length(user) > 0)
        json_object_set_new(b, "metadata", json_pack("{sO}", "user_id", user));
    if (call->stream)
        json_object_set_new(b, "stream", json_true());
    log_dropped(in, req);
    return 0;
}

static int an_build_request(void *state, const lg_call_t *call, lg_http_req_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    if (call->kind != LG_API_CHAT) {
        pu_seterr(err, "anthropic supports chat completions only");
        return LG_EUNSUPPORTED;
    }
    json_t *model;
    int rc = pu_check_call(call, &model, err);
    if (rc != 0)
        return rc;
    /* a new object: call->body is never modified (values are shared by reference only) */
    json_t *b = json_object();
    json_object_set_new(b, "model", model);
    rc = build_body(in, call, b, err);
    if (rc != 0) {
        json_decref(b);
        return rc;
    }
    rc = pu_json_post(out, pu_printf("%s/messages", in->c.base_url), b, call->stream, err);
    if (rc != 0)
        return rc;
    if (in->c.api_key != NULL)
        pu_add_header(out, "x-api-key", in->c.api_key);
    pu_add_header(out, "anthropic-version", in->version);
    if (in->beta != NULL)
        pu_add_header(out, "anthropic-beta", in->beta);
    pu_add_extra_headers(out, &in->c);
    return 0;
}

/* ---- errors --------------------------------------------------------------------------------------------------------- */

static const struct {
    const char *type;
    int status;
    int err;
} error_types[] = {
    {"invalid_request_error", 400, LG_EUPSTREAM_REJECTED},
    {"authentication_error", 401, LG_EUPSTREAM_AUTH},
    {"billing_error", 402, LG_EUPSTREAM_AUTH},
    {"permission_error", 403, LG_EUPSTREAM_AUTH},
    {"not_found_error", 404, LG_EUPSTREAM_REJECTED},
    {"request_too_large", 413, LG_ETOOLARGE},
    {"rate_limit_error", 429, LG_EUPSTREAM_RATELIMIT},
    {"api_error", 500, LG_EUPSTREAM},
    {"timeout_error", 504, LG_ETIMEOUT},
    {"overloaded_error", 529, LG_EOVERLOADED},
};

static int status_of_type(const char *type)
{
    for (size_t i = 0; type != NULL && i < sizeof(error_types) / sizeof(error_types[0]); ++i)
        if (strcmp(type, error_types[i].type) == 0)
            return error_types[i].status;
    return 0;
}

/* The common mapping, except that Anthropic's 504 is its timeout_error. */
static int err_of_status(int status)
{
    return status == 504 ? LG_ETIMEOUT : pu_err_from_status(status);
}

static int is_context_message(const char *msg)
{
    return msg != NULL && (pu_contains_ci(msg, "prompt is too long") || pu_contains_ci(msg, "exceed context limit") ||
                           pu_contains_ci(msg, "context window") || pu_contains_ci(msg, "maximum context length"));
}

/*
 * Classifies an error. status: HTTP status (0 = transport error, 2xx = error object in a success body or an in-band
 * stream error, then the status comes from the error type); root: parsed body or NULL when not JSON.
 */
static void classify(const struct instance *in, int status, const json_t *root, const char *raw, size_t rawlen,
                     lg_upstream_error_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *type = NULL, *msg = NULL;
    if (json_is_object(root)) {
        json_t *e = json_object_get(root, "error");
        if (json_is_object(e)) {
            type = json_string_value(json_object_get(e, "type"));
            msg = json_string_value(json_object_get(e, "message"));
            if (type == NULL) /* OpenAI-style proxies in between */
                type = json_string_value(json_object_get(e, "code"));
        } else if (json_is_string(e)) {
            msg = json_string_value(e);
        }
        if (msg == NULL)
            msg = json_string_value(json_object_get(root, "message"));
    }
    int eff = status;
    if (status == 0 || (status >= 200 && status < 300))
        eff = status_of_type(type);
    out->status = status >= 200 && status < 300 ? eff : status;

    int err;
    if (status == 0 && eff == 0)
        err = LG_EUPSTREAM; /* transport error */
    else if (eff == 0)
        err = LG_EUPSTREAM; /* 2xx error object of unknown type */
    else
        err = err_of_status(eff);
    if (pu_streq(type, "overloaded_error") && eff >= 500)
        err = LG_EOVERLOADED;
    if ((err == LG_EUPSTREAM_REJECTED || err == LG_ETOOLARGE) && is_context_message(msg))
        err = LG_ECONTEXT;
    out->err = err;
    out->retryable = err == LG_EUPSTREAM_REJECTED ? eff == 404 : !(err == LG_ETOOLARGE || err == LG_ECONTENT);

    if (type != NULL)
        pu_copy_code(out->provider_code, sizeof(out->provider_code), type, strlen(type), in != NULL ? in->c.api_key : NULL);
    pu_error_message(out->message, sizeof(out->message), msg, status, root, raw, rawlen);
    pu_redact(out->message, sizeof(out->message), in != NULL ? in->c.api_key : NULL);
}

static void an_classify_error(void *state, int status, const char *body, size_t len, lg_upstream_error_t *out)
{
    json_t *root = pu_load_body(body, len, "{");
    classify(state, status, root, body, len, out);
    json_decref(root);
}

/* ---- responses: Anthropic Messages → OpenAI chat -------------------------------------------------------------------- */

static const char *map_stop_reason(const char *r)
{
    if (r == NULL)
        return "stop";
    if (strcmp(r, "max_tokens") == 0 || strcmp(r, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(r, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(r, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn, unknown */
}

struct usage {
    json_int_t input, cache_creation, cache_creation_1h, cache_read, output;
};

/* Overwrites the counts present in an Anthropic usage object (streams: message_delta values are final, not deltas). */
static int usage_update(struct usage *u, const json_t *j)
{
    int p, any = 0;
    json_int_t v;
    if (!json_is_object(j))
        return 0;
    v = pu_tokens(json_object_get(j, "input_tokens"), &p);
    if (p)
        u->input = v, any = 1;
    v = pu_tokens(json_object_get(j, "cache_creation_input_tokens"), &p);
    if (p)
        u->cache_creation = v, any = 1;
    /* cache_creation splits the writes by lifetime; the 1-hour ones have their own price (pricing.input_cache_write_1h) */
    v = pu_tokens(json_object_get(json_object_get(j, "cache_creation"), "ephemeral_1h_input_tokens"), &p);
    if (p)
        u->cache_creation_1h = v, any = 1;
    v = pu_tokens(json_object_get(j, "cache_read_input_tokens"), &p);
    if (p)
        u->cache_read = v, any = 1;
    v = pu_tokens(json_object_get(j, "output_tokens"), &p);
    if (p)
        u->output = v, any = 1;
    return any;
}

/* OpenAI usage: input_tokens excludes cache tokens, so prompt = input + writes + reads. */
static json_t *usage_json(const struct usage *u)
{
    const json_int_t cap = (json_int_t)1 << 50;
    json_int_t in = u->input > cap ? cap : u->input, cw = u->cache_creation > cap ? cap : u->cache_creation;
    json_int_t cr = u->cache_read > cap ? cap : u->cache_read, out = u->output > cap ? cap : u->output;
    json_int_t prompt = in + cw + cr;
    json_t *usage = json_pack("{sI sI sI s{sI sI}}", "prompt_tokens", prompt, "completion_tokens", out, "total_tokens",
                              prompt + out, "prompt_tokens_details", "cached_tokens", cr, "cache_write_tokens", cw);
    json_int_t cw1h = u->cache_creation_1h > cw ? cw : u->cache_creation_1h;
    if (cw1h > 0)
        json_object_set_new(json_object_get(usage, "prompt_tokens_details"), "cache_write_1h_tokens", json_integer(cw1h));
    return usage;
}

static int exclude_reasoning(const lg_call_t *call)
{
    json_t *r = json_object_get(call->body, "reasoning");
    return json_is_true(json_object_get(r, "exclude")) || json_is_false(json_object_get(call->body, "include_reasoning"));
}

static json_t *reasoning_detail(const char *type, size_t index)
{
    json_t *d = json_object();
    json_object_set_new(d, "type", json_string(type));
    json_object_set_new(d, "format", json_string(REASONING_FORMAT));
    json_object_set_new(d, "index", json_integer((json_int_t)index));
    return d;
}

static int an_parse_response(void *state, const lg_call_t *call, int status, const char *body, size_t len, json_t **out,
                             lg_errbuf_t *err)
{
    struct instance *in = state;
    *out = NULL;
    json_t *root = pu_load_body(body, len, "{");
    if (root == NULL) {
        pu_seterr(err, "upstream response is not a JSON object");
        return LG_EBADRESPONSE;
    }
    json_t *e = json_object_get(root, "error");
    if (pu_streq(json_string_value(json_object_get(root, "type")), "error") || (e != NULL && !json_is_null(e))) {
        lg_upstream_error_t u;
        classify(in, status, root, body, len, &u);
        json_decref(root);
        pu_seterr(err, "%s", u.message);
        return u.err;
    }
    json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        json_decref(root);
        pu_seterr(err, "upstream response has no content array");
        return LG_EBADRESPONSE;
    }
    int no_reasoning = exclude_reasoning(call);
    char *text = NULL, *reasoning = NULL;
    size_t text_len = 0, reasoning_len = 0;
    int have_text = 0, have_reasoning = 0;
    json_t *tool_calls = json_array(), *details = json_array();
    size_t i;
    json_t *blk;
    json_array_foreach(content, i, blk)
    {
        const char *type = json_string_value(json_object_get(blk, "type"));
        if (pu_streq(type, "text")) {
            json_t *t = json_object_get(blk, "text");
            if (!json_is_string(t))
                continue;
            size_t n = json_string_length(t);
            text = lg_host->realloc_mem(text, text_len + n + 1);
            memcpy(text + text_len, json_string_value(t), n);
            text_len += n;
            have_text = 1;
        } else if (pu_streq(type, "tool_use")) {
            json_t *id = json_object_get(blk, "id"), *name = json_object_get(blk, "name"), *input = json_object_get(blk, "input");
            if (!json_is_string(id) || !json_is_string(name))
                continue;
            char *args = json_is_object(input) ? json_dumps(input, JSON_COMPACT) : NULL;
            json_array_append_new(tool_calls, json_pack("{sO ss s{sO ss}}", "id", id, "type", "function", "function", "name", name,
                                                        "arguments", args != NULL ? args : "{}"));
            free(args);
        } else if (pu_streq(type, "thinking") && !no_reasoning) {
            json_t *t = json_object_get(blk, "thinking"), *sig = json_object_get(blk, "signature");
            json_t *d = reasoning_detail("reasoning.text", json_array_size(details));
            if (json_is_string(t)) {
                size_t n = json_string_length(t);
                reasoning = lg_host->realloc_mem(reasoning, reasoning_len + n + 1);
                memcpy(reasoning + reasoning_len, json_string_value(t), n);
                reasoning_len += n;
                have_reasoning = 1;
                json_object_set(d, "text", t);
            }
            if (json_is_string(sig))
                json_object_set(d, "signature", sig);
            json_array_append_new(details, d);
        } else if (pu_streq(type, "redacted_thinking") && !no_reasoning) {
            json_t *data = json_object_get(blk, "data");
            if (json_is_string(data)) {
                json_t *d = reasoning_detail("reasoning.encrypted", json_array_size(details));
                json_object_set(d, "data", data);
                json_array_append_new(details, d);
            }
        }
        /* server_tool_use, web_search_tool_result, ...: not representable in chat completions */
    }

    json_t *msg = json_object();
    json_object_set_new(msg, "role", json_string("assistant"));
    if (have_text)
        json_object_set_new(msg, "content", json_stringn(text, text_len));
    else
        json_object_set_new(msg, "content", json_array_size(tool_calls) > 0 ? json_null() : json_string(""));
    if (have_reasoning)
        json_object_set_new(msg, "reasoning", json_stringn(reasoning, reasoning_len));
    if (json_array_size(details) > 0)
        json_object_set_new(msg, "reasoning_details", details);
    else
        json_decref(details);
    if (json_array_size(tool_calls) > 0)
        json_object_set_new(msg, "tool_calls", tool_calls);
    else
        json_decref(tool_calls);
    lg_host->free_mem(text);
    lg_host->free_mem(reasoning);

    const char *native = json_string_value(json_object_get(root, "stop_reason"));
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "message", msg);
    json_object_set_new(choice, "finish_reason", json_string(map_stop_reason(native)));
    json_object_set_new(choice, "native_finish_reason", native != NULL ? json_string(native) : json_null());
    json_t *resp = json_object();
    json_object_set_new(resp, "choices", json_pack("[o]", choice));
    struct usage u = {0, 0, 0, 0, 0};
    if (usage_update(&u, json_object_get(root, "usage")))
        json_object_set_new(resp, "usage", usage_json(&u));
    json_decref(root);
    *out = resp;
    return 0;
}

/* ---- streams: named SSE events → OpenAI chunks ---------------------------------------------------------------------- */

struct stream {
    int saw_stop;         /* message_stop */
    char stop_reason[32]; /* from message_delta; the finish chunk waits for message_stop so a cut stream never shows "stop" */
    int no_reasoning;     /* reasoning.exclude */
    int next_tool;        /* next OpenAI tool_calls index */
    int *block_tool;      /* content block index → tool index, -1 = not a tool block */
    int *block_detail;    /* content block index → reasoning_details index, -1 = not a thinking block */
    size_t num_blocks;    /* size of the maps */
    int next_detail;      /* next reasoning_details index */
    struct usage usage;   /* latest known counts (overwritten, never added) */
    int have_usage;
};

static int an_stream_begin(void *state, const lg_call_t *call, void **sstate)
{
    (void)state;
    struct stream *s = lg_host->alloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->no_reasoning = exclude_reasoning(call);
    *sstate = s;
    return 0;
}

static void an_stream_free(void *state, void *sstate)
{
    (void)state;
    struct stream *s = sstate;
    if (s == NULL)
        return;
    lg_host->free_mem(s->block_tool);
    lg_host->free_mem(s->block_detail);
    lg_host->free_mem(s);
}

/* Grows the block maps to hold index; returns 0 when the index is unusable. */
static int map_block(struct stream *s, json_int_t index)
{
    if (index < 0 || index >= MAX_STREAM_BLOCKS)
        return 0;
    size_t need = (size_t)index + 1;
    if (need > s->num_blocks) {
        size_t cap = s->num_blocks == 0 ? 8 : s->num_blocks;
        while (cap < need)
            cap *= 2;
        s->block_tool = lg_host->realloc_mem(s->block_tool, cap * sizeof(int));
        s->block_detail = lg_host->realloc_mem(s->block_detail, cap * sizeof(int));
        for (size_t i = s->num_blocks; i < cap; ++i)
            s->block_tool[i] = s->block_detail[i] = -1;
        s->num_blocks = cap;
    }
    return 1;
}

static void emit(lg_stream_out_t *out, json_t *delta, const char *finish, const char *native)
{
    if (out->num_chunks >= LG_STREAM_MAX_CHUNKS) {
        json_decref(delta);
        return;
    }
    json_t *c = json_object();
    json_object_set_new(c, "index", json_integer(0));
    json_object_set_new(c, "delta", delta);
    json_object_set_new(c, "finish_reason", finish != NULL ? json_string(finish) : json_null());
    if (native != NULL)
        json_object_set_new(c, "native_finish_reason", json_string(native));
    json_t *chunk = json_object();
    json_object_set_new(chunk, "choices", json_pack("[o]", c));
    out->chunks[out->num_chunks++] = chunk;
}

static void set_usage(struct stream *s, lg_stream_out_t *out)
{
    json_decref(out->usage);
    out->usage = usage_json(&s->usage);
}

static void block_start(const struct instance *in, struct stream *s, const json_t *root, lg_stream_out_t *out)
{
    json_t *cb = json_object_get(root, "content_block");
    const char *type = json_string_value(json_object_get(cb, "type"));
    json_int_t index = json_integer_value(json_object_get(root, "index"));
    if (!json_is_integer(json_object_get(root, "index")) || !map_block(s, index)) {
        lg_host->log(LG_LOG_DEBUG, in->c.name, "ignoring content_block_start without a usable index");
        return;
    }
    if (pu_streq(type, "tool_use")) {
        const char *id = json_string_value(json_object_get(cb, "id"));
        const char *name = json_string_value(json_object_get(cb, "name"));
        if (id == NULL || name == NULL || s->block_tool[index] >= 0)
            return;
        int k = s->next_tool++;
        s->block_tool[index] = k;
        json_t *input = json_object_get(cb, "input");
        char *args = json_is_object(input) && json_object_size(input) > 0 ? json_dumps(input, JSON_COMPACT) : NULL;
        json_t *delta = json_pack("{s[{si ss ss s{ss ss}}]}", "tool_calls", "index", k, "id", id, "type", "function", "function",
                                  "name", name, "arguments", args != NULL ? args : "");
        free(args);
        emit(out, delta, NULL, NULL);
    } else if (pu_streq(type, "text")) {
        json_t *t = json_object_get(cb, "text");
        if (json_is_string(t) && json_string_length(t) > 0)
            emit(out, json_pack("{sO}", "content", t), NULL, NULL);
    } else if (pu_streq(type, "thinking") && !s->no_reasoning) {
        s->block_detail[index] = s->next_detail++;
        json_t *t = json_object_get(cb, "thinking");
        if (json_is_string(t) && json_string_length(t) > 0) {
            json_t *d = reasoning_detail("reasoning.text", (size_t)s->block_detail[index]);
            json_object_set(d, "text", t);
            emit(out, json_pack("{sO s[o]}", "reasoning", t, "reasoning_details", d), NULL, NULL);
        }
    } else if (pu_streq(type, "redacted_thinking") && !s->no_reasoning) {
        json_t *data = json_object_get(cb, "data");
        if (json_is_string(data)) {
            json_t *d = reasoning_detail("reasoning.encrypted", (size_t)s->next_detail++);
            json_object_set(d, "data", data);
            emit(out, json_pack("{s[o]}", "reasoning_details", d), NULL, NULL);
        }
    }
}

static void block_delta(struct stream *s, const json_t *root, lg_stream_out_t *out)
{
    json_t *d = json_object_get(root, "delta");
    const char *type = json_string_value(json_object_get(d, "type"));
    json_t *jidx = json_object_get(root, "index");
    json_int_t index = json_integer_value(jidx);
    int mapped = json_is_integer(jidx) && index >= 0 && (size_t)index < s->num_blocks;
    if (pu_streq(type, "text_delta")) {
        json_t *t = json_object_get(d, "text");
        if (json_is_string(t) && json_string_length(t) > 0)
            emit(out, json_pack("{sO}", "content", t), NULL, NULL);
    } else if (pu_streq(type, "input_json_delta")) {
        json_t *pj = json_object_get(d, "partial_json");
        if (!mapped || s->block_tool[index] < 0 || !json_is_string(pj) || json_string_length(pj) == 0)
            return;
        emit(out, json_pack("{s[{si s{sO}}]}", "tool_calls", "index", s->block_tool[index], "function", "arguments", pj), NULL,
             NULL);
    } else if (pu_streq(type, "thinking_delta") && !s->no_reasoning) {
        json_t *t = json_object_get(d, "thinking");
        if (!json_is_string(t) || json_string_length(t) == 0)
            return;
        if (mapped && s->block_detail[index] < 0)
            s->block_detail[index] = s->next_detail++;
        json_t *rd = reasoning_detail("reasoning.text", mapped ? (size_t)s->block_detail[index] : 0);
        json_object_set(rd, "text", t);
        emit(out, json_pack("{sO s[o]}", "reasoning", t, "reasoning_details", rd), NULL, NULL);
    } else if (pu_streq(type, "signature_delta") && !s->no_reasoning) {
        /* kept (as reasoning_details) so clients can send the thinking block back with tool results */
        json_t *sig = json_object_get(d, "signature");
        if (!json_is_string(sig) || json_string_length(sig) == 0)
            return;
        if (mapped && s->block_detail[index] < 0)
            s->block_detail[index] = s->next_detail++;
        json_t *rd = reasoning_detail("reasoning.text", mapped ? (size_t)s->block_detail[index] : 0);
        json_object_set(rd, "signature", sig);
        emit(out, json_pack("{s[o]}", "reasoning_details", rd), NULL, NULL);
    }
    /* citations_delta and unknown deltas: dropped */
}

static void stream_error(const struct instance *in, const json_t *root, lg_stream_out_t *out)
{
    lg_upstream_error_t u;
    classify(in, 200, root, NULL, 0, &u);
    pu_stream_error(out, &u, u.err);
}

/*
 * The event that carries nearly every byte of a stream, {"type":"content_block_delta","index":N,"delta":{"type":
 * "text_delta","text":"…"}}, read with the scanner instead of a jansson parse: validated in one pass, the text
 * decoded once. Returns 1 when it handled the event, 0 to take the general path (any other event, or anything
 * unusual: escapes that decode to NUL, which jansson refuses, an error type).
 */
static int text_delta_fast(struct stream *s, const lg_sse_event_t *ev, lg_stream_out_t *out)
{
    lg_json_span_t root, type, delta, dtype, text;
    if (s->saw_stop || lg_json_validate(ev->data, ev->data_len, &root, NULL) != 0 || root.type != LG_JSON_OBJECT ||
        !lg_json_get(root, "type", &type) || !lg_json_key_eq(type, "content_block_delta", 19) ||
        !lg_json_get(root, "delta", &delta) || !lg_json_get(delta, "type", &dtype) || !lg_json_key_eq(dtype, "text_delta", 10))
        return 0;
    if (!lg_json_get(delta, "text", &text) || text.type != LG_JSON_STRING)
        return 1; /* as the general path: a text delta without text adds nothing */
    size_t n = lg_json_str_len(text);
    if (n == 0)
        return 1;
    char stackbuf[512], *buf = n < sizeof(stackbuf) ? stackbuf : lg_host->alloc(n + 1);
    size_t got = 0;
    int ok = lg_json_unescape(text, buf, n + 1, &got) == 0 && memchr(buf, '\0', got) == NULL;
    json_t *t = ok ? json_stringn(buf, got) : NULL;
    if (buf != stackbuf)
        lg_host->free_mem(buf);
    if (t == NULL)
        return 0;
    emit(out, json_pack("{so}", "content", t), NULL, NULL);
    return 1;
}

static int an_parse_stream_event(void *state, void *sstate, const lg_sse_event_t *ev, lg_stream_out_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    struct stream *s = sstate;
    (void)err;
    if (!pu_is_error_event(ev) && text_delta_fast(s, ev, out))
        return 0;
    json_t *root = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        /* a proxy's OpenAI-style terminator carries nothing; anything else was text we would lose */
        if (ev->data_len > 0 && !(ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0)) {
            lg_host->log(LG_LOG_WARN, in->c.name, "stream event that is not a JSON object (%zu bytes)", ev->data_len);
            pu_stream_bad_event(out, ev->data_len);
        }
        return 0;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    if (type == NULL)
        type = ev->event;
    if (strcmp(type, "error") == 0 || pu_is_error_event(ev)) {
        stream_error(in, root, out);
    } else if (s->saw_stop) {
        /* nothing after message_stop */
    } else if (strcmp(type, "message_start") == 0) {
        json_t *msg = json_object_get(root, "message");
        s->have_usage |= usage_update(&s->usage, json_object_get(msg, "usage"));
        emit(out, json_pack("{ss ss}", "role", "assistant", "content", ""), NULL, NULL);
        if (s->have_usage)
            set_usage(s, out);
    } else if (strcmp(type, "content_block_start") == 0) {
        block_start(in, s, root, out);
    } else if (strcmp(type, "content_block_delta") == 0) {
        block_delta(s, root, out);
    } else if (strcmp(type, "message_delta") == 0) {
        json_t *d = json_object_get(root, "delta");
        const char *reason = json_string_value(json_object_get(d, "stop_reason"));
        if (usage_update(&s->usage, json_object_get(root, "usage"))) {
            s->have_usage = 1;
            set_usage(s, out);
        }
        if (reason != NULL)
            snprintf(s->stop_reason, sizeof(s->stop_reason), "%s", reason);
    } else if (strcmp(type, "message_stop") == 0) {
        s->saw_stop = 1;
        out->done = 1;
        if (s->stop_reason[0] != '\0')
            emit(out, json_object(), map_stop_reason(s->stop_reason), s->stop_reason);
        if (s->have_usage)
            set_usage(s, out);
    }
    /* ping, content_block_stop and unknown event types: nothing */
    json_decref(root);
    return 0;
}

static int an_stream_end(void *state, void *sstate, lg_stream_out_t *out, lg_errbuf_t *err)
{
    (void)state;
    (void)out;
    const struct stream *s = sstate;
    if (s != NULL && s->saw_stop)
        return 0;
    pu_seterr(err, "stream ended before message_stop");
    return LG_EBADRESPONSE;
}

static const lg_provider_t provider = {
    .struct_size = sizeof(lg_provider_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR,
    .capabilities = LG_CAP_CHAT | LG_CAP_STREAM,
    .name = PLUGIN_NAME,
    .version = PLUGIN_VERSION,
    .create = an_create,
    .destroy = an_destroy,
    .build_request = an_build_request,
    .parse_response = an_parse_response,
    .stream_begin = an_stream_begin,
    .parse_stream_event = an_parse_stream_event,
    .stream_end = an_stream_end,
    .stream_free = an_stream_free,
    .classify_error = an_classify_error,
    .local_respond = NULL,
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    return pu_plugin_init(host, &provider, out, err);
}

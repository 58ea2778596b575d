/* SPDX-License-Identifier: MIT */
/*
 * Conformance fixture provider (see fixtures.h). Texts, bytes and schemas
 * follow the reference everything-server of @modelcontextprotocol/conformance
 * 0.1.16. Timed tools (logging, progress) step through a uv timer on the
 * worker loop; sampling/elicitation tools ask the client and wait.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"
#include "core/util.h"
#include "mcp/fixtures.h"
#include "mcp/jsonrpc.h"
#include "mcp/session.h"

static const char png_b64[] = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
static const char wav_b64[] = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/* Static documents, parsed once per use (cheap, and no shared mutable JSON between workers). */
static const char tools_json[] =
    "["
    "{\"name\":\"test_simple_text\",\"description\":\"Tests simple text content response\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_image_content\",\"description\":\"Tests image content response\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_audio_content\",\"description\":\"Tests audio content response\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_embedded_resource\",\"description\":\"Tests embedded resource content response\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_multiple_content_types\","
    "\"description\":\"Tests response with multiple content types (text, image, resource)\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_tool_with_logging\",\"description\":\"Tests tool that emits log messages during execution\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_tool_with_progress\",\"description\":\"Tests tool that reports progress notifications\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_error_handling\",\"description\":\"Tests error response handling\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_sampling\",\"description\":\"Tests server-initiated sampling (LLM completion request)\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"prompt\":{\"type\":\"string\","
    "\"description\":\"The prompt to send to the LLM\"}},\"required\":[\"prompt\"]}},"
    "{\"name\":\"test_elicitation\",\"description\":\"Tests server-initiated elicitation (user input request)\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\","
    "\"description\":\"The message to show the user\"}},\"required\":[\"message\"]}},"
    "{\"name\":\"test_elicitation_sep1034_defaults\",\"description\":\"Tests elicitation with default values per SEP-1034\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_elicitation_sep1330_enums\","
    "\"description\":\"Tests elicitation with enum schema improvements per SEP-1330\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"json_schema_2020_12_tool\","
    "\"description\":\"Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)\","
    /* the suite's canonical 2020-12 schema (SEP-1613, SEP-2106): $defs/$anchor/$ref, allOf/anyOf, if/then/else */
    "\"inputSchema\":{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
    "\"$defs\":{\"address\":{\"$anchor\":\"addressDef\",\"type\":\"object\",\"properties\":{\"street\":{\"type\":\"string\"},"
    "\"city\":{\"type\":\"string\"}}}},"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"address\":{\"$ref\":\"#/$defs/address\"},"
    "\"contactMethod\":{\"type\":\"string\",\"enum\":[\"phone\",\"email\"]},\"phone\":{\"type\":\"string\"},"
    "\"email\":{\"type\":\"string\"}},"
    "\"allOf\":[{\"anyOf\":[{\"required\":[\"phone\"]},{\"required\":[\"email\"]}]}],"
    "\"if\":{\"properties\":{\"contactMethod\":{\"const\":\"phone\"}},\"required\":[\"contactMethod\"]},"
    "\"then\":{\"required\":[\"phone\"]},\"else\":{\"required\":[\"email\"]},"
    "\"additionalProperties\":false}}"
    "]";

static const char resources_json[] =
    "["
    "{\"uri\":\"test://static-text\",\"name\":\"static-text\",\"title\":\"Static Text Resource\","
    "\"description\":\"A static text resource for testing\",\"mimeType\":\"text/plain\"},"
    "{\"uri\":\"test://static-binary\",\"name\":\"static-binary\",\"title\":\"Static Binary Resource\","
    "\"description\":\"A static binary resource (image) for testing\",\"mimeType\":\"image/png\"},"
    "{\"uri\":\"test://watched-resource\",\"name\":\"watched-resource\",\"title\":\"Watched Resource\","
    "\"description\":\"A resource that auto-updates every 3 seconds\",\"mimeType\":\"text/plain\"}"
    "]";

static const char templates_json[] =
    "[{\"uriTemplate\":\"test://template/{id}/data\",\"name\":\"template\",\"title\":\"Resource Template\","
    "\"description\":\"A resource template with parameter substitution\",\"mimeType\":\"application/json\"}]";

static const char prompts_json[] =
    "["
    "{\"name\":\"test_simple_prompt\",\"title\":\"Simple Test Prompt\",\"description\":\"A simple prompt without arguments\"},"
    "{\"name\":\"test_prompt_with_arguments\",\"title\":\"Prompt With Arguments\","
    "\"description\":\"A prompt with required arguments\",\"arguments\":["
    "{\"name\":\"arg1\",\"description\":\"First test argument\",\"required\":true},"
    "{\"name\":\"arg2\",\"description\":\"Second test argument\",\"required\":true}]},"
    "{\"name\":\"test_prompt_with_embedded_resource\",\"title\":\"Prompt With Embedded Resource\","
    "\"description\":\"A prompt that includes an embedded resource\",\"arguments\":["
    "{\"name\":\"resourceUri\",\"description\":\"URI of the resource to embed\",\"required\":true}]},"
    "{\"name\":\"test_prompt_with_image\",\"title\":\"Prompt With Image\","
    "\"description\":\"A prompt that includes image content\"}"
    "]";

static const char caps_json[] = "{\"tools\":{\"listChanged\":true},\"resources\":{\"subscribe\":true,\"listChanged\":true},"
                                "\"prompts\":{\"listChanged\":true},\"logging\":{},\"completions\":{}}";

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (v == NULL)
        abort(); /* a typo in the literals above: caught by the unit tests, never by users */
    return v;
}

static json_t *caps_doc;
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;

static void caps_init(void)
{
    caps_doc = load(caps_json);
}

const json_t *lg_mcp_fixtures_capabilities(void)
{
    pthread_once(&caps_once, caps_init);
    return caps_doc;
}

static json_t *text_content(const char *text)
{
    return json_pack("{s:s,s:s}", "type", "text", "text", text);
}

static json_t *text_result(const char *text)
{
    return json_pack("{s:[o]}", "content", text_content(text));
}

/* ---- lists ---- */

static void list_page(lg_mcp_call_t *c, const char *key, const char *doc, const char *cursor)
{
    if (cursor != NULL) {
        /* every list fits in one page, so we never hand out cursors */
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL);
        return;
    }
    lg_mcp_call_result(c, json_pack("{s:o}", key, load(doc)));
}

static void fx_list_tools(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    list_page(c, "tools", tools_json, cursor);
}

static void fx_list_resources(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    list_page(c, "resources", resources_json, cursor);
}

static void fx_list_templates(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    list_page(c, "resourceTemplates", templates_json, cursor);
}

static void fx_list_prompts(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    list_page(c, "prompts", prompts_json, cursor);
}

/* ---- timed tools: three notifications LG_MCP_FIXTURE_STEP_MS apart, then the result ---- */

struct stepper {
    lg_mcp_call_t *call; /* reference */
    uv_timer_t timer;
    int step;
    int progress; /* 1 = progress tool, 0 = logging tool */
};

static void stepper_closed(uv_handle_t *h)
{
    struct stepper *s = h->data;
    lg_mcp_call_unref(s->call);
    free(s);
}

static void stepper_emit(struct stepper *s)
{
    static const char *const logs[] = {"Tool execution started", "Tool processing data", "Tool execution completed"};
    if (s->progress) {
        char msg[64];
        int p = s->step * 50;
        snprintf(msg, sizeof(msg), "Completed step %d of 100", p);
        lg_mcp_call_progress(s->call, p, 100, msg);
    } else {
        lg_mcp_call_log(s->call, LG_MCP_LOG_INFO, "conformance-test-server", json_string(logs[s->step]));
    }
}

static void stepper_done(struct stepper *s)
{
    lg_mcp_call_t *c = s->call;
    lg_mcp_call_on_cancel(c, NULL, NULL);
    uv_timer_stop(&s->timer);
    if (lg_mcp_call_cancelled(c)) {
        lg_mcp_call_error(c, LG_MCP_REQUEST_CANCELLED, "request cancelled", NULL);
    } else if (s->progress) {
        const json_t *tok = lg_mcp_call_progress_token(c);
        char buf[96];
        if (json_is_string(tok))
            snprintf(buf, sizeof(buf), "%s", json_string_value(tok));
        else
            snprintf(buf, sizeof(buf), "%lld", tok != NULL ? (long long)json_integer_value(tok) : 0LL);
        lg_mcp_call_result(c, text_result(buf));
    } else {
        lg_mcp_call_result(c, text_result("Tool with logging executed successfully"));
    }
    uv_close((uv_handle_t *)&s->timer, stepper_closed);
}

static void on_step(uv_timer_t *t)
{
    struct stepper *s = t->data;
    ++s->step;
    stepper_emit(s);
    if (s->step == 2)
        stepper_done(s);
    else
        uv_timer_start(&s->timer, on_step, LG_MCP_FIXTURE_STEP_MS, 0);
}

static void on_stepper_cancel(lg_mcp_call_t *c, void *ud)
{
    (void)c;
    stepper_done(ud);
}

static void start_stepper(lg_mcp_call_t *c, int progress)
{
    struct stepper *s = lg_malloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->call = lg_mcp_call_ref(c);
    s->progress = progress;
    uv_timer_init(lg_mcp_call_loop(c), &s->timer);
    s->timer.data = s;
    lg_mcp_call_on_cancel(c, on_stepper_cancel, s);
    stepper_emit(s); /* step 0 right away */
    uv_timer_start(&s->timer, on_step, LG_MCP_FIXTURE_STEP_MS, 0);
}

/* ---- tools that ask the client ---- */

static void on_sampling_reply(lg_mcp_call_t *c, void *ud, json_t *result, json_t *error)
{
    (void)ud;
    if (error != NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Sampling not supported or error: %.200s",
                 json_string_value(json_object_get(error, "message")) ? json_string_value(json_object_get(error, "message")) : "");
        lg_mcp_call_tool_error(c, msg);
        return;
    }
    const char *text = json_string_value(json_object_get(json_object_get(result, "content"), "text"));
    if (text == NULL)
        text = json_string_value(json_object_get(json_object_get(json_object_get(result, "message"), "content"), "text"));
    size_t n = strlen(text != NULL ? text : "No response") + 16;
    char *buf = lg_malloc(n);
    snprintf(buf, n, "LLM response: %s", text != NULL ? text : "No response");
    lg_mcp_call_result(c, text_result(buf));
    free(buf);
}

static void on_elicitation_reply(lg_mcp_call_t *c, void *ud, json_t *result, json_t *error)
{
    const char *prefix = ud;
    if (error != NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Elicitation not supported or error: %.200s",
                 json_string_value(json_object_get(error, "message")) ? json_string_value(json_object_get(error, "message")) : "");
        lg_mcp_call_tool_error(c, msg);
        return;
    }
    const char *action = json_string_value(json_object_get(result, "action"));
    json_t *content = json_object_get(result, "content");
    char *cj = json_is_object(content) ? json_dumps(content, JSON_COMPACT) : lg_strdup("{}");
    size_t n = strlen(prefix) + strlen(action != NULL ? action : "") + strlen(cj != NULL ? cj : "") + 32;
    char *buf = lg_malloc(n);
    snprintf(buf, n, "%s: action=%s, content=%s", prefix, action != NULL ? action : "undefined", cj != NULL ? cj : "{}");
    lg_mcp_call_result(c, text_result(buf));
    free(buf);
    free(cj);
}

static const char elicit_basic_schema[] =
    "{\"type\":\"object\",\"properties\":{\"username\":{\"type\":\"string\",\"description\":\"User's response\"},"
    "\"email\":{\"type\":\"string\",\"description\":\"User's email address\"}},\"required\":[\"username\",\"email\"]}";

static const char elicit_defaults_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"description\":\"User name\",\"default\":\"John Doe\"},"
    "\"age\":{\"type\":\"integer\",\"description\":\"User age\",\"default\":30},"
    "\"score\":{\"type\":\"number\",\"description\":\"User score\",\"default\":95.5},"
    "\"status\":{\"type\":\"string\",\"description\":\"User status\",\"enum\":[\"active\",\"inactive\",\"pending\"],"
    "\"default\":\"active\"},"
    "\"verified\":{\"type\":\"boolean\",\"description\":\"Verification status\",\"default\":true}},\"required\":[]}";

static const char elicit_enums_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"untitledSingle\":{\"type\":\"string\",\"description\":\"Select one option\","
    "\"enum\":[\"option1\",\"option2\",\"option3\"]},"
    "\"titledSingle\":{\"type\":\"string\",\"description\":\"Select one option with titles\",\"oneOf\":["
    "{\"const\":\"value1\",\"title\":\"First Option\"},{\"const\":\"value2\",\"title\":\"Second Option\"},"
    "{\"const\":\"value3\",\"title\":\"Third Option\"}]},"
    "\"legacyEnum\":{\"type\":\"string\",\"description\":\"Select one option (legacy)\","
    "\"enum\":[\"opt1\",\"opt2\",\"opt3\"],\"enumNames\":[\"Option One\",\"Option Two\",\"Option Three\"]},"
    "\"untitledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options\",\"minItems\":1,\"maxItems\":3,"
    "\"items\":{\"type\":\"string\",\"enum\":[\"option1\",\"option2\",\"option3\"]}},"
    "\"titledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options with titles\",\"minItems\":1,"
    "\"maxItems\":3,\"items\":{\"anyOf\":[{\"const\":\"value1\",\"title\":\"First Choice\"},"
    "{\"const\":\"value2\",\"title\":\"Second Choice\"},{\"const\":\"value3\",\"title\":\"Third Choice\"}]}}"
    "},\"required\":[]}";

static void elicit(lg_mcp_call_t *c, const char *message, const char *schema, const char *prefix)
{
    if (!lg_mcp_call_client_has(c, "elicitation")) {
        lg_mcp_call_tool_error(c, "Elicitation not supported or error: the client did not declare the elicitation capability");
        return;
    }
    json_t *params = json_pack("{s:s,s:o}", "message", message, "requestedSchema", load(schema));
    lg_mcp_call_request(c, "elicitation/create", params, 0, on_elicitation_reply, (void *)prefix);
}

static void fx_call_tool(void *state, lg_mcp_call_t *c, const char *name, json_t *args)
{
    (void)state;
    if (strcmp(name, "test_simple_text") == 0) {
        lg_mcp_call_result(c, text_result("This is a simple text response for testing."));
    } else if (strcmp(name, "test_image_content") == 0) {
        lg_mcp_call_result(c,
                           json_pack("{s:[{s:s,s:s,s:s}]}", "content", "type", "image", "data", png_b64, "mimeType", "image/png"));
    } else if (strcmp(name, "test_audio_content") == 0) {
        lg_mcp_call_result(c,
                           json_pack("{s:[{s:s,s:s,s:s}]}", "content", "type", "audio", "data", wav_b64, "mimeType", "audio/wav"));
    } else if (strcmp(name, "test_embedded_resource") == 0) {
        lg_mcp_call_result(c, json_pack("{s:[{s:s,s:{s:s,s:s,s:s}}]}", "content", "type", "resource", "resource", "uri",
                                        "test://embedded-resource", "mimeType", "text/plain", "text",
                                        "This is an embedded resource content."));
    } else if (strcmp(name, "test_multiple_content_types") == 0) {
        lg_mcp_call_result(c, json_pack("{s:[o,{s:s,s:s,s:s},{s:s,s:{s:s,s:s,s:s}}]}", "content",
                                        text_content("Multiple content types test:"), "type", "image", "data", png_b64, "mimeType",
                                        "image/png", "type", "resource", "resource", "uri", "test://mixed-content-resource",
                                        "mimeType", "application/json", "text", "{\"test\":\"data\",\"value\":123}"));
    } else if (strcmp(name, "test_tool_with_logging") == 0) {
        start_stepper(c, 0);
    } else if (strcmp(name, "test_tool_with_progress") == 0) {
        start_stepper(c, 1);
    } else if (strcmp(name, "test_error_handling") == 0) {
        lg_mcp_call_tool_error(c, "This tool intentionally returns an error for testing");
    } else if (strcmp(name, "test_sampling") == 0) {
        const char *prompt = json_string_value(json_object_get(args, "prompt"));
        if (prompt == NULL) {
            lg_mcp_call_tool_error(c, "Invalid arguments: \"prompt\" must be a string");
            return;
        }
        if (!lg_mcp_call_client_has(c, "sampling")) {
            lg_mcp_call_tool_error(c, "Sampling not supported or error: the client did not declare the sampling capability");
            return;
        }
        json_t *params = json_pack("{s:[{s:s,s:{s:s,s:s}}],s:i}", "messages", "role", "user", "content", "type", "text", "text",
                                   prompt, "maxTokens", 100);
        lg_mcp_call_request(c, "sampling/createMessage", params, 0, on_sampling_reply, NULL);
    } else if (strcmp(name, "test_elicitation") == 0) {
        const char *message = json_string_value(json_object_get(args, "message"));
        if (message == NULL) {
            lg_mcp_call_tool_error(c, "Invalid arguments: \"message\" must be a string");
            return;
        }
        elicit(c, message, elicit_basic_schema, "User response");
    } else if (strcmp(name, "test_elicitation_sep1034_defaults") == 0) {
        elicit(c, "Please review and update the form fields with defaults", elicit_defaults_schema, "Elicitation completed");
    } else if (strcmp(name, "test_elicitation_sep1330_enums") == 0) {
        elicit(c, "Please select options from the enum fields", elicit_enums_schema, "Elicitation completed");
    } else if (strcmp(name, "json_schema_2020_12_tool") == 0) {
        char *a = json_dumps(args, JSON_COMPACT);
        size_t n = strlen(a != NULL ? a : "{}") + 48;
        char *buf = lg_malloc(n);
        snprintf(buf, n, "JSON Schema 2020-12 tool called with: %s", a != NULL ? a : "{}");
        lg_mcp_call_result(c, text_result(buf));
        free(buf);
        free(a);
    } else {
        lg_mcp_call_decline(c);
    }
}

/* ---- resources ---- */

static void fx_read_resource(void *state, lg_mcp_call_t *c, const char *uri)
{
    (void)state;
    if (strcmp(uri, "test://static-text") == 0) {
        lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s,s:s}]}", "contents", "uri", uri, "mimeType", "text/plain", "text",
                                        "This is the content of the static text resource."));
        return;
    }
    if (strcmp(uri, "test://static-binary") == 0) {
        lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s,s:s}]}", "contents", "uri", uri, "mimeType", "image/png", "blob", png_b64));
        return;
    }
    if (strcmp(uri, "test://watched-resource") == 0) {
        lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s,s:s}]}", "contents", "uri", uri, "mimeType", "text/plain", "text",
                                        "Watched resource content"));
        return;
    }
    /* template test://template/{id}/data: id is one non-empty path segment */
    static const char pre[] = "test://template/", post[] = "/data";
    size_t n = strlen(uri), pl = sizeof(pre) - 1, sl = sizeof(post) - 1;
    if (n > pl + sl && strncmp(uri, pre, pl) == 0 && strcmp(uri + n - sl, post) == 0 &&
        memchr(uri + pl, '/', n - pl - sl) == NULL) {
        char *id = lg_malloc(n - pl - sl + 1);
        memcpy(id, uri + pl, n - pl - sl);
        id[n - pl - sl] = '\0';
        json_t *doc = json_pack("{s:s,s:b}", "id", id, "templateTest", 1);
        size_t dn = strlen(id) + 16;
        char *data = lg_malloc(dn);
        snprintf(data, dn, "Data for ID: %s", id);
        json_object_set_new(doc, "data", json_string(data));
        char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s,s:s}]}", "contents", "uri", uri, "mimeType", "application/json", "text",
                                        text != NULL ? text : "{}"));
        free(text);
        free(data);
        free(id);
        json_decref(doc);
        return;
    }
    lg_mcp_call_decline(c);
}

static void fx_subscribe(void *state, lg_mcp_call_t *c, const char *uri, int on)
{
    (void)state;
    (void)on;
    /* the session keeps the subscription; the fixtures never change, so nothing is ever sent for it */
    if (strncmp(uri, "test://", 7) != 0) {
        lg_mcp_call_decline(c);
        return;
    }
    lg_mcp_call_result(c, json_object());
}

/* ---- prompts ---- */

static json_t *user_msg(json_t *content)
{
    return json_pack("{s:s,s:o}", "role", "user", "content", content);
}

static void fx_get_prompt(void *state, lg_mcp_call_t *c, const char *name, json_t *args)
{
    (void)state;
    if (strcmp(name, "test_simple_prompt") == 0) {
        lg_mcp_call_result(c, json_pack("{s:[o]}", "messages", user_msg(text_content("This is a simple prompt for testing."))));
    } else if (strcmp(name, "test_prompt_with_arguments") == 0) {
        const char *a1 = json_string_value(json_object_get(args, "arg1"));
        const char *a2 = json_string_value(json_object_get(args, "arg2"));
        if (a1 == NULL || a2 == NULL) {
            lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "arguments arg1 and arg2 (strings) are required", NULL);
            return;
        }
        size_t n = strlen(a1) + strlen(a2) + 64;
        char *buf = lg_malloc(n);
        snprintf(buf, n, "Prompt with arguments: arg1='%s', arg2='%s'", a1, a2);
        lg_mcp_call_result(c, json_pack("{s:[o]}", "messages", user_msg(text_content(buf))));
        free(buf);
    } else if (strcmp(name, "test_prompt_with_embedded_resource") == 0) {
        const char *uri = json_string_value(json_object_get(args, "resourceUri"));
        if (uri == NULL) {
            lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "argument resourceUri (string) is required", NULL);
            return;
        }
        json_t *res = json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "resource", "resource", "uri", uri, "mimeType", "text/plain",
                                "text", "Embedded resource content for testing.");
        lg_mcp_call_result(c, json_pack("{s:[o,o]}", "messages", user_msg(res),
                                        user_msg(text_content("Please process the embedded resource above."))));
    } else if (strcmp(name, "test_prompt_with_image") == 0) {
        json_t *img = json_pack("{s:s,s:s,s:s}", "type", "image", "data", png_b64, "mimeType", "image/png");
        lg_mcp_call_result(
            c, json_pack("{s:[o,o]}", "messages", user_msg(img), user_msg(text_content("Please analyze the image above."))));
    } else {
        lg_mcp_call_decline(c);
    }
}

/* ---- completion ---- */

static void fx_complete(void *state, lg_mcp_call_t *c, json_t *ref, json_t *argument, json_t *context)
{
    (void)state;
    (void)context;
    const char *type = json_string_value(json_object_get(ref, "type"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    const char *uri = json_string_value(json_object_get(ref, "uri"));
    int mine = (type != NULL && strcmp(type, "ref/prompt") == 0 && name != NULL && strncmp(name, "test_", 5) == 0) ||
               (type != NULL && strcmp(type, "ref/resource") == 0 && uri != NULL && strncmp(uri, "test://", 7) == 0);
    if (!mine) {
        lg_mcp_call_decline(c);
        return;
    }
    /* like the reference server: a valid, empty completion (the suite only checks the shape) */
    const char *arg = json_string_value(json_object_get(argument, "name"));
    (void)arg;
    lg_mcp_call_result(c, json_pack("{s:{s:[],s:i,s:b}}", "completion", "values", "total", 0, "hasMore", 0));
}

const lg_mcp_provider_ops_t lg_mcp_fixtures_ops = {
    .list_tools = fx_list_tools,
    .call_tool = fx_call_tool,
    .list_resources = fx_list_resources,
    .read_resource = fx_read_resource,
    .list_templates = fx_list_templates,
    .subscribe = fx_subscribe,
    .list_prompts = fx_list_prompts,
    .get_prompt = fx_get_prompt,
    .complete = fx_complete,
    .destroy = NULL,
};

/* ---- the builder: /mcp/conformance, and /mcp beside prefixed providers ---- */

static void fixtures_builder(const lg_config_t *conf, lg_mcp_registry_t *def, void (*add_registry)(lg_mcp_registry_t *r))
{
    if (!conf->mcp.conformance_fixtures)
        return;
    lg_mcp_registry_t *fx = lg_mcp_registry_create("conformance");
    lg_mcp_registry_add(fx, "conformance", NULL, lg_mcp_fixtures_capabilities(), &lg_mcp_fixtures_ops, NULL);
    lg_mcp_registry_add(fx, "conformance-2026", NULL, NULL, &lg_mcp_fixtures_mrtr_ops, NULL);
    add_registry(fx);
    /* a test gateway offers them at /mcp too, unprefixed, unless another unprefixed provider owns those names (prefixed
     * upstreams and the llmgate__ built-ins live beside them) */
    if (lg_mcp_registry_num_unprefixed(def) == 0) {
        lg_mcp_registry_add(def, "conformance", NULL, lg_mcp_fixtures_capabilities(), &lg_mcp_fixtures_ops, NULL);
        lg_mcp_registry_add(def, "conformance-2026", NULL, NULL, &lg_mcp_fixtures_mrtr_ops, NULL);
    }
}

void lg_mcp_fixtures_register(void)
{
    lg_mcp_registry_set_builder(fixtures_builder);
}

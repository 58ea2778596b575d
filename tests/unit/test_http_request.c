/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for /v1 request parsing (src/http/request.c): every case's
 * outcome — the error message naming the field, or the extracted routing
 * fields, parameters, provider preferences and the plugins' body — must be
 * what the jansson-tree implementation it replaced produced (the expected
 * lines were recorded from it). Malformed JSON only has to say so: the
 * scanner's reason differs from jansson's wording.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "domain/request.h"
#include "llmgate/plugin.h"

#define BODY_OF(r) lg_gen_request_body(r)
/* describe one parse result as one line (shared by the generator and the test) */
static void describe(lg_gen_request_t *r, int rc, const char *err, char *out, size_t cap)
{
    if (rc != 0) {
        snprintf(out, cap, "ERR %s", err);
        return;
    }
    size_t o = 0;
#define PUT(...) o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, __VA_ARGS__)
    PUT("OK stream=%d models=", r->stream);
    for (size_t i = 0; i < r->num_models; ++i)
        PUT("%s%.*s", i ? "," : "", (int)r->model_lens[i], r->models[i]);
    PUT(" variant=%s sort=%s af=%d rp=%d mp=%g/%g/%g tools=%d mt=%lld est=%lld sid=%s", r->variant ? r->variant : "-",
        r->sort ? r->sort : "-", r->allow_fallbacks, r->require_parameters, r->max_price_prompt, r->max_price_completion,
        r->max_price_request, r->has_tools, (long long)r->max_tokens, (long long)r->prompt_tokens_estimate,
        r->session_id ? r->session_id : "-");
    const char *sp[32];
    size_t n = r->num_sent_params;
    memcpy(sp, r->sent_params, n * sizeof(sp[0]));
    for (size_t i = 1; i < n; ++i)
        for (size_t j = i; j > 0 && strcmp(sp[j - 1], sp[j]) > 0; --j) {
            const char *t = sp[j];
            sp[j] = sp[j - 1];
            sp[j - 1] = t;
        }
    PUT(" params=");
    for (size_t i = 0; i < n; ++i)
        PUT("%s%s", i ? "," : "", sp[i]);
    char *pd = r->provider != NULL ? json_dumps(r->provider, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    PUT(" provider=%s", pd ? pd : "-");
    free(pd);
    char *bd = json_dumps(BODY_OF(r), JSON_COMPACT | JSON_SORT_KEYS);
    PUT(" body=%s", bd ? bd : "-");
    free(bd);
#undef PUT
}

static const struct {
    int kind;
    const char *body;
    const char *want;
} cases[] = {
    {0, "{\"model\":\"m\",\"messages\":[", "ERR invalid JSON body: ']' expected near end of file (line 1, column 25)"},
    {0, "[1,2]", "ERR body: expected a JSON object"},
    {0, "\"str\"", "ERR invalid JSON body: '[' or '{' expected near '\"str\"' (line 1, column 5)"},
    {0, "{\"model\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "ERR model: expected non-empty string"},
    {0, "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "ERR model: expected non-empty string"},
    {0, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "ERR model: required (or a non-empty models array)"},
    {0, "{\"model\":null,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     "ERR model: required (or a non-empty models array)"},
    {0, "{\"models\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "ERR models: expected array of strings"},
    {0, "{\"models\":[\"a\",\"\"],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     "ERR models[1]: expected non-empty string"},
    {0, "{\"models\":[\"a\",3],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "ERR models[1]: expected non-empty string"},
    {0, "{\"models\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     "ERR models: at most 8 entries"},
    {0,
     "{\"model\":\"x\",\"models\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\"],\"messages\":[{\"role\":\"user\",\"content\":"
     "\"x\"}]}",
     "ERR models: at most 8 models"},
    {0, "{\"models\":[],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     "ERR model: required (or a non-empty models array)"},
    {0, "{\"model\":\"m\"}", "ERR messages: required"},
    {0, "{\"model\":\"m\",\"messages\":\"hi\"}", "ERR messages: expected array"},
    {0, "{\"model\":\"m\",\"messages\":[]}", "ERR messages: must not be empty"},
    {0, "{\"model\":\"m\",\"messages\":[1]}", "ERR messages[0]: expected object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "ERR messages[0].role: expected string"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":5,\"content\":\"x\"}]}", "ERR messages[0].role: expected string"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
     "ERR messages[0].role: unknown role \"wizard\""},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"abcdefghijklmnopqrstuvwxyz0123456789abcdefghij\",\"content\":\"x\"}]}",
     "ERR messages[0].role: unknown role \"abcdefghijklmnopqrstuvwxyz012345\""},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
     "ERR messages[0].content: expected string, array or null"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":true}]}",
     "ERR messages[1].content: expected string, array or null"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":{}}]}",
     "ERR messages[0].tool_calls: expected array"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"us\\u0065r\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
     "ERR temperature: expected number"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}",
     "ERR temperature: must be between 0 and 2"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":-0.5}",
     "ERR temperature: must be between 0 and 2"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":1.5}",
     "ERR top_p: must be between 0 and 1"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"frequency_penalty\":-3}",
     "ERR frequency_penalty: must be between -2 and 2"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"presence_penalty\":\"a\"}",
     "ERR presence_penalty: expected number"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"repetition_penalty\":2.5}",
     "ERR repetition_penalty: must be between 0 and 2"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
     "ERR max_tokens: must be between 1 and 2147483647"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}",
     "ERR max_tokens: expected integer"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":\"5\"}",
     "ERR max_tokens: expected integer"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1e2}",
     "ERR max_tokens: expected integer"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3000000000}",
     "ERR max_tokens: must be between 1 and 2147483647"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":-1}",
     "ERR max_completion_tokens: must be between 1 and 2147483647"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":129}", "ERR n: must be between 1 and 128"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_k\":-1}",
     "ERR top_k: must be between 0 and 2147483647"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":\"x\"}", "ERR seed: expected integer"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":5}", "ERR stop: expected string or array"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":{}}", "ERR tools: expected array"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":5}",
     "ERR tool_choice: expected string or object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":\"json\"}",
     "ERR response_format: expected object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":true}",
     "ERR stream_options: expected object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"parallel_tool_calls\":1}",
     "ERR parallel_tool_calls: expected boolean"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"user\":1}", "ERR user: expected string"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"session_id\":1}",
     "ERR session_id: expected string"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":[]}",
     "ERR logit_bias: expected object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}",
     "ERR stream: expected boolean"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\",\"stream\":\"yes\"}",
     "ERR stream: expected boolean"},
    {0,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"session_id\":"
     "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxx\"}",
     "OK stream=0 models=m variant=- sort=- af=1 rp=0 mp=-1/-1/-1 tools=0 mt=0 est=5 "
     "sid="
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxx params= provider=- body={\"messages\":[{\"content\":\"x\",\"role\":\"user\"}],\"model\":\"m\"}"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":\"x\"}",
     "ERR provider: expected object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"bogus_pref\":true}}",
     "ERR provider.bogus_pref: unknown field"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"order\":\"up1\"}}",
     "ERR provider.order: expected array of strings"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"order\":[\"a\",\"\"]}}",
     "ERR provider.order[1]: expected non-empty string"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"only\":[1]}}",
     "ERR provider.only[0]: expected non-empty string"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"ignore\":{}}}",
     "ERR provider.ignore: expected array of strings"},
    {0,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"quantizations\":[\"1\",\"2\",\"3\","
     "\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}}",
     "ERR provider.quantizations: at most 16 entries"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"allow_fallbacks\":\"no\"}}",
     "ERR provider.allow_fallbacks: expected boolean"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"zdr\":1}}",
     "ERR provider.zdr: expected boolean"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"enforce_distillable_text\":\"x\"}}",
     "ERR provider.enforce_distillable_text: expected boolean"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"data_collection\":\"maybe\"}}",
     "ERR provider.data_collection: expected \"allow\" or \"deny\""},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"data_collection\":3}}",
     "ERR provider.data_collection: expected \"allow\" or \"deny\""},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"sort\":\"random\"}}",
     "ERR provider.sort: unknown sort \"random\""},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"sort\":5}}",
     "ERR provider.sort: expected \"price\", \"throughput\", \"latency\" or {\"by\":...}"},
    {0,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"sort\":{\"by\":\"price\",\"partition\":"
     "\"all\"}}}",
     "ERR provider.sort.partition: expected \"model\" or \"none\""},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"sort\":{\"partition\":\"none\"}}}",
     "ERR provider.sort: expected \"price\", \"throughput\", \"latency\" or {\"by\":...}"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"max_price\":5}}",
     "ERR provider.max_price: expected object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"max_price\":{\"prompt\":true}}}",
     "ERR provider.max_price.prompt: expected number"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"max_price\":{\"prompt\":-1}}}",
     "ERR provider.max_price.prompt: must be a non-negative number"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"max_price\":{\"prompt\":\"abc\"}}}",
     "OK stream=0 models=m variant=- sort=- af=1 rp=0 mp=0/-1/-1 tools=0 mt=0 est=5 sid=- params= "
     "provider={\"max_price\":{\"prompt\":\"abc\"}} body={\"messages\":[{\"content\":\"x\",\"role\":\"user\"}],\"model\":\"m\"}"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"max_price\":{\"video\":1}}}",
     "ERR provider.max_price.video: unknown field"},
    {0,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"preferred_min_throughput\":\"fast\"}}",
     "ERR provider.preferred_min_throughput: expected number or object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"preferred_max_latency\":[1]}}",
     "ERR provider.preferred_max_latency: expected number or object"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"provider\":{\"order\":\"x\",\"bogus\":1}}",
     "ERR provider.bogus: unknown field"},
    {1, "{\"model\":\"m\",\"prompt\":5}", "ERR prompt: expected string or array"},
    {1, "{\"model\":\"m\"}", "ERR prompt: expected string or array"},
    {2, "{\"model\":\"m\"}", "ERR input: expected string or array"},
    {2, "{\"model\":\"m\",\"input\":5}", "ERR input: expected string or array"},
    {2, "{\"model\":\"m\",\"input\":[]}", "ERR input: must not be empty"},
    {2, "{\"model\":\"m\",\"input\":\"x\",\"stream\":true}", "ERR stream: embeddings cannot be streamed"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\",\"provider\":{\"bogus\":1}}",
     "ERR temperature: expected number"},
    {0, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1,\"temperature\":\"hot\"}",
     "ERR temperature: expected number"},
    {0, "{\"model\":\"m:nitro\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"models\":[\"m\",\"m:floor\",\"n\"]}",
     "OK stream=0 models=m,n variant=nitro sort=throughput af=1 rp=0 mp=-1/-1/-1 tools=0 mt=0 est=5 sid=- params= provider=- "
     "body={\"messages\":[{\"content\":\"x\",\"role\":\"user\"}],\"model\":\"m:nitro\"}"},
    {0,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello\"},\"abc\",{\"type\":"
     "\"image_url\"}]}],\"tools\":[{\"type\":\"function\"}],\"max_tokens\":7,\"max_completion_tokens\":9,\"session_id\":\"s1\","
     "\"provider\":{\"order\":[\"a\"],\"sort\":\"exacto\",\"allow_fallbacks\":false,\"require_parameters\":true,\"max_price\":{"
     "\"prompt\":\"1.5\",\"completion\":2,\"request\":0}},\"temperature\":null,\"top_p\":0.5,\"stop\":[\"x\"]}",
     "OK stream=0 models=m variant=- sort=throughput af=0 rp=1 mp=1.5/2/0 tools=1 mt=9 est=7 sid=s1 "
     "params=max_completion_tokens,max_tokens,stop,tools,top_p "
     "provider={\"allow_fallbacks\":false,\"max_price\":{\"completion\":2,\"prompt\":\"1.5\",\"request\":0},\"order\":[\"a\"],"
     "\"require_parameters\":true,\"sort\":\"exacto\"} "
     "body={\"max_completion_tokens\":9,\"max_tokens\":7,\"messages\":[{\"content\":[{\"text\":\"hello\",\"type\":\"text\"},"
     "\"abc\",{\"type\":\"image_url\"}],\"role\":\"user\"}],\"model\":\"m\",\"stop\":[\"x\"],\"temperature\":null,\"tools\":[{"
     "\"type\":\"function\"}],\"top_p\":0.5}"},
    {0,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"route\":\"sort\",\"provider\":{\"sort\":\"latency\"}"
     "}",
     "OK stream=0 models=m variant=- sort=latency af=1 rp=0 mp=-1/-1/-1 tools=0 mt=0 est=5 sid=- params= "
     "provider={\"sort\":{\"by\":\"latency\",\"partition\":\"none\"}} "
     "body={\"messages\":[{\"content\":\"x\",\"role\":\"user\"}],\"model\":\"m\"}"},
    {0, "{\"model\":\"m:floor\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     "OK stream=0 models=m variant=floor sort=price af=1 rp=0 mp=-1/-1/-1 tools=0 mt=0 est=5 sid=- params= provider=- "
     "body={\"messages\":[{\"content\":\"x\",\"role\":\"user\"}],\"model\":\"m:floor\"}"},
    {0,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\","
     "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
     "OK stream=0 models=m variant=- sort=- af=1 rp=0 mp=-1/-1/-1 tools=0 mt=0 est=22 sid=- params= provider=- "
     "body={\"messages\":[{\"content\":null,\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"arguments\":\"{}\",\"name\":"
     "\"f\"},\"id\":\"a\",\"type\":\"function\"}]}],\"model\":\"m\"}"},
};

static void test_request_same_outcome_as_the_tree_parser(void **state)
{
    (void)state;
    static const char invalid[] = "ERR invalid JSON body:";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        lg_gen_request_t r;
        char err[512] = "", out[8192];
        int rc = lg_gen_request_parse(&r, cases[i].kind, cases[i].body, strlen(cases[i].body), err, sizeof(err));
        describe(&r, rc, err, out, sizeof(out));
        if (rc == 0)
            lg_gen_request_dispose(&r);
        int same = strncmp(cases[i].want, invalid, sizeof(invalid) - 1) == 0 ? strncmp(out, invalid, sizeof(invalid) - 1) == 0
                                                                             : strcmp(out, cases[i].want) == 0;
        if (!same)
            fail_msg("case %zu: %s\n  got:  %s\n  want: %s", i, cases[i].body, out, cases[i].want);
    }
}

static void test_request_body_and_wire_span(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"a\",\"provider\":{\"order\":[\"x\"]},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"zz\":1}";
    lg_gen_request_t r;
    char err[256];
    assert_int_equal(lg_gen_request_parse(&r, LG_API_CHAT, body, strlen(body), err, sizeof(err)), 0);
    /* nothing built yet but the provider preferences; the span is the whole object, in the request's own copy */
    assert_null(r.root);
    assert_null(r.body);
    assert_non_null(r.provider);
    assert_int_equal(r.wire.type, LG_JSON_OBJECT);
    assert_int_equal(r.wire.len, strlen(body));
    assert_ptr_not_equal(r.wire.p, body);
    json_t *b = lg_gen_request_body(&r);
    assert_non_null(b);
    assert_ptr_equal(lg_gen_request_body(&r), b); /* cached */
    assert_null(json_object_get(b, "provider"));
    assert_non_null(json_object_get(b, "zz"));
    lg_gen_request_dispose(&r);
    assert_null(r.wire.p);
}

static void test_request_escaped_strings_are_decoded(void **state)
{
    (void)state;
    const char *body = "{\"m\\u006fdel\":\"open\\u0061i\\/gpt\",\"messages\":[{\"r\\u006fle\":\"us\\u0065r\",\"content\":\"x\"}],"
                       "\"session_id\":\"s\\u00e9\"}";
    lg_gen_request_t r;
    char err[256] = "";
    assert_int_equal(lg_gen_request_parse(&r, LG_API_CHAT, body, strlen(body), err, sizeof(err)), 0);
    assert_int_equal(r.num_models, 1);
    assert_int_equal(r.model_lens[0], strlen("openai/gpt"));
    assert_memory_equal(r.models[0], "openai/gpt", r.model_lens[0]);
    assert_string_equal(r.session_id, "s\xC3\xA9");
    lg_gen_request_dispose(&r);
}

static void test_request_from_json_keeps_the_tree(void **state)
{
    (void)state;
    json_t *root = json_pack("{s:s,s:[{s:s,s:s}],s:b}", "model", "m", "messages", "role", "user", "content", "x", "stream", 1);
    lg_gen_request_t r;
    char err[256];
    assert_int_equal(lg_gen_request_from_json(&r, LG_API_CHAT, root, err, sizeof(err)), 0);
    assert_ptr_equal(r.root, root);
    assert_int_equal(r.wire.type, LG_JSON_NONE); /* a translation is never forwarded as bytes */
    assert_int_equal(r.stream, 1);
    assert_non_null(lg_gen_request_body(&r));
    lg_gen_request_dispose(&r);
    /* errors take ownership too */
    assert_int_equal(lg_gen_request_from_json(&r, LG_API_CHAT, json_pack("{s:i}", "model", 3), err, sizeof(err)), LG_EINVAL);
    assert_string_equal(err, "model: expected non-empty string");
    assert_int_equal(lg_gen_request_from_json(&r, LG_API_CHAT, json_pack("[]"), err, sizeof(err)), LG_EINVAL);
    assert_string_equal(err, "body: expected a JSON object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_same_outcome_as_the_tree_parser),
        cmocka_unit_test(test_request_body_and_wire_span),
        cmocka_unit_test(test_request_escaped_strings_are_decoded),
        cmocka_unit_test(test_request_from_json_keeps_the_tree),
    };
    return cmocka_run_group_tests_name("request", tests, NULL, NULL);
}

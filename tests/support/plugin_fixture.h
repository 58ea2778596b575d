/* SPDX-License-Identifier: MIT */
/*
 * Shared fixture runner for the provider-plugin tests (tests/unit/test_plugin_*.c): loads <name>.so from
 * LLMGATE_PLUGIN_DIR through the real loader, reads tests/data/providers/<name>/ fixtures, compares JSON, and replays
 * SSE transcripts through the host's parser (src/upstream/sse.c) whole, split at every offset, byte by byte and with
 * CRLF / lone-CR line endings. The fixture formats are described in each test file. cmocka only (assertions fail the
 * running test); one plugin per test executable.
 */
#ifndef LG_TESTS_PLUGIN_FIXTURE_H
#define LG_TESTS_PLUGIN_FIXTURE_H

#include <stddef.h>
#include <jansson.h>
#include "llmgate/plugin.h"

/** What a test tells the runner about its plugin. */
struct pf_plugin {
    const char *name;           /* <name>.so and tests/data/providers/<name>/ */
    const char *default_conf;   /* JSON text of the config pf_create uses when given NULL */
    const char *upstream_model; /* model of the response and stream calls */
    const char *public_model;
    const char *default_url;                 /* request fixtures without expect.url must build this URL; NULL = unchecked */
    const char *request_model;               /* request fixtures without call.upstream_model use this; NULL = none */
    void (*prepare)(void *inst, json_t *fx); /* runs on a request fixture's fresh instance before build_request, or NULL */
    void (*check_request)(const char *casename, const lg_http_req_t *req); /* extra checks on a built request, or NULL */
    void (*check_response)(const char *casename, json_t *out);             /* extra checks on a parsed body, or NULL */
};

/** Loads the plugin (cfg must outlive the tests); NULL with a message on stderr when it cannot. */
const lg_provider_t *pf_setup(const struct pf_plugin *cfg);
void pf_teardown(void);

const char *pf_or_default(const char *s, const char *def);
/** "OK" or an LG_ERRNO_MAP name without the LG_ prefix → its number; unknown names fail the test. */
int pf_err_from_name(const char *s);
const char *pf_err_name(int err);

/** Whole file (NUL-terminated, malloc'd) or NULL. */
char *pf_read_file(const char *path, size_t *len);
/** A fixture file's bytes (malloc'd); a missing file fails the test. */
char *pf_read_fixture(const char *name, size_t *len);
/** A fixture file as JSON (new reference); bad JSON fails the test. */
json_t *pf_load_json(const char *name);
/** Calls fn(file, casename) for each fixture file ending in suffix, sorted by name; returns the count. */
int pf_each_fixture(const char *suffix, void (*fn)(const char *file, const char *casename));
void pf_assert_json_equal(const char *label, json_t *got, json_t *want);
/** Fails unless msg contains want (want NULL = anything). */
void pf_assert_message(const char *label, const char *msg, const char *want);

/** A plugin instance for conf, or for cfg->default_conf when conf is NULL; create() failing fails the test. */
void *pf_create(json_t *conf);
/** "chat" (or absent), "completions", "embeddings". */
lg_api_kind_t pf_kind_from(json_t *j);
void pf_free_req(lg_http_req_t *r);
const char *pf_find_header(const lg_http_req_t *r, const char *name);

/** One replay of a stream through the host SSE parser. */
struct pf_replay {
    void *inst, *ss;
    json_t *chunks, *usage;
    int done, error, error_status, rc, end_rc; /* rc: first non-zero parse_stream_event; end_rc: stream_end */
    char error_message[256], provider_code[64], end_message[256];
};

/** stream_begin, text fed in pieces ending at cuts[] (ascending, < len) then the rest, stream_end at EOF unless an
 *  in-band error stopped it, stream_free. Free with pf_replay_free. */
void pf_replay_stream(void *inst, const lg_call_t *call, const char *text, size_t len, const size_t *cuts, size_t ncuts,
                      struct pf_replay *r);
void pf_replay_free(struct pf_replay *r);

/** Case runners for pf_each_fixture: <case>.conf.json, <case>.response.json, <case>.sse (see the test files). */
void pf_run_conf_case(const char *file, const char *casename);
void pf_run_response_case(const char *file, const char *casename);
void pf_run_sse_case(const char *file, const char *casename);

/** Case runner for <case>.request.json {conf?, call{kind, stream, upstream_model, public_model, max_output_tokens},
 *  body, expect}: builds the request on a fresh instance (after cfg->prepare) and checks it against expect and
 *  <case>.upstream.json (rc, message, body, method, url, headers, absent_headers, unique names, no CR/LF, client body
 *  untouched), then cfg->check_request. */
void pf_run_request_case(const char *file, const char *casename);

/** Runs classify_error.cases.json (at least min_cases) against a default instance. */
void pf_check_classify_table(size_t min_cases);

#endif

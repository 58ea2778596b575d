/* SPDX-License-Identifier: MIT */
/*
 * Shared parts of the provider-plugin fuzz targets (fuzz_<plugin>_{response,stream}.c): one plugin instance per
 * process, the classify_error sweep, the ABI checks on a stream callback's output, and a stream replay through the
 * host's SSE parser cut in two reads. Header-only; include it after the plugin's .c (it calls lg_plugin_init).
 * Every broken promise abort()s, which is what the fuzzer and the corpus replay look for.
 */
#ifndef LG_TESTS_FUZZ_PLUGIN_SUPPORT_H
#define LG_TESTS_FUZZ_PLUGIN_SUPPORT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "plugin/loader.h"
#include "upstream/sse.h"

#define FZ_FN static __attribute__((unused))

static const lg_provider_t *fz_prov;
static void *fz_inst;

/* Loads the compiled-in plugin and creates the one instance from conf (JSON text), once per process. */
FZ_FN void fz_init(const char *conf_text)
{
    if (fz_prov != NULL)
        return;
    lg_errbuf_t err = {{0}};
    if (lg_plugin_init(lg_plugin_host_api(), &fz_prov, &err) != 0)
        abort();
    json_t *conf = json_loads(conf_text, 0, NULL);
    if (conf == NULL || fz_prov->create(conf, &fz_inst, &err) != 0)
        abort();
    json_decref(conf);
}

/* A text field: NUL-terminated within cap and free of the configured secret (NULL = none). */
FZ_FN void fz_check_text(const char *s, size_t cap, const char *secret)
{
    if (memchr(s, '\0', cap) == NULL || (secret != NULL && strstr(s, secret) != NULL))
        abort();
}

/* classify_error on body for every status: an error code, retryable 0/1, terminated texts without the secret. */
FZ_FN void fz_check_classify(const int *statuses, size_t n, const char *body, size_t size, const char *secret)
{
    for (size_t i = 0; i < n; ++i) {
        lg_upstream_error_t u;
        fz_prov->classify_error(fz_inst, statuses[i], body, size, &u);
        if (u.err >= 0 || (u.retryable != 0 && u.retryable != 1))
            abort();
        fz_check_text(u.message, sizeof(u.message), secret);
        fz_check_text(u.provider_code, sizeof(u.provider_code), secret);
    }
}

/* Extra checks on one chunk of a stream callback's output. */
typedef void (*fz_chunk_check_t)(const json_t *chunk, const lg_stream_out_t *out);

/* The ABI promises on one stream callback's output, then frees it: at most LG_STREAM_MAX_CHUNKS object chunks without
 * usage, usage with an integer total, terminated error texts without the secret, an error code with a 4xx/5xx or no
 * status. */
FZ_FN void fz_drain(lg_stream_out_t *out, fz_chunk_check_t check, const char *secret)
{
    if (out->num_chunks > LG_STREAM_MAX_CHUNKS)
        abort();
    for (size_t i = 0; i < out->num_chunks; ++i) {
        if (!json_is_object(out->chunks[i]) || json_object_get(out->chunks[i], "usage") != NULL)
            abort();
        if (check != NULL)
            check(out->chunks[i], out);
        json_decref(out->chunks[i]);
    }
    if (out->usage != NULL && !json_is_integer(json_object_get(out->usage, "total_tokens")))
        abort();
    json_decref(out->usage);
    fz_check_text(out->error_message, sizeof(out->error_message), secret);
    fz_check_text(out->provider_code, sizeof(out->provider_code), secret);
    if (out->error != 0 && (out->error >= 0 || (out->error_status != 0 && (out->error_status < 400 || out->error_status > 599))))
        abort();
}

struct fz_stream {
    void *ss;
    int done, stopped;
    fz_chunk_check_t check;
    const char *secret;
};

static int fz_on_event(void *vctx, const lg_sse_event_t *ev)
{
    struct fz_stream *c = vctx;
    lg_stream_out_t out;
    memset(&out, 0, sizeof(out));
    lg_errbuf_t err = {{0}};
    int rc = fz_prov->parse_stream_event(fz_inst, c->ss, ev, &out, &err);
    int stop = rc != 0 || out.error != 0; /* the host ends the attempt at an in-band error */
    c->done |= out.done;
    fz_drain(&out, c->check, c->secret);
    if (stop)
        c->stopped = 1;
    return stop;
}

/*
 * One stream through the host's SSE parser, fed as text[0..cut) and text[cut..len): stream_begin, events until an
 * in-band error stops it, stream_end (0 or LG_EBADRESPONSE; with end_needs_done, 0 exactly when done was reported),
 * stream_free.
 */
FZ_FN void fz_stream(const lg_call_t *call, const char *text, size_t len, size_t cut, fz_chunk_check_t check, const char *secret,
                     int end_needs_done)
{
    struct fz_stream c = {NULL, 0, 0, check, secret};
    if (fz_prov->stream_begin(fz_inst, call, &c.ss) != 0)
        abort();
    lg_sse_parser_t sp;
    lg_sse_parser_init(&sp, 1 << 20, fz_on_event, NULL, &c);
    if (lg_sse_parser_feed(&sp, text, cut) == 0)
        lg_sse_parser_feed(&sp, text + cut, len - cut);
    lg_sse_parser_finish(&sp);
    lg_sse_parser_dispose(&sp);
    if (!c.stopped) {
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t err = {{0}};
        int rc = fz_prov->stream_end(fz_inst, c.ss, &out, &err);
        if ((rc != 0 && rc != LG_EBADRESPONSE) || (end_needs_done && (rc == 0) != (c.done != 0)))
            abort();
        fz_drain(&out, check, secret);
    }
    fz_prov->stream_free(fz_inst, c.ss);
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Freezes the plugin ABI: offsets and sizes of every struct that crosses the
 * plugin boundary (LP64), plus the numeric constants. A failing assertion
 * here means a layout change that breaks already-built plugins; minor
 * versions may only append members (update the size checks then).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "llmgate/plugin.h"

#define AT(type, member, off) _Static_assert(offsetof(type, member) == (off), #type "." #member " moved")
#define SIZE(type, n) _Static_assert(sizeof(type) == (n), "sizeof(" #type ") changed")

_Static_assert(LG_PLUGIN_ABI_MAJOR == 1, "ABI major changed: every plugin must be rebuilt");
_Static_assert(LG_PLUGIN_ABI_MINOR == 1, "ABI minor changed: extend the layout checks below for the appended members");

#if UINTPTR_MAX == 0xffffffffffffffffu
/* lg_host_api_t */
AT(lg_host_api_t, struct_size, 0);
AT(lg_host_api_t, abi_major, 4);
AT(lg_host_api_t, abi_minor, 8);
AT(lg_host_api_t, _reserved, 12);
AT(lg_host_api_t, alloc, 16);
AT(lg_host_api_t, realloc_mem, 24);
AT(lg_host_api_t, free_mem, 32);
AT(lg_host_api_t, log, 40);
AT(lg_host_api_t, now_ms, 48);
AT(lg_host_api_t, unix_time, 56);
AT(lg_host_api_t, random_u64, 64);
SIZE(lg_host_api_t, 72);

/* lg_provider_t */
AT(lg_provider_t, struct_size, 0);
AT(lg_provider_t, abi_major, 4);
AT(lg_provider_t, abi_minor, 8);
AT(lg_provider_t, capabilities, 12);
AT(lg_provider_t, name, 16);
AT(lg_provider_t, version, 24);
AT(lg_provider_t, create, 32);
AT(lg_provider_t, destroy, 40);
AT(lg_provider_t, build_request, 48);
AT(lg_provider_t, parse_response, 56);
AT(lg_provider_t, stream_begin, 64);
AT(lg_provider_t, parse_stream_event, 72);
AT(lg_provider_t, stream_end, 80);
AT(lg_provider_t, stream_free, 88);
AT(lg_provider_t, classify_error, 96);
AT(lg_provider_t, local_respond, 104);
/* ABI 1.1 */
AT(lg_provider_t, wire_passthrough, 112);
SIZE(lg_provider_t, 120);
_Static_assert(LG_PROVIDER_MIN_SIZE_1_0 == 112, "ABI 1.0 minimum provider size changed");
_Static_assert(LG_PROVIDER_MIN_SIZE_1_1 == 120, "ABI 1.1 provider size changed");

/* lg_call_t */
AT(lg_call_t, struct_size, 0);
AT(lg_call_t, kind, 4);
AT(lg_call_t, stream, 8);
AT(lg_call_t, body, 16);
AT(lg_call_t, upstream_model, 24);
AT(lg_call_t, public_model, 32);
AT(lg_call_t, max_output_tokens, 40);
AT(lg_call_t, request_id, 48);
/* ABI 1.1 */
AT(lg_call_t, wire_body, 56);
AT(lg_call_t, wire_body_len, 64);
SIZE(lg_call_t, 72);

/* lg_header_t, lg_http_req_t */
AT(lg_header_t, name, 0);
AT(lg_header_t, value, 8);
SIZE(lg_header_t, 16);
AT(lg_http_req_t, method, 0);
AT(lg_http_req_t, url, 8);
AT(lg_http_req_t, body, 16);
AT(lg_http_req_t, body_len, 24);
AT(lg_http_req_t, headers, 32);
AT(lg_http_req_t, num_headers, 32 + 16 * LG_HTTP_MAX_HEADERS);
SIZE(lg_http_req_t, 40 + 16 * LG_HTTP_MAX_HEADERS);

/* lg_sse_event_t */
AT(lg_sse_event_t, event, 0);
AT(lg_sse_event_t, event_len, 8);
AT(lg_sse_event_t, data, 16);
AT(lg_sse_event_t, data_len, 24);
AT(lg_sse_event_t, id, 32);
AT(lg_sse_event_t, id_len, 40);
SIZE(lg_sse_event_t, 48);

/* lg_stream_out_t */
AT(lg_stream_out_t, chunks, 0);
AT(lg_stream_out_t, num_chunks, 8 * LG_STREAM_MAX_CHUNKS);
AT(lg_stream_out_t, usage, 8 * LG_STREAM_MAX_CHUNKS + 8);
AT(lg_stream_out_t, done, 8 * LG_STREAM_MAX_CHUNKS + 16);
AT(lg_stream_out_t, error, 8 * LG_STREAM_MAX_CHUNKS + 20);
AT(lg_stream_out_t, error_status, 8 * LG_STREAM_MAX_CHUNKS + 24);
AT(lg_stream_out_t, error_message, 8 * LG_STREAM_MAX_CHUNKS + 28);
AT(lg_stream_out_t, provider_code, 8 * LG_STREAM_MAX_CHUNKS + 28 + 256);
SIZE(lg_stream_out_t, 416);

/* lg_upstream_error_t */
AT(lg_upstream_error_t, err, 0);
AT(lg_upstream_error_t, status, 4);
AT(lg_upstream_error_t, retryable, 8);
AT(lg_upstream_error_t, retry_after_ms, 16);
AT(lg_upstream_error_t, provider_code, 24);
AT(lg_upstream_error_t, message, 88);
SIZE(lg_upstream_error_t, 344);

/* lg_local_resp_t */
AT(lg_local_resp_t, status, 0);
AT(lg_local_resp_t, body, 8);
AT(lg_local_resp_t, body_len, 16);
AT(lg_local_resp_t, chunk_bytes, 24);
AT(lg_local_resp_t, chunk_delay_ms, 32);
AT(lg_local_resp_t, first_delay_ms, 36);
SIZE(lg_local_resp_t, 40);

SIZE(lg_errbuf_t, 256);
#define LG_LAYOUT_CHECKED 1
#else
#define LG_LAYOUT_CHECKED 0
#endif

/* constants that plugins compile in */
_Static_assert(LG_HTTP_MAX_HEADERS == 32, "LG_HTTP_MAX_HEADERS changed");
_Static_assert(LG_STREAM_MAX_CHUNKS == 8, "LG_STREAM_MAX_CHUNKS changed");
_Static_assert(LG_API_CHAT == 0 && LG_API_COMPLETIONS == 1 && LG_API_EMBEDDINGS == 2, "lg_api_kind_t values changed");
_Static_assert(LG_CAP_CHAT == 1 && LG_CAP_COMPLETIONS == 2 && LG_CAP_EMBEDDINGS == 4 && LG_CAP_STREAM == 8 && LG_CAP_LOCAL == 16,
               "capability bits changed");
_Static_assert(LG_LOG_ERR == 0 && LG_LOG_WARN == 1 && LG_LOG_INFO == 2 && LG_LOG_DEBUG == 3, "log levels changed");
_Static_assert(LG_EINVAL == -1 && LG_ETIMEOUT == -12 && LG_EUPSTREAM == -13 && LG_EOVERLOADED == -14 &&
                   LG_EUPSTREAM_RATELIMIT == -15 && LG_EBADRESPONSE == -16 && LG_EUPSTREAM_REJECTED == -17 && LG_ECONTEXT == -20 &&
                   LG_EUNSUPPORTED == -23 && LG_ECONTENT == -25 && LG_EUPSTREAM_AUTH == -26,
               "error numbers are part of the plugin ABI");

static void test_abi_layout_frozen(void **state)
{
    (void)state;
    /* the checks are compile-time; at run time only make sure they were not skipped on the CI platform */
    assert_int_equal(LG_LAYOUT_CHECKED, sizeof(void *) == 8);
    assert_int_equal(sizeof(lg_provider_t), LG_PROVIDER_MIN_SIZE_1_1);
    /* a 1.0 table (what a plugin built against 1.0 ships) ends before the 1.1 member */
    assert_true(LG_PROVIDER_MIN_SIZE_1_0 <= offsetof(lg_provider_t, wire_passthrough));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abi_layout_frozen),
    };
    return cmocka_run_group_tests_name("plugin_abi_layout", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Build description (see buildinfo.h). LG_BUILD_COMMIT and LG_BUILD_TYPE come from CMake at configure time.
 */
#include <curl/curl.h>
#include <h2o/version.h>
#include <jansson.h>
#include <luajit.h>
#include <openssl/crypto.h>
#include <uv.h>
#include "core/buildinfo.h"
#include "llmgate/plugin.h"
#include "llmgate/version.h"

#ifndef LG_BUILD_COMMIT
#define LG_BUILD_COMMIT "unknown"
#endif
#ifndef LG_BUILD_TYPE
#define LG_BUILD_TYPE "unknown"
#endif

void lg_buildinfo_print(FILE *out)
{
    fprintf(out, "llmgate %s\n", LG_VERSION_STRING);
    fprintf(out, "  commit     %s\n", LG_BUILD_COMMIT);
    fprintf(out, "  build      %s, %s, %s\n", LG_BUILD_TYPE,
#if defined(__clang__)
            "clang " __clang_version__,
#elif defined(__GNUC__)
            "gcc " __VERSION__,
#else
            "unknown compiler",
#endif
#if defined(__SANITIZE_ADDRESS__)
            "ASan"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
            "ASan"
#else
            "no sanitizers"
#endif
#else
            "no sanitizers"
#endif
    );
    fprintf(out, "  plugin ABI %d.%d\n", LG_PLUGIN_ABI_MAJOR, LG_PLUGIN_ABI_MINOR);
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    fprintf(out, "  libraries  h2o %s, libuv %s, libcurl %s, %s, jansson %s, %s\n", H2O_VERSION, uv_version_string(),
            cv != NULL ? cv->version : "?", LUAJIT_VERSION, jansson_version_str(), OpenSSL_version(OPENSSL_VERSION));
}

/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the pipeline's normal-form checks (src/pipeline/normal_form.c).
 * Byte 0 picks the API kind; the rest is JSON. Whatever parses is checked as a
 * stream chunk and as a whole answer: never a crash, the facts of an accepted
 * chunk stay within its text, a rejected one always says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "llmgate/error.h"
#include "pipeline/normal_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    lg_api_kind_t kind = (lg_api_kind_t)(data[0] % 3);
    json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    if (j == NULL)
        return 0;
    lg_chunk_facts_t facts;
    char why[160];
    why[0] = '\0';
    int rc = lg_chunk_check(kind, j, &facts, why, sizeof(why));
    if (rc == 0) {
        if (facts.text_chars < 0 || (size_t)facts.text_chars > size)
            abort();
        if (facts.finish != NULL && strlen(facts.finish) > size)
            abort();
    } else if (rc != LG_EBADRESPONSE || why[0] == '\0') {
        abort();
    }
    why[0] = '\0';
    rc = lg_response_check(kind, j, why, sizeof(why));
    if (rc != 0 && (rc != LG_EBADRESPONSE || why[0] == '\0'))
        abort();
    json_decref(j);
    return 0;
}

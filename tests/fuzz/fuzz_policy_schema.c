/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for policy settings schemas (src/policy/schema.c): the input is a SCHEMA as JSON, a newline, then the
 * settings as JSON. Whatever the input, the checker answers (no crash, no leak); an error names its path; a schema it
 * accepts applies to any settings object; applying twice gives the same result, and the filled settings pass the
 * schema again unchanged (defaults are idempotent).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "policy/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t schema_len = nl != NULL ? (size_t)(nl - data) : size;
    json_t *schema = json_loadb((const char *)data, schema_len, JSON_DECODE_ANY, NULL);
    json_t *settings = nl != NULL ? json_loadb((const char *)nl + 1, size - schema_len - 1, JSON_DECODE_ANY, NULL) : NULL;
    char err[512];
    if (schema == NULL)
        goto done;
    err[0] = '\0';
    if (lg__policy_schema_check(schema, err, sizeof(err)) != 0) {
        if (strncmp(err, "SCHEMA", 6) != 0)
            abort(); /* every refusal names the SCHEMA path */
        goto done;
    }
    json_t *filled = NULL, *again = NULL, *refill = NULL;
    int rc = lg__policy_schema_apply(schema, settings, "s", &filled, err, sizeof(err));
    int rc2 = lg__policy_schema_apply(schema, settings, "s", &again, err, sizeof(err));
    if (rc != rc2 || (rc == 0) != (filled != NULL))
        abort();
    if (rc == 0) {
        if (!json_equal(filled, again))
            abort();
        if (lg__policy_schema_apply(schema, filled, "s", &refill, err, sizeof(err)) != 0 || !json_equal(filled, refill))
            abort();
    } else if (err[0] != 's') {
        abort(); /* settings errors start with the settings' path */
    }
    json_decref(filled);
    json_decref(again);
    json_decref(refill);
done:
    json_decref(schema);
    json_decref(settings);
    return 0;
}

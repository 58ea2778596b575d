/* SPDX-License-Identifier: MIT */
/*
 * Policy settings schemas (Kong-plugin style): a policy may return `SCHEMA`, a map from setting name to a field spec
 * { type = "string"|"number"|"integer"|"boolean"|"array"|"object", required, default, min, max, one_of, items,
 * fields, description }. The host checks the SCHEMA itself when the policy loads, then checks the config's
 * `policies.<name>.settings` against it and fills the defaults before any hook reads `lg.conf`. Pure JSON in and
 * out (the VM converts the Lua table), so the validator is unit-tested without a Lua state.
 */
#ifndef LG_POLICY_SCHEMA_H
#define LG_POLICY_SCHEMA_H

#include <stddef.h>
#include <jansson.h>

#define LG__POLICY_SCHEMA_MAX_DEPTH 8 /* nested object/array field specs */

/**
 * Check that schema (a JSON object: setting name -> field spec) is itself well formed. On error returns -1 with a
 * message such as `SCHEMA.hint.type: must be one of string, number, integer, boolean, array, object` in err.
 */
int lg__policy_schema_check(const json_t *schema, char *err, size_t errlen);

/**
 * Check settings (a JSON object, or NULL = none given) against a schema that passed lg__policy_schema_check. path is
 * the settings' place in the config (e.g. "policies.default.settings") and prefixes every message, like the config's
 * own errors: `policies.default.settings.default_hnt: unknown setting`. On success returns 0 and a new object in
 * *filled (caller owns it): a deep copy of settings with every absent setting that has a default set to it (also
 * inside nested objects and array items). On error returns -1, *filled = NULL.
 */
int lg__policy_schema_apply(const json_t *schema, const json_t *settings, const char *path, json_t **filled, char *err,
                            size_t errlen);

#endif

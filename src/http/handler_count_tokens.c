/* SPDX-License-Identifier: MIT */
/*
 * POST /v1/messages/count_tokens (Anthropic's token count; Claude Code calls it, with ?beta=true, to decide when to
 * compact its context). The body is validated like /v1/messages (every field error names its path, in Anthropic's
 * error shape); the answer is {"input_tokens": N} from a conservative estimate over every block (token_estimate.c) —
 * never a fake 0, which a client would trust. Keys, model allow-lists and the catalog apply as for /v1/messages.
 */
#include <stdio.h>
#include <string.h>
#include "auth/gate.h"
#include "auth/keytable.h"
#include "http/anthropic_ingress.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/token_estimate.h"

static void anthropic_error(h2o_req_t *req, int lg_err, int status, const char *msg)
{
    int st = lg_anthropic_error_status(lg_err, status);
    lg_respond_json(req, st, lg_anthropic_error_json(lg_err, st, msg));
}

void lg_handle_count_tokens(lg_worker_t *w, h2o_req_t *req)
{
    const lg_config_t *conf = w->rt->snap->conf;
    lg_key_entry_t *key = NULL;
    const char *why = NULL;
    if (lg_gate_authenticate(req, &key, &why) != 0) {
        anthropic_error(req, LG_EAUTH, 401, why);
        return;
    }
    if (key != NULL && (why = lg_gate_key_refusal(key)) != NULL) {
        lg_key_entry_release(key);
        anthropic_error(req, LG_EAUTH, 401, why);
        return;
    }
    json_t *body = NULL, *translated = NULL;
    char err[256];
    if (req->entity.len > conf->max_body_bytes) {
        snprintf(err, sizeof(err), "request body exceeds %zu bytes", conf->max_body_bytes);
        anthropic_error(req, LG_ETOOLARGE, 413, err);
        goto out;
    }
    json_error_t jerr;
    body = json_loadb(req->entity.base != NULL ? req->entity.base : "", req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(body)) {
        snprintf(err, sizeof(err), "body: %s", body == NULL ? jerr.text : "expected a JSON object");
        anthropic_error(req, LG_EINVAL, 400, err);
        goto out;
    }
    /* count_tokens takes the Messages fields without max_tokens: validate with the same translator as /v1/messages */
    json_t *probe = json_copy(body);
    if (json_object_get(probe, "max_tokens") == NULL)
        json_object_set_new(probe, "max_tokens", json_integer(1));
    int rc = lg_anthropic_request_to_openai(probe, &translated, err, sizeof(err));
    json_decref(probe);
    if (rc != 0) {
        anthropic_error(req, LG_EINVAL, 400, err);
        goto out;
    }
    const char *model = json_string_value(json_object_get(body, "model"));
    if (model == NULL || lg_snapshot_find_model(w->rt->snap, model, strlen(model)) < 0) {
        snprintf(err, sizeof(err), "model: %.200s is not a valid model ID", model != NULL ? model : "(missing)");
        anthropic_error(req, LG_ENOTFOUND, 404, err);
        goto out;
    }
    if (key != NULL && !lg_key_model_allowed(key, model)) {
        snprintf(err, sizeof(err), "model %.200s is not allowed for this API key", model);
        anthropic_error(req, LG_EFORBIDDEN, 403, err);
        goto out;
    }
    lg_respond_json(req, 200, json_pack("{s:I}", "input_tokens", (json_int_t)lg_estimate_anthropic_input_tokens(body)));
out:
    json_decref(body);
    json_decref(translated);
    if (key != NULL)
        lg_key_entry_release(key);
}

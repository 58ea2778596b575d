/* SPDX-License-Identifier: MIT */
/*
 * API key records: deep copy/free, generation of new keys from the kernel's
 * crypto RNG, SHA-256 hashing of secrets, the input rules the CLI and the
 * admin API share, and the JSON form used in listings (never the hash).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <openssl/evp.h>
#include "core/util.h"
#include "domain/key.h"
#include "llmgate/error.h"

#define PICO_PER_USD 1e12

lg_key_record_t *lg_key_record_dup(const lg_key_record_t *k)
{
    lg_key_record_t *c;
    if (k == NULL)
        return NULL;
    c = lg_malloc(sizeof(*c));
    *c = *k;
    c->name = k->name != NULL ? lg_strdup(k->name) : NULL;
    c->allowed_models = lg_strv_dup(k->allowed_models);
    c->allowed_tools = lg_strv_dup(k->allowed_tools);
    /* a deep copy, not a reference: records travel between threads and jansson objects are not thread-safe */
    c->metadata = NULL;
    if (k->metadata != NULL && (c->metadata = json_deep_copy(k->metadata)) == NULL) {
        lg_key_record_free(c);
        return NULL;
    }
    return c;
}

void lg_key_record_init(lg_key_record_t *k)
{
    memset(k, 0, sizeof(*k));
    k->credit_limit_pico = -1;
}

void lg_key_record_clear(lg_key_record_t *k)
{
    free(k->name);
    lg_strv_free(k->allowed_models);
    lg_strv_free(k->allowed_tools);
    json_decref(k->metadata);
    k->name = NULL;
    k->allowed_models = k->allowed_tools = NULL;
    k->metadata = NULL;
}

void lg_key_record_free(lg_key_record_t *k)
{
    if (k == NULL)
        return;
    lg_key_record_clear(k);
    free(k);
}

/* n uniform base62 characters from getrandom(); rejection sampling keeps every character equally likely. */
static int random_base62(char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char buf[64];
    size_t have = 0, used = 0, i = 0;

    while (i < n) {
        if (used == have) {
            ssize_t got = getrandom(buf, sizeof(buf), 0);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            have = (size_t)got;
            used = 0;
            continue;
        }
        unsigned char b = buf[used++];
        if (b < 248) /* 248 = 4 * 62: values above would favour the first characters */
            out[i++] = alphabet[b % 62];
    }
    out[n] = '\0';
    return 0;
}

void lg_key_hash(const char *secret, size_t len, uint8_t out[32])
{
    unsigned int outlen = 32;
    if (EVP_Digest(secret, len, out, &outlen, EVP_sha256(), NULL) != 1 || outlen != 32) {
        /* SHA-256 from the default provider cannot fail short of memory exhaustion; never hand out a zero hash */
        abort();
    }
}

int lg_key_generate(lg_key_record_t *k, char secret_out[LG_KEY_SECRET_LEN + 1])
{
    const size_t plen = sizeof(LG_KEY_SECRET_PREFIX) - 1;
    char id_rand[LG_KEY_ID_LEN - 4 + 1];

    _Static_assert(LG_KEY_ID_LEN == 24, "id is key_ + 20 chars");
    if (random_base62(id_rand, LG_KEY_ID_LEN - 4) != 0)
        return LG_EINTERNAL;
    memcpy(secret_out, LG_KEY_SECRET_PREFIX, plen);
    if (random_base62(secret_out + plen, LG_KEY_SECRET_LEN - plen) != 0) {
        memset(secret_out, 0, LG_KEY_SECRET_LEN + 1);
        return LG_EINTERNAL;
    }
    memcpy(k->id, "key_", 4);
    memcpy(k->id + 4, id_rand, sizeof(id_rand));
    lg_key_hash(secret_out, LG_KEY_SECRET_LEN, k->hash);
    memset(k->hint, 0, sizeof(k->hint));
    memcpy(k->hint, secret_out, 10);
    k->created_at = (int64_t)time(NULL);
    return 0;
}

int lg_key_name_valid(const char *name, const char **why)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0) {
        *why = "name must not be empty";
        return 0;
    }
    if (n > LG_KEY_NAME_MAX) {
        *why = "name longer than 256 bytes";
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; ++p)
        if (*p < 0x20 || *p == 0x7f) {
            *why = "name contains a control character";
            return 0;
        }
    return 1;
}

int lg_key_id_valid(const char *id, size_t len)
{
    if (len != LG_KEY_ID_LEN || memcmp(id, "key_", 4) != 0)
        return 0;
    for (size_t i = 4; i < len; ++i)
        if (!isalnum((unsigned char)id[i]))
            return 0;
    return 1;
}

static int charset_valid(const char *s, size_t max, const char *extra, const char *what, const char **why)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0) {
        *why = strcmp(what, "model") == 0 ? "empty model name" : "empty tool name";
        return 0;
    }
    if (n > max) {
        *why = strcmp(what, "model") == 0 ? "model name longer than 256 bytes" : "tool name longer than 128 bytes";
        return 0;
    }
    for (const char *p = s; *p != '\0'; ++p)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(extra, *p) != NULL)) {
            *why = strcmp(what, "model") == 0 ? "model names may only contain A-Z a-z 0-9 . _ : / @ + * -"
                                              : "tool names may only contain A-Z a-z 0-9 . _ * -";
            return 0;
        }
    return 1;
}

int lg_key_model_valid(const char *model, const char **why)
{
    return charset_valid(model, 256, "._:/@+*-", "model", why);
}

int lg_key_tool_valid(const char *tool, const char **why)
{
    return charset_valid(tool, 128, "._*-", "tool", why);
}

static const char *const period_names[] = {"none", "daily", "weekly", "monthly"};

const char *lg_reset_period_name(lg_reset_period_t p)
{
    return (unsigned)p < 4 ? period_names[p] : "none";
}

int lg_reset_period_parse(const char *s)
{
    for (int i = 0; i < 4; ++i)
        if (s != NULL && strcmp(s, period_names[i]) == 0)
            return i;
    return -1;
}

static json_t *strv_json(char *const *v)
{
    json_t *a;
    if (v == NULL)
        return json_null();
    a = json_array();
    for (; *v != NULL; ++v)
        json_array_append_new(a, json_string(*v));
    return a;
}

json_t *lg_key_record_to_json(const lg_key_record_t *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "name", k->name != NULL ? json_string(k->name) : json_null());
    json_object_set_new(o, "hint", json_string(k->hint));
    json_object_set_new(o, "created_at", json_integer(k->created_at));
    json_object_set_new(o, "expires_at", k->expires_at != 0 ? json_integer(k->expires_at) : json_null());
    json_object_set_new(o, "disabled", json_boolean(k->disabled));
    json_object_set_new(o, "limit",
                        k->credit_limit_pico >= 0 ? json_real((double)k->credit_limit_pico / PICO_PER_USD) : json_null());
    json_object_set_new(o, "limit_pico", json_integer(k->credit_limit_pico));
    json_object_set_new(o, "limit_reset", json_string(lg_reset_period_name(k->reset_period)));
    json_object_set_new(o, "rpm", json_integer(k->rpm));
    json_object_set_new(o, "tpm", json_integer(k->tpm));
    json_object_set_new(o, "allowed_models", strv_json(k->allowed_models));
    json_object_set_new(o, "allowed_tools", strv_json(k->allowed_tools));
    json_object_set_new(o, "metadata", k->metadata != NULL ? json_deep_copy(k->metadata) : json_null());
    return o;
}

/* SPDX-License-Identifier: MIT */
/*
 * Sealed requestState (see mrtr.h).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "core/util.h"
#include "mcp/mrtr.h"

#define MAX_TEXT 65536
#define MAC_LEN 32

static unsigned char secret[32];
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;
static long long fixed_now;

static void make_secret(void)
{
    size_t got = 0;
    while (got < sizeof(secret)) {
        ssize_t n = getrandom(secret + got, sizeof(secret) - got, 0);
        if (n <= 0)
            abort(); /* no randomness: nothing sealed could be trusted */
        got += (size_t)n;
    }
}

void lg__mcp_mrtr_set_clock(long long now_s)
{
    fixed_now = now_s;
}

static long long now_s(void)
{
    return fixed_now != 0 ? fixed_now : (long long)lg_unix_time();
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const unsigned char *s, size_t n, char *out)
{
    char *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        if (i + 1 < n)
            *o++ = b64[(v >> 6) & 63];
    }
    *o = '\0';
    return (size_t)(o - out);
}

static int b64_val(char c)
{
    const char *p = c != '\0' ? memchr(b64, c, 64) : NULL;
    return p != NULL ? (int)(p - b64) : -1;
}

/* -> bytes written to out (room for n/4*3+3), or -1 */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4 == 1)
        return -1;
    unsigned acc = 0;
    int bits = 0;
    long k = 0;
    for (size_t i = 0; i < n; ++i) {
        int v = b64_val(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    return k;
}

static void mac(const char *key_id, const char *payload, size_t len, unsigned char out[MAC_LEN])
{
    pthread_once(&secret_once, make_secret);
    const char *k = key_id != NULL ? key_id : "";
    size_t kl = strlen(k) + 1; /* the NUL separates the key binding from the payload */
    unsigned char *buf = lg_malloc(kl + len);
    memcpy(buf, k, kl);
    memcpy(buf + kl, payload, len);
    unsigned int ol = MAC_LEN;
    if (HMAC(EVP_sha256(), secret, (int)sizeof(secret), buf, kl + len, out, &ol) == NULL || ol != MAC_LEN)
        abort();
    free(buf);
}

char *lg_mcp_mrtr_seal(const json_t *state, const char *key_id)
{
    json_t *copy = json_deep_copy(state);
    if (!json_is_object(copy)) {
        json_decref(copy);
        copy = json_object();
    }
    json_object_set_new(copy, "exp", json_integer(now_s() + LG_MCP_MRTR_TTL_S));
    char *payload = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    size_t pl = strlen(payload);
    unsigned char m[MAC_LEN];
    mac(key_id, payload, pl, m);
    char *out = lg_malloc(pl / 3 * 4 + 4 + 1 + MAC_LEN / 3 * 4 + 4 + 1);
    size_t n = b64_encode((const unsigned char *)payload, pl, out);
    out[n++] = '.';
    b64_encode(m, MAC_LEN, out + n);
    free(payload);
    return out;
}

json_t *lg_mcp_mrtr_open(const char *text, size_t len, const char *key_id)
{
    if (text == NULL || len == 0 || len > MAX_TEXT)
        return NULL;
    const char *dot = memchr(text, '.', len);
    if (dot == NULL)
        return NULL;
    size_t pl = (size_t)(dot - text), ml = len - pl - 1;
    unsigned char *payload = lg_malloc(pl / 4 * 3 + 4), given[MAC_LEN + 4], want[MAC_LEN];
    long n = b64_decode(text, pl, payload);
    long gm = ml <= (MAC_LEN / 3 + 1) * 4 ? b64_decode(dot + 1, ml, given) : -1;
    json_t *state = NULL;
    if (n > 0 && gm == MAC_LEN) {
        mac(key_id, (const char *)payload, (size_t)n, want);
        if (CRYPTO_memcmp(want, given, MAC_LEN) == 0) {
            state = json_loadb((const char *)payload, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
            json_t *exp = json_object_get(state, "exp");
            if (!json_is_object(state) || !json_is_integer(exp) || json_integer_value(exp) < now_s()) {
                json_decref(state);
                state = NULL;
            } else {
                json_object_del(state, "exp");
            }
        }
    }
    free(payload);
    return state;
}

/* SPDX-License-Identifier: MIT */
/*
 * Dashboard sessions and the sign-in throttle (see admin_session.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "auth/admin_session.h"

#define CLIENT_SLOTS 128
#define CLIENT_MAX_LEN 63

struct session {
    unsigned char id_hash[32];  /* SHA-256 of the id; all zero = free slot */
    unsigned char key_hash[32]; /* SHA-256 of the admin key it was opened with */
    int64_t created_ms, expires_ms;
};

struct throttle {
    char client[CLIENT_MAX_LEN + 1];
    int64_t window_start_ms;
    unsigned failures;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct session sessions[LG_ADMIN_SESSION_MAX];
static struct throttle clients[CLIENT_SLOTS];
static struct throttle total;
static unsigned char csrf_secret[32];
static int csrf_secret_set;

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int fill_random(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Under lock. */
static int csrf_of(const char *id, size_t len, char out[LG_ADMIN_SESSION_ID_LEN + 1])
{
    if (!csrf_secret_set) {
        if (fill_random(csrf_secret, sizeof(csrf_secret)) != 0)
            return -1;
        csrf_secret_set = 1;
    }
    unsigned char mac[32];
    unsigned int n = sizeof(mac);
    if (HMAC(EVP_sha256(), csrf_secret, sizeof(csrf_secret), (const unsigned char *)id, len, mac, &n) == NULL)
        return -1;
    hex(mac, sizeof(mac), out);
    return 0;
}

static int is_free(const struct session *s)
{
    static const unsigned char zero[32];
    return memcmp(s->id_hash, zero, sizeof(zero)) == 0;
}

int lg_admin_session_create(const char *admin_key, uint32_t ttl_s, int64_t now_ms, char id[LG_ADMIN_SESSION_ID_LEN + 1],
                            char csrf[LG_ADMIN_SESSION_ID_LEN + 1], int64_t *expires_ms)
{
    unsigned char raw[32];
    if (admin_key == NULL || fill_random(raw, sizeof(raw)) != 0)
        return -1;
    hex(raw, sizeof(raw), id);
    memset(raw, 0, sizeof(raw));
    pthread_mutex_lock(&lock);
    /* a free or expired slot, else the oldest session makes room */
    struct session *slot = &sessions[0];
    for (size_t i = 0; i < LG_ADMIN_SESSION_MAX; ++i) {
        struct session *s = &sessions[i];
        if (is_free(s) || s->expires_ms <= now_ms) {
            slot = s;
            break;
        }
        if (s->created_ms < slot->created_ms)
            slot = s;
    }
    sha256(id, LG_ADMIN_SESSION_ID_LEN, slot->id_hash);
    sha256(admin_key, strlen(admin_key), slot->key_hash);
    slot->created_ms = now_ms;
    slot->expires_ms = now_ms + (int64_t)ttl_s * 1000;
    *expires_ms = slot->expires_ms;
    int rc = csrf_of(id, LG_ADMIN_SESSION_ID_LEN, csrf);
    if (rc != 0)
        memset(slot, 0, sizeof(*slot));
    pthread_mutex_unlock(&lock);
    return rc;
}

static int well_formed(const char *id, size_t len)
{
    if (len != LG_ADMIN_SESSION_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; ++i)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

/* Under lock: the live slot of id, or NULL (expired slots are freed on the way). */
static struct session *find(const unsigned char h[32], int64_t now_ms)
{
    for (size_t i = 0; i < LG_ADMIN_SESSION_MAX; ++i) {
        struct session *s = &sessions[i];
        if (is_free(s) || CRYPTO_memcmp(s->id_hash, h, 32) != 0)
            continue;
        if (s->expires_ms <= now_ms) {
            memset(s, 0, sizeof(*s));
            return NULL;
        }
        return s;
    }
    return NULL;
}

int lg_admin_session_check(const char *id, size_t len, const char *admin_key, int64_t now_ms,
                           char csrf[LG_ADMIN_SESSION_ID_LEN + 1], int64_t *expires_ms)
{
    if (admin_key == NULL || !well_formed(id, len))
        return 0;
    unsigned char h[32], kh[32];
    sha256(id, len, h);
    sha256(admin_key, strlen(admin_key), kh);
    pthread_mutex_lock(&lock);
    struct session *s = find(h, now_ms);
    int ok = s != NULL && CRYPTO_memcmp(s->key_hash, kh, 32) == 0;
    if (s != NULL && !ok)
        memset(s, 0, sizeof(*s)); /* opened with a key that is no longer the admin key */
    if (ok && expires_ms != NULL)
        *expires_ms = s->expires_ms;
    if (ok && csrf != NULL && csrf_of(id, len, csrf) != 0)
        ok = 0;
    pthread_mutex_unlock(&lock);
    return ok;
}

int lg_admin_csrf_ok(const char *id, size_t idlen, const char *token, size_t toklen)
{
    char want[LG_ADMIN_SESSION_ID_LEN + 1];
    if (!well_formed(id, idlen) || toklen != LG_ADMIN_SESSION_ID_LEN)
        return 0;
    pthread_mutex_lock(&lock);
    int rc = csrf_of(id, idlen, want);
    pthread_mutex_unlock(&lock);
    return rc == 0 && CRYPTO_memcmp(want, token, LG_ADMIN_SESSION_ID_LEN) == 0;
}

void lg_admin_session_destroy(const char *id, size_t len)
{
    if (!well_formed(id, len))
        return;
    unsigned char h[32];
    sha256(id, len, h);
    pthread_mutex_lock(&lock);
    struct session *s = find(h, INT64_MIN);
    if (s != NULL)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&lock);
}

size_t lg_admin_session_count(int64_t now_ms)
{
    size_t n = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < LG_ADMIN_SESSION_MAX; ++i)
        n += !is_free(&sessions[i]) && sessions[i].expires_ms > now_ms;
    pthread_mutex_unlock(&lock);
    return n;
}

/* ---- sign-in throttle ---- */

static void roll(struct throttle *t, int64_t now_ms)
{
    if (now_ms - t->window_start_ms >= LG_ADMIN_SIGNIN_WINDOW_MS || now_ms < t->window_start_ms) {
        t->window_start_ms = now_ms;
        t->failures = 0;
    }
}

static int64_t wait_of(const struct throttle *t, unsigned max, int64_t now_ms)
{
    if (t->failures < max)
        return 0;
    int64_t w = t->window_start_ms + LG_ADMIN_SIGNIN_WINDOW_MS - now_ms;
    return w > 0 ? w : 1;
}

/* Under lock: the slot of client (claimed if absent: a free or the stalest one). */
static struct throttle *client_slot(const char *client, int64_t now_ms)
{
    char name[CLIENT_MAX_LEN + 1];
    snprintf(name, sizeof(name), "%s", client != NULL ? client : "");
    struct throttle *victim = &clients[0];
    for (size_t i = 0; i < CLIENT_SLOTS; ++i) {
        struct throttle *t = &clients[i];
        if (strcmp(t->client, name) == 0 && (t->client[0] != '\0' || t->window_start_ms != 0))
            return t;
        if (t->window_start_ms < victim->window_start_ms)
            victim = t;
    }
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->client, name, sizeof(name));
    victim->window_start_ms = now_ms;
    return victim;
}

int64_t lg_admin_signin_wait_ms(const char *client, int64_t now_ms)
{
    pthread_mutex_lock(&lock);
    struct throttle *t = client_slot(client, now_ms);
    roll(t, now_ms);
    roll(&total, now_ms);
    int64_t a = wait_of(t, LG_ADMIN_SIGNIN_MAX_PER_CLIENT, now_ms), b = wait_of(&total, LG_ADMIN_SIGNIN_MAX_TOTAL, now_ms);
    pthread_mutex_unlock(&lock);
    return a > b ? a : b;
}

void lg_admin_signin_failed(const char *client, int64_t now_ms)
{
    pthread_mutex_lock(&lock);
    struct throttle *t = client_slot(client, now_ms);
    roll(t, now_ms);
    roll(&total, now_ms);
    ++t->failures;
    ++total.failures;
    pthread_mutex_unlock(&lock);
}

void lg_admin_session_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(sessions, 0, sizeof(sessions));
    memset(clients, 0, sizeof(clients));
    memset(&total, 0, sizeof(total));
    pthread_mutex_unlock(&lock);
}

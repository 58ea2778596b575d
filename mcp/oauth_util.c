/* SPDX-License-Identifier: MIT */
/*
 * Pure OAuth helpers for the MCP authorization server (see oauth_util.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "core/util.h"
#include "mcp/oauth_util.h"

/* ---- tokens ---- */

size_t lg_oauth_b64url(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

int lg_oauth_token_mint(const char *prefix, char *out, size_t outsz)
{
    uint8_t raw[LG_OAUTH_TOKEN_RANDOM_BYTES];
    size_t pl = strlen(prefix);
    if (outsz < LG_OAUTH_TOKEN_LEN(pl) + 1)
        return -1;
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    memcpy(out, prefix, pl);
    lg_oauth_b64url(raw, sizeof(raw), out + pl);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

void lg_oauth_hash(const char *s, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1)
        abort(); /* only fails without memory */
}

/* ---- PKCE ---- */

static int is_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_b64url(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_';
}

int lg_oauth_pkce_verifier_valid(const char *v, size_t n)
{
    if (v == NULL || n < 43 || n > 128)
        return 0;
    for (size_t i = 0; i < n; ++i)
        if (!is_unreserved((unsigned char)v[i]))
            return 0;
    return 1;
}

int lg_oauth_pkce_challenge_valid(const char *c)
{
    if (c == NULL || strlen(c) != 43)
        return 0;
    for (size_t i = 0; i < 43; ++i)
        if (!is_b64url((unsigned char)c[i]))
            return 0;
    return 1;
}

int lg_oauth_pkce_verify(const char *verifier, size_t n, const char *challenge)
{
    if (!lg_oauth_pkce_verifier_valid(verifier, n) || !lg_oauth_pkce_challenge_valid(challenge))
        return 0;
    uint8_t h[32];
    char enc[48];
    lg_oauth_hash(verifier, n, h);
    lg_oauth_b64url(h, sizeof(h), enc);
    return CRYPTO_memcmp(enc, challenge, 43) == 0;
}

/* ---- forms ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) into a new string; NULL on a bad escape, a NUL byte or over the cap. */
static char *form_decode(const char *s, size_t n)
{
    if (n > LG_OAUTH_PARAM_MAX_BYTES * 3)
        return NULL;
    char *out = lg_malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; ++i) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
            if (a < 0 || b < 0) {
                free(out);
                return NULL;
            }
            c = a << 4 | b;
            i += 2;
        }
        if (c == 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (o > LG_OAUTH_PARAM_MAX_BYTES) {
        free(out);
        return NULL;
    }
    return out;
}

void lg_oauth_form_dispose(lg_oauth_form_t *f)
{
    for (size_t i = 0; i < f->n; ++i) {
        free(f->names[i]);
        free(f->values[i]);
    }
    f->n = 0;
}

const char *lg_oauth_form_get(const lg_oauth_form_t *f, const char *name)
{
    for (size_t i = 0; i < f->n; ++i)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

int lg_oauth_form_parse(const char *s, size_t n, lg_oauth_form_t *out)
{
    memset(out, 0, sizeof(*out));
    if (n > LG_OAUTH_FORM_MAX_BYTES)
        return -1;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && s[i] != '&')
            ++i;
        size_t end = i++;
        if (end == start)
            continue;
        const char *eq = memchr(s + start, '=', end - start);
        size_t nl = eq != NULL ? (size_t)(eq - (s + start)) : end - start;
        char *name = form_decode(s + start, nl);
        char *value = eq != NULL ? form_decode(eq + 1, (size_t)(s + end - eq - 1)) : lg_strdup("");
        if (name == NULL || value == NULL || out->n == LG_OAUTH_FORM_MAX_PARAMS) {
            free(name);
            free(value);
            lg_oauth_form_dispose(out);
            return -1;
        }
        if (lg_oauth_form_get(out, name) != NULL) {
            out->duplicate = 1;
            free(name);
            free(value);
            continue;
        }
        out->names[out->n] = name;
        out->values[out->n++] = value;
    }
    return 0;
}

int lg_oauth_urlencode_append(lg_buf_t *b, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *v != '\0'; ++v) {
        unsigned char c = (unsigned char)*v;
        if (is_unreserved(c)) {
            if (lg_buf_append(b, v, 1) != 0)
                return -1;
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (lg_buf_append(b, e, 3) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- URIs ---- */

int lg_oauth_uri_parse(const char *s, lg_oauth_uri_t *u)
{
    memset(u, 0, sizeof(*u));
    size_t n = strlen(s);
    if (n == 0 || n > LG_OAUTH_URI_MAX_BYTES)
        return -1;
    for (size_t i = 0; i < n; ++i)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '#' || s[i] == '\\')
            return -1;
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    size_t i = 0;
    if (!isalpha((unsigned char)s[0]))
        return -1;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        ++i;
    if (i >= n || s[i] != ':')
        return -1;
    u->scheme = s;
    u->scheme_len = i;
    const char *p = s + i + 1, *e = s + n;
    if (e - p >= 2 && p[0] == '/' && p[1] == '/') {
        u->has_authority = 1;
        p += 2;
        const char *a = p;
        while (p < e && *p != '/' && *p != '?')
            ++p;
        /* authority a..p: no userinfo accepted (it only serves to confuse people reading the URL) */
        if (memchr(a, '@', (size_t)(p - a)) != NULL)
            return -1;
        const char *hend;
        if (a < p && *a == '[') {
            const char *rb = memchr(a, ']', (size_t)(p - a));
            if (rb == NULL)
                return -1;
            hend = rb + 1;
        } else {
            hend = memchr(a, ':', (size_t)(p - a));
            if (hend == NULL)
                hend = p;
        }
        u->host = a;
        u->host_len = (size_t)(hend - a);
        if (hend < p) {
            if (*hend != ':')
                return -1;
            u->port = hend + 1;
            u->port_len = (size_t)(p - hend - 1);
            if (u->port_len > 5)
                return -1;
            for (size_t k = 0; k < u->port_len; ++k)
                if (!isdigit((unsigned char)u->port[k]))
                    return -1;
        }
    }
    u->path = p;
    while (p < e && *p != '?')
        ++p;
    u->path_len = (size_t)(p - u->path);
    if (p < e) {
        u->has_query = 1;
        u->query = p + 1;
        u->query_len = (size_t)(e - p - 1);
    }
    return 0;
}

static int eq_ci(const char *a, size_t an, const char *b)
{
    return an == strlen(b) && strncasecmp(a, b, an) == 0;
}

int lg_oauth_host_is_loopback(const char *h, size_t n)
{
    if (eq_ci(h, n, "localhost") || eq_ci(h, n, "[::1]"))
        return 1;
    /* 127.d.d.d */
    if (n < 9 || n > 15 || strncmp(h, "127.", 4) != 0)
        return 0;
    int dots = 0;
    for (size_t i = 4; i < n; ++i) {
        if (h[i] == '.')
            ++dots;
        else if (!isdigit((unsigned char)h[i]))
            return 0;
    }
    return dots == 2;
}

int lg_oauth_redirect_uri_valid(const char *uri, const char **why)
{
    lg_oauth_uri_t u;
    if (uri == NULL || lg_oauth_uri_parse(uri, &u) != 0) {
        *why = "redirect_uris: each must be an absolute URI without fragment, userinfo or spaces";
        return 0;
    }
    static const char *const banned[] = {"javascript", "data", "file", "vbscript", "blob", "about", "ws", "wss", NULL};
    for (const char *const *b = banned; *b != NULL; ++b)
        if (eq_ci(u.scheme, u.scheme_len, *b)) {
            *why = "redirect_uris: this scheme is not allowed";
            return 0;
        }
    if (eq_ci(u.scheme, u.scheme_len, "https")) {
        if (!u.has_authority || u.host_len == 0) {
            *why = "redirect_uris: https URIs need a host";
            return 0;
        }
        return 1;
    }
    if (eq_ci(u.scheme, u.scheme_len, "http")) {
        if (!u.has_authority || !lg_oauth_host_is_loopback(u.host, u.host_len)) {
            *why = "redirect_uris: http is only allowed for loopback hosts (127.0.0.1, [::1], localhost); use https";
            return 0;
        }
        return 1;
    }
    /* private-use scheme of a native app (RFC 8252 §7.1), e.g. cursor://..., com.example.app:/cb */
    return 1;
}

int lg_oauth_redirect_uri_matches(const char *registered, const char *presented)
{
    if (registered == NULL || presented == NULL)
        return 0;
    if (strcmp(registered, presented) == 0)
        return 1;
    lg_oauth_uri_t r, p;
    if (lg_oauth_uri_parse(registered, &r) != 0 || lg_oauth_uri_parse(presented, &p) != 0)
        return 0;
    if (!eq_ci(r.scheme, r.scheme_len, "http") || !r.has_authority || !lg_oauth_host_is_loopback(r.host, r.host_len))
        return 0;
    /* loopback: everything but the port must be identical (RFC 8252 §7.3) */
    return p.has_authority && p.scheme_len == r.scheme_len && memcmp(p.scheme, r.scheme, r.scheme_len) == 0 &&
           p.host_len == r.host_len && memcmp(p.host, r.host, r.host_len) == 0 && p.path_len == r.path_len &&
           memcmp(p.path, r.path, r.path_len) == 0 && p.has_query == r.has_query && p.query_len == r.query_len &&
           (r.query_len == 0 || memcmp(p.query, r.query, r.query_len) == 0);
}

int lg_oauth_resource_canonical(const char *in, char *out, size_t outsz)
{
    lg_oauth_uri_t u;
    if (in == NULL || lg_oauth_uri_parse(in, &u) != 0 || !u.has_authority || u.host_len == 0 || u.has_query)
        return -1;
    int https = eq_ci(u.scheme, u.scheme_len, "https");
    if (!https && !eq_ci(u.scheme, u.scheme_len, "http"))
        return -1;
    size_t path_len = u.path_len;
    while (path_len > 0 && u.path[path_len - 1] == '/')
        --path_len;
    int drop_port = u.port_len == 0 || (https && u.port_len == 3 && memcmp(u.port, "443", 3) == 0) ||
                    (!https && u.port_len == 2 && memcmp(u.port, "80", 2) == 0);
    size_t need = u.scheme_len + 3 + u.host_len + (drop_port ? 0 : 1 + u.port_len) + path_len + 1;
    if (need > outsz)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < u.scheme_len; ++i)
        out[o++] = (char)tolower((unsigned char)u.scheme[i]);
    memcpy(out + o, "://", 3);
    o += 3;
    for (size_t i = 0; i < u.host_len; ++i)
        out[o++] = (char)tolower((unsigned char)u.host[i]);
    if (!drop_port) {
        out[o++] = ':';
        memcpy(out + o, u.port, u.port_len);
        o += u.port_len;
    }
    memcpy(out + o, u.path, path_len);
    o += path_len;
    out[o] = '\0';
    return 0;
}

/* ---- client metadata ---- */

void lg_oauth_client_dispose(lg_oauth_client_t *c)
{
    free(c->client_id);
    free(c->client_name);
    free(c->client_uri);
    lg_strv_free(c->redirect_uris);
    memset(c, 0, sizeof(*c));
}

void lg_oauth_client_copy(lg_oauth_client_t *dst, const lg_oauth_client_t *src)
{
    *dst = *src;
    dst->client_id = src->client_id != NULL ? lg_strdup(src->client_id) : NULL;
    dst->client_name = src->client_name != NULL ? lg_strdup(src->client_name) : NULL;
    dst->client_uri = src->client_uri != NULL ? lg_strdup(src->client_uri) : NULL;
    dst->redirect_uris = lg_strv_dup(src->redirect_uris);
}

int lg_oauth_client_redirect_ok(const lg_oauth_client_t *c, const char *uri)
{
    for (char **r = c->redirect_uris; r != NULL && *r != NULL; ++r)
        if (lg_oauth_redirect_uri_matches(*r, uri))
            return 1;
    return 0;
}

int lg_oauth_client_id_is_url(const char *id, int allow_http_loopback)
{
    lg_oauth_uri_t u;
    if (id == NULL || lg_oauth_uri_parse(id, &u) != 0 || !u.has_authority || u.host_len == 0)
        return 0;
    int https = eq_ci(u.scheme, u.scheme_len, "https");
    int http_ok = allow_http_loopback && eq_ci(u.scheme, u.scheme_len, "http") && lg_oauth_host_is_loopback(u.host, u.host_len);
    if (!https && !http_ok)
        return 0;
    return u.path_len > 1; /* the spec requires a path component */
}

static int printable_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; ++p)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int lg_oauth_client_parse(const char *json, size_t len, const char *document_url, lg_oauth_client_t *out, const char **error,
                          char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    *error = "invalid_client_metadata";
    size_t cap = document_url != NULL ? LG_OAUTH_CIMD_MAX_BYTES : LG_OAUTH_DCR_MAX_BYTES;
    if (len > cap) {
        snprintf(why, whylen, "client metadata over %zu bytes", cap);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        snprintf(why, whylen, "client metadata must be a JSON object");
        json_decref(root);
        return -1;
    }
    json_t *v;
    const char *msg = NULL;
    if (document_url != NULL) {
        v = json_object_get(root, "client_id");
        if (!json_is_string(v) || strcmp(json_string_value(v), document_url) != 0) {
            msg = "client_id in the metadata document must equal the document's URL";
            goto fail;
        }
        out->client_id = lg_strdup(document_url);
        out->is_metadata_document = 1;
    }
    v = json_object_get(root, "redirect_uris");
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > LG_OAUTH_MAX_REDIRECT_URIS) {
        *error = "invalid_redirect_uri";
        msg = "redirect_uris must be an array of 1 to 16 URIs";
        goto fail;
    }
    out->redirect_uris = calloc(json_array_size(v) + 1, sizeof(char *));
    if (out->redirect_uris == NULL)
        abort();
    for (size_t i = 0; i < json_array_size(v); ++i) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || !lg_oauth_redirect_uri_valid(json_string_value(e), &msg)) {
            if (msg == NULL)
                msg = "redirect_uris: each must be a string";
            *error = "invalid_redirect_uri";
            goto fail;
        }
        out->redirect_uris[i] = lg_strdup(json_string_value(e));
    }
    if ((v = json_object_get(root, "client_name")) != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || strlen(json_string_value(v)) > LG_OAUTH_CLIENT_NAME_MAX ||
            !printable_text(json_string_value(v))) {
            msg = "client_name must be a string of at most 200 printable bytes";
            goto fail;
        }
        out->client_name = lg_strdup(json_string_value(v));
    }
    if ((v = json_object_get(root, "client_uri")) != NULL && !json_is_null(v)) {
        lg_oauth_uri_t u;
        if (!json_is_string(v) || lg_oauth_uri_parse(json_string_value(v), &u) != 0 || !eq_ci(u.scheme, u.scheme_len, "https")) {
            msg = "client_uri must be an https URL";
            goto fail;
        }
        out->client_uri = lg_strdup(json_string_value(v));
    }
    out->auth_method = LG_OAUTH_AUTH_NONE;
    if ((v = json_object_get(root, "token_endpoint_auth_method")) != NULL) {
        const char *m = json_string_value(v);
        if (m != NULL && strcmp(m, "none") == 0)
            out->auth_method = LG_OAUTH_AUTH_NONE;
        else if (m != NULL && strcmp(m, "client_secret_post") == 0 && document_url == NULL)
            out->auth_method = LG_OAUTH_AUTH_SECRET_POST;
        else if (m != NULL && strcmp(m, "client_secret_basic") == 0 && document_url == NULL)
            out->auth_method = LG_OAUTH_AUTH_SECRET_BASIC;
        else {
            msg = document_url != NULL ? "token_endpoint_auth_method must be \"none\" for a client ID metadata document"
                                       : "token_endpoint_auth_method must be none, client_secret_post or client_secret_basic";
            goto fail;
        }
    }
    int has_code = 1;
    if ((v = json_object_get(root, "grant_types")) != NULL) {
        if (!json_is_array(v)) {
            msg = "grant_types must be an array";
            goto fail;
        }
        has_code = 0;
        size_t i;
        json_t *g;
        json_array_foreach(v, i, g)
        {
            const char *s = json_string_value(g);
            if (s != NULL && strcmp(s, "authorization_code") == 0)
                has_code = 1;
            else if (s != NULL && strcmp(s, "refresh_token") == 0)
                out->refresh_allowed = 1;
            else {
                msg = "grant_types: only authorization_code and refresh_token are supported";
                goto fail;
            }
        }
    } else {
        out->refresh_allowed = 1; /* RFC 7591 default is authorization_code only; MCP clients omitting it still refresh */
    }
    if (!has_code) {
        msg = "grant_types must include authorization_code";
        goto fail;
    }
    if ((v = json_object_get(root, "response_types")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) != 1 || !json_is_string(json_array_get(v, 0)) ||
            strcmp(json_string_value(json_array_get(v, 0)), "code") != 0) {
            msg = "response_types must be [\"code\"]";
            goto fail;
        }
    }
    json_decref(root);
    return 0;
fail:
    snprintf(why, whylen, "%s", msg);
    json_decref(root);
    lg_oauth_client_dispose(out);
    return -1;
}

/* ---- HTML ---- */

int lg_oauth_html_escape_append(lg_buf_t *b, const char *s)
{
    for (; *s != '\0'; ++s) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            break;
        }
        if (lg_buf_append(b, rep != NULL ? rep : s, rep != NULL ? strlen(rep) : 1) != 0)
            return -1;
    }
    return 0;
}

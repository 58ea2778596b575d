/* SPDX-License-Identifier: MIT */
/*
 * The dashboard's static files and browser session. Files are read once at
 * start-up into memory (no disk I/O on the event loop) and served with a
 * strict Content-Security-Policy (scripts and styles from our own origin
 * only, no inline code), an ETag, and no-cache so a new build is picked up.
 * The session cookie is HttpOnly, SameSite=Strict, Path=/, with a Max-Age
 * equal to the session's lifetime, and Secure on TLS listeners.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "auth/admin_session.h"
#include "auth/gate.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "http/cookie.h"
#include "http/dashboard.h"
#include "http/handlers.h"
#include "http/respond.h"

#define MAX_ASSETS 32
#define MAX_ASSET_BYTES (1024 * 1024)
#define MAX_SIGNIN_BODY 4096

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                          "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct asset {
    char name[64];
    const char *type;
    char *body;
    size_t len;
    char etag[24];
};

static struct asset assets[MAX_ASSETS];
static size_t num_assets;
static char searched[2048]; /* where we looked, for the 503 */

/* ---- assets ---- */

static const char *type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".svg", "image/svg+xml"}};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); ++i) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

static int plain_name(const char *name)
{
    if (name[0] == '\0' || name[0] == '.' || strlen(name) >= sizeof(assets[0].name))
        return 0;
    for (const char *p = name; *p != '\0'; ++p)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static int load_dir(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/index.html", dir);
    if (access(path, R_OK) != 0)
        return 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && num_assets < MAX_ASSETS) {
        const char *type = type_of(de->d_name);
        if (type == NULL || !plain_name(de->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        struct asset *a = &assets[num_assets];
        a->body = lg_malloc(MAX_ASSET_BYTES + 1);
        a->len = fread(a->body, 1, MAX_ASSET_BYTES + 1, f);
        fclose(f);
        if (a->len > MAX_ASSET_BYTES) {
            LG_LOG(LG_LOG_WARN, "dashboard", "%s: larger than 1 MiB, not served", path);
            free(a->body);
            a->body = NULL;
            continue;
        }
        memcpy(a->name, de->d_name, strlen(de->d_name) + 1); /* plain_name() checked it fits */
        a->type = type;
        unsigned char h[32];
        unsigned int hl = sizeof(h);
        EVP_Digest(a->body, a->len, h, &hl, EVP_sha256(), NULL);
        snprintf(a->etag, sizeof(a->etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
        ++num_assets;
    }
    closedir(d);
    LG_LOG(LG_LOG_INFO, "dashboard", "serving %zu files from %s at /dashboard", num_assets, dir);
    return num_assets > 0;
}

static int try_dir(const char *dir)
{
    if (dir == NULL || *dir == '\0')
        return 0;
    size_t used = strlen(searched), n = strlen(dir);
    if (used + n + 3 < sizeof(searched)) { /* the list in the 503 message; very long paths are left out */
        if (used != 0)
            memcpy(searched + used, ", ", 2), used += 2;
        memcpy(searched + used, dir, n + 1);
    }
    return load_dir(dir);
}

void lg_dashboard_load_assets(void)
{
    if (num_assets != 0)
        return;
    searched[0] = '\0';
    if (try_dir(getenv("LLMGATE_UI_DIR")))
        return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            char dir[PATH_MAX + 16];
            snprintf(dir, sizeof(dir), "%s/ui", exe);
            if (try_dir(dir))
                return;
            snprintf(dir, sizeof(dir), "%s/../ui", exe); /* build tree: tests/ next to ui/ */
            if (try_dir(dir))
                return;
        }
    }
    const char *src = getenv("LLMGATE_SOURCE_DIR");
    if (src != NULL && *src != '\0') {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/src/ui", src);
        if (try_dir(dir))
            return;
    }
#ifdef LG_INSTALL_UI_DIR
    if (try_dir(LG_INSTALL_UI_DIR))
        return;
#endif
    LG_LOG(LG_LOG_WARN, "dashboard", "dashboard files not found (searched %s); /dashboard answers 503", searched);
}

static void security_headers(h2o_req_t *req)
{
    lg_add_header(req, "content-security-policy", csp);
    lg_add_header(req, "x-content-type-options", "nosniff");
    lg_add_header(req, "x-frame-options", "DENY");
    lg_add_header(req, "referrer-policy", "no-referrer");
    lg_add_header(req, "cross-origin-opener-policy", "same-origin");
    lg_add_header(req, "cross-origin-resource-policy", "same-origin");
}

static int method_is(h2o_req_t *req, const char *m)
{
    size_t n = strlen(m);
    return req->method.len == n && memcmp(req->method.base, m, n) == 0;
}

void lg_handle_dashboard(lg_worker_t *w, h2o_req_t *req, const char *rest, size_t len)
{
    (void)w;
    if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
        lg_add_header(req, "allow", "GET, HEAD");
        lg_respond_error(req, LG_EMETHOD, 405, NULL, json_pack("{s:s}", "allow", "GET, HEAD"));
        return;
    }
    const char *name = "index.html";
    size_t nlen = strlen(name);
    if (len > 1) { /* "/app.js" */
        name = rest + 1;
        nlen = len - 1;
    }
    if (num_assets == 0) {
        char msg[2300];
        snprintf(msg, sizeof(msg), "dashboard files not installed (searched %s)", searched[0] != '\0' ? searched : "nowhere");
        lg_respond_error(req, LG_EINTERNAL, 503, msg, NULL);
        return;
    }
    for (size_t i = 0; i < num_assets; ++i) {
        struct asset *a = &assets[i];
        if (strlen(a->name) != nlen || memcmp(a->name, name, nlen) != 0)
            continue;
        security_headers(req);
        lg_add_header(req, "cache-control", "no-cache");
        lg_add_header(req, "etag", a->etag);
        size_t inm_len;
        const char *inm = lg_req_header(req, "if-none-match", &inm_len);
        if (inm != NULL && inm_len == strlen(a->etag) && memcmp(inm, a->etag, inm_len) == 0) {
            req->res.status = 304;
            req->res.reason = "Not Modified";
            h2o_send_inline(req, "", 0);
            return;
        }
        lg_respond_raw(req, 200, a->type, a->body, a->len);
        return;
    }
    lg_respond_error(req, LG_ENOTFOUND, 404, "no such dashboard file", NULL);
}

void lg_handle_dashboard_redirect(h2o_req_t *req)
{
    if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
        lg_add_header(req, "allow", "GET, HEAD");
        lg_respond_error(req, LG_EMETHOD, 405, NULL, json_pack("{s:s}", "allow", "GET, HEAD"));
        return;
    }
    h2o_send_redirect(req, 302, "Found", H2O_STRLIT("/dashboard"));
}

/* ---- session ---- */

/** The session cookie's value in any Cookie header (HTTP/2 may send several), or NULL. */
static const char *session_cookie(h2o_req_t *req, size_t *len)
{
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        const char *found = lg_cookie_find(v->base, v->len, LG_ADMIN_SESSION_COOKIE, len);
        if (found != NULL)
            return found;
    }
    return NULL;
}

static int is_tls(h2o_req_t *req)
{
    return req->scheme == &H2O_URL_SCHEME_HTTPS;
}

static void set_cookie(h2o_req_t *req, const char *value, long max_age)
{
    char c[256];
    snprintf(c, sizeof(c), "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%ld%s", LG_ADMIN_SESSION_COOKIE, value, max_age,
             is_tls(req) ? "; Secure" : "");
    lg_add_header(req, "set-cookie", c);
}

static void client_address(h2o_req_t *req, char *out, size_t size)
{
    struct sockaddr_storage ss;
    snprintf(out, size, "unknown");
    if (req->conn->callbacks->get_peername == NULL || req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)size);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)size);
}

/* Constant-time equality of two secrets of any length (compares their SHA-256). */
static int secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char ha[32], hb[32];
    unsigned int n = 32;
    EVP_Digest(a, alen, ha, &n, EVP_sha256(), NULL);
    n = 32;
    EVP_Digest(b, blen, hb, &n, EVP_sha256(), NULL);
    return CRYPTO_memcmp(ha, hb, 32) == 0;
}

/* A browser's Origin, when present, must be this host (the sign-in is not a cross-site action). */
static int same_origin(h2o_req_t *req)
{
    size_t olen;
    const char *origin = lg_req_header(req, "origin", &olen);
    if (origin == NULL)
        return 1;
    const char *scheme = is_tls(req) ? "https://" : "http://";
    size_t sl = strlen(scheme);
    return olen == sl + req->authority.len && memcmp(origin, scheme, sl) == 0 &&
           memcmp(origin + sl, req->authority.base, req->authority.len) == 0;
}

static void session_state(lg_worker_t *w, h2o_req_t *req)
{
    const lg_config_t *conf = w->rt->snap->conf;
    int loopback = lg_config_listeners_loopback(conf);
    json_t *d = json_pack("{s:b,s:b}", "admin_enabled", conf->admin_key != NULL, "loopback_only", loopback);
    if (conf->admin_key == NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "No admin key is configured, so the dashboard and the admin API are off%s. Set auth.admin_key in the config "
                 "and reload, or restart the gateway with the %s environment variable set.",
                 loopback ? " (this gateway only listens on loopback)" : "",
                 conf->admin_key_env != NULL ? conf->admin_key_env : "LLMGATE_ADMIN_KEY");
        json_object_set_new(d, "signed_in", json_false());
        json_object_set_new(d, "message", json_string(msg));
        lg_respond_json(req, 200, json_pack("{s:o}", "data", d));
        return;
    }
    size_t clen = 0;
    const char *cookie = session_cookie(req, &clen);
    char csrf[LG_ADMIN_SESSION_ID_LEN + 1];
    int64_t expires = 0;
    int ok = cookie != NULL && lg_admin_session_check(cookie, clen, conf->admin_key, lg_gate_now_ms(), csrf, &expires);
    json_object_set_new(d, "signed_in", json_boolean(ok));
    if (ok) {
        json_object_set_new(d, "csrf_token", json_string(csrf));
        json_object_set_new(d, "expires_at_ms", json_integer(expires));
    }
    lg_add_header(req, "cache-control", "no-store");
    lg_respond_json(req, 200, json_pack("{s:o}", "data", d));
}

static void sign_in(lg_worker_t *w, h2o_req_t *req)
{
    const lg_config_t *conf = w->rt->snap->conf;
    char client[64];
    int64_t now = lg_gate_now_ms();
    if (conf->admin_key == NULL) {
        lg_respond_error(req, LG_ENOTFOUND, 404,
                         "admin API disabled: set auth.admin_key or the LLMGATE_ADMIN_KEY environment variable", NULL);
        return;
    }
    size_t ctl;
    const char *ct = lg_req_header(req, "content-type", &ctl);
    if (ct == NULL || ctl < 16 || strncasecmp(ct, "application/json", 16) != 0) {
        lg_respond_error(req, LG_EINVAL, 400, "sign-in expects Content-Type: application/json", NULL);
        return;
    }
    if (!same_origin(req)) {
        lg_respond_error(req, LG_EFORBIDDEN, 403, "sign-in from another origin refused", NULL);
        return;
    }
    client_address(req, client, sizeof(client));
    int64_t wait = lg_admin_signin_wait_ms(client, now);
    if (wait > 0) {
        char msg[160], ra[24];
        long s = (long)((wait + 999) / 1000);
        snprintf(ra, sizeof(ra), "%ld", s);
        snprintf(msg, sizeof(msg), "too many failed sign-ins: try again in %ld s", s);
        lg_add_header(req, "retry-after", ra);
        lg_respond_error(req, LG_ERATELIMIT, 429, msg, json_pack("{s:I}", "retry_after_s", (json_int_t)s));
        return;
    }
    if (req->entity.base == NULL || req->entity.len == 0 || req->entity.len > MAX_SIGNIN_BODY) {
        lg_respond_error(req, LG_EINVAL, 400, "expected a JSON body {\"key\": \"<admin key>\"} of at most 4 KiB", NULL);
        return;
    }
    json_t *body = json_loadb(req->entity.base, req->entity.len, 0, NULL);
    json_t *key = json_is_object(body) ? json_object_get(body, "key") : NULL;
    if (!json_is_string(key)) {
        json_decref(body);
        lg_respond_error(req, LG_EINVAL, 400, "expected a JSON body {\"key\": \"<admin key>\"}",
                         json_pack("{s:s}", "field", "key"));
        return;
    }
    int ok = secret_equal(json_string_value(key), json_string_length(key), conf->admin_key, strlen(conf->admin_key));
    json_decref(body);
    if (!ok) {
        lg_admin_signin_failed(client, now);
        LG_LOG(LG_LOG_WARN, "dashboard", "failed sign-in from %s", client);
        lg_respond_error(req, LG_EAUTH, 401, "wrong admin key", NULL);
        return;
    }
    char id[LG_ADMIN_SESSION_ID_LEN + 1], csrf[LG_ADMIN_SESSION_ID_LEN + 1];
    int64_t expires;
    if (lg_admin_session_create(conf->admin_key, conf->dashboard_session_ttl_s, now, id, csrf, &expires) != 0) {
        lg_respond_error(req, LG_EINTERNAL, 500, "cannot open a session (random source failed)", NULL);
        return;
    }
    set_cookie(req, id, (long)conf->dashboard_session_ttl_s);
    memset(id, 0, sizeof(id));
    lg_add_header(req, "cache-control", "no-store");
    LG_LOG(LG_LOG_INFO, "dashboard", "sign-in from %s", client);
    lg_respond_json(
        req, 200, json_pack("{s:{s:b,s:s,s:I}}", "data", "signed_in", 1, "csrf_token", csrf, "expires_at_ms", (json_int_t)expires));
}

static int csrf_valid(h2o_req_t *req, const char *cookie, size_t clen)
{
    size_t tl;
    const char *tok = lg_req_header(req, LG_DASHBOARD_CSRF_HEADER, &tl);
    return tok != NULL && lg_admin_csrf_ok(cookie, clen, tok, tl);
}

static void sign_out(lg_worker_t *w, h2o_req_t *req)
{
    const lg_config_t *conf = w->rt->snap->conf;
    size_t clen = 0;
    const char *cookie = session_cookie(req, &clen);
    if (cookie != NULL && lg_admin_session_check(cookie, clen, conf->admin_key, lg_gate_now_ms(), NULL, NULL)) {
        if (!csrf_valid(req, cookie, clen)) {
            lg_respond_error(req, LG_EFORBIDDEN, 403, "missing or wrong CSRF token (" LG_DASHBOARD_CSRF_HEADER " header)", NULL);
            return;
        }
        lg_admin_session_destroy(cookie, clen);
    }
    set_cookie(req, "", 0);
    lg_respond_json(req, 200, json_pack("{s:{s:b}}", "data", "signed_in", 0));
}

void lg__dashboard_session(lg_worker_t *w, h2o_req_t *req)
{
    if (method_is(req, "GET"))
        session_state(w, req);
    else if (method_is(req, "POST"))
        sign_in(w, req);
    else if (method_is(req, "DELETE"))
        sign_out(w, req);
    else {
        lg_add_header(req, "allow", "GET, POST, DELETE");
        lg_respond_error(req, LG_EMETHOD, 405, NULL, json_pack("{s:s}", "allow", "GET, POST, DELETE"));
    }
}

int lg__admin_authorized(lg_worker_t *w, h2o_req_t *req)
{
    if (lg_gate_is_admin(req))
        return 1; /* a Bearer token is not ambient: no CSRF exposure */
    const lg_config_t *conf = w->rt->snap->conf;
    size_t clen = 0;
    const char *cookie = session_cookie(req, &clen);
    if (cookie == NULL || !lg_admin_session_check(cookie, clen, conf->admin_key, lg_gate_now_ms(), NULL, NULL)) {
        lg_respond_error(req, LG_EAUTH, 401,
                         cookie != NULL ? "admin API: dashboard session missing, expired or ended; sign in again"
                                        : "admin API: missing or wrong admin key (Authorization: Bearer <admin key>)",
                         NULL);
        return 0;
    }
    if (!method_is(req, "GET") && !method_is(req, "HEAD") && !csrf_valid(req, cookie, clen)) {
        lg_respond_error(req, LG_EFORBIDDEN, 403, "missing or wrong CSRF token (" LG_DASHBOARD_CSRF_HEADER " header)", NULL);
        return 0;
    }
    lg_add_header(req, "cache-control", "no-store");
    return 1;
}

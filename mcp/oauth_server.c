/* SPDX-License-Identifier: MIT */
/*
 * HTTP side of the MCP OAuth server (see oauth_server.h): which listener
 * serves OAuth, the metadata documents, the authorization / consent / token /
 * registration / revocation endpoints, the asynchronous Client ID Metadata
 * Document fetch, and the /mcp bearer check. State lives in oauth_store.c;
 * parsing and validation in oauth_util.c; the page text in oauth_page.c.
 *
 * Errors follow RFC 6749 §5.2 ({"error","error_description"}, 400, 401 for
 * invalid_client); authorization errors go back to the client's redirect URI
 * only after client and redirect URI were verified (§4.1.2.1), else a page.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "auth/gate.h"
#include "core/log.h"
#include "core/util.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "mcp/oauth_page.h"
#include "mcp/oauth_server.h"
#include "mcp/oauth_store.h"
#include "mcp/oauth_util.h"
#include "upstream/client.h"

#define ACCESS_PREFIX "lgat_"
#define REFRESH_PREFIX "lgrt_"
#define CODE_PREFIX "lgac_"
#define CLIENT_PREFIX "lgc_"
#define SECRET_PREFIX "lgcs_"
#define SCOPE "mcp"
#define MAX_CONSENT_ATTEMPTS 5
#define CIMD_CACHE_S 600
#define PAGE_MAX_BYTES 65536
#define RESOURCE_MAX 400

static lg_worker_t *worker_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(lg_worker_t, ctx, req->conn->ctx);
}

static const lg_mcp_oauth_conf_t *conf_of(h2o_req_t *req)
{
    return &worker_of(req)->rt->snap->conf->mcp.oauth;
}

static int64_t now_s(void)
{
    return lg_unix_time();
}

/* ---- which listener ---- */

/* 1 if the connection arrived on a listener named in mcp.auth.listeners ("address:port"; 0.0.0.0 / :: match any). */
static int listener_listed(h2o_req_t *req, char *const *list)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (req->conn->callbacks->get_sockname == NULL || req->conn->callbacks->get_sockname(req->conn, (struct sockaddr *)&ss) == 0)
        return 0;
    char addr[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    int mapped_v4 = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
        port = ntohs(s4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, addr, sizeof(addr));
            mapped_v4 = 1;
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
        }
        port = ntohs(s6->sin6_port);
    }
    for (; *list != NULL; ++list) {
        const char *colon = strrchr(*list, ':');
        if (colon == NULL || (unsigned)atoi(colon + 1) != port)
            continue;
        size_t al = (size_t)(colon - *list);
        if ((al == 7 && memcmp(*list, "0.0.0.0", 7) == 0 && (ss.ss_family == AF_INET || mapped_v4)) ||
            (al == 2 && memcmp(*list, "::", 2) == 0) || (al == strlen(addr) && memcmp(*list, addr, al) == 0))
            return 1;
    }
    return 0;
}

static int oauth_active(h2o_req_t *req, const lg_mcp_oauth_conf_t *oc)
{
    if (!oc->enabled || oc->issuer == NULL)
        return 0;
    return oc->listeners == NULL || listener_listed(req, oc->listeners);
}

/* ---- small response helpers ---- */

static void hdr(h2o_req_t *req, const char *name, const char *value)
{
    lg_add_header(req, name, value);
}

static void no_store(h2o_req_t *req)
{
    hdr(req, "cache-control", "no-store");
    hdr(req, "pragma", "no-cache");
}

static void cors_any(h2o_req_t *req)
{
    /* metadata, token, registration and revocation carry no cookies: browser-based MCP clients may call them */
    hdr(req, "access-control-allow-origin", "*");
}

static void send_json(h2o_req_t *req, int status, json_t *obj)
{
    no_store(req);
    lg_respond_json(req, status, obj);
}

/** RFC 6749 §5.2 error; invalid_client with HTTP Basic gets 401 + WWW-Authenticate. */
static void oauth_error(h2o_req_t *req, int status, const char *error, const char *description)
{
    if (status == 401)
        hdr(req, "www-authenticate", "Basic realm=\"llmgate\"");
    send_json(req, status, json_pack("{s:s,s:s}", "error", error, "error_description", description));
}

static void send_html(h2o_req_t *req, int status, lg_buf_t *page, const char *form_action_extra)
{
    char csp[512];
    snprintf(csp, sizeof(csp),
             "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'%s%s; frame-ancestors 'none'; "
             "base-uri 'none'",
             form_action_extra != NULL ? " " : "", form_action_extra != NULL ? form_action_extra : "");
    hdr(req, "content-security-policy", csp);
    hdr(req, "x-frame-options", "DENY");
    hdr(req, "x-content-type-options", "nosniff");
    /* not no-referrer: with it browsers send "Origin: null" on the form POST, and the Origin check needs the real one */
    hdr(req, "referrer-policy", "same-origin");
    no_store(req);
    lg_respond_raw(req, status, "text/html; charset=utf-8", page->data != NULL ? page->data : "", page->len);
    lg_buf_dispose(page);
}

static void error_page(h2o_req_t *req, int status, const char *title, const char *message)
{
    lg_buf_t b;
    lg_buf_init(&b, PAGE_MAX_BYTES);
    lg__oauth_page_error(&b, title, message);
    send_html(req, status, &b, NULL);
}

static void redirect(h2o_req_t *req, int status, const char *location)
{
    static h2o_generator_t gen = {NULL, NULL};
    hdr(req, "location", location);
    no_store(req);
    req->res.status = status;
    req->res.reason = status == 303 ? "See Other" : "Found";
    req->res.content_length = 0;
    h2o_start_response(req, &gen);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* redirect_uri + ?|& + params (name, value pairs, NULL values skipped); then iss (RFC 9207) */
static void redirect_to_client(h2o_req_t *req, const lg_mcp_oauth_conf_t *oc, const char *redirect_uri, const char *const *kv)
{
    lg_buf_t b;
    lg_buf_init(&b, 3 * LG_OAUTH_PARAM_MAX_BYTES + 4096);
    lg_buf_append(&b, redirect_uri, strlen(redirect_uri));
    char sep = strchr(redirect_uri, '?') != NULL ? '&' : '?';
    for (; kv[0] != NULL; kv += 2) {
        if (kv[1] == NULL)
            continue;
        lg_buf_append(&b, &sep, 1);
        sep = '&';
        lg_buf_append(&b, kv[0], strlen(kv[0]));
        lg_buf_append(&b, "=", 1);
        lg_oauth_urlencode_append(&b, kv[1]);
    }
    lg_buf_append(&b, &sep, 1);
    lg_buf_append(&b, "iss=", 4);
    lg_oauth_urlencode_append(&b, oc->issuer);
    lg_buf_append(&b, "", 1);
    redirect(req, 303, b.data);
    lg_buf_dispose(&b);
}

static void redirect_error(h2o_req_t *req, const lg_mcp_oauth_conf_t *oc, const char *redirect_uri, const char *state,
                           const char *error, const char *description)
{
    const char *kv[] = {"error", error, "error_description", description, "state", state, NULL, NULL};
    redirect_to_client(req, oc, redirect_uri, kv);
}

/* ---- resources ---- */

/* "<issuer>/mcp" or "<issuer>/mcp/<server>" into out */
static void resource_of(const lg_mcp_oauth_conf_t *oc, const char *server, size_t len, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/mcp%s%.*s", oc->issuer, len > 0 ? "/" : "", (int)len, server);
}

/* 1 if name is an MCP endpoint of this config (a virtual server, or the conformance fixtures) */
static int server_exists(const lg_config_t *conf, const char *name, size_t len)
{
    if (len == 11 && memcmp(name, "conformance", 11) == 0 && conf->mcp.conformance_fixtures)
        return 1;
    for (size_t i = 0; i < conf->mcp.num_vservers; ++i)
        if (strlen(conf->mcp.vservers[i].name) == len && memcmp(conf->mcp.vservers[i].name, name, len) == 0)
            return 1;
    return 0;
}

/* Canonicalise a client's resource parameter and check it names one of our MCP endpoints. NULL/"" = /mcp. 0 or -1. */
static int resource_accept(h2o_req_t *req, const char *in, char *out, size_t outsz)
{
    const lg_mcp_oauth_conf_t *oc = conf_of(req);
    if (in == NULL || in[0] == '\0') {
        resource_of(oc, "", 0, out, outsz);
        return 0;
    }
    char base[RESOURCE_MAX];
    if (lg_oauth_resource_canonical(in, out, outsz) != 0 || lg_oauth_resource_canonical(oc->issuer, base, sizeof(base)) != 0)
        return -1;
    size_t bl = strlen(base);
    if (strncmp(out, base, bl) != 0 || strncmp(out + bl, "/mcp", 4) != 0)
        return -1;
    const char *rest = out + bl + 4;
    if (*rest != '\0' && (*rest != '/' || !server_exists(worker_of(req)->rt->snap->conf, rest + 1, strlen(rest + 1))))
        return -1;
    /* keep the issuer's own spelling, so the audience compares equal to what /mcp requests compute */
    char tmp[RESOURCE_MAX];
    snprintf(tmp, sizeof(tmp), "%s/mcp%s", oc->issuer, rest);
    snprintf(out, outsz, "%s", tmp);
    return 0;
}

/* ---- metadata ---- */

static json_t *as_metadata(const lg_mcp_oauth_conf_t *oc)
{
    char url[RESOURCE_MAX];
    json_t *m = json_object();
    json_object_set_new(m, "issuer", json_string(oc->issuer));
    snprintf(url, sizeof(url), "%s/oauth/authorize", oc->issuer);
    json_object_set_new(m, "authorization_endpoint", json_string(url));
    snprintf(url, sizeof(url), "%s/oauth/token", oc->issuer);
    json_object_set_new(m, "token_endpoint", json_string(url));
    if (oc->dynamic_registration) {
        snprintf(url, sizeof(url), "%s/oauth/register", oc->issuer);
        json_object_set_new(m, "registration_endpoint", json_string(url));
    }
    snprintf(url, sizeof(url), "%s/oauth/revoke", oc->issuer);
    json_object_set_new(m, "revocation_endpoint", json_string(url));
    json_object_set_new(m, "scopes_supported", json_pack("[s]", SCOPE));
    json_object_set_new(m, "response_types_supported", json_pack("[s]", "code"));
    json_object_set_new(m, "response_modes_supported", json_pack("[s]", "query"));
    json_object_set_new(m, "grant_types_supported", json_pack("[s,s]", "authorization_code", "refresh_token"));
    json_object_set_new(m, "code_challenge_methods_supported", json_pack("[s]", "S256"));
    json_object_set_new(m, "token_endpoint_auth_methods_supported",
                        json_pack("[s,s,s]", "none", "client_secret_post", "client_secret_basic"));
    json_object_set_new(m, "revocation_endpoint_auth_methods_supported",
                        json_pack("[s,s,s]", "none", "client_secret_post", "client_secret_basic"));
    json_object_set_new(m, "client_id_metadata_document_supported", json_boolean(oc->client_id_metadata_documents));
    json_object_set_new(m, "authorization_response_iss_parameter_supported", json_true());
    return m;
}

static void serve_resource_metadata(h2o_req_t *req, const lg_mcp_oauth_conf_t *oc, const char *server, size_t len)
{
    if (len > 0 && !server_exists(worker_of(req)->rt->snap->conf, server, len)) {
        lg_respond_error(req, LG_ENOTFOUND, 404, "no such MCP server", NULL);
        return;
    }
    char res[RESOURCE_MAX];
    resource_of(oc, server, len, res, sizeof(res));
    cors_any(req);
    hdr(req, "cache-control", "max-age=300");
    lg_respond_json(req, 200,
                    json_pack("{s:s,s:[s],s:[s],s:[s],s:s}", "resource", res, "authorization_servers", oc->issuer,
                              "scopes_supported", SCOPE, "bearer_methods_supported", "header", "resource_name",
                              "llmgate MCP gateway"));
}

/* ---- client lookup and authentication ---- */

/* Basic credentials "id:secret" (each form-urlencoded, RFC 6749 §2.3.1) → new strings, or -1 */
static int basic_credentials(h2o_req_t *req, char **id, char **secret)
{
    size_t len;
    const char *a = lg_req_header(req, "authorization", &len);
    *id = *secret = NULL;
    if (a == NULL || len < 7 || strncasecmp(a, "basic ", 6) != 0)
        return 0;
    a += 6, len -= 6;
    if (len > 4096)
        return -1;
    unsigned char dec[3100];
    int n = EVP_DecodeBlock(dec, (const unsigned char *)a, (int)len);
    if (n < 0)
        return -1;
    while (len > 0 && a[len - 1] == '=') /* EVP_DecodeBlock counts padding as zero bytes */
        --len, --n;
    dec[n] = '\0';
    char *colon = memchr(dec, ':', (size_t)n);
    if (colon == NULL)
        return -1;
    lg_oauth_form_t f;
    /* decode both halves with the form decoder: "id=<id>&secret=<secret>" would mis-split on '&', so decode one by one */
    *colon = '\0';
    char buf[3200];
    snprintf(buf, sizeof(buf), "v=%s", (const char *)dec);
    if (lg_oauth_form_parse(buf, strlen(buf), &f) != 0 || lg_oauth_form_get(&f, "v") == NULL)
        return -1;
    *id = lg_strdup(lg_oauth_form_get(&f, "v"));
    lg_oauth_form_dispose(&f);
    snprintf(buf, sizeof(buf), "v=%s", colon + 1);
    if (lg_oauth_form_parse(buf, strlen(buf), &f) != 0 || lg_oauth_form_get(&f, "v") == NULL) {
        free(*id);
        *id = NULL;
        return -1;
    }
    *secret = lg_strdup(lg_oauth_form_get(&f, "v"));
    lg_oauth_form_dispose(&f);
    return 1;
}

/*
 * Authenticate the client of a token or revocation request. Returns 0 with the client id in *client_id (new string), or
 * -1 with the error already sent. A client_id that is a metadata-document URL is a public client (no secret).
 */
static int client_authenticate(h2o_req_t *req, const lg_oauth_form_t *f, char **client_id)
{
    char *bid = NULL, *bsecret = NULL;
    int basic = basic_credentials(req, &bid, &bsecret);
    if (basic < 0) {
        oauth_error(req, 401, "invalid_client", "malformed HTTP Basic client credentials");
        return -1;
    }
    const char *id = basic > 0 ? bid : lg_oauth_form_get(f, "client_id");
    const char *secret = basic > 0 ? bsecret : lg_oauth_form_get(f, "client_secret");
    const char *form_id = lg_oauth_form_get(f, "client_id");
    if (id == NULL || id[0] == '\0' || (basic > 0 && form_id != NULL && strcmp(form_id, id) != 0)) {
        free(bid);
        free(bsecret);
        oauth_error(req, basic > 0 ? 401 : 400, basic > 0 ? "invalid_client" : "invalid_request", "client_id is required");
        return -1;
    }
    lg_oauth_client_t c;
    int rc = lg__oauth_client_get(id, now_s(), &c);
    int ok;
    if (rc == LG_OAUTH_OK) {
        if (c.auth_method == LG_OAUTH_AUTH_NONE) {
            ok = 1;
        } else {
            uint8_t h[32];
            ok = secret != NULL;
            if (ok) {
                lg_oauth_hash(secret, strlen(secret), h);
                ok = CRYPTO_memcmp(h, c.secret_hash, 32) == 0;
            }
        }
        lg_oauth_client_dispose(&c);
    } else {
        /* a metadata-document client whose cached document expired stays a valid public client: codes and tokens are
         * bound to its client_id, which is all the token endpoint needs */
        ok = lg_oauth_client_id_is_url(id, conf_of(req)->allow_loopback_metadata_urls) && secret == NULL;
    }
    if (!ok) {
        free(bid);
        free(bsecret);
        oauth_error(req, 401, "invalid_client", "unknown client or wrong client credentials");
        return -1;
    }
    *client_id = lg_strdup(id);
    free(bid);
    free(bsecret);
    return 0;
}

/* ---- keys ---- */

/*
 * 1 if the API key key_id can still be used (exists, not disabled, not expired). key_id "" (anonymous) is usable only
 * while the gateway runs open.
 */
static int key_usable(const char *key_id, const char **why)
{
    if (key_id[0] == '\0') {
        *why = "the gateway now requires API keys";
        return lg_gate_keys() == NULL || lg_gate_open();
    }
    lg_key_entry_t *e = lg_gate_keys() != NULL ? lg_keytable_get_by_id(lg_gate_keys(), key_id) : NULL;
    if (e == NULL) {
        *why = "the API key behind this grant was deleted";
        return 0;
    }
    const lg_key_record_t *r = lg_key_entry_record(e);
    int ok = !r->disabled && (r->expires_at == 0 || r->expires_at > now_s());
    *why = r->disabled ? "the API key behind this grant is disabled" : "the API key behind this grant expired";
    lg_key_entry_release(e);
    return ok;
}

/* ---- token issuance ---- */

static void issue_tokens(h2o_req_t *req, lg_oauth_grant_t *g)
{
    const lg_mcp_oauth_conf_t *oc = conf_of(req);
    char access[80], refresh[80];
    uint8_t h[32];
    if (lg_oauth_token_mint(ACCESS_PREFIX, access, sizeof(access)) != 0 ||
        lg_oauth_token_mint(REFRESH_PREFIX, refresh, sizeof(refresh)) != 0) {
        oauth_error(req, 500, "server_error", "random number generator failed");
        return;
    }
    int64_t now = now_s();
    g->expires_at = now + oc->access_token_ttl_s;
    lg_oauth_hash(access, strlen(access), h);
    lg__oauth_token_put(h, LG_OAUTH_ACCESS, g, now);
    g->expires_at = now + oc->refresh_token_ttl_s;
    lg_oauth_hash(refresh, strlen(refresh), h);
    lg__oauth_token_put(h, LG_OAUTH_REFRESH, g, now);
    json_t *body =
        json_pack("{s:s,s:s,s:I,s:s,s:s}", "access_token", access, "token_type", "Bearer", "expires_in",
                  (json_int_t)oc->access_token_ttl_s, "refresh_token", refresh, "scope", g->scope != NULL ? g->scope : SCOPE);
    OPENSSL_cleanse(access, sizeof(access));
    OPENSSL_cleanse(refresh, sizeof(refresh));
    send_json(req, 200, body);
}

/* ---- body forms ---- */

static int form_body(h2o_req_t *req, lg_oauth_form_t *f)
{
    size_t len;
    const char *ct = lg_req_header(req, "content-type", &len);
    static const char want[] = "application/x-www-form-urlencoded";
    if (ct == NULL || len < sizeof(want) - 1 || strncasecmp(ct, want, sizeof(want) - 1) != 0) {
        oauth_error(req, 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded");
        return -1;
    }
    if (lg_oauth_form_parse(req->entity.base != NULL ? req->entity.base : "", req->entity.len, f) != 0) {
        oauth_error(req, 400, "invalid_request", "malformed form body (bad escape, too large or too many parameters)");
        return -1;
    }
    if (f->duplicate) {
        lg_oauth_form_dispose(f);
        oauth_error(req, 400, "invalid_request", "a parameter was sent more than once");
        return -1;
    }
    return 0;
}

/* ---- token endpoint ---- */

static void token_authorization_code(h2o_req_t *req, const lg_oauth_form_t *f, const char *client_id)
{
    const char *code = lg_oauth_form_get(f, "code"), *verifier = lg_oauth_form_get(f, "code_verifier");
    const char *redirect_uri = lg_oauth_form_get(f, "redirect_uri"), *resource = lg_oauth_form_get(f, "resource");
    if (code == NULL || code[0] == '\0') {
        oauth_error(req, 400, "invalid_request", "code is required");
        return;
    }
    if (verifier == NULL) {
        oauth_error(req, 400, "invalid_request", "code_verifier is required (PKCE)");
        return;
    }
    uint8_t h[32];
    lg_oauth_hash(code, strlen(code), h);
    lg_oauth_grant_t g;
    memset(&g, 0, sizeof(g));
    int rc = lg__oauth_code_redeem(h, now_s(), &g);
    if (rc != LG_OAUTH_OK) {
        oauth_error(req, 400, "invalid_grant",
                    rc == LG_OAUTH_REUSED    ? "authorization code already used; the tokens it produced were revoked"
                    : rc == LG_OAUTH_EXPIRED ? "authorization code expired"
                                             : "unknown authorization code");
        return;
    }
    const char *why = NULL, *error = "invalid_grant";
    char canon[RESOURCE_MAX];
    if (strcmp(g.client_id, client_id) != 0)
        why = "the authorization code was issued to another client";
    else if (redirect_uri != NULL && strcmp(redirect_uri, g.redirect_uri) != 0)
        why = "redirect_uri differs from the authorization request";
    else if (!lg_oauth_pkce_verify(verifier, strlen(verifier), g.code_challenge))
        why = "code_verifier does not match the code_challenge (PKCE)";
    else if (resource != NULL && (resource_accept(req, resource, canon, sizeof(canon)) != 0 || strcmp(canon, g.resource) != 0))
        why = "resource differs from the authorization request", error = "invalid_target";
    else if (!key_usable(g.key_id, &why))
        ;
    else
        why = NULL;
    if (why != NULL) {
        if (strcmp(error, "invalid_grant") == 0)
            lg__oauth_revoke_grant(g.grant_id); /* a failed redemption burns the code for good (it is single-use anyway) */
        oauth_error(req, 400, error, why);
    } else {
        issue_tokens(req, &g);
    }
    lg_oauth_grant_dispose(&g);
}

static void token_refresh(h2o_req_t *req, const lg_oauth_form_t *f, const char *client_id)
{
    const char *rt = lg_oauth_form_get(f, "refresh_token"), *resource = lg_oauth_form_get(f, "resource");
    if (rt == NULL || rt[0] == '\0') {
        oauth_error(req, 400, "invalid_request", "refresh_token is required");
        return;
    }
    uint8_t h[32];
    lg_oauth_hash(rt, strlen(rt), h);
    lg_oauth_grant_t g;
    memset(&g, 0, sizeof(g));
    int rc = lg__oauth_refresh_use(h, client_id, now_s(), &g);
    if (rc != LG_OAUTH_OK) {
        oauth_error(req, 400, "invalid_grant",
                    rc == LG_OAUTH_REUSED         ? "refresh token already used; every token of this grant was revoked"
                    : rc == LG_OAUTH_EXPIRED      ? "refresh token expired"
                    : rc == LG_OAUTH_REVOKED      ? "refresh token revoked"
                    : rc == LG_OAUTH_WRONG_CLIENT ? "refresh token issued to another client"
                                                  : "unknown refresh token");
        return;
    }
    const char *why = NULL;
    char canon[RESOURCE_MAX];
    if (resource != NULL && (resource_accept(req, resource, canon, sizeof(canon)) != 0 || strcmp(canon, g.resource) != 0))
        oauth_error(req, 400, "invalid_target", "a refresh cannot change the resource");
    else if (!key_usable(g.key_id, &why))
        oauth_error(req, 400, "invalid_grant", why);
    else
        issue_tokens(req, &g);
    lg_oauth_grant_dispose(&g);
}

static void handle_token(h2o_req_t *req)
{
    lg_oauth_form_t f;
    if (form_body(req, &f) != 0)
        return;
    const char *gt = lg_oauth_form_get(&f, "grant_type");
    char *client_id = NULL;
    if (gt == NULL)
        oauth_error(req, 400, "invalid_request", "grant_type is required");
    else if (strcmp(gt, "authorization_code") != 0 && strcmp(gt, "refresh_token") != 0)
        oauth_error(req, 400, "unsupported_grant_type", "supported: authorization_code, refresh_token");
    else if (client_authenticate(req, &f, &client_id) != 0)
        ;
    else if (strcmp(gt, "authorization_code") == 0)
        token_authorization_code(req, &f, client_id);
    else
        token_refresh(req, &f, client_id);
    free(client_id);
    lg_oauth_form_dispose(&f);
}

/* ---- revocation (RFC 7009) ---- */

static void handle_revoke(h2o_req_t *req)
{
    lg_oauth_form_t f;
    if (form_body(req, &f) != 0)
        return;
    const char *token = lg_oauth_form_get(&f, "token");
    char *client_id = NULL;
    if (token == NULL || token[0] == '\0') {
        oauth_error(req, 400, "invalid_request", "token is required");
    } else if (client_authenticate(req, &f, &client_id) == 0) {
        uint8_t h[32];
        lg_oauth_hash(token, strlen(token), h);
        lg__oauth_revoke(h, client_id); /* unknown tokens and other clients' tokens: 200 all the same (§2.2) */
        send_json(req, 200, json_object());
    }
    free(client_id);
    lg_oauth_form_dispose(&f);
}

/* ---- registration (RFC 7591) ---- */

static void handle_register(h2o_req_t *req, const lg_mcp_oauth_conf_t *oc)
{
    if (!oc->dynamic_registration) {
        lg_respond_error(req, LG_ENOTFOUND, 404, "dynamic client registration is off (use a client ID metadata document)", NULL);
        return;
    }
    const char *error;
    char why[256];
    lg_oauth_client_t c;
    if (req->entity.len > LG_OAUTH_DCR_MAX_BYTES) {
        oauth_error(req, 400, "invalid_client_metadata", "registration request too large");
        return;
    }
    if (lg_oauth_client_parse(req->entity.base != NULL ? req->entity.base : "", req->entity.len, NULL, &c, &error, why,
                              sizeof(why)) != 0) {
        oauth_error(req, 400, error, why);
        return;
    }
    char id[64], secret[80] = "";
    if (lg_oauth_token_mint(CLIENT_PREFIX, id, sizeof(id)) != 0 ||
        (c.auth_method != LG_OAUTH_AUTH_NONE && lg_oauth_token_mint(SECRET_PREFIX, secret, sizeof(secret)) != 0)) {
        lg_oauth_client_dispose(&c);
        oauth_error(req, 500, "server_error", "random number generator failed");
        return;
    }
    id[strlen(CLIENT_PREFIX) + 22] = '\0'; /* 132 bits are plenty for an identifier that is not a secret */
    c.client_id = lg_strdup(id);
    c.issued_at = now_s();
    if (secret[0] != '\0')
        lg_oauth_hash(secret, strlen(secret), c.secret_hash);
    if (lg__oauth_client_put(&c, c.issued_at) != LG_OAUTH_OK) {
        lg_oauth_client_dispose(&c);
        oauth_error(req, 400, "invalid_client_metadata", "registration limit reached (mcp.auth.max_clients); try again later");
        return;
    }
    static const char *const methods[] = {"none", "client_secret_post", "client_secret_basic"};
    json_t *uris = json_array();
    for (char **r = c.redirect_uris; *r != NULL; ++r)
        json_array_append_new(uris, json_string(*r));
    json_t *body = json_pack("{s:s,s:I,s:o,s:s,s:[s],s:s}", "client_id", c.client_id, "client_id_issued_at",
                             (json_int_t)c.issued_at, "redirect_uris", uris, "token_endpoint_auth_method", methods[c.auth_method],
                             "response_types", "code", "scope", SCOPE);
    json_object_set_new(body, "grant_types",
                        c.refresh_allowed ? json_pack("[s,s]", "authorization_code", "refresh_token")
                                          : json_pack("[s]", "authorization_code"));
    if (c.client_name != NULL)
        json_object_set_new(body, "client_name", json_string(c.client_name));
    if (c.client_uri != NULL)
        json_object_set_new(body, "client_uri", json_string(c.client_uri));
    if (secret[0] != '\0') {
        json_object_set_new(body, "client_secret", json_string(secret));
        json_object_set_new(body, "client_secret_expires_at", json_integer(0));
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    LG_LOG(LG_LOG_INFO, "oauth", "registered client %s (%s)", c.client_id, c.client_name != NULL ? c.client_name : "unnamed");
    lg_oauth_client_dispose(&c);
    send_json(req, 201, body);
}

/* ---- authorization endpoint ---- */

static const char *client_kind(const lg_oauth_client_t *c, char *buf, size_t n)
{
    if (!c->is_metadata_document)
        return "registered dynamically; the name is not verified";
    lg_oauth_uri_t u;
    if (lg_oauth_uri_parse(c->client_id, &u) == 0)
        snprintf(buf, n, "metadata document published at %.*s", (int)u.host_len, u.host);
    else
        snprintf(buf, n, "metadata document");
    return buf;
}

/* The CSP form-action source for the redirect target (the POST answers 303 to it; browsers check form-action on the
 * redirect too). NULL when it cannot be expressed safely (then only 'self'). */
static const char *form_action_source(const char *redirect_uri, char *buf, size_t n)
{
    lg_oauth_uri_t u;
    if (lg_oauth_uri_parse(redirect_uri, &u) != 0)
        return NULL;
    if (!u.has_authority)
        snprintf(buf, n, "%.*s:", (int)u.scheme_len, u.scheme);
    else
        snprintf(buf, n, "%.*s://%.*s%s%.*s", (int)u.scheme_len, u.scheme, (int)u.host_len, u.host, u.port_len ? ":" : "",
                 (int)u.port_len, u.port);
    for (const char *p = buf; *p != '\0'; ++p)
        if (!(isalnum((unsigned char)*p) || strchr(":/.-+[]", *p) != NULL))
            return NULL;
    return buf;
}

static void render_consent(h2o_req_t *req, const lg_oauth_pending_t *p, const char *kind, const char *error, int status)
{
    const lg_config_t *conf = worker_of(req)->rt->snap->conf;
    lg_oauth_page_vars_t v = {.client_name = p->client_name != NULL ? p->client_name : p->client_id,
                              .client_id = p->client_id,
                              .client_kind = kind,
                              .redirect_uri = p->redirect_uri,
                              .resource = p->resource,
                              .txn = p->txn,
                              .csrf = p->csrf,
                              .error = error,
                              .admin_approval = conf->mcp.oauth.admin_approval && conf->admin_key != NULL};
    lg_buf_t b;
    lg_buf_init(&b, PAGE_MAX_BYTES);
    if (lg__oauth_page_consent(&b, &v) != 0) {
        lg_buf_dispose(&b);
        error_page(req, 500, "Cannot show the consent page", "the page grew over its size limit");
        return;
    }
    char cookie[256];
    snprintf(cookie, sizeof(cookie), "lg_csrf_%s=%s; Path=/oauth; HttpOnly; SameSite=Strict; Max-Age=%u%s", p->txn, p->csrf,
             (unsigned)conf->mcp.oauth.consent_ttl_s, strncmp(conf->mcp.oauth.issuer, "https:", 6) == 0 ? "; Secure" : "");
    hdr(req, "set-cookie", cookie);
    char fa[LG_OAUTH_URI_MAX_BYTES];
    send_html(req, status, &b, form_action_source(p->redirect_uri, fa, sizeof(fa)));
}

/* Steps after the client is known (now or after its metadata document arrived). */
static void authorize_with_client(h2o_req_t *req, const lg_oauth_form_t *q, const lg_oauth_client_t *c)
{
    const lg_mcp_oauth_conf_t *oc = conf_of(req);
    const char *redirect_uri = lg_oauth_form_get(q, "redirect_uri");
    if (redirect_uri == NULL && c->redirect_uris[0] != NULL && c->redirect_uris[1] == NULL)
        redirect_uri = c->redirect_uris[0]; /* RFC 6749 §3.1.2.3: optional when exactly one is registered */
    if (redirect_uri == NULL || !lg_oauth_client_redirect_ok(c, redirect_uri)) {
        error_page(req, 400, "Invalid redirect URI",
                   "The application's redirect_uri is not one it registered (redirect URIs are compared exactly).");
        return;
    }
    /* from here on errors go back to the client */
    const char *state = lg_oauth_form_get(q, "state"), *rt = lg_oauth_form_get(q, "response_type");
    const char *challenge = lg_oauth_form_get(q, "code_challenge"), *method = lg_oauth_form_get(q, "code_challenge_method");
    char resource[RESOURCE_MAX];
    if (q->duplicate)
        redirect_error(req, oc, redirect_uri, state, "invalid_request", "a parameter was sent more than once");
    else if (rt == NULL || strcmp(rt, "code") != 0)
        redirect_error(req, oc, redirect_uri, state, "unsupported_response_type", "only response_type=code is supported");
    else if (challenge == NULL)
        redirect_error(req, oc, redirect_uri, state, "invalid_request", "PKCE is required: send code_challenge (S256)");
    else if (method == NULL || strcmp(method, "S256") != 0)
        redirect_error(req, oc, redirect_uri, state, "invalid_request", "code_challenge_method must be S256");
    else if (!lg_oauth_pkce_challenge_valid(challenge))
        redirect_error(req, oc, redirect_uri, state, "invalid_request", "code_challenge must be 43 base64url characters");
    else if (resource_accept(req, lg_oauth_form_get(q, "resource"), resource, sizeof(resource)) != 0)
        redirect_error(req, oc, redirect_uri, state, "invalid_target", "resource is not an MCP endpoint of this gateway");
    else {
        lg_oauth_pending_t p;
        memset(&p, 0, sizeof(p));
        char tmp[80];
        if (lg_oauth_token_mint("", tmp, sizeof(tmp)) != 0) {
            error_page(req, 500, "Internal error", "random number generator failed");
            return;
        }
        snprintf(p.txn, sizeof(p.txn), "%.32s", tmp);
        if (lg_oauth_token_mint("", tmp, sizeof(tmp)) != 0) {
            error_page(req, 500, "Internal error", "random number generator failed");
            return;
        }
        snprintf(p.csrf, sizeof(p.csrf), "%.43s", tmp);
        p.client_id = lg_strdup(c->client_id);
        p.client_name = c->client_name != NULL ? lg_strdup(c->client_name) : NULL;
        p.redirect_uri = lg_strdup(redirect_uri);
        p.state = state != NULL ? lg_strdup(state) : NULL;
        p.code_challenge = lg_strdup(challenge);
        p.resource = lg_strdup(resource);
        p.scope = lg_strdup(SCOPE);
        p.expires_at = now_s() + oc->consent_ttl_s;
        char kind[160];
        client_kind(c, kind, sizeof(kind));
        render_consent(req, &p, kind, NULL, 200);
        lg__oauth_pending_put(&p, now_s());
    }
}

/* ---- Client ID Metadata Document fetch ---- */

struct cimd_fetch {
    h2o_req_t *req; /* NULL once the client left */
    lg_worker_t *w;
    lg_xfer_t *x;
    struct cimd_fetch **slot; /* in req->pool; NULLed when done so the dispose hook leaves us alone */
    lg_buf_t body;
    char *url;
    lg_oauth_form_t query;
};

static void cimd_free(struct cimd_fetch *f)
{
    lg_buf_dispose(&f->body);
    free(f->url);
    lg_oauth_form_dispose(&f->query);
    lg__worker_request_done(f->w);
    free(f);
}

static void cimd_on_dispose(void *p)
{
    struct cimd_fetch *f = *(struct cimd_fetch **)p;
    if (f == NULL)
        return;
    /* the browser left while the document was on its way */
    lg_xfer_cancel(f->x);
    cimd_free(f);
}

static int cimd_on_head(void *ctx, lg_xfer_t *x, int status)
{
    (void)ctx;
    (void)x;
    return status == 200 ? 0 : 1;
}

static int cimd_on_data(void *ctx, lg_xfer_t *x, const char *data, size_t len)
{
    (void)x;
    struct cimd_fetch *f = ctx;
    return lg_buf_append(&f->body, data, len) == 0 ? 0 : -1;
}

static void cimd_on_done(void *ctx, lg_xfer_t *x, int result, const char *msg)
{
    struct cimd_fetch *f = ctx;
    int status = lg_xfer_status(x);
    *f->slot = NULL;
    h2o_req_t *req = f->req;
    if (req != NULL) {
        char why[LG_OAUTH_URI_MAX_BYTES + 200];
        const char *error;
        lg_oauth_client_t c;
        if (result != 0 || status != 200) {
            snprintf(why, sizeof(why), "The application's client metadata document (%s) could not be fetched: %s", f->url,
                     status != 200 && status != 0 ? "the server did not answer 200" : msg);
            error_page(req, 400, "Unknown application", why);
        } else if (lg_oauth_client_parse(f->body.data != NULL ? f->body.data : "", f->body.len, f->url, &c, &error, why,
                                         sizeof(why)) != 0) {
            error_page(req, 400, "Invalid application metadata", why);
        } else {
            int64_t now = now_s();
            c.issued_at = now;
            c.expires_at = now + CIMD_CACHE_S;
            lg__oauth_client_put(&c, now);
            authorize_with_client(req, &f->query, &c);
            lg_oauth_client_dispose(&c);
        }
    }
    cimd_free(f);
}

static void cimd_start(lg_worker_t *w, h2o_req_t *req, lg_oauth_form_t *q, const char *url)
{
    const lg_mcp_oauth_conf_t *oc = conf_of(req);
    struct cimd_fetch *f = lg_malloc(sizeof(*f));
    memset(f, 0, sizeof(*f));
    f->req = req;
    f->w = w;
    f->url = lg_strdup(url);
    f->query = *q; /* takes the parsed query over */
    memset(q, 0, sizeof(*q));
    lg_buf_init(&f->body, LG_OAUTH_CIMD_MAX_BYTES);
    lg_http_req_t hr;
    memset(&hr, 0, sizeof(hr));
    hr.method = (char *)"GET";
    hr.url = f->url;
    hr.headers[0].name = (char *)"accept";
    hr.headers[0].value = (char *)"application/json";
    hr.num_headers = 1;
    lg_xfer_opts_t opts = {.connect_timeout_ms = 3000,
                           .first_byte_timeout_ms = 5000,
                           .idle_timeout_ms = 5000,
                           .total_timeout_ms = 8000,
                           .max_response_bytes = LG_OAUTH_CIMD_MAX_BYTES,
                           .public_addresses_only = !oc->allow_loopback_metadata_urls};
    static const lg_xfer_callbacks_t cbs = {cimd_on_head, cimd_on_data, cimd_on_done};
    char err[160];
    lg__worker_request_begin(w);
    f->x = w->up != NULL ? lg_xfer_start(w->up, &hr, &opts, &cbs, f, err, sizeof(err)) : NULL;
    if (f->x == NULL) {
        error_page(req, 400, "Unknown application", "the client metadata document URL cannot be fetched");
        cimd_free(f);
        return;
    }
    f->slot = h2o_mem_alloc_shared(&req->pool, sizeof(*f->slot), cimd_on_dispose);
    *f->slot = f;
    /* a dispose hook only fires for a request that is alive: mark liveness through the slot */
}

static void handle_authorize_get(lg_worker_t *w, h2o_req_t *req, const lg_mcp_oauth_conf_t *oc)
{
    lg_oauth_form_t q;
    const char *qs = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
    size_t ql = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    if (lg_oauth_form_parse(qs, ql, &q) != 0) {
        error_page(req, 400, "Invalid request", "The authorization request's query string is malformed or too large.");
        return;
    }
    const char *client_id = lg_oauth_form_get(&q, "client_id");
    lg_oauth_client_t c;
    int64_t now = now_s();
    if (client_id == NULL || client_id[0] == '\0') {
        error_page(req, 400, "Invalid request", "client_id is missing.");
    } else if (lg__oauth_client_get(client_id, now, &c) == LG_OAUTH_OK) {
        authorize_with_client(req, &q, &c);
        lg_oauth_client_dispose(&c);
    } else if (oc->client_id_metadata_documents && lg_oauth_client_id_is_url(client_id, oc->allow_loopback_metadata_urls)) {
        char *url = lg_strdup(client_id);
        cimd_start(w, req, &q, url);
        free(url);
    } else {
        error_page(req, 400, "Unknown application",
                   "This client_id is not registered here. Register it first (dynamic client registration) or use an https "
                   "client ID metadata document URL.");
    }
    lg_oauth_form_dispose(&q);
}

/* Cookie lg_csrf_<txn> from the Cookie header into out; 0 or -1. */
static int csrf_cookie(h2o_req_t *req, const char *txn, char *out, size_t n)
{
    char name[80];
    snprintf(name, sizeof(name), "lg_csrf_%s=", txn);
    size_t nl = strlen(name);
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        for (size_t k = 0; k + nl <= v.len; ++k) {
            if ((k == 0 || v.base[k - 1] == ' ' || v.base[k - 1] == ';') && memcmp(v.base + k, name, nl) == 0) {
                size_t s = k + nl, e = s;
                while (e < v.len && v.base[e] != ';')
                    ++e;
                if (e - s >= n)
                    return -1;
                memcpy(out, v.base + s, e - s);
                out[e - s] = '\0';
                return 0;
            }
        }
    }
    return -1;
}

/* 1 if an Origin header, when present, is the issuer's origin */
static int origin_ok(h2o_req_t *req, const lg_mcp_oauth_conf_t *oc)
{
    size_t len;
    const char *o = lg_req_header(req, "origin", &len);
    return o == NULL || (len == strlen(oc->issuer) && strncasecmp(o, oc->issuer, len) == 0);
}

/*
 * Which key the person consented with: their own key (secret pasted), or — when admin approval is on — the admin key
 * plus the id of the key to bind. Returns 0 with key_id filled, or -1 with a message for the page.
 */
static int consent_key(h2o_req_t *req, const lg_oauth_form_t *f, char *key_id, size_t n, const char **why)
{
    const lg_config_t *conf = worker_of(req)->rt->snap->conf;
    const char *secret = lg_oauth_form_get(f, "api_key");
    const char *want_id = lg_oauth_form_get(f, "key_id");
    if (secret == NULL || secret[0] == '\0') {
        *why = "Paste an llmgate API key.";
        return -1;
    }
    size_t sl = strlen(secret);
    while (sl > 0 && (secret[sl - 1] == ' ' || secret[sl - 1] == '\n' || secret[sl - 1] == '\r' || secret[sl - 1] == '\t'))
        --sl;
    while (sl > 0 && (*secret == ' ' || *secret == '\t'))
        ++secret, --sl;
    if (conf->mcp.oauth.admin_approval && conf->admin_key != NULL) {
        uint8_t a[32], b[32];
        lg_oauth_hash(secret, sl, a);
        lg_oauth_hash(conf->admin_key, strlen(conf->admin_key), b);
        if (CRYPTO_memcmp(a, b, 32) == 0) {
            if (lg_gate_keys() == NULL) { /* no store: no keys exist; the admin grants anonymous access */
                key_id[0] = '\0';
                return 0;
            }
            lg_key_entry_t *e = want_id != NULL && want_id[0] != '\0' ? lg_keytable_get_by_id(lg_gate_keys(), want_id) : NULL;
            if (e == NULL) {
                *why = "Admin approval: name an existing API key id (key_...) to bind the token to.";
                return -1;
            }
            lg_key_entry_release(e);
            snprintf(key_id, n, "%s", want_id);
            return key_usable(key_id, why) ? 0 : -1;
        }
    }
    lg_key_entry_t *e = lg_gate_keys() != NULL ? lg_keytable_lookup(lg_gate_keys(), secret, sl) : NULL;
    if (e == NULL) {
        *why = "That API key is not valid.";
        return -1;
    }
    snprintf(key_id, n, "%s", lg_key_entry_record(e)->id);
    lg_key_entry_release(e);
    if (!key_usable(key_id, why)) {
        *why = "That API key is disabled or expired.";
        return -1;
    }
    return 0;
}

static void handle_authorize_post(h2o_req_t *req, const lg_mcp_oauth_conf_t *oc)
{
    if (!origin_ok(req, oc)) {
        error_page(req, 403, "Forbidden", "The consent form was posted from another site.");
        return;
    }
    lg_oauth_form_t f;
    size_t len;
    const char *ct = lg_req_header(req, "content-type", &len);
    if (ct == NULL || len < 33 || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
        lg_oauth_form_parse(req->entity.base != NULL ? req->entity.base : "", req->entity.len, &f) != 0) {
        error_page(req, 400, "Invalid request", "The consent form could not be read.");
        return;
    }
    const char *txn = lg_oauth_form_get(&f, "txn"), *csrf = lg_oauth_form_get(&f, "csrf"),
               *action = lg_oauth_form_get(&f, "action");
    lg_oauth_pending_t p;
    memset(&p, 0, sizeof(p));
    char cookie[64];
    int64_t now = now_s();
    if (txn == NULL || strlen(txn) > 40 || lg__oauth_pending_get(txn, now, &p) != LG_OAUTH_OK) {
        error_page(req, 400, "This sign-in page expired", "The consent page is no longer valid (expired or already used).");
    } else if (csrf == NULL || csrf_cookie(req, txn, cookie, sizeof(cookie)) != 0 || strlen(csrf) != strlen(p.csrf) ||
               strlen(cookie) != strlen(p.csrf) || CRYPTO_memcmp(csrf, p.csrf, strlen(p.csrf)) != 0 ||
               CRYPTO_memcmp(cookie, p.csrf, strlen(p.csrf)) != 0) {
        error_page(req, 403, "Forbidden", "The consent form's anti-forgery check failed. Open the sign-in link again.");
    } else if (action != NULL && strcmp(action, "deny") == 0) {
        lg__oauth_pending_remove(txn);
        redirect_error(req, oc, p.redirect_uri, p.state, "access_denied", "the user denied the request");
    } else {
        lg_oauth_grant_t g;
        memset(&g, 0, sizeof(g));
        const char *why = NULL;
        if (consent_key(req, &f, g.key_id, sizeof(g.key_id), &why) != 0) {
            int attempts = lg__oauth_pending_fail(txn, MAX_CONSENT_ATTEMPTS);
            if (attempts >= MAX_CONSENT_ATTEMPTS) {
                redirect_error(req, oc, p.redirect_uri, p.state, "access_denied", "too many invalid API keys");
            } else {
                char kind[160] = "client";
                lg_oauth_client_t c;
                if (lg__oauth_client_get(p.client_id, now, &c) == LG_OAUTH_OK) {
                    const char *k = client_kind(&c, kind, sizeof(kind));
                    if (k != kind)
                        snprintf(kind, sizeof(kind), "%s", k);
                    lg_oauth_client_dispose(&c);
                }
                render_consent(req, &p, kind, why, 400);
            }
        } else {
            char code[80] = "", gid[64];
            uint8_t h[32];
            if (lg_oauth_token_mint(CODE_PREFIX, code, sizeof(code)) != 0 || lg_oauth_token_mint("gr_", gid, sizeof(gid)) != 0) {
                code[0] = '\0';
            } else {
                snprintf(g.grant_id, sizeof(g.grant_id), "%.24s", gid);
                g.client_id = p.client_id;
                g.resource = p.resource;
                g.scope = p.scope;
                g.redirect_uri = p.redirect_uri;
                g.code_challenge = p.code_challenge;
                g.expires_at = now + oc->code_ttl_s;
                lg_oauth_hash(code, strlen(code), h);
            }
            /* taking the transaction is the atomic step: a double submit gets one code, not two */
            if (code[0] == '\0' || lg__oauth_pending_remove(txn) != LG_OAUTH_OK) {
                error_page(req, 400, "This sign-in page expired", "The consent page was already used.");
            } else {
                lg__oauth_code_put(h, &g, now);
                LG_LOG(LG_LOG_INFO, "oauth", "consent: client %s bound to key %s for %s", p.client_id,
                       g.key_id[0] != '\0' ? g.key_id : "(anonymous)", p.resource);
                const char *kv[] = {"code", code, "state", p.state, NULL, NULL};
                redirect_to_client(req, oc, p.redirect_uri, kv);
                OPENSSL_cleanse(code, sizeof(code));
            }
        }
    }
    lg_oauth_pending_dispose(&p);
    lg_oauth_form_dispose(&f);
}

/* ---- routing ---- */

static int path_eq(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

static int has_prefix(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p, lit, l) == 0;
}

static int method_is(h2o_req_t *req, const char *m)
{
    return req->method.len == strlen(m) && memcmp(req->method.base, m, req->method.len) == 0;
}

static void preflight(h2o_req_t *req)
{
    static h2o_generator_t gen = {NULL, NULL};
    cors_any(req);
    hdr(req, "access-control-allow-methods", "GET, POST, OPTIONS");
    hdr(req, "access-control-allow-headers", "authorization, content-type, mcp-protocol-version");
    hdr(req, "access-control-max-age", "600");
    req->res.status = 204;
    req->res.reason = "No Content";
    req->res.content_length = 0;
    h2o_start_response(req, &gen);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* "/mcp" or "/mcp/<name>" at p → the server name (may be empty); -1 if p is something else */
static int mcp_suffix(const char *p, size_t n, const char **name, size_t *nl)
{
    if (n == 0) {
        *name = "";
        *nl = 0;
        return 0;
    }
    if (!has_prefix(p, n, "/mcp"))
        return -1;
    if (n == 4) {
        *name = "";
        *nl = 0;
        return 0;
    }
    if (p[4] != '/' || n == 5 || memchr(p + 5, '/', n - 5) != NULL)
        return -1;
    *name = p + 5;
    *nl = n - 5;
    return 0;
}

int lg_mcp_oauth_route(lg_worker_t *w, h2o_req_t *req, const char *p, size_t n)
{
    const lg_mcp_oauth_conf_t *oc = &w->rt->snap->conf->mcp.oauth;
    if (!oc->enabled)
        return 0;
    int is_wk = has_prefix(p, n, "/.well-known/") || (has_prefix(p, n, "/mcp") && memmem(p, n, "/.well-known/", 13) != NULL);
    if (!is_wk && !has_prefix(p, n, "/oauth/"))
        return 0;
    if (!oauth_active(req, oc))
        return 0;
    int get = method_is(req, "GET") || method_is(req, "HEAD"), post = method_is(req, "POST");
    if (method_is(req, "OPTIONS")) {
        preflight(req);
        return 1;
    }
    const char *name;
    size_t nl;
    static const char prm[] = "/.well-known/oauth-protected-resource", asm_[] = "/.well-known/oauth-authorization-server",
                      oidc[] = "/.well-known/openid-configuration";
    /* RFC 9728 §3.1: /.well-known/oauth-protected-resource + resource path; also the path-appended forms clients try */
    if (has_prefix(p, n, prm) && mcp_suffix(p + sizeof(prm) - 1, n - sizeof(prm) + 1, &name, &nl) == 0) {
        if (!get)
            goto not_allowed;
        serve_resource_metadata(req, oc, name, nl);
        return 1;
    }
    const char *wk = is_wk ? memmem(p, n, "/.well-known/", 13) : NULL;
    if (wk != NULL && wk != p && mcp_suffix(p, (size_t)(wk - p), &name, &nl) == 0 && path_eq(wk, n - (size_t)(wk - p), prm)) {
        if (!get)
            goto not_allowed;
        serve_resource_metadata(req, oc, name, nl);
        return 1;
    }
    /* RFC 8414 / OIDC discovery, at the root or with the MCP path inserted or appended (old clients) */
    if ((has_prefix(p, n, asm_) && mcp_suffix(p + sizeof(asm_) - 1, n - sizeof(asm_) + 1, &name, &nl) == 0) ||
        (has_prefix(p, n, oidc) && mcp_suffix(p + sizeof(oidc) - 1, n - sizeof(oidc) + 1, &name, &nl) == 0) ||
        (wk != NULL && wk != p && mcp_suffix(p, (size_t)(wk - p), &name, &nl) == 0 &&
         (path_eq(wk, n - (size_t)(wk - p), asm_) || path_eq(wk, n - (size_t)(wk - p), oidc)))) {
        if (!get)
            goto not_allowed;
        cors_any(req);
        hdr(req, "cache-control", "max-age=300");
        lg_respond_json(req, 200, as_metadata(oc));
        return 1;
    }
    if (path_eq(p, n, "/oauth/authorize")) {
        if (get)
            handle_authorize_get(w, req, oc);
        else if (post)
            handle_authorize_post(req, oc);
        else
            goto not_allowed;
        return 1;
    }
    if (path_eq(p, n, "/oauth/token") || path_eq(p, n, "/oauth/revoke") || path_eq(p, n, "/oauth/register")) {
        if (!post) {
            lg_add_header(req, "allow", "POST");
            oauth_error(req, 405, "invalid_request", "use POST");
            return 1;
        }
        cors_any(req);
        if (p[7] == 't')
            handle_token(req);
        else if (p[9] == 'v')
            handle_revoke(req);
        else
            handle_register(req, oc);
        return 1;
    }
    if (path_eq(p, n, "/oauth/consent.css")) {
        hdr(req, "cache-control", "max-age=3600");
        hdr(req, "x-content-type-options", "nosniff");
        lg_respond_raw(req, 200, "text/css; charset=utf-8", lg__oauth_page_css, strlen(lg__oauth_page_css));
        return 1;
    }
    return 0; /* other /.well-known/ paths: the router's 404 */
not_allowed:
    lg_add_header(req, "allow", "GET");
    lg_respond_error(req, LG_EMETHOD, 405, NULL, NULL);
    return 1;
}

/* ---- /mcp bearer check ---- */

int lg__mcp_oauth_authenticate(h2o_req_t *req, const char *server, size_t len, char *key_id, size_t key_id_size)
{
    const lg_mcp_oauth_conf_t *oc = conf_of(req);
    if (!oauth_active(req, oc))
        return 0;
    size_t alen = 0;
    const char *authz = lg_req_header(req, "authorization", &alen);
    if (authz == NULL) {
        size_t xl;
        /* OAuth listener: a request without any credential is asked to authenticate, even on an open gateway */
        return lg_req_header(req, "x-api-key", &xl) != NULL || lg_req_header(req, "x-llmgate-internal", &xl) != NULL ? 0 : -1;
    }
    if (alen < 7 || strncasecmp(authz, "bearer ", 7) != 0)
        return 0;
    const char *tok = authz + 7;
    size_t tl = alen - 7;
    while (tl > 0 && *tok == ' ')
        ++tok, --tl;
    if (tl < sizeof(ACCESS_PREFIX) - 1 || memcmp(tok, ACCESS_PREFIX, sizeof(ACCESS_PREFIX) - 1) != 0)
        return 0; /* an API key (or garbage): the key hook decides */
    if (tl > 256)
        return -1;
    uint8_t h[32];
    lg_oauth_hash(tok, tl, h);
    char resource[RESOURCE_MAX], kid[LG_OAUTH_KEY_ID_MAX + 1];
    resource_of(oc, server, len, resource, sizeof(resource));
    int rc = lg__oauth_access_check(h, resource, now_s(), kid, NULL, 0);
    const char *why = NULL;
    if (rc != LG_OAUTH_OK) {
        LG_LOG(LG_LOG_DEBUG, "oauth", "401: access token %s",
               rc == LG_OAUTH_EXPIRED          ? "expired"
               : rc == LG_OAUTH_REVOKED        ? "revoked"
               : rc == LG_OAUTH_WRONG_AUDIENCE ? "issued for another resource"
                                               : "unknown");
        return -1;
    }
    if (!key_usable(kid, &why)) {
        LG_LOG(LG_LOG_DEBUG, "oauth", "401: %s", why);
        return -1;
    }
    snprintf(key_id, key_id_size, "%s", kid);
    return 1;
}

void lg__mcp_oauth_challenge(h2o_req_t *req, const char *server, size_t len)
{
    const lg_mcp_oauth_conf_t *oc = conf_of(req);
    if (!oauth_active(req, oc)) {
        lg_add_header(req, "www-authenticate", "Bearer realm=\"llmgate\"");
        return;
    }
    size_t al;
    int presented = lg_req_header(req, "authorization", &al) != NULL;
    char v[1024];
    snprintf(v, sizeof(v), "Bearer resource_metadata=\"%s/.well-known/oauth-protected-resource/mcp%s%.*s\", scope=\"%s\"%s",
             oc->issuer, len > 0 ? "/" : "", (int)len, server, SCOPE,
             presented ? ", error=\"invalid_token\", error_description=\"the access token is invalid, expired, revoked or for "
                         "another resource\""
                       : "");
    lg_add_header(req, "www-authenticate", v);
}

/* ---- lifecycle ---- */

int lg_mcp_oauth_init(const lg_config_t *conf, char *err, size_t errlen)
{
    static int done;
    if (!conf->mcp.oauth.enabled || done)
        return 0;
    if (lg__oauth_store_init(conf->store_path, conf->mcp.oauth.max_clients, now_s(), err, errlen) != 0)
        return -1;
    done = 1;
    if (conf->store_path == NULL)
        LG_LOG(LG_LOG_WARN, "oauth",
               "OAuth for /mcp is on without a store (\"store\": null): clients and tokens are kept in memory only, a restart "
               "signs every MCP client out");
    LG_LOG(LG_LOG_INFO, "oauth", "OAuth for /mcp: issuer %s, %s", conf->mcp.oauth.issuer,
           conf->mcp.oauth.listeners == NULL ? "on every listener" : "on the listeners in mcp.auth.listeners");
    return 0;
}

void lg_mcp_oauth_shutdown(void)
{
    lg__oauth_store_shutdown();
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the MCP OAuth building blocks (mcp/oauth_util.c) and state (mcp/oauth_store.c, memory-only and with
 * a SQLite store): PKCE S256 against RFC 7636's test vector, token minting and hashing, the form parser, redirect URI
 * rules and matching (RFC 8252 loopback ports), resource canonicalisation, client metadata validation, code expiry
 * and single use, refresh rotation with reuse detection, revocation, audience checks, persistence across re-init.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/util.h"
#include "mcp/oauth_store.h"
#include "mcp/oauth_util.h"

/* ---- PKCE ---- */

static void test_oauth_pkce_rfc7636_vector(void **state)
{
    (void)state;
    /* RFC 7636 Appendix B */
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const char *challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    assert_true(lg_oauth_pkce_verifier_valid(verifier, strlen(verifier)));
    assert_true(lg_oauth_pkce_challenge_valid(challenge));
    assert_true(lg_oauth_pkce_verify(verifier, strlen(verifier), challenge));
    /* one character off, either side */
    assert_false(lg_oauth_pkce_verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", 43, challenge));
    assert_false(lg_oauth_pkce_verify(verifier, strlen(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
    /* verifier rules: 43..128 unreserved characters */
    assert_false(lg_oauth_pkce_verifier_valid("short", 5));
    char v[130];
    memset(v, 'a', sizeof(v));
    assert_true(lg_oauth_pkce_verifier_valid(v, 128));
    assert_false(lg_oauth_pkce_verifier_valid(v, 129));
    v[10] = '+';
    assert_false(lg_oauth_pkce_verifier_valid(v, 50));
    /* the challenge is the S256 form only: 43 base64url characters, no padding */
    assert_false(lg_oauth_pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="));
    assert_false(lg_oauth_pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
    assert_false(lg_oauth_pkce_challenge_valid(NULL));
    /* "plain" would mean challenge == verifier: never accepted */
    assert_false(lg_oauth_pkce_verify(verifier, strlen(verifier), verifier));
}

/* ---- tokens and hashing ---- */

static void test_oauth_token_mint_and_hash(void **state)
{
    (void)state;
    char a[80], b[80];
    assert_int_equal(lg_oauth_token_mint("lgat_", a, sizeof(a)), 0);
    assert_int_equal(lg_oauth_token_mint("lgat_", b, sizeof(b)), 0);
    assert_int_equal(strlen(a), LG_OAUTH_TOKEN_LEN(5));
    assert_memory_equal(a, "lgat_", 5);
    assert_string_not_equal(a, b);
    for (const char *p = a + 5; *p != '\0'; ++p)
        assert_true((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
    char small[10];
    assert_int_equal(lg_oauth_token_mint("lgat_", small, sizeof(small)), -1);
    /* SHA-256("abc") */
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t h[32];
    lg_oauth_hash("abc", 3, h);
    assert_memory_equal(h, abc, 32);
    char enc[8];
    static const uint8_t two[2] = {0xfb, 0xff};
    assert_int_equal(lg_oauth_b64url(two, 2, enc), 3);
    assert_string_equal(enc, "-_8");
}

/* ---- forms ---- */

static void test_oauth_form_parse(void **state)
{
    (void)state;
    lg_oauth_form_t f;
    const char *s = "grant_type=authorization_code&code=a%2Bb+c&&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&empty=&flag";
    assert_int_equal(lg_oauth_form_parse(s, strlen(s), &f), 0);
    assert_string_equal(lg_oauth_form_get(&f, "grant_type"), "authorization_code");
    assert_string_equal(lg_oauth_form_get(&f, "code"), "a+b c");
    assert_string_equal(lg_oauth_form_get(&f, "redirect_uri"), "http://127.0.0.1/cb");
    assert_string_equal(lg_oauth_form_get(&f, "empty"), "");
    assert_string_equal(lg_oauth_form_get(&f, "flag"), "");
    assert_null(lg_oauth_form_get(&f, "missing"));
    assert_false(f.duplicate);
    lg_oauth_form_dispose(&f);
    /* duplicates are flagged (RFC 6749 §3.1), the first value kept */
    assert_int_equal(lg_oauth_form_parse("a=1&a=2", 7, &f), 0);
    assert_true(f.duplicate);
    assert_string_equal(lg_oauth_form_get(&f, "a"), "1");
    lg_oauth_form_dispose(&f);
    /* bad escapes, NUL bytes */
    assert_int_equal(lg_oauth_form_parse("a=%zz", 5, &f), -1);
    assert_int_equal(lg_oauth_form_parse("a=%4", 4, &f), -1);
    assert_int_equal(lg_oauth_form_parse("a=%00", 5, &f), -1);
    /* too many parameters */
    char many[1024] = "";
    for (int i = 0; i < LG_OAUTH_FORM_MAX_PARAMS + 1; ++i)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "p%d=1&", i);
    assert_int_equal(lg_oauth_form_parse(many, strlen(many), &f), -1);
    /* an over-long value */
    size_t n = LG_OAUTH_PARAM_MAX_BYTES + 10;
    char *big = malloc(n + 3);
    memcpy(big, "v=", 2);
    memset(big + 2, 'x', n);
    assert_int_equal(lg_oauth_form_parse(big, n + 2, &f), -1);
    free(big);
}

/* ---- redirect URIs ---- */

static void test_oauth_redirect_rules(void **state)
{
    (void)state;
    const char *why;
    assert_true(lg_oauth_redirect_uri_valid("https://claude.ai/api/mcp/auth_callback", &why));
    assert_true(lg_oauth_redirect_uri_valid("http://localhost:33418/oauth/callback", &why));
    assert_true(lg_oauth_redirect_uri_valid("http://127.0.0.1/cb", &why));
    assert_true(lg_oauth_redirect_uri_valid("http://[::1]:8080/cb", &why));
    assert_true(lg_oauth_redirect_uri_valid("cursor://anysphere.cursor-retrieval/oauth/callback", &why));
    assert_true(lg_oauth_redirect_uri_valid("com.example.app:/oauth2redirect", &why));
    assert_false(lg_oauth_redirect_uri_valid("http://example.com/cb", &why));
    assert_false(lg_oauth_redirect_uri_valid("http://127.0.0.1.evil.example/cb", &why));
    assert_false(lg_oauth_redirect_uri_valid("https://app.example/cb#frag", &why));
    assert_false(lg_oauth_redirect_uri_valid("https://user@app.example/cb", &why));
    assert_false(lg_oauth_redirect_uri_valid("javascript:alert(1)", &why));
    assert_false(lg_oauth_redirect_uri_valid("JavaScript:alert(1)", &why));
    assert_false(lg_oauth_redirect_uri_valid("data:text/html,x", &why));
    assert_false(lg_oauth_redirect_uri_valid("https:///nohost", &why));
    assert_false(lg_oauth_redirect_uri_valid("relative/path", &why));
    assert_false(lg_oauth_redirect_uri_valid("https://app.example/c b", &why));
    assert_false(lg_oauth_redirect_uri_valid("", &why));

    /* exact match, except the port of loopback http redirects */
    assert_true(lg_oauth_redirect_uri_matches("https://app.example/cb", "https://app.example/cb"));
    assert_false(lg_oauth_redirect_uri_matches("https://app.example/cb", "https://app.example/cb/"));
    assert_false(lg_oauth_redirect_uri_matches("https://app.example/cb", "https://APP.example/cb"));
    assert_false(lg_oauth_redirect_uri_matches("https://app.example/cb", "https://app.example:8443/cb"));
    assert_false(lg_oauth_redirect_uri_matches("https://app.example/cb", "https://app.example/cb?x=1"));
    assert_true(lg_oauth_redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
    assert_true(lg_oauth_redirect_uri_matches("http://127.0.0.1:3000/cb", "http://127.0.0.1:51234/cb"));
    assert_true(lg_oauth_redirect_uri_matches("http://localhost:3000/oauth/callback", "http://localhost:4000/oauth/callback"));
    assert_true(lg_oauth_redirect_uri_matches("http://[::1]/cb", "http://[::1]:9/cb"));
    assert_false(lg_oauth_redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb2"));
    assert_false(lg_oauth_redirect_uri_matches("http://127.0.0.1/cb", "http://localhost:51234/cb"));
    assert_false(lg_oauth_redirect_uri_matches("http://127.0.0.1/cb", "https://127.0.0.1:51234/cb"));
    assert_false(lg_oauth_redirect_uri_matches("http://127.0.0.1/cb?a=1", "http://127.0.0.1:5/cb?a=2"));
    assert_false(lg_oauth_redirect_uri_matches("https://app.example/cb", NULL));
}

static void test_oauth_resource_canonical(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(lg_oauth_resource_canonical("HTTPS://GW.Example.com:443/mcp/", out, sizeof(out)), 0);
    assert_string_equal(out, "https://gw.example.com/mcp");
    assert_int_equal(lg_oauth_resource_canonical("http://127.0.0.1:8080/mcp", out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:8080/mcp");
    assert_int_equal(lg_oauth_resource_canonical("http://h:80/mcp/vs", out, sizeof(out)), 0);
    assert_string_equal(out, "http://h/mcp/vs");
    assert_int_equal(lg_oauth_resource_canonical("https://gw/mcp?x=1", out, sizeof(out)), -1);
    assert_int_equal(lg_oauth_resource_canonical("https://gw/mcp#f", out, sizeof(out)), -1);
    assert_int_equal(lg_oauth_resource_canonical("ftp://gw/mcp", out, sizeof(out)), -1);
    assert_int_equal(lg_oauth_resource_canonical("https://gw/mcp", out, 5), -1);
}

/* ---- client metadata ---- */

static void test_oauth_client_metadata(void **state)
{
    (void)state;
    lg_oauth_client_t c;
    const char *error;
    char why[256];
    const char *dcr = "{\"redirect_uris\":[\"http://localhost:3334/oauth/callback\"],\"client_name\":\"MCP CLI\","
                      "\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\",\"refresh_token\"],"
                      "\"response_types\":[\"code\"],\"software_id\":\"ignored\"}";
    assert_int_equal(lg_oauth_client_parse(dcr, strlen(dcr), NULL, &c, &error, why, sizeof(why)), 0);
    assert_string_equal(c.client_name, "MCP CLI");
    assert_string_equal(c.redirect_uris[0], "http://localhost:3334/oauth/callback");
    assert_null(c.redirect_uris[1]);
    assert_int_equal(c.auth_method, LG_OAUTH_AUTH_NONE);
    assert_true(c.refresh_allowed);
    assert_true(lg_oauth_client_redirect_ok(&c, "http://localhost:49152/oauth/callback"));
    assert_false(lg_oauth_client_redirect_ok(&c, "http://localhost:49152/other"));
    lg_oauth_client_dispose(&c);

    const char *bad[][2] = {
        {"{\"redirect_uris\":[\"http://evil.example/cb\"]}", "invalid_redirect_uri"},
        {"{\"redirect_uris\":[]}", "invalid_redirect_uri"},
        {"{\"redirect_uris\":\"https://a.example/cb\"}", "invalid_redirect_uri"},
        {"{\"redirect_uris\":[42]}", "invalid_redirect_uri"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":[\"implicit\"]}", "invalid_client_metadata"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":[\"refresh_token\"]}", "invalid_client_metadata"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"response_types\":[\"code\",\"token\"]}", "invalid_client_metadata"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"bad\\u0001name\"}", "invalid_client_metadata"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"client_uri\":\"javascript:x\"}", "invalid_client_metadata"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"redirect_uris\":[\"https://b.example/cb\"]}", "invalid_client_metadata"},
        {"[1,2]", "invalid_client_metadata"},
        {"{", "invalid_client_metadata"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        assert_int_equal(lg_oauth_client_parse(bad[i][0], strlen(bad[i][0]), NULL, &c, &error, why, sizeof(why)), -1);
        assert_string_equal(error, bad[i][1]);
        assert_true(why[0] != '\0');
    }

    /* metadata documents: client_id must equal the URL, no shared secrets */
    const char *url = "https://app.example/oauth/client.json";
    const char *doc = "{\"client_id\":\"https://app.example/oauth/client.json\",\"client_name\":\"App\","
                      "\"redirect_uris\":[\"https://app.example/cb\"]}";
    assert_int_equal(lg_oauth_client_parse(doc, strlen(doc), url, &c, &error, why, sizeof(why)), 0);
    assert_true(c.is_metadata_document);
    assert_string_equal(c.client_id, url);
    lg_oauth_client_dispose(&c);
    assert_int_equal(lg_oauth_client_parse(doc, strlen(doc), "https://app.example/other.json", &c, &error, why, sizeof(why)), -1);
    const char *secret_doc =
        "{\"client_id\":\"https://app.example/oauth/client.json\",\"redirect_uris\":[\"https://app.example/cb\"],"
        "\"token_endpoint_auth_method\":\"client_secret_basic\"}";
    assert_int_equal(lg_oauth_client_parse(secret_doc, strlen(secret_doc), url, &c, &error, why, sizeof(why)), -1);
    char big[LG_OAUTH_CIMD_MAX_BYTES + 100];
    memset(big, ' ', sizeof(big));
    memcpy(big, doc, strlen(doc));
    assert_int_equal(lg_oauth_client_parse(big, sizeof(big), url, &c, &error, why, sizeof(why)), -1);

    assert_true(lg_oauth_client_id_is_url("https://app.example/client.json", 0));
    assert_false(lg_oauth_client_id_is_url("https://app.example/", 0));
    assert_false(lg_oauth_client_id_is_url("https://app.example", 0));
    assert_false(lg_oauth_client_id_is_url("http://127.0.0.1:8/c.json", 0));
    assert_true(lg_oauth_client_id_is_url("http://127.0.0.1:8/c.json", 1));
    assert_false(lg_oauth_client_id_is_url("http://example.com/c.json", 1));
    assert_false(lg_oauth_client_id_is_url("lgc_abc", 1));
}

static void test_oauth_html_escape(void **state)
{
    (void)state;
    lg_buf_t b;
    lg_buf_init(&b, 1024);
    assert_int_equal(lg_oauth_html_escape_append(&b, "<a href=\"x\">'&'</a>"), 0);
    lg_buf_append(&b, "", 1);
    assert_string_equal(b.data, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    lg_buf_dispose(&b);
}

/* ---- store ---- */

static lg_oauth_grant_t grant(const char *id, const char *key)
{
    lg_oauth_grant_t g;
    memset(&g, 0, sizeof(g));
    snprintf(g.grant_id, sizeof(g.grant_id), "%s", id);
    snprintf(g.key_id, sizeof(g.key_id), "%s", key);
    g.client_id = (char *)"lgc_client";
    g.resource = (char *)"https://gw/mcp";
    g.scope = (char *)"mcp";
    g.redirect_uri = (char *)"https://app/cb";
    g.code_challenge = (char *)"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    return g;
}

static void hash_of(const char *s, uint8_t h[32])
{
    lg_oauth_hash(s, strlen(s), h);
}

static void test_oauth_store_codes_single_use_and_expiry(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(lg__oauth_store_init(NULL, 10, 1000, err, sizeof(err)), 0);
    assert_false(lg__oauth_store_persistent());
    uint8_t h[32], h2[32];
    hash_of("lgac_one", h);
    hash_of("lgac_two", h2);
    lg_oauth_grant_t g = grant("gr_1", "key_a");
    g.expires_at = 1060;
    lg__oauth_code_put(h, &g, 1000);
    lg__oauth_code_put(h2, &g, 1000);
    lg_oauth_grant_t out;
    memset(&out, 0, sizeof(out));
    /* expired one second after its lifetime */
    assert_int_equal(lg__oauth_code_redeem(h2, 1061, &out), LG_OAUTH_EXPIRED);
    assert_int_equal(lg__oauth_code_redeem(h2, 1000, &out), LG_OAUTH_REUSED); /* an expired attempt burns it */
    /* redeemed once at the last valid second, then a replay */
    assert_int_equal(lg__oauth_code_redeem(h, 1060, &out), LG_OAUTH_OK);
    assert_string_equal(out.key_id, "key_a");
    assert_string_equal(out.redirect_uri, "https://app/cb");
    /* tokens issued from it, then the replay revokes them */
    uint8_t at[32];
    hash_of("lgat_x", at);
    out.expires_at = 5000;
    lg__oauth_token_put(at, LG_OAUTH_ACCESS, &out, 1000);
    char key_id[LG_OAUTH_KEY_ID_MAX + 1];
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp", 1001, key_id, NULL, 0), LG_OAUTH_OK);
    assert_string_equal(key_id, "key_a");
    lg_oauth_grant_dispose(&out);
    assert_int_equal(lg__oauth_code_redeem(h, 1001, &out), LG_OAUTH_REUSED);
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp", 1001, key_id, NULL, 0), LG_OAUTH_REVOKED);
    uint8_t nope[32];
    hash_of("lgac_nope", nope);
    assert_int_equal(lg__oauth_code_redeem(nope, 1001, &out), LG_OAUTH_NOT_FOUND);
    /* the sweep drops expired codes (every 30 s at most) */
    size_t ncodes;
    lg__oauth_store_counts(NULL, NULL, NULL, &ncodes, NULL);
    assert_int_equal(ncodes, 2);
    lg__oauth_code_put(nope, &g, 2000);
    lg__oauth_store_counts(NULL, NULL, NULL, &ncodes, NULL);
    assert_int_equal(ncodes, 1);
    lg__oauth_store_shutdown();
}

static void test_oauth_store_tokens(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(lg__oauth_store_init(NULL, 10, 1000, err, sizeof(err)), 0);
    lg_oauth_grant_t g = grant("gr_2", "key_b");
    uint8_t at[32], rt[32], rt2[32];
    hash_of("lgat_a", at);
    hash_of("lgrt_a", rt);
    hash_of("lgrt_b", rt2);
    g.expires_at = 1100;
    lg__oauth_token_put(at, LG_OAUTH_ACCESS, &g, 1000);
    g.expires_at = 9000;
    lg__oauth_token_put(rt, LG_OAUTH_REFRESH, &g, 1000);
    char key_id[LG_OAUTH_KEY_ID_MAX + 1], client[64];
    /* audience, expiry, kind */
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp/vs", 1001, key_id, NULL, 0), LG_OAUTH_WRONG_AUDIENCE);
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp", 1101, key_id, NULL, 0), LG_OAUTH_EXPIRED);
    assert_int_equal(lg__oauth_access_check(rt, "https://gw/mcp", 1001, key_id, NULL, 0), LG_OAUTH_NOT_FOUND);
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp", 1001, key_id, client, sizeof(client)), LG_OAUTH_OK);
    assert_string_equal(client, "lgc_client");
    /* refresh: wrong client, then use, then reuse revokes the family */
    lg_oauth_grant_t out;
    memset(&out, 0, sizeof(out));
    assert_int_equal(lg__oauth_refresh_use(rt, "lgc_other", 1001, &out), LG_OAUTH_WRONG_CLIENT);
    assert_int_equal(lg__oauth_refresh_use(at, "lgc_client", 1001, &out), LG_OAUTH_NOT_FOUND);
    assert_int_equal(lg__oauth_refresh_use(rt, "lgc_client", 1001, &out), LG_OAUTH_OK);
    out.expires_at = 9000;
    lg__oauth_token_put(rt2, LG_OAUTH_REFRESH, &out, 1001);
    lg_oauth_grant_dispose(&out);
    assert_int_equal(lg__oauth_refresh_use(rt, "lgc_client", 1002, &out), LG_OAUTH_REUSED);
    assert_int_equal(lg__oauth_refresh_use(rt2, "lgc_client", 1002, &out), LG_OAUTH_REVOKED);
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp", 1002, key_id, NULL, 0), LG_OAUTH_REVOKED);
    /* revocation: an access token alone */
    lg_oauth_grant_t g3 = grant("gr_3", "key_c");
    uint8_t at3[32], rt3[32];
    hash_of("lgat_3", at3);
    hash_of("lgrt_3", rt3);
    g3.expires_at = 9000;
    lg__oauth_token_put(at3, LG_OAUTH_ACCESS, &g3, 1000);
    lg__oauth_token_put(rt3, LG_OAUTH_REFRESH, &g3, 1000);
    assert_int_equal(lg__oauth_revoke(at3, "lgc_other"), LG_OAUTH_WRONG_CLIENT);
    assert_int_equal(lg__oauth_access_check(at3, "https://gw/mcp", 1002, key_id, NULL, 0), LG_OAUTH_OK);
    assert_int_equal(lg__oauth_revoke(at3, "lgc_client"), LG_OAUTH_OK);
    assert_int_equal(lg__oauth_access_check(at3, "https://gw/mcp", 1002, key_id, NULL, 0), LG_OAUTH_REVOKED);
    assert_int_equal(lg__oauth_refresh_use(rt3, "lgc_client", 1002, &out), LG_OAUTH_OK);
    lg_oauth_grant_dispose(&out);
    lg__oauth_store_shutdown();
}

static void test_oauth_store_clients_and_pending(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(lg__oauth_store_init(NULL, 2, 1000, err, sizeof(err)), 0);
    lg_oauth_client_t c;
    memset(&c, 0, sizeof(c));
    char *uris[] = {(char *)"https://a/cb", NULL};
    c.redirect_uris = uris;
    c.client_id = (char *)"lgc_1";
    c.issued_at = 1;
    assert_int_equal(lg__oauth_client_put(&c, 1000), LG_OAUTH_OK);
    c.client_id = (char *)"lgc_2";
    c.issued_at = 2;
    assert_int_equal(lg__oauth_client_put(&c, 1000), LG_OAUTH_OK);
    /* lgc_2 gets a token: it is in use; the cap evicts the oldest unused one (lgc_1) */
    lg_oauth_grant_t g = grant("gr_c", "key");
    g.client_id = (char *)"lgc_2";
    g.expires_at = 9000;
    uint8_t h[32];
    hash_of("lgat_c", h);
    lg__oauth_token_put(h, LG_OAUTH_ACCESS, &g, 1000);
    c.client_id = (char *)"lgc_3";
    c.issued_at = 3;
    assert_int_equal(lg__oauth_client_put(&c, 1000), LG_OAUTH_OK);
    lg_oauth_client_t out;
    assert_int_equal(lg__oauth_client_get("lgc_1", 1000, &out), LG_OAUTH_NOT_FOUND);
    assert_int_equal(lg__oauth_client_get("lgc_2", 1000, &out), LG_OAUTH_OK);
    assert_string_equal(out.redirect_uris[0], "https://a/cb");
    lg_oauth_client_dispose(&out);
    /* lgc_3 unused, lgc_2 used: lgc_3 goes next; with both used the cap holds */
    hash_of("lgat_c3", h);
    g.client_id = (char *)"lgc_3";
    lg__oauth_token_put(h, LG_OAUTH_ACCESS, &g, 1000);
    c.client_id = (char *)"lgc_4";
    assert_int_equal(lg__oauth_client_put(&c, 1000), LG_OAUTH_FULL);
    /* cached metadata documents expire */
    c.client_id = (char *)"https://app/c.json";
    c.is_metadata_document = 1;
    c.expires_at = 1600;
    assert_int_equal(lg__oauth_client_put(&c, 1000), LG_OAUTH_OK);
    assert_int_equal(lg__oauth_client_get("https://app/c.json", 1500, &out), LG_OAUTH_OK);
    lg_oauth_client_dispose(&out);
    assert_int_equal(lg__oauth_client_get("https://app/c.json", 1601, &out), LG_OAUTH_EXPIRED);

    /* consent transactions: expiry and the attempt limit */
    lg_oauth_pending_t p;
    memset(&p, 0, sizeof(p));
    snprintf(p.txn, sizeof(p.txn), "txn1");
    snprintf(p.csrf, sizeof(p.csrf), "csrf1");
    p.client_id = lg_strdup("lgc_2");
    p.expires_at = 1600;
    lg__oauth_pending_put(&p, 1000);
    lg_oauth_pending_t q;
    assert_int_equal(lg__oauth_pending_get("txn1", 1000, &q), LG_OAUTH_OK);
    assert_string_equal(q.csrf, "csrf1");
    lg_oauth_pending_dispose(&q);
    assert_int_equal(lg__oauth_pending_get("txn1", 1601, &q), LG_OAUTH_EXPIRED);
    assert_int_equal(lg__oauth_pending_fail("txn1", 3), 1);
    assert_int_equal(lg__oauth_pending_fail("txn1", 3), 2);
    assert_int_equal(lg__oauth_pending_fail("txn1", 3), 3);
    assert_int_equal(lg__oauth_pending_get("txn1", 1000, &q), LG_OAUTH_NOT_FOUND);
    lg__oauth_store_shutdown();
}

static void test_oauth_store_persists(void **state)
{
    (void)state;
    char dir[] = "/tmp/lg-oauth-XXXXXX", path[128], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/gw.db", dir);
    assert_int_equal(lg__oauth_store_init(path, 10, 1000, err, sizeof(err)), 0);
    assert_true(lg__oauth_store_persistent());
    lg_oauth_client_t c;
    memset(&c, 0, sizeof(c));
    char *uris[] = {(char *)"https://a/cb", (char *)"http://127.0.0.1/cb", NULL};
    c.redirect_uris = uris;
    c.client_id = (char *)"lgc_p";
    c.client_name = (char *)"Persisted";
    c.auth_method = LG_OAUTH_AUTH_SECRET_POST;
    hash_of("lgcs_secret", c.secret_hash);
    c.issued_at = 5;
    assert_int_equal(lg__oauth_client_put(&c, 1000), LG_OAUTH_OK);
    lg_oauth_grant_t g = grant("gr_p", "key_p");
    g.client_id = (char *)"lgc_p";
    uint8_t at[32], rt[32], old[32];
    hash_of("lgat_p", at);
    hash_of("lgrt_p", rt);
    hash_of("lgat_old", old);
    g.expires_at = 9000;
    lg__oauth_token_put(at, LG_OAUTH_ACCESS, &g, 1000);
    lg__oauth_token_put(rt, LG_OAUTH_REFRESH, &g, 1000);
    g.expires_at = 1001;
    lg__oauth_token_put(old, LG_OAUTH_ACCESS, &g, 1000);
    lg_oauth_grant_t out;
    assert_int_equal(lg__oauth_refresh_use(rt, "lgc_p", 1000, &out), LG_OAUTH_OK);
    lg_oauth_grant_dispose(&out);
    lg__oauth_store_flush();
    lg__oauth_store_shutdown();

    /* a new process: the state comes back (expired tokens are not loaded) */
    assert_int_equal(lg__oauth_store_init(path, 10, 2000, err, sizeof(err)), 0);
    lg_oauth_client_t got;
    assert_int_equal(lg__oauth_client_get("lgc_p", 2000, &got), LG_OAUTH_OK);
    assert_string_equal(got.client_name, "Persisted");
    assert_string_equal(got.redirect_uris[1], "http://127.0.0.1/cb");
    assert_int_equal(got.auth_method, LG_OAUTH_AUTH_SECRET_POST);
    assert_memory_equal(got.secret_hash, c.secret_hash, 32);
    lg_oauth_client_dispose(&got);
    char key_id[LG_OAUTH_KEY_ID_MAX + 1];
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp", 2000, key_id, NULL, 0), LG_OAUTH_OK);
    assert_string_equal(key_id, "key_p");
    assert_int_equal(lg__oauth_refresh_use(rt, "lgc_p", 2000, &out), LG_OAUTH_REUSED); /* the rotation was persisted */
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp", 2000, key_id, NULL, 0), LG_OAUTH_REVOKED);
    assert_int_equal(lg__oauth_access_check(old, "https://gw/mcp", 2000, key_id, NULL, 0), LG_OAUTH_NOT_FOUND);
    lg__oauth_store_flush();
    lg__oauth_store_shutdown();
    /* and the family revocation too */
    assert_int_equal(lg__oauth_store_init(path, 10, 2000, err, sizeof(err)), 0);
    assert_int_equal(lg__oauth_access_check(at, "https://gw/mcp", 2000, key_id, NULL, 0), LG_OAUTH_REVOKED);
    lg__oauth_store_shutdown();
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oauth_pkce_rfc7636_vector), cmocka_unit_test(test_oauth_token_mint_and_hash),
        cmocka_unit_test(test_oauth_form_parse),          cmocka_unit_test(test_oauth_redirect_rules),
        cmocka_unit_test(test_oauth_resource_canonical),  cmocka_unit_test(test_oauth_client_metadata),
        cmocka_unit_test(test_oauth_html_escape),         cmocka_unit_test(test_oauth_store_codes_single_use_and_expiry),
        cmocka_unit_test(test_oauth_store_tokens),        cmocka_unit_test(test_oauth_store_clients_and_pending),
        cmocka_unit_test(test_oauth_store_persists),
    };
    return cmocka_run_group_tests_name("mcp_oauth", tests, NULL, NULL);
}

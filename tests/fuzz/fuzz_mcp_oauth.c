/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the MCP OAuth parsers (mcp/oauth_util.c). Byte 0 picks the
 * parser; the rest is its input: a form / query string (token, consent and
 * authorization requests), a client registration request, a Client ID
 * Metadata Document, or a URI (redirect URI rules and loopback matching,
 * resource canonicalisation, client_id URL shape). Every outcome must be
 * self-consistent: parsed forms hold NUL-free strings within the caps, a
 * parsed client has 1..16 valid redirect URIs that match themselves, a
 * canonical resource is idempotent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/util.h"
#include "mcp/oauth_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_client(const lg_oauth_client_t *c, const char *url)
{
    size_t n = 0;
    const char *why;
    for (char **r = c->redirect_uris; r != NULL && *r != NULL; ++r, ++n)
        if (!lg_oauth_redirect_uri_valid(*r, &why) || !lg_oauth_redirect_uri_matches(*r, *r) || !lg_oauth_client_redirect_ok(c, *r))
            abort();
    if (n == 0 || n > LG_OAUTH_MAX_REDIRECT_URIS)
        abort();
    if (c->client_name != NULL && strlen(c->client_name) > LG_OAUTH_CLIENT_NAME_MAX)
        abort();
    if (url != NULL && (c->client_id == NULL || strcmp(c->client_id, url) != 0 || c->auth_method != LG_OAUTH_AUTH_NONE))
        abort();
    lg_buf_t b;
    lg_buf_init(&b, 1 << 20);
    if (c->client_name != NULL && (lg_oauth_html_escape_append(&b, c->client_name) != 0 || memchr(b.data, '<', b.len) != NULL))
        abort();
    lg_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 4;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char *s = malloc(n + 1);
    memcpy(s, in, n);
    s[n] = '\0';
    switch (mode) {
    case 0: {
        lg_oauth_form_t f;
        if (lg_oauth_form_parse(in, n, &f) == 0) {
            if (f.n > LG_OAUTH_FORM_MAX_PARAMS)
                abort();
            for (size_t i = 0; i < f.n; ++i)
                if (strlen(f.values[i]) > LG_OAUTH_PARAM_MAX_BYTES || lg_oauth_form_get(&f, f.names[i]) == NULL)
                    abort();
            lg_buf_t b;
            lg_buf_init(&b, 1 << 22);
            for (size_t i = 0; i < f.n; ++i)
                if (lg_oauth_urlencode_append(&b, f.values[i]) != 0)
                    abort();
            lg_buf_dispose(&b);
            lg_oauth_form_dispose(&f);
        }
        break;
    }
    case 1:
    case 2: {
        /* mode 2: a metadata document; its URL is the part before the first newline */
        const char *url = NULL, *json = in;
        size_t jl = n;
        char *nl = mode == 2 ? memchr(s, '\n', n) : NULL;
        if (nl != NULL) {
            *nl = '\0';
            url = s;
            json = in + (nl - s) + 1;
            jl = n - (size_t)(nl - s) - 1;
        } else if (mode == 2) {
            url = "https://app.example/client.json";
        }
        lg_oauth_client_t c;
        const char *error;
        char why[256];
        if (lg_oauth_client_parse(json, jl, url, &c, &error, why, sizeof(why)) == 0) {
            check_client(&c, url);
            lg_oauth_client_t copy;
            lg_oauth_client_copy(&copy, &c);
            check_client(&copy, url);
            lg_oauth_client_dispose(&copy);
            lg_oauth_client_dispose(&c);
        } else if (error == NULL || why[0] == '\0') {
            abort();
        }
        break;
    }
    default: {
        const char *why;
        char *nl = memchr(s, '\n', n);
        const char *other = s;
        if (nl != NULL) {
            *nl = '\0';
            other = nl + 1;
        }
        if (lg_oauth_redirect_uri_valid(s, &why) && !lg_oauth_redirect_uri_matches(s, s))
            abort();
        (void)lg_oauth_redirect_uri_matches(s, other);
        (void)lg_oauth_client_id_is_url(s, n & 1);
        char a[LG_OAUTH_URI_MAX_BYTES + 1], b[LG_OAUTH_URI_MAX_BYTES + 1];
        if (lg_oauth_resource_canonical(s, a, sizeof(a)) == 0) {
            if (lg_oauth_resource_canonical(a, b, sizeof(b)) != 0 || strcmp(a, b) != 0)
                abort();
        }
        lg_oauth_uri_t u;
        if (lg_oauth_uri_parse(s, &u) == 0 && (u.scheme_len == 0 || u.host_len > strlen(s)))
            abort();
        break;
    }
    }
    free(s);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The OAuth consent page and its stylesheet: static HTML with the request's
 * values HTML-escaped into it, no script at all (the page is served with a
 * CSP that forbids every script and inline style).
 */
#ifndef LG_MCP_OAUTH_PAGE_H
#define LG_MCP_OAUTH_PAGE_H

#include "core/util.h"

typedef struct lg_oauth_page_vars {
    const char *client_name;  /* shown as the requester; the client id when it has no name */
    const char *client_id;    /* shown in small print */
    const char *client_kind;  /* "registered on the fly", "metadata document at <host>" */
    const char *redirect_uri; /* where the browser goes afterwards */
    const char *resource;     /* the MCP endpoint the token is for */
    const char *txn, *csrf;   /* hidden form fields */
    const char *error;        /* message above the form, NULL = none */
    int admin_approval;       /* show the "key id" field for admin approval */
} lg_oauth_page_vars_t;

/** Render the consent page into b. Returns 0, or -1 if b's cap was hit. */
int lg__oauth_page_consent(lg_buf_t *b, const lg_oauth_page_vars_t *v);
/** Render a terminal error page ("this sign-in link is not valid: ...") into b. */
int lg__oauth_page_error(lg_buf_t *b, const char *title, const char *message);
/** The stylesheet served at /oauth/consent.css. */
extern const char lg__oauth_page_css[];

#endif

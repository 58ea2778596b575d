/* SPDX-License-Identifier: MIT */
/*
 * The dashboard: its static files under /dashboard, the browser session
 * that stands in for the admin key (/api/admin/session), the admin API's
 * authorisation rule (admin key as Bearer, or session cookie + CSRF token on
 * state-changing calls) and the admin JSON views the page reads.
 */
#ifndef LG_HTTP_DASHBOARD_H
#define LG_HTTP_DASHBOARD_H

#include <stddef.h>
#include <h2o.h>
#include "runtime/worker.h"

/** The CSRF header a session-authenticated POST/PATCH/DELETE must carry. */
#define LG_DASHBOARD_CSRF_HEADER "x-csrf-token"

/**
 * Load the page's files into memory (main thread, before the workers start): from $LLMGATE_UI_DIR, <exe dir>/ui,
 * <exe dir>/../ui, $LLMGATE_SOURCE_DIR/src/ui, then the installed share/llmgate/ui. Missing files are logged; the
 * dashboard then answers 503 saying where it looked.
 */
void lg_dashboard_load_assets(void);
/** GET/HEAD /dashboard and /dashboard/<file>; rest is what follows "/dashboard" ("" or "/app.js"). */
void lg_handle_dashboard(lg_worker_t *w, h2o_req_t *req, const char *rest, size_t len);
/** GET / and /ui: a redirect to /dashboard. */
void lg_handle_dashboard_redirect(h2o_req_t *req);

/** /api/admin/session: GET state, POST sign in with {"key": ...}, DELETE sign out. Needs no admin key. */
void lg__dashboard_session(lg_worker_t *w, h2o_req_t *req);
/**
 * The admin API's gate: 1 if req carries the admin key as Bearer, or a live session cookie (plus the CSRF header when
 * the method changes state); else responds (401 without credentials, 403 without a valid CSRF token) and returns 0.
 */
int lg__admin_authorized(lg_worker_t *w, h2o_req_t *req);
/** Admin JSON views added for the dashboard (status, timeseries, models, generations, mcp). 1 if handled. */
int lg__admin_views(lg_worker_t *w, h2o_req_t *req, const char *rest, size_t len);

#endif

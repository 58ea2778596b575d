/* SPDX-License-Identifier: MIT */
/*
 * The model catalog in OpenRouter's published schema, field for field (Model, PublicEndpoint, Provider): GET /v1/models
 * with its query filters and pagination envelope, /v1/models/count, /v1/model/{author}/{slug} (OpenRouter's SDK),
 * /v1/models/{author}/{slug} (the OpenAI SDK's models.retrieve), /v1/models/{author}/{slug}/endpoints and
 * /v1/providers. Members we have no value for are sent as null, never left out.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/catalog_json.h"
#include "core/util.h"
#include "http/handlers.h"
#include "http/respond.h"

#define DEFAULT_PAGE 500 /* OpenRouter's default `limit` when paging */
#define MAX_PAGE 1000
#define MAX_QUERY_VALUE 512
#define MAX_FILTER_ITEMS 16

/* ---- query strings ---- */

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/** Decoded value of query parameter name into out (percent-decoding, '+' = space). 1 found, 0 absent, -1 too long/bad. */
static int query_get(h2o_req_t *req, const char *name, char *out, size_t cap)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq != NULL ? eq : pe;
        if ((size_t)(ke - q) == nl && memcmp(q, name, nl) == 0) {
            size_t n = 0;
            for (const char *p = eq != NULL ? eq + 1 : pe; p < pe; ++p) {
                int c = (unsigned char)*p;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (pe - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0)
                        return -1;
                    c = hexval(p[1]) * 16 + hexval(p[2]);
                    p += 2;
                }
                if (n + 1 >= cap || c == 0)
                    return -1;
                out[n++] = (char)c;
            }
            out[n] = '\0';
            return 1;
        }
        q = pe + 1;
    }
    return 0;
}

/** Splits a comma list in place into items[] (trimmed, empty items dropped). Returns the count, or -1 over the cap. */
static int split_list(char *s, char *items[MAX_FILTER_ITEMS])
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok != NULL; tok = strtok(NULL, ",")) {
        while (*tok == ' ')
            ++tok;
        size_t l = strlen(tok);
        while (l > 0 && tok[l - 1] == ' ')
            tok[--l] = '\0';
        if (l == 0)
            continue;
        if (n == MAX_FILTER_ITEMS)
            return -1;
        items[n++] = tok;
    }
    return n;
}

/** The filters of GET /models that llmgate honours (OpenRouter's names); unknown parameters are ignored. */
struct model_filter {
    char out_buf[MAX_QUERY_VALUE], in_buf[MAX_QUERY_VALUE], params_buf[MAX_QUERY_VALUE], prov_buf[MAX_QUERY_VALUE],
        authors_buf[MAX_QUERY_VALUE], q[MAX_QUERY_VALUE];
    char *out[MAX_FILTER_ITEMS], *in[MAX_FILTER_ITEMS], *params[MAX_FILTER_ITEMS], *prov[MAX_FILTER_ITEMS],
        *authors[MAX_FILTER_ITEMS];
    int n_out, n_in, n_params, n_prov, n_authors; /* n_out = -1: output_modalities=all */
    int has_q;
    int64_t min_ctx;
    double min_price, max_price, min_out_price, max_out_price; /* USD per million tokens, <0 = unset */
    enum { SORT_NONE, SORT_NEWEST, SORT_PRICE_LOW, SORT_PRICE_HIGH, SORT_CONTEXT_HIGH } sort;
    int paged;
    int64_t offset, limit;
};

/** Parses a list parameter; responds 400 and returns -1 on bad input. */
static int list_param(h2o_req_t *req, const char *name, char *buf, char *items[], int *n)
{
    int rc = query_get(req, name, buf, MAX_QUERY_VALUE);
    *n = 0;
    if (rc == 0)
        return 0;
    if (rc < 0 || (*n = split_list(buf, items)) < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s: expected a comma-separated list of at most %d names", name, MAX_FILTER_ITEMS);
        lg_respond_error(req, LG_EINVAL, 400, msg, json_pack("{s:s}", "param", name));
        return -1;
    }
    return 1;
}

static int number_param(h2o_req_t *req, const char *name, double *out, int integer, double lo, double hi)
{
    char buf[64];
    int rc = query_get(req, name, buf, sizeof(buf));
    if (rc == 0)
        return 0;
    char *end = NULL;
    double v = rc > 0 ? strtod(buf, &end) : 0;
    if (rc < 0 || end == buf || *end != '\0' || v < lo || v > hi || (integer && v != (double)(int64_t)v)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s: expected %s between %g and %g", name, integer ? "an integer" : "a number", lo, hi);
        lg_respond_error(req, LG_EINVAL, 400, msg, json_pack("{s:s}", "param", name));
        return -1;
    }
    *out = v;
    return 1;
}

static int parse_filter(h2o_req_t *req, struct model_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->min_price = f->max_price = f->min_out_price = f->max_out_price = -1;
    int rc = list_param(req, "output_modalities", f->out_buf, f->out, &f->n_out);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        /* OpenRouter's default: text models only */
        snprintf(f->out_buf, sizeof(f->out_buf), "text");
        f->out[0] = f->out_buf;
        f->n_out = 1;
    } else if (f->n_out == 1 && strcmp(f->out[0], "all") == 0) {
        f->n_out = -1;
    }
    if (list_param(req, "input_modalities", f->in_buf, f->in, &f->n_in) < 0 ||
        list_param(req, "supported_parameters", f->params_buf, f->params, &f->n_params) < 0 ||
        list_param(req, "providers", f->prov_buf, f->prov, &f->n_prov) < 0 ||
        list_param(req, "model_authors", f->authors_buf, f->authors, &f->n_authors) < 0)
        return -1;
    rc = query_get(req, "q", f->q, sizeof(f->q));
    if (rc < 0) {
        lg_respond_error(req, LG_EINVAL, 400, "q: search text too long", json_pack("{s:s}", "param", "q"));
        return -1;
    }
    f->has_q = rc > 0 && f->q[0] != '\0';
    double v = 0;
    if ((rc = number_param(req, "context", &v, 1, 0, 1e12)) < 0)
        return -1;
    f->min_ctx = rc > 0 ? (int64_t)v : 0;
    if (number_param(req, "min_price", &f->min_price, 0, 0, 1e9) < 0 ||
        number_param(req, "max_price", &f->max_price, 0, 0, 1e9) < 0 ||
        number_param(req, "min_output_price", &f->min_out_price, 0, 0, 1e9) < 0 ||
        number_param(req, "max_output_price", &f->max_out_price, 0, 0, 1e9) < 0)
        return -1;
    char sort[48];
    rc = query_get(req, "sort", sort, sizeof(sort));
    if (rc > 0) {
        static const struct {
            const char *name;
            int sort;
        } sorts[] = {{"newest", SORT_NEWEST},
                     {"pricing-low-to-high", SORT_PRICE_LOW},
                     {"pricing-high-to-low", SORT_PRICE_HIGH},
                     {"context-high-to-low", SORT_CONTEXT_HIGH}};
        for (size_t i = 0; i < sizeof(sorts) / sizeof(sorts[0]); ++i)
            if (strcmp(sort, sorts[i].name) == 0)
                f->sort = sorts[i].sort;
        if (f->sort == SORT_NONE) {
            lg_respond_error(req, LG_EINVAL, 400,
                             "sort: expected newest, pricing-low-to-high, pricing-high-to-low or context-high-to-low",
                             json_pack("{s:s}", "param", "sort"));
            return -1;
        }
    } else if (rc < 0) {
        lg_respond_error(req, LG_EINVAL, 400, "sort: value too long", json_pack("{s:s}", "param", "sort"));
        return -1;
    }
    int has_off = number_param(req, "offset", &v, 1, 0, 1e9);
    if (has_off < 0)
        return -1;
    f->offset = has_off > 0 ? (int64_t)v : 0;
    int has_lim = number_param(req, "limit", &v, 1, 1, MAX_PAGE);
    if (has_lim < 0)
        return -1;
    f->limit = has_lim > 0 ? (int64_t)v : DEFAULT_PAGE;
    f->paged = has_off > 0 || has_lim > 0;
    return 0;
}

static int ci_contains(const char *hay, const char *needle)
{
    if (hay == NULL)
        return 0;
    size_t n = strlen(needle);
    for (; *hay != '\0'; ++hay) {
        size_t i = 0;
        while (i < n && hay[i] != '\0' && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            ++i;
        if (i == n)
            return 1;
    }
    return 0;
}

static int any_in(char *const *list, char *const *want, int n)
{
    for (int i = 0; i < n; ++i)
        if (lg_catalog_list_has(list, want[i], strlen(want[i])))
            return 1;
    return 0;
}

/** Price in pico-USD per token as USD per million tokens. */
static double per_million(int64_t pico)
{
    return (double)pico / 1e6;
}

static int model_matches(const lg_snapshot_t *s, size_t mi, const struct model_filter *f)
{
    const lg_model_conf_t *m = &s->conf->models[mi];
    lg_catalog_summary_t sum;
    if (lg_catalog_summarize(s, m, &sum) == NULL)
        return 0;
    if (f->n_out > 0 && !any_in(m->output_modalities, f->out, f->n_out))
        return 0;
    if (f->n_in > 0 && !any_in(m->input_modalities, f->in, f->n_in))
        return 0;
    char *const *params = lg_catalog_endpoint_params(m, sum.best);
    for (int i = 0; i < f->n_params; ++i)
        if (!lg_catalog_list_has(params, f->params[i], strlen(f->params[i])))
            return 0;
    if (f->n_prov > 0) {
        int served = 0;
        for (size_t ei = 0; ei < m->num_endpoints && !served; ++ei)
            for (int i = 0; i < f->n_prov && !served; ++i)
                served = lg_catalog_endpoint_routable(s, &m->endpoints[ei]) &&
                         strcmp(s->conf->providers[m->endpoints[ei].provider_index].name, f->prov[i]) == 0;
        if (!served)
            return 0;
    }
    if (f->n_authors > 0) {
        const char *slash = strchr(m->id, '/');
        size_t al = slash != NULL ? (size_t)(slash - m->id) : strlen(m->id);
        int ok = 0;
        for (int i = 0; i < f->n_authors && !ok; ++i)
            ok = strlen(f->authors[i]) == al && memcmp(f->authors[i], m->id, al) == 0;
        if (!ok)
            return 0;
    }
    if (f->has_q && !ci_contains(m->id, f->q) && !ci_contains(m->name, f->q) && !ci_contains(m->description, f->q))
        return 0;
    if (f->min_ctx > 0 && (int64_t)sum.max_ctx < f->min_ctx)
        return 0;
    double pp = per_million(sum.best->price.prompt), cp = per_million(sum.best->price.completion);
    if ((f->min_price >= 0 && pp < f->min_price) || (f->max_price >= 0 && pp > f->max_price) ||
        (f->min_out_price >= 0 && cp < f->min_out_price) || (f->max_out_price >= 0 && cp > f->max_out_price))
        return 0;
    return 1;
}

/* qsort has no context argument: the sort runs on the worker's own thread, so a thread-local is safe */
static _Thread_local const lg_snapshot_t *sort_snap;
static _Thread_local int sort_kind;

static int cmp_models(const void *a, const void *b)
{
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    const lg_model_conf_t *ma = &sort_snap->conf->models[ia], *mb = &sort_snap->conf->models[ib];
    lg_catalog_summary_t sa, sb;
    lg_catalog_summarize(sort_snap, ma, &sa);
    lg_catalog_summarize(sort_snap, mb, &sb);
    int64_t d = 0;
    switch (sort_kind) {
    case SORT_NEWEST:
        d = mb->created - ma->created;
        break;
    case SORT_PRICE_LOW:
        d = (sa.best->price.prompt + sa.best->price.completion) - (sb.best->price.prompt + sb.best->price.completion);
        break;
    case SORT_PRICE_HIGH:
        d = (sb.best->price.prompt + sb.best->price.completion) - (sa.best->price.prompt + sa.best->price.completion);
        break;
    case SORT_CONTEXT_HIGH:
        d = (int64_t)sb.max_ctx - (int64_t)sa.max_ctx;
        break;
    }
    if (d != 0)
        return d < 0 ? -1 : 1;
    return strcmp(ma->id, mb->id); /* stable, deterministic order */
}

/** Indices of the matching models in catalog order (or the requested sort); caller frees. */
static size_t *matching_models(const lg_snapshot_t *s, const struct model_filter *f, size_t *count)
{
    size_t *idx = lg_malloc((s->conf->num_models + 1) * sizeof(*idx));
    size_t n = 0;
    for (size_t mi = 0; mi < s->conf->num_models; ++mi)
        if (model_matches(s, mi, f))
            idx[n++] = mi;
    if (f->sort != SORT_NONE && n > 1) {
        sort_snap = s;
        sort_kind = (int)f->sort;
        qsort(idx, n, sizeof(*idx), cmp_models);
    }
    *count = n;
    return idx;
}

/** The same path and query with offset replaced by next (OpenRouter's links.next). */
static json_t *next_link(h2o_req_t *req, int64_t next)
{
    lg_buf_t b;
    lg_buf_init(&b, req->path.len + 32);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    lg_buf_append(&b, req->path.base, path_len);
    char off[48];
    snprintf(off, sizeof(off), "offset=%lld", (long long)next);
    int first = 1;
    if (req->query_at != SIZE_MAX) {
        const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
        while (q < end) {
            const char *amp = memchr(q, '&', (size_t)(end - q));
            const char *pe = amp != NULL ? amp : end;
            int is_offset = (pe - q >= 6 && memcmp(q, "offset", 6) == 0 && (pe - q == 6 || q[6] == '='));
            if (!is_offset && pe > q) {
                lg_buf_append(&b, first ? "?" : "&", 1);
                lg_buf_append(&b, q, (size_t)(pe - q));
                first = 0;
            }
            q = pe + 1;
        }
    }
    lg_buf_append(&b, first ? "?" : "&", 1);
    lg_buf_append(&b, off, strlen(off));
    json_t *s = json_stringn(b.data, b.len);
    lg_buf_dispose(&b);
    return s;
}

/* ---- routes ---- */

void lg_handle_models(lg_worker_t *w, h2o_req_t *req)
{
    const lg_snapshot_t *snap = w->rt->snap;
    struct model_filter f;
    if (parse_filter(req, &f) != 0)
        return;
    size_t n = 0;
    size_t *idx = matching_models(snap, &f, &n);
    size_t from = f.paged ? (size_t)f.offset : 0;
    size_t to = f.paged ? from + (size_t)f.limit : n;
    if (to > n)
        to = n;
    json_t *data = json_array();
    for (size_t i = from; i < to; ++i)
        json_array_append_new(data, lg_catalog_model_json(snap, idx[i]));
    free(idx);
    json_t *next = f.paged && to < n ? next_link(req, (int64_t)to) : json_null();
    lg_respond_json(
        req, 200,
        json_pack("{s:s,s:o,s:I,s:{s:o}}", "object", "list", "data", data, "total_count", (json_int_t)n, "links", "next", next));
}

void lg_handle_models_count(lg_worker_t *w, h2o_req_t *req)
{
    struct model_filter f;
    if (parse_filter(req, &f) != 0)
        return;
    size_t n = 0;
    free(matching_models(w->rt->snap, &f, &n));
    lg_respond_json(req, 200, json_pack("{s:{s:I}}", "data", "count", (json_int_t)n));
}

/** Catalog index of "author/slug" (a variant suffix such as ":nitro" is stripped), or -1 after a 404 response. */
static long find_model_or_404(const lg_snapshot_t *snap, h2o_req_t *req, const char *id, size_t len)
{
    long mi = lg_snapshot_find_model(snap, id, len);
    if (mi < 0) {
        const char *colon = memchr(id, ':', len);
        if (colon != NULL)
            mi = lg_snapshot_find_model(snap, id, (size_t)(colon - id));
    }
    if (mi >= 0) {
        lg_catalog_summary_t sum;
        if (lg_catalog_summarize(snap, &snap->conf->models[mi], &sum) != NULL)
            return mi;
    }
    char msg[300];
    snprintf(msg, sizeof(msg), "%.*s is not a valid model ID", (int)(len > 200 ? 200 : len), id);
    lg_respond_error(req, LG_EMODEL, 404, msg, NULL);
    return -1;
}

void lg_handle_model_get(lg_worker_t *w, h2o_req_t *req, const char *id, size_t len, int openai_shape)
{
    const lg_snapshot_t *snap = w->rt->snap;
    long mi = find_model_or_404(snap, req, id, len);
    if (mi < 0)
        return;
    json_t *model = lg_catalog_model_json(snap, (size_t)mi);
    if (!openai_shape) {
        lg_respond_json(req, 200, json_pack("{s:o}", "data", model));
        return;
    }
    /* the OpenAI SDK's models.retrieve reads the object itself: OpenAI's members beside OpenRouter's */
    const char *slash = strchr(snap->conf->models[mi].id, '/');
    const char *id0 = snap->conf->models[mi].id;
    json_object_set_new(model, "object", json_string("model"));
    json_object_set_new(model, "owned_by", slash != NULL ? json_stringn(id0, (size_t)(slash - id0)) : json_string("llmgate"));
    lg_respond_json(req, 200, model);
}

void lg_handle_model_endpoints(lg_worker_t *w, h2o_req_t *req, const char *model_id, size_t len)
{
    const lg_snapshot_t *snap = w->rt->snap;
    long mi = find_model_or_404(snap, req, model_id, len);
    if (mi < 0)
        return;
    const lg_model_conf_t *m = &snap->conf->models[mi];
    int64_t now = lg_now_ms();
    json_t *eps = json_array();
    for (size_t ei = 0; ei < m->num_endpoints; ++ei)
        if (lg_catalog_endpoint_routable(snap, &m->endpoints[ei]))
            json_array_append_new(eps, lg_catalog_endpoint_json(snap, (size_t)mi, ei, now));
    lg_respond_json(req, 200,
                    json_pack("{s:{s:s,s:s,s:I,s:s,s:o,s:o}}", "data", "id", m->id, "name", m->name != NULL ? m->name : m->id,
                              "created", (json_int_t)m->created, "description", m->description != NULL ? m->description : "",
                              "architecture", lg_catalog_architecture_json(m), "endpoints", eps));
}

void lg_handle_providers(lg_worker_t *w, h2o_req_t *req)
{
    const lg_config_t *conf = w->rt->snap->conf;
    json_t *data = json_array();
    for (size_t pi = 0; pi < conf->num_providers; ++pi) {
        const lg_provider_conf_t *p = &conf->providers[pi];
        if (!p->enabled)
            continue;
        /* the policy and status pages of a self-hosted provider are the operator's to know: null, as the schema
         * allows */
        json_array_append_new(data,
                              json_pack("{s:s,s:s,s:n,s:n,s:n,s:n,s:n}", "name", p->name, "slug", p->name, "privacy_policy_url",
                                        "terms_of_service_url", "status_page_url", "headquarters", "datacenters"));
    }
    lg_respond_json(req, 200, json_pack("{s:o}", "data", data));
}

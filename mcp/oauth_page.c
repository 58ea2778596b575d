/* SPDX-License-Identifier: MIT */
/*
 * Consent and error pages of the MCP OAuth server (see oauth_page.h). The
 * templates are fixed text; every value from the request or the client's
 * metadata goes through lg_oauth_html_escape_append.
 */
#include <string.h>
#include "mcp/oauth_page.h"
#include "mcp/oauth_util.h"

const char lg__oauth_page_css[] =
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\n"
    "main{max-width:30rem;margin:3rem auto;background:#fff;border-radius:10px;padding:2rem;"
    "box-shadow:0 1px 4px rgba(0,0,0,.12)}\n"
    "h1{font-size:1.3rem;margin:0 0 1rem}\n"
    "dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem;font-size:.9rem;margin:0 0 1.2rem}\n"
    "dt{color:#5b6475}dd{margin:0;word-break:break-all}\n"
    "label{display:block;font-weight:600;margin:.8rem 0 .3rem}\n"
    "input[type=password],input[type=text]{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #b8bfcc;"
    "border-radius:6px;font:inherit}\n"
    ".hint{font-size:.8rem;color:#5b6475;margin:.3rem 0 0}\n"
    ".error{background:#fde8e8;color:#8a1c1c;border-radius:6px;padding:.6rem .8rem;margin:0 0 1rem}\n"
    ".buttons{display:flex;gap:.8rem;margin-top:1.4rem}\n"
    "button{flex:1;padding:.6rem;border-radius:6px;border:1px solid #2456d6;font:inherit;cursor:pointer}\n"
    "button.approve{background:#2456d6;color:#fff}button.deny{background:#fff;color:#2456d6}\n"
    "details{margin-top:1rem;font-size:.9rem}\n";

#define PUT(s)                                                                                                                     \
    do {                                                                                                                           \
        if (lg_buf_append(b, (s), strlen(s)) != 0)                                                                                 \
            return -1;                                                                                                             \
    } while (0)
#define ESC(s)                                                                                                                     \
    do {                                                                                                                           \
        if (lg_oauth_html_escape_append(b, (s) != NULL ? (s) : "") != 0)                                                           \
            return -1;                                                                                                             \
    } while (0)

static int head(lg_buf_t *b, const char *title)
{
    PUT("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<meta name=\"referrer\" content=\"same-origin\"><title>");
    ESC(title);
    PUT("</title><link rel=\"stylesheet\" href=\"/oauth/consent.css\"></head><body><main>\n");
    return 0;
}

int lg__oauth_page_consent(lg_buf_t *b, const lg_oauth_page_vars_t *v)
{
    if (head(b, "Connect to llmgate") != 0)
        return -1;
    PUT("<h1>Connect <strong>");
    ESC(v->client_name);
    PUT("</strong> to llmgate</h1>\n");
    if (v->error != NULL) {
        PUT("<p class=\"error\" role=\"alert\">");
        ESC(v->error);
        PUT("</p>\n");
    }
    PUT("<p>This application asks to use the llmgate MCP tools with the limits and permissions of an llmgate API key.</p>\n"
        "<dl><dt>Application</dt><dd>");
    ESC(v->client_name);
    PUT("</dd><dt>Client</dt><dd>");
    ESC(v->client_id);
    PUT(" (");
    ESC(v->client_kind);
    PUT(")</dd><dt>Returns to</dt><dd>");
    ESC(v->redirect_uri);
    PUT("</dd><dt>Access to</dt><dd>");
    ESC(v->resource);
    PUT("</dd></dl>\n<form method=\"post\" action=\"/oauth/authorize\" autocomplete=\"off\">\n"
        "<input type=\"hidden\" name=\"txn\" value=\"");
    ESC(v->txn);
    PUT("\"><input type=\"hidden\" name=\"csrf\" value=\"");
    ESC(v->csrf);
    PUT("\">\n<label for=\"api_key\">llmgate API key</label>\n"
        "<input type=\"password\" id=\"api_key\" name=\"api_key\" autocomplete=\"off\" spellcheck=\"false\">\n"
        "<p class=\"hint\">The application never sees this key. It gets its own token, bound to the key: the key's limits, "
        "model and tool allow-lists and metering apply, and the token stops working when the key is disabled or deleted.</p>\n");
    if (v->admin_approval)
        PUT("<details><summary>Approve as the administrator</summary>\n"
            "<p class=\"hint\">Paste the admin key above and name the API key the token is bound to.</p>\n"
            "<label for=\"key_id\">Key id</label><input type=\"text\" id=\"key_id\" name=\"key_id\" placeholder=\"key_...\" "
            "spellcheck=\"false\"></details>\n");
    PUT("<div class=\"buttons\"><button class=\"approve\" type=\"submit\" name=\"action\" value=\"approve\">Allow</button>"
        "<button class=\"deny\" type=\"submit\" name=\"action\" value=\"deny\">Deny</button></div>\n"
        "</form></main></body></html>\n");
    return 0;
}

int lg__oauth_page_error(lg_buf_t *b, const char *title, const char *message)
{
    if (head(b, title) != 0)
        return -1;
    PUT("<h1>");
    ESC(title);
    PUT("</h1>\n<p class=\"error\">");
    ESC(message);
    PUT("</p>\n<p>Start the connection again from your application.</p></main></body></html>\n");
    return 0;
}

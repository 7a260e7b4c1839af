/*
 * The /dashboard endpoints: the login form and its session cookie on the
 * loop; the page and its data on the worker thread, which reads the
 * ledger (through the daily rollup) and builds the same HTML `tollgate
 * report --format html` writes. Budgets are in memory on the loop, so
 * they are read there and handed to the job.
 */
#include "dashboard/dashboard.h"

#include "auth/auth.h"
#include "budget/budget.h"
#include "proxy/policy.h"
#include "report/report.h"
#include "util/arena.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define FORM_MAX 4096
/* The rollup takes rows in when this many wait, so a page stays fast. */
#define ROLLUP_MIN_NEW 50000
#define DEFAULT_SINCE "30d"

static const char page_csp[] =
    "default-src 'none'; script-src 'unsafe-inline'; style-src "
    "'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'";

static const unsigned char *session_key(void)
{
    static unsigned char key[DASHBOARD_KEY_BYTES];
    static bool ready;

    while (!ready) {
        if (getrandom(key, sizeof(key), 0) == (ssize_t)sizeof(key))
            ready = true;
    }
    return key;
}

static void add_header(struct evhttp_request *req, const char *name,
                       const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), name, value);
}

static void reply(struct evhttp_request *req, int status, const char *type,
                  const char *body, size_t len)
{
    struct evbuffer *out = evbuffer_new();

    if (out == NULL)
        die_oom();
    evbuffer_add(out, body, len);
    add_header(req, "Content-Type", type);
    add_header(req, "Cache-Control", "no-store");
    add_header(req, "X-Content-Type-Options", "nosniff");
    add_header(req, "X-Frame-Options", "DENY");
    add_header(req, "Referrer-Policy", "no-referrer");
    add_header(req, "Content-Security-Policy", page_csp);
    evhttp_send_reply(req, status,
                      status == 200   ? "OK"
                      : status == 303 ? "See Other"
                      : status == 401 ? "Unauthorized"
                                      : "Error",
                      out);
    evbuffer_free(out);
}

/* ---- logging in ---- */

static void send_login(struct evhttp_request *req, int status,
                       const char *message)
{
    char *page = NULL;
    int n = asprintf(
        &page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
        "\n<title>Tollgate dashboard: log in</title>\n<style>body{font:15px "
        "system-ui,sans-serif;background:#f8fafc;display:grid;"
        "place-items:center;height:100vh;margin:0}form{background:#fff;"
        "border:1px solid #e5e7eb;border-radius:8px;padding:24px;"
        "display:grid;gap:12px;width:320px}.error{color:#b91c1c}</style>\n"
        "</head>\n<body>\n<form method=\"post\" action=\"/dashboard/login\">"
        "\n<h1>Tollgate</h1>\n<label for=\"key\">Admin key</label>\n<input "
        "id=\"key\" type=\"password\" name=\"key\" "
        "autocomplete=\"current-password\" required autofocus>\n<button "
        "type=\"submit\">Log in</button>\n<p class=\"error\">%s</p>\n</form>"
        "\n</body>\n</html>\n",
        message);

    if (n < 0)
        die_oom();
    reply(req, status, "text/html; charset=utf-8", page, (size_t)n);
    free(page);
}

static bool has_session(gateway_t *gw, struct evhttp_request *req)
{
    const char *cookie =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    char token[DASHBOARD_TOKEN_MAX];

    return cookie != NULL &&
           dashboard_cookie_get(cookie, DASHBOARD_COOKIE, token,
                                sizeof(token)) &&
           dashboard_session_check(session_key(), token, clock_now_ms());
}

/* The admin key from a urlencoded form body, compared in constant time. */
static bool form_has_admin_key(const config_t *cfg, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char body[FORM_MAX];
    struct evkeyvalq fields;
    const char *key;
    bool ok = false;

    if (cfg->admin_key == NULL || len >= sizeof(body))
        return false;
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    if (evhttp_parse_query_str(body, &fields) < 0)
        return false;
    key = evhttp_find_header(&fields, "key");
    if (key != NULL && strlen(key) == strlen(cfg->admin_key))
        ok = CRYPTO_memcmp(key, cfg->admin_key, strlen(key)) == 0;
    evhttp_clear_headers(&fields);
    return ok;
}

static void redirect(struct evhttp_request *req, const char *cookie)
{
    if (cookie != NULL)
        add_header(req, "Set-Cookie", cookie);
    add_header(req, "Location", "/dashboard");
    reply(req, 303, "text/plain; charset=utf-8", "", 0);
}

static void login(gateway_t *gw, struct evhttp_request *req)
{
    char token[DASHBOARD_TOKEN_MAX];
    char cookie[DASHBOARD_TOKEN_MAX + 128];

    if (gw->config->admin_key == NULL) {
        send_login(req, 403,
                   "This gateway has no admin key: set admin_key_env in "
                   "its config.");
        return;
    }
    if (!form_has_admin_key(gw->config, req)) {
        log_warn("dashboard: a login with a wrong admin key");
        send_login(req, 401, "That is not this gateway's admin key.");
        return;
    }
    dashboard_session_make(session_key(), clock_now_ms() + DASHBOARD_SESSION_MS,
                           token);
    snprintf(cookie, sizeof(cookie),
             "%s=%s; Path=/dashboard; HttpOnly; SameSite=Strict; "
             "Max-Age=%d",
             DASHBOARD_COOKIE, token, DASHBOARD_SESSION_MS / 1000);
    redirect(req, cookie);
}

static void logout(struct evhttp_request *req)
{
    redirect(req, DASHBOARD_COOKIE "=; Path=/dashboard; HttpOnly; "
                                   "SameSite=Strict; Max-Age=0");
}

/* ---- the page and its data ---- */

typedef struct page_job {
    struct evhttp_request *req;
    report_opts_t opts;
    bool html;
    json_object *budgets; /* owned by the job */
    char *body;
    size_t len;
    int status;
    char err[256];
} page_job_t;

static void build_body(page_job_t *job, json_object *data)
{
    FILE *out;
    const char *text;

    if (!job->html) {
        text = json_object_to_json_string_ext(
            data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        job->body = strdup(text);
        job->len = strlen(text);
        job->status = 200;
        return;
    }
    out = open_memstream(&job->body, &job->len);
    if (out == NULL)
        die_oom();
    job->status = report_write_html(data, out, job->err, sizeof(job->err)) == 0
                      ? 200
                      : 503;
    fclose(out);
}

static void page_run(void *arg)
{
    page_job_t *job = arg;
    json_object *data;

    report_rollup_maybe(job->opts.ledger_path, ROLLUP_MIN_NEW);
    data = report_dashboard_data(&job->opts, job->err, sizeof(job->err));
    if (data == NULL) {
        job->status = 503;
        return;
    }
    json_object_object_add(data, "budgets", job->budgets);
    job->budgets = NULL;
    build_body(job, data);
    json_object_put(data);
}

static void page_done(void *arg)
{
    page_job_t *job = arg;

    if (job->status == 200)
        reply(job->req, 200,
              job->html ? "text/html; charset=utf-8" : "application/json",
              job->body, job->len);
    else
        gateway_send_error(job->req, 503, "server_error",
                           "dashboard_unavailable", NULL, job->err);
    json_object_put(job->budgets);
    free(job->body);
    free(job);
}

static json_object *money(pico_t pico)
{
    char usd[40];

    return json_object_new_string(pico_format_usd(pico, usd, sizeof(usd)));
}

static json_object *budget_json(const budget_status_t *b)
{
    json_object *obj = json_object_new_object();
    char rate[40];

    json_object_object_add(obj, "scope",
                           json_object_new_string(budget_scope_name(b->scope)));
    json_object_object_add(obj, "name", json_object_new_string(b->name));
    json_object_object_add(
        obj, "period", json_object_new_string(budget_period_name(b->period)));
    json_object_object_add(obj, "spent_usd", money(b->spent));
    json_object_object_add(obj, "held_usd", money(b->held));
    json_object_object_add(obj, "limit_usd",
                           b->hard >= 0 ? money(b->hard) : NULL);
    json_object_object_add(obj, "used_rate", NULL);
    if (b->hard > 0) {
        /* Four decimals of spent / hard, truncated. */
        int64_t bp = (int64_t)((__int128)b->spent * 10000 / b->hard);

        snprintf(rate, sizeof(rate), "%lld.%04lld", (long long)(bp / 10000),
                 (long long)(bp % 10000));
        json_object_object_add(obj, "used_rate",
                               json_object_new_double_s(bp / 10000.0, rate));
    }
    return obj;
}

static json_object *budgets_json(gateway_t *gw)
{
    budget_book_t *book = gw->policy ? gw->policy->book : NULL;
    json_object *list = json_object_new_array();
    budget_status_t b;

    for (size_t i = 0; book != NULL && i < budget_count(book); i++)
        if (budget_at(book, i, clock_now_ms(), &b) == 0)
            json_object_array_add(list, budget_json(&b));
    return list;
}

/* since and until from the query string; false after answering 400. */
static bool read_window(struct evhttp_request *req, report_opts_t *opts)
{
    const char *query =
        evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq q;
    const char *since, *until;
    bool ok = true;

    evhttp_parse_query_str(query ? query : "", &q);
    since = evhttp_find_header(&q, "since");
    until = evhttp_find_header(&q, "until");
    if (report_parse_time(since ? since : DEFAULT_SINCE, opts->now_ms,
                          &opts->since_ms) < 0 ||
        (until != NULL &&
         report_parse_time(until, opts->now_ms, &opts->until_ms) < 0))
        ok = false;
    opts->has_since = true;
    opts->has_until = until != NULL;
    evhttp_clear_headers(&q);
    if (!ok)
        gateway_send_error(req, 400, "invalid_request_error", "bad_window",
                           NULL,
                           "since and until are times such as 2026-11-01 "
                           "or spans such as 7d");
    return ok;
}

static void serve_page(gateway_t *gw, struct evhttp_request *req, bool html)
{
    page_job_t *job = calloc(1, sizeof(*job));

    if (job == NULL)
        die_oom();
    job->req = req;
    job->html = html;
    job->opts.ledger_path = gw->config->ledger_path;
    job->opts.config = gw->config;
    job->opts.now_ms = clock_now_ms();
    if (!read_window(req, &job->opts)) {
        free(job);
        return;
    }
    job->budgets = budgets_json(gw);
    worker_submit(gw->worker, page_run, page_done, job);
}

static bool is_page(const char *path)
{
    return strcmp(path, "/dashboard") == 0 || strcmp(path, "/dashboard/") == 0;
}

void dashboard_handle(gateway_t *gw, struct evhttp_request *req)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

    if (path == NULL)
        path = "";
    if (strcmp(path, "/dashboard/login") == 0 && cmd == EVHTTP_REQ_POST)
        login(gw, req);
    else if (strcmp(path, "/dashboard/logout") == 0 && cmd == EVHTTP_REQ_POST)
        logout(req);
    else if (strcmp(path, "/dashboard/data.json") == 0 && get &&
             (has_session(gw, req) || auth_is_admin(gw->config, req)))
        serve_page(gw, req, false);
    else if (strcmp(path, "/dashboard/data.json") == 0 && get)
        gateway_send_error(req, 401, "invalid_request_error", "invalid_api_key",
                           NULL, "log in at /dashboard or send the admin key");
    else if (is_page(path) && get &&
             (has_session(gw, req) || auth_is_admin(gw->config, req)))
        serve_page(gw, req, true);
    else if (is_page(path) && get)
        send_login(req, 200, "");
    else
        gateway_send_error(req, 404, "invalid_request_error", "unknown_url",
                           NULL,
                           "the dashboard is GET /dashboard; log in with "
                           "POST /dashboard/login");
}

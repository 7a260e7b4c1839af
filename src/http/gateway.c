/*
 * The server side: listener, dispatch by path, health, model list, errors
 * in OpenAI's shape, and the SIGTERM drain. Everything runs on one loop.
 */
#include "http/gateway.h"
#include "http/bodylimit.h"

#include "admin/admin.h"
#include "auth/auth.h"
#include "auth/keyring.h"
#include "dashboard/dashboard.h"
#include "feedback/feedback.h"
#include "metrics/metrics.h"
#include "proxy/chat.h"
#include "proxy/policy.h"
#include "proxy/router.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/random.h>

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return NULL;
}

/* "out_" + 12 hex digits of unix ms + 12 hex digits from a generator
 * seeded once from the kernel: ids sort by time, so ledger inserts append
 * to the index instead of landing on a random page, and no call pays a
 * system call for its id. */
void gateway_make_outcome_id(char out[40])
{
    static uint64_t state;
    uint64_t ms = (uint64_t)clock_now_ms() & 0xffffffffffffULL;
    uint64_t z;

    while (state == 0)
        if (getrandom(&state, sizeof(state), 0) != sizeof(state))
            state = 0;
    /* splitmix64 */
    z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    snprintf(out, 40, "out_%012llx%012llx", (unsigned long long)ms,
             (unsigned long long)(z & 0xffffffffffffULL));
}

/* Every answer names an outcome. A request refused before it became a
 * call (no key, too large, draining) has no ledger row: its id is only in
 * the log line written here. */
static void add_outcome_id(struct evhttp_request *req, int status,
                           const char *code)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char id[40];

    if (evhttp_find_header(h, "x-tollgate-outcome") != NULL)
        return;
    gateway_make_outcome_id(id);
    evhttp_add_header(h, "x-tollgate-outcome", id);
    LOG(LOG_INFO, id, "refused status=%d code=%s", status, code ? code : "-");
}

/* Anthropic's error.type for a status (its API reference lists these). */
static const char *anthropic_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout_error";
    case 529:
        return "overloaded_error";
    default:
        return "api_error";
    }
}

bool gateway_is_anthropic_path(struct evhttp_request *req)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

    return path != NULL && strncmp(path, "/v1/messages", 12) == 0 &&
           (path[12] == '\0' || path[12] == '/');
}

/* Callers of /v1/messages use Anthropic's SDK, which reads its own error
 * shape; Tollgate's code goes in x-tollgate-error there. */
static struct json_object *error_body(struct evhttp_request *req, int status,
                                      const char *type, const char *code,
                                      const char *param, const char *message)
{
    struct json_object *err = json_object_new_object();
    struct json_object *root = json_object_new_object();

    if (err == NULL || root == NULL)
        die_oom();
    json_object_object_add(err, "message", json_object_new_string(message));
    if (gateway_is_anthropic_path(req)) {
        json_object_object_add(
            err, "type", json_object_new_string(anthropic_error_type(status)));
        json_object_object_add(root, "type", json_object_new_string("error"));
        json_object_object_add(root, "error", err);
        if (code != NULL)
            evhttp_add_header(evhttp_request_get_output_headers(req),
                              "x-tollgate-error", code);
        return root;
    }
    json_object_object_add(err, "type", json_object_new_string(type));
    json_object_object_add(err, "param",
                           param ? json_object_new_string(param) : NULL);
    json_object_object_add(err, "code",
                           code ? json_object_new_string(code) : NULL);
    json_object_object_add(root, "error", err);
    return root;
}

void gateway_send_error(struct evhttp_request *req, int status,
                        const char *type, const char *code, const char *param,
                        const char *message)
{
    struct json_object *root =
        error_body(req, status, type, code, param, message);
    struct evbuffer *out = evbuffer_new();
    const char *text;

    if (out == NULL)
        die_oom();
    text = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    evbuffer_add(out, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    add_outcome_id(req, status, code);
    evhttp_send_reply(req, status, reason_phrase(status), out);
    evbuffer_free(out);
    json_object_put(root);
}

static void send_json(struct evhttp_request *req, int status,
                      struct json_object *obj)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Content-Type", "application/json");
        evhttp_send_reply(req, status, reason_phrase(status), NULL);
        json_object_put(obj);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    const char *text = json_object_to_json_string_ext(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

    if (out == NULL)
        die_oom();
    evbuffer_add(out, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, status, reason_phrase(status), out);
    evbuffer_free(out);
    json_object_put(obj);
}

static void handle_health(gateway_t *gw, struct evhttp_request *req)
{
    struct json_object *root = json_object_new_object();
    struct json_object *lj = json_object_new_object();
    ledger_stats_t st;
    const char *status = "ok";

    ledger_get_stats(gw->ledger, &st);
    if (gw->draining)
        status = "draining";
    else if (st.full)
        status = "ledger_full";
    json_object_object_add(root, "status", json_object_new_string(status));
    json_object_object_add(root, "in_flight",
                           json_object_new_int64((int64_t)gw->in_flight));
    json_object_object_add(lj, "capacity",
                           json_object_new_int64((int64_t)st.capacity));
    json_object_object_add(lj, "admitted",
                           json_object_new_int64((int64_t)st.admitted));
    json_object_object_add(lj, "queued",
                           json_object_new_int64((int64_t)st.queued));
    json_object_object_add(lj, "written",
                           json_object_new_int64((int64_t)st.written));
    json_object_object_add(lj, "failed_commits",
                           json_object_new_int64((int64_t)st.failed));
    json_object_object_add(lj, "full", json_object_new_boolean(st.full));
    json_object_object_add(root, "ledger", lj);
    send_json(req, strcmp(status, "ok") == 0 ? 200 : 503, root);
}

static void handle_models(gateway_t *gw, struct evhttp_request *req)
{
    const config_t *cfg = gw->config;
    struct json_object *root, *data;
    const cfg_key_t *key;

    if (auth_find(gw, req, false, &key) != 0 && !auth_is_admin(cfg, req)) {
        gateway_send_error(req, 401, "invalid_request_error", "invalid_api_key",
                           NULL,
                           "the API key is missing or not known to this "
                           "gateway");
        return;
    }
    root = json_object_new_object();
    data = json_object_new_array();
    for (size_t i = 0; i < cfg->n_models; i++) {
        struct json_object *m = json_object_new_object();

        json_object_object_add(m, "id",
                               json_object_new_string(cfg->models[i].name));
        json_object_object_add(m, "object", json_object_new_string("model"));
        json_object_object_add(m, "created", json_object_new_int(0));
        json_object_object_add(
            m, "owned_by",
            json_object_new_string(cfg->models[i].provider->name));
        json_object_array_add(data, m);
    }
    json_object_object_add(root, "object", json_object_new_string("list"));
    json_object_object_add(root, "data", data);
    send_json(req, 200, root);
}

/* POST /_test/clock/advance?ms=N, only under --test-clock. */
static void handle_test_clock(gateway_t *gw, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *ms;
    struct json_object *root;

    evhttp_parse_query_str(
        evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)) ?: "", &q);
    ms = evhttp_find_header(&q, "ms");
    clock_advance(ms ? strtoll(ms, NULL, 10) : 0);
    evhttp_clear_headers(&q);
    root = json_object_new_object();
    json_object_object_add(root, "now_ms",
                           json_object_new_int64(clock_now_ms()));
    send_json(req, 200, root);
}

/* evhttp calls the handler with no URI when it gave up on a request
 * itself (a body over the limit, a broken request line). */
static void handle_refused(struct evhttp_request *req)
{
    if (evhttp_request_get_response_code(req) == 413)
        gateway_send_error(req, 413, "invalid_request_error",
                           "request_too_large", NULL,
                           "the request body is larger than this "
                           "gateway's max_body_bytes");
    else
        gateway_send_error(req, 400, "invalid_request_error", "bad_request",
                           NULL, "the HTTP request could not be read");
}

/* Where bodylimit sends a request whose body is over max_body_bytes. */
#define REFUSED_PATH "/_tollgate/body-too-large"

static void dispatch(struct evhttp_request *req, void *arg)
{
    gateway_t *gw = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *path;

    if (uri == NULL) {
        handle_refused(req);
        return;
    }
    path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path == NULL)
        path = "/";
    if (strcmp(path, REFUSED_PATH) == 0) {
        gateway_send_error(req, 413, "invalid_request_error",
                           "request_too_large", NULL,
                           "the request body is larger than this "
                           "gateway's max_body_bytes");
    } else if (strcmp(path, "/healthz") == 0) {
        handle_health(gw, req);
    } else if (gw->test_clock && strcmp(path, "/_test/clock/advance") == 0) {
        handle_test_clock(gw, req);
    } else if (gw->draining) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
                          "close");
        gateway_send_error(req, 503, "server_error", "shutting_down", NULL,
                           "the gateway is shutting down");
    } else if (strncmp(path, "/admin/", 7) == 0) {
        admin_handle(gw, req);
    } else if (strcmp(path, "/v1/chat/completions") == 0) {
        chat_handle(gw, req, SURFACE_CHAT);
    } else if (strcmp(path, "/v1/messages") == 0) {
        chat_handle(gw, req, SURFACE_MESSAGES);
    } else if (strcmp(path, "/v1/responses") == 0) {
        chat_handle(gw, req, SURFACE_RESPONSES);
    } else if (strcmp(path, "/v1/embeddings") == 0) {
        chat_handle(gw, req, SURFACE_EMBEDDINGS);
    } else if (strcmp(path, "/v1/models") == 0) {
        handle_models(gw, req);
    } else if (strncmp(path, "/v1/outcomes/", 13) == 0) {
        feedback_handle(gw, req);
    } else if (strcmp(path, "/metrics") == 0) {
        metrics_handle(gw, req);
    } else if (strncmp(path, "/dashboard", 10) == 0) {
        dashboard_handle(gw, req);
    } else {
        gateway_send_error(req, 404, "invalid_request_error", "unknown_url",
                           NULL, "this gateway has no such endpoint");
    }
}

/* Every call has answered; the last replies may still sit in socket
 * buffers, so the loop runs a short grace period to write them out. */
static void finish_drain(gateway_t *gw)
{
    struct timeval grace = {0, 200 * 1000};

    clock_timer_cancel(gw->drain_timer);
    if (gw->listener != NULL) {
        evhttp_del_accept_socket(gw->http, gw->listener);
        gw->listener = NULL;
    }
    event_base_loopexit(gw->base, &grace);
}

void gateway_call_done(gateway_t *gw)
{
    gw->in_flight--;
    if (gw->draining && gw->in_flight == 0)
        finish_drain(gw);
}

static void on_drain_deadline(void *arg)
{
    gateway_t *gw = arg;

    log_warn("drain deadline passed with %zu calls in flight; cutting "
             "them",
             gw->in_flight);
    chat_cut_all(gw);
    finish_drain(gw);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    gateway_t *gw = arg;

    if (gw->draining)
        return;
    gw->draining = true;
    log_info("signal %d: draining %zu calls in flight", (int)sig,
             gw->in_flight);
    if (gw->in_flight == 0) {
        finish_drain(gw);
        return;
    }
    clock_timer_arm(gw->drain_timer, gw->config->drain_timeout_ms);
}

price_table_t *gateway_load_prices(const config_t *config, FILE *errout)
{
    price_table_t *table = billing_table_new();
    char err[512];

    for (size_t i = 0; i < config->n_price_files; i++) {
        int n = billing_load_litellm(table, config->price_files[i], err,
                                     sizeof(err));

        if (n < 0) {
            fprintf(errout, "%s: prices: %s\n", config->path, err);
            billing_table_free(table);
            return NULL;
        }
        log_info("prices: %d entries from %s", n, config->price_files[i]);
    }
    for (size_t i = 0; i < config->n_aliases; i++) {
        if (billing_alias(table, config->alias_names[i],
                          config->alias_targets[i]) < 0) {
            fprintf(errout,
                    "%s: aliases: '%s' -> '%s' is not a usable "
                    "alias (a loop, or a name too long)\n",
                    config->path, config->alias_names[i],
                    config->alias_targets[i]);
            billing_table_free(table);
            return NULL;
        }
    }
    return table;
}

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
    evconnlistener_enable(arg);
}

/* Out of descriptors, accept() fails at once and libevent would retry it
 * in a tight loop: pause accepting for a moment instead. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct timeval pause = {0, 100 * 1000};
    int err = EVUTIL_SOCKET_ERROR();
    static int64_t last_log_ms;

    evconnlistener_disable(listener);
    event_base_once(evconnlistener_get_base(listener), -1, EV_TIMEOUT,
                    resume_accepting, listener, &pause);
    if (clock_mono_ms() - last_log_ms >= 10000) {
        last_log_ms = clock_mono_ms();
        log_warn("accept: %s; pausing new connections for 100 ms",
                 evutil_socket_error_to_string(err));
    }
}

/* Each connection needs a descriptor: take all the system allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int bind_listener(gateway_t *gw)
{
    const config_t *cfg = gw->config;
    struct evhttp_bound_socket *sock;
    evutil_socket_t fd;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    sock = evhttp_bind_socket_with_handle(gw->http, cfg->listen_host,
                                          (ev_uint16_t)cfg->listen_port);
    if (sock == NULL) {
        fprintf(stderr, "tollgate: cannot listen on %s:%d: %s\n",
                cfg->listen_host, cfg->listen_port, strerror(errno));
        return -1;
    }
    gw->listener = sock;
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(sock),
                                on_accept_error);
    fd = evhttp_bound_socket_get_fd(sock);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            gw->bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else
            gw->bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

static int setup_http(gateway_t *gw)
{
    gw->http = evhttp_new(gw->base);
    if (gw->http == NULL)
        return -1;
    evhttp_set_max_body_size(gw->http, (ev_ssize_t)gw->config->max_body_bytes);
    evhttp_set_max_headers_size(gw->http, 64 * 1024);
    /* A connection idle this long, or a request not fully sent by then,
     * is closed: a slow client cannot hold a socket for long. A call in
     * flight gets a longer one (chat.c) so its stream is never cut. */
    evhttp_set_timeout(gw->http,
                       (int)((gw->config->client_timeout_ms + 999) / 1000));
    evhttp_set_allowed_methods(
        gw->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT);
    evhttp_set_gencb(gw->http, dispatch, gw);
    if (bodylimit_install(gw->http, gw->base, gw->config->max_body_bytes,
                          REFUSED_PATH) < 0)
        return -1;
    return bind_listener(gw);
}

static int gateway_run(gateway_t *gw)
{
    struct event *sigterm, *sigint;

    sigterm = evsignal_new(gw->base, SIGTERM, on_signal, gw);
    sigint = evsignal_new(gw->base, SIGINT, on_signal, gw);
    if (sigterm == NULL || sigint == NULL)
        die_oom();
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    gw->drain_timer = clock_timer_new(on_drain_deadline, gw);

    printf("tollgate listening on %s:%d\n", gw->config->listen_host,
           gw->bound_port);
    fflush(stdout);
    event_base_dispatch(gw->base);

    /* A second signal while the ledger flushes must not kill us. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    clock_timer_free(gw->drain_timer);
    event_free(sigterm);
    event_free(sigint);
    return 0;
}

int gateway_serve(const config_t *config, const gateway_opts_t *opts)
{
    gateway_t gw = {.config = config, .test_clock = opts->test_clock};
    char err[512];
    int rc = 1;

    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    gw.base = event_base_new();
    if (gw.base == NULL)
        die_oom();
    clock_init(gw.base, opts->test_clock, 1767225600000LL);
    gw.prices = gateway_load_prices(config, stderr);
    if (gw.prices == NULL)
        goto out_base;
    gw.ledger = ledger_open(config->ledger_path, config->ledger_queue, err,
                            sizeof(err));
    if (gw.ledger == NULL) {
        fprintf(stderr, "tollgate: ledger %s: %s\n", config->ledger_path, err);
        goto out_prices;
    }
    if (policy_open(&gw, err, sizeof(err)) < 0 ||
        router_open(&gw, err, sizeof(err)) < 0) {
        fprintf(stderr, "tollgate: %s\n", err);
        goto out_policy;
    }
    gw.upstream = upstream_new(gw.base);
    if (gw.upstream == NULL) {
        fprintf(stderr, "tollgate: libcurl could not start\n");
        goto out_policy;
    }
    gw.worker = worker_new(gw.base);
    if (gw.worker == NULL || keyring_open(&gw, err, sizeof(err)) < 0) {
        fprintf(stderr, "tollgate: run-time keys: %s\n",
                gw.worker ? err : "the worker thread did not start");
        goto out_keys;
    }
    if (setup_http(&gw) < 0) {
        if (gw.http != NULL)
            evhttp_free(gw.http);
        goto out_keys;
    }
    rc = gateway_run(&gw);
    router_flush(&gw); /* the learned pass rates, saved by the worker */
    /* Admin and auth completions still queued answer their requests
     * before evhttp frees them. */
    worker_free(gw.worker);
    gw.worker = NULL;
    evhttp_free(gw.http);
    log_info("drained; flushing the ledger");

out_keys:
    worker_free(gw.worker);
    keyring_close(&gw);
    upstream_free(gw.upstream);
out_policy:
    router_close(&gw);
    policy_close(&gw);
    ledger_close(gw.ledger);
out_prices:
    billing_table_free(gw.prices);
out_base:
    event_base_free(gw.base);
    return rc;
}

/*
 * HTTP front of the simulator: listener, path routing to each surface,
 * each surface's key check, the OpenAI model list and the /_sim
 * endpoints tests drive it with.
 */
#include "sim_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "sim_build.h"
#include "sim_call.h"
#include "sim_chat.h"
#include "sim_surfaces.h"
#include "sim_util.h"

#define MAX_ADVANCE_MS UINT64_C(1000000000000)
#define CONNECTION_TIMEOUT_S 3600

static void put(struct json_object *obj, const char *key,
                struct json_object *value)
{
    json_object_object_add(obj, key, value);
}

static struct json_object *string_or_null(const char *text)
{
    return text ? json_object_new_string(text) : NULL;
}

struct json_object *server_error_json(const char *type, const char *message,
                                      const char *param, const char *code)
{
    struct json_object *error = json_object_new_object();

    put(error, "message", json_object_new_string(message));
    put(error, "type", json_object_new_string(type));
    put(error, "param", string_or_null(param));
    put(error, "code", string_or_null(code));
    return error;
}

/* evhttp knows no phrase for some codes a provider sends (429). */
static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
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
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 529:
        return "Overloaded";
    default:
        return NULL;
    }
}

void server_send_json(struct evhttp_request *req, int status,
                      struct json_object *body)
{
    struct evbuffer *buf = evbuffer_new();
    size_t len;
    const char *json =
        json_object_to_json_string_length(body, SERVER_JSON_FLAGS, &len);

    if (buf == NULL) {
        fprintf(stderr, "provider-sim: out of memory (evbuffer)\n");
        abort();
    }
    evbuffer_add(buf, json, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, status, reason_phrase(status), buf);
    evbuffer_free(buf);
    json_object_put(body);
}

void server_send_error(struct evhttp_request *req, int status, const char *type,
                       const char *message, const char *param, const char *code)
{
    struct json_object *body = json_object_new_object();

    put(body, "error", server_error_json(type, message, param, code));
    server_send_json(req, status, body);
}

/* Google's canonical status name for an HTTP status. */
static const char *google_status(int code)
{
    switch (code) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 500:
        return "INTERNAL";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return "UNKNOWN";
    }
}

struct json_object *server_gemini_error_json(int code, const char *message)
{
    struct json_object *body = json_object_new_object();
    struct json_object *error = json_object_new_object();

    put(error, "code", json_object_new_int(code));
    put(error, "message", json_object_new_string(message));
    put(error, "status", json_object_new_string(google_status(code)));
    put(body, "error", error);
    return body;
}

void server_send_gemini_error(struct evhttp_request *req, int code,
                              const char *message)
{
    server_send_json(req, code, server_gemini_error_json(code, message));
}

struct json_object *server_anthropic_error_json(const char *type,
                                                const char *message,
                                                const char *request_id)
{
    struct json_object *body = json_object_new_object();
    struct json_object *error = json_object_new_object();

    put(error, "type", json_object_new_string(type));
    put(error, "message", json_object_new_string(message));
    put(body, "type", json_object_new_string("error"));
    put(body, "error", error);
    put(body, "request_id", json_object_new_string(request_id));
    return body;
}

void server_send_anthropic_error(struct sim *sim, struct evhttp_request *req,
                                 int status, const char *type,
                                 const char *message)
{
    char *id = build_id("req_", ++sim->next_id, true);

    evhttp_add_header(evhttp_request_get_output_headers(req), "request-id", id);
    server_send_json(req, status,
                     server_anthropic_error_json(type, message, id));
    free(id);
}

static void send_text(struct evhttp_request *req, int status, const char *text)
{
    struct evbuffer *buf = evbuffer_new();

    if (buf == NULL) {
        fprintf(stderr, "provider-sim: out of memory (evbuffer)\n");
        abort();
    }
    evbuffer_add(buf, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain");
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "UNKNOWN";
    }
}

static const char *request_path(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

    return path ? path : "";
}

static const char *header(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/*
 * The non-OpenAI headers a surface keys on, by lower-case name. The
 * record gets a "headers" member only when one was sent, so OpenAI
 * records keep their old shape.
 */
static void journal_headers(struct json_object *rec, struct evhttp_request *req)
{
    static const char *const names[] = {"x-api-key", "api-key",
                                        "anthropic-version", "anthropic-beta"};
    struct json_object *obj = NULL;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *value = header(req, names[i]);

        if (value == NULL)
            continue;
        if (obj == NULL)
            obj = json_object_new_object();
        put(obj, names[i], json_object_new_string(value));
    }
    if (obj != NULL)
        put(rec, "headers", obj);
}

/* Bodies that are not UTF-8 cannot be a JSON string; send base64. */
static void journal_request(struct sim *sim, struct evhttp_request *req)
{
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(input);
    const char *body = len ? (const char *)evbuffer_pullup(input, -1) : "";
    const char *uri = evhttp_request_get_uri(req);
    struct json_object *rec = json_object_new_object();

    put(rec, "path", json_object_new_string(uri ? uri : ""));
    put(rec, "method",
        json_object_new_string(method_name(evhttp_request_get_command(req))));
    if (util_utf8_valid(body, len)) {
        put(rec, "body", json_object_new_string_len(body, (int)len));
    } else {
        char *b64 = util_base64((const unsigned char *)body, len);

        put(rec, "body", NULL);
        put(rec, "body_base64", json_object_new_string(b64));
        free(b64);
    }
    put(rec, "authorization", string_or_null(header(req, "Authorization")));
    journal_headers(rec, req);
    journal_push(&sim->requests, rec);
}

/* Compares without an early exit, so timing says nothing of the key. */
static bool same_secret(const char *given, const char *expected)
{
    size_t glen = strlen(given), elen = strlen(expected);
    unsigned char diff = glen != elen;

    for (size_t i = 0; i < elen; i++)
        diff |= (unsigned char)(given[i < glen ? i : 0] ^ expected[i]);
    return diff == 0;
}

static bool authorized(struct sim *sim, struct evhttp_request *req)
{
    const char *auth = header(req, "Authorization");
    const char *prefix = "Bearer ";

    if (sim->cfg.key == NULL)
        return true;

    if (auth == NULL) {
        server_send_error(req, 401, "invalid_request_error",
                          "You didn't provide an API key. You need to "
                          "provide your API key in an Authorization header "
                          "using Bearer auth (i.e. Authorization: Bearer "
                          "YOUR_KEY).",
                          NULL, "invalid_api_key");
        return false;
    }
    if (strncmp(auth, prefix, strlen(prefix)) != 0 ||
        !same_secret(auth + strlen(prefix), sim->cfg.key)) {
        server_send_error(req, 401, "invalid_request_error",
                          "Incorrect API key provided.", NULL,
                          "invalid_api_key");
        return false;
    }
    return true;
}

static struct json_object *model_json(const struct sim *sim, const char *id)
{
    struct json_object *model = json_object_new_object();

    put(model, "id", json_object_new_string(id));
    put(model, "object", json_object_new_string("model"));
    put(model, "created", json_object_new_int64(sim_created(sim)));
    put(model, "owned_by", json_object_new_string("provider-sim"));
    return model;
}

static void send_models(struct sim *sim, struct evhttp_request *req)
{
    struct json_object *list = json_object_new_object();
    struct json_object *data = json_object_new_array();

    for (size_t i = 0; i < sim->cfg.nmodels; i++)
        json_object_array_add(data, model_json(sim, sim->cfg.models[i]));
    put(list, "object", json_object_new_string("list"));
    put(list, "data", data);
    server_send_json(req, 200, list);
}

static void send_model(struct sim *sim, struct evhttp_request *req,
                       const char *id)
{
    char message[160];

    if (sim->cfg.nmodels > 0 && sim_knows_model(sim, id)) {
        server_send_json(req, 200, model_json(sim, id));
        return;
    }
    snprintf(message, sizeof(message), "The model '%.100s' does not exist", id);
    server_send_error(req, 404, "invalid_request_error", message, "model",
                      "model_not_found");
}

static void send_bad_method(struct evhttp_request *req)
{
    char message[160];

    snprintf(message, sizeof(message), "Method %s not allowed on %.100s",
             method_name(evhttp_request_get_command(req)), request_path(req));
    server_send_error(req, 405, "invalid_request_error", message, NULL, NULL);
}

static void send_bad_url(struct evhttp_request *req)
{
    char message[160];

    snprintf(message, sizeof(message), "Invalid URL (%s %.100s)",
             method_name(evhttp_request_get_command(req)), request_path(req));
    server_send_error(req, 404, "invalid_request_error", message, NULL, NULL);
}

static bool is_get(struct evhttp_request *req)
{
    return evhttp_request_get_command(req) == EVHTTP_REQ_GET;
}

static bool is_post(struct evhttp_request *req)
{
    return evhttp_request_get_command(req) == EVHTTP_REQ_POST;
}

static void route_openai(struct sim *sim, struct evhttp_request *req,
                         const char *path)
{
    const char *models = "/v1/models";

    if (strcmp(path, "/v1/chat/completions") == 0) {
        if (is_post(req))
            chat_handle(sim, req, SURFACE_CHAT, NULL);
        else
            send_bad_method(req);
    } else if (strcmp(path, "/v1/responses") == 0) {
        if (is_post(req))
            responses_handle(sim, req);
        else
            send_bad_method(req);
    } else if (strcmp(path, "/v1/embeddings") == 0) {
        if (is_post(req))
            embeddings_handle(sim, req, NULL);
        else
            send_bad_method(req);
    } else if (strcmp(path, models) == 0 && is_get(req)) {
        send_models(sim, req);
    } else if (strncmp(path, models, strlen(models)) == 0 &&
               path[strlen(models)] == '/' && is_get(req)) {
        send_model(sim, req, path + strlen(models) + 1);
    } else {
        send_bad_url(req);
    }
}

static struct json_object *clock_json(struct sim *sim)
{
    struct json_object *obj = json_object_new_object();

    put(obj, "now_ms", json_object_new_int64((int64_t)vclock_now(&sim->clock)));
    return obj;
}

/* Reads {"ms": N} with 0 <= N <= MAX_ADVANCE_MS. */
static int advance_ms(struct evhttp_request *req, uint64_t *ms)
{
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(input);
    char *text =
        util_xstrndup(len ? (const char *)evbuffer_pullup(input, -1) : "", len);
    struct json_object *body = json_tokener_parse(text);
    struct json_object *value;
    int rc = -EINVAL;

    if (json_object_is_type(body, json_type_object) &&
        json_object_object_get_ex(body, "ms", &value) &&
        json_object_is_type(value, json_type_int) &&
        json_object_get_int64(value) >= 0 &&
        (uint64_t)json_object_get_int64(value) <= MAX_ADVANCE_MS) {
        *ms = (uint64_t)json_object_get_int64(value);
        rc = 0;
    }
    json_object_put(body);
    free(text);
    return rc;
}

static void clock_advance(struct sim *sim, struct evhttp_request *req)
{
    uint64_t ms;

    if (!sim->clock.virtual_time) {
        server_send_error(req, 409, "invalid_request_error",
                          "The clock is real; start with --clock virtual "
                          "to advance it.",
                          NULL, NULL);
        return;
    }
    if (advance_ms(req, &ms) < 0) {
        server_send_error(req, 400, "invalid_request_error",
                          "Expected a body {\"ms\": N} with N >= 0.", "ms",
                          NULL);
        return;
    }
    vclock_advance(&sim->clock, ms);
    server_send_json(req, 200, clock_json(sim));
}

static void send_journal(struct evhttp_request *req,
                         const struct journal *journal)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();
    char dropped[32];

    if (buf == NULL) {
        fprintf(stderr, "provider-sim: out of memory (evbuffer)\n");
        abort();
    }
    snprintf(dropped, sizeof(dropped), "%llu",
             (unsigned long long)journal->dropped);
    evhttp_add_header(headers, "x-sim-dropped", dropped);
    evhttp_add_header(headers, "Content-Type", "application/json");
    journal_write(journal, buf);
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
}

static void send_stats(struct sim *sim, struct evhttp_request *req)
{
    struct json_object *obj = json_object_new_object();

    put(obj, "in_flight", json_object_new_int64((int64_t)call_count(sim)));
    put(obj, "requests", json_object_new_int64((int64_t)sim->requests.count));
    put(obj, "answers", json_object_new_int64((int64_t)sim->answers.count));
    server_send_json(req, 200, obj);
}

static void reset(struct sim *sim, struct evhttp_request *req)
{
    struct json_object *obj = json_object_new_object();

    journal_clear(&sim->requests);
    journal_clear(&sim->answers);
    util_set_clear(&sim->prompt_cache);
    put(obj, "ok", json_object_new_boolean(1));
    server_send_json(req, 200, obj);
}

static void route_sim(struct sim *sim, struct evhttp_request *req,
                      const char *path)
{
    if (strcmp(path, "/_sim/requests") == 0 && is_get(req))
        send_journal(req, &sim->requests);
    else if (strcmp(path, "/_sim/usage") == 0 && is_get(req))
        send_journal(req, &sim->answers);
    else if (strcmp(path, "/_sim/reset") == 0 && is_post(req))
        reset(sim, req);
    else if (strcmp(path, "/_sim/clock/advance") == 0 && is_post(req))
        clock_advance(sim, req);
    else if (strcmp(path, "/_sim/clock") == 0 && is_get(req))
        server_send_json(req, 200, clock_json(sim));
    else if (strcmp(path, "/_sim/stats") == 0 && is_get(req))
        send_stats(sim, req);
    else
        send_bad_url(req);
}

/* Anthropic reads its key from x-api-key, not Authorization. */
static bool anthropic_authorized(struct sim *sim, struct evhttp_request *req)
{
    const char *key = header(req, "x-api-key");

    if (sim->cfg.key == NULL)
        return true;
    if (key == NULL) {
        server_send_anthropic_error(sim, req, 401, "authentication_error",
                                    "x-api-key header is required");
        return false;
    }
    if (!same_secret(key, sim->cfg.key)) {
        server_send_anthropic_error(sim, req, 401, "authentication_error",
                                    "invalid x-api-key");
        return false;
    }
    return true;
}

static void route_anthropic(struct sim *sim, struct evhttp_request *req)
{
    if (!is_post(req)) {
        server_send_anthropic_error(sim, req, 405, "invalid_request_error",
                                    "Method Not Allowed");
        return;
    }
    if (anthropic_authorized(sim, req))
        messages_handle(sim, req);
}

/* Gemini: a missing key is unauthenticated, a wrong one invalid. */
static bool gemini_authorized(struct sim *sim, struct evhttp_request *req)
{
    const char *auth = header(req, "Authorization");
    const char *prefix = "Bearer ";

    if (sim->cfg.key == NULL)
        return true;
    if (auth == NULL || strncmp(auth, prefix, strlen(prefix)) != 0) {
        server_send_gemini_error(req, 401,
                                 "Request is missing required authentication "
                                 "credential. Expected an API key.");
        return false;
    }
    if (!same_secret(auth + strlen(prefix), sim->cfg.key)) {
        server_send_gemini_error(req, 400,
                                 "API key not valid. Please pass a "
                                 "valid API key.");
        return false;
    }
    return true;
}

static void route_gemini(struct sim *sim, struct evhttp_request *req,
                         const char *path)
{
    if (strcmp(path, "/v1beta/openai/chat/completions") != 0) {
        server_send_gemini_error(req, 404, "Not Found");
        return;
    }
    if (!is_post(req)) {
        server_send_gemini_error(req, 405, "Method Not Allowed");
        return;
    }
    if (gemini_authorized(sim, req))
        chat_handle(sim, req, SURFACE_GEMINI, NULL);
}

static bool azure_authorized(struct sim *sim, struct evhttp_request *req)
{
    const char *key = header(req, "api-key");

    if (sim->cfg.key == NULL)
        return true;
    if (key != NULL && same_secret(key, sim->cfg.key))
        return true;
    server_send_error(req, 401, "invalid_request_error",
                      "Access denied due to invalid subscription key or "
                      "wrong API endpoint. Make sure to provide a valid key "
                      "for an active subscription and use a correct "
                      "regional API endpoint for your resource.",
                      NULL, "401");
    return false;
}

/* True when the query string holds a non-empty api-version. */
static bool has_api_version(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq params;
    const char *version;
    bool found;

    if (query == NULL || evhttp_parse_query_str(query, &params) < 0)
        return false;
    version = evhttp_find_header(&params, "api-version");
    found = version != NULL && version[0] != '\0';
    evhttp_clear_headers(&params);
    return found;
}

static void send_azure_not_found(struct evhttp_request *req)
{
    server_send_error(req, 404, "invalid_request_error", "Resource not found",
                      NULL, "404");
}

static void send_no_deployment(struct evhttp_request *req)
{
    server_send_error(req, 404, "invalid_request_error",
                      "The API deployment for this resource does not exist. "
                      "If you created the deployment within the last 5 "
                      "minutes, please wait a moment and try again.",
                      NULL, "DeploymentNotFound");
}

/*
 * /openai/deployments/{name}/{chat/completions|embeddings}?api-version=
 * Like Azure, a path or api-version it does not know is a bare 404,
 * checked before the key.
 */
static void route_azure(struct sim *sim, struct evhttp_request *req,
                        const char *path)
{
    const char *prefix = "/openai/deployments/";
    const char *name = path + strlen(prefix);
    const char *slash = strchr(name, '/');
    const char *model;
    char deployment[128];

    if (strncmp(path, prefix, strlen(prefix)) != 0 || slash == NULL ||
        slash == name || (size_t)(slash - name) >= sizeof(deployment) ||
        (strcmp(slash, "/chat/completions") != 0 &&
         strcmp(slash, "/embeddings") != 0) ||
        !has_api_version(req)) {
        send_azure_not_found(req);
        return;
    }
    if (!azure_authorized(sim, req))
        return;
    if (!is_post(req)) {
        send_bad_method(req);
        return;
    }

    snprintf(deployment, sizeof(deployment), "%.*s", (int)(slash - name), name);
    model = sim_azure_model_for(sim, deployment);
    if (model == NULL)
        send_no_deployment(req);
    else if (strcmp(slash, "/embeddings") == 0)
        embeddings_handle(sim, req, model);
    else
        chat_handle(sim, req, SURFACE_AZURE, model);
}

static void log_request(struct sim *sim, struct evhttp_request *req,
                        const char *path)
{
    if (sim->cfg.verbose)
        fprintf(stderr, "provider-sim: %s %s\n",
                method_name(evhttp_request_get_command(req)), path);
}

/* Introspection and /health stay out of the request journal. */
static void route(struct evhttp_request *req, void *arg)
{
    struct sim *sim = arg;
    const char *path = request_path(req);

    log_request(sim, req, path);
    if (strncmp(path, "/_sim/", 6) == 0) {
        route_sim(sim, req, path);
        return;
    }
    if (strcmp(path, "/health") == 0) {
        send_text(req, 200, "ok");
        return;
    }

    journal_request(sim, req);
    if (strcmp(path, "/v1/messages") == 0)
        route_anthropic(sim, req);
    else if (strncmp(path, "/openai/", 8) == 0)
        route_azure(sim, req, path);
    else if (strncmp(path, "/v1beta/", 8) == 0)
        route_gemini(sim, req, path);
    else if (authorized(sim, req))
        route_openai(sim, req, path);
}

static int bound_port(struct evhttp_bound_socket *bound, int *port)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(bound);

    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        return -errno;
    if (addr.ss_family == AF_INET6)
        *port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    else
        *port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
    return 0;
}

int server_start(struct sim *sim, int *port)
{
    struct evhttp_bound_socket *bound;

    sim->http = evhttp_new(sim->base);
    if (sim->http == NULL)
        return -ENOMEM;

    evhttp_set_allowed_methods(
        sim->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                       EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                       EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(sim->http, SIM_MAX_BODY);
    evhttp_set_max_headers_size(sim->http, SIM_MAX_HEADERS);
    evhttp_set_timeout(sim->http, CONNECTION_TIMEOUT_S);
    evhttp_set_gencb(sim->http, route, sim);

    bound = evhttp_bind_socket_with_handle(sim->http, sim->cfg.host,
                                           (ev_uint16_t)sim->cfg.port);
    if (bound == NULL)
        return errno ? -errno : -EADDRNOTAVAIL;
    return bound_port(bound, port);
}

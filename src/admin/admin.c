/*
 * The admin API's front: the admin key check, dispatch by path under
 * /admin/, JSON replies and errors, and /admin/budgets, which reads the
 * budget book on the loop (it lives in memory; no disk is touched).
 */
#include "admin/admin.h"
#include "admin/internal.h"

#include "auth/auth.h"
#include "budget/budget.h"
#include "proxy/policy.h"
#include "util/arena.h"
#include "util/clock.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

/* Segments after "/admin/": collection, {id}, action. */
#define ADMIN_MAX_SEGMENTS 3

void admin_reply(struct evhttp_request *req, int status,
                 struct json_object *obj)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evbuffer_new();
    const char *text = json_object_to_json_string_ext(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char id[40];

    if (out == NULL)
        die_oom();
    evbuffer_add(out, text, strlen(text));
    gateway_make_outcome_id(id);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "x-tollgate-outcome", id);
    evhttp_send_reply(req, status, NULL, out);
    evbuffer_free(out);
    json_object_put(obj);
}

void admin_fail(struct evhttp_request *req, int status, const char *code,
                const char *message)
{
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";

    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
                      "no-store");
    gateway_send_error(req, status, type, code, NULL, message);
}

void admin_fail_code(struct evhttp_request *req, int rc, const char *message)
{
    switch (rc) {
    case -ENOENT:
        admin_fail(req, 404, "not_found", message);
        break;
    case -EEXIST:
    case -EALREADY:
    case -EKEYREVOKED:
    case -EKEYEXPIRED:
        admin_fail(req, 409, "conflict", message);
        break;
    case -EINVAL:
        admin_fail(req, 400, "invalid_request", message);
        break;
    default:
        admin_fail(req, 500, "server_error", message);
    }
}

struct json_object *admin_read_body(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *text = (const char *)evbuffer_pullup(in, -1);
    struct json_tokener *tok;
    struct json_object *obj;

    if (len == 0)
        return json_object_new_object();
    tok = json_tokener_new();
    if (tok == NULL)
        die_oom();
    obj = json_tokener_parse_ex(tok, text, (int)len);
    if (obj != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
                        tok->char_offset != (int)len ||
                        !json_object_is_type(obj, json_type_object))) {
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    if (obj == NULL)
        admin_fail(req, 400, "invalid_json",
                   "the request body must be one JSON object");
    return obj;
}

int admin_get_string(struct json_object *obj, const char *name, size_t max,
                     const char **out)
{
    struct json_object *v = NULL;

    *out = NULL;
    if (!json_object_object_get_ex(obj, name, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string) ||
        (size_t)json_object_get_string_len(v) >= max)
        return -EINVAL;
    *out = json_object_get_string(v);
    return 0;
}

const budget_tz_t *admin_tz(const gateway_t *gw)
{
    return gw->policy != NULL ? gw->policy->tz : NULL;
}

static struct json_object *budget_json(const budget_status_t *st,
                                       const budget_tz_t *tz)
{
    struct json_object *b = json_object_new_object();
    bool total = st->period == BUDGET_TOTAL;

    json_object_object_add(
        b, "scope", json_object_new_string(budget_scope_name(st->scope)));
    json_object_object_add(
        b, "name", st->name[0] ? json_object_new_string(st->name) : NULL);
    json_object_object_add(
        b, "period", json_object_new_string(budget_period_name(st->period)));
    admin_add_money(b, "spent", st->spent, false);
    admin_add_money(b, "held", st->held, false);
    admin_add_money(b, "limit", st->hard, true);
    admin_add_money(b, "soft", st->soft, true);
    json_object_object_add(b, "period_start",
                           total ? NULL : admin_time_json(tz, st->start_ms));
    json_object_object_add(b, "resets_at",
                           total ? NULL : admin_time_json(tz, st->reset_ms));
    return b;
}

static void budgets_list(gateway_t *gw, struct evhttp_request *req)
{
    struct json_object *root = json_object_new_object();
    struct json_object *data = json_object_new_array();
    budget_book_t *book = gw->policy ? gw->policy->book : NULL;
    size_t n = book ? budget_count(book) : 0;
    int64_t now = clock_now_ms();

    for (size_t i = 0; i < n; i++) {
        budget_status_t st;

        if (budget_at(book, i, now, &st) == 0)
            json_object_array_add(data, budget_json(&st, admin_tz(gw)));
    }
    json_object_object_add(root, "object", json_object_new_string("list"));
    json_object_object_add(
        root, "timezone", json_object_new_string(budget_tz_name(admin_tz(gw))));
    json_object_object_add(root, "data", data);
    admin_reply(req, 200, root);
}

static void budgets_route(gateway_t *gw, struct evhttp_request *req, int n)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (n != 0)
        admin_fail(req, 404, "not_found", "this gateway has no such endpoint");
    else if (cmd != EVHTTP_REQ_GET)
        admin_fail(req, 405, "method_not_allowed", "use GET /admin/budgets");
    else
        budgets_list(gw, req);
}

/* One decoded segment; false when it is empty, too long, or decodes to
 * something holding a NUL. */
static bool take_segment(const char *raw, size_t len,
                         char out[ADMIN_SEGMENT_SIZE])
{
    char enc[3 * ADMIN_SEGMENT_SIZE];
    size_t dec_len = 0;
    char *dec;
    bool ok;

    if (len == 0 || len >= sizeof(enc))
        return false;
    memcpy(enc, raw, len);
    enc[len] = '\0';
    dec = evhttp_uridecode(enc, 0, &dec_len);
    if (dec == NULL)
        die_oom();
    ok = dec_len < ADMIN_SEGMENT_SIZE && strlen(dec) == dec_len;
    if (ok)
        memcpy(out, dec, dec_len + 1);
    free(dec);
    return ok;
}

/* Splits what follows "/admin/" into segments; -1 when it has too many
 * or a bad one. */
static int split_path(const char *rest, char segs[][ADMIN_SEGMENT_SIZE])
{
    int n = 0;

    for (;;) {
        size_t len = strcspn(rest, "/");

        if (n == ADMIN_MAX_SEGMENTS || !take_segment(rest, len, segs[n]))
            return -1;
        n++;
        if (rest[len] == '\0')
            return n;
        rest += len + 1;
    }
}

static bool check_admin(gateway_t *gw, struct evhttp_request *req)
{
    if (auth_is_admin(gw->config, req))
        return true;
    if (gw->config->admin_key == NULL)
        admin_fail(req, 401, "invalid_api_key",
                   "the admin API is off: this gateway has no admin key "
                   "(set admin_key_env and that variable)");
    else
        admin_fail(req, 401, "invalid_api_key",
                   "the admin API needs the admin key as 'Authorization: "
                   "Bearer KEY'");
    return false;
}

void admin_handle(gateway_t *gw, struct evhttp_request *req)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    char segs[ADMIN_MAX_SEGMENTS][ADMIN_SEGMENT_SIZE];
    int n;

    if (!check_admin(gw, req))
        return;
    n = path != NULL && strncmp(path, "/admin/", 7) == 0
            ? split_path(path + 7, segs)
            : -1;
    if (n > 0 && strcmp(segs[0], "keys") == 0)
        admin_keys_route(gw, req, segs + 1, n - 1);
    else if (n > 0 && strcmp(segs[0], "approvals") == 0)
        admin_approvals_route(gw, req, segs + 1, n - 1);
    else if (n > 0 && strcmp(segs[0], "budgets") == 0)
        budgets_route(gw, req, n - 1);
    else
        admin_fail(req, 404, "not_found", "this gateway has no such endpoint");
}

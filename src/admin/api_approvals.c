/*
 * /admin/approvals: list held calls and decide them (approve once, grant a
 * standing approval, deny), each decision recorded with who made it. One
 * job on the gateway's worker per request; the reply is sent from its
 * completion on the loop.
 */
#include "admin/internal.h"

#include "util/arena.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

typedef enum approvals_op {
    APPROVALS_LIST = 0,
    APPROVALS_ONCE,
    APPROVALS_STANDING,
    APPROVALS_DENY
} approvals_op_t;

/* A list filter: one decision, or every approval. */
#define FILTER_ALL (-1)

/* Owned by the job from submit to the completion, which frees it. */
typedef struct approvals_job {
    gateway_t *gw;
    struct evhttp_request *req;
    approvals_op_t op;
    int64_t now_ms;
    int filter; /* an approval_decision_t, or FILTER_ALL */
    char id[ADMIN_SEGMENT_SIZE];
    char by[BUDGET_NAME_SIZE];
    char note[256];
    int64_t until_ms;
    approval_t approval;
    approval_t *list;
    size_t n;
    int rc;
    char err[256];
} approvals_job_t;

static int decide(approvals_job_t *job, approvals_t *store)
{
    switch (job->op) {
    case APPROVALS_ONCE:
        return approvals_approve_once(store, job->id, job->by, job->now_ms);
    case APPROVALS_STANDING:
        return approvals_grant_standing(store, job->id, job->by, job->until_ms,
                                        job->now_ms);
    case APPROVALS_DENY:
        return approvals_deny(store, job->id, job->by, job->now_ms);
    default:
        return -EINVAL;
    }
}

/* Worker thread. */
static void approvals_run(void *arg)
{
    approvals_job_t *job = arg;
    approvals_t *store;

    job->rc = approvals_open(job->gw->config->ledger_path, &store, job->err,
                             sizeof(job->err));
    if (job->rc < 0)
        return;
    if (job->op == APPROVALS_LIST) {
        job->rc =
            approvals_list(store, job->filter == APPROVAL_DECISION_PENDING,
                           &job->list, &job->n);
    } else {
        job->rc = decide(job, store);
        if (job->rc == 0 || job->rc == -EALREADY)
            approvals_get(store, job->id, &job->approval);
    }
    approvals_close(store);
}

static void reply_list(approvals_job_t *job)
{
    struct json_object *root = json_object_new_object();
    struct json_object *data = json_object_new_array();

    for (size_t i = 0; i < job->n; i++) {
        const approval_t *a = &job->list[i];

        if (job->filter == FILTER_ALL || (int)a->decision == job->filter)
            json_object_array_add(data,
                                  admin_approval_json(a, admin_tz(job->gw)));
    }
    json_object_object_add(root, "object", json_object_new_string("list"));
    json_object_object_add(root, "data", data);
    admin_reply(job->req, 200, root);
}

static void fail_decision(approvals_job_t *job)
{
    char message[160];

    switch (job->rc) {
    case -ENOENT:
        admin_fail(job->req, 404, "not_found", "no approval has that id");
        return;
    case -EALREADY:
        snprintf(message, sizeof(message),
                 "that approval was decided before: %s by %s",
                 approval_decision_name(job->approval.decision),
                 job->approval.decided_by);
        admin_fail(job->req, 409, "already_decided", message);
        return;
    case -EINVAL:
        admin_fail(job->req, 400, "invalid_request",
                   "by must be under 64 bytes; until must be after now");
        return;
    }
    log_warn("admin: approvals store: %s",
             job->err[0] ? job->err : strerror(-job->rc));
    admin_fail(job->req, 500, "server_error",
               "the approvals store could not be read or written; see the "
               "gateway's log");
}

/* Loop. */
static void approvals_done(void *arg)
{
    approvals_job_t *job = arg;

    if (job->rc < 0) {
        fail_decision(job);
    } else if (job->op == APPROVALS_LIST) {
        reply_list(job);
    } else {
        log_info("admin: approval %s %s by=%s%s%s", job->id,
                 approval_decision_name(job->approval.decision), job->by,
                 job->note[0] ? " note=" : "", job->note);
        admin_reply(job->req, 200,
                    admin_approval_json(&job->approval, admin_tz(job->gw)));
    }
    free(job->list);
    free(job);
}

static approvals_job_t *new_job(gateway_t *gw, struct evhttp_request *req,
                                approvals_op_t op)
{
    approvals_job_t *job = calloc(1, sizeof(*job));

    if (job == NULL)
        die_oom();
    job->gw = gw;
    job->req = req;
    job->op = op;
    job->now_ms = clock_now_ms();
    job->filter = FILTER_ALL;
    return job;
}

static int parse_filter(const char *status)
{
    static const char *const names[] = {"pending", "once", "standing",
                                        "denied"};

    if (status == NULL || strcmp(status, "all") == 0)
        return FILTER_ALL;
    for (int i = 0; i < 4; i++)
        if (strcmp(status, names[i]) == 0)
            return i;
    return -2;
}

static void list_approvals(gateway_t *gw, struct evhttp_request *req)
{
    const char *query =
        evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq q;
    int filter;

    evhttp_parse_query_str(query != NULL ? query : "", &q);
    filter = parse_filter(evhttp_find_header(&q, "status"));
    evhttp_clear_headers(&q);
    if (filter == -2) {
        admin_fail(req, 400, "invalid_request",
                   "status must be pending, once, standing, denied or all");
        return;
    }
    approvals_job_t *job = new_job(gw, req, APPROVALS_LIST);

    job->filter = filter;
    worker_submit(gw->worker, approvals_run, approvals_done, job);
}

/* {by, standing, until}: false after answering 400. */
static bool read_approve(approvals_job_t *job, struct json_object *body)
{
    struct json_object *standing = NULL;
    const char *until = NULL;
    bool is_standing = false;

    if (json_object_object_get_ex(body, "standing", &standing) &&
        standing != NULL) {
        if (!json_object_is_type(standing, json_type_boolean))
            goto bad;
        is_standing = json_object_get_boolean(standing);
    }
    if (admin_get_string(body, "until", 64, &until) < 0)
        goto bad;
    if (!is_standing) {
        if (until != NULL)
            goto bad;
        return true;
    }
    job->op = APPROVALS_STANDING;
    if (until != NULL &&
        admin_parse_when(until, job->now_ms, &job->until_ms) == 0)
        return true;

bad:
    admin_fail(job->req, 400, "invalid_request",
               "approve with {\"by\": NAME} once, or {\"by\": NAME, "
               "\"standing\": true, \"until\": \"2027-01-31\"} for a "
               "standing approval");
    return false;
}

/* by (required) and the action's fields; false after answering 400. */
static bool read_decision(approvals_job_t *job, struct json_object *body)
{
    const char *by = NULL, *note = NULL;

    if (admin_get_string(body, "by", sizeof(job->by), &by) < 0 || by == NULL ||
        by[0] == '\0') {
        admin_fail(job->req, 400, "invalid_request",
                   "by is required: the name of who decides, under 64 "
                   "bytes");
        return false;
    }
    snprintf(job->by, sizeof(job->by), "%s", by);
    if (job->op != APPROVALS_DENY)
        return read_approve(job, body);
    if (admin_get_string(body, "note", sizeof(job->note), &note) < 0) {
        admin_fail(job->req, 400, "invalid_request",
                   "note must be a string under 256 bytes");
        return false;
    }
    snprintf(job->note, sizeof(job->note), "%s", note ? note : "");
    return true;
}

static void decide_approval(gateway_t *gw, struct evhttp_request *req,
                            const char *id, const char *action)
{
    approvals_job_t *job;
    struct json_object *body;
    bool ok;

    if (strcmp(action, "approve") != 0 && strcmp(action, "deny") != 0) {
        admin_fail(req, 404, "not_found",
                   "an approval's actions are approve and deny");
        return;
    }
    job = new_job(gw, req, action[0] == 'a' ? APPROVALS_ONCE : APPROVALS_DENY);
    snprintf(job->id, sizeof(job->id), "%s", id);
    body = admin_read_body(req);
    ok = body != NULL && read_decision(job, body);
    json_object_put(body);
    if (!ok) {
        free(job);
        return;
    }
    worker_submit(gw->worker, approvals_run, approvals_done, job);
}

void admin_approvals_route(gateway_t *gw, struct evhttp_request *req,
                           char segs[][ADMIN_SEGMENT_SIZE], int n)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (n == 1 || n > 2)
        admin_fail(req, 404, "not_found",
                   "use /admin/approvals or "
                   "/admin/approvals/{id}/approve|deny");
    else if (n == 0 && cmd == EVHTTP_REQ_GET)
        list_approvals(gw, req);
    else if (n == 2 && cmd == EVHTTP_REQ_POST)
        decide_approval(gw, req, segs[0], segs[1]);
    else
        admin_fail(req, 405, "method_not_allowed",
                   "GET /admin/approvals; POST "
                   "/admin/approvals/{id}/approve|deny");
}

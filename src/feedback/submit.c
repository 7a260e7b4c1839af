/*
 * Feedback from the network: POST /v1/outcomes/{id}/feedback, and the
 * submission both it and the x-tollgate-feedback header go through. The
 * owner check and the write are SQLite work, so they run on gw->worker;
 * the answer is sent from the job's completion on the loop.
 */
#include "feedback/feedback.h"
#include "feedback/store.h"

#include "auth/auth.h"
#include "util/arena.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>
#include "proxy/router.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX 8192

typedef struct submit_job {
    gateway_t *gw;
    feedback_t fb;
    char key_id[64];
    bool admin;
    feedback_source_t source;
    int64_t at_ms;
    feedback_result_t result;
    feedback_done_fn done;
    void *arg;
    char task[64];   /* the outcome's, for the learned pass rates */
    char model[128]; /* "" when unknown */
} submit_job_t;

static const char *const result_names[] = {"stored", "no_outcome", "not_owner",
                                           "store_failed"};

/* The outcome's task and final model, so caller feedback can move the
 * route's pass counts (on the worker: it reads the ledger file). */
static void read_route(struct sqlite3 *db, submit_job_t *job)
{
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(db, "SELECT task, model FROM outcomes WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, job->fb.outcome_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(job->task, sizeof(job->task), "%s",
                 (const char *)sqlite3_column_text(st, 0));
        snprintf(job->model, sizeof(job->model), "%s",
                 (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
}

static void submit_run(void *arg)
{
    submit_job_t *job = arg;
    const char *owner = job->admin ? NULL : job->key_id;
    struct sqlite3 *db = store_worker_db(job->gw->config->ledger_path);

    if (db == NULL) {
        job->result = FEEDBACK_STORE_FAILED;
        return;
    }
    job->result = feedback_store(db, &job->fb, owner, job->source, job->at_ms);

    /* The caller has the id as soon as its answer starts; the record
     * reaches the file a few ms after the call ends. */
    if (job->result == FEEDBACK_NO_OUTCOME && job->gw->ledger != NULL) {
        ledger_flush(job->gw->ledger);
        job->result =
            feedback_store(db, &job->fb, owner, job->source, job->at_ms);
    }
    if (job->result == FEEDBACK_STORED)
        read_route(db, job);
}

static void submit_done(void *arg)
{
    submit_job_t *job = arg;
    int level = job->result == FEEDBACK_STORED ? LOG_INFO : LOG_WARN;

    LOG(level, job->fb.outcome_id, "feedback useful=%d from=%s key=%s: %s",
        job->fb.useful, job->source == FEEDBACK_FROM_HEADER ? "header" : "api",
        job->admin ? "admin" : job->key_id, result_names[job->result]);
    if (job->result == FEEDBACK_STORED && job->model[0] != '\0')
        route_feedback(job->gw, job->task, job->model, job->fb.useful);
    if (job->done != NULL)
        job->done(job->gw, job->result, job->arg);
    free(job);
}

void feedback_submit(gateway_t *gw, const char *key_id, bool admin,
                     feedback_source_t source, const feedback_t *fb,
                     feedback_done_fn done, void *arg)
{
    submit_job_t *job = calloc(1, sizeof(*job));

    if (job == NULL)
        die_oom();
    job->gw = gw;
    job->fb = *fb;
    snprintf(job->key_id, sizeof(job->key_id), "%s", key_id ? key_id : "");
    job->admin = admin;
    job->source = source;
    job->at_ms = clock_now_ms();
    job->done = done;
    job->arg = arg;
    worker_submit(gw->worker, submit_run, submit_done, job);
}

/* ---- POST /v1/outcomes/{id}/feedback ---- */

typedef struct pending {
    struct evhttp_request *req;
    feedback_t fb;
} pending_t;

static void reply_json(struct evhttp_request *req, json_object *obj)
{
    struct evbuffer *out = evbuffer_new();
    const char *text = json_object_to_json_string_ext(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

    if (out == NULL)
        die_oom();
    evbuffer_add(out, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
    json_object_put(obj);
}

static json_object *feedback_json(const feedback_t *fb)
{
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "object",
                           json_object_new_string("outcome.feedback"));
    json_object_object_add(obj, "outcome_id",
                           json_object_new_string(fb->outcome_id));
    json_object_object_add(obj, "useful", json_object_new_boolean(fb->useful));
    json_object_object_add(
        obj, "score", fb->has_score ? json_object_new_double(fb->score) : NULL);
    json_object_object_add(obj, "note", json_object_new_string(fb->note));
    return obj;
}

static void answer(gateway_t *gw, feedback_result_t result, void *arg)
{
    pending_t *p = arg;

    switch (result) {
    case FEEDBACK_STORED:
        reply_json(p->req, feedback_json(&p->fb));
        break;
    case FEEDBACK_NO_OUTCOME:
        gateway_send_error(p->req, 404, "invalid_request_error",
                           "outcome_not_found", NULL,
                           "no such outcome in the ledger; an answer still "
                           "streaming is recorded when it ends");
        break;
    case FEEDBACK_NOT_OWNER:
        gateway_send_error(p->req, 403, "permission_error", "not_outcome_owner",
                           NULL,
                           "this outcome was made with another key; send "
                           "feedback with the key that made the call");
        break;
    default:
        gateway_send_error(p->req, 503, "server_error", "ledger_unavailable",
                           NULL, "the feedback could not be stored; retry");
        break;
    }
    free(p);
}

static void on_key(gateway_t *gw, struct evhttp_request *req,
                   const cfg_key_t *key, int why, void *arg)
{
    pending_t *p = arg;

    if (key == NULL) {
        auth_send_refusal(req, why, false);
        free(p);
        return;
    }
    feedback_submit(gw, key->name, false, FEEDBACK_FROM_API, &p->fb, answer, p);
}

/* The id in /v1/outcomes/{id}/feedback into id; false if not that path. */
static bool path_outcome_id(struct evhttp_request *req, char id[40])
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char prefix[] = "/v1/outcomes/";
    const char suffix[] = "/feedback";
    size_t len;

    if (path == NULL || strncmp(path, prefix, sizeof(prefix) - 1) != 0)
        return false;
    path += sizeof(prefix) - 1;
    len = strcspn(path, "/");
    if (len >= 40 || strcmp(path + len, suffix) != 0)
        return false;
    memcpy(id, path, len);
    id[len] = '\0';
    return true;
}

/* The body, NUL-terminated, into buf; false when over the cap. */
static bool read_body(struct evhttp_request *req, char *buf, size_t cap,
                      size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);

    *len = evbuffer_get_length(in);
    if (*len >= cap)
        return false;
    evbuffer_copyout(in, buf, *len);
    buf[*len] = '\0';
    return true;
}

static bool read_request(struct evhttp_request *req, feedback_t *fb)
{
    char id[40];
    char body[BODY_MAX];
    char err[160];
    size_t len;

    if (!path_outcome_id(req, id)) {
        gateway_send_error(req, 404, "invalid_request_error", "unknown_url",
                           NULL, "use POST /v1/outcomes/{id}/feedback");
        return false;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        gateway_send_error(req, 405, "invalid_request_error",
                           "method_not_allowed", NULL,
                           "feedback is sent with POST");
        return false;
    }
    if (!read_body(req, body, sizeof(body), &len)) {
        gateway_send_error(req, 413, "invalid_request_error",
                           "request_too_large", NULL,
                           "a feedback body is at most 8 KiB");
        return false;
    }
    if (feedback_from_json(id, body, len, fb, err, sizeof(err)) < 0) {
        gateway_send_error(req, 400, "invalid_request_error",
                           "invalid_feedback", NULL, err);
        return false;
    }
    return true;
}

void feedback_handle(gateway_t *gw, struct evhttp_request *req)
{
    pending_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        die_oom();
    p->req = req;
    if (!read_request(req, &p->fb)) {
        free(p);
        return;
    }
    if (auth_is_admin(gw->config, req)) {
        feedback_submit(gw, NULL, true, FEEDBACK_FROM_API, &p->fb, answer, p);
        return;
    }
    auth_resolve(gw, req, false, on_key, p);
}

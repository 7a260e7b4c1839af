/*
 * /admin/keys: list, create, revoke and rotate run-time keys. Each request
 * becomes one job on the gateway's worker (the keystore is on disk); its
 * completion on the loop updates the key ring and answers the caller.
 */
#include "admin/internal.h"

#include "auth/keyring.h"
#include "util/arena.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

typedef enum keys_op {
    KEYS_LIST = 0,
    KEYS_CREATE,
    KEYS_REVOKE,
    KEYS_ROTATE
} keys_op_t;

/* One admin request about keys, owned by the job from submit to the
 * completion, which frees it. */
typedef struct keys_job {
    gateway_t *gw;
    struct evhttp_request *req;
    keys_op_t op;
    int64_t now_ms; /* read on the loop: the clock is the loop's */
    char target[ADMIN_SEGMENT_SIZE];
    char name[BUDGET_NAME_SIZE], team[BUDGET_NAME_SIZE];
    char owner[BUDGET_NAME_SIZE], task[BUDGET_NAME_SIZE];
    int64_t expires_ms;
    keystore_key_t key;
    char secret[KEYSTORE_SECRET_SIZE];
    keystore_key_t *list;
    size_t n;
    int rc;
    char err[256];
} keys_job_t;

static void run_op(keys_job_t *job, keystore_t *ks)
{
    keystore_new_t spec = {job->name, job->team, job->owner, job->task,
                           job->expires_ms};

    switch (job->op) {
    case KEYS_LIST:
        job->rc = keystore_list(ks, &job->list, &job->n);
        break;
    case KEYS_CREATE:
        job->rc =
            keystore_create(ks, &spec, job->now_ms, &job->key, job->secret);
        break;
    case KEYS_REVOKE:
        job->rc = keystore_revoke(ks, job->target, job->now_ms);
        if (job->rc == 0)
            job->rc = keystore_get(ks, job->target, &job->key);
        break;
    case KEYS_ROTATE:
        job->rc = keystore_rotate(ks, job->target, job->now_ms, &job->key,
                                  job->secret);
        break;
    }
}

/* Worker thread. */
static void keys_run(void *arg)
{
    keys_job_t *job = arg;
    keystore_t *ks;

    job->rc = keystore_open(job->gw->config->ledger_path, &ks, job->err,
                            sizeof(job->err));
    if (job->rc < 0)
        return;
    run_op(job, ks);
    keystore_close(ks);
}

static const char *failure_message(const keys_job_t *job)
{
    switch (job->rc) {
    case -ENOENT:
        return "no run-time key has that id or name (keys in the config "
               "file are changed by editing it)";
    case -EEXIST:
        return "a key with that name exists";
    case -EALREADY:
    case -EKEYREVOKED:
        return "that key is revoked";
    case -EKEYEXPIRED:
        return "that key has expired; make a new one";
    case -EINVAL:
        return "name must be 1-63 of A-Z a-z 0-9 . _ @ - (not starting "
               "with 'key_'), other fields under 64 bytes, and expires "
               "after now";
    }
    return "the key store could not be read or written; see the gateway's "
           "log";
}

static void reply_list(keys_job_t *job)
{
    struct json_object *root = json_object_new_object();
    struct json_object *data = json_object_new_array();

    keyring_load(job->gw->keyring, job->list, job->n);
    for (size_t i = 0; i < job->n; i++)
        json_object_array_add(
            data,
            admin_key_json(&job->list[i], admin_tz(job->gw), job->now_ms));
    json_object_object_add(root, "object", json_object_new_string("list"));
    json_object_object_add(root, "data", data);
    admin_reply(job->req, 200, root);
}

static void reply_key(keys_job_t *job)
{
    struct json_object *k =
        admin_key_json(&job->key, admin_tz(job->gw), job->now_ms);
    static const char *const verbs[] = {"listed", "created", "revoked",
                                        "rotated"};

    keyring_put(job->gw->keyring, &job->key);
    if (job->op == KEYS_CREATE || job->op == KEYS_ROTATE)
        json_object_object_add(k, "secret",
                               json_object_new_string(job->secret));
    log_info("admin: key %s name=%s id=%s", verbs[job->op], job->key.name,
             job->key.id);
    admin_reply(job->req, job->op == KEYS_CREATE ? 201 : 200, k);
}

/* Loop: the key ring learns the change before the caller hears of it. */
static void keys_done(void *arg)
{
    keys_job_t *job = arg;

    if (job->rc < 0) {
        if (job->rc != -ENOENT && job->rc != -EEXIST && job->rc != -EINVAL)
            log_warn("admin: key store: %s",
                     job->err[0] ? job->err : strerror(-job->rc));
        admin_fail_code(job->req, job->rc, failure_message(job));
    } else if (job->op == KEYS_LIST) {
        reply_list(job);
    } else {
        reply_key(job);
    }
    OPENSSL_cleanse(job->secret, sizeof(job->secret));
    free(job->list);
    free(job);
}

static keys_job_t *new_job(gateway_t *gw, struct evhttp_request *req,
                           keys_op_t op)
{
    keys_job_t *job = calloc(1, sizeof(*job));

    if (job == NULL)
        die_oom();
    job->gw = gw;
    job->req = req;
    job->op = op;
    job->now_ms = clock_now_ms();
    return job;
}

static bool config_has_key(const config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_keys; i++)
        if (cfg->keys[i].name != NULL && strcmp(cfg->keys[i].name, name) == 0)
            return true;
    return false;
}

/* Copies the create fields from the body; false after answering 400. */
static bool read_spec(keys_job_t *job, struct json_object *body)
{
    const char *name, *team, *owner, *task, *expires;

    if (admin_get_string(body, "name", sizeof(job->name), &name) < 0 ||
        admin_get_string(body, "team", sizeof(job->team), &team) < 0 ||
        admin_get_string(body, "owner", sizeof(job->owner), &owner) < 0 ||
        admin_get_string(body, "task", sizeof(job->task), &task) < 0 ||
        admin_get_string(body, "expires", 64, &expires) < 0 || name == NULL) {
        admin_fail(job->req, 400, "invalid_request",
                   "give name (required), team, owner, task and expires "
                   "as strings under 64 bytes");
        return false;
    }
    if (expires != NULL &&
        admin_parse_when(expires, job->now_ms, &job->expires_ms) < 0) {
        admin_fail(job->req, 400, "invalid_request",
                   "expires must be a date (2027-01-31), a time "
                   "(2027-01-31T09:00Z) or a span ahead (30d)");
        return false;
    }
    snprintf(job->name, sizeof(job->name), "%s", name);
    snprintf(job->team, sizeof(job->team), "%s", team ? team : "");
    snprintf(job->owner, sizeof(job->owner), "%s", owner ? owner : "");
    snprintf(job->task, sizeof(job->task), "%s", task ? task : "");
    return true;
}

static void create_key(gateway_t *gw, struct evhttp_request *req)
{
    keys_job_t *job = new_job(gw, req, KEYS_CREATE);
    struct json_object *body = admin_read_body(req);
    bool ok = body != NULL && read_spec(job, body);

    json_object_put(body);
    if (ok && config_has_key(gw->config, job->name)) {
        admin_fail(req, 409, "conflict",
                   "the config file has a key with that name");
        ok = false;
    }
    if (!ok) {
        free(job);
        return;
    }
    worker_submit(gw->worker, keys_run, keys_done, job);
}

static void act_on_key(gateway_t *gw, struct evhttp_request *req,
                       const char *target, const char *action)
{
    keys_job_t *job;
    keys_op_t op;

    if (strcmp(action, "revoke") == 0) {
        op = KEYS_REVOKE;
    } else if (strcmp(action, "rotate") == 0) {
        op = KEYS_ROTATE;
    } else {
        admin_fail(req, 404, "not_found",
                   "a key's actions are revoke and rotate");
        return;
    }
    job = new_job(gw, req, op);
    snprintf(job->target, sizeof(job->target), "%s", target);
    worker_submit(gw->worker, keys_run, keys_done, job);
}

void admin_keys_route(gateway_t *gw, struct evhttp_request *req,
                      char segs[][ADMIN_SEGMENT_SIZE], int n)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (n == 1 || n > 2) {
        admin_fail(req, 404, "not_found",
                   "use /admin/keys or /admin/keys/{id}/revoke|rotate");
    } else if (n == 0 && cmd == EVHTTP_REQ_GET) {
        worker_submit(gw->worker, keys_run, keys_done,
                      new_job(gw, req, KEYS_LIST));
    } else if (n == 0 && cmd == EVHTTP_REQ_POST) {
        create_key(gw, req);
    } else if (n == 2 && cmd == EVHTTP_REQ_POST) {
        act_on_key(gw, req, segs[0], segs[1]);
    } else {
        admin_fail(req, 405, "method_not_allowed",
                   "GET or POST /admin/keys; POST "
                   "/admin/keys/{id}/revoke|rotate");
    }
}

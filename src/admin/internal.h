/*
 * Shared by the files of src/admin: JSON replies and requests of the admin
 * API, and the JSON and time forms of keys and approvals that the API and
 * the command line both print. Internal to src/admin.
 */
#ifndef TOLLGATE_ADMIN_INTERNAL_H
#define TOLLGATE_ADMIN_INTERNAL_H

#include "budget/approvals.h"
#include "budget/keystore.h"
#include "budget/period.h"
#include "http/gateway.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evhttp_request;
struct json_object;

/* Longest {id} path segment taken: a key name, key id or approval id. */
#define ADMIN_SEGMENT_SIZE BUDGET_NAME_SIZE

/* Sends obj (consumed) with status as JSON. */
void admin_reply(struct evhttp_request *req, int status,
                 struct json_object *obj);

/* An error in OpenAI's shape; type chosen from the status. */
void admin_fail(struct evhttp_request *req, int status, const char *code,
                const char *message);

/* The 4xx/5xx for a store's negative code (-ENOENT 404, -EEXIST and
 * -EALREADY 409, -EINVAL 400, others 500), with message. */
void admin_fail_code(struct evhttp_request *req, int rc, const char *message);

/*
 * Parses the request body as a JSON object; an empty body gives an empty
 * object. Returns the object (the caller puts it), or NULL after
 * answering 400.
 */
struct json_object *admin_read_body(struct evhttp_request *req);

/*
 * A string member of obj: 0 with *out (NULL when absent or null), or
 * -EINVAL when it is of another type or longer than max - 1 bytes.
 */
int admin_get_string(struct json_object *obj, const char *name, size_t max,
                     const char **out);

/*
 * A time given by an operator: ISO 8601 in UTC ("2027-01-31",
 * "2027-01-31T09:00Z", or with an offset), or a span ahead of now_ms
 * ("24h", "7d", "2w"). Returns 0 with *out_ms, or -EINVAL.
 */
int admin_parse_when(const char *text, int64_t now_ms, int64_t *out_ms);

/* The instant as ISO 8601 in tz (NULL: UTC), or JSON null for 0. */
struct json_object *admin_time_json(const budget_tz_t *tz, int64_t ms);

/* "active", "revoked" or "expired" at now_ms. */
const char *admin_key_state(const keystore_key_t *key, int64_t now_ms);

/* A key as the API and `keys list --json` show it: never a secret or
 * its hash. */
struct json_object *admin_key_json(const keystore_key_t *key,
                                   const budget_tz_t *tz, int64_t now_ms);

/* An approval, its estimate as exact USD text and picodollars. */
struct json_object *admin_approval_json(const approval_t *a,
                                        const budget_tz_t *tz);

/* A money member pair: name_usd ("0.500000000000") and name_pico, both
 * null for BUDGET_NO_LIMIT when nullable. */
void admin_add_money(struct json_object *obj, const char *name, pico_t amount,
                     bool nullable);

/* The budget time zone of the running gateway (NULL: UTC). */
const budget_tz_t *admin_tz(const gateway_t *gw);

/* The /admin/keys and /admin/approvals routes; segs are the decoded path
 * segments after the collection's name (n of them, 0 to 2). */
void admin_keys_route(gateway_t *gw, struct evhttp_request *req,
                      char segs[][ADMIN_SEGMENT_SIZE], int n);
void admin_approvals_route(gateway_t *gw, struct evhttp_request *req,
                           char segs[][ADMIN_SEGMENT_SIZE], int n);

#endif

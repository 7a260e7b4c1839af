/*
 * How keys, approvals, money and times look to an operator, in the admin
 * API's JSON and in `tollgate keys|approve --json`: one form for both, so
 * a script can read either.
 */
#include "admin/internal.h"

#include "report/report.h"
#include "util/common.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

int admin_parse_when(const char *text, int64_t now_ms, int64_t *out_ms)
{
    int64_t back;

    if (text == NULL || text[0] == '\0')
        return -EINVAL;
    if (strlen(text) >= 10 && text[4] == '-')
        return report_parse_time(text, now_ms, out_ms);

    /* report_parse_time() reads a span back from now; an expiry or an
     * end of approval lies ahead of it. */
    if (report_parse_time(text, now_ms, &back) < 0)
        return -EINVAL;
    *out_ms = now_ms + (now_ms - back);
    return 0;
}

struct json_object *admin_time_json(const budget_tz_t *tz, int64_t ms)
{
    char text[64];

    if (ms == 0)
        return NULL;
    return json_object_new_string(
        budget_format_time(tz, ms, text, sizeof(text)));
}

const char *admin_key_state(const keystore_key_t *key, int64_t now_ms)
{
    if (key->revoked_ms != 0)
        return "revoked";
    if (key->expires_ms != 0 && key->expires_ms <= now_ms)
        return "expired";
    return "active";
}

static struct json_object *text_or_null(const char *s)
{
    return s[0] != '\0' ? json_object_new_string(s) : NULL;
}

struct json_object *admin_key_json(const keystore_key_t *key,
                                   const budget_tz_t *tz, int64_t now_ms)
{
    struct json_object *k = json_object_new_object();

    json_object_object_add(k, "id", json_object_new_string(key->id));
    json_object_object_add(k, "object", json_object_new_string("key"));
    json_object_object_add(k, "name", json_object_new_string(key->name));
    json_object_object_add(k, "team", text_or_null(key->team));
    json_object_object_add(k, "owner", text_or_null(key->owner));
    json_object_object_add(k, "task", text_or_null(key->default_task));
    json_object_object_add(
        k, "status", json_object_new_string(admin_key_state(key, now_ms)));
    json_object_object_add(k, "created", admin_time_json(tz, key->created_ms));
    json_object_object_add(k, "expires", admin_time_json(tz, key->expires_ms));
    json_object_object_add(k, "revoked", admin_time_json(tz, key->revoked_ms));
    return k;
}

void admin_add_money(struct json_object *obj, const char *name, pico_t amount,
                     bool nullable)
{
    char key[64], usd[48];
    bool none = nullable && amount < 0;

    snprintf(key, sizeof(key), "%s_usd", name);
    json_object_object_add(obj, key,
                           none ? NULL
                                : json_object_new_string(pico_format_usd(
                                      amount, usd, sizeof(usd))));
    snprintf(key, sizeof(key), "%s_pico", name);
    json_object_object_add(obj, key,
                           none ? NULL : json_object_new_int64(amount));
}

struct json_object *admin_approval_json(const approval_t *a,
                                        const budget_tz_t *tz)
{
    struct json_object *o = json_object_new_object();
    bool standing = a->decision == APPROVAL_DECISION_STANDING;

    json_object_object_add(o, "id", json_object_new_string(a->id));
    json_object_object_add(o, "object", json_object_new_string("approval"));
    json_object_object_add(
        o, "status",
        json_object_new_string(approval_decision_name(a->decision)));
    json_object_object_add(o, "key", text_or_null(a->key));
    json_object_object_add(o, "task", text_or_null(a->task));
    json_object_object_add(o, "tier", text_or_null(a->tier));
    json_object_object_add(o, "model", text_or_null(a->model));
    admin_add_money(o, "estimate", a->estimate, false);
    json_object_object_add(o, "reason", text_or_null(a->reason));
    json_object_object_add(o, "created", admin_time_json(tz, a->created_ms));
    json_object_object_add(o, "decided_by", text_or_null(a->decided_by));
    json_object_object_add(o, "decided", admin_time_json(tz, a->decided_ms));
    json_object_object_add(o, "until",
                           standing ? admin_time_json(tz, a->until_ms) : NULL);
    json_object_object_add(o, "used", admin_time_json(tz, a->used_ms));
    return o;
}

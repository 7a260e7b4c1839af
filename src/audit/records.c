/*
 * Records that are not one chat call: OpenAI Usage API buckets (many
 * calls summed), LiteLLM CSV rows, conversations and evaluation lines,
 * plus the time and money parsers every importer shares.
 */
#include "audit/internal.h"
#include "upstream/usage.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (o == NULL || !json_object_is_type(o, json_type_object))
        return NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(struct json_object *o, const char *key)
{
    struct json_object *v = get(o, key);

    return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                    : NULL;
}

/* Days from 1970-01-01 to a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t shape_time_text(const char *text, size_t len)
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, n = 0;
    char buf[40];

    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (isdigit((unsigned char)buf[0]) && strchr(buf, '-') == NULL) {
        int64_t v = strtoll(buf, NULL, 10);
        return v > INT64_C(100000000000) ? v / 1000 : v;
    }
    if (sscanf(buf, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return 0;
    if (buf[n] == 'T' || buf[n] == ' ')
        sscanf(buf + n + 1, "%2d:%2d:%2d", &h, &mi, &s);
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

int64_t shape_time(struct json_object *value)
{
    const char *text;
    int64_t v;

    if (json_object_is_type(value, json_type_int)) {
        v = json_object_get_int64(value);
        return v > INT64_C(100000000000) ? v / 1000 : v;
    }
    if (json_object_is_type(value, json_type_double))
        return (int64_t)json_object_get_double(value);
    if (!json_object_is_type(value, json_type_string))
        return 0;
    text = json_object_get_string(value);
    return shape_time_text(text, strlen(text));
}

/* Exponent of a decimal text ("e-05"), and where the mantissa ends. */
static int split_exponent(const char *text, size_t len, size_t *mant_len,
                          int *exp)
{
    const char *e = memchr(text, 'e', len);

    if (e == NULL)
        e = memchr(text, 'E', len);
    *mant_len = e == NULL ? len : (size_t)(e - text);
    *exp = 0;
    if (e == NULL)
        return 0;
    char buf[8];
    size_t n = len - *mant_len - 1;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, e + 1, n);
    buf[n] = '\0';
    *exp = atoi(buf);
    return *exp < -30 || *exp > 12 ? -EINVAL : 0;
}

#define DIGITS_MAX ((__int128)INT64_C(1000000000000000) * 1000000000000000)

int audit_parse_usd(const char *text, size_t len, pico_t *out)
{
    __int128 digits = 0;
    int scale = 0, exp, shift;
    size_t mant, i = 0;
    bool dot = false, neg = false, any = false;

    if (split_exponent(text, len, &mant, &exp) < 0)
        return -EINVAL;
    if (i < mant && (text[i] == '-' || text[i] == '+'))
        neg = text[i++] == '-';
    for (; i < mant; i++) {
        if (text[i] == '.' && !dot) {
            dot = true;
        } else if (isdigit((unsigned char)text[i])) {
            if (digits >= DIGITS_MAX && dot)
                continue; /* digits past 10^30 cannot move a picodollar */
            digits = digits * 10 + (text[i] - '0');
            scale += dot;
            any = true;
        } else {
            return -EINVAL;
        }
    }
    if (!any)
        return -EINVAL;
    shift = 12 + exp - scale; /* picodollars = digits * 10^shift */
    for (; shift > 0; shift--)
        digits *= 10;
    if (shift < 0) {
        __int128 div = 1, q, r;
        for (; shift < 0 && div < INT64_MAX; shift++)
            div *= 10;
        q = digits / div;
        r = digits % div;
        digits = q + (2 * r > div || (2 * r == div && (q & 1)));
    }
    if (digits > INT64_MAX)
        return -EINVAL;
    *out = neg ? -(pico_t)digits : (pico_t)digits;
    return 0;
}

/* One Usage API completions result inside a bucket that starts at `at`. */
static void usage_result(struct json_object *r, int64_t at, int64_t line,
                         usage_result_fn *fn, void *arg)
{
    audit_call_t call = {0};
    const char *project = str(r, "project_id");
    const char *user = str(r, "user_id");
    const char *key = str(r, "api_key_id");
    char label[AUDIT_LABEL_MAX];

    call.line = line;
    call.at = at;
    call.count = json_object_get_int64(get(r, "num_model_requests"));
    if (call.count <= 0)
        return;
    audit_copy(call.model, sizeof(call.model), str(r, "model"));
    audit_copy(call.owner, sizeof(call.owner), user != NULL ? user : project);
    audit_copy(call.key, sizeof(call.key), key != NULL ? key : project);
    snprintf(label, sizeof(label), "usage-api project %s",
             project != NULL ? project : "(all)");
    audit_set_workflow(&call, label, strlen(label), NULL, 0, NULL, 0);
    call.usage.present = true;
    call.usage.input_tokens = json_object_get_int64(get(r, "input_tokens"));
    call.usage.cached_tokens =
        json_object_get_int64(get(r, "input_cached_tokens"));
    call.usage.audio_in_tokens =
        json_object_get_int64(get(r, "input_audio_tokens"));
    call.usage.output_tokens = json_object_get_int64(get(r, "output_tokens"));
    call.usage.audio_out_tokens =
        json_object_get_int64(get(r, "output_audio_tokens"));
    usage_read_tier(r, "service_tier", &call.usage.service_tier);
    if (json_object_get_boolean(get(r, "batch")))
        call.usage.service_tier = SERVICE_BATCH;
    fn(arg, &call);
}

static int usage_bucket(struct json_object *b, int64_t line,
                        usage_result_fn *fn, void *arg, char *why)
{
    struct json_object *results = get(b, "results");
    int64_t at = shape_time(get(b, "start_time"));
    size_t n;

    if (!json_object_is_type(results, json_type_array)) {
        snprintf(why, 64, "bucket without a results array");
        return -EINVAL;
    }
    n = json_object_array_length(results);
    for (size_t i = 0; i < n; i++) {
        struct json_object *r = json_object_array_get_idx(results, i);
        const char *object = str(r, "object");
        if (object != NULL && strstr(object, "usage.completions") != NULL)
            usage_result(r, at, line, fn, arg);
    }
    return 0;
}

int shape_usage_results(struct json_object *obj, int64_t line,
                        usage_result_fn *fn, void *arg, char *why)
{
    const char *object = str(obj, "object");
    struct json_object *data = get(obj, "data");
    size_t n;
    int rc;

    if (object != NULL && strcmp(object, "bucket") == 0)
        return usage_bucket(obj, line, fn, arg, why);
    if (object != NULL && strstr(object, "usage.completions") != NULL) {
        usage_result(obj, 0, line, fn, arg);
        return 0;
    }
    if (!json_object_is_type(data, json_type_array)) {
        snprintf(why, 64, "page without a data array");
        return -EINVAL;
    }
    n = json_object_array_length(data);
    for (size_t i = 0; i < n; i++)
        if ((rc = usage_bucket(json_object_array_get_idx(data, i), line, fn,
                               arg, why)) < 0)
            return rc;
    return 0;
}

/* A field of a CSV row by its header name, or NULL. */
static const char *field(const csv_t *header, const csv_t *row,
                         const char *name)
{
    int i = csv_column(header, name);

    return i < 0 || i >= row->n ? NULL : row->fields[i];
}

static bool parse_count(const char *s, int64_t *out)
{
    char *end;

    if (s == NULL || *s == '\0') {
        *out = 0;
        return true;
    }
    *out = strtoll(s, &end, 10);
    return *end == '\0' && *out >= 0 && *out <= USAGE_MAX_TOKENS;
}

int shape_litellm_csv(const csv_t *header, const csv_t *row, audit_call_t *call,
                      char *why)
{
    const char *owner = field(header, row, "user");
    const char *key = field(header, row, "key_alias");
    const char *spend = field(header, row, "spend");
    const char *start = field(header, row, "startTime");

    if (owner == NULL || *owner == '\0')
        owner = field(header, row, "team_id");
    if (key == NULL || *key == '\0')
        key = field(header, row, "api_key");
    audit_copy(call->owner, sizeof(call->owner), owner);
    audit_copy(call->key, sizeof(call->key), key);
    audit_copy(call->model, sizeof(call->model), field(header, row, "model"));
    call->count = 1;
    call->at = start == NULL ? 0 : shape_time_text(start, strlen(start));
    call->usage.present = true;
    if (!parse_count(field(header, row, "prompt_tokens"),
                     &call->usage.input_tokens) ||
        !parse_count(field(header, row, "completion_tokens"),
                     &call->usage.output_tokens)) {
        snprintf(why, 64, "token count is not a whole number");
        return -EINVAL;
    }
    if (spend != NULL && *spend != '\0' &&
        audit_parse_usd(spend, strlen(spend), &call->cost) == 0)
        call->has_cost = call->cost_fallback = true;
    audit_set_workflow(call, NULL, 0, NULL, 0, NULL, 0);
    audit_copy(call->label, sizeof(call->label), "(no prompt text)");
    return 1;
}

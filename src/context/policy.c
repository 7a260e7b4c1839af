/*
 * Context policies as the config writes them, the rule names reports
 * use, and the dollars a trim saved at the model's input price.
 */
#include "context/context.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const rule_names[CONTEXT_RULES] = {
    "old_turns",   "repeated",  "tool_results",
    "tool_output", "documents", "budget",
};

const char *context_rule_name(context_rule_t rule)
{
    if ((int)rule < 0 || rule >= CONTEXT_RULES)
        return "unknown";
    return rule_names[rule];
}

void context_policy_default(context_policy_t *policy)
{
    memset(policy, 0, sizeof(*policy));
    policy->keep_system = true;
    policy->respect_cache = true;
}

/* A JSON number or a decimal string, within [min, max]. */
static int number_get(json_object *v, int64_t min, int64_t max, int64_t *out)
{
    const char *s;
    char *end = NULL;

    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
    } else if (json_object_is_type(v, json_type_string)) {
        s = json_object_get_string(v);
        errno = 0;
        *out = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0')
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    return *out < min || *out > max ? -EINVAL : 0;
}

static int bool_get(json_object *v, bool *out)
{
    const char *s = json_object_get_string(v);

    if (json_object_is_type(v, json_type_boolean)) {
        *out = json_object_get_boolean(v);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return -EINVAL;
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)
        *out = false;
    else
        return -EINVAL;
    return 0;
}

static int int_get(json_object *v, int64_t min, int64_t max, int *out)
{
    int64_t n = 0;
    int rc = number_get(v, min, max, &n);

    *out = (int)n;
    return rc;
}

/* 0 (off) or at least CONTEXT_TOOL_OUTPUT_MIN: room for head and tail. */
static int output_max_get(json_object *v, int64_t *out)
{
    if (number_get(v, 0, INT64_C(1) << 40, out) != 0)
        return -EINVAL;
    return *out != 0 && *out < CONTEXT_TOOL_OUTPUT_MIN ? -EINVAL : 0;
}

static int field_set(const char *key, json_object *v, context_policy_t *p)
{
    if (strcmp(key, "budget_tokens") == 0)
        return number_get(v, 0, INT64_C(1) << 40, &p->budget_tokens);
    if (strcmp(key, "keep_system") == 0)
        return bool_get(v, &p->keep_system);
    if (strcmp(key, "keep_last_turns") == 0)
        return int_get(v, 0, 1 << 20, &p->keep_last_turns);
    if (strcmp(key, "drop_repeated_instructions") == 0)
        return bool_get(v, &p->drop_repeated);
    if (strcmp(key, "tool_result_max_age_turns") == 0)
        return int_get(v, 0, 1 << 20, &p->tool_result_age);
    if (strcmp(key, "tool_output_max_tokens") == 0)
        return output_max_get(v, &p->tool_output_max);
    if (strcmp(key, "drop_resent_documents") == 0)
        return bool_get(v, &p->drop_documents);
    if (strcmp(key, "respect_cache") == 0)
        return bool_get(v, &p->respect_cache);
    if (strcmp(key, "openai_cached_prefix_tokens") == 0)
        return number_get(v, 0, INT64_C(1) << 40, &p->openai_prefix_tokens);
    return -ENOENT;
}

int context_policy_parse(json_object *obj, context_policy_t *policy, char *err,
                         size_t errlen)
{
    context_policy_default(policy);
    if (obj == NULL)
        return 0;
    if (!json_object_is_type(obj, json_type_object)) {
        snprintf(err, errlen, "context must be a mapping");
        return -EINVAL;
    }
    json_object_object_foreach(obj, key, val)
    {
        int rc = field_set(key, val, policy);

        if (rc == -ENOENT) {
            snprintf(err, errlen,
                     "unknown context key '%s' (expected budget_tokens, "
                     "keep_system, keep_last_turns, "
                     "drop_repeated_instructions, "
                     "tool_result_max_age_turns, tool_output_max_tokens, "
                     "drop_resent_documents, respect_cache, "
                     "openai_cached_prefix_tokens)",
                     key);
            return -EINVAL;
        }
        if (rc != 0) {
            snprintf(err, errlen, "context: bad value for %s%s", key,
                     strcmp(key, "tool_output_max_tokens") == 0
                         ? " (0, or at least 64)"
                         : "");
            return -EINVAL;
        }
    }
    return 0;
}

pico_t context_saved_pico(const price_t *price, int64_t removed)
{
    if (price == NULL || price->input <= 0 || removed <= 0)
        return 0;
    if (removed > INT64_MAX / price->input)
        return INT64_MAX;
    return removed * price->input;
}

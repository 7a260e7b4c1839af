/*
 * LiteLLM's model_prices_and_context_window.json into price entries. Runs
 * at start from billing_import_file(), never on the request path.
 *
 * A LiteLLM key is a base rate name and suffixes: "_above_200k_tokens" or
 * "_above_128000_tokens" (the long-context twin), "_batches", "_flex" or
 * "_priority" (a service tier), in either order. Keys with any other
 * suffix ("_cache_hit", "_ultrafast") or no rate meaning ("mode",
 * "supports_*") are not prices this table models and are passed over. A
 * key we do model whose value we cannot read exactly rejects the whole
 * entry: pricing it with that rate missing would bill a fallback rate,
 * silently wrong. Values are USD per token.
 */
#include "billing/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TIERED_MAX 2

static const struct litellm_key {
    const char *name;
    price_rate_t rate;
} litellm_keys[] = {
    /* The 1-hour key first: the 5-minute one is its prefix. */
    {"cache_creation_input_token_cost_above_1hr", RATE_WRITE_1H},
    {"cache_creation_input_token_cost", RATE_WRITE_5M},
    {"cache_read_input_token_cost", RATE_CACHED},
    {"input_cost_per_token", RATE_INPUT},
    {"output_cost_per_token", RATE_OUTPUT},
    {"output_cost_per_reasoning_token", RATE_REASONING},
    {"input_cost_per_audio_token", RATE_AUDIO_IN},
    {"output_cost_per_audio_token", RATE_AUDIO_OUT},
};

/* Where one key's value goes. */
struct key_target {
    price_rate_t rate;
    service_tier_t service;
    int64_t threshold; /* 0: the base rate */
};

/* One entry being read, with the reason when it is rejected. */
struct entry {
    price_t price;
    char why[160];
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "_above_200k_tokens" or "_above_128000_tokens" at *rest; moves past. */
static bool threshold_suffix(const char **rest, int64_t *threshold)
{
    static const char above[] = "_above_";
    const char *p = *rest;
    int64_t n = 0;

    if (strncmp(p, above, sizeof(above) - 1) != 0)
        return false;
    p += sizeof(above) - 1;
    if (!is_digit(*p))
        return false;
    for (; is_digit(*p); p++) {
        n = n * 10 + (*p - '0');
        if (n > INT64_C(1000000000000))
            return false;
    }
    if (strncmp(p, "k_tokens", 8) == 0) {
        *threshold = n * 1000;
        *rest = p + 8;
        return true;
    }
    if (strncmp(p, "_tokens", 7) == 0) {
        *threshold = n;
        *rest = p + 7;
        return true;
    }
    return false;
}

static bool service_suffix(const char **rest, service_tier_t *service)
{
    static const struct {
        const char *text;
        service_tier_t service;
    } names[] = {{"_batches", SERVICE_BATCH},
                 {"_flex", SERVICE_FLEX},
                 {"_priority", SERVICE_PRIORITY}};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i].text);

        if (strncmp(*rest, names[i].text, n) == 0) {
            *service = names[i].service;
            *rest += n;
            return true;
        }
    }
    return false;
}

/* The suffixes after a base name; false for any we do not model. */
static bool suffixes_parse(const char *rest, struct key_target *target)
{
    bool have_threshold = false, have_service = false;

    while (*rest != '\0') {
        if (!have_threshold && threshold_suffix(&rest, &target->threshold))
            have_threshold = true;
        else if (!have_service && service_suffix(&rest, &target->service))
            have_service = true;
        else
            return false;
    }
    return true;
}

/* What the key prices, if anything. */
static bool key_parse(const char *key, struct key_target *target)
{
    for (size_t i = 0; i < sizeof(litellm_keys) / sizeof(litellm_keys[0]);
         i++) {
        size_t n = strlen(litellm_keys[i].name);

        if (strncmp(key, litellm_keys[i].name, n) != 0)
            continue;
        target->rate = litellm_keys[i].rate;
        target->service = SERVICE_STANDARD;
        target->threshold = 0;
        if (suffixes_parse(key + n, target))
            return true;
    }
    return false;
}

static int threshold_set(struct entry *e, int64_t threshold)
{
    if (e->price.tier_threshold != 0 && e->price.tier_threshold != threshold) {
        snprintf(e->why, sizeof(e->why),
                 "two long-context thresholds (%lld and %lld tokens)",
                 (long long)e->price.tier_threshold, (long long)threshold);
        return -EINVAL;
    }
    e->price.tier_threshold = threshold;
    return 0;
}

/* Reads a USD-per-token value into the target's slot. */
static int rate_store(struct entry *e, const char *key,
                      const struct key_target *t, json_object *value)
{
    const char *text;
    size_t len;
    pico_t rate;
    int rc = json_decimal_text(value, &text, &len);

    if (rc > 0)
        return 0;
    if (rc < 0 || billing_parse_price(text, len, false, &rate) < 0) {
        snprintf(e->why, sizeof(e->why),
                 "%s is not a whole number of picodollars per token", key);
        return -EINVAL;
    }
    if (t->threshold != 0 && threshold_set(e, t->threshold) < 0)
        return -EINVAL;

    *price_rate_ref(&e->price, t->service, t->rate, t->threshold != 0) = rate;
    if (t->service != SERVICE_STANDARD)
        price_service_rates(&e->price, t->service)->present = true;
    return 0;
}

/* Token limits are not money: one that cannot be read stays unknown. */
static void limit_read(json_object *value, int64_t *limit)
{
    const char *text;
    size_t len;
    int64_t tokens;

    if (json_decimal_text(value, &text, &len) != 0 ||
        decimal_scaled(text, len, SHIFT_NONE, &tokens) < 0)
        return;
    *limit = tokens;
}

/* provider_specific_entry: {"us": 1.1, "fast": 6.0}. "fast" is a speed
 * premium, not a place; other values that are not numbers are ignored. */
static int geo_read(struct entry *e, json_object *spec)
{
    if (!json_object_is_type(spec, json_type_object))
        return 0;
    json_object_object_foreach(spec, name, value)
    {
        price_geo_t *g = &e->price.geo[e->price.n_geo];
        const char *text;
        size_t len;

        if (strcmp(name, "fast") == 0 || strlen(name) >= sizeof(g->name) ||
            e->price.n_geo == PRICE_GEO_MAX ||
            !(json_object_is_type(value, json_type_double) ||
              json_object_is_type(value, json_type_int)))
            continue;
        if (json_decimal_text(value, &text, &len) != 0 ||
            decimal_ratio(text, len, &g->num, &g->den) < 0) {
            snprintf(e->why, sizeof(e->why),
                     "geography multiplier %s is not an exact decimal", name);
            return -EINVAL;
        }
        snprintf(g->name, sizeof(g->name), "%s", name);
        e->price.n_geo++;
    }
    return 0;
}

/* The rate keys of one tiered_pricing range: base rates for the range
 * from 0, tier twins for the range above `threshold`. */
static int range_rates(struct entry *e, json_object *range, int64_t threshold)
{
    json_object_object_foreach(range, key, value)
    {
        struct key_target t;

        if (strcmp(key, "range") == 0 || !key_parse(key, &t) ||
            t.threshold != 0 || t.service != SERVICE_STANDARD)
            continue;
        t.threshold = threshold;
        if (rate_store(e, key, &t, value) < 0)
            return -EINVAL;
    }
    return 0;
}

/* The lower bound of a range [lo, hi], in tokens. */
static int range_low(json_object *range, int64_t *low)
{
    json_object *bounds, *lo;
    const char *text;
    size_t len;

    if (!json_object_object_get_ex(range, "range", &bounds) ||
        !json_object_is_type(bounds, json_type_array) ||
        json_object_array_length(bounds) != 2)
        return -EINVAL;
    lo = json_object_array_get_idx(bounds, 0);
    if (json_decimal_text(lo, &text, &len) != 0)
        return -EINVAL;
    return decimal_scaled(text, len, SHIFT_NONE, low);
}

/*
 * tiered_pricing: [{"range": [0, 256000], rates}, {"range": [256000,
 * 1000000], rates}]. All or nothing on input tokens, lo < tokens <= hi,
 * the last range above its top: exactly the cliff of one threshold, which
 * is all this table models. More ranges are rejected.
 */
static int tiered_read(struct entry *e, json_object *ranges)
{
    size_t n = json_object_is_type(ranges, json_type_array)
                   ? json_object_array_length(ranges)
                   : 0;
    int64_t low0, low1;

    if (n == 0 || n > TIERED_MAX ||
        range_low(json_object_array_get_idx(ranges, 0), &low0) < 0 ||
        low0 != 0) {
        snprintf(e->why, sizeof(e->why),
                 "tiered_pricing is not one or two ranges from 0");
        return -EINVAL;
    }
    if (range_rates(e, json_object_array_get_idx(ranges, 0), 0) < 0)
        return -EINVAL;
    if (n == 1)
        return 0;

    if (range_low(json_object_array_get_idx(ranges, 1), &low1) < 0 ||
        low1 <= 0) {
        snprintf(e->why, sizeof(e->why), "tiered_pricing range unreadable");
        return -EINVAL;
    }
    return range_rates(e, json_object_array_get_idx(ranges, 1), low1);
}

/* One key of an entry: a rate, a limit, the provider, or passed over. */
static int entry_field(struct entry *e, const char *key, json_object *value)
{
    struct key_target t;

    if (key_parse(key, &t))
        return rate_store(e, key, &t, value);
    if (strcmp(key, "max_input_tokens") == 0)
        limit_read(value, &e->price.max_input_tokens);
    else if (strcmp(key, "max_output_tokens") == 0)
        limit_read(value, &e->price.max_output_tokens);
    else if (strcmp(key, "litellm_provider") == 0 &&
             json_object_is_type(value, json_type_string))
        snprintf(e->price.provider, sizeof(e->price.provider), "%s",
                 json_object_get_string(value));
    else if (strcmp(key, "provider_specific_entry") == 0)
        return geo_read(e, value);
    return 0;
}

static void entry_import(import_ctx_t *ctx, const char *model,
                         json_object *fields, const char *source)
{
    struct entry e = {.why = ""};
    json_object *tiers;

    if (billing_price_init(&e.price, model, source) < 0) {
        import_reject(ctx, model, "name longer than %zu characters",
                      sizeof(e.price.model) - 1);
        return;
    }
    price_origin_set(&e.price, source, model);

    json_object_object_foreach(fields, key, value)
    {
        if (strcmp(key, "tiered_pricing") != 0 &&
            entry_field(&e, key, value) < 0) {
            import_reject(ctx, model, "%s", e.why);
            return;
        }
    }
    if (json_object_object_get_ex(fields, "tiered_pricing", &tiers) &&
        tiered_read(&e, tiers) < 0) {
        import_reject(ctx, model, "%s", e.why);
        return;
    }

    if (e.price.input == PRICE_ABSENT || e.price.output == PRICE_ABSENT) {
        ctx->tally.unpriced++;
        return;
    }
    billing_put(ctx->table, &e.price);
    ctx->tally.loaded++;
}

int import_litellm(import_ctx_t *ctx, json_object *root, char *err,
                   size_t errlen)
{
    char source[sizeof(((price_t *)0)->source)];

    (void)err;
    (void)errlen;
    snprintf(source, sizeof(source), "litellm:%s", ctx->file);
    json_object_object_foreach(root, model, fields)
    {
        if (strcmp(model, "sample_spec") == 0 ||
            !json_object_is_type(fields, json_type_object))
            continue;
        entry_import(ctx, model, fields, source);
    }
    return 0;
}

/*
 * One price entry's fields: initialising an entry, reaching any of its
 * rates by (service tier, bucket, long-context tier), and naming it. Used
 * by the importers, the cost rules and the reports.
 */
#include "billing/internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Where each standard rate and its long-context twin live in price_t. */
static const struct standard_slot {
    const char *name;
    size_t base;
    size_t tier;
} standard_slots[PRICE_RATES] = {
    [RATE_INPUT] = {"input", offsetof(price_t, input),
                    offsetof(price_t, tier_input)},
    [RATE_CACHED] = {"cached", offsetof(price_t, cached_input),
                     offsetof(price_t, tier_cached_input)},
    [RATE_WRITE_5M] = {"write_5m", offsetof(price_t, cache_write),
                       offsetof(price_t, tier_cache_write)},
    [RATE_WRITE_1H] = {"write_1h", offsetof(price_t, cache_write_1h),
                       offsetof(price_t, tier_cache_write_1h)},
    [RATE_OUTPUT] = {"output", offsetof(price_t, output),
                     offsetof(price_t, tier_output)},
    [RATE_REASONING] = {"reasoning", offsetof(price_t, reasoning_output),
                        offsetof(price_t, tier_reasoning_output)},
    [RATE_AUDIO_IN] = {"audio_in", offsetof(price_t, audio_input),
                       offsetof(price_t, tier_audio_input)},
    [RATE_AUDIO_OUT] = {"audio_out", offsetof(price_t, audio_output),
                        offsetof(price_t, tier_audio_output)},
};

/* Fields that exist in the original layout (see price_t). */
static bool in_first_layout(price_rate_t rate, bool tier)
{
    if (!tier)
        return rate != RATE_WRITE_1H;
    return rate == RATE_INPUT || rate == RATE_CACHED || rate == RATE_WRITE_5M ||
           rate == RATE_OUTPUT;
}

price_rates_t *price_service_rates(price_t *price, service_tier_t service)
{
    switch (service) {
    case SERVICE_BATCH:
        return &price->batch;
    case SERVICE_FLEX:
        return &price->flex;
    case SERVICE_PRIORITY:
        return &price->priority;
    default:
        return NULL;
    }
}

pico_t *price_rate_ref(price_t *price, service_tier_t service,
                       price_rate_t rate, bool tier)
{
    price_rates_t *set = price_service_rates(price, service);
    const struct standard_slot *slot = &standard_slots[rate];

    if (set != NULL)
        return tier ? &set->tier[rate] : &set->base[rate];
    return (pico_t *)((char *)price + (tier ? slot->tier : slot->base));
}

pico_t billing_rate_get(const price_t *price, service_tier_t service,
                        price_rate_t rate, bool tier)
{
    price_t *p = (price_t *)price;
    const price_rates_t *set;

    if (rate < 0 || rate >= PRICE_RATES)
        return PRICE_ABSENT;
    if (price->layout != PRICE_LAYOUT &&
        (service != SERVICE_STANDARD || !in_first_layout(rate, tier)))
        return PRICE_ABSENT;

    set = price_service_rates(p, service);
    if (set != NULL && !set->present)
        return PRICE_ABSENT;
    return *price_rate_ref(p, service, rate, tier);
}

const char *billing_rate_name(price_rate_t rate)
{
    if (rate < 0 || rate >= PRICE_RATES)
        return "?";
    return standard_slots[rate].name;
}

static void rates_clear(price_rates_t *set)
{
    set->present = false;
    for (int k = 0; k < PRICE_RATES; k++) {
        set->base[k] = PRICE_ABSENT;
        set->tier[k] = PRICE_ABSENT;
    }
}

int billing_price_init(price_t *price, const char *model, const char *source)
{
    memset(price, 0, sizeof(*price));
    price->layout = PRICE_LAYOUT;
    for (int k = 0; k < PRICE_RATES; k++) {
        *price_rate_ref(price, SERVICE_STANDARD, k, false) = PRICE_ABSENT;
        *price_rate_ref(price, SERVICE_STANDARD, k, true) = PRICE_ABSENT;
    }
    rates_clear(&price->batch);
    rates_clear(&price->flex);
    rates_clear(&price->priority);
    snprintf(price->source, sizeof(price->source), "%s",
             source != NULL ? source : "");

    if (strlen(model) >= sizeof(price->model))
        return -ENAMETOOLONG;
    memcpy(price->model, model, strlen(model) + 1);
    price_origin_set(price, price->source, price->model);
    return 0;
}

void price_origin_set(price_t *price, const char *source, const char *entry)
{
    size_t cap = sizeof(price->origin) - 1;
    size_t n = strlen(source), m = strlen(entry);

    /* Cut short rather than fail: the string is for people to follow. */
    n = n < cap ? n : cap;
    memcpy(price->origin, source, n);
    if (n < cap)
        price->origin[n++] = '#';
    m = m < cap - n ? m : cap - n;
    memcpy(price->origin + n, entry, m);
    price->origin[n + m] = '\0';
}

void billing_origin_format(const price_t *price, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    if (price->layout == PRICE_LAYOUT && price->origin[0] != '\0')
        snprintf(out, outlen, "%s", price->origin);
    else
        snprintf(out, outlen, "%.80s#%.78s", price->source, price->model);
}

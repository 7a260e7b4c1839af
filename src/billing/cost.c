/*
 * The cost of one attempt from its usage and its model's price entry.
 * Called on the event loop when an attempt ends; arithmetic only.
 *
 * Usage comes in OpenAI's shape, where each detail count sits inside its
 * parent: cached, cache-write and audio-in tokens inside input_tokens,
 * 1-hour writes inside cache writes, reasoning and audio-out tokens inside
 * output_tokens. Every token is billed once, on the leaf of the smallest
 * bucket the model prices (genai-prices' "nested totals, priced at the
 * leaves"):
 *
 *   input  = (P - C - W - Ai) * in + C * cached + (W - W1) * write_5m
 *            + W1 * write_1h + Ai * audio_in
 *   output = (O - Ao - R) * out + R * reasoning + Ao * audio_out
 *   fees   = per_request + searches * per_search
 *
 * A detail the model has no rate for stays in its parent (Ai, Ao and R
 * are 0 then), so reasoning is billed at the output rate exactly once
 * (BUG-03). Absent cached and cache-write rates fall back to the input
 * rate, an absent 1-hour write to the 5-minute write.
 *
 * The rates are chosen in two steps. The long-context tier is a cliff:
 * with input_tokens above the threshold, every rate that has a tier twin
 * switches for the whole request. Then the service tier: the entry's own
 * batch, flex or priority rate where it has one (its tier twin above the
 * threshold), else the documented rule, batch and flex at 1/2 of the
 * standard rate and priority at the standard rate. Halving a rate can
 * leave half a picodollar, so the sums are kept in half-picodollars and
 * divided once at the end, together with any geography multiplier
 * (11/10 for "us"): one rounding, half to even, on exact integers.
 *
 * A bucket that comes out negative, or a sum that overflows, means the
 * usage cannot be true: the attempt is COST_INVALID_USAGE, never clamped.
 * With no usage at all the status is COST_USAGE_MISSING even for an
 * unknown model, because nothing about the cost is known then.
 */
#include "billing/billing.h"

#include <errno.h>
#include <string.h>

/* The rates one request is billed at, in half-picodollars per token. */
struct rates {
    pico_t half[PRICE_RATES]; /* PRICE_ABSENT: see the fallbacks */
    unsigned fallback;        /* bit per rate priced by the service rule */
};

/* The token count on each leaf, indexed like the rates. */
struct leaves {
    int64_t tokens[PRICE_RATES];
};

static bool rate_present(pico_t rate)
{
    return rate >= 0;
}

/* The service tier's own rate for one bucket, or PRICE_ABSENT. Above the
 * threshold, a standard tier twin with no service twin means the source
 * did not say: the rule prices it rather than the service base rate. */
static pico_t service_rate(const price_t *price, service_tier_t service,
                           price_rate_t k, bool above)
{
    pico_t base = billing_rate_get(price, service, k, false);
    pico_t tier = billing_rate_get(price, service, k, true);

    if (!above)
        return base;
    if (rate_present(tier))
        return tier;
    if (rate_present(billing_rate_get(price, SERVICE_STANDARD, k, true)))
        return PRICE_ABSENT;
    return base;
}

static pico_t standard_rate(const price_t *price, price_rate_t k, bool above)
{
    pico_t tier = billing_rate_get(price, SERVICE_STANDARD, k, true);

    if (above && rate_present(tier))
        return tier;
    return billing_rate_get(price, SERVICE_STANDARD, k, false);
}

/* Batch and flex are half price where the entry is silent; priority is
 * the standard price. */
static pico_t rule_half(service_tier_t service, pico_t standard)
{
    if (service == SERVICE_BATCH || service == SERVICE_FLEX)
        return standard;
    return standard * 2;
}

static void rates_pick(const price_t *price, service_tier_t service, bool above,
                       struct rates *rates)
{
    rates->fallback = 0;
    for (int k = 0; k < PRICE_RATES; k++) {
        pico_t standard = standard_rate(price, k, above);
        pico_t own = PRICE_ABSENT;

        rates->half[k] = PRICE_ABSENT;
        if (service != SERVICE_STANDARD)
            own = service_rate(price, service, k, above);
        if (rate_present(own)) {
            rates->half[k] = own * 2;
        } else if (rate_present(standard)) {
            rates->half[k] = service == SERVICE_STANDARD
                                 ? standard * 2
                                 : rule_half(service, standard);
            if (service != SERVICE_STANDARD)
                rates->fallback |= 1u << k;
        }
    }
}

/* The absent rates that borrow another bucket's rate. */
static void rates_fall_back(struct rates *rates)
{
    pico_t *half = rates->half;

    if (!rate_present(half[RATE_CACHED]))
        half[RATE_CACHED] = half[RATE_INPUT];
    if (!rate_present(half[RATE_WRITE_5M]))
        half[RATE_WRITE_5M] = half[RATE_INPUT];
    if (!rate_present(half[RATE_WRITE_1H]))
        half[RATE_WRITE_1H] = half[RATE_WRITE_5M];
}

static bool counts_valid(const usage_t *u)
{
    return u->input_tokens >= 0 && u->cached_tokens >= 0 &&
           u->cache_write_tokens >= 0 && u->cache_write_1h_tokens >= 0 &&
           u->audio_in_tokens >= 0 && u->output_tokens >= 0 &&
           u->reasoning_tokens >= 0 && u->audio_out_tokens >= 0 &&
           u->web_searches >= 0 &&
           u->cache_write_1h_tokens <= u->cache_write_tokens &&
           u->cached_tokens <= u->input_tokens &&
           u->cache_write_tokens <= u->input_tokens &&
           u->audio_in_tokens <= u->input_tokens &&
           u->reasoning_tokens <= u->output_tokens &&
           u->audio_out_tokens <= u->output_tokens;
}

/* Splits usage into leaves; false when a leaf comes out negative. A
 * modality or reasoning count the model has no rate for stays in its
 * parent. */
static bool leaves_split(const usage_t *u, const struct rates *rates,
                         struct leaves *leaves)
{
    int64_t *t = leaves->tokens;
    bool audio_in = rate_present(rates->half[RATE_AUDIO_IN]);
    bool audio_out = rate_present(rates->half[RATE_AUDIO_OUT]);
    bool reasoning = rate_present(rates->half[RATE_REASONING]);

    t[RATE_CACHED] = u->cached_tokens;
    t[RATE_WRITE_1H] = u->cache_write_1h_tokens;
    t[RATE_WRITE_5M] = u->cache_write_tokens - u->cache_write_1h_tokens;
    t[RATE_AUDIO_IN] = audio_in ? u->audio_in_tokens : 0;
    t[RATE_INPUT] = u->input_tokens - u->cached_tokens - u->cache_write_tokens -
                    t[RATE_AUDIO_IN];

    t[RATE_REASONING] = reasoning ? u->reasoning_tokens : 0;
    t[RATE_AUDIO_OUT] = audio_out ? u->audio_out_tokens : 0;
    t[RATE_OUTPUT] = u->output_tokens - t[RATE_REASONING] - t[RATE_AUDIO_OUT];
    return t[RATE_INPUT] >= 0 && t[RATE_OUTPUT] >= 0;
}

static bool rate_is_input(int k)
{
    return k == RATE_INPUT || k == RATE_CACHED || k == RATE_WRITE_5M ||
           k == RATE_WRITE_1H || k == RATE_AUDIO_IN;
}

/* Sums the leaves into half-picodollars; -ERANGE on overflow. */
static int leaves_sum(const struct leaves *leaves, const struct rates *rates,
                      pico_t *in_half, pico_t *out_half, unsigned *flags)
{
    *in_half = 0;
    *out_half = 0;
    for (int k = 0; k < PRICE_RATES; k++) {
        int64_t tokens = leaves->tokens[k];
        pico_t *sum = rate_is_input(k) ? in_half : out_half;
        pico_t product;

        if (tokens == 0)
            continue;
        if (__builtin_mul_overflow(tokens, rates->half[k], &product) ||
            __builtin_add_overflow(*sum, product, sum))
            return -ERANGE;
        if (rates->fallback & (1u << k))
            *flags |= COST_FLAG_TIER_FALLBACK;
    }
    return 0;
}

/* round(x / d), half to even; x >= 0, d > 0. */
static __int128 div_half_even(__int128 x, __int128 d)
{
    __int128 q = x / d, r = x % d;

    if (2 * r > d || (2 * r == d && (q & 1)))
        q++;
    return q;
}

/* The geography multiplier for usage->geo, or 1/1. */
static void geo_pick(const price_t *price, const usage_t *usage, int64_t *num,
                     int64_t *den, unsigned *flags)
{
    *num = 1;
    *den = 1;
    if (price->layout != PRICE_LAYOUT || usage->geo[0] == '\0')
        return;
    for (int i = 0; i < price->n_geo && i < PRICE_GEO_MAX; i++) {
        const price_geo_t *g = &price->geo[i];

        if (g->den > 0 && g->num >= 0 &&
            strncmp(g->name, usage->geo, sizeof(g->name)) == 0) {
            *num = g->num;
            *den = g->den;
            *flags |= COST_FLAG_GEO;
            return;
        }
    }
}

/* Half-picodollar sums to picodollars, times num/den, rounded once. The
 * input part is rounded on its own and the output part is the rest, so
 * the two always add up to the rounded whole. */
static int scale_round(pico_t in_half, pico_t out_half, int64_t num,
                       int64_t den, cost_t *cost)
{
    __int128 d = (__int128)den * 2;
    __int128 all = div_half_even(((__int128)in_half + out_half) * num, d);
    __int128 in = div_half_even((__int128)in_half * num, d);

    if (all > INT64_MAX)
        return -ERANGE;
    cost->input = (pico_t)in;
    cost->output = (pico_t)(all - in);
    return 0;
}

static int fees_add(const price_t *price, const usage_t *usage, cost_t *cost)
{
    pico_t searches = 0;

    cost->fees = 0;
    if (price->layout != PRICE_LAYOUT)
        return 0;
    if (price->fee_per_request > 0)
        cost->fees = price->fee_per_request;
    if (price->fee_per_web_search > 0 &&
        (__builtin_mul_overflow(usage->web_searches, price->fee_per_web_search,
                                &searches) ||
         __builtin_add_overflow(cost->fees, searches, &cost->fees)))
        return -ERANGE;
    return 0;
}

static int cost_compute(const price_t *price, const usage_t *usage,
                        cost_t *cost)
{
    bool above = price->tier_threshold > 0 &&
                 usage->input_tokens > price->tier_threshold;
    struct rates rates;
    struct leaves leaves;
    pico_t in_half, out_half;
    int64_t num, den;

    if (above)
        cost->flags |= COST_FLAG_LONG_CONTEXT;
    rates_pick(price, usage->service_tier, above, &rates);
    rates_fall_back(&rates);
    if (!leaves_split(usage, &rates, &leaves))
        return -EINVAL;
    if (leaves.tokens[RATE_WRITE_1H] > 0 &&
        !rate_present(
            billing_rate_get(price, SERVICE_STANDARD, RATE_WRITE_1H, false)))
        cost->flags |= COST_FLAG_WRITE_1H_AS_5M;

    if (leaves_sum(&leaves, &rates, &in_half, &out_half, &cost->flags) < 0)
        return -ERANGE;
    geo_pick(price, usage, &num, &den, &cost->flags);
    if (scale_round(in_half, out_half, num, den, cost) < 0 ||
        fees_add(price, usage, cost) < 0)
        return -ERANGE;

    if (__builtin_add_overflow(cost->input, cost->output, &cost->total) ||
        __builtin_add_overflow(cost->total, cost->fees, &cost->total))
        return -ERANGE;
    return 0;
}

cost_t billing_cost(const price_t *price, const usage_t *usage)
{
    cost_t cost = {.status = COST_USAGE_MISSING};
    cost_t invalid = {.status = COST_INVALID_USAGE};

    if (usage == NULL || !usage->present)
        return cost;
    if (!counts_valid(usage))
        return invalid;
    if (price == NULL || !rate_present(price->input) ||
        !rate_present(price->output)) {
        cost.status = COST_UNPRICED;
        return cost;
    }

    if (cost_compute(price, usage, &cost) < 0)
        return invalid;
    cost.status = usage->estimated ? COST_ESTIMATED : COST_PRICED;
    return cost;
}

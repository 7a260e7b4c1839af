/*
 * The cost of one attempt from its usage and its model's price entry.
 * Called on the event loop when an attempt ends; arithmetic only.
 *
 * Usage comes in OpenAI's shape, where each detail count sits inside its
 * parent: cached and cache-write tokens inside input_tokens, reasoning and
 * audio-out tokens inside output_tokens. Every token is billed once, in the
 * smallest bucket the model prices:
 *
 *   input  = (P - C - W - Ai) * in + C * cached + W * write
 *            + Ai * audio_in
 *   output = (O - Ao - R) * out + R * reasoning + Ao * audio_out
 *
 * A detail the model has no rate for stays in its parent (Ai, Ao and R
 * are 0 then), so reasoning is billed at the output rate exactly once
 * (BUG-03); absent cached and cache-write rates fall back to the input
 * rate. Long context is a cliff: above tier_threshold input tokens every
 * rate with a tier twin switches for the whole request.
 *
 * Rates are picodollars per token, so each product is exact in int64. A
 * bucket that comes out negative, or a sum that overflows, means the usage
 * cannot be true: the attempt is COST_INVALID_USAGE, never clamped. With
 * no usage at all the status is COST_USAGE_MISSING even for an unknown
 * model, because nothing about the cost is known then.
 */
#include "billing/billing.h"

#include <errno.h>

/* The rates one request is billed at, after the tier and the fallbacks. */
struct rates {
    pico_t input;
    pico_t cached;
    pico_t write;
    pico_t output;
    pico_t reasoning; /* PRICE_ABSENT: reasoning stays in output */
    pico_t audio_in;  /* PRICE_ABSENT: audio stays in the text bucket */
    pico_t audio_out;
};

static bool rate_present(pico_t rate)
{
    return rate >= 0;
}

static pico_t rate_pick(pico_t base, pico_t tier, bool above)
{
    return above && rate_present(tier) ? tier : base;
}

static void rates_pick(const price_t *price, int64_t input_tokens,
                       struct rates *rates)
{
    bool above =
        price->tier_threshold > 0 && input_tokens > price->tier_threshold;

    rates->input = rate_pick(price->input, price->tier_input, above);
    rates->cached =
        rate_pick(price->cached_input, price->tier_cached_input, above);
    rates->write =
        rate_pick(price->cache_write, price->tier_cache_write, above);
    rates->output = rate_pick(price->output, price->tier_output, above);

    if (!rate_present(rates->cached))
        rates->cached = rates->input;
    if (!rate_present(rates->write))
        rates->write = rates->input;
    rates->reasoning = price->reasoning_output;
    rates->audio_in = price->audio_input;
    rates->audio_out = price->audio_output;
}

/* Every count non-negative and no detail larger than its parent. */
static bool usage_consistent(const usage_t *usage)
{
    int64_t in = usage->input_tokens, out = usage->output_tokens;

    if (in < 0 || out < 0 || usage->cached_tokens < 0 ||
        usage->cache_write_tokens < 0 || usage->audio_in_tokens < 0 ||
        usage->reasoning_tokens < 0 || usage->audio_out_tokens < 0)
        return false;
    if (usage->cached_tokens > in || usage->audio_in_tokens > in ||
        usage->cache_write_tokens > in - usage->cached_tokens)
        return false;
    return usage->reasoning_tokens <= out && usage->audio_out_tokens <= out;
}

/* sum += tokens * rate; false on overflow. */
static bool term_add(pico_t *sum, int64_t tokens, pico_t rate)
{
    pico_t product;

    return !__builtin_mul_overflow(tokens, rate, &product) &&
           !__builtin_add_overflow(*sum, product, sum);
}

/* What is left of parent after taking each detail out; -1 if negative. */
static int64_t leaf(int64_t parent, int64_t a, int64_t b)
{
    if (a > parent || b > parent - a)
        return -1;
    return parent - a - b;
}

static int input_cost(const struct rates *rates, const usage_t *usage,
                      pico_t *out)
{
    int64_t audio = rate_present(rates->audio_in) ? usage->audio_in_tokens : 0;
    int64_t cached = usage->cached_tokens, written = usage->cache_write_tokens;
    int64_t uncached = leaf(usage->input_tokens - cached, written, audio);
    pico_t sum = 0;

    if (uncached < 0)
        return -EINVAL;

    if (!term_add(&sum, uncached, rates->input) ||
        !term_add(&sum, cached, rates->cached) ||
        !term_add(&sum, written, rates->write) ||
        (audio > 0 && !term_add(&sum, audio, rates->audio_in)))
        return -ERANGE;
    *out = sum;
    return 0;
}

static int output_cost(const struct rates *rates, const usage_t *usage,
                       pico_t *out)
{
    int64_t audio =
        rate_present(rates->audio_out) ? usage->audio_out_tokens : 0;
    int64_t reasoning =
        rate_present(rates->reasoning) ? usage->reasoning_tokens : 0;
    int64_t text = leaf(usage->output_tokens, audio, reasoning);
    pico_t sum = 0;

    if (text < 0)
        return -EINVAL;

    if (!term_add(&sum, text, rates->output) ||
        (reasoning > 0 && !term_add(&sum, reasoning, rates->reasoning)) ||
        (audio > 0 && !term_add(&sum, audio, rates->audio_out)))
        return -ERANGE;
    *out = sum;
    return 0;
}

cost_t billing_cost(const price_t *price, const usage_t *usage)
{
    cost_t cost = {.status = COST_USAGE_MISSING};
    cost_t invalid = {.status = COST_INVALID_USAGE};
    struct rates rates;

    if (usage == NULL || !usage->present)
        return cost;
    if (!usage_consistent(usage))
        return invalid;
    if (price == NULL || !rate_present(price->input) ||
        !rate_present(price->output)) {
        cost.status = COST_UNPRICED;
        return cost;
    }

    rates_pick(price, usage->input_tokens, &rates);
    if (input_cost(&rates, usage, &cost.input) < 0 ||
        output_cost(&rates, usage, &cost.output) < 0 ||
        __builtin_add_overflow(cost.input, cost.output, &cost.total))
        return invalid;
    cost.status = COST_PRICED;
    return cost;
}

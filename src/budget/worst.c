/*
 * Worst-case cost of an attempt, for the reservation made before it is
 * sent. The reservation is only as good as this bound, so every choice
 * here leans dear: a rate the call might bill at is a rate it does bill
 * at, for every token.
 */
#include "budget/budget.h"

#include <errno.h>

/* The dearest rates a call at this price can bill at. */
typedef struct dearest {
    pico_t input;  /* per input token */
    pico_t output; /* per output token */
    pico_t per_request, per_search;
    int64_t geo_num, geo_den; /* largest multiplier, >= 1/1 */
} dearest_t;

static void keep_max(pico_t *best, pico_t rate)
{
    if (rate > *best)
        *best = rate;
}

#ifdef PRICE_LAYOUT
/* The extended price entry: every service tier's rates, both sides of the
 * long-context threshold when the bound may pass it, 1-hour cache writes,
 * fees and geography multipliers. */
static void dearest_rates(const price_t *p, bool above, dearest_t *d)
{
    static const price_rate_t in_rates[] = {
        RATE_INPUT, RATE_CACHED, RATE_WRITE_5M, RATE_WRITE_1H, RATE_AUDIO_IN};
    static const price_rate_t out_rates[] = {RATE_OUTPUT, RATE_REASONING,
                                             RATE_AUDIO_OUT};

    for (int s = SERVICE_STANDARD; s <= SERVICE_PRIORITY; s++) {
        for (int t = 0; t <= (int)above; t++) {
            for (size_t i = 0; i < sizeof(in_rates) / sizeof(*in_rates); i++)
                keep_max(&d->input, billing_rate_get(p, s, in_rates[i], t));
            for (size_t i = 0; i < sizeof(out_rates) / sizeof(*out_rates); i++)
                keep_max(&d->output, billing_rate_get(p, s, out_rates[i], t));
        }
    }
    if (p->layout != PRICE_LAYOUT)
        return;
    d->per_request = p->fee_per_request > 0 ? p->fee_per_request : 0;
    d->per_search = p->fee_per_web_search > 0 ? p->fee_per_web_search : 0;
    for (int i = 0; i < p->n_geo && i < PRICE_GEO_MAX; i++) {
        const price_geo_t *g = &p->geo[i];

        if (g->den > 0 && g->num > 0 &&
            (__int128)g->num * d->geo_den > (__int128)d->geo_num * g->den) {
            d->geo_num = g->num;
            d->geo_den = g->den;
        }
    }
}
#else
/* The original price entry: standard rates and their long-context
 * twins, no fees. */
static void dearest_rates(const price_t *p, bool above, dearest_t *d)
{
    keep_max(&d->input, p->input);
    keep_max(&d->input, p->cached_input);
    keep_max(&d->input, p->cache_write);
    keep_max(&d->input, p->audio_input);
    keep_max(&d->output, p->output);
    keep_max(&d->output, p->reasoning_output);
    keep_max(&d->output, p->audio_output);
    if (!above)
        return;
    keep_max(&d->input, p->tier_input);
    keep_max(&d->input, p->tier_cached_input);
    keep_max(&d->input, p->tier_cache_write);
    keep_max(&d->output, p->tier_output);
}
#endif

int64_t budget_input_bound(size_t body_bytes, int64_t n_messages,
                           int64_t n_images)
{
    __int128 total = (__int128)body_bytes + BUDGET_TOKENS_PER_REQUEST;

    if (n_messages > 0)
        total += (__int128)n_messages * BUDGET_TOKENS_PER_MESSAGE;
    if (n_images > 0)
        total += (__int128)n_images * BUDGET_TOKENS_PER_IMAGE;
    return total > INT64_MAX ? INT64_MAX : (int64_t)total;
}

int budget_worst_case(const price_t *price, const budget_bound_t *bound,
                      pico_t *out)
{
    dearest_t d = {PRICE_ABSENT, PRICE_ABSENT, 0, 0, 1, 1};
    bool above;
    __int128 tokens, total;

    if (bound->input_tokens < 0 || bound->output_tokens < 0 ||
        bound->web_searches < 0)
        return -EINVAL;
    above = price->tier_threshold > 0 &&
            bound->input_tokens > price->tier_threshold;
    dearest_rates(price, above, &d);
    if (d.input < 0 || d.output < 0)
        return -EINVAL;

    /* Each product is below 2^126; the multiplier rounds up, so the
     * bound stays above billing's one half-to-even rounding. */
    tokens = (__int128)bound->input_tokens * d.input +
             (__int128)bound->output_tokens * d.output;
    if (tokens > INT64_MAX)
        return -EOVERFLOW;
    tokens = (tokens * d.geo_num + d.geo_den - 1) / d.geo_den;
    total =
        tokens + d.per_request + (__int128)bound->web_searches * d.per_search;
    if (total > INT64_MAX)
        return -EOVERFLOW;
    *out = (pico_t)total;
    return 0;
}

/*
 * Money formatting and the names of cost states; used by the HTTP layer
 * for headers and by reports.
 */
#include "util/common.h"

#include <inttypes.h>
#include <stdio.h>

const char *cost_status_name(cost_status_t status)
{
    switch (status) {
    case COST_PRICED:
        return "priced";
    case COST_UNPRICED:
        return "unpriced";
    case COST_USAGE_MISSING:
        return "usage_missing";
    case COST_INVALID_USAGE:
        return "invalid_usage";
    case COST_NONE:
        return "none";
    case COST_ESTIMATED:
        return "estimated";
    }
    return "unknown";
}

const char *service_tier_name(service_tier_t tier)
{
    switch (tier) {
    case SERVICE_STANDARD:
        return "standard";
    case SERVICE_BATCH:
        return "batch";
    case SERVICE_FLEX:
        return "flex";
    case SERVICE_PRIORITY:
        return "priority";
    }
    return "standard";
}

char *pico_format_usd(pico_t pico, char *out, size_t outlen)
{
    const char *sign = "";
    uint64_t mag;

    if (pico < 0) {
        sign = "-";
        mag = (uint64_t)(-(pico + 1)) + 1;
    } else {
        mag = (uint64_t)pico;
    }
    snprintf(out, outlen, "%s%" PRIu64 ".%012" PRIu64, sign,
             mag / (uint64_t)PICO_PER_USD, mag % (uint64_t)PICO_PER_USD);
    return out;
}

int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * retry-after and retry-after-ms headers, and the per-task retry budget.
 * Dates are turned into Unix time by civil-calendar arithmetic, not by
 * the C library, so the result does not depend on TZ or locale.
 */
#include "route/retry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The longest delay a header may state; beyond it the value is taken
 * for garbage (a year, in milliseconds). */
#define DELAY_MAX_MS (INT64_C(365) * 86400 * 1000)

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int month_of(const char *name)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

    for (int i = 0; i < 12; i++) {
        if (strncmp(name, months + 3 * i, 3) == 0 && name[3] == '\0')
            return i + 1;
    }
    return 0;
}

typedef struct civil {
    int year, day, hour, minute, second;
    char month[4];
} civil_t;

/* IMF-fixdate, RFC 850 and asctime, as RFC 9110 says to accept. */
static int scan_date(const char *v, civil_t *c)
{
    int end = -1;

    if (sscanf(v, "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &c->day,
               c->month, &c->year, &c->hour, &c->minute, &c->second,
               &end) == 6 &&
        end >= 0 && v[end] == '\0')
        return 0;
    end = -1;
    if (sscanf(v, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", &c->day,
               c->month, &c->year, &c->hour, &c->minute, &c->second,
               &end) == 6 &&
        end >= 0 && v[end] == '\0') {
        c->year += c->year < 70 ? 2000 : 1900;
        return 0;
    }
    end = -1;
    if (sscanf(v, "%*3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", c->month,
               &c->day, &c->hour, &c->minute, &c->second, &c->year,
               &end) == 6 &&
        end >= 0 && v[end] == '\0')
        return 0;
    return -EINVAL;
}

static int parse_date(const char *v, int64_t *unix_ms)
{
    civil_t c;
    int month;

    memset(&c, 0, sizeof(c));
    if (scan_date(v, &c) < 0)
        return -EINVAL;
    month = month_of(c.month);
    if (month == 0 || c.day < 1 || c.day > 31 || c.hour > 23 || c.minute > 59 ||
        c.second > 60 || c.year < 1970 || c.year > 9999)
        return -EINVAL;
    *unix_ms = ((days_from_civil(c.year, month, c.day) * 24 + c.hour) * 60 +
                c.minute) *
                   60000 +
               (int64_t)c.second * 1000;
    return 0;
}

/* "30", "1.5", "0.250": a non-negative decimal of at most 10 integer
 * digits, in units of unit_ms. Fractions below 1 ms are dropped. */
static int parse_decimal(const char *v, int64_t unit_ms, int64_t *ms)
{
    int64_t whole = 0, frac = 0, scale = 1;
    size_t i = 0;

    for (; v[i] >= '0' && v[i] <= '9' && i < 10; i++)
        whole = whole * 10 + (v[i] - '0');
    if (i == 0)
        return -EINVAL;
    if (v[i] == '.') {
        for (i++; v[i] >= '0' && v[i] <= '9'; i++) {
            if (scale < 1000000) {
                frac = frac * 10 + (v[i] - '0');
                scale *= 10;
            }
        }
    }
    if (v[i] != '\0')
        return -EINVAL;
    *ms = whole * unit_ms + frac * unit_ms / scale;
    return *ms <= DELAY_MAX_MS ? 0 : -EINVAL;
}

/* Copies value without surrounding spaces; -EINVAL if it does not fit. */
static int trimmed(const char *value, char *out, size_t outlen)
{
    size_t start = 0, end = strlen(value);

    while (value[start] == ' ' || value[start] == '\t')
        start++;
    while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    if (end - start + 1 > outlen)
        return -EINVAL;
    memcpy(out, value + start, end - start);
    out[end - start] = '\0';
    return 0;
}

int retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms)
{
    char v[64];
    int64_t at_ms;

    if (value == NULL || trimmed(value, v, sizeof(v)) < 0)
        return -EINVAL;
    if (v[0] >= '0' && v[0] <= '9')
        return parse_decimal(v, 1000, delay_ms);
    if (parse_date(v, &at_ms) < 0)
        return -EINVAL;
    *delay_ms = at_ms > now_ms ? at_ms - now_ms : 0;
    return *delay_ms <= DELAY_MAX_MS ? 0 : -EINVAL;
}

int retry_after_pick(const char *retry_after_ms, const char *retry_after,
                     int64_t now_ms, int64_t *delay_ms)
{
    char v[64];

    if (retry_after_ms != NULL && trimmed(retry_after_ms, v, sizeof(v)) == 0 &&
        parse_decimal(v, 1, delay_ms) == 0)
        return 0;
    if (retry_after_parse(retry_after, now_ms, delay_ms) == 0)
        return 0;
    return -ENOENT;
}

int retry_budget_init(retry_budget_t *b, int n_slots, int64_t slot_ms,
                      int share_permille, int64_t min_retries)
{
    if (n_slots < 1 || n_slots > RETRY_BUDGET_MAX_SLOTS || slot_ms < 1 ||
        share_permille < 0 || share_permille > 1000 || min_retries < 0)
        return -EINVAL;
    memset(b, 0, sizeof(*b));
    b->n_slots = n_slots;
    b->slot_ms = slot_ms;
    b->share_permille = share_permille;
    b->min_retries = min_retries;
    for (int i = 0; i < n_slots; i++)
        b->slots[i].epoch = -1;
    return 0;
}

/* The slot for now_ms, emptied first if it still holds an old epoch. */
static int current_slot(retry_budget_t *b, int64_t now_ms)
{
    int64_t epoch = now_ms / b->slot_ms;
    int i = (int)(epoch % b->n_slots);

    if (b->slots[i].epoch != epoch) {
        b->slots[i].epoch = epoch;
        b->slots[i].calls = 0;
        b->slots[i].retries = 0;
    }
    return i;
}

void retry_budget_note_call(retry_budget_t *b, int64_t now_ms)
{
    b->slots[current_slot(b, now_ms)].calls++;
}

void retry_budget_counts(const retry_budget_t *b, int64_t now_ms,
                         int64_t *calls, int64_t *retries)
{
    int64_t epoch = now_ms / b->slot_ms;

    *calls = 0;
    *retries = 0;
    for (int i = 0; i < b->n_slots; i++) {
        if (b->slots[i].epoch > epoch - b->n_slots &&
            b->slots[i].epoch <= epoch) {
            *calls += b->slots[i].calls;
            *retries += b->slots[i].retries;
        }
    }
}

bool retry_budget_take(retry_budget_t *b, int64_t now_ms)
{
    int64_t calls, retries, allowed;

    retry_budget_counts(b, now_ms, &calls, &retries);
    allowed = calls * b->share_permille / 1000;
    if (allowed < b->min_retries)
        allowed = b->min_retries;
    if (retries >= allowed)
        return false;
    b->slots[current_slot(b, now_ms)].retries++;
    return true;
}

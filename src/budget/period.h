/*
 * Budget periods on calendar boundaries in a configured time zone: day,
 * ISO week (from Monday), month, or total. Zones come from the system's
 * TZif files, read once at start and never through the process-wide TZ.
 */
#ifndef TOLLGATE_BUDGET_PERIOD_H
#define TOLLGATE_BUDGET_PERIOD_H

#include <stddef.h>
#include <stdint.h>

typedef enum budget_period {
    BUDGET_DAY = 0,
    BUDGET_WEEK = 1,
    BUDGET_MONTH = 2,
    BUDGET_TOTAL = 3
} budget_period_t;

#define BUDGET_PERIOD_COUNT 4

/* A period that never ends (BUDGET_TOTAL) reports these bounds. */
#define BUDGET_TIME_MIN INT64_MIN
#define BUDGET_TIME_MAX INT64_MAX

/* "day", "week", "month", "total". */
const char *budget_period_name(budget_period_t period);
/* Parses those names; returns 0 or -EINVAL. */
int budget_period_parse(const char *text, budget_period_t *out);

typedef struct budget_tz budget_tz_t;

/*
 * Loads an IANA zone ("Europe/Berlin", "UTC") from $TZDIR, or from
 * /usr/share/zoneinfo when TZDIR is unset. Reads the file once; the zone
 * is immutable afterwards, so any thread may use it. Returns 0 with *out
 * owned by the caller (free with budget_tz_free()), or a negative code
 * with a message in err: -EINVAL for a name that is not a zone name (no
 * "..", no leading '/'), -ENOENT for a missing file, -EPROTO for a file
 * that is not TZif or uses leap seconds.
 */
int budget_tz_load(const char *name, budget_tz_t **out, char *err,
                   size_t errlen);
void budget_tz_free(budget_tz_t *tz);

/* The zone's name as loaded; "UTC" for a NULL zone. */
const char *budget_tz_name(const budget_tz_t *tz);

/* Offset from UTC in seconds (east positive) at the instant utc_s. A NULL
 * zone is UTC. */
int32_t budget_tz_offset(const budget_tz_t *tz, int64_t utc_s);

/*
 * The first instant whose local wall time is at or after local_s (a wall
 * time written as seconds since 1970-01-01T00:00 local). A wall time that
 * occurs twice (clocks set back) gives its first occurrence; one that
 * never occurs (clocks set forward) gives the instant of the jump.
 */
int64_t budget_tz_to_utc(const budget_tz_t *tz, int64_t local_s);

/*
 * Bounds of the period containing now_ms: *start_ms <= now_ms < *end_ms,
 * both on local midnights of the zone (the first instant of the day, if a
 * zone skips midnight). BUDGET_TOTAL gives BUDGET_TIME_MIN and
 * BUDGET_TIME_MAX. *end_ms is when the period resets.
 */
void budget_period_bounds(budget_period_t period, const budget_tz_t *tz,
                          int64_t now_ms, int64_t *start_ms, int64_t *end_ms);

/*
 * Writes the instant as local ISO 8601 with its offset
 * ("2026-12-07T00:00:00+01:00"), or "never" for BUDGET_TIME_MAX, into
 * out. Returns out.
 */
char *budget_format_time(const budget_tz_t *tz, int64_t ms, char *out,
                         size_t outlen);

#endif

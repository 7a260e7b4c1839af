/*
 * Calendar periods in a time zone, for the budget book's resets.
 *
 * Why we read TZif files ourselves: localtime_r() answers only for the
 * process-wide TZ, and changing TZ (setenv + tzset) races with every other
 * thread that formats a time (libcurl, the ledger writer, the logger).
 * RFC 8536 files are small and simple: a sorted list of transition
 * instants, each naming a local time type (an offset from UTC), and a
 * footer holding a POSIX TZ rule for instants past the last transition.
 * We load a zone once into an immutable struct and answer from it with a
 * binary search, which any thread may do at any time.
 *
 * Periods start at local midnight. A day's midnight that happens twice
 * (clocks set back at 01:00 to 00:00) starts at its first occurrence; one
 * that never happens (clocks set forward at 00:00) starts at the jump.
 */
#include "budget/period.h"

#include "util/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZIF_MAX_BYTES (256 * 1024)
#define DAY_S INT64_C(86400)

static const char *const period_names[BUDGET_PERIOD_COUNT] = {"day", "week",
                                                              "month", "total"};

const char *budget_period_name(budget_period_t period)
{
    if ((unsigned)period >= BUDGET_PERIOD_COUNT)
        return "?";
    return period_names[period];
}

int budget_period_parse(const char *text, budget_period_t *out)
{
    for (int i = 0; i < BUDGET_PERIOD_COUNT; i++) {
        if (strcmp(text, period_names[i]) == 0) {
            *out = (budget_period_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* Civil calendar arithmetic (proleptic Gregorian, days since 1970-01-01),
 * after Howard Hinnant's public-domain derivation. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday, as POSIX TZ rules count. */
static int weekday_sun0(int64_t days)
{
    return (int)(floor_div(days + 4, 7) * -7 + days + 4);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* One date of a POSIX TZ rule: Jn, n or Mm.w.d, and the local time of
 * day (seconds, may be negative or past 24 h) the change happens at. */
typedef struct rule_date {
    char kind; /* 'J', 'N', 'M' */
    int n, m, w, d;
    int32_t time;
} rule_date_t;

typedef struct posix_rule {
    bool valid;
    bool has_dst;
    int32_t std_off; /* east of UTC, seconds */
    int32_t dst_off;
    rule_date_t start, end;
} posix_rule_t;

struct budget_tz {
    char name[128];
    size_t n_trans;
    int64_t *trans;   /* UTC seconds, ascending */
    uint8_t *type_of; /* local time type of each transition */
    size_t n_types;
    int32_t *type_off; /* offset of each type, east of UTC */
    posix_rule_t rule; /* for instants past the last transition */
};

/* Day (since 1970) on which a rule date falls in year y. */
static int64_t rule_day(const rule_date_t *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    int64_t first, day;

    if (r->kind == 'J')
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == 'N')
        return jan1 + r->n;

    first = days_from_civil(y, r->m, 1);
    day = first + (r->d - weekday_sun0(first) + 7) % 7 + (r->w - 1) * 7;
    while (day >= first + days_in_month(y, r->m))
        day -= 7;
    return day;
}

static int32_t rule_offset(const posix_rule_t *rule, int64_t t)
{
    int64_t y, start, end;
    int m, d;
    bool dst;

    if (!rule->has_dst)
        return rule->std_off;

    civil_from_days(floor_div(t + rule->std_off, DAY_S), &y, &m, &d);
    /* The change into DST happens at a standard-time wall clock, the
     * change back at a DST wall clock. */
    start =
        rule_day(&rule->start, y) * DAY_S + rule->start.time - rule->std_off;
    end = rule_day(&rule->end, y) * DAY_S + rule->end.time - rule->dst_off;
    if (start < end)
        dst = t >= start && t < end;
    else
        dst = !(t >= end && t < start);
    return dst ? rule->dst_off : rule->std_off;
}

int32_t budget_tz_offset(const budget_tz_t *tz, int64_t utc_s)
{
    size_t lo = 0, hi;

    if (tz == NULL)
        return 0;
    if (tz->n_trans == 0)
        return tz->rule.valid ? rule_offset(&tz->rule, utc_s) : tz->type_off[0];
    if (utc_s < tz->trans[0])
        return tz->type_off[0];
    if (utc_s >= tz->trans[tz->n_trans - 1] && tz->rule.valid)
        return rule_offset(&tz->rule, utc_s);

    /* The last transition at or before utc_s. */
    hi = tz->n_trans;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (tz->trans[mid] <= utc_s)
            lo = mid;
        else
            hi = mid;
    }
    return tz->type_off[tz->type_of[lo]];
}

int64_t budget_tz_to_utc(const budget_tz_t *tz, int64_t local_s)
{
    int32_t before = budget_tz_offset(tz, local_s - DAY_S);
    int32_t after = budget_tz_offset(tz, local_s + DAY_S);
    int64_t early = local_s - before, late = local_s - after;
    int64_t lo, hi;
    bool early_ok = budget_tz_offset(tz, early) == before;
    bool late_ok = budget_tz_offset(tz, late) == after;

    if (early_ok && late_ok)
        return early < late ? early : late;
    if (early_ok || late_ok)
        return early_ok ? early : late;
    if (after <= before)
        return early;

    /* In the gap clocks jumped over: find the jump, the first instant
     * between the two readings that has the new offset. */
    lo = late;
    hi = early;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;

        if (budget_tz_offset(tz, mid) == budget_tz_offset(tz, lo))
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

static int64_t local_midnight_ms(const budget_tz_t *tz, int64_t day)
{
    return budget_tz_to_utc(tz, day * DAY_S) * 1000;
}

void budget_period_bounds(budget_period_t period, const budget_tz_t *tz,
                          int64_t now_ms, int64_t *start_ms, int64_t *end_ms)
{
    int64_t now_s = floor_div(now_ms, 1000);
    int64_t day = floor_div(now_s + budget_tz_offset(tz, now_s), DAY_S);
    int64_t first = day, next = day + 1, y;
    int m, d;

    if (period == BUDGET_TOTAL) {
        *start_ms = BUDGET_TIME_MIN;
        *end_ms = BUDGET_TIME_MAX;
        return;
    }
    if (period == BUDGET_WEEK) {
        /* ISO weeks start on Monday; 1970-01-01 was a Thursday. */
        first = day - (weekday_sun0(day) + 6) % 7;
        next = first + 7;
    } else if (period == BUDGET_MONTH) {
        civil_from_days(day, &y, &m, &d);
        first = days_from_civil(y, m, 1);
        next = first + days_in_month(y, m);
    }
    *start_ms = local_midnight_ms(tz, first);
    *end_ms = local_midnight_ms(tz, next);
}

char *budget_format_time(const budget_tz_t *tz, int64_t ms, char *out,
                         size_t outlen)
{
    int64_t s, local, y, secs;
    int32_t off;
    int m, d;

    if (ms == BUDGET_TIME_MAX) {
        snprintf(out, outlen, "never");
        return out;
    }
    s = floor_div(ms, 1000);
    off = budget_tz_offset(tz, s);
    local = s + off;
    civil_from_days(floor_div(local, DAY_S), &y, &m, &d);
    secs = local - floor_div(local, DAY_S) * DAY_S;
    snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
             (long long)y, m, d, (int)(secs / 3600), (int)(secs / 60 % 60),
             (int)(secs % 60), off < 0 ? '-' : '+', abs(off) / 3600,
             abs(off) / 60 % 60);
    return out;
}

const char *budget_tz_name(const budget_tz_t *tz)
{
    return tz != NULL ? tz->name : "UTC";
}

void budget_tz_free(budget_tz_t *tz)
{
    if (tz == NULL)
        return;
    free(tz->trans);
    free(tz->type_of);
    free(tz->type_off);
    free(tz);
}

/* POSIX TZ strings (the TZif footer): "CET-1CEST,M3.5.0,M10.5.0/3". */
static const char *parse_abbr(const char *p)
{
    if (*p == '<') {
        while (*p && *p != '>')
            p++;
        return *p == '>' ? p + 1 : NULL;
    }
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
        return NULL;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p;
}

static const char *parse_num(const char *p, int max, int *out)
{
    int n = 0;

    if (*p < '0' || *p > '9')
        return NULL;
    while (*p >= '0' && *p <= '9') {
        n = n * 10 + (*p++ - '0');
        if (n > max)
            return NULL;
    }
    *out = n;
    return p;
}

/* [+-]hh[:mm[:ss]] as signed seconds. */
static const char *parse_hms(const char *p, int32_t *out)
{
    int sign = 1, h = 0, m = 0, s = 0;

    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    p = parse_num(p, 167, &h);
    if (p != NULL && *p == ':')
        p = parse_num(p + 1, 59, &m);
    if (p != NULL && *p == ':')
        p = parse_num(p + 1, 59, &s);
    if (p != NULL)
        *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *parse_rule_date(const char *p, rule_date_t *r)
{
    r->time = 2 * 3600;
    if (*p == 'M') {
        r->kind = 'M';
        p = parse_num(p + 1, 12, &r->m);
        if (p == NULL || *p != '.' || r->m < 1)
            return NULL;
        p = parse_num(p + 1, 5, &r->w);
        if (p == NULL || *p != '.' || r->w < 1)
            return NULL;
        p = parse_num(p + 1, 6, &r->d);
    } else if (*p == 'J') {
        r->kind = 'J';
        p = parse_num(p + 1, 365, &r->n);
        if (p != NULL && r->n < 1)
            return NULL;
    } else {
        r->kind = 'N';
        p = parse_num(p, 365, &r->n);
    }
    if (p != NULL && *p == '/')
        p = parse_hms(p + 1, &r->time);
    return p;
}

/* Returns 0 for a rule we can use, -EPROTO otherwise. An empty footer
 * leaves the rule invalid: the last transition's type then holds. */
static int parse_posix(const char *p, posix_rule_t *rule)
{
    int32_t west;

    memset(rule, 0, sizeof(*rule));
    if (*p == '\0')
        return 0;
    if ((p = parse_abbr(p)) == NULL || (p = parse_hms(p, &west)) == NULL)
        return -EPROTO;
    rule->std_off = -west;
    rule->valid = true;
    if (*p == '\0')
        return 0;

    if ((p = parse_abbr(p)) == NULL)
        return -EPROTO;
    rule->has_dst = true;
    rule->dst_off = rule->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if ((p = parse_hms(p, &west)) == NULL)
            return -EPROTO;
        rule->dst_off = -west;
    }
    /* No dates given: the US rule POSIX names as the default. */
    if (*p == '\0')
        p = ",M3.2.0,M11.1.0";
    if (*p != ',' || (p = parse_rule_date(p + 1, &rule->start)) == NULL ||
        *p != ',' || (p = parse_rule_date(p + 1, &rule->end)) == NULL ||
        *p != '\0')
        return -EPROTO;
    return 0;
}

/* RFC 8536 counts, in header order. */
typedef struct tzif_counts {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_counts_t;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int read_header(const uint8_t *p, size_t len, tzif_counts_t *c)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -EPROTO;
    c->isutcnt = be32(p + 20);
    c->isstdcnt = be32(p + 24);
    c->leapcnt = be32(p + 28);
    c->timecnt = be32(p + 32);
    c->typecnt = be32(p + 36);
    c->charcnt = be32(p + 40);
    if (c->typecnt == 0 || c->typecnt > 256 || c->timecnt > 100000 ||
        c->charcnt > 65536 || c->leapcnt > 100000 || c->isutcnt > 256 ||
        c->isstdcnt > 256)
        return -EPROTO;
    return 0;
}

static size_t block_size(const tzif_counts_t *c, size_t time_size)
{
    return c->timecnt * (time_size + 1) + c->typecnt * 6 + c->charcnt +
           c->leapcnt * (time_size + 4) + c->isstdcnt + c->isutcnt;
}

static void *zalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (p == NULL) {
        log_error("budget: out of memory");
        abort();
    }
    return p;
}

/* Copies one data block's transitions and types into tz. */
static int read_block(budget_tz_t *tz, const uint8_t *p, const tzif_counts_t *c,
                      size_t time_size)
{
    const uint8_t *idx = p + c->timecnt * time_size;
    const uint8_t *types = idx + c->timecnt;

    if (c->leapcnt != 0)
        return -EPROTO;
    tz->n_trans = c->timecnt;
    tz->trans = zalloc(c->timecnt, sizeof(*tz->trans));
    tz->type_of = zalloc(c->timecnt, 1);
    tz->n_types = c->typecnt;
    tz->type_off = zalloc(c->typecnt, sizeof(*tz->type_off));

    for (uint32_t i = 0; i < c->timecnt; i++) {
        const uint8_t *t = p + i * time_size;

        tz->trans[i] = time_size == 8 ? be64(t) : (int32_t)be32(t);
        if (idx[i] >= c->typecnt || (i > 0 && tz->trans[i] <= tz->trans[i - 1]))
            return -EPROTO;
        tz->type_of[i] = idx[i];
    }
    for (uint32_t i = 0; i < c->typecnt; i++)
        tz->type_off[i] = (int32_t)be32(types + i * 6);
    return 0;
}

/* The footer: "\n" rule "\n" right after the version 2+ data block. */
static int read_footer(budget_tz_t *tz, const uint8_t *p, size_t len)
{
    char text[128];
    const uint8_t *nl;

    if (len < 2 || p[0] != '\n')
        return len == 0 ? 0 : -EPROTO;
    nl = memchr(p + 1, '\n', len - 1);
    if (nl == NULL || (size_t)(nl - p - 1) >= sizeof(text))
        return -EPROTO;
    memcpy(text, p + 1, (size_t)(nl - p - 1));
    text[nl - p - 1] = '\0';
    return parse_posix(text, &tz->rule);
}

static int parse_tzif(budget_tz_t *tz, const uint8_t *buf, size_t len)
{
    tzif_counts_t c;
    size_t size;
    int rc = read_header(buf, len, &c);

    if (rc < 0)
        return rc;
    size = block_size(&c, 4);
    if (44 + size > len)
        return -EPROTO;
    if (buf[4] == '\0')
        return read_block(tz, buf + 44, &c, 4);

    /* Version 2 and later repeat the data with 64-bit times. */
    buf += 44 + size;
    len -= 44 + size;
    if ((rc = read_header(buf, len, &c)) < 0)
        return rc;
    size = block_size(&c, 8);
    if (44 + size > len)
        return -EPROTO;
    if ((rc = read_block(tz, buf + 44, &c, 8)) < 0)
        return rc;
    return read_footer(tz, buf + 44 + size, len - 44 - size);
}

static bool valid_zone_name(const char *name)
{
    if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || strchr("/_+-", *p) != NULL))
            return false;
    return true;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if (f == NULL)
        return -errno;
    *buf = zalloc(TZIF_MAX_BYTES, 1);
    *len = fread(*buf, 1, TZIF_MAX_BYTES, f);
    if (ferror(f) || *len == TZIF_MAX_BYTES)
        rc = -EPROTO;
    fclose(f);
    return rc;
}

int budget_tz_load(const char *name, budget_tz_t **out, char *err,
                   size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    budget_tz_t *tz;
    int rc;

    if (!valid_zone_name(name) || strlen(name) >= sizeof(tz->name)) {
        snprintf(err, errlen, "'%s' is not a time zone name", name);
        return -EINVAL;
    }
    snprintf(path, sizeof(path), "%s/%s",
             dir != NULL && *dir ? dir : "/usr/share/zoneinfo", name);
    rc = read_file(path, &buf, &len);
    if (rc == -EPROTO)
        snprintf(err, errlen, "%s: too large for a zone file", path);
    else if (rc < 0)
        snprintf(err, errlen, "time zone %s: %s", name, strerror(-rc));
    if (rc < 0)
        goto free_buf;

    tz = zalloc(1, sizeof(*tz));
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    rc = parse_tzif(tz, buf, len);
    if (rc < 0) {
        snprintf(err, errlen, "%s: not a TZif file we can use", path);
        budget_tz_free(tz);
        goto free_buf;
    }
    *out = tz;

free_buf:
    free(buf);
    return rc;
}

/*
 * The budget book: spent and held counters per budget, on the event loop.
 *
 * How a hard limit holds under any concurrency. Checking spend before a
 * call and adding its cost afterwards lets every call that starts before
 * the first one ends pass against the same stale total. Instead, each
 * attempt, before it is sent, holds its worst-case cost (a true upper
 * bound, see budget_worst_case()) against every budget that applies, and
 * only if spent + held + amount fits under each hard limit. The check and
 * the hold happen in one step on the single-threaded loop, so no other
 * call can slip between them. When the attempt ends its hold is replaced
 * by the real cost, which the bound promises is no larger; so at every
 * instant spent + held <= hard, and spent alone never passes the limit.
 *
 * Periods roll lazily: the first use after a budget's reset time zeroes
 * its spent for the new period. Holds survive a reset (the calls are
 * still in flight), which only makes the new period stricter until they
 * end.
 */
#include "budget/budget.h"

#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct budget {
    budget_scope_t scope;
    char name[BUDGET_NAME_SIZE];
    budget_period_t period;
    pico_t hard, soft;
    pico_t spent, held;
    int64_t start_ms, end_ms;
    bool soft_reported;
} budget_t;

/* The budgets of one (scope, name), one slot per period. */
typedef struct budget_group {
    budget_t *by_period[BUDGET_PERIOD_COUNT];
} budget_group_t;

struct budget_book {
    const budget_tz_t *tz;
    budget_map_t *groups;
    budget_group_t **group_list; /* owned; freed with the book */
    size_t n_groups, cap_groups;
    budget_t **all; /* in the order added; owned through the groups */
    size_t n_all, cap_all;
};

static void *zalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (p == NULL) {
        log_error("budget: out of memory");
        abort();
    }
    return p;
}

/* Appends to a growable array of pointers; aborts on out of memory. */
static void push(void ***items, size_t *n, size_t *cap, void *item)
{
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 16;
        void **p = realloc(*items, grown * sizeof(*p));

        if (p == NULL) {
            log_error("budget: out of memory");
            abort();
        }
        *items = p;
        *cap = grown;
    }
    (*items)[(*n)++] = item;
}

budget_book_t *budget_book_new(const budget_tz_t *tz)
{
    budget_book_t *book = zalloc(1, sizeof(*book));

    book->tz = tz;
    book->groups = budget_map_new();
    return book;
}

void budget_book_free(budget_book_t *book)
{
    if (book == NULL)
        return;
    for (size_t i = 0; i < book->n_groups; i++) {
        for (int p = 0; p < BUDGET_PERIOD_COUNT; p++)
            free(book->group_list[i]->by_period[p]);
        free(book->group_list[i]);
    }
    free(book->group_list);
    free(book->all);
    budget_map_free(book->groups);
    free(book);
}

static budget_group_t *group_for(budget_book_t *book, budget_scope_t scope,
                                 const char *name)
{
    budget_group_t *g = budget_map_get(book->groups, scope, name);

    if (g != NULL)
        return g;
    g = zalloc(1, sizeof(*g));
    if (budget_map_put(book->groups, scope, name, g) < 0) {
        free(g);
        return NULL;
    }
    push((void ***)&book->group_list, &book->n_groups, &book->cap_groups, g);
    return g;
}

static int check_spec(const budget_spec_t *spec, const char *name)
{
    if ((unsigned)spec->scope >= BUDGET_SCOPE_COUNT ||
        (unsigned)spec->period >= BUDGET_PERIOD_COUNT)
        return -EINVAL;
    if (spec->hard < BUDGET_NO_LIMIT || spec->soft < BUDGET_NO_LIMIT)
        return -EINVAL;
    if ((spec->scope == BUDGET_SCOPE_GLOBAL) != (name[0] == '\0'))
        return -EINVAL;
    if (strlen(name) >= BUDGET_NAME_SIZE)
        return -ENAMETOOLONG;
    return 0;
}

int budget_add(budget_book_t *book, const budget_spec_t *spec)
{
    const char *name = spec->name != NULL ? spec->name : "";
    budget_group_t *g;
    budget_t *b;
    int rc = check_spec(spec, name);

    if (rc < 0)
        return rc;
    g = group_for(book, spec->scope, name);
    if (g == NULL)
        return -ENAMETOOLONG;
    if (g->by_period[spec->period] != NULL)
        return -EEXIST;

    b = zalloc(1, sizeof(*b));
    b->scope = spec->scope;
    memcpy(b->name, name, strlen(name) + 1);
    b->period = spec->period;
    b->hard = spec->hard;
    b->soft = spec->soft;
    /* An end before any time makes the first use compute the period. */
    b->start_ms = b->end_ms = BUDGET_TIME_MIN;
    g->by_period[spec->period] = b;
    push((void ***)&book->all, &book->n_all, &book->cap_all, b);
    return 0;
}

/* Moves a budget into the period holding now_ms if its own has ended.
 * A clock that steps back never reopens an earlier period. */
static void roll(const budget_book_t *book, budget_t *b, int64_t now_ms)
{
    if (now_ms < b->end_ms)
        return;
    budget_period_bounds(b->period, book->tz, now_ms, &b->start_ms, &b->end_ms);
    b->spent = 0;
    b->soft_reported = false;
}

static void fill_status(const budget_t *b, budget_status_t *st)
{
    st->scope = b->scope;
    memcpy(st->name, b->name, sizeof(st->name));
    st->period = b->period;
    st->hard = b->hard;
    st->soft = b->soft;
    st->spent = b->spent;
    st->held = b->held;
    st->start_ms = b->start_ms;
    st->reset_ms = b->end_ms;
}

/* The budgets that apply to who, most specific scope first, each rolled
 * to now_ms. Returns how many (at most BUDGET_MAX_HOLDS). */
static int applicable(budget_book_t *book, const budget_who_t *who,
                      int64_t now_ms, budget_t **out)
{
    int n = 0;

    for (int s = 0; s < BUDGET_SCOPE_COUNT; s++) {
        const char *name = budget_who_name(who, (budget_scope_t)s);
        budget_group_t *g;

        if (s != BUDGET_SCOPE_GLOBAL && name[0] == '\0')
            continue;
        g = budget_map_get(book->groups, (budget_scope_t)s, name);
        for (int p = 0; g != NULL && p < BUDGET_PERIOD_COUNT; p++) {
            if (g->by_period[p] == NULL)
                continue;
            roll(book, g->by_period[p], now_ms);
            out[n++] = g->by_period[p];
        }
    }
    return n;
}

static bool fits(const budget_t *b, pico_t amount)
{
    pico_t total;

    if (b->hard == BUDGET_NO_LIMIT)
        return true;
    /* Overflow can only come from absurd amounts; refuse them. */
    if (__builtin_add_overflow(b->spent, b->held, &total) ||
        __builtin_add_overflow(total, amount, &total))
        return false;
    return total <= b->hard;
}

int budget_reserve(budget_book_t *book, const budget_who_t *who, pico_t amount,
                   int64_t now_ms, budget_reservation_t *res,
                   budget_refusal_t *refusal)
{
    budget_t *found[BUDGET_MAX_HOLDS];
    int n;

    memset(res, 0, sizeof(*res));
    if (amount < 0)
        return -EINVAL;
    n = applicable(book, who, now_ms, found);

    /* Every budget must fit before any is touched: all or nothing. */
    for (int i = 0; i < n; i++) {
        if (fits(found[i], amount))
            continue;
        if (refusal != NULL) {
            fill_status(found[i], &refusal->budget);
            refusal->amount = amount;
        }
        return -EDQUOT;
    }

    for (int i = 0; i < n; i++) {
        found[i]->held += amount;
        res->budgets[i] = found[i];
        res->period_start[i] = found[i]->start_ms;
    }
    res->n = n;
    res->amount = amount;
    res->active = true;
    return 0;
}

static bool crosses_soft(budget_t *b)
{
    if (b->soft == BUDGET_NO_LIMIT || b->soft_reported || b->spent < b->soft)
        return false;
    b->soft_reported = true;
    return true;
}

void budget_settle(budget_book_t *book, budget_reservation_t *res,
                   pico_t actual, int64_t now_ms, budget_settlement_t *out)
{
    budget_settlement_t ignored;

    if (out == NULL)
        out = &ignored;
    memset(out, 0, sizeof(*out));
    if (!res->active)
        return;
    if (actual < 0)
        actual = 0;
    out->over_hold = actual > res->amount;
    out->over_by = out->over_hold ? actual - res->amount : 0;

    for (int i = 0; i < res->n; i++) {
        budget_t *b = res->budgets[i];

        roll(book, b, now_ms);
        b->held -= res->amount;
        if (res->period_start[i] != b->start_ms)
            continue;
        if (__builtin_add_overflow(b->spent, actual, &b->spent))
            b->spent = INT64_MAX;
        if (crosses_soft(b))
            fill_status(b, &out->soft[out->n_soft++]);
    }
    res->active = false;
}

void budget_release(budget_book_t *book, budget_reservation_t *res)
{
    (void)book;
    if (!res->active)
        return;
    for (int i = 0; i < res->n; i++)
        res->budgets[i]->held -= res->amount;
    res->active = false;
}

int budget_status(budget_book_t *book, const budget_who_t *who, int64_t now_ms,
                  budget_status_t *out, int max)
{
    budget_t *found[BUDGET_MAX_HOLDS];
    int n = applicable(book, who, now_ms, found);

    if (n > max)
        n = max;
    for (int i = 0; i < n; i++)
        fill_status(found[i], &out[i]);
    return n;
}

size_t budget_count(const budget_book_t *book)
{
    return book->n_all;
}

int budget_at(budget_book_t *book, size_t i, int64_t now_ms,
              budget_status_t *out)
{
    if (i >= book->n_all)
        return -ENOENT;
    roll(book, book->all[i], now_ms);
    fill_status(book->all[i], out);
    return 0;
}

static const char *period_adjective(budget_period_t period)
{
    static const char *const names[BUDGET_PERIOD_COUNT] = {"daily", "weekly",
                                                           "monthly", "total"};

    return (unsigned)period < BUDGET_PERIOD_COUNT ? names[period] : "?";
}

char *budget_refusal_message(const budget_refusal_t *refusal,
                             const budget_tz_t *tz, char *out, size_t outlen)
{
    const budget_status_t *b = &refusal->budget;
    char spent[32], held[32], hard[32], need[32], owner[96], reset[48];

    if (b->scope == BUDGET_SCOPE_GLOBAL)
        snprintf(owner, sizeof(owner), "the gateway");
    else
        snprintf(owner, sizeof(owner), "%s '%s'", budget_scope_name(b->scope),
                 b->name);
    if (b->reset_ms == BUDGET_TIME_MAX)
        snprintf(reset, sizeof(reset), "It does not reset.");
    else
        snprintf(reset, sizeof(reset), "It resets at %s.",
                 budget_format_time(tz, b->reset_ms, need, sizeof(need)));

    snprintf(out, outlen,
             "Budget exceeded: the %s budget of %s has $%s spent and $%s "
             "held of its $%s limit; this call needs up to $%s. %s",
             period_adjective(b->period), owner,
             pico_format_usd(b->spent, spent, sizeof(spent)),
             pico_format_usd(b->held, held, sizeof(held)),
             pico_format_usd(b->hard, hard, sizeof(hard)),
             pico_format_usd(refusal->amount, need, sizeof(need)), reset);
    return out;
}

void budget_record(budget_book_t *book, const budget_who_t *who, int64_t at_ms,
                   pico_t cost, int64_t now_ms)
{
    budget_t *found[BUDGET_MAX_HOLDS];
    int n = applicable(book, who, now_ms, found);

    for (int i = 0; i < n; i++) {
        budget_t *b = found[i];

        if (at_ms < b->start_ms || at_ms >= b->end_ms)
            continue;
        if (__builtin_add_overflow(b->spent, cost, &b->spent))
            b->spent = INT64_MAX;
        crosses_soft(b);
    }
}

int64_t budget_earliest_start(budget_book_t *book, int64_t now_ms)
{
    int64_t earliest = now_ms;

    for (size_t i = 0; i < book->n_all; i++) {
        roll(book, book->all[i], now_ms);
        if (book->all[i]->start_ms < earliest)
            earliest = book->all[i]->start_ms;
    }
    return earliest;
}

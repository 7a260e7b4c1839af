/*
 * The rate limiter's windows and admission, on the event loop.
 *
 * A refused call takes nothing (BUG-14): every limit of every scope is
 * checked first, and only when all have room is anything charged. A call
 * that a later stage refuses is refunded in full. Tokens are charged at
 * admission with the caller's estimate and corrected at settle, so TPM
 * follows the provider's counts, never the size of base64 images
 * (BUG-15): the estimate is the caller's to make.
 */
#include "budget/ratelimit.h"

#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W RATELIMIT_WINDOW_S

/* Counts per second for the last W seconds, ending at `second`. */
typedef struct window {
    int64_t second;
    int64_t count[W];
    int64_t sum;
} window_t;

typedef struct ratelimit_entry {
    budget_scope_t scope;
    char name[BUDGET_NAME_SIZE];
    int64_t rpm, tpm, concurrent;
    window_t requests, tokens;
    int64_t in_flight;
} ratelimit_entry_t;

struct ratelimit {
    budget_map_t *entries;
    ratelimit_entry_t **list; /* owned */
    size_t n, cap;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static size_t slot_of(int64_t second)
{
    return (size_t)(second - floor_div(second, W) * W);
}

/* Moves the window's end to now_s, dropping seconds that left it. A clock
 * that steps back leaves the window as it is. */
static void advance(window_t *w, int64_t now_s)
{
    if (now_s <= w->second)
        return;
    if (now_s - w->second >= W) {
        memset(w->count, 0, sizeof(w->count));
        w->sum = 0;
    } else {
        for (int64_t s = w->second + 1; s <= now_s; s++) {
            w->sum -= w->count[slot_of(s)];
            w->count[slot_of(s)] = 0;
        }
    }
    w->second = now_s;
}

static bool in_window(const window_t *w, int64_t second)
{
    return second <= w->second && w->second - second < W;
}

/* Adds n (may be negative) to a second still in the window; a slot never
 * goes below zero. */
static void charge(window_t *w, int64_t second, int64_t n)
{
    int64_t *c = &w->count[slot_of(second)];

    if (!in_window(w, second))
        return;
    if (*c + n < 0)
        n = -*c;
    *c += n;
    w->sum += n;
}

/* Milliseconds from now_ms until `freed` units have left the window. */
static int64_t wait_until_freed(const window_t *w, int64_t freed,
                                int64_t now_ms)
{
    int64_t got = 0;

    for (int64_t s = w->second - W + 1; s <= w->second; s++) {
        got += w->count[slot_of(s)];
        if (got >= freed)
            return (s + W) * 1000 - now_ms;
    }
    return 0;
}

/* Milliseconds until the window holds nothing. */
static int64_t wait_until_empty(const window_t *w, int64_t now_ms)
{
    for (int64_t s = w->second; s > w->second - W; s--)
        if (w->count[slot_of(s)] != 0)
            return (s + W) * 1000 - now_ms;
    return 0;
}

ratelimit_t *ratelimit_new(void)
{
    ratelimit_t *rl = calloc(1, sizeof(*rl));

    if (rl == NULL) {
        log_error("ratelimit: out of memory");
        abort();
    }
    rl->entries = budget_map_new();
    return rl;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < rl->n; i++)
        free(rl->list[i]);
    free(rl->list);
    budget_map_free(rl->entries);
    free(rl);
}

static void *need(void *p)
{
    if (p == NULL) {
        log_error("ratelimit: out of memory");
        abort();
    }
    return p;
}

static ratelimit_entry_t *entry_new(ratelimit_t *rl, budget_scope_t scope,
                                    const char *name)
{
    ratelimit_entry_t *e = need(calloc(1, sizeof(*e)));

    if (rl->n == rl->cap) {
        rl->cap = rl->cap ? rl->cap * 2 : 16;
        rl->list = need(realloc(rl->list, rl->cap * sizeof(*rl->list)));
    }
    e->scope = scope;
    memcpy(e->name, name, strlen(name) + 1);
    budget_map_put(rl->entries, scope, name, e);
    rl->list[rl->n++] = e;
    return e;
}

int ratelimit_set(ratelimit_t *rl, const ratelimit_spec_t *spec)
{
    const char *name = spec->name != NULL ? spec->name : "";
    ratelimit_entry_t *e;

    if ((unsigned)spec->scope >= BUDGET_SCOPE_COUNT || spec->rpm < 0 ||
        spec->tpm < 0 || spec->concurrent < 0 ||
        (spec->scope == BUDGET_SCOPE_GLOBAL) != (name[0] == '\0'))
        return -EINVAL;
    if (strlen(name) >= BUDGET_NAME_SIZE)
        return -ENAMETOOLONG;

    e = budget_map_get(rl->entries, spec->scope, name);
    if (e == NULL)
        e = entry_new(rl, spec->scope, name);
    e->rpm = spec->rpm;
    e->tpm = spec->tpm;
    e->concurrent = spec->concurrent;
    return 0;
}

/* The entries that apply to who, most specific first, their windows
 * moved to now. */
static int applicable(ratelimit_t *rl, const budget_who_t *who, int64_t now_ms,
                      ratelimit_entry_t **out)
{
    int64_t now_s = floor_div(now_ms, 1000);
    int n = 0;

    for (int s = 0; s < BUDGET_SCOPE_COUNT; s++) {
        const char *name = budget_who_name(who, (budget_scope_t)s);
        ratelimit_entry_t *e;

        if (s != BUDGET_SCOPE_GLOBAL && name[0] == '\0')
            continue;
        e = budget_map_get(rl->entries, (budget_scope_t)s, name);
        if (e == NULL)
            continue;
        advance(&e->requests, now_s);
        advance(&e->tokens, now_s);
        out[n++] = e;
    }
    return n;
}

static void refuse(ratelimit_refusal_t *r, const ratelimit_entry_t *e,
                   ratelimit_kind_t kind, int64_t limit, int64_t used,
                   int64_t asked)
{
    r->kind = kind;
    r->scope = e->scope;
    memcpy(r->name, e->name, sizeof(r->name));
    r->limit = limit;
    r->used = used;
    r->asked = asked;
    r->never = asked > limit;
    r->retry_after_s = 1;
}

/* Whether a window limit has room for `asked`; when not, fills r with
 * the wait. */
static bool window_fits(const ratelimit_entry_t *e, const window_t *w,
                        ratelimit_kind_t kind, int64_t limit, int64_t asked,
                        int64_t now_ms, ratelimit_refusal_t *r)
{
    int64_t ms;

    if (limit == 0 || (asked <= limit && w->sum <= limit - asked))
        return true;
    refuse(r, e, kind, limit, w->sum, asked);
    if (!r->never) {
        ms = wait_until_freed(w, w->sum + asked - limit, now_ms);
        r->retry_after_s = ms <= 1000 ? 1 : (ms + 999) / 1000;
    }
    return false;
}

/* Checks one entry's three limits; on a refusal, r gets the longest
 * wait of those that refuse. */
static bool entry_fits(const ratelimit_entry_t *e, int64_t tokens,
                       int64_t now_ms, ratelimit_refusal_t *r)
{
    ratelimit_refusal_t one;
    bool ok = true;

    r->retry_after_s = 0;
    if (e->concurrent != 0 && e->in_flight >= e->concurrent) {
        refuse(r, e, RATELIMIT_CONCURRENT, e->concurrent, e->in_flight, 1);
        ok = false;
    }
    if (!window_fits(e, &e->requests, RATELIMIT_REQUESTS, e->rpm, 1, now_ms,
                     &one)) {
        if (ok || one.retry_after_s > r->retry_after_s)
            *r = one;
        ok = false;
    }
    if (!window_fits(e, &e->tokens, RATELIMIT_TOKENS, e->tpm, tokens, now_ms,
                     &one)) {
        if (ok || one.never || one.retry_after_s > r->retry_after_s)
            *r = one;
        ok = false;
    }
    return ok;
}

static void fill_headers(ratelimit_entry_t **found, int n, int64_t now_ms,
                         ratelimit_headers_t *h)
{
    h->limit_requests = h->remaining_requests = h->reset_requests_ms = -1;
    h->limit_tokens = h->remaining_tokens = h->reset_tokens_ms = -1;
    for (int i = 0; i < n; i++) {
        const ratelimit_entry_t *e = found[i];
        int64_t left;

        left = e->rpm - e->requests.sum;
        if (e->rpm != 0 &&
            (h->limit_requests < 0 || left < h->remaining_requests)) {
            h->limit_requests = e->rpm;
            h->remaining_requests = left < 0 ? 0 : left;
            h->reset_requests_ms = wait_until_empty(&e->requests, now_ms);
        }
        left = e->tpm - e->tokens.sum;
        if (e->tpm != 0 &&
            (h->limit_tokens < 0 || left < h->remaining_tokens)) {
            h->limit_tokens = e->tpm;
            h->remaining_tokens = left < 0 ? 0 : left;
            h->reset_tokens_ms = wait_until_empty(&e->tokens, now_ms);
        }
    }
}

int ratelimit_admit(ratelimit_t *rl, const budget_who_t *who, int64_t tokens,
                    int64_t now_ms, ratelimit_ticket_t *ticket,
                    ratelimit_refusal_t *refusal, ratelimit_headers_t *headers)
{
    ratelimit_entry_t *found[BUDGET_SCOPE_COUNT];
    ratelimit_refusal_t worst, one;
    int n = applicable(rl, who, now_ms, found);
    bool ok = true;

    memset(ticket, 0, sizeof(*ticket));
    if (tokens < 0)
        tokens = 0;

    /* Look at every limit before touching any (BUG-14). */
    for (int i = 0; i < n; i++) {
        if (entry_fits(found[i], tokens, now_ms, &one))
            continue;
        if (ok || (one.never && !worst.never) ||
            (one.never == worst.never &&
             one.retry_after_s > worst.retry_after_s))
            worst = one;
        ok = false;
    }
    if (!ok) {
        if (refusal != NULL)
            *refusal = worst;
        if (headers != NULL)
            fill_headers(found, n, now_ms, headers);
        return -EAGAIN;
    }

    ticket->second = floor_div(now_ms, 1000);
    for (int i = 0; i < n; i++) {
        charge(&found[i]->requests, ticket->second, 1);
        charge(&found[i]->tokens, ticket->second, tokens);
        found[i]->in_flight++;
        ticket->entries[i] = found[i];
    }
    ticket->n = n;
    ticket->tokens = tokens;
    ticket->active = true;
    if (headers != NULL)
        fill_headers(found, n, now_ms, headers);
    return 0;
}

static void end_ticket(ratelimit_ticket_t *ticket, int64_t requests,
                       int64_t tokens, int64_t now_ms)
{
    int64_t now_s = floor_div(now_ms, 1000);

    for (int i = 0; i < ticket->n; i++) {
        ratelimit_entry_t *e = ticket->entries[i];

        advance(&e->requests, now_s);
        advance(&e->tokens, now_s);
        charge(&e->requests, ticket->second, requests);
        charge(&e->tokens, ticket->second, tokens);
        if (e->in_flight > 0)
            e->in_flight--;
    }
    ticket->active = false;
}

void ratelimit_settle(ratelimit_t *rl, ratelimit_ticket_t *ticket,
                      int64_t actual_tokens, int64_t now_ms)
{
    (void)rl;
    if (!ticket->active)
        return;
    end_ticket(ticket, 0,
               actual_tokens < 0 ? 0 : actual_tokens - ticket->tokens, now_ms);
}

void ratelimit_refund(ratelimit_t *rl, ratelimit_ticket_t *ticket,
                      int64_t now_ms)
{
    (void)rl;
    if (!ticket->active)
        return;
    end_ticket(ticket, -1, -ticket->tokens, now_ms);
}

void ratelimit_peek(ratelimit_t *rl, const budget_who_t *who, int64_t now_ms,
                    ratelimit_headers_t *headers)
{
    ratelimit_entry_t *found[BUDGET_SCOPE_COUNT];
    int n = applicable(rl, who, now_ms, found);

    fill_headers(found, n, now_ms, headers);
}

void ratelimit_record(ratelimit_t *rl, const budget_who_t *who, int64_t at_ms,
                      int64_t tokens, int64_t now_ms)
{
    ratelimit_entry_t *found[BUDGET_SCOPE_COUNT];
    int n = applicable(rl, who, now_ms, found);
    int64_t second = floor_div(at_ms, 1000);

    for (int i = 0; i < n; i++) {
        charge(&found[i]->requests, second, 1);
        charge(&found[i]->tokens, second, tokens < 0 ? 0 : tokens);
    }
}

char *ratelimit_format_reset(int64_t ms, char *out, size_t outlen)
{
    int64_t min, sec, frac;
    char tail[8] = "";

    if (ms < 0)
        ms = 0;
    if (ms > 0 && ms < 1000) {
        snprintf(out, outlen, "%lldms", (long long)ms);
        return out;
    }
    min = ms / 60000;
    sec = ms / 1000 % 60;
    frac = ms % 1000;

    /* Go's Duration format: trailing zeros of the fraction dropped. */
    if (frac != 0) {
        snprintf(tail, sizeof(tail), ".%03lld", (long long)frac);
        for (size_t n = strlen(tail); tail[n - 1] == '0'; n--)
            tail[n - 1] = '\0';
    }
    if (min > 0)
        snprintf(out, outlen, "%lldm%lld%ss", (long long)min, (long long)sec,
                 tail);
    else
        snprintf(out, outlen, "%lld%ss", (long long)sec, tail);
    return out;
}

/*
 * The policy stage of a call, between routing and the first byte sent:
 * rate limits, step-down near a budget's limit, approval rules, and the
 * budget reservation at the attempt's worst-case cost. Refusals answer
 * the caller in the surface's error shape and are recorded like any
 * other outcome (policy column). The only disk work, approval checks,
 * runs on the worker thread.
 */
#include "proxy/policy.h"

#include "budget/approvals.h"
#include "proxy/call.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tokens counted for an image in a request, whatever its base64 size
 * (OpenAI's high-detail 1024x1024 tile count); never its bytes. */
#define IMAGE_TOKENS 765

static int add_budgets(policy_t *p, const config_t *cfg, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < cfg->n_budgets; i++) {
        const cfg_budget_t *b = &cfg->budgets[i];
        budget_spec_t spec = {
            .name = b->name, .hard = b->hard, .soft = b->soft};
        int rc;

        budget_scope_parse(b->scope, &spec.scope);
        budget_period_parse(b->period, &spec.period);
        rc = budget_add(p->book, &spec);
        if (rc < 0) {
            snprintf(err, errlen, "%s:%d: budget %s '%s' %s: %s", cfg->path,
                     b->line, b->scope, b->name, b->period,
                     rc == -EEXIST ? "is configured twice" : strerror(-rc));
            return rc;
        }
        if (b->step_model != NULL &&
            config_find_model(cfg, b->step_model) == NULL) {
            snprintf(err, errlen,
                     "%s:%d: step_down model '%s' is not "
                     "configured",
                     cfg->path, b->line, b->step_model);
            return -EINVAL;
        }
    }
    return 0;
}

static int add_limits(policy_t *p, const config_t *cfg, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < cfg->n_ratelimits; i++) {
        const cfg_ratelimit_t *r = &cfg->ratelimits[i];
        ratelimit_spec_t spec = {.name = r->name,
                                 .rpm = r->rpm,
                                 .tpm = r->tpm,
                                 .concurrent = r->concurrent};
        int rc;

        budget_scope_parse(r->scope, &spec.scope);
        rc = ratelimit_set(p->rl, &spec);
        if (rc < 0) {
            snprintf(err, errlen, "%s:%d: rate limit: %s", cfg->path, r->line,
                     strerror(-rc));
            return rc;
        }
    }
    return 0;
}

int policy_open(gateway_t *gw, char *err, size_t errlen)
{
    const config_t *cfg = gw->config;
    policy_t *p = calloc(1, sizeof(*p));
    int rc = 0;

    if (p == NULL)
        die_oom();
    gw->policy = p;
    if (cfg->budget_timezone != NULL)
        rc = budget_tz_load(cfg->budget_timezone, &p->tz, err, errlen);
    if (rc < 0)
        return rc;
    p->book = budget_book_new(p->tz);
    p->rl = ratelimit_new();
    p->n_budgets = cfg->n_budgets;
    if ((rc = add_budgets(p, cfg, err, errlen)) < 0 ||
        (rc = add_limits(p, cfg, err, errlen)) < 0)
        return rc;
    /* Counters survive a restart: they are rebuilt from the ledger. */
    if (cfg->n_budgets > 0)
        rc = budget_rebuild(p->book, cfg->ledger_path, clock_now_ms(), err,
                            errlen);
    if (rc == 0 && cfg->n_ratelimits > 0)
        rc = ratelimit_rebuild(p->rl, cfg->ledger_path, clock_now_ms(), err,
                               errlen);
    if (rc == 0 && cfg->n_approval_rules > 0)
        rc = approvals_open(cfg->ledger_path, &p->approvals, err, errlen);
    return rc;
}

void policy_close(gateway_t *gw)
{
    policy_t *p = gw->policy;

    if (p == NULL)
        return;
    approvals_close(p->approvals);
    ratelimit_free(p->rl);
    budget_book_free(p->book);
    budget_tz_free(p->tz);
    free(p);
    gw->policy = NULL;
}

static budget_who_t who_of(const chat_call_t *call)
{
    budget_who_t who = {call->rec->key_id, call->rec->team, call->rec->task};

    return who;
}

static void note(chat_call_t *call, const char *fmt, const char *a,
                 const char *b)
{
    size_t n = strlen(call->rec->policy);
    size_t cap = sizeof(call->rec->policy);

    if (n > 0 && n + 1 < cap)
        call->rec->policy[n++] = ';';
    snprintf(call->rec->policy + n, cap - n, fmt, a, b);
}

/*
 * Input tokens for the TPM window: the request's text estimated, with
 * each base64 image counted as IMAGE_TOKENS instead of its bytes (an
 * image's base64 is not text the model reads as tokens).
 */
static int64_t estimate_input(const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    int64_t tokens = 0;

    for (;;) {
        const char *img = memmem(p, (size_t)(end - p), ";base64,", 8);
        const char *stop = img ? img : end;

        tokens += usage_estimate_tokens(p, (size_t)(stop - p));
        if (img == NULL)
            return tokens;
        tokens += IMAGE_TOKENS;
        p = img + 8;
        while (p < end && *p != '"')
            p++;
    }
}

/* The price the call's model is reserved at (the same order as pricing,
 * without the provider's answer, which has not come yet). */
const price_t *model_price(const chat_call_t *call, const cfg_model_t *m)
{
    const char *names[3] = {m->price_entry, m->upstream, m->name};
    const price_t *price = NULL;

    if (m->has_price)
        return &m->price;
    for (int i = 0; price == NULL && i < 3; i++)
        if (names[i] != NULL)
            price = billing_lookup_at(call->gw->prices, names[i],
                                      call->rec->started_ms / 1000);
    return price;
}

const price_t *call_price(const chat_call_t *call)
{
    return model_price(call, call->model);
}

/* The output cap a budgeted call must carry: the caller's, else the
 * model's configured cap, its price entry's output limit, or the
 * gateway's default. */
static int64_t default_cap(const chat_call_t *call)
{
    const price_t *price = call_price(call);

    if (call->model->max_tokens > 0)
        return call->model->max_tokens;
    if (price != NULL && price->max_output_tokens > 0 &&
        price->max_output_tokens < call->gw->config->default_max_tokens)
        return price->max_output_tokens;
    return call->gw->config->default_max_tokens;
}

/* Near a budget's limit a task may move to a cheaper model or a lower
 * max_tokens before it is refused. */
static void step_down(chat_call_t *call, const budget_status_t *st, int n)
{
    const config_t *cfg = call->gw->config;

    for (size_t i = 0; i < cfg->n_budgets; i++) {
        const cfg_budget_t *b = &cfg->budgets[i];

        for (int j = 0; b->step_percent > 0 && j < n; j++) {
            if (strcmp(budget_scope_name(st[j].scope), b->scope) != 0 ||
                strcmp(st[j].name, b->name) != 0 ||
                strcmp(budget_period_name(st[j].period), b->period) != 0 ||
                st[j].hard <= 0)
                continue;
            if ((st[j].spent + st[j].held) * 100 < st[j].hard * b->step_percent)
                continue;
            if (b->step_model != NULL &&
                strcmp(call->model->name, b->step_model) != 0) {
                call->model = config_find_model(cfg, b->step_model);
                note(call, "step_down:model=%s%s", b->step_model, "");
            }
            if (b->step_max_tokens > 0 &&
                (call->max_sent == 0 || call->max_sent > b->step_max_tokens)) {
                char n_text[24];

                call->max_sent = b->step_max_tokens;
                snprintf(n_text, sizeof(n_text), "%" PRId64,
                         b->step_max_tokens);
                note(call, "step_down:max_tokens=%s%s", n_text, "");
            }
        }
    }
}

void policy_prepare(chat_call_t *call)
{
    budget_status_t st[BUDGET_MAX_HOLDS];
    budget_who_t who = who_of(call);
    int n = budget_status(call->gw->policy->book, &who, clock_now_ms(), st,
                          BUDGET_MAX_HOLDS);

    call->max_sent = call->max_tokens;
    for (int i = 0; i < n; i++)
        call->budgeted |= st[i].hard >= 0;
    /* A reservation bounds the output only if a cap is sent. */
    if (call->budgeted && call->max_sent == 0 &&
        call->surface != SURFACE_EMBEDDINGS)
        call->max_sent = default_cap(call);
    step_down(call, st, n);
}

static void send_ratelimit_headers(chat_call_t *call,
                                   const ratelimit_headers_t *h)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(call->req);
    char v[32];

    if (h->limit_requests >= 0) {
        snprintf(v, sizeof(v), "%" PRId64, h->limit_requests);
        evhttp_add_header(out, "x-ratelimit-limit-requests", v);
        snprintf(v, sizeof(v), "%" PRId64, h->remaining_requests);
        evhttp_add_header(out, "x-ratelimit-remaining-requests", v);
        evhttp_add_header(
            out, "x-ratelimit-reset-requests",
            ratelimit_format_reset(h->reset_requests_ms, v, sizeof(v)));
    }
    if (h->limit_tokens >= 0) {
        snprintf(v, sizeof(v), "%" PRId64, h->limit_tokens);
        evhttp_add_header(out, "x-ratelimit-limit-tokens", v);
        snprintf(v, sizeof(v), "%" PRId64, h->remaining_tokens);
        evhttp_add_header(out, "x-ratelimit-remaining-tokens", v);
        evhttp_add_header(
            out, "x-ratelimit-reset-tokens",
            ratelimit_format_reset(h->reset_tokens_ms, v, sizeof(v)));
    }
}

/* After a refund the headers must not count the refused call. */
static void refresh_rate_headers(chat_call_t *call)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(call->req);
    static const char *const names[] = {
        "x-ratelimit-limit-requests",   "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",   "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"};
    budget_who_t who = who_of(call);
    ratelimit_headers_t hdr;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        while (evhttp_remove_header(out, names[i]) == 0)
            continue;
    ratelimit_peek(call->gw->policy->rl, &who, clock_now_ms(), &hdr);
    send_ratelimit_headers(call, &hdr);
}

static const char *const kind_names[] = {
    "requests per minute", "tokens per minute", "concurrent calls"};

static bool admit_rate(chat_call_t *call)
{
    budget_who_t who = who_of(call);
    ratelimit_refusal_t why;
    ratelimit_headers_t hdr;
    char retry[24];

    call->est_tokens =
        estimate_input(call->body, call->body_len) + call->max_sent;
    if (ratelimit_admit(call->gw->policy->rl, &who, call->est_tokens,
                        clock_now_ms(), &call->ticket, &why, &hdr) == 0) {
        send_ratelimit_headers(call, &hdr);
        return true;
    }
    send_ratelimit_headers(call, &hdr);
    snprintf(retry, sizeof(retry), "%" PRId64, why.retry_after_s);
    if (!why.never)
        evhttp_add_header(evhttp_request_get_output_headers(call->req),
                          "retry-after", retry);
    note(call, "refused:rate_limit%s%s", "", "");
    call_fail(call, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
              arena_printf(call->arena,
                           "Rate limit reached: the %s limit of %s '%s' is "
                           "%" PRId64 " %s; %" PRId64 " used, this call "
                           "needs %" PRId64 ". %s",
                           kind_names[why.kind], budget_scope_name(why.scope),
                           why.name, why.limit, kind_names[why.kind], why.used,
                           why.asked,
                           why.never ? "It can never fit: lower max_tokens "
                                       "or the request's size."
                                     : arena_printf(call->arena,
                                                    "Retry in %s s.", retry)));
    return false;
}

/* Occurrences of needle in the body: a scan, not a parse. Inside a JSON
 * string a quote is escaped, so a quoted needle only matches JSON
 * syntax; an over-count only makes the bound larger. */
static int64_t count_of(const chat_call_t *call, const char *needle)
{
    const char *p = call->body, *end = call->body + call->body_len;
    size_t n = strlen(needle);
    int64_t count = 0;

    while ((p = memmem(p, (size_t)(end - p), needle, n)) != NULL) {
        count++;
        p += n;
    }
    return count;
}

/* Bytes of inline base64 images: an image is billed by its size in
 * tiles (counted apart, per image part), never by its base64 text. */
static size_t base64_bytes(const chat_call_t *call)
{
    const char *p = call->body, *end = call->body + call->body_len;
    size_t n = 0;

    while ((p = memmem(p, (size_t)(end - p), ";base64,", 8)) != NULL) {
        const char *s = p += 8;

        while (p < end && *p != '"')
            p++;
        n += (size_t)(p - s);
    }
    return n;
}

/* Billable searches a call may make: each search tool's max_uses, or
 * SEARCHES_UNCAPPED for a search tool that sets none. */
#define SEARCHES_UNCAPPED 10
static int64_t search_bound(const chat_call_t *call)
{
    const char *p = call->body, *end = call->body + call->body_len;
    int64_t tools = count_of(call, "\"web_search");
    int64_t capped = 0, total = 0;

    while ((p = memmem(p, (size_t)(end - p), "\"max_uses\":", 11))) {
        p += 11;
        capped++;
        total += strtoll(p, NULL, 10);
    }
    if (tools > capped)
        total += (tools - capped) * SEARCHES_UNCAPPED;
    return total;
}

/* The worst case of one attempt. Needed for budgets and for approval
 * rules on cost; false after answering when a budget applies and the
 * model has no price (an unpriced call would spend without counting). */
static bool bound_call(chat_call_t *call)
{
    const price_t *price = call_price(call);
    budget_bound_t bound = {
        .input_tokens = budget_input_bound(
            call->body_len - base64_bytes(call), count_of(call, "\"role\""),
            count_of(call, "image_url\"") + count_of(call, "image\"")),
        .output_tokens =
            call->max_sent > 0 ? call->max_sent : default_cap(call),
        .web_searches = search_bound(call),
    };

    int rc = -EINVAL;

    call->worst = 0;
    if (!call->budgeted && call->gw->config->n_approval_rules == 0)
        return true;
    if (price != NULL)
        rc = budget_worst_case(price, &bound, &call->worst);
    if (rc == 0)
        return true;
    if (rc == -EOVERFLOW) {
        /* Too large to bound is too large to hold or to approve. */
        ratelimit_refund(call->gw->policy->rl, &call->ticket, clock_now_ms());
        refresh_rate_headers(call);
        note(call, "refused:unbounded%s%s", "", "");
        call_fail(call, 400, "invalid_request_error", "invalid_value",
                  "max_tokens",
                  "the request's worst-case cost does not fit in the "
                  "gateway's arithmetic; lower max_tokens");
        return false;
    }
    if (!call->budgeted)
        return true; /* no price: cost rules cannot match */
    ratelimit_refund(call->gw->policy->rl, &call->ticket, clock_now_ms());
    refresh_rate_headers(call);
    note(call, "refused:unpriced%s%s", "", "");
    call_fail(call, 403, "permission_error", "unpriced_model", "model",
              arena_printf(call->arena,
                           "the model '%.100s' has no price, and a budget "
                           "applies to this call: an unpriced call cannot "
                           "be held against it. Give the model a price in "
                           "the config.",
                           call->model->name));
    return false;
}

bool policy_next(chat_call_t *call)
{
    const price_t *price = call_price(call);
    budget_who_t who = who_of(call);
    budget_bound_t bound = {
        .input_tokens =
            budget_input_bound(
                call->body_len - base64_bytes(call), count_of(call, "\"role\""),
                count_of(call, "image_url\"") + count_of(call, "image\"")) +
            (int64_t)call->text.len + 64, /* a re-ask adds the answer */
        .output_tokens =
            call->max_sent > 0 ? call->max_sent : default_cap(call),
        .web_searches = search_bound(call),
    };

    if (call->res.active)
        budget_release(call->gw->policy->book, &call->res);
    call->worst = 0;
    if (call->budgeted &&
        (price == NULL || budget_worst_case(price, &bound, &call->worst)))
        return false;
    if (budget_reserve(call->gw->policy->book, &who, call->worst,
                       clock_now_ms(), &call->res, NULL) == 0)
        return true;
    note(call, "cascade stopped:budget%s%s", "", "");
    return false;
}

bool policy_reserve(chat_call_t *call)
{
    budget_who_t who = who_of(call);
    budget_refusal_t why;
    char msg[512];

    if (budget_reserve(call->gw->policy->book, &who, call->worst,
                       clock_now_ms(), &call->res, &why) == 0)
        return true;
    ratelimit_refund(call->gw->policy->rl, &call->ticket, clock_now_ms());
    refresh_rate_headers(call);
    budget_refusal_message(&why, call->gw->policy->tz, msg, sizeof(msg));
    /* When to try again, as a header too: the budget's reset. */
    if (why.budget.reset_ms < BUDGET_TIME_MAX) {
        char retry[24];

        snprintf(retry, sizeof(retry), "%" PRId64,
                 (why.budget.reset_ms - clock_now_ms() + 999) / 1000);
        evhttp_add_header(evhttp_request_get_output_headers(call->req),
                          "retry-after", retry);
    }
    note(call, "refused:budget%s%s", "", "");
    call_fail(call, 429, "insufficient_quota", "budget_exceeded", NULL, msg);
    return false;
}

/* Which approval rule, if any, holds the call. */
static const cfg_approval_rule_t *rule_for(chat_call_t *call)
{
    const config_t *cfg = call->gw->config;
    budget_status_t st[BUDGET_MAX_HOLDS];
    budget_who_t who = who_of(call);
    int n = budget_status(call->gw->policy->book, &who, clock_now_ms(), st,
                          BUDGET_MAX_HOLDS);

    for (size_t i = 0; i < cfg->n_approval_rules; i++) {
        const cfg_approval_rule_t *r = &cfg->approval_rules[i];
        bool over = r->budget_percent < 0;

        if (r->cost_over >= 0 && call->worst <= r->cost_over)
            continue;
        if (r->task != NULL && strcmp(r->task, call->rec->task) != 0)
            continue;
        if (r->min_tier >= 0 && call->model->tier < r->min_tier)
            continue;
        for (int j = 0; !over && j < n; j++)
            over =
                strcmp(budget_scope_name(st[j].scope), r->budget_scope) == 0 &&
                st[j].hard > 0 &&
                (st[j].spent + st[j].held) * 100 >=
                    st[j].hard * r->budget_percent;
        if (over)
            return r;
    }
    return NULL;
}

/* An approval check, run on the worker; the call may end meanwhile (its
 * caller hangs up), which clears job->call. */
typedef struct policy_job {
    chat_call_t *call;
    approvals_t *store;
    const cfg_approval_rule_t *rule;
    char key[64], task[64], tier[16], model[128], header[64];
    pico_t worst;
    int64_t now_ms;
    int rc;
    approval_verdict_t verdict;
    approval_t found;
    char new_id[APPROVAL_ID_SIZE];
} policy_job_t;

static void check_on_worker(void *arg)
{
    policy_job_t *j = arg;
    approval_call_t who = {j->key, j->task, j->tier};
    approval_request_t req = {j->key,   j->task,  j->tier,
                              j->model, j->worst, j->rule->name};

    j->rc = approvals_check(j->store, &who, j->header, j->now_ms, &j->verdict,
                            &j->found);
    /* A call with no approval leaves a pending one for an approver. */
    if (j->rc == 0 && j->verdict == APPROVAL_NONE)
        j->rc = approvals_create(j->store, &req, j->now_ms, j->new_id);
}

static const char *verdict_text(approval_verdict_t v)
{
    switch (v) {
    case APPROVAL_PENDING:
        return "still awaits a decision";
    case APPROVAL_DENIED:
        return "was denied";
    case APPROVAL_USED:
        return "was for one call and has been used";
    case APPROVAL_EXPIRED:
        return "has expired";
    case APPROVAL_MISMATCH:
        return "is for another key, task or tier";
    default:
        return "is not known";
    }
}

static void hold(chat_call_t *call, policy_job_t *j)
{
    const char *id = j->verdict == APPROVAL_NONE ? j->new_id : j->header;

    budget_release(call->gw->policy->book, &call->res);
    ratelimit_refund(call->gw->policy->rl, &call->ticket, clock_now_ms());
    refresh_rate_headers(call);
    evhttp_add_header(evhttp_request_get_output_headers(call->req),
                      "x-tollgate-approval-id", id);
    note(call, "held:%s (%s)", id, j->rule->name);
    if (j->verdict == APPROVAL_NONE)
        call_fail(call, 403, "permission_error", "approval_required", NULL,
                  arena_printf(call->arena,
                               "This call needs approval under rule '%s' "
                               "(worst-case cost $%s). Approval %s is "
                               "pending; %s can approve it with `tollgate "
                               "approve %s` or the admin API, then retry "
                               "with the header x-tollgate-approval: %s.",
                               j->rule->name,
                               pico_format_usd(
                                   j->worst, arena_alloc(call->arena, 40), 40),
                               id, j->rule->approvers, id, id));
    else
        call_fail(call, 403, "permission_error", "approval_required", NULL,
                  arena_printf(call->arena,
                               "This call needs approval under rule '%s'; "
                               "approval %s %s. Ask %s.",
                               j->rule->name, id, verdict_text(j->verdict),
                               j->rule->approvers));
}

static void check_done(void *arg)
{
    policy_job_t *j = arg;
    chat_call_t *call = j->call;

    if (call == NULL)
        goto out; /* the call ended while the check ran */
    call->job = NULL;
    if (j->rc < 0) {
        budget_release(call->gw->policy->book, &call->res);
        ratelimit_refund(call->gw->policy->rl, &call->ticket, clock_now_ms());
        refresh_rate_headers(call);
        call_fail(call, 503, "server_error", "approvals_unavailable", NULL,
                  "the approvals store could not be read; retry shortly");
    } else if (j->verdict != APPROVAL_PASS) {
        hold(call, j);
    } else {
        note(call, "approved:%s by %s", j->found.id, j->found.decided_by);
        call->after_policy(call);
    }
out:
    free(j);
}

static void start_check(chat_call_t *call, const cfg_approval_rule_t *rule)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(call->req);
    const char *header = evhttp_find_header(in, "x-tollgate-approval");
    policy_job_t *j = calloc(1, sizeof(*j));

    if (j == NULL)
        die_oom();
    j->call = call;
    j->store = call->gw->policy->approvals;
    j->rule = rule;
    copy_str(j->key, sizeof(j->key), call->rec->key_id);
    copy_str(j->task, sizeof(j->task), call->rec->task);
    snprintf(j->tier, sizeof(j->tier), "%d", call->model->tier);
    copy_str(j->model, sizeof(j->model), call->model->name);
    copy_str(j->header, sizeof(j->header), header);
    j->worst = call->worst;
    j->now_ms = clock_now_ms();
    call->job = j;
    worker_submit(call->gw->worker, check_on_worker, check_done, j);
}

void policy_admit(chat_call_t *call, void (*next)(chat_call_t *call))
{
    const cfg_approval_rule_t *rule;

    call->after_policy = next;
    /* The budget is held before an approval is asked for, so a
     * once-approval is never used up by a call the budget refuses. */
    if (!admit_rate(call) || !bound_call(call))
        return;
    /* Rules see the budgets as they stood before this call's hold. */
    rule = rule_for(call);
    if (!policy_reserve(call))
        return;
    if (rule != NULL && call->gw->policy->approvals != NULL &&
        call->gw->worker != NULL) {
        start_check(call, rule);
        return;
    }
    next(call);
}

/* A soft limit crossed: a log line, a header when the answer has not
 * started, and a POST to the configured webhook. */
static void on_hook_headers(void *ctx, int status, const char *ct,
                            const char *ra, const char *rid)
{
}

static int on_hook_data(void *ctx, const char *d, size_t n)
{
    return 0;
}

static void on_hook_done(void *ctx, int code, const char *error)
{
    if (code != 0)
        log_warn("webhook: %s", error);
    free(ctx);
}

static void soft_crossed(chat_call_t *call, const budget_status_t *st)
{
    const char *url = call->gw->config->webhook_url;
    char spent[40], soft[40];
    char *body;

    pico_format_usd(st->spent, spent, sizeof(spent));
    pico_format_usd(st->soft, soft, sizeof(soft));
    LOG(LOG_WARN, call->rec->id,
        "budget soft limit: %s %s '%s' has spent $%s of its $%s soft limit",
        budget_period_name(st->period), budget_scope_name(st->scope), st->name,
        spent, soft);
    if (!call->reply_started)
        evhttp_add_header(evhttp_request_get_output_headers(call->req),
                          "x-tollgate-budget-warning",
                          arena_printf(call->arena, "%s %s %s: $%s of $%s",
                                       budget_scope_name(st->scope), st->name,
                                       budget_period_name(st->period), spent,
                                       soft));
    if (url == NULL || asprintf(&body,
                                "{\"event\":\"budget.soft_limit\","
                                "\"scope\":\"%s\",\"name\":\"%s\","
                                "\"period\":\"%s\",\"spent_usd\":\"%s\","
                                "\"soft_usd\":\"%s\",\"outcome\":\"%s\"}",
                                budget_scope_name(st->scope), st->name,
                                budget_period_name(st->period), spent, soft,
                                call->rec->id) < 0)
        return;
    upstream_request_t rq = {
        .url = url, .body = body, .body_len = strlen(body)};
    upstream_handlers_t h = {on_hook_headers, on_hook_data, on_hook_done};

    if (upstream_start(call->gw->upstream, &rq, &h, body) == NULL)
        free(body);
}

/* The attempt's real cost replaces its hold; an unknown cost keeps the
 * hold as spent (the bound), and a call the provider never billed gives
 * it back. */
void policy_settle(chat_call_t *call)
{
    const ledger_attempt_t *att = call->att;
    budget_settlement_t s;
    pico_t actual;

    if (!call->res.active || att == NULL)
        return;
    switch (att->cost_status) {
    case COST_NONE:
        budget_release(call->gw->policy->book, &call->res);
        return;
    case COST_PRICED:
        actual = att->cost;
        break;
    case COST_ESTIMATED:
        actual = att->cost_estimate;
        break;
    default:
        actual = call->res.amount;
        break;
    }
    call->res_budgets = call->res.n;
    /* Kept in the ledger, so a restart rebuilds the same books. */
    call->att->budget_charged = call->res.n > 0;
    call->att->budget_charge = actual;
    budget_settle(call->gw->policy->book, &call->res, actual, clock_now_ms(),
                  &s);
    if (s.over_hold && call->res_budgets > 0)
        LOG(LOG_WARN, call->rec->id,
            "attempt cost more than its reservation (by %" PRId64
            " picodollars)",
            s.over_by);
    for (int i = 0; i < s.n_soft; i++)
        soft_crossed(call, &s.soft[i]);
}

void policy_finish(chat_call_t *call)
{
    int64_t tokens = -1;

    if (call->job != NULL) {
        call->job->call = NULL;
        call->job = NULL;
    }
    if (call->gw->policy == NULL)
        return;
    /* An attempt that reached its provider and was never priced (a
     * malformed answer) keeps its hold as spent; anything else held
     * and unsent is given back. */
    if (call->res.active && call->att != NULL &&
        call->att->cost_status != COST_NONE)
        policy_settle(call);
    if (call->res.active)
        budget_release(call->gw->policy->book, &call->res);
    if (call->rec->usage.present)
        tokens = call->rec->usage.input_tokens + call->rec->usage.output_tokens;
    ratelimit_settle(call->gw->policy->rl, &call->ticket, tokens,
                     clock_now_ms());
}

/*
 * GET /metrics: the gateway's counters, its health and its budgets, for a
 * Prometheus scraper holding the admin key. Runs on the loop: it reads
 * memory only (ledger statistics, the budget book), never the disk.
 */
#include "metrics/metrics.h"

#include "auth/auth.h"
#include "budget/budget.h"
#include "proxy/policy.h"
#include "util/arena.h"
#include "util/clock.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static metrics_t *process_metrics;

metrics_t *metrics_of(gateway_t *gw)
{
    (void)gw;
    if (process_metrics == NULL)
        process_metrics = metrics_new(0);
    return process_metrics;
}

static void put_budget_sample(FILE *out, const char *name,
                              const budget_status_t *b, pico_t value)
{
    char usd[40];

    fprintf(out, "%s{scope=\"%s\",name=\"", name, budget_scope_name(b->scope));
    for (const char *p = b->name; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', out);
        fputc(*p == '\n' ? ' ' : *p, out);
    }
    fprintf(out, "\",period=\"%s\"} %s\n", budget_period_name(b->period),
            pico_format_usd(value, usd, sizeof(usd)));
}

/* Budgets are few (one per scope, name and period in the config), so
 * their labels are bounded by the config itself. */
static void render_budgets(gateway_t *gw, FILE *out)
{
    static const char *const names[] = {"tollgate_budget_spent_usd",
                                        "tollgate_budget_held_usd",
                                        "tollgate_budget_limit_usd"};
    budget_book_t *book = gw->policy ? gw->policy->book : NULL;
    size_t n = book ? budget_count(book) : 0;
    budget_status_t b;

    for (int k = 0; k < 3; k++) {
        fprintf(out, "# HELP %s Budget %s in its current period.\n", names[k],
                k == 0   ? "spent"
                : k == 1 ? "held"
                         : "hard limit");
        fprintf(out, "# TYPE %s gauge\n", names[k]);
        for (size_t i = 0; i < n; i++) {
            if (budget_at(book, i, clock_now_ms(), &b) < 0)
                continue;
            if (k == 2 && b.hard < 0)
                continue;
            put_budget_sample(out, names[k], &b,
                              k == 0   ? b.spent
                              : k == 1 ? b.held
                                       : b.hard);
        }
    }
}

static void fill_health(gateway_t *gw, metrics_health_t *h)
{
    memset(h, 0, sizeof(*h));
    if (gw->ledger != NULL) {
        ledger_get_stats(gw->ledger, &h->ledger);
        h->has_ledger = true;
    }
    h->calls_in_flight = gw->in_flight;
    h->draining = gw->draining;
    h->now_mono_ms = clock_mono_ms();
}

void metrics_handle(gateway_t *gw, struct evhttp_request *req)
{
    metrics_health_t health;
    struct evbuffer *body;
    char *text = NULL;
    size_t len = 0;
    FILE *out;

    if (!auth_is_admin(gw->config, req)) {
        gateway_send_error(req, 401, "invalid_request_error", "invalid_api_key",
                           NULL,
                           "/metrics needs the admin key as a bearer token");
        return;
    }
    fill_health(gw, &health);
    out = open_memstream(&text, &len);
    body = evbuffer_new();
    if (out == NULL || body == NULL)
        die_oom();
    metrics_render(metrics_of(gw), &health, out);
    render_budgets(gw, out);
    fclose(out);

    evbuffer_add(body, text, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
    free(text);
}

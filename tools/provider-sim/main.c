/*
 * provider-sim: a simulator of the OpenAI, Anthropic, Azure and Gemini
 * APIs for Tollgate's tests and demo. Parses the command line, loads
 * replay data, serves until SIGTERM or SIGINT, then frees everything.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "sim.h"
#include "sim_call.h"
#include "sim_replay.h"
#include "sim_server.h"

static int load_replay(struct sim *sim)
{
    const struct sim_config *cfg = &sim->cfg;
    char err[256] = "";

    if (cfg->nreplay_csv == 0 && cfg->nreplay_jsonl == 0)
        return 0;

    sim->replay = replay_new();
    for (size_t i = 0; i < cfg->nreplay_csv; i++) {
        if (replay_load_csv(sim->replay, cfg->replay_csv[i], err, sizeof(err)) <
            0) {
            fprintf(stderr, "provider-sim: %s: %s\n", cfg->replay_csv[i], err);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < cfg->nreplay_jsonl; i++) {
        if (replay_load_jsonl(sim->replay, cfg->replay_jsonl[i], err,
                              sizeof(err)) < 0) {
            fprintf(stderr, "provider-sim: %s: %s\n", cfg->replay_jsonl[i],
                    err);
            return -EINVAL;
        }
    }
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static void sim_init(struct sim *sim)
{
    util_set_init(&sim->prompt_cache, SIM_CACHE_MAX_PREFIXES);
    journal_init(&sim->requests, SIM_JOURNAL_MAX_ITEMS, SIM_JOURNAL_MAX_BYTES);
    journal_init(&sim->answers, SIM_JOURNAL_MAX_ITEMS, SIM_JOURNAL_MAX_BYTES);
}

/* evhttp_free closes every connection; each live call's close callback
 * frees the call, so nothing in flight outlives the server. */
static void sim_free(struct sim *sim)
{
    if (sim->http != NULL)
        evhttp_free(sim->http);
    replay_free(sim->replay);
    util_set_free(&sim->prompt_cache);
    journal_free(&sim->requests);
    journal_free(&sim->answers);
    sim_config_free(&sim->cfg);
}

static int serve(struct sim *sim)
{
    struct event *term, *intr;
    int port, rc;

    rc = server_start(sim, &port);
    if (rc < 0) {
        fprintf(stderr, "provider-sim: cannot listen on %s:%d: %s\n",
                sim->cfg.host, sim->cfg.port, strerror(-rc));
        return rc;
    }

    term = evsignal_new(sim->base, SIGTERM, on_signal, sim->base);
    intr = evsignal_new(sim->base, SIGINT, on_signal, sim->base);
    evsignal_add(term, NULL);
    evsignal_add(intr, NULL);

    printf("provider-sim listening on %s:%d\n", sim->cfg.host, port);
    fflush(stdout);
    event_base_dispatch(sim->base);

    event_free(term);
    event_free(intr);
    return 0;
}

int main(int argc, char **argv)
{
    struct sim sim = {0};
    int rc;

    rc = sim_config_parse(argc, argv, &sim.cfg);
    if (rc != 0)
        goto out_config;

    /* A client that hangs up must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    sim_init(&sim);
    rc = load_replay(&sim);
    if (rc < 0)
        goto out_sim;

    sim.base = event_base_new();
    if (sim.base == NULL) {
        rc = -ENOMEM;
        goto out_sim;
    }
    vclock_init(&sim.clock, sim.base, sim.cfg.virtual_clock);
    rc = serve(&sim);

out_sim:
    sim_free(&sim);
    if (sim.base != NULL)
        event_base_free(sim.base);
    libevent_global_shutdown();
    return rc < 0 ? 1 : 0;
out_config:
    sim_config_free(&sim.cfg);
    return rc < 0 ? 2 : 0;
}

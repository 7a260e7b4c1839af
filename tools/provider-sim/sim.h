/*
 * The provider simulator's configuration and process-wide state. One
 * struct sim lives in main for the life of the process; every module
 * reaches the clock, the journals and the replay table through it.
 */
#ifndef PROVIDER_SIM_H
#define PROVIDER_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>

#include "sim_clock.h"
#include "sim_journal.h"
#include "sim_util.h"

#define SIM_DEFAULT_STALL_MS 600000
#define SIM_CACHE_MIN_TOKENS 1024
#define SIM_CACHE_BLOCK 128
#define SIM_CACHE_MAX_PREFIXES 1000000
#define SIM_JOURNAL_MAX_ITEMS 200000
#define SIM_JOURNAL_MAX_BYTES (256u * 1024 * 1024)
#define SIM_MAX_BODY (64u * 1024 * 1024)
#define SIM_MAX_HEADERS (256u * 1024)
#define SIM_AZURE_DEFAULT_MODEL "gpt-4o-2024-11-20"

struct sim_latency {
    char *model;
    uint64_t ttft_ms;
    uint64_t per_token_ms;
};

struct sim_snapshot {
    char *model;
    char *snapshot;
};

/* Parsed command line; strings are owned and freed by sim_config_free. */
struct sim_config {
    char *host;
    int port;
    bool virtual_clock;
    struct sim_latency *latencies;
    size_t nlatencies;
    uint64_t default_ttft_ms;
    uint64_t default_per_token_ms;
    char *key;
    char **models;
    size_t nmodels;
    char **reasoning_prefixes;
    size_t nreasoning;
    struct sim_snapshot *snapshots;
    size_t nsnapshots;
    struct sim_snapshot *deployments; /* Azure: name -> model */
    size_t ndeployments;
    char **replay_csv;
    size_t nreplay_csv;
    char **replay_jsonl;
    size_t nreplay_jsonl;
    uint64_t stall_ms;
    bool verbose;
};

struct call;
struct replay;

struct sim {
    struct sim_config cfg;
    struct event_base *base;
    struct evhttp *http;
    struct vclock clock;
    struct replay *replay;        /* NULL when no replay file was given */
    struct util_set prompt_cache; /* hashes of (model, message prefix) */
    struct journal requests;      /* /_sim/requests */
    struct journal answers;       /* /_sim/usage */
    uint64_t next_id;             /* chatcmpl-<n>, never reset */
    struct call *calls;           /* answers still in flight */
};

/*
 * Parses the command line into cfg (zeroed by the caller). Returns 0,
 * 1 when --help was asked, or -EINVAL after printing what is wrong.
 */
int sim_config_parse(int argc, char **argv, struct sim_config *cfg);
void sim_config_free(struct sim_config *cfg);

/* Latency for a request model: its --latency entry or the default. */
void sim_latency_for(const struct sim *sim, const char *model,
                     uint64_t *ttft_ms, uint64_t *per_token_ms);

/* The model id to answer with: its --snapshot, or model itself. */
const char *sim_snapshot_for(const struct sim *sim, const char *model);

/*
 * The model an Azure deployment serves: its --azure-deployment entry,
 * SIM_AZURE_DEFAULT_MODEL when none was given, or NULL when entries
 * were given but none names this deployment.
 */
const char *sim_azure_model_for(const struct sim *sim, const char *name);

/* True when the model name starts with a --reasoning-prefix. */
bool sim_is_reasoning(const struct sim *sim, const char *model);

/* True when --models was not given or lists the model. */
bool sim_knows_model(const struct sim *sim, const char *model);

/* Seconds since the epoch for `created`; fixed in virtual mode. */
int64_t sim_created(const struct sim *sim);

#endif

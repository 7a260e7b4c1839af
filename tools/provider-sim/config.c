/*
 * The simulator's command line and the per-model lookups it configures:
 * latency, snapshot ids, reasoning prefixes and the known-model list.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Upper bound on any configured delay: about eleven days. */
#define MAX_DELAY_MS UINT64_C(1000000000)
/* `created` in virtual mode: 2026-01-01T00:00:00Z plus virtual time. */
#define VIRTUAL_EPOCH INT64_C(1767225600)

static const char *const default_reasoning[] = {"o1", "o3", "o4", "gpt-5"};

static const char usage_text[] =
    "usage: provider-sim --listen HOST:PORT [options]\n"
    "  --clock real|virtual         time source (default real)\n"
    "  --latency MODEL=TTFT,PER_TOKEN   per-model latency in ms\n"
    "  --default-latency TTFT,PER_TOKEN latency for other models (0,0)\n"
    "  --key SECRET                 require Authorization: Bearer SECRET\n"
    "  --models a,b,c               known models; others get 404\n"
    "  --reasoning-prefix P         models named P* report reasoning\n"
    "  --snapshot MODEL=SNAPSHOT    answer MODEL requests as SNAPSHOT\n"
    "  --azure-deployment NAME=MODEL  an Azure deployment and its model\n"
    "  --replay-routellm FILE       replay RouteLLM gsm8k_responses.csv\n"
    "  --replay-jsonl FILE          replay {model,prompt,response} lines\n"
    "  --stall-ms N                 how long the stall fault waits\n"
    "  --verbose                    log each request to stderr\n";

enum option_id {
    OPT_LISTEN = 256,
    OPT_CLOCK,
    OPT_LATENCY,
    OPT_DEFAULT_LATENCY,
    OPT_KEY,
    OPT_MODELS,
    OPT_REASONING,
    OPT_SNAPSHOT,
    OPT_AZURE,
    OPT_REPLAY_CSV,
    OPT_REPLAY_JSONL,
    OPT_STALL,
    OPT_VERBOSE,
    OPT_HELP
};

static const struct option options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"clock", required_argument, NULL, OPT_CLOCK},
    {"latency", required_argument, NULL, OPT_LATENCY},
    {"default-latency", required_argument, NULL, OPT_DEFAULT_LATENCY},
    {"key", required_argument, NULL, OPT_KEY},
    {"models", required_argument, NULL, OPT_MODELS},
    {"reasoning-prefix", required_argument, NULL, OPT_REASONING},
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"azure-deployment", required_argument, NULL, OPT_AZURE},
    {"replay-routellm", required_argument, NULL, OPT_REPLAY_CSV},
    {"replay-jsonl", required_argument, NULL, OPT_REPLAY_JSONL},
    {"stall-ms", required_argument, NULL, OPT_STALL},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int bad(const char *option, const char *value, const char *why)
{
    fprintf(stderr, "provider-sim: --%s %s: %s\n", option, value, why);
    return -EINVAL;
}

static char *dup_str(const char *text, size_t len)
{
    return util_xstrndup(text, len);
}

static void push_string(char ***list, size_t *count, const char *text,
                        size_t len)
{
    *list = util_xrealloc(*list, (*count + 1) * sizeof(**list));
    (*list)[(*count)++] = dup_str(text, len);
}

static int parse_ms(const char *text, size_t len, uint64_t *out)
{
    uint64_t value = 0;

    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -EINVAL;
        value = value * 10 + (uint64_t)(text[i] - '0');
        if (value > MAX_DELAY_MS)
            return -EINVAL;
    }
    *out = value;
    return 0;
}

/* "TTFT,PER_TOKEN" in milliseconds. */
static int parse_pair(const char *text, uint64_t *ttft, uint64_t *per_token)
{
    const char *comma = strchr(text, ',');

    if (comma == NULL || parse_ms(text, (size_t)(comma - text), ttft) < 0 ||
        parse_ms(comma + 1, strlen(comma + 1), per_token) < 0)
        return -EINVAL;
    return 0;
}

/* Model names may hold '=' but latencies never do: split at the last. */
static int add_latency(struct sim_config *cfg, const char *arg)
{
    const char *eq = strrchr(arg, '=');
    struct sim_latency *lat;

    if (eq == NULL || eq == arg)
        return bad("latency", arg, "expected MODEL=TTFT_MS,PER_TOKEN_MS");

    cfg->latencies =
        util_xrealloc(cfg->latencies, (cfg->nlatencies + 1) * sizeof(*lat));
    lat = &cfg->latencies[cfg->nlatencies];
    if (parse_pair(eq + 1, &lat->ttft_ms, &lat->per_token_ms) < 0)
        return bad("latency", arg, "expected MODEL=TTFT_MS,PER_TOKEN_MS");
    lat->model = dup_str(arg, (size_t)(eq - arg));
    cfg->nlatencies++;
    return 0;
}

/* NAME=VALUE into a growing pair list (snapshots, Azure deployments). */
static int add_pair(struct sim_snapshot **list, size_t *count,
                    const char *option, const char *arg, const char *form)
{
    const char *eq = strchr(arg, '=');
    struct sim_snapshot *pair;

    if (eq == NULL || eq == arg || eq[1] == '\0')
        return bad(option, arg, form);

    *list = util_xrealloc(*list, (*count + 1) * sizeof(*pair));
    pair = &(*list)[(*count)++];
    pair->model = dup_str(arg, (size_t)(eq - arg));
    pair->snapshot = dup_str(eq + 1, strlen(eq + 1));
    return 0;
}

static int add_models(struct sim_config *cfg, const char *arg)
{
    const char *p = arg;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (len > 0)
            push_string(&cfg->models, &cfg->nmodels, p, len);
        p += len + (comma != NULL);
    }
    return cfg->nmodels > 0 ? 0 : bad("models", arg, "no model named");
}

static int parse_listen(struct sim_config *cfg, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    uint64_t port;

    if (colon == NULL || colon == arg ||
        parse_ms(colon + 1, strlen(colon + 1), &port) < 0 || port > 65535)
        return bad("listen", arg, "expected HOST:PORT");

    free(cfg->host);
    cfg->host = dup_str(arg, (size_t)(colon - arg));
    cfg->port = (int)port;
    return 0;
}

static int parse_clock(struct sim_config *cfg, const char *arg)
{
    if (strcmp(arg, "real") == 0)
        cfg->virtual_clock = false;
    else if (strcmp(arg, "virtual") == 0)
        cfg->virtual_clock = true;
    else
        return bad("clock", arg, "expected real or virtual");
    return 0;
}

static int parse_one(struct sim_config *cfg, int opt, const char *arg)
{
    switch (opt) {
    case OPT_LISTEN:
        return parse_listen(cfg, arg);
    case OPT_CLOCK:
        return parse_clock(cfg, arg);
    case OPT_LATENCY:
        return add_latency(cfg, arg);
    case OPT_DEFAULT_LATENCY:
        if (parse_pair(arg, &cfg->default_ttft_ms, &cfg->default_per_token_ms) <
            0)
            return bad("default-latency", arg, "expected TTFT_MS,PER_MS");
        return 0;
    case OPT_KEY:
        free(cfg->key);
        cfg->key = dup_str(arg, strlen(arg));
        return 0;
    case OPT_MODELS:
        return add_models(cfg, arg);
    case OPT_REASONING:
        push_string(&cfg->reasoning_prefixes, &cfg->nreasoning, arg,
                    strlen(arg));
        return 0;
    case OPT_SNAPSHOT:
        return add_pair(&cfg->snapshots, &cfg->nsnapshots, "snapshot", arg,
                        "expected MODEL=SNAPSHOT");
    case OPT_AZURE:
        return add_pair(&cfg->deployments, &cfg->ndeployments,
                        "azure-deployment", arg, "expected NAME=MODEL");
    case OPT_REPLAY_CSV:
        push_string(&cfg->replay_csv, &cfg->nreplay_csv, arg, strlen(arg));
        return 0;
    case OPT_REPLAY_JSONL:
        push_string(&cfg->replay_jsonl, &cfg->nreplay_jsonl, arg, strlen(arg));
        return 0;
    case OPT_STALL:
        if (parse_ms(arg, strlen(arg), &cfg->stall_ms) < 0)
            return bad("stall-ms", arg, "expected milliseconds");
        return 0;
    case OPT_VERBOSE:
        cfg->verbose = true;
        return 0;
    default:
        fputs(usage_text, stderr);
        return -EINVAL;
    }
}

int sim_config_parse(int argc, char **argv, struct sim_config *cfg)
{
    int opt, rc;

    cfg->stall_ms = SIM_DEFAULT_STALL_MS;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == OPT_HELP) {
            fputs(usage_text, stdout);
            return 1;
        }
        rc = parse_one(cfg, opt, optarg);
        if (rc < 0)
            return rc;
    }

    if (optind < argc || cfg->host == NULL) {
        fputs(usage_text, stderr);
        return -EINVAL;
    }
    if (cfg->nreasoning == 0) {
        for (size_t i = 0; i < 4; i++)
            push_string(&cfg->reasoning_prefixes, &cfg->nreasoning,
                        default_reasoning[i], strlen(default_reasoning[i]));
    }
    return 0;
}

static void free_list(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

static void free_pairs(struct sim_snapshot *pairs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(pairs[i].model);
        free(pairs[i].snapshot);
    }
    free(pairs);
}

void sim_config_free(struct sim_config *cfg)
{
    free(cfg->host);
    free(cfg->key);
    for (size_t i = 0; i < cfg->nlatencies; i++)
        free(cfg->latencies[i].model);
    free(cfg->latencies);
    free_pairs(cfg->snapshots, cfg->nsnapshots);
    free_pairs(cfg->deployments, cfg->ndeployments);
    free_list(cfg->models, cfg->nmodels);
    free_list(cfg->reasoning_prefixes, cfg->nreasoning);
    free_list(cfg->replay_csv, cfg->nreplay_csv);
    free_list(cfg->replay_jsonl, cfg->nreplay_jsonl);
    memset(cfg, 0, sizeof(*cfg));
}

void sim_latency_for(const struct sim *sim, const char *model,
                     uint64_t *ttft_ms, uint64_t *per_token_ms)
{
    for (size_t i = 0; i < sim->cfg.nlatencies; i++) {
        if (strcmp(sim->cfg.latencies[i].model, model) == 0) {
            *ttft_ms = sim->cfg.latencies[i].ttft_ms;
            *per_token_ms = sim->cfg.latencies[i].per_token_ms;
            return;
        }
    }
    *ttft_ms = sim->cfg.default_ttft_ms;
    *per_token_ms = sim->cfg.default_per_token_ms;
}

const char *sim_snapshot_for(const struct sim *sim, const char *model)
{
    for (size_t i = 0; i < sim->cfg.nsnapshots; i++) {
        if (strcmp(sim->cfg.snapshots[i].model, model) == 0)
            return sim->cfg.snapshots[i].snapshot;
    }
    return model;
}

const char *sim_azure_model_for(const struct sim *sim, const char *name)
{
    if (sim->cfg.ndeployments == 0)
        return SIM_AZURE_DEFAULT_MODEL;
    for (size_t i = 0; i < sim->cfg.ndeployments; i++) {
        if (strcmp(sim->cfg.deployments[i].model, name) == 0)
            return sim->cfg.deployments[i].snapshot;
    }
    return NULL;
}

bool sim_is_reasoning(const struct sim *sim, const char *model)
{
    for (size_t i = 0; i < sim->cfg.nreasoning; i++) {
        const char *prefix = sim->cfg.reasoning_prefixes[i];

        if (strncmp(model, prefix, strlen(prefix)) == 0)
            return true;
    }
    return false;
}

bool sim_knows_model(const struct sim *sim, const char *model)
{
    if (sim->cfg.nmodels == 0)
        return true;
    for (size_t i = 0; i < sim->cfg.nmodels; i++) {
        if (strcmp(sim->cfg.models[i], model) == 0)
            return true;
    }
    return false;
}

int64_t sim_created(const struct sim *sim)
{
    if (sim->clock.virtual_time)
        return VIRTUAL_EPOCH + (int64_t)(vclock_now(&sim->clock) / 1000);
    return (int64_t)time(NULL);
}

/*
 * Inside replay: the parsed command line and the two halves, logs
 * (replay.c) and evaluation sets with labels (replay_eval.c).
 */
#ifndef TOLLGATE_AUDIT_REPLAY_H
#define TOLLGATE_AUDIT_REPLAY_H

#include "audit/internal.h"
#include "audit/policy.h"

#define REPLAY_MAX_PRICES 8

typedef struct replay_args {
    const char *policy;
    const char *model;
    const char *task; /* --task: the config task of calls naming none */
    const char *prices[REPLAY_MAX_PRICES];
    int n_prices;
    audit_output_t format;
    bool compare;
} replay_args_t;

/* Replays logged calls; prints would-be against actual. Returns 0, or
 * -EIO when a file could not be read (the others still count). */
int replay_logs(const policy_t *policy, char **files, int n_files,
                const char *model, audit_output_t format, FILE *out);

/* Replays evaluation sets (all files one set); quality from the labels.
 * Returns 0 or a negative code with the reason on stderr. */
int replay_eval(const policy_t *policy, char **files, int n_files,
                const replay_args_t *args, FILE *out);

#endif

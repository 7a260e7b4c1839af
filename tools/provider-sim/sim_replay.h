/*
 * Recorded answers the simulator can replay: RouteLLM's GSM8K CSV or a
 * JSONL file of {"model","prompt","response"}, keyed by (model, prompt)
 * where prompt is the request's last user message.
 */
#ifndef PROVIDER_SIM_REPLAY_H
#define PROVIDER_SIM_REPLAY_H

#include <stddef.h>

struct replay;

/* An empty table, owned by the caller until replay_free. */
struct replay *replay_new(void);
void replay_free(struct replay *replay);

/*
 * Loads a CSV with a `prompt` column and one `<model>_response` column
 * per model (quoted fields, embedded newlines, doubled quotes). Returns
 * 0, -errno when the file cannot be read, or -EINVAL with a message in
 * err when it is malformed. A later entry replaces an earlier one.
 */
int replay_load_csv(struct replay *replay, const char *path, char *err,
                    size_t errlen);

/* Loads JSONL lines of {"model":..,"prompt":..,"response":..}; blank
 * lines are skipped. Errors as replay_load_csv. */
int replay_load_jsonl(struct replay *replay, const char *path, char *err,
                      size_t errlen);

/*
 * The recorded answer for (model, prompt), or NULL. The string belongs
 * to the table; its length is stored in *len.
 */
const char *replay_find(const struct replay *replay, const char *model,
                        const char *prompt, size_t prompt_len, size_t *len);

/* Number of (model, prompt) entries loaded. */
size_t replay_count(const struct replay *replay);

#endif

/*
 * OpenAI wire format: reading usage from a chat completion (plain or the
 * final stream chunk) into the normalised usage billing prices.
 */
#ifndef TOLLGATE_OPENAI_H
#define TOLLGATE_OPENAI_H

#include "util/common.h"

struct json_object;

/*
 * Reads a `usage` object (prompt_tokens, completion_tokens and their
 * *_details). Missing or null details count 0. Returns 0 with
 * usage->present set, or -EINVAL when usage is not an object with the two
 * totals as integers from 0 to 10^12 (usage is then left not present).
 */
int openai_read_usage(struct json_object *usage_obj, usage_t *usage);

/* The answer has visible content or tool calls (a plain completion). */
bool openai_has_answer(struct json_object *completion);

#endif

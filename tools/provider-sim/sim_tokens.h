/*
 * The simulator's token rule. It is deliberately simple so that tests in
 * any language can recount what the simulator billed; it is not BPE.
 *
 * A piece is a maximal run of ASCII letters and digits, or any single
 * other character that is not ASCII whitespace (a UTF-8 multi-byte
 * character is one piece). A message costs 4 + the pieces of its text
 * (+85 per non-text content part, + the pieces of each tool call's
 * function name and arguments); a prompt costs 3 + its messages.
 */
#ifndef PROVIDER_SIM_TOKENS_H
#define PROVIDER_SIM_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define TOKENS_PER_PROMPT 3
#define TOKENS_PER_MESSAGE 4
#define TOKENS_PER_NONTEXT_PART 85

/* Number of pieces in len bytes of text. */
int64_t tokens_count(const char *text, size_t len);

/*
 * Length of the shortest prefix of text that holds its first `limit`
 * pieces (trailing whitespace excluded). Returns len when the text has
 * no more than `limit` pieces.
 */
size_t tokens_truncate(const char *text, size_t len, int64_t limit);

/*
 * The text of a message's content: the string itself, or its text parts
 * joined without separator. Returns a string the caller frees (empty for
 * null or missing content), its length in *len, and in *nontext the
 * number of content parts that are not text.
 */
char *tokens_message_text(struct json_object *msg, size_t *len,
                          int64_t *nontext);

/* Tokens one message adds to prompt_tokens. */
int64_t tokens_message(struct json_object *msg);

/* prompt_tokens of the first `count` messages of the array. */
int64_t tokens_prompt(struct json_object *messages, size_t count);

#endif

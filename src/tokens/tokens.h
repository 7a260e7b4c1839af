/*
 * Token counting: a tiktoken-compatible byte-pair encoder for o200k_base
 * and cl100k_base, used for budgets and context trimming before a call.
 * Counts equal tiktoken's encode_ordinary (special-token text is text).
 */
#ifndef TOLLGATE_TOKENS_H
#define TOLLGATE_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* The encodings Tollgate can count exactly. */
typedef enum tokens_kind {
    TOKENS_CL100K = 0, /* gpt-4, gpt-3.5-turbo, text-embedding-3-* */
    TOKENS_O200K = 1   /* gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4 */
} tokens_kind_t;

typedef struct tokens_encoding tokens_encoding_t;

/* "cl100k_base" or "o200k_base". */
const char *tokens_kind_name(tokens_kind_t kind);

/* Parses "cl100k_base"/"o200k_base" (also "cl100k"/"o200k"); 0 or
 * -EINVAL. */
int tokens_kind_parse(const char *name, tokens_kind_t *kind);

/*
 * Loads KIND's rank file "<name>.tiktoken" from DIR, or, when DIR is NULL,
 * from the first of these directories that holds it:
 *   1. $TOLLGATE_TIKTOKEN_DIR
 *   2. ${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tiktoken
 *      (where scripts/fetch-tokenizer-data.sh installs)
 *   3. build/data/tiktoken in the executable's directory or up to two
 *      directories above it
 *   4. $TOLLGATE_SHARED/data/tiktoken
 * The file's SHA-256 must equal the hash tiktoken pins. On success *out is
 * a read-only encoding the caller owns (tokens_free); it may be shared by
 * threads. Returns 0, -ENOENT (no file found), -EBADMSG (hash or format
 * wrong) or -ENOMEM.
 */
int tokens_load(tokens_kind_t kind, const char *dir, tokens_encoding_t **out);

/* Loads from an exact file path (checked like tokens_load). */
int tokens_load_file(tokens_kind_t kind, const char *path,
                     tokens_encoding_t **out);

void tokens_free(tokens_encoding_t *enc);

tokens_kind_t tokens_encoding_kind(const tokens_encoding_t *enc);

/*
 * The number of tokens tiktoken gives TEXT (LEN bytes). Valid UTF-8 is
 * split by the encoding's pattern and merged by rank. Bytes that are not
 * valid UTF-8 follow tiktoken's encode-bytes rule: the valid prefix is
 * encoded, then its last piece (with the all-space tokens before it) and
 * everything from the first bad byte on are merged as one piece of bytes.
 * Never fails; thread-safe.
 */
int64_t tokens_count(const tokens_encoding_t *enc, const char *text,
                     size_t len);

/*
 * Writes TEXT's token ids into IDS (room for CAP) and returns how many
 * there are; when that exceeds CAP only the first CAP are written. A text
 * of LEN bytes never has more than LEN tokens.
 */
size_t tokens_encode(const tokens_encoding_t *enc, const char *text, size_t len,
                     uint32_t *ids, size_t cap);

/*
 * Which encoding MODEL uses (provider prefixes such as "openai/" and
 * "ft:" are ignored). Returns true when the tokenizer is OpenAI's and the
 * count exact; false for models with no public tokenizer (Claude,
 * Gemini, unknown names), for which *kind is o200k_base and counts should
 * go through tokens_estimate.
 */
bool tokens_model_kind(const char *model, tokens_kind_t *kind);

/*
 * An estimate of MODEL's token count from an o200k_base COUNT: COUNT
 * times a per-family factor, rounded up (Claude 1.25, Gemini 1.10,
 * others 1.00). The factors are not measured against the providers'
 * tokenizers; treat the result as a budget guess, not a bill.
 */
int64_t tokens_estimate(const char *model, int64_t count);

/* A chat request's tokens as the model family counts them. */
typedef struct tokens_chat {
    int64_t total;    /* what the prompt costs: all of the below */
    int64_t text;     /* tokens of every string counted */
    int64_t overhead; /* per-message, per-name and reply priming */
    int64_t tools;    /* tool definitions (OpenAI cookbook formula) */
    int n_messages;
    bool estimated; /* images, unknown parts or no exact tokenizer */
} tokens_chat_t;

/*
 * Counts an OpenAI chat request (an object with "messages", optionally
 * "tools") the way OpenAI's cookbook num_tokens_from_messages does for
 * MODEL: 3 tokens per message, 1 per "name", 3 to prime the reply
 * (gpt-3.5-turbo-0301: 4 and -1). Every string field of a message counts
 * (role, content, name, tool_call_id); text parts of array contents
 * count, other parts set `estimated`. Strings are the JSON-decoded text;
 * invalid UTF-8 in them counts as U+FFFD, as Python tiktoken does for
 * lone surrogates. Returns 0 or -EINVAL when REQ has no messages array.
 */
int tokens_count_chat(const tokens_encoding_t *enc, const char *model,
                      struct json_object *req, tokens_chat_t *out);

/* `tollgate tokens [--model M] [--encoding E] [--json] FILE|-`. */
int tokens_main(int argc, char **argv);

#endif

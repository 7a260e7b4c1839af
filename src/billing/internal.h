/*
 * What the billing files share and nothing outside src/billing/ needs:
 * exact decimals, the two importers, genai-prices match clauses and the
 * table's rule store.
 */
#ifndef TOLLGATE_BILLING_INTERNAL_H
#define TOLLGATE_BILLING_INTERNAL_H

#include "billing/billing.h"

#include <json-c/json.h>

/* Decimal shifts: USD to picodollars per token, per thousand, per
 * million, and plain numbers. */
#define SHIFT_PER_TOKEN 12
#define SHIFT_PER_THOUSAND 9
#define SHIFT_PER_MILLION 6
#define SHIFT_NONE 0

/*
 * The decimal text (JSON number grammar, no sign) times 10^shift, as an
 * exact int64. -EINVAL when the text is not a plain decimal, or the value
 * is not a whole number or does not fit.
 */
int decimal_scaled(const char *text, size_t len, int shift, int64_t *out);

/* The decimal text as an exact fraction num/den in lowest terms, den a
 * power of ten up to 10^12 ("1.1" is 11/10). 0 or -EINVAL. */
int decimal_ratio(const char *text, size_t len, int64_t *num, int64_t *den);

/* A JSON number or string value as decimal text. Returns 0, 1 for JSON
 * null (an absent value), -EINVAL for any other type. */
int json_decimal_text(json_object *value, const char **text, size_t *len);

/* The whole file parsed into *root (the caller puts it). 0, or a
 * negative code with a message in err naming the file and, for a syntax
 * error, the byte. */
int json_file_load(const char *path, json_object **root, char *err,
                   size_t errlen);

void error_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The slot of a rate inside an entry (standard rates: the named fields).
 * Never NULL for service tiers STANDARD..PRIORITY. */
pico_t *price_rate_ref(price_t *price, service_tier_t service,
                       price_rate_t rate, bool tier);

/* origin = "<source>#<entry>", cut to fit. */
void price_origin_set(price_t *price, const char *source, const char *entry);

/* The service-tier rate block, or NULL for SERVICE_STANDARD. */
price_rates_t *price_service_rates(price_t *price, service_tier_t service);

/* What an importer tells its caller about each entry. */
typedef struct import_ctx {
    price_table_t *table;
    const char *path; /* as given, for messages */
    const char *file; /* the file's base name, for sources */
    billing_import_t tally;
    billing_reject_fn *on_reject;
    void *arg;
} import_ctx_t;

void import_reject(import_ctx_t *ctx, const char *entry, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int import_litellm(import_ctx_t *ctx, json_object *root, char *err,
                   size_t errlen);
int import_genai(import_ctx_t *ctx, json_object *root, char *err,
                 size_t errlen);

/* A genai-prices match clause tree, compiled. */
typedef struct clause clause_t;

/* Compiles a clause object; NULL with a reason in why when it has a form
 * this reader does not know or a regex that does not compile. */
clause_t *clause_compile(json_object *spec, char *why, size_t whylen);
bool clause_match(const clause_t *clause, const char *name);
void clause_free(clause_t *clause);

/* Registers a genai-prices provider (its model_match may be NULL) and
 * returns its index; the table owns the clause from then on. */
int table_provider_add(price_table_t *table, const char *id,
                       clause_t *model_match);

/* A match rule: names the clause takes resolve to the entry `target`.
 * The table owns the clause from then on. */
void table_rule_add(price_table_t *table, int provider, clause_t *match,
                    const char *target);

/* Walking the entries of one name, in the order they were added. */
const price_t *table_name_first(const price_table_t *table, const char *name);
const price_t *table_name_next(const price_table_t *table,
                               const price_t *price);
/* The entry of exactly this name that lookups return at `at`, or NULL. */
const price_t *table_name_pick(const price_table_t *table, const char *name,
                               int64_t at);
bool table_entry_in_force(const price_t *price, int64_t at);

/* Seconds since 1970 at 00:00 UTC of a civil date. */
int64_t date_to_unix(int year, int month, int day);

#endif

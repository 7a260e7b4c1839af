/*
 * Command-line pieces audit and replay share: output formats and price
 * files given with --prices.
 */
#ifndef TOLLGATE_AUDIT_CLI_H
#define TOLLGATE_AUDIT_CLI_H

#include "audit/audit.h"

/* "table", "csv" or "json". Returns 0 or -EINVAL. */
int audit_parse_format(const char *s, audit_output_t *out);

/* Imports a LiteLLM or genai-prices file into table; says why not on
 * stderr. Returns 0 or -EINVAL. */
int audit_load_prices(price_table_t *table, const char *path);

#endif

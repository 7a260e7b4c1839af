/*
 * A JSON Schema subset for answer checks: the keywords structured-output
 * schemas use (types, properties, items, bounds, enum, combinators and
 * local $ref). Compiled once at config load, run on each checked answer.
 */
#ifndef TOLLGATE_JSONSCHEMA_H
#define TOLLGATE_JSONSCHEMA_H

#include <stddef.h>

struct json_object;

/* How deep validation may recurse (nesting plus $ref and combinators). */
#define JSONSCHEMA_MAX_DEPTH 64

typedef struct jsonschema jsonschema_t;

/*
 * Compiles schema. Supported: type (a name or an array of names;
 * "integer" is any number without a fraction), properties, required,
 * additionalProperties (bool or schema), enum, const, items (one schema),
 * minItems, maxItems, minimum, maximum, exclusiveMinimum and
 * exclusiveMaximum (numbers, or booleans draft-4 style), minLength and
 * maxLength (in code points), pattern (route/regex.h dialect), allOf,
 * anyOf, oneOf, $ref to "#", "#/definitions/NAME" or "#/$defs/NAME", and
 * the booleans true and false as schemas. Other keywords (format,
 * title, ...) are ignored. Takes its own reference on schema. Returns 0
 * with *out (free with jsonschema_free) or -EINVAL with the reason and
 * the schema path in err.
 */
int jsonschema_compile(struct json_object *schema, jsonschema_t **out,
                       char *err, size_t errlen);

void jsonschema_free(jsonschema_t *schema);

/*
 * Validates instance. Returns 0 when valid, or -EINVAL with the first
 * error as "POINTER: message" in err, POINTER being the JSON pointer
 * of the failing value ("/items/2/price"; the root is written "/").
 * Never recurses more than JSONSCHEMA_MAX_DEPTH; deeper is an error,
 * not a crash. Safe to call from several threads on one compiled
 * schema.
 */
int jsonschema_validate(const jsonschema_t *schema,
                        struct json_object *instance, char *err, size_t errlen);

#endif

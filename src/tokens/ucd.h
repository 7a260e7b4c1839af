/*
 * Unicode 16.0 character classes for the tokenizers' split patterns: a
 * range table generated from the UCD (ucd16.c) expanded once into a
 * two-stage lookup, so classifying a code point is two loads.
 */
#ifndef TOLLGATE_TOKENS_UCD_H
#define TOLLGATE_TOKENS_UCD_H

#include <stddef.h>
#include <stdint.h>

/* One class per code point; the sets are disjoint. */
enum ucd_class {
    UCD_OTHER = 0,        /* punctuation, symbols, controls, unassigned */
    UCD_UPPER = 1,        /* Lu, Lt */
    UCD_LOWER = 2,        /* Ll */
    UCD_OTHER_LETTER = 3, /* Lm, Lo */
    UCD_MARK = 4,         /* Mn, Mc, Me */
    UCD_NUMBER = 5,       /* Nd, Nl, No */
    UCD_SPACE = 6,        /* White_Space (includes \r and \n) */
    UCD_N_CLASSES = 7
};

typedef struct ucd_range {
    uint32_t first;
    uint32_t last;
    uint8_t cls;
} ucd_range_t;

extern const ucd_range_t ucd_ranges[];
extern const size_t ucd_n_ranges;

/* Built by ucd_init: one 256-entry block per 256 code points. */
extern const uint8_t *ucd_stage1[0x1100];

/* Builds the lookup once (thread-safe, idempotent); aborts on no memory. */
void ucd_init(void);

/* The class of CP (< 0x110000) once ucd_init has run. */
static inline unsigned ucd_class(uint32_t cp)
{
    return ucd_stage1[cp >> 8][cp & 0xFF];
}

#endif

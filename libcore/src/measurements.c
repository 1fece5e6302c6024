/*
 * The Haltian measurement types: measurements.def expanded into the tables measurements.h
 * declares.
 */
#include "measurements.h"

#include <stdbool.h>
#include <string.h>

const struct hc__measurement hc__measurements[HC__M__COUNT] = {
#define HC__MEASUREMENT(id, name, unit, vkind, tsm_id)                                             \
    [HC__M_##id] = {name, unit, HC__VK_##vkind, tsm_id},
#include "measurements.def"
};

const struct hc__measurement_alias hc__measurement_aliases[HC__ALIAS_COUNT] = {
#define HC__ALIAS(id, spelling, flags) {spelling, HC__M_##id, flags},
#include "measurements.def"
};

/* Types without a row are zero: no mixed spelling, so the generator never sends them. */
const struct hc__gen_model hc__gen_models[HC__M__COUNT] = {
#define HC__GEN_MODEL(id, spelling, decimals, min, max, thingsee_extra)                            \
    [HC__M_##id] = {spelling, decimals, min, max, thingsee_extra},
#include "measurements.def"
};

const struct hc__thingsee_field hc__thingsee_fields[HC__THINGSEE_FIELD_COUNT] = {
#define HC__THINGSEE_FIELD(id, field, member, conv, only_tsm_id, decimals)                         \
    {field, HC__M_##id, member, HC__TC_##conv, only_tsm_id, decimals},
#include "measurements.def"
};

static int fold_char(const char **s, const char *end)
{
    while (*s < end && (**s == '_' || **s == '-'))
        (*s)++;
    if (*s >= end)
        return -1;
    {
        int c = (unsigned char)**s;
        (*s)++;
        return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
    }
}

/* Equal ignoring ASCII case, '_' and '-'. */
static bool fold_eq(const char *a, size_t an, const char *b)
{
    const char *ae = a + an, *be;
    int a0 = (unsigned char)a[0], b0 = (unsigned char)b[0];

    /* Every name starts with a letter: most candidates differ there, before any strlen. */
    if (an == 0 || (a0 | 0x20) != (b0 | 0x20))
        return false;
    be = b + strlen(b);
    for (;;) {
        int ca = fold_char(&a, ae), cb = fold_char(&b, be);

        if (ca != cb)
            return false;
        if (ca < 0)
            return true;
    }
}

const struct hc__measurement *hc__measurement_lookup(const char *s, size_t n, unsigned *flags)
{
    *flags = 0;
    for (size_t i = 0; i < HC__M__COUNT; i++)
        if (fold_eq(s, n, hc__measurements[i].name))
            return &hc__measurements[i];
    for (size_t i = 0; i < HC__ALIAS_COUNT; i++)
        if (fold_eq(s, n, hc__measurement_aliases[i].spelling)) {
            *flags = hc__measurement_aliases[i].flags;
            return &hc__measurements[hc__measurement_aliases[i].type];
        }
    return NULL;
}

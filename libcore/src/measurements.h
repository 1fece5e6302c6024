/*
 * The Haltian measurement types as data (measurements.def): what the decoder needs to recognise
 * and check a type, and what the generator needs to send it. Internal to libcore (hc__ prefix).
 */
#ifndef HCORE_MEASUREMENTS_H
#define HCORE_MEASUREMENTS_H

#include <stddef.h>

/* One identifier per type, in the order of measurements.def. */
enum hc__mtype {
#define HC__MEASUREMENT(id, name, unit, vkind, tsm_id) HC__M_##id,
#include "measurements.def"
    HC__M__COUNT
};

enum {
    HC__ALIAS_COUNT = 0
#define HC__ALIAS(id, spelling, flags) +1
#include "measurements.def"
};

enum {
    HC__THINGSEE_FIELD_COUNT = 0
#define HC__THINGSEE_FIELD(id, field, member, conv, only_tsm_id, decimals) +1
#include "measurements.def"
};

/* What the decoder accepts as the value of a type. */
enum hc__vkind {
    HC__VK_NUMBER,
    HC__VK_INTEGER, /* a number within the exact integer range of a double */
    HC__VK_BOOL,    /* true/false, or 0/1 */
    HC__VK_STRING,
    HC__VK_OBJECT,
    HC__VK_NUMBER_OR_OBJECT,
    HC__VK_MOVEMENT,    /* {entries, exits}, or the old {in, out, net} */
    HC__VK_ORIENTATION, /* {accx, accy, accz} */
    HC__VK_POSITION,    /* the three position layouts, or {x, y, z} */
    HC__VK_ZONE,        /* a zone id, or an object */
    HC__VK_MAGNETIC,    /* a boolean, {isOpen} or {isClosed}; true = open */
};

struct hc__measurement {
    const char *name; /* canonical camelCase type */
    const char *unit; /* NULL: unitless */
    enum hc__vkind vkind;
    int tsm_id; /* legacy Thingsee profile the generator sends it under; 0: none */
};

/* Indexed by enum hc__mtype. */
extern const struct hc__measurement hc__measurements[HC__M__COUNT];

/*
 * The type named s (n bytes, not NUL-terminated), by its canonical name or an alias, ignoring
 * ASCII case, '_' and '-'; NULL when unknown. *flags: the alias's HC__ALIAS_* flags, else 0.
 */
const struct hc__measurement *hc__measurement_lookup(const char *s, size_t n, unsigned *flags);

/* Alias flags: the alias's values mean something else than the canonical type's. */
#define HC__ALIAS_CLOSED_POLARITY 1u /* true/1 = closed; canonical magneticState is true = open */
#define HC__ALIAS_METRES 2u          /* value in m; canonical distance is mm */

struct hc__measurement_alias {
    const char *spelling;
    enum hc__mtype type;
    unsigned flags; /* HC__ALIAS_* */
};

extern const struct hc__measurement_alias hc__measurement_aliases[HC__ALIAS_COUNT];

/* The generator's model parameters of a type it sends (see measurements.def). */
struct hc__gen_model {
    const char *mixed_spelling; /* NULL: the generator does not send this type */
    int decimals;               /* of a plain number value; -1: boolean or object */
    double min, max;            /* the model's clamp range; both 0: none */
    const char *thingsee_extra; /* JSON members after the legacy fields, or NULL */
};

/* Indexed by enum hc__mtype. */
extern const struct hc__gen_model hc__gen_models[HC__M__COUNT];

/* Conversion of a legacy Thingsee field to the canonical value. */
enum hc__thingsee_conv {
    HC__TC_NONE,
    HC__TC_DIV100,     /* Pa -> hPa */
    HC__TC_DIV1000,    /* mG -> g */
    HC__TC_BOOL,       /* 0/1 -> false/true */
    HC__TC_BOOL_OPEN0, /* hall: 0 open, 1 closed -> is_open */
};

struct hc__thingsee_field {
    const char *field;
    enum hc__mtype type;
    const char *member; /* fields that together form one object value; NULL: a scalar */
    enum hc__thingsee_conv conv;
    int only_tsm_id; /* the field has this meaning only for this profile; 0 = any */
    int decimals;    /* as the generator writes it */
};

extern const struct hc__thingsee_field hc__thingsee_fields[HC__THINGSEE_FIELD_COUNT];

#endif

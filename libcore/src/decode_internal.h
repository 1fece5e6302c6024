/*
 * The decoder's shared state and builders, for its three files: decode.c (the pass, byte checks,
 * the index), decode_haltian.c (Haltian IoT topics and payloads) and decode_thingsee.c (legacy
 * Thingsee). Internal to libcore (hc__ prefix); not part of the public API.
 *
 * Every builder is a no-op without an output object (obj NULL: indexing only), so the index and
 * the full output take every decision in the same code.
 */
#ifndef HCORE_DECODE_INTERNAL_H
#define HCORE_DECODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "measurements.h"

/* Deeper payloads are rejected before parsing: no documented shape nests beyond 3 levels. */
#define DECODE_MAX_DEPTH 32
#define DECODE_MAX_LEVELS 8
#define DECODE_MAX_NOTES 16
#define DECODE_NOTE_MAX 160

enum hc__decode_format { HC__FMT_UNKNOWN, HC__FMT_HALTIAN, HC__FMT_THINGSEE };

struct hc__span {
    const char *p;
    size_t n;
};

struct hc__dec {
    cJSON *out; /* NULL when only indexing: builders do nothing */
    bool nomem;
    const char *err_code;
    char err_detail[200];

    enum hc__decode_format format;
    struct hc__span lv[DECODE_MAX_LEVELS];
    int nlv;
    struct hc__span kind, type_received, device;
    const char *kind_str; /* "thingsee" for legacy; else NULL (kind span used) */
    const struct hc__measurement *tdef;
    unsigned alias_flags;
    const char *type_str; /* canonical or Thingsee type (static); NULL: use type_received */

    cJSON *root;
    const cJSON *ts_node;
    bool has_ts;
    int64_t ts_ms;

    /* Last, so resetting the struct can skip the note buffers. */
    int nnotes;
    char notes[DECODE_MAX_NOTES][DECODE_NOTE_MAX];
};

/* s equals the NUL-terminated lit. */
static inline bool hc__decode_span_is(struct hc__span s, const char *lit)
{
    size_t n = strlen(lit);

    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Records the message's error (the first one wins): a code and a one-line detail. */
void hc__decode_fail(struct hc__dec *d, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds a line to "normalised" (output only; repeated lines are kept once). */
void hc__decode_note(struct hc__dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Adds item under key to obj, taking ownership; a NULL item or obj sets nomem. */
void hc__decode_put(struct hc__dec *d, cJSON *obj, const char *key, cJSON *item);
/* The same for a static string (referenced, not copied), a number, a boolean, a span (copied). */
void hc__decode_put_ref(struct hc__dec *d, cJSON *obj, const char *key, const char *static_str);
void hc__decode_put_num(struct hc__dec *d, cJSON *obj, const char *key, double v);
void hc__decode_put_bool(struct hc__dec *d, cJSON *obj, const char *key, bool v);
void hc__decode_put_span(struct hc__dec *d, cJSON *obj, const char *key, struct hc__span s);
/* Moves item (a child of parent in the parsed payload) under key in obj. */
void hc__decode_put_moved(struct hc__dec *d, cJSON *obj, const char *key, cJSON *parent,
                          cJSON *item);
/* Moves every remaining child of src, keeping its key, to the end of dst. */
void hc__decode_move_children(cJSON *dst, cJSON *src);
/* A new empty object when there is an output, else NULL. */
cJSON *hc__decode_new_object(struct hc__dec *d);

/* "number", "string", ... for error details. */
const char *hc__decode_json_type(const cJSON *v);
bool hc__decode_is_finite(const cJSON *v);
/* Error for a value that should be a number; false when v is not one. */
bool hc__decode_want_number(struct hc__dec *d, const cJSON *v, const char *what);

/* The message's measured_at, ms since the epoch. */
void hc__decode_set_timestamp(struct hc__dec *d, int64_t ms);
/* Puts measured_at (RFC 3339, ms, Z) under obj. */
void hc__decode_put_timestamp(struct hc__dec *d, cJSON *obj, int64_t ms);

/* The formats' halves of the pass. A topic half sets format, kind, type and device. */
void hc__decode_haltian_topic(struct hc__dec *d, cJSON *obj);
void hc__decode_haltian_payload(struct hc__dec *d, cJSON *obj, cJSON *root);
void hc__decode_thingsee_topic(struct hc__dec *d, cJSON *obj);
void hc__decode_thingsee_payload(struct hc__dec *d, cJSON *obj, cJSON *root);

#endif

/*
 * The Haltian decoder: (topic, payload) -> one canonical JSON object, and the index columns a
 * recording stores for every message.
 *
 * Both entry points run the same code. hc_decode_index() runs it with no output object, so every
 * builder call is a no-op and every decision (error or not, type, timestamp) is taken by the very
 * same code as in hc_decode_message(): the two cannot disagree. All validation therefore happens
 * before anything is moved out of the parsed payload. The pass has two halves, decode_topic() and
 * decode_payload(); the index runs them separately (decode_split.h) so that a recording writer
 * can keep the topic half per topic. Without an output object the payload half first tries one
 * shortcut, index_fast_measurement(), which only accepts bytes for which the full half provably
 * ends without error and reads the same timestamp, and hands everything else to the full half.
 *
 * To keep the output cheap, keys are string constants (cJSON_AddItemToObjectCS), fixed strings
 * are references, and payload nodes (values, timestamps, extra fields) are moved from the parsed
 * tree into the output instead of being copied.
 *
 * This file holds the pass, the byte checks, the builders and the index; each format's topic and
 * payload live beside it (decode_haltian.c, decode_thingsee.c, sharing decode_internal.h), and
 * the measurement types in measurements.def.
 */
#include "hcore/decode.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_internal.h"
#include "decode_split.h"
#include "hcore/text.h"
#include "hcore/timefmt.h"
#include "internal.h"
#include "measurements.h"

const char *hc_decode_canonical_type(const char *name)
{
    unsigned flags;
    const struct hc__measurement *t;

    if (!name)
        return NULL;
    t = hc__measurement_lookup(name, strlen(name), &flags);
    return t ? t->name : NULL;
}

const char *hc_decode_unit(const char *canonical_type)
{
    unsigned flags;
    const struct hc__measurement *t;

    if (!canonical_type)
        return NULL;
    t = hc__measurement_lookup(canonical_type, strlen(canonical_type), &flags);
    return t ? t->unit : NULL;
}

void hc__decode_fail(struct hc__dec *d, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (d->err_code)
        return;
    d->err_code = code;
    va_start(ap, fmt);
    vsnprintf(d->err_detail, sizeof(d->err_detail), fmt, ap);
    va_end(ap);
}

void hc__decode_note(struct hc__dec *d, const char *fmt, ...)
{
    va_list ap;
    char *slot;

    /* Notes only feed the output; the index never formats them. */
    if (!d->out || d->nnotes >= DECODE_MAX_NOTES)
        return;
    slot = d->notes[d->nnotes];
    va_start(ap, fmt);
    vsnprintf(slot, DECODE_NOTE_MAX, fmt, ap);
    va_end(ap);
    for (int i = 0; i < d->nnotes; i++)
        if (strcmp(d->notes[i], slot) == 0)
            return; /* a Thingsee array repeats the same conversion per record */
    d->nnotes++;
}

/* ---- output builders (no-ops without an output object) ---- */

void hc__decode_put(struct hc__dec *d, cJSON *obj, const char *key, cJSON *item)
{
    if (!item) {
        d->nomem = true;
        return;
    }
    if (!obj || !cJSON_AddItemToObjectCS(obj, key, item)) {
        cJSON_Delete(item);
        d->nomem = true;
    }
}

void hc__decode_put_ref(struct hc__dec *d, cJSON *obj, const char *key, const char *static_str)
{
    if (obj)
        hc__decode_put(d, obj, key, cJSON_CreateStringReference(static_str));
}

void hc__decode_put_num(struct hc__dec *d, cJSON *obj, const char *key, double v)
{
    if (obj)
        hc__decode_put(d, obj, key, cJSON_CreateNumber(v));
}

void hc__decode_put_bool(struct hc__dec *d, cJSON *obj, const char *key, bool v)
{
    if (obj)
        hc__decode_put(d, obj, key, cJSON_CreateBool(v));
}

static cJSON *new_string_n(const char *p, size_t n)
{
    cJSON *item = cJSON_CreateStringReference("");
    char *copy;

    if (!item)
        return NULL;
    copy = cJSON_malloc(n + 1);
    if (!copy) {
        cJSON_Delete(item);
        return NULL;
    }
    memcpy(copy, p, n);
    copy[n] = '\0';
    item->valuestring = copy;
    item->type = cJSON_String; /* owned now: no longer a reference */
    return item;
}

void hc__decode_put_span(struct hc__dec *d, cJSON *obj, const char *key, struct hc__span s)
{
    if (obj)
        hc__decode_put(d, obj, key, new_string_n(s.p, s.n));
}

/* Moves item (a child of parent in the parsed payload) under key in obj. */
void hc__decode_put_moved(struct hc__dec *d, cJSON *obj, const char *key, cJSON *parent,
                          cJSON *item)
{
    if (obj)
        hc__decode_put(d, obj, key, cJSON_DetachItemViaPointer(parent, item));
}

/* Moves every remaining child of src, keeping its key, to the end of dst. */
void hc__decode_move_children(cJSON *dst, cJSON *src)
{
    while (src->child) {
        cJSON *c = cJSON_DetachItemViaPointer(src, src->child);

        /* AddItemToArray appends without touching c->string: the member keeps its key. */
        cJSON_AddItemToArray(dst, c);
    }
}

cJSON *hc__decode_new_object(struct hc__dec *d)
{
    cJSON *o;

    if (!d->out)
        return NULL;
    o = cJSON_CreateObject();
    if (!o)
        d->nomem = true;
    return o;
}

/* ---- byte-level checks ---- */

struct prescan {
    const char *code; /* NULL when fine */
    size_t at;
    bool unterminated; /* ended inside a string or an open bracket */
};

/* One pass before cJSON sees the bytes: UTF-8, raw control characters in strings (invalid JSON
 * that cJSON would accept), nesting depth. */
static struct prescan prescan(const unsigned char *p, size_t n)
{
    struct prescan r = {NULL, 0, false};
    bool in_str = false, esc = false;
    int depth = 0;

    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];

        if (c >= 0x80) {
            size_t k = hc_utf8_sequence_len(p + i, n - i);

            if (k == 0) {
                r.code = "invalid-utf8";
                r.at = i;
                return r;
            }
            esc = false;
            i += k;
            continue;
        }
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            else if (c < 0x20) {
                r.code = "not-json";
                r.at = i;
                return r;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > DECODE_MAX_DEPTH) {
                r.code = "too-deep";
                r.at = i;
                return r;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
        i++;
    }
    r.unterminated = in_str || depth > 0;
    return r;
}

/* Splits at '/' without copying; returns the number of levels (may exceed max). */
static int split_topic(const char *topic, struct hc__span *lv, int max)
{
    int n = 0;
    const char *start = topic;

    for (const char *p = topic;; p++) {
        if (*p == '/' || *p == '\0') {
            if (n < max) {
                lv[n].p = start;
                lv[n].n = (size_t)(p - start);
            }
            n++;
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    return n;
}

const char *hc__decode_json_type(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsObject(v))
        return "object";
    return "invalid";
}

bool hc__decode_is_finite(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble);
}

/* Error for a value that should be a number; false when v is one. */
bool hc__decode_want_number(struct hc__dec *d, const cJSON *v, const char *what)
{
    if (hc__decode_is_finite(v))
        return true;
    if (cJSON_IsNumber(v))
        hc__decode_fail(d, "number-out-of-range", "%s is not a finite number", what);
    else
        hc__decode_fail(d, "value-type", "%s expects a number, got %s", what,
                        hc__decode_json_type(v));
    return false;
}

/* ---- timestamps ---- */

void hc__decode_set_timestamp(struct hc__dec *d, int64_t ms)
{
    d->has_ts = true;
    d->ts_ms = ms;
}

void hc__decode_put_timestamp(struct hc__dec *d, cJSON *obj, int64_t ms)
{
    char buf[40];

    /* Always an owned copy, never shared with measured_at_received: callers may delete either
     * member (ignored paths) without the other dangling. */
    if (!obj)
        return;
    hc_time_format_rfc3339(ms * 1000000, 3, buf, sizeof(buf));
    hc__decode_put(d, obj, "measured_at", cJSON_CreateString(buf));
}

static void base64_value(struct hc__dec *d, cJSON *obj, const unsigned char *p, size_t n)
{
    char *s;
    cJSON *item;

    if (!obj)
        return;
    if (n > ((size_t)-1 / 4) * 3 - 4) {
        d->nomem = true;
        return;
    }
    s = malloc(hc_base64_encoded_len(n) + 1);
    if (!s) {
        d->nomem = true;
        return;
    }
    hc_base64_encode(p, n, s);
    item = cJSON_CreateString(s);
    free(s);
    hc__decode_put(d, obj, "payload_base64", item);
}

/* ---- the one decoding pass ---- */

/* The half of the pass that reads the topic alone; sets d->err_code on a topic error. */
static void decode_topic(struct hc__dec *d, const char *topic)
{
    cJSON *obj = d->out;
    size_t tlen = strlen(topic);

    if (tlen == 0 || !hc_text_is_json_safe_utf8((const unsigned char *)topic, tlen)) {
        hc__decode_put_ref(d, obj, "format", "unknown");
        hc__decode_fail(d, "invalid-topic", tlen ? "topic is not valid UTF-8" : "topic is empty");
        return;
    }
    d->nlv = split_topic(topic, d->lv, DECODE_MAX_LEVELS);
    if (hc__decode_span_is(d->lv[0], "haltian-iot") && d->nlv >= 2) {
        hc__decode_haltian_topic(d, obj);
    } else if (hc__decode_span_is(d->lv[0], "cloudext") && d->nlv >= 2 &&
               hc__decode_span_is(d->lv[1], "json")) {
        hc__decode_thingsee_topic(d, obj);
    } else {
        hc__decode_put_ref(d, obj, "format", "unknown");
        if (obj)
            hc__decode_put(d, obj, "topic", cJSON_CreateString(topic));
        hc__decode_fail(d, "not-haltian-topic",
                        "topic is neither haltian-iot/events/... nor cloudext/json/...");
    }
}

/* JSON number grammar (RFC 8259), no exponent, at most max bytes: such a number is finite and
 * below 2^53 in magnitude whatever its digits. Returns its length, 0 when it is not one. */
static size_t plain_number(const unsigned char *p, const unsigned char *end, size_t max)
{
    const unsigned char *s = p;

    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return 0;
    if (*p == '0')
        p++;
    else
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return 0;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E'))
        return 0;
    return (size_t)(p - s) <= max ? (size_t)(p - s) : 0;
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/*
 * The index's shortcut for the everyday Haltian measurement: a payload that is exactly
 * {"measured_at": "<printable ASCII, no escapes>", "value": <plain number>} (either order, JSON
 * whitespace allowed) under a measurements topic whose type takes a number. For such bytes the
 * full pass provably ends without error and with measured_at parsed from that very string (valid
 * UTF-8, no control characters, depth 1, one timestamp member, a finite number within the
 * integer range), so the shortcut records just that. Anything else, including a timestamp the
 * parser rejects, returns false and the full pass decides.
 */
static bool index_fast_measurement(struct hc__dec *d, const unsigned char *p, size_t len)
{
    const struct hc__measurement *t = d->tdef;
    const unsigned char *end = p + len, *ts = NULL;
    size_t ts_n = 0;
    bool seen_value = false;
    hc_error perr = HC_ERROR_INIT;
    int64_t ns;

    if (d->format != HC__FMT_HALTIAN || !t || !hc__decode_span_is(d->kind, "measurements") ||
        (t->vkind != HC__VK_NUMBER && t->vkind != HC__VK_INTEGER &&
         t->vkind != HC__VK_NUMBER_OR_OBJECT))
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{')
        return false;
    for (int member = 0; member < 2; member++) {
        p = skip_ws(p, end);
        if (member) {
            if (p >= end || *p++ != ',')
                return false;
            p = skip_ws(p, end);
        }
        if ((size_t)(end - p) >= 13 && memcmp(p, "\"measured_at\"", 13) == 0 && !ts) {
            p = skip_ws(p + 13, end);
            if (p >= end || *p++ != ':')
                return false;
            p = skip_ws(p, end);
            if (p >= end || *p++ != '"')
                return false;
            ts = p;
            while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
                p++;
            if (p >= end || *p != '"')
                return false;
            ts_n = (size_t)(p - ts);
            p++;
        } else if ((size_t)(end - p) >= 7 && memcmp(p, "\"value\"", 7) == 0 && !seen_value) {
            size_t n;

            p = skip_ws(p + 7, end);
            if (p >= end || *p++ != ':')
                return false;
            p = skip_ws(p, end);
            n = plain_number(p, end, 15);
            if (!n)
                return false;
            p += n;
            seen_value = true;
        } else {
            return false;
        }
    }
    p = skip_ws(p, end);
    if (p >= end || *p++ != '}' || skip_ws(p, end) != end)
        return false;
    if (hc_time_parse_rfc3339((const char *)ts, ts_n, &ns, &perr) != HC_OK)
        return false;
    hc__decode_set_timestamp(d, ns / 1000000 - (ns % 1000000 < 0));
    return true;
}

/* The half of the pass that reads the payload, after a topic without error. */
static void decode_payload(struct hc__dec *d, const unsigned char *payload, size_t len)
{
    cJSON *obj = d->out;
    struct prescan ps;
    const char *end = NULL;
    bool binary_ok;

    if (!obj && index_fast_measurement(d, payload, len))
        return;
    /* messages/rawData carries "binary message content": keep non-JSON bytes as base64. */
    binary_ok = d->format == HC__FMT_HALTIAN && hc__decode_span_is(d->kind, "messages");
    if (len == 0 && !binary_ok) {
        hc__decode_fail(d, "empty-payload", "payload is empty");
        return;
    }
    ps = prescan(payload, len);
    if (!ps.code) {
        d->root = cJSON_ParseWithLengthOpts((const char *)payload, len, &end, 0);
        if (!d->root) {
            ps.code = ps.unterminated ? "truncated-json" : "not-json";
            ps.at = end ? (size_t)(end - (const char *)payload) : 0;
        } else {
            while (end < (const char *)payload + len &&
                   (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
                end++;
            if (end != (const char *)payload + len) {
                ps.code = "not-json";
                ps.at = (size_t)(end - (const char *)payload);
            }
        }
    }
    if (binary_ok && (ps.code || !cJSON_IsObject(d->root))) {
        hc__decode_put_ref(d, obj, "shape", "binary");
        base64_value(d, obj, payload, len);
        hc__decode_note(d, "payload is not a JSON object: kept as base64");
        return;
    }
    if (ps.code) {
        if (strcmp(ps.code, "invalid-utf8") == 0)
            hc__decode_fail(d, ps.code, "payload is not valid UTF-8 (byte %zu)", ps.at);
        else if (strcmp(ps.code, "too-deep") == 0)
            hc__decode_fail(d, ps.code, "payload nests deeper than %d levels", DECODE_MAX_DEPTH);
        else if (strcmp(ps.code, "truncated-json") == 0)
            hc__decode_fail(d, ps.code, "payload ends inside a JSON value (%zu bytes)", len);
        else
            hc__decode_fail(d, ps.code, "payload is not valid JSON (byte %zu)", ps.at);
        return;
    }
    if (d->format == HC__FMT_THINGSEE) {
        hc__decode_thingsee_payload(d, obj, d->root);
        return;
    }
    if (!cJSON_IsObject(d->root)) {
        hc__decode_fail(d, "not-object", "payload is a JSON %s, expected an object",
                        hc__decode_json_type(d->root));
        return;
    }
    hc__decode_haltian_payload(d, obj, d->root);
}

static void decode(struct hc__dec *d, const char *topic, const unsigned char *payload, size_t len)
{
    decode_topic(d, topic);
    if (d->err_code)
        return;
    decode_payload(d, payload, len);
}

static void finish_output(struct hc__dec *d)
{
    cJSON *notes, *e;

    notes = cJSON_CreateArray();
    if (!notes) {
        d->nomem = true;
        return;
    }
    for (int i = 0; i < d->nnotes; i++) {
        cJSON *s = cJSON_CreateString(d->notes[i]);

        if (!s || !cJSON_AddItemToArray(notes, s)) {
            cJSON_Delete(s);
            d->nomem = true;
        }
    }
    hc__decode_put(d, d->out, "normalised", notes);
    if (!d->err_code)
        return;
    e = cJSON_CreateObject();
    if (e) {
        hc__decode_put_ref(d, e, "code", d->err_code);
        hc__decode_put(d, e, "detail", cJSON_CreateString(d->err_detail));
    }
    hc__decode_put(d, d->out, "error", e);
}

hc_err hc_decode_message(const char *topic, const unsigned char *payload, size_t payload_len,
                         cJSON **out, hc_error *err)
{
    struct hc__dec d;

    if (!topic || !out || (!payload && payload_len))
        return hc_error_set(err, HC_ERR_INVALID, "decode: topic, payload or out is NULL");
    memset(&d, 0, offsetof(struct hc__dec, notes));
    d.nnotes = 0;
    d.out = cJSON_CreateObject();
    if (!d.out)
        return hc_error_set(err, HC_ERR_NOMEM, "decode: out of memory");
    decode(&d, topic, payload ? payload : (const unsigned char *)"", payload_len);
    if (!d.nomem)
        finish_output(&d);
    cJSON_Delete(d.root);
    if (d.nomem) {
        cJSON_Delete(d.out);
        *out = NULL;
        return hc_error_set(err, HC_ERR_NOMEM, "decode: out of memory");
    }
    *out = d.out;
    return HC_OK;
}

/* Copies a span into a fixed field, cutting at a UTF-8 boundary when it does not fit. */
static void copy_field(char *dst, size_t size, const char *p, size_t n)
{
    if (!p)
        n = 0;
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, p, n);
    dst[n] = '\0';
}

/* --- the index, in two halves (decode_split.h) --- */

static struct hc__topic_part part_of(const char *topic, struct hc__span sp)
{
    struct hc__topic_part part = {0, 0, false};

    if (sp.p) {
        part.off = (size_t)(sp.p - topic);
        part.n = sp.n;
        part.set = true;
    }
    return part;
}

static struct hc__span span_of(const char *topic, struct hc__topic_part part)
{
    struct hc__span sp = {NULL, 0};

    if (part.set) {
        sp.p = topic + part.off;
        sp.n = part.n;
    }
    return sp;
}

void hc__decode_topic(const char *topic, struct hc__decoded_topic *dt)
{
    struct hc__dec d;

    memset(&d, 0, offsetof(struct hc__dec, notes));
    d.nnotes = 0;
    decode_topic(&d, topic);
    dt->format = (int)d.format;
    dt->err_code = d.err_code;
    dt->kind_str = d.kind_str;
    dt->type_str = d.type_str;
    dt->tdef = d.tdef;
    dt->alias_flags = d.alias_flags;
    /* Every span the topic half sets points into the topic itself. */
    dt->kind = part_of(topic, d.kind);
    dt->type_received = part_of(topic, d.type_received);
    dt->device = part_of(topic, d.device);
}

/* kind, type and device as hc_decode_index has always reported them, from d's state. */
static void index_fields(const struct hc__dec *d, struct hc_decode_index *idx)
{
    if (d->kind_str)
        copy_field(idx->kind, sizeof(idx->kind), d->kind_str, strlen(d->kind_str));
    else
        copy_field(idx->kind, sizeof(idx->kind), d->kind.p, d->kind.n);
    if (d->type_str)
        copy_field(idx->type, sizeof(idx->type), d->type_str, strlen(d->type_str));
    else
        copy_field(idx->type, sizeof(idx->type), d->type_received.p, d->type_received.n);
    copy_field(idx->device_id, sizeof(idx->device_id), d->device.p, d->device.n);
}

/* Puts d back in the state the topic half left it in. */
static void restore_topic(struct hc__dec *d, const char *topic, const struct hc__decoded_topic *dt)
{
    memset(d, 0, offsetof(struct hc__dec, notes));
    d->nnotes = 0;
    d->format = (enum hc__decode_format)dt->format;
    d->err_code = dt->err_code;
    d->kind_str = dt->kind_str;
    d->type_str = dt->type_str;
    d->tdef = dt->tdef;
    d->alias_flags = dt->alias_flags;
    d->kind = span_of(topic, dt->kind);
    d->type_received = span_of(topic, dt->type_received);
    d->device = span_of(topic, dt->device);
}

void hc__decode_topic_index(const char *topic, const struct hc__decoded_topic *dt,
                            struct hc_decode_index *idx)
{
    struct hc__dec d;

    memset(idx, 0, sizeof(*idx));
    restore_topic(&d, topic, dt);
    index_fields(&d, idx);
    idx->has_error = d.err_code != NULL;
}

void hc__decode_payload(const char *topic, const struct hc__decoded_topic *dt,
                        const unsigned char *payload, size_t payload_len,
                        struct hc__decoded_payload *out)
{
    struct hc__dec d;

    restore_topic(&d, topic, dt);
    if (!d.err_code)
        decode_payload(&d, payload ? payload : (const unsigned char *)"", payload_len);
    out->measured_at_ms = d.has_ts ? d.ts_ms : 0;
    out->has_measured_at = d.has_ts;
    out->has_error = d.err_code != NULL;
    /* Only a legacy Thingsee payload names the type; its text may live in the parsed tree. */
    out->type_from_payload =
        d.type_str != dt->type_str || d.type_received.p != span_of(topic, dt->type_received).p;
    if (out->type_from_payload) {
        if (d.type_str)
            copy_field(out->type, sizeof(out->type), d.type_str, strlen(d.type_str));
        else
            copy_field(out->type, sizeof(out->type), d.type_received.p, d.type_received.n);
    } else {
        out->type[0] = '\0';
    }
    cJSON_Delete(d.root);
}

void hc_decode_index(const char *topic, const unsigned char *payload, size_t payload_len,
                     struct hc_decode_index *idx)
{
    struct hc__decoded_topic dt;
    struct hc__decoded_payload dp;

    if (!idx)
        return;
    memset(idx, 0, sizeof(*idx));
    if (!topic || (!payload && payload_len)) {
        idx->has_error = 1;
        return;
    }
    hc__decode_topic(topic, &dt);
    hc__decode_topic_index(topic, &dt, idx);
    hc__decode_payload(topic, &dt, payload, payload_len, &dp);
    if (dp.type_from_payload)
        memcpy(idx->type, dp.type, sizeof(idx->type));
    idx->measured_at_ms = dp.measured_at_ms;
    idx->has_measured_at = dp.has_measured_at;
    idx->has_error = dp.has_error;
}

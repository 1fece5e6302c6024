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
 */
#include "hcore/decode.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_split.h"
#include "hcore/timefmt.h"
#include "internal.h"

/* Deeper payloads are rejected before parsing: no documented shape nests beyond 3 levels. */
#define DECODE_MAX_DEPTH 32
#define DECODE_MAX_LEVELS 8
#define DECODE_MAX_NOTES 16
#define DECODE_NOTE_MAX 160

/* ---- the type table: one list drives names, aliases, units and value checks ---- */

enum vkind {
    VK_NUMBER,
    VK_INTEGER,
    VK_BOOL,
    VK_STRING,
    VK_OBJECT,
    VK_NUMBER_OR_OBJECT,
    VK_MOVEMENT,
    VK_ORIENTATION,
    VK_POSITION,
    VK_ZONE,
    VK_MAGNETIC,
};

struct type_def {
    const char *name;
    const char *unit;
    enum vkind vkind;
};

static const struct type_def types[] = {
    {"ambientTemperature", "°C", VK_NUMBER},
    {"humidity", "%RH", VK_NUMBER},
    {"barometricPressure", "hPa", VK_NUMBER},
    {"ambientLight", "lux", VK_NUMBER},
    {"co2", "ppm", VK_NUMBER},
    {"tvoc", "ppb", VK_NUMBER},
    {"occupancyStatus", NULL, VK_BOOL},
    {"occupantsCount", "people", VK_INTEGER},
    {"occupancySeconds", "s", VK_NUMBER},
    {"directionalMovement", "people", VK_MOVEMENT},
    {"movementDetections", "count", VK_INTEGER},
    {"position", "m", VK_POSITION},
    {"positionLocal", "m", VK_POSITION},
    {"positionZone", NULL, VK_ZONE},
    {"positionConfidence", "%", VK_NUMBER},
    {"deviceOrientation", "g", VK_ORIENTATION},
    {"vibration", "%", VK_OBJECT},
    {"machineUsageSeconds", "s", VK_INTEGER},
    {"batteryPercentage", "%", VK_NUMBER},
    {"batteryVoltage", "V", VK_NUMBER},
    {"batteryCurrent", "A", VK_NUMBER},
    {"solarPanelVoltage", "V", VK_NUMBER},
    {"harvesterStorageVoltage", "V", VK_NUMBER},
    {"usbVoltage", "V", VK_NUMBER},
    {"rss", "dBm", VK_NUMBER_OR_OBJECT},
    {"systemTemperature", "°C", VK_NUMBER},
    {"bootCount", NULL, VK_NUMBER_OR_OBJECT},
    {"distance", "mm", VK_INTEGER},
    {"echo", NULL, VK_NUMBER},
    {"magneticState", NULL, VK_MAGNETIC},
    {"magneticStateChanges", "count", VK_INTEGER},
    {"electricalResistance", "Ω", VK_NUMBER},
    {"deviceRole", NULL, VK_STRING},
    {"diagnosticsInterval", "s", VK_INTEGER},
};

/* Aliases whose values mean something else than the canonical type's. */
#define ALIAS_CLOSED_POLARITY 1u /* true/1 = closed; canonical magneticState is true = open */
#define ALIAS_METRES 2u          /* value in m; canonical distance is mm */

struct alias_def {
    const char *alias;
    const char *canonical;
    unsigned flags;
};

/* snake_case and upper-case spellings of canonical names need no row: lookups fold case and
 * ignore '_' and '-' ("ambient_temperature", "CO2", "position_zone"). */
static const struct alias_def aliases[] = {
    {"ambientHumidity", "humidity", 0},
    {"ambientPressure", "barometricPressure", 0},
    {"air_pressure", "barometricPressure", 0},
    {"peopleCounting", "directionalMovement", 0},
    {"pir_count", "movementDetections", 0},
    {"battery_level", "batteryPercentage", 0},
    {"rssi", "rss", 0},
    {"device_temperature", "systemTemperature", 0},
    {"radar_distance", "distance", ALIAS_METRES},
    {"magnetoSwitchStatus", "magneticState", ALIAS_CLOSED_POLARITY},
    {"hall_effect", "magneticState", ALIAS_CLOSED_POLARITY},
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

static const struct type_def *type_by_name(const char *name)
{
    for (size_t i = 0; i < HC__ARRAY_LEN(types); i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

static const struct type_def *lookup_type(const char *s, size_t n, unsigned *flags)
{
    *flags = 0;
    for (size_t i = 0; i < HC__ARRAY_LEN(types); i++)
        if (fold_eq(s, n, types[i].name))
            return &types[i];
    for (size_t i = 0; i < HC__ARRAY_LEN(aliases); i++)
        if (fold_eq(s, n, aliases[i].alias)) {
            *flags = aliases[i].flags;
            return type_by_name(aliases[i].canonical);
        }
    return NULL;
}

const char *hc_decode_canonical_type(const char *name)
{
    unsigned flags;
    const struct type_def *t;

    if (!name)
        return NULL;
    t = lookup_type(name, strlen(name), &flags);
    return t ? t->name : NULL;
}

const char *hc_decode_unit(const char *canonical_type)
{
    unsigned flags;
    const struct type_def *t;

    if (!canonical_type)
        return NULL;
    t = lookup_type(canonical_type, strlen(canonical_type), &flags);
    return t ? t->unit : NULL;
}

/* ---- legacy Thingsee fields (HALTIAN.md section 5) ---- */

enum tconv {
    TC_NONE,
    TC_DIV100,     /* Pa -> hPa */
    TC_DIV1000,    /* mG -> g */
    TC_BOOL,       /* 0/1 -> false/true */
    TC_BOOL_OPEN0, /* hall: 0 open, 1 closed -> is_open */
};

struct thingsee_field {
    const char *field;
    const char *type;
    const char *member; /* fields that together form one object value */
    enum tconv conv;
    int only_tsm_id; /* field has this meaning only for this profile; 0 = any */
};

static const struct thingsee_field thingsee_fields[] = {
    {"temp", "ambientTemperature", NULL, TC_NONE, 0},
    {"humd", "humidity", NULL, TC_NONE, 0},
    {"airp", "barometricPressure", NULL, TC_DIV100, 0},
    {"lght", "ambientLight", NULL, TC_NONE, 0},
    {"batl", "batteryPercentage", NULL, TC_NONE, 0},
    {"accx", "deviceOrientation", "accx", TC_DIV1000, 0},
    {"accy", "deviceOrientation", "accy", TC_DIV1000, 0},
    {"accz", "deviceOrientation", "accz", TC_DIV1000, 0},
    {"state", "occupancyStatus", NULL, TC_BOOL, 2100},
    {"hall", "magneticState", NULL, TC_BOOL_OPEN0, 0},
    {"hallCount", "magneticStateChanges", NULL, TC_NONE, 0},
    {"moveCount", "movementDetections", NULL, TC_NONE, 0},
    {"in", "directionalMovement", "entries", TC_NONE, 0},
    {"out", "directionalMovement", "exits", TC_NONE, 0},
    {"activityLevel", "vibration", "level", TC_NONE, 0},
    {"energyLevel", "vibration", "total", TC_NONE, 0},
    {"dist", "distance", NULL, TC_NONE, 0},
    {"carbonDioxide", "co2", NULL, TC_NONE, 0},
    {"tvoc", "tvoc", NULL, TC_NONE, 0},
    {"resistance", "electricalResistance", NULL, TC_NONE, 0},
};

static const char *const thingsee_header[] = {"tsmId",   "tsmEv", "tsmTs",
                                              "tsmTuid", "tsmGw", "deploymentGroupId"};

static const struct thingsee_field *thingsee_field(const char *name, int tsm_id)
{
    for (size_t i = 0; i < HC__ARRAY_LEN(thingsee_fields); i++) {
        const struct thingsee_field *f = &thingsee_fields[i];

        if (strcmp(f->field, name) == 0 && (f->only_tsm_id == 0 || f->only_tsm_id == tsm_id))
            return f;
    }
    return NULL;
}

static bool thingsee_is_header(const char *name)
{
    for (size_t i = 0; i < HC__ARRAY_LEN(thingsee_header); i++)
        if (strcmp(thingsee_header[i], name) == 0)
            return true;
    return false;
}

/* ---- decoder state ---- */

enum format { FMT_UNKNOWN, FMT_HALTIAN, FMT_THINGSEE };

struct span {
    const char *p;
    size_t n;
};

struct dec {
    cJSON *out; /* NULL when only indexing: builders do nothing */
    bool nomem;
    const char *err_code;
    char err_detail[200];

    enum format format;
    struct span lv[DECODE_MAX_LEVELS];
    int nlv;
    struct span kind, type_received, device;
    const char *kind_str; /* "thingsee" for legacy; else NULL (kind span used) */
    const struct type_def *tdef;
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

static bool span_is(struct span s, const char *lit)
{
    size_t n = strlen(lit);

    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static void fail(struct dec *d, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct dec *d, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (d->err_code)
        return;
    d->err_code = code;
    va_start(ap, fmt);
    vsnprintf(d->err_detail, sizeof(d->err_detail), fmt, ap);
    va_end(ap);
}

static void note(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct dec *d, const char *fmt, ...)
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

static void put(struct dec *d, cJSON *obj, const char *key, cJSON *item)
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

static void put_ref(struct dec *d, cJSON *obj, const char *key, const char *static_str)
{
    if (obj)
        put(d, obj, key, cJSON_CreateStringReference(static_str));
}

static void put_num(struct dec *d, cJSON *obj, const char *key, double v)
{
    if (obj)
        put(d, obj, key, cJSON_CreateNumber(v));
}

static void put_bool(struct dec *d, cJSON *obj, const char *key, bool v)
{
    if (obj)
        put(d, obj, key, cJSON_CreateBool(v));
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

static void put_span(struct dec *d, cJSON *obj, const char *key, struct span s)
{
    if (obj)
        put(d, obj, key, new_string_n(s.p, s.n));
}

/* Moves item (a child of parent in the parsed payload) under key in obj. */
static void put_moved(struct dec *d, cJSON *obj, const char *key, cJSON *parent, cJSON *item)
{
    if (obj)
        put(d, obj, key, cJSON_DetachItemViaPointer(parent, item));
}

/* Moves every remaining child of src, keeping its key, to the end of dst. */
static void move_children(cJSON *dst, cJSON *src)
{
    while (src->child) {
        cJSON *c = cJSON_DetachItemViaPointer(src, src->child);

        /* AddItemToArray appends without touching c->string: the member keeps its key. */
        cJSON_AddItemToArray(dst, c);
    }
}

static cJSON *new_object(struct dec *d)
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

/* Length of a valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or > U+10FFFF);
 * 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static bool utf8_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k;

        if (p[i] < 0x80) {
            i++;
            continue;
        }
        k = utf8_seq(p + i, n - i);

        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

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
            size_t k = utf8_seq(p + i, n - i);

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
static int split_topic(const char *topic, struct span *lv, int max)
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

static const char *json_type_name(const cJSON *v)
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

static bool is_finite_number(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble);
}

/* Error for a value that should be a number; false when v is one. */
static bool want_number(struct dec *d, const cJSON *v, const char *what)
{
    if (is_finite_number(v))
        return true;
    if (cJSON_IsNumber(v))
        fail(d, "number-out-of-range", "%s is not a finite number", what);
    else
        fail(d, "value-type", "%s expects a number, got %s", what, json_type_name(v));
    return false;
}

static const char *type_name(const struct dec *d)
{
    return d->type_str ? d->type_str : "";
}

/* ---- timestamps ---- */

static void set_timestamp_ms(struct dec *d, int64_t ms)
{
    d->has_ts = true;
    d->ts_ms = ms;
}

static void put_timestamp(struct dec *d, cJSON *obj, int64_t ms)
{
    char buf[40];

    /* Always an owned copy, never shared with measured_at_received: callers may delete either
     * member (ignored paths) without the other dangling. */
    if (!obj)
        return;
    hc_time_format_rfc3339(ms * 1000000, 3, buf, sizeof(buf));
    put(d, obj, "measured_at", cJSON_CreateString(buf));
}

/* RFC 3339 string at key (measured_at or received_at) of root. */
static bool haltian_timestamp(struct dec *d, cJSON *node, const char *key)
{
    hc_error perr = HC_ERROR_INIT;
    int64_t ns, ms;
    const char *s;
    size_t n, pos, frac = 0;

    if (!cJSON_IsString(node)) {
        fail(d, "invalid-timestamp", "%s is a %s, not an RFC 3339 string", key,
             json_type_name(node));
        return false;
    }
    s = node->valuestring;
    n = strlen(s);
    if (hc_time_parse_rfc3339(s, n, &ns, &perr) != HC_OK) {
        fail(d, "invalid-timestamp", "%s: %s", key, perr.message);
        return false;
    }
    ms = ns / 1000000 - (ns % 1000000 < 0);
    set_timestamp_ms(d, ms);
    d->ts_node = node;
    if (!d->out)
        return true;
    pos = 19;
    if (s[pos] == '.') {
        while (s[pos + 1 + frac] >= '0' && s[pos + 1 + frac] <= '9')
            frac++;
        pos += 1 + frac;
    }
    if (strcmp(key, "measured_at") != 0)
        note(d, "measured_at: taken from %s", key);
    if (s[10] != 'T')
        note(d, "measured_at: separator '%c' -> 'T'", s[10]);
    if (frac > 3)
        note(d, "measured_at: %zu fractional digits -> 3 (truncated)", frac);
    else if (frac != 3)
        note(d, "measured_at: %zu fractional digits -> 3", frac);
    if (strcmp(s + pos, "Z") != 0)
        note(d, "measured_at: zone '%s' -> Z (UTC)", s + pos);
    return true;
}

/* ---- Haltian value shapes ---- */

/* First member of root other than the timestamp, counting them. */
static cJSON *first_field(const struct dec *d, const cJSON *root, int *count)
{
    cJSON *first = NULL;

    *count = 0;
    for (cJSON *c = root->child; c; c = c->next) {
        if (c == d->ts_node)
            continue;
        if (!first)
            first = c;
        (*count)++;
    }
    return first;
}

/* Boolean from true/false or 0/1. */
static bool want_bool(struct dec *d, const cJSON *v, const char *what, bool *out)
{
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return true;
    }
    if (is_finite_number(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
        *out = v->valuedouble == 1;
        note(d, "value: %s %g -> %s", what, v->valuedouble, *out ? "true" : "false");
        return true;
    }
    fail(d, "value-type", "%s expects a boolean, got %s", what, json_type_name(v));
    return false;
}

/* magneticState from a value (bool, 0/1, {isOpen}, {isClosed}) or a named field. */
static void magnetic_value(struct dec *d, cJSON *obj, const cJSON *v, const char *field)
{
    bool closed_polarity = (d->alias_flags & ALIAS_CLOSED_POLARITY) != 0;
    const char *what = field ? field : "value";
    char label[96];
    bool b;

    if (cJSON_IsObject(v)) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(v, "isOpen");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "isClosed");

        if (o) {
            v = o;
            what = "isOpen";
            closed_polarity = false;
        } else if (c) {
            v = c;
            what = "isClosed";
            closed_polarity = true;
        } else {
            fail(d, "value-type", "magneticState expects isOpen or isClosed");
            return;
        }
    } else if (field) {
        if (strcmp(field, "isClosed") == 0)
            closed_polarity = true;
        else if (strcmp(field, "isOpen") == 0)
            closed_polarity = false;
    }
    if (!want_bool(d, v, what, &b))
        return;
    if (closed_polarity) {
        if (strcmp(what, "value") == 0)
            snprintf(label, sizeof(label), "%.*s value", (int)d->type_received.n,
                     d->type_received.p);
        else
            snprintf(label, sizeof(label), "%s", what);
        note(d, "polarity: %s %s (true = closed) -> value %s (true = open)", label,
             b ? "true" : "false", b ? "false" : "true");
        b = !b;
    }
    put_bool(d, obj, "value", b);
}

/* directionalMovement: {entries, exits}; the old {in, out, net} form is mapped. */
static void movement_value(struct dec *d, cJSON *obj, cJSON *v)
{
    cJSON *entries = cJSON_GetObjectItemCaseSensitive(v, "entries");
    cJSON *exits = cJSON_GetObjectItemCaseSensitive(v, "exits");
    cJSON *in = cJSON_GetObjectItemCaseSensitive(v, "in");
    cJSON *out = cJSON_GetObjectItemCaseSensitive(v, "out");
    cJSON *net = cJSON_GetObjectItemCaseSensitive(v, "net");
    cJSON *val;

    if (!entries && !exits && (in || out)) {
        entries = in;
        exits = out;
        note(d, "value: in/out%s -> entries/exits", net ? "/net" : "");
    } else {
        in = out = net = NULL;
    }
    if (!entries && !exits) {
        fail(d, "value-type", "directionalMovement expects entries and exits");
        return;
    }
    if ((entries && !want_number(d, entries, "entries")) ||
        (exits && !want_number(d, exits, "exits")))
        return;
    if (!d->out)
        return;
    val = new_object(d);
    if (!val)
        return;
    if (entries)
        put_moved(d, val, "entries", v, entries);
    if (exits)
        put_moved(d, val, "exits", v, exits);
    if (net)
        cJSON_Delete(cJSON_DetachItemViaPointer(v, net)); /* entries - exits, implied */
    move_children(val, v);
    put(d, obj, "value", val);
}

static void orientation_check(struct dec *d, const cJSON *v)
{
    static const char *const axes[] = {"accx", "accy", "accz"};
    int found = 0;

    for (size_t i = 0; i < HC__ARRAY_LEN(axes); i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, axes[i]);

        if (a) {
            found++;
            if (!want_number(d, a, axes[i]))
                return;
        }
    }
    if (!found)
        fail(d, "value-type", "deviceOrientation expects accx, accy, accz");
}

/* Removes a payload node whose content now lives in the output in another form. */
static void drop(struct dec *d, cJSON *parent, cJSON *v)
{
    if (d->out)
        cJSON_Delete(cJSON_DetachItemViaPointer(parent, v));
}

/* Checks v against the type's value kind and puts the canonical "value". v is a child of
 * parent (the payload or a named-fields object built from it). */
static void typed_value(struct dec *d, cJSON *obj, cJSON *parent, cJSON *v, const char *field)
{
    const struct type_def *t = d->tdef;
    const char *name = t ? t->name : "";
    bool b;

    if (!t) {
        put_moved(d, obj, "value", parent, v);
        return;
    }
    switch (t->vkind) {
    case VK_NUMBER:
    case VK_INTEGER:
        if (!want_number(d, v, name))
            return;
        /* counts beyond 2^53 cannot be held exactly by any JSON consumer using doubles */
        if (t->vkind == VK_INTEGER && fabs(v->valuedouble) > 9007199254740992.0) {
            fail(d, "number-out-of-range", "%s value %.17g is beyond the exact integer range", name,
                 v->valuedouble);
            return;
        }
        if (d->alias_flags & ALIAS_METRES) {
            note(d, "unit: %.*s m -> mm (x1000)", (int)d->type_received.n, d->type_received.p);
            put_num(d, obj, "value", v->valuedouble * 1000.0);
            drop(d, parent, v);
            return;
        }
        break;
    case VK_BOOL:
        if (!want_bool(d, v, field ? field : "value", &b))
            return;
        put_bool(d, obj, "value", b);
        drop(d, parent, v);
        return;
    case VK_STRING:
        if (!cJSON_IsString(v)) {
            fail(d, "value-type", "%s expects a string, got %s", name, json_type_name(v));
            return;
        }
        break;
    case VK_ZONE:
        if (!cJSON_IsString(v) && !cJSON_IsObject(v)) {
            fail(d, "value-type", "%s expects a string or an object, got %s", name,
                 json_type_name(v));
            return;
        }
        break;
    case VK_OBJECT:
        if (!cJSON_IsObject(v)) {
            fail(d, "value-type", "%s expects an object, got %s", name, json_type_name(v));
            return;
        }
        break;
    case VK_NUMBER_OR_OBJECT:
        if (cJSON_IsNumber(v) ? !want_number(d, v, name) : !cJSON_IsObject(v)) {
            if (!d->err_code)
                fail(d, "value-type", "%s expects a number or an object, got %s", name,
                     json_type_name(v));
            return;
        }
        break;
    case VK_MOVEMENT:
        if (!cJSON_IsObject(v)) {
            fail(d, "value-type", "%s expects an object, got %s", name, json_type_name(v));
            return;
        }
        movement_value(d, obj, v);
        drop(d, parent, v);
        return;
    case VK_ORIENTATION:
        if (!cJSON_IsObject(v)) {
            fail(d, "value-type", "%s expects an object, got %s", name, json_type_name(v));
            return;
        }
        orientation_check(d, v);
        if (d->err_code)
            return;
        break;
    case VK_MAGNETIC:
        magnetic_value(d, obj, v, field);
        drop(d, parent, v);
        return;
    case VK_POSITION:
        break; /* handled by position() */
    }
    put_moved(d, obj, "value", parent, v);
}

/* GeoJSON Point -> lon, lat (, alt). */
static bool geojson_point(struct dec *d, const cJSON *g, double c[3], int *nc)
{
    const cJSON *coords = cJSON_GetObjectItemCaseSensitive(g, "coordinates");
    const cJSON *gtype = cJSON_GetObjectItemCaseSensitive(g, "type");
    int n;

    if (gtype && !(cJSON_IsString(gtype) && strcmp(gtype->valuestring, "Point") == 0)) {
        fail(d, "value-type", "position: only GeoJSON Point is supported");
        return false;
    }
    n = cJSON_GetArraySize(coords);
    if (!cJSON_IsArray(coords) || n < 2 || n > 3) {
        fail(d, "value-type", "position: coordinates must be [lon, lat] or [lon, lat, alt]");
        return false;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(coords, i);

        if (!want_number(d, x, "position coordinate"))
            return false;
        c[i] = x->valuedouble;
    }
    *nc = n;
    return true;
}

/*
 * The three position layouts (and positionLocal {x,y,z}) -> one object:
 * {x, y, z, lon, lat, alt, accuracy, space_id, floor, building_id, ...other members}.
 * src is the "value" object, or the payload itself for named fields.
 */
static void position(struct dec *d, cJSON *obj, cJSON *root, cJSON *src)
{
    static const char *const local_axes[] = {"x", "y", "z"};
    static const char *const context[] = {"accuracy", "space_id", "floor", "building_id"};
    cJSON *local = cJSON_GetObjectItemCaseSensitive(src, "position_local");
    cJSON *global = cJSON_GetObjectItemCaseSensitive(src, "position_global");
    cJSON *coords = cJSON_GetObjectItemCaseSensitive(src, "coordinates");
    const cJSON *lsrc = local ? local : src;
    double g[3] = {0, 0, 0};
    int ng = 0, nlocal = 0;
    const char *shape = "position";
    cJSON *val;

    if (local && !cJSON_IsObject(local)) {
        fail(d, "value-type", "position_local must be an object");
        return;
    }
    if (global && !cJSON_IsObject(global)) {
        fail(d, "value-type", "position_global must be a GeoJSON object");
        return;
    }
    if (global && !geojson_point(d, global, g, &ng))
        return;
    if (!global && coords) {
        if (!geojson_point(d, src, g, &ng))
            return;
        shape = "position-geojson";
    }
    for (size_t i = 0; i < HC__ARRAY_LEN(local_axes); i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(lsrc, local_axes[i]);

        if (a) {
            if (!want_number(d, a, local_axes[i]))
                return;
            nlocal++;
        }
    }
    if (!nlocal && !ng) {
        fail(d, "value-type",
             "%s expects position_local/position_global, a GeoJSON Point or {x, y, z}",
             type_name(d));
        return;
    }
    {
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive(src, "accuracy");

        if (!acc && src != root)
            acc = cJSON_GetObjectItemCaseSensitive(root, "accuracy");
        if (acc && !want_number(d, acc, "accuracy"))
            return;
    }
    if (src == root)
        shape = "named-fields";
    put_ref(d, obj, "shape", shape);
    if (!d->out)
        return;

    val = new_object(d);
    if (!val)
        return;
    for (size_t i = 0; i < HC__ARRAY_LEN(local_axes); i++) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(lsrc, local_axes[i]);

        if (a)
            put_moved(d, val, local_axes[i], (cJSON *)lsrc, a);
    }
    if (ng) {
        put_num(d, val, "lon", g[0]);
        put_num(d, val, "lat", g[1]);
        if (ng == 3)
            put_num(d, val, "alt", g[2]);
    }
    if (local)
        cJSON_Delete(cJSON_DetachItemViaPointer(src, local));
    if (global)
        cJSON_Delete(cJSON_DetachItemViaPointer(src, global));
    if (coords) {
        cJSON *gt = cJSON_GetObjectItemCaseSensitive(src, "type");

        cJSON_Delete(cJSON_DetachItemViaPointer(src, coords));
        if (gt)
            cJSON_Delete(cJSON_DetachItemViaPointer(src, gt));
    }
    for (size_t i = 0; i < HC__ARRAY_LEN(context); i++) {
        cJSON *c = cJSON_GetObjectItemCaseSensitive(src, context[i]);

        if (c) {
            put_moved(d, val, context[i], src, c);
        } else if (src != root && (c = cJSON_GetObjectItemCaseSensitive(root, context[i]))) {
            note(d, "position: top-level %s -> value", context[i]);
            put_moved(d, val, context[i], root, c);
        }
    }
    if (src != root) {
        move_children(val, src);
        cJSON_Delete(cJSON_DetachItemViaPointer(root, src));
    } else {
        /* Named fields: the timestamp was moved out already; the rest is the position. */
        move_children(val, src);
    }
    put(d, obj, "value", val);
}

static const char *const scalar_fields[] = {"isOccupied", "isOpen", "isClosed"};

static void haltian_measurement(struct dec *d, cJSON *obj, cJSON *root)
{
    cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    const struct type_def *t = d->tdef;
    int nfields;
    cJSON *first;

    if (t && t->vkind == VK_POSITION) {
        if (value && !cJSON_IsObject(value)) {
            fail(d, "value-type", "%s expects an object, got %s", t->name, json_type_name(value));
            return;
        }
        position(d, obj, root, value ? value : root);
        return;
    }
    if (value) {
        put_ref(d, obj, "shape", "value");
        typed_value(d, obj, root, value, NULL);
        return;
    }
    first = first_field(d, root, &nfields);
    if (nfields == 0) {
        fail(d, "missing-value", "no value and no named fields");
        return;
    }
    put_ref(d, obj, "shape", "named-fields");
    if (!t || t->vkind == VK_OBJECT || t->vkind == VK_MOVEMENT || t->vkind == VK_ORIENTATION ||
        (t->vkind == VK_NUMBER_OR_OBJECT && nfields > 1)) {
        /* The named fields together are the value. */
        cJSON *val;

        if (t && t->vkind == VK_ORIENTATION) {
            orientation_check(d, root);
            if (d->err_code)
                return;
        }
        if (t && t->vkind == VK_MOVEMENT) {
            /* The fields, gathered in a scratch object, are read as a value would be. */
            if (!d->out) {
                movement_value(d, NULL, root);
                return;
            }
            val = new_object(d);
            if (!val)
                return;
            move_children(val, root);
            note(d, "fields -> value");
            movement_value(d, obj, val);
            cJSON_Delete(val);
            return;
        }
        note(d, "fields -> value");
        if (!d->out)
            return;
        val = new_object(d);
        if (!val)
            return;
        move_children(val, root);
        put(d, obj, "value", val);
        return;
    }
    /* A scalar type: a known field name, else the only field. */
    for (size_t i = 0; i < HC__ARRAY_LEN(scalar_fields); i++) {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(root, scalar_fields[i]);

        if (f && f != d->ts_node) {
            first = f;
            nfields = 1;
            break;
        }
    }
    if (nfields != 1) {
        fail(d, "missing-value", "no value and %d named fields for %s", nfields, t->name);
        return;
    }
    note(d, "field %s -> value", first->string);
    typed_value(d, obj, root, first, first->string);
}

/* Binary passthrough: value {mqtt_topic, payload (base64)} kept exactly as received. */
static void haltian_passthrough(struct dec *d, cJSON *obj, cJSON *root)
{
    cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    int nfields;

    if (value) {
        bool pt = cJSON_IsObject(value) &&
                  cJSON_IsString(cJSON_GetObjectItemCaseSensitive(value, "mqtt_topic")) &&
                  cJSON_IsString(cJSON_GetObjectItemCaseSensitive(value, "payload"));

        put_ref(d, obj, "shape", pt ? "passthrough" : "value");
        put_moved(d, obj, "value", root, value);
        return;
    }
    first_field(d, root, &nfields);
    if (nfields == 0) {
        fail(d, "missing-value", "no value and no named fields");
        return;
    }
    put_ref(d, obj, "shape", "named-fields");
    if (d->out) {
        cJSON *val = new_object(d);

        if (val) {
            move_children(val, root);
            put(d, obj, "value", val);
        }
    }
}

/* messages, notifications, unknown kinds: the value, or all fields, as received. */
static void haltian_generic(struct dec *d, cJSON *obj, cJSON *root)
{
    cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    int nfields;

    if (value) {
        put_ref(d, obj, "shape", "value");
        put_moved(d, obj, "value", root, value);
        return;
    }
    first_field(d, root, &nfields);
    put_ref(d, obj, "shape", nfields ? "named-fields" : "empty");
    if (nfields && d->out) {
        cJSON *val = new_object(d);

        if (val) {
            move_children(val, root);
            put(d, obj, "value", val);
        }
    }
}

static void base64_value(struct dec *d, cJSON *obj, const unsigned char *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s, *w;
    cJSON *item;

    if (!obj)
        return;
    if (n > ((size_t)-1 / 4) * 3 - 4) {
        d->nomem = true;
        return;
    }
    s = malloc(4 * ((n + 2) / 3) + 1);
    if (!s) {
        d->nomem = true;
        return;
    }
    w = s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *w++ = tbl[v >> 18 & 63];
        *w++ = tbl[v >> 12 & 63];
        *w++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *w = '\0';
    item = cJSON_CreateString(s);
    free(s);
    put(d, obj, "payload_base64", item);
}

static void haltian_payload(struct dec *d, cJSON *obj, cJSON *root)
{
    bool passthrough = span_is(d->kind, "payloads");
    bool needs_ts = passthrough || span_is(d->kind, "measurements");
    const char *k1 = passthrough ? "received_at" : "measured_at";
    const char *k2 = passthrough ? "measured_at" : "received_at";
    const char *key = k1;
    cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, k1);

    if (!ts) {
        ts = cJSON_GetObjectItemCaseSensitive(root, k2);
        key = k2;
    }
    if (!ts) {
        if (needs_ts) {
            fail(d, "missing-timestamp", "payload has no measured_at%s",
                 passthrough ? " or received_at" : "");
            return;
        }
        note(d, "no timestamp in payload");
    } else {
        if (!haltian_timestamp(d, ts, key))
            return;
        put_timestamp(d, obj, d->ts_ms);
        put_moved(d, obj, "measured_at_received", root, ts);
        put_num(d, obj, "measured_at_ms", (double)d->ts_ms);
        put_ref(d, obj, "measured_at_source", key);
    }
    if (span_is(d->kind, "measurements"))
        haltian_measurement(d, obj, root);
    else if (passthrough)
        haltian_passthrough(d, obj, root);
    else
        haltian_generic(d, obj, root);
    if (d->err_code || !obj)
        return;
    if (d->tdef && d->tdef->unit)
        put_ref(d, obj, "unit", d->tdef->unit);
    if (root->child) {
        cJSON *extra = new_object(d);

        if (extra) {
            move_children(extra, root);
            put(d, obj, "extra", extra);
        }
    }
}

/* ---- Thingsee ---- */

static int64_t thingsee_ms(double secs)
{
    return (int64_t)llround(secs * 1000.0);
}

/* Validates one record; sets the message type and timestamp from record 0. */
static bool thingsee_check(struct dec *d, const cJSON *rec, int i)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(rec, "tsmTs");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "tsmId");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(rec, "tsmEv");
    int tsm_id = 0;

    if (!cJSON_IsObject(rec)) {
        fail(d, "not-object", "record %d is a %s, not an object", i, json_type_name(rec));
        return false;
    }
    if (!ts) {
        fail(d, "missing-timestamp", "record %d has no tsmTs", i);
        return false;
    }
    /* Epoch seconds must stay within int64 ns (years 1678-2261). */
    if (!is_finite_number(ts) || fabs(ts->valuedouble) > 9.2e9) {
        fail(d, "invalid-timestamp", "record %d: tsmTs must be epoch seconds, got %s", i,
             cJSON_IsNumber(ts) ? "an out-of-range number" : json_type_name(ts));
        return false;
    }
    if (id && !want_number(d, id, "tsmId"))
        return false;
    if (ev && !want_number(d, ev, "tsmEv"))
        return false;
    if (id && fabs(id->valuedouble) < 1e9)
        tsm_id = (int)id->valuedouble;
    if (i == 0)
        set_timestamp_ms(d, thingsee_ms(ts->valuedouble));
    for (const cJSON *c = rec->child; c; c = c->next) {
        const struct thingsee_field *f;

        if (thingsee_is_header(c->string))
            continue;
        f = thingsee_field(c->string, tsm_id);
        if (f && !want_number(d, c, c->string))
            return false;
        if (i == 0 && !d->type_str) {
            d->type_str = f ? f->type : NULL;
            d->type_received.p = c->string;
            d->type_received.n = strlen(c->string);
            if (!f)
                d->type_str = c->string; /* unmapped: passed through under its own name */
        }
    }
    return true;
}

static double thingsee_convert(const struct thingsee_field *f, double v)
{
    switch (f->conv) {
    case TC_DIV100:
        return v / 100.0;
    case TC_DIV1000:
        return v / 1000.0;
    default:
        return v;
    }
}

static void thingsee_conv_note(struct dec *d, const struct thingsee_field *f)
{
    switch (f->conv) {
    case TC_DIV100:
        note(d, "unit: %s Pa -> hPa (/100)", f->field);
        break;
    case TC_DIV1000:
        note(d, "unit: accx/accy/accz mG -> g (/1000)");
        break;
    case TC_BOOL:
        note(d, "value: %s 0/1 -> false/true", f->field);
        break;
    case TC_BOOL_OPEN0:
        note(d, "polarity: %s 0 = open, 1 = closed -> magneticState true = open", f->field);
        break;
    case TC_NONE:
        break;
    }
}

static void thingsee_record(struct dec *d, cJSON *list, cJSON *rec, int idx)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(rec, "tsmTs");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "tsmId");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(rec, "tsmEv");
    int64_t ms = thingsee_ms(ts->valuedouble);
    int tsm_id = id && fabs(id->valuedouble) < 1e9 ? (int)id->valuedouble : 0;
    bool done[HC__ARRAY_LEN(thingsee_fields)] = {false};

    for (cJSON *c = rec->child; c; c = c->next) {
        const struct thingsee_field *f;
        cJSON *m, *v = NULL, *vr = NULL;
        const char *unit = NULL, *unit_received = NULL;
        char field[64] = "";

        if (thingsee_is_header(c->string))
            continue;
        f = thingsee_field(c->string, tsm_id);
        if (f && done[f - thingsee_fields])
            continue;
        m = new_object(d);
        if (!m)
            return;
        if (!f) {
            note(d, "thingsee: field %s not mapped, kept as received", c->string);
            put(d, m, "type", cJSON_CreateString(c->string));
            put(d, m, "field", cJSON_CreateString(c->string));
            put(d, m, "value", cJSON_Duplicate(c, 1));
        } else {
            unit = hc_decode_unit(f->type);
            if (f->conv == TC_DIV100)
                unit_received = "Pa";
            else if (f->conv == TC_DIV1000)
                unit_received = "mG";
            thingsee_conv_note(d, f);
            if (f->member) {
                /* Gather every member of this group (accx/accy/accz, in/out, ...). */
                v = cJSON_CreateObject();
                vr = f->conv != TC_NONE ? cJSON_CreateObject() : NULL;
                if (!v || (f->conv != TC_NONE && !vr))
                    d->nomem = true;
                for (size_t k = 0; k < HC__ARRAY_LEN(thingsee_fields); k++) {
                    const struct thingsee_field *g = &thingsee_fields[k];
                    const cJSON *gv;

                    if (strcmp(g->type, f->type) != 0 || !g->member)
                        continue;
                    gv = cJSON_GetObjectItemCaseSensitive(rec, g->field);
                    if (!gv)
                        continue;
                    done[k] = true;
                    if (field[0])
                        strncat(field, ",", sizeof(field) - strlen(field) - 1);
                    strncat(field, g->field, sizeof(field) - strlen(field) - 1);
                    if (v)
                        put_num(d, v, g->member, thingsee_convert(g, gv->valuedouble));
                    if (vr)
                        put_num(d, vr, g->field, gv->valuedouble);
                }
            } else {
                done[f - thingsee_fields] = true;
                snprintf(field, sizeof(field), "%s", f->field);
                if (f->conv == TC_BOOL || f->conv == TC_BOOL_OPEN0) {
                    bool b = c->valuedouble != 0;

                    v = cJSON_CreateBool(f->conv == TC_BOOL ? b : !b);
                    vr = cJSON_CreateNumber(c->valuedouble);
                } else {
                    v = cJSON_CreateNumber(thingsee_convert(f, c->valuedouble));
                    if (f->conv != TC_NONE)
                        vr = cJSON_CreateNumber(c->valuedouble);
                }
            }
            put_ref(d, m, "type", f->type);
            put(d, m, "field", cJSON_CreateString(field));
            put(d, m, "value", v);
            if (unit)
                put_ref(d, m, "unit", unit);
            if (vr)
                put(d, m, "value_received", vr);
            if (unit_received)
                put_ref(d, m, "unit_received", unit_received);
        }
        put_timestamp(d, m, ms);
        put_num(d, m, "measured_at_ms", (double)ms);
        put_num(d, m, "record", idx);
        if (id)
            put(d, m, "tsm_id", cJSON_Duplicate(id, 0));
        if (ev)
            put(d, m, "tsm_ev", cJSON_Duplicate(ev, 0));
        if (!cJSON_AddItemToArray(list, m)) {
            cJSON_Delete(m);
            d->nomem = true;
        }
    }
}

static void thingsee_payload(struct dec *d, cJSON *obj, cJSON *root)
{
    bool array = cJSON_IsArray(root);
    int n = array ? cJSON_GetArraySize(root) : 1;
    cJSON *first = array ? root->child : root;
    cJSON *list;
    int i = 0;

    if (!array && !cJSON_IsObject(root)) {
        fail(d, "not-object", "payload is a %s, expected a Thingsee object or array",
             json_type_name(root));
        return;
    }
    if (n == 0) {
        fail(d, "empty-array", "payload is an empty array");
        return;
    }
    for (cJSON *r = first; r; r = array ? r->next : NULL, i++)
        if (!thingsee_check(d, r, i))
            break;
    /* Type and time of record 0 are known even when a later record is bad (the index has them). */
    if (d->type_str && obj) {
        if (d->type_str == d->type_received.p)
            put_span(d, obj, "type", d->type_received);
        else
            put_ref(d, obj, "type", d->type_str);
        put_span(d, obj, "type_received", d->type_received);
    }
    if (d->err_code) {
        if (d->has_ts) {
            put_timestamp(d, obj, d->ts_ms);
            put_num(d, obj, "measured_at_ms", (double)d->ts_ms);
        }
        return;
    }
    if (!obj)
        return;
    {
        static const struct {
            const char *in, *out;
        } hdr[] = {{"tsmId", "tsm_id"},
                   {"tsmEv", "tsm_ev"},
                   {"tsmTuid", "tsm_tuid"},
                   {"tsmGw", "gateway"},
                   {"deploymentGroupId", "group"}};

        for (size_t k = 0; k < HC__ARRAY_LEN(hdr); k++) {
            cJSON *h = cJSON_GetObjectItemCaseSensitive(first, hdr[k].in);

            if (h)
                put(d, obj, hdr[k].out, cJSON_Duplicate(h, 1));
        }
    }
    put_timestamp(d, obj, d->ts_ms);
    put(d, obj, "measured_at_received",
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(first, "tsmTs"), 0));
    put_num(d, obj, "measured_at_ms", (double)d->ts_ms);
    put_ref(d, obj, "measured_at_source", "tsmTs");
    note(d, "measured_at: tsmTs epoch seconds -> RFC 3339 UTC");
    put_ref(d, obj, "shape", array ? "thingsee-array" : "thingsee-object");
    put_num(d, obj, "records", n);
    list = cJSON_CreateArray();
    if (!list) {
        d->nomem = true;
        return;
    }
    i = 0;
    for (cJSON *r = first; r; r = array ? r->next : NULL, i++)
        thingsee_record(d, list, r, i);
    put(d, obj, "measurements", list);
}

/* ---- topic ---- */

static const char *const known_kinds[] = {"measurements", "messages", "notifications", "payloads"};

static void put_kind(struct dec *d, cJSON *obj)
{
    for (size_t i = 0; i < HC__ARRAY_LEN(known_kinds); i++)
        if (span_is(d->kind, known_kinds[i])) {
            put_ref(d, obj, "kind", known_kinds[i]);
            return;
        }
    put_span(d, obj, "kind", d->kind);
}

static void haltian_topic(struct dec *d, cJSON *obj)
{
    static const char *const keys[] = {NULL, NULL, "integration_id", "api_key_id",
                                       NULL, NULL, "device_id"};
    int n = d->nlv;

    d->format = FMT_HALTIAN;
    if (!span_is(d->lv[1], "events")) {
        put_ref(d, obj, "format", "haltian");
        if (obj)
            put(d, obj, "topic", cJSON_CreateString(d->lv[0].p));
        fail(d, "not-event-topic", "expected haltian-iot/events/..., got level 2 '%.*s'",
             (int)d->lv[1].n, d->lv[1].p);
        return;
    }
    if (n > 4)
        d->kind = d->lv[4];
    if (n > 5)
        d->type_received = d->lv[5];
    if (n > 6 && n <= 7)
        d->device = d->lv[6];
    if (d->type_received.p && span_is(d->kind, "measurements")) {
        d->tdef = lookup_type(d->type_received.p, d->type_received.n, &d->alias_flags);
        d->type_str = d->tdef ? d->tdef->name : NULL;
    }
    put_ref(d, obj, "format", "haltian");
    if (d->kind.p)
        put_kind(d, obj);
    if (d->type_received.p) {
        if (d->type_str)
            put_ref(d, obj, "type", d->type_str);
        else
            put_span(d, obj, "type", d->type_received);
        /* The usual case, received == canonical, needs no copy. */
        if (d->type_str && span_is(d->type_received, d->type_str))
            put_ref(d, obj, "type_received", d->type_str);
        else
            put_span(d, obj, "type_received", d->type_received);
    }
    for (int i = 2; i < 4 && i < n; i++)
        put_span(d, obj, keys[i], d->lv[i]);
    if (d->device.p)
        put_span(d, obj, "device_id", d->device);

    for (int i = 0; i < n && i < DECODE_MAX_LEVELS; i++)
        if (d->lv[i].n == 0) {
            fail(d, "topic-empty-level", "topic level %d is empty", i + 1);
            return;
        }
    if (n < 6) {
        fail(d, "topic-too-short", "haltian topic has %d levels, expected 7 (6 for notifications)",
             n);
        return;
    }
    if (n > 7) {
        fail(d, "topic-too-long", "haltian topic has %d levels, expected 7", n);
        return;
    }
    if (n == 6 && !span_is(d->kind, "notifications")) {
        fail(d, "topic-too-short", "no device id level after '%.*s'", (int)d->type_received.n,
             d->type_received.p);
        return;
    }
    if (!span_is(d->kind, "measurements") && !span_is(d->kind, "messages") &&
        !span_is(d->kind, "notifications") && !span_is(d->kind, "payloads"))
        note(d, "kind: '%.*s' is not a documented event kind", (int)d->kind.n, d->kind.p);
    else if (span_is(d->kind, "measurements") && !d->tdef)
        note(d, "type: '%.*s' unknown, passed through without unit", (int)d->type_received.n,
             d->type_received.p);
    else if (d->tdef && !span_is(d->type_received, d->tdef->name))
        note(d, "type: %.*s -> %s", (int)d->type_received.n, d->type_received.p, d->tdef->name);
}

static void thingsee_topic(struct dec *d, cJSON *obj)
{
    static const char *const keys[] = {NULL, NULL, "env", "country", "group_id", NULL, NULL};
    int n = d->nlv;

    d->format = FMT_THINGSEE;
    d->kind_str = "thingsee";
    put_ref(d, obj, "format", "thingsee");
    put_ref(d, obj, "kind", "thingsee");
    if (n == 7)
        d->device = d->lv[5];
    if (d->device.p)
        put_span(d, obj, "device_id", d->device);
    for (int i = 2; i < 5 && i < n && i < DECODE_MAX_LEVELS; i++)
        put_span(d, obj, keys[i], d->lv[i]);
    if (n < 7)
        fail(d, "topic-too-short",
             "thingsee topic has %d levels, expected cloudext/json/env/country/group/tuid/tsmId",
             n);
    else if (n > 7)
        fail(d, "topic-too-long", "thingsee topic has %d levels, expected 7", n);
}

/* ---- the one decoding pass ---- */

/* The half of the pass that reads the topic alone; sets d->err_code on a topic error. */
static void decode_topic(struct dec *d, const char *topic)
{
    cJSON *obj = d->out;
    size_t tlen = strlen(topic);

    if (tlen == 0 || !utf8_valid((const unsigned char *)topic, tlen)) {
        put_ref(d, obj, "format", "unknown");
        fail(d, "invalid-topic", tlen ? "topic is not valid UTF-8" : "topic is empty");
        return;
    }
    d->nlv = split_topic(topic, d->lv, DECODE_MAX_LEVELS);
    if (span_is(d->lv[0], "haltian-iot") && d->nlv >= 2) {
        haltian_topic(d, obj);
    } else if (span_is(d->lv[0], "cloudext") && d->nlv >= 2 && span_is(d->lv[1], "json")) {
        thingsee_topic(d, obj);
    } else {
        put_ref(d, obj, "format", "unknown");
        if (obj)
            put(d, obj, "topic", cJSON_CreateString(topic));
        fail(d, "not-haltian-topic",
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
static bool index_fast_measurement(struct dec *d, const unsigned char *p, size_t len)
{
    const struct type_def *t = d->tdef;
    const unsigned char *end = p + len, *ts = NULL;
    size_t ts_n = 0;
    bool seen_value = false;
    hc_error perr = HC_ERROR_INIT;
    int64_t ns;

    if (d->format != FMT_HALTIAN || !t || !span_is(d->kind, "measurements") ||
        (t->vkind != VK_NUMBER && t->vkind != VK_INTEGER && t->vkind != VK_NUMBER_OR_OBJECT))
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
    set_timestamp_ms(d, ns / 1000000 - (ns % 1000000 < 0));
    return true;
}

/* The half of the pass that reads the payload, after a topic without error. */
static void decode_payload(struct dec *d, const unsigned char *payload, size_t len)
{
    cJSON *obj = d->out;
    struct prescan ps;
    const char *end = NULL;
    bool binary_ok;

    if (!obj && index_fast_measurement(d, payload, len))
        return;
    /* messages/rawData carries "binary message content": keep non-JSON bytes as base64. */
    binary_ok = d->format == FMT_HALTIAN && span_is(d->kind, "messages");
    if (len == 0 && !binary_ok) {
        fail(d, "empty-payload", "payload is empty");
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
        put_ref(d, obj, "shape", "binary");
        base64_value(d, obj, payload, len);
        note(d, "payload is not a JSON object: kept as base64");
        return;
    }
    if (ps.code) {
        if (strcmp(ps.code, "invalid-utf8") == 0)
            fail(d, ps.code, "payload is not valid UTF-8 (byte %zu)", ps.at);
        else if (strcmp(ps.code, "too-deep") == 0)
            fail(d, ps.code, "payload nests deeper than %d levels", DECODE_MAX_DEPTH);
        else if (strcmp(ps.code, "truncated-json") == 0)
            fail(d, ps.code, "payload ends inside a JSON value (%zu bytes)", len);
        else
            fail(d, ps.code, "payload is not valid JSON (byte %zu)", ps.at);
        return;
    }
    if (d->format == FMT_THINGSEE) {
        thingsee_payload(d, obj, d->root);
        return;
    }
    if (!cJSON_IsObject(d->root)) {
        fail(d, "not-object", "payload is a JSON %s, expected an object", json_type_name(d->root));
        return;
    }
    haltian_payload(d, obj, d->root);
}

static void decode(struct dec *d, const char *topic, const unsigned char *payload, size_t len)
{
    decode_topic(d, topic);
    if (d->err_code)
        return;
    decode_payload(d, payload, len);
}

static void finish_output(struct dec *d)
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
    put(d, d->out, "normalised", notes);
    if (!d->err_code)
        return;
    e = cJSON_CreateObject();
    if (e) {
        put_ref(d, e, "code", d->err_code);
        put(d, e, "detail", cJSON_CreateString(d->err_detail));
    }
    put(d, d->out, "error", e);
}

hc_err hc_decode_message(const char *topic, const unsigned char *payload, size_t payload_len,
                         cJSON **out, hc_error *err)
{
    struct dec d;

    if (!topic || !out || (!payload && payload_len))
        return hc_error_set(err, HC_ERR_INVALID, "decode: topic, payload or out is NULL");
    memset(&d, 0, offsetof(struct dec, notes));
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

static struct hc__topic_part part_of(const char *topic, struct span sp)
{
    struct hc__topic_part part = {0, 0, false};

    if (sp.p) {
        part.off = (size_t)(sp.p - topic);
        part.n = sp.n;
        part.set = true;
    }
    return part;
}

static struct span span_of(const char *topic, struct hc__topic_part part)
{
    struct span sp = {NULL, 0};

    if (part.set) {
        sp.p = topic + part.off;
        sp.n = part.n;
    }
    return sp;
}

void hc__decode_topic(const char *topic, struct hc__decoded_topic *dt)
{
    struct dec d;

    memset(&d, 0, offsetof(struct dec, notes));
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
static void index_fields(const struct dec *d, struct hc_decode_index *idx)
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
static void restore_topic(struct dec *d, const char *topic, const struct hc__decoded_topic *dt)
{
    memset(d, 0, offsetof(struct dec, notes));
    d->nnotes = 0;
    d->format = (enum format)dt->format;
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
    struct dec d;

    memset(idx, 0, sizeof(*idx));
    restore_topic(&d, topic, dt);
    index_fields(&d, idx);
    idx->has_error = d.err_code != NULL;
}

void hc__decode_payload(const char *topic, const struct hc__decoded_topic *dt,
                        const unsigned char *payload, size_t payload_len,
                        struct hc__decoded_payload *out)
{
    struct dec d;

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

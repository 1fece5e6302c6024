/*
 * The decoder's Haltian IoT half (HALTIAN.md sections 2 to 4): the haltian-iot/events/... topic,
 * the measured_at/received_at timestamp, and the value shapes of each measurement type (value,
 * named fields, the position layouts, passthrough). The pass that calls it is in decode.c.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "decode_internal.h"
#include "hcore/timefmt.h"
#include "internal.h"
#include "measurements.h"

static const char *type_name(const struct hc__dec *d)
{
    return d->type_str ? d->type_str : "";
}

/* RFC 3339 string at key (measured_at or received_at) of root. */
static bool haltian_timestamp(struct hc__dec *d, cJSON *node, const char *key)
{
    hc_error perr = HC_ERROR_INIT;
    int64_t ns, ms;
    const char *s;
    size_t n, pos, frac = 0;

    if (!cJSON_IsString(node)) {
        hc__decode_fail(d, "invalid-timestamp", "%s is a %s, not an RFC 3339 string", key,
                        hc__decode_json_type(node));
        return false;
    }
    s = node->valuestring;
    n = strlen(s);
    if (hc_time_parse_rfc3339(s, n, &ns, &perr) != HC_OK) {
        hc__decode_fail(d, "invalid-timestamp", "%s: %s", key, perr.message);
        return false;
    }
    ms = ns / 1000000 - (ns % 1000000 < 0);
    hc__decode_set_timestamp(d, ms);
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
        hc__decode_note(d, "measured_at: taken from %s", key);
    if (s[10] != 'T')
        hc__decode_note(d, "measured_at: separator '%c' -> 'T'", s[10]);
    if (frac > 3)
        hc__decode_note(d, "measured_at: %zu fractional digits -> 3 (truncated)", frac);
    else if (frac != 3)
        hc__decode_note(d, "measured_at: %zu fractional digits -> 3", frac);
    if (strcmp(s + pos, "Z") != 0)
        hc__decode_note(d, "measured_at: zone '%s' -> Z (UTC)", s + pos);
    return true;
}

/* ---- Haltian value shapes ---- */

/* First member of root other than the timestamp, counting them. */
static cJSON *first_field(const struct hc__dec *d, const cJSON *root, int *count)
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
static bool want_bool(struct hc__dec *d, const cJSON *v, const char *what, bool *out)
{
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return true;
    }
    if (hc__decode_is_finite(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
        *out = v->valuedouble == 1;
        hc__decode_note(d, "value: %s %g -> %s", what, v->valuedouble, *out ? "true" : "false");
        return true;
    }
    hc__decode_fail(d, "value-type", "%s expects a boolean, got %s", what, hc__decode_json_type(v));
    return false;
}

/* magneticState from a value (bool, 0/1, {isOpen}, {isClosed}) or a named field. */
static void magnetic_value(struct hc__dec *d, cJSON *obj, const cJSON *v, const char *field)
{
    bool closed_polarity = (d->alias_flags & HC__ALIAS_CLOSED_POLARITY) != 0;
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
            hc__decode_fail(d, "value-type", "magneticState expects isOpen or isClosed");
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
        hc__decode_note(d, "polarity: %s %s (true = closed) -> value %s (true = open)", label,
                        b ? "true" : "false", b ? "false" : "true");
        b = !b;
    }
    hc__decode_put_bool(d, obj, "value", b);
}

/* directionalMovement: {entries, exits}; the old {in, out, net} form is mapped. */
static void movement_value(struct hc__dec *d, cJSON *obj, cJSON *v)
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
        hc__decode_note(d, "value: in/out%s -> entries/exits", net ? "/net" : "");
    } else {
        in = out = net = NULL;
    }
    if (!entries && !exits) {
        hc__decode_fail(d, "value-type", "directionalMovement expects entries and exits");
        return;
    }
    if ((entries && !hc__decode_want_number(d, entries, "entries")) ||
        (exits && !hc__decode_want_number(d, exits, "exits")))
        return;
    if (!d->out)
        return;
    val = hc__decode_new_object(d);
    if (!val)
        return;
    if (entries)
        hc__decode_put_moved(d, val, "entries", v, entries);
    if (exits)
        hc__decode_put_moved(d, val, "exits", v, exits);
    if (net)
        cJSON_Delete(cJSON_DetachItemViaPointer(v, net)); /* entries - exits, implied */
    hc__decode_move_children(val, v);
    hc__decode_put(d, obj, "value", val);
}

static void orientation_check(struct hc__dec *d, const cJSON *v)
{
    static const char *const axes[] = {"accx", "accy", "accz"};
    int found = 0;

    for (size_t i = 0; i < HC__ARRAY_LEN(axes); i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, axes[i]);

        if (a) {
            found++;
            if (!hc__decode_want_number(d, a, axes[i]))
                return;
        }
    }
    if (!found)
        hc__decode_fail(d, "value-type", "deviceOrientation expects accx, accy, accz");
}

/* Error for a value that should be an object; false when v is not one. */
static bool want_object(struct hc__dec *d, const cJSON *v, const char *name)
{
    if (cJSON_IsObject(v))
        return true;
    hc__decode_fail(d, "value-type", "%s expects an object, got %s", name, hc__decode_json_type(v));
    return false;
}

/* Removes a payload node whose content now lives in the output in another form. */
static void drop(struct hc__dec *d, cJSON *parent, cJSON *v)
{
    if (d->out)
        cJSON_Delete(cJSON_DetachItemViaPointer(parent, v));
}

/* Checks v against the type's value kind and puts the canonical "value". v is a child of
 * parent (the payload or a named-fields object built from it). */
static void typed_value(struct hc__dec *d, cJSON *obj, cJSON *parent, cJSON *v, const char *field)
{
    const struct hc__measurement *t = d->tdef;
    const char *name = t ? t->name : "";
    bool b;

    if (!t) {
        hc__decode_put_moved(d, obj, "value", parent, v);
        return;
    }
    switch (t->vkind) {
    case HC__VK_NUMBER:
    case HC__VK_INTEGER:
        if (!hc__decode_want_number(d, v, name))
            return;
        /* counts beyond 2^53 cannot be held exactly by any JSON consumer using doubles */
        if (t->vkind == HC__VK_INTEGER && fabs(v->valuedouble) > 9007199254740992.0) {
            hc__decode_fail(d, "number-out-of-range",
                            "%s value %.17g is beyond the exact integer range", name,
                            v->valuedouble);
            return;
        }
        if (d->alias_flags & HC__ALIAS_METRES) {
            hc__decode_note(d, "unit: %.*s m -> mm (x1000)", (int)d->type_received.n,
                            d->type_received.p);
            hc__decode_put_num(d, obj, "value", v->valuedouble * 1000.0);
            drop(d, parent, v);
            return;
        }
        break;
    case HC__VK_BOOL:
        if (!want_bool(d, v, field ? field : "value", &b))
            return;
        hc__decode_put_bool(d, obj, "value", b);
        drop(d, parent, v);
        return;
    case HC__VK_STRING:
        if (!cJSON_IsString(v)) {
            hc__decode_fail(d, "value-type", "%s expects a string, got %s", name,
                            hc__decode_json_type(v));
            return;
        }
        break;
    case HC__VK_ZONE:
        if (!cJSON_IsString(v) && !cJSON_IsObject(v)) {
            hc__decode_fail(d, "value-type", "%s expects a string or an object, got %s", name,
                            hc__decode_json_type(v));
            return;
        }
        break;
    case HC__VK_OBJECT:
        if (!want_object(d, v, name))
            return;
        break;
    case HC__VK_NUMBER_OR_OBJECT:
        if (cJSON_IsNumber(v) ? !hc__decode_want_number(d, v, name) : !cJSON_IsObject(v)) {
            if (!d->err_code)
                hc__decode_fail(d, "value-type", "%s expects a number or an object, got %s", name,
                                hc__decode_json_type(v));
            return;
        }
        break;
    case HC__VK_MOVEMENT:
        if (!want_object(d, v, name))
            return;
        movement_value(d, obj, v);
        drop(d, parent, v);
        return;
    case HC__VK_ORIENTATION:
        if (!want_object(d, v, name))
            return;
        orientation_check(d, v);
        if (d->err_code)
            return;
        break;
    case HC__VK_MAGNETIC:
        magnetic_value(d, obj, v, field);
        drop(d, parent, v);
        return;
    case HC__VK_POSITION:
        break; /* handled by position() */
    }
    hc__decode_put_moved(d, obj, "value", parent, v);
}

/* GeoJSON Point -> lon, lat (, alt). */
static bool geojson_point(struct hc__dec *d, const cJSON *g, double c[3], int *nc)
{
    const cJSON *coords = cJSON_GetObjectItemCaseSensitive(g, "coordinates");
    const cJSON *gtype = cJSON_GetObjectItemCaseSensitive(g, "type");
    int n;

    if (gtype && !(cJSON_IsString(gtype) && strcmp(gtype->valuestring, "Point") == 0)) {
        hc__decode_fail(d, "value-type", "position: only GeoJSON Point is supported");
        return false;
    }
    n = cJSON_GetArraySize(coords);
    if (!cJSON_IsArray(coords) || n < 2 || n > 3) {
        hc__decode_fail(d, "value-type",
                        "position: coordinates must be [lon, lat] or [lon, lat, alt]");
        return false;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(coords, i);

        if (!hc__decode_want_number(d, x, "position coordinate"))
            return false;
        c[i] = x->valuedouble;
    }
    *nc = n;
    return true;
}

static const char *const position_axes[] = {"x", "y", "z"};
static const char *const position_context[] = {"accuracy", "space_id", "floor", "building_id"};

/* The members of a position value that position() found and checked. */
struct position_parts {
    cJSON *local, *global, *coords; /* position_local, position_global, GeoJSON coordinates */
    cJSON *lsrc;                    /* where x, y, z are: position_local or src */
    double g[3];                    /* lon, lat, alt */
    int ng;                         /* how many of g */
};

/* Builds the canonical position object from checked parts, moving members out of src. */
static void put_position(struct hc__dec *d, cJSON *obj, cJSON *root, cJSON *src,
                         const struct position_parts *pp)
{
    cJSON *val = hc__decode_new_object(d);

    if (!val)
        return;
    for (size_t i = 0; i < HC__ARRAY_LEN(position_axes); i++) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(pp->lsrc, position_axes[i]);

        if (a)
            hc__decode_put_moved(d, val, position_axes[i], pp->lsrc, a);
    }
    if (pp->ng) {
        hc__decode_put_num(d, val, "lon", pp->g[0]);
        hc__decode_put_num(d, val, "lat", pp->g[1]);
        if (pp->ng == 3)
            hc__decode_put_num(d, val, "alt", pp->g[2]);
    }
    if (pp->local)
        cJSON_Delete(cJSON_DetachItemViaPointer(src, pp->local));
    if (pp->global)
        cJSON_Delete(cJSON_DetachItemViaPointer(src, pp->global));
    if (pp->coords) {
        cJSON *gt = cJSON_GetObjectItemCaseSensitive(src, "type");

        cJSON_Delete(cJSON_DetachItemViaPointer(src, pp->coords));
        if (gt)
            cJSON_Delete(cJSON_DetachItemViaPointer(src, gt));
    }
    for (size_t i = 0; i < HC__ARRAY_LEN(position_context); i++) {
        const char *key = position_context[i];
        cJSON *c = cJSON_GetObjectItemCaseSensitive(src, key);

        if (c) {
            hc__decode_put_moved(d, val, key, src, c);
        } else if (src != root && (c = cJSON_GetObjectItemCaseSensitive(root, key))) {
            hc__decode_note(d, "position: top-level %s -> value", key);
            hc__decode_put_moved(d, val, key, root, c);
        }
    }
    /* Named fields (src == root): the timestamp was moved out already; the rest is the position. */
    hc__decode_move_children(val, src);
    if (src != root)
        cJSON_Delete(cJSON_DetachItemViaPointer(root, src));
    hc__decode_put(d, obj, "value", val);
}

/*
 * The three position layouts (and positionLocal {x,y,z}) -> one object:
 * {x, y, z, lon, lat, alt, accuracy, space_id, floor, building_id, ...other members}.
 * src is the "value" object, or the payload itself for named fields.
 */
static void position(struct hc__dec *d, cJSON *obj, cJSON *root, cJSON *src)
{
    struct position_parts pp = {NULL, NULL, NULL, NULL, {0, 0, 0}, 0};
    int nlocal = 0;
    const char *shape = "position";
    const cJSON *acc;

    pp.local = cJSON_GetObjectItemCaseSensitive(src, "position_local");
    pp.global = cJSON_GetObjectItemCaseSensitive(src, "position_global");
    pp.coords = cJSON_GetObjectItemCaseSensitive(src, "coordinates");
    pp.lsrc = pp.local ? pp.local : src;
    if (pp.local && !cJSON_IsObject(pp.local)) {
        hc__decode_fail(d, "value-type", "position_local must be an object");
        return;
    }
    if (pp.global && !cJSON_IsObject(pp.global)) {
        hc__decode_fail(d, "value-type", "position_global must be a GeoJSON object");
        return;
    }
    if (pp.global && !geojson_point(d, pp.global, pp.g, &pp.ng))
        return;
    if (!pp.global && pp.coords) {
        if (!geojson_point(d, src, pp.g, &pp.ng))
            return;
        shape = "position-geojson";
    }
    for (size_t i = 0; i < HC__ARRAY_LEN(position_axes); i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(pp.lsrc, position_axes[i]);

        if (a) {
            if (!hc__decode_want_number(d, a, position_axes[i]))
                return;
            nlocal++;
        }
    }
    if (!nlocal && !pp.ng) {
        hc__decode_fail(d, "value-type",
                        "%s expects position_local/position_global, a GeoJSON Point or {x, y, z}",
                        type_name(d));
        return;
    }
    acc = cJSON_GetObjectItemCaseSensitive(src, "accuracy");
    if (!acc && src != root)
        acc = cJSON_GetObjectItemCaseSensitive(root, "accuracy");
    if (acc && !hc__decode_want_number(d, acc, "accuracy"))
        return;
    if (src == root)
        shape = "named-fields";
    hc__decode_put_ref(d, obj, "shape", shape);
    if (d->out)
        put_position(d, obj, root, src, &pp);
}

static const char *const scalar_fields[] = {"isOccupied", "isOpen", "isClosed"};

static void haltian_measurement(struct hc__dec *d, cJSON *obj, cJSON *root)
{
    cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    const struct hc__measurement *t = d->tdef;
    int nfields;
    cJSON *first;

    if (t && t->vkind == HC__VK_POSITION) {
        if (value && !want_object(d, value, t->name))
            return;
        position(d, obj, root, value ? value : root);
        return;
    }
    if (value) {
        hc__decode_put_ref(d, obj, "shape", "value");
        typed_value(d, obj, root, value, NULL);
        return;
    }
    first = first_field(d, root, &nfields);
    if (nfields == 0) {
        hc__decode_fail(d, "missing-value", "no value and no named fields");
        return;
    }
    hc__decode_put_ref(d, obj, "shape", "named-fields");
    if (!t || t->vkind == HC__VK_OBJECT || t->vkind == HC__VK_MOVEMENT ||
        t->vkind == HC__VK_ORIENTATION || (t->vkind == HC__VK_NUMBER_OR_OBJECT && nfields > 1)) {
        /* The named fields together are the value. */
        cJSON *val;

        if (t && t->vkind == HC__VK_ORIENTATION) {
            orientation_check(d, root);
            if (d->err_code)
                return;
        }
        if (t && t->vkind == HC__VK_MOVEMENT) {
            /* The fields, gathered in a scratch object, are read as a value would be. */
            if (!d->out) {
                movement_value(d, NULL, root);
                return;
            }
            val = hc__decode_new_object(d);
            if (!val)
                return;
            hc__decode_move_children(val, root);
            hc__decode_note(d, "fields -> value");
            movement_value(d, obj, val);
            cJSON_Delete(val);
            return;
        }
        hc__decode_note(d, "fields -> value");
        if (!d->out)
            return;
        val = hc__decode_new_object(d);
        if (!val)
            return;
        hc__decode_move_children(val, root);
        hc__decode_put(d, obj, "value", val);
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
        hc__decode_fail(d, "missing-value", "no value and %d named fields for %s", nfields,
                        t->name);
        return;
    }
    hc__decode_note(d, "field %s -> value", first->string);
    typed_value(d, obj, root, first, first->string);
}

/* Binary passthrough: value {mqtt_topic, payload (base64)} kept exactly as received. */
static void haltian_passthrough(struct hc__dec *d, cJSON *obj, cJSON *root)
{
    cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    int nfields;

    if (value) {
        bool pt = cJSON_IsObject(value) &&
                  cJSON_IsString(cJSON_GetObjectItemCaseSensitive(value, "mqtt_topic")) &&
                  cJSON_IsString(cJSON_GetObjectItemCaseSensitive(value, "payload"));

        hc__decode_put_ref(d, obj, "shape", pt ? "passthrough" : "value");
        hc__decode_put_moved(d, obj, "value", root, value);
        return;
    }
    first_field(d, root, &nfields);
    if (nfields == 0) {
        hc__decode_fail(d, "missing-value", "no value and no named fields");
        return;
    }
    hc__decode_put_ref(d, obj, "shape", "named-fields");
    if (d->out) {
        cJSON *val = hc__decode_new_object(d);

        if (val) {
            hc__decode_move_children(val, root);
            hc__decode_put(d, obj, "value", val);
        }
    }
}

/* messages, notifications, unknown kinds: the value, or all fields, as received. */
static void haltian_generic(struct hc__dec *d, cJSON *obj, cJSON *root)
{
    cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    int nfields;

    if (value) {
        hc__decode_put_ref(d, obj, "shape", "value");
        hc__decode_put_moved(d, obj, "value", root, value);
        return;
    }
    first_field(d, root, &nfields);
    hc__decode_put_ref(d, obj, "shape", nfields ? "named-fields" : "empty");
    if (nfields && d->out) {
        cJSON *val = hc__decode_new_object(d);

        if (val) {
            hc__decode_move_children(val, root);
            hc__decode_put(d, obj, "value", val);
        }
    }
}

void hc__decode_haltian_payload(struct hc__dec *d, cJSON *obj, cJSON *root)
{
    bool passthrough = hc__decode_span_is(d->kind, "payloads");
    bool needs_ts = passthrough || hc__decode_span_is(d->kind, "measurements");
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
            hc__decode_fail(d, "missing-timestamp", "payload has no measured_at%s",
                            passthrough ? " or received_at" : "");
            return;
        }
        hc__decode_note(d, "no timestamp in payload");
    } else {
        if (!haltian_timestamp(d, ts, key))
            return;
        hc__decode_put_timestamp(d, obj, d->ts_ms);
        hc__decode_put_moved(d, obj, "measured_at_received", root, ts);
        hc__decode_put_num(d, obj, "measured_at_ms", (double)d->ts_ms);
        hc__decode_put_ref(d, obj, "measured_at_source", key);
    }
    if (hc__decode_span_is(d->kind, "measurements"))
        haltian_measurement(d, obj, root);
    else if (passthrough)
        haltian_passthrough(d, obj, root);
    else
        haltian_generic(d, obj, root);
    if (d->err_code || !obj)
        return;
    if (d->tdef && d->tdef->unit)
        hc__decode_put_ref(d, obj, "unit", d->tdef->unit);
    if (root->child) {
        cJSON *extra = hc__decode_new_object(d);

        if (extra) {
            hc__decode_move_children(extra, root);
            hc__decode_put(d, obj, "extra", extra);
        }
    }
}

/* ---- topic ---- */

static const char *const known_kinds[] = {"measurements", "messages", "notifications", "payloads"};

static void put_kind(struct hc__dec *d, cJSON *obj)
{
    for (size_t i = 0; i < HC__ARRAY_LEN(known_kinds); i++)
        if (hc__decode_span_is(d->kind, known_kinds[i])) {
            hc__decode_put_ref(d, obj, "kind", known_kinds[i]);
            return;
        }
    hc__decode_put_span(d, obj, "kind", d->kind);
}

void hc__decode_haltian_topic(struct hc__dec *d, cJSON *obj)
{
    static const char *const keys[] = {NULL, NULL, "integration_id", "api_key_id",
                                       NULL, NULL, "device_id"};
    int n = d->nlv;

    d->format = HC__FMT_HALTIAN;
    if (!hc__decode_span_is(d->lv[1], "events")) {
        hc__decode_put_ref(d, obj, "format", "haltian");
        if (obj)
            hc__decode_put(d, obj, "topic", cJSON_CreateString(d->lv[0].p));
        hc__decode_fail(d, "not-event-topic", "expected haltian-iot/events/..., got level 2 '%.*s'",
                        (int)d->lv[1].n, d->lv[1].p);
        return;
    }
    if (n > 4)
        d->kind = d->lv[4];
    if (n > 5)
        d->type_received = d->lv[5];
    if (n > 6 && n <= 7)
        d->device = d->lv[6];
    if (d->type_received.p && hc__decode_span_is(d->kind, "measurements")) {
        d->tdef = hc__measurement_lookup(d->type_received.p, d->type_received.n, &d->alias_flags);
        d->type_str = d->tdef ? d->tdef->name : NULL;
    }
    hc__decode_put_ref(d, obj, "format", "haltian");
    if (d->kind.p)
        put_kind(d, obj);
    if (d->type_received.p) {
        if (d->type_str)
            hc__decode_put_ref(d, obj, "type", d->type_str);
        else
            hc__decode_put_span(d, obj, "type", d->type_received);
        /* The usual case, received == canonical, needs no copy. */
        if (d->type_str && hc__decode_span_is(d->type_received, d->type_str))
            hc__decode_put_ref(d, obj, "type_received", d->type_str);
        else
            hc__decode_put_span(d, obj, "type_received", d->type_received);
    }
    for (int i = 2; i < 4 && i < n; i++)
        hc__decode_put_span(d, obj, keys[i], d->lv[i]);
    if (d->device.p)
        hc__decode_put_span(d, obj, "device_id", d->device);

    for (int i = 0; i < n && i < DECODE_MAX_LEVELS; i++)
        if (d->lv[i].n == 0) {
            hc__decode_fail(d, "topic-empty-level", "topic level %d is empty", i + 1);
            return;
        }
    if (n < 6) {
        hc__decode_fail(d, "topic-too-short",
                        "haltian topic has %d levels, expected 7 (6 for notifications)", n);
        return;
    }
    if (n > 7) {
        hc__decode_fail(d, "topic-too-long", "haltian topic has %d levels, expected 7", n);
        return;
    }
    if (n == 6 && !hc__decode_span_is(d->kind, "notifications")) {
        hc__decode_fail(d, "topic-too-short", "no device id level after '%.*s'",
                        (int)d->type_received.n, d->type_received.p);
        return;
    }
    if (!hc__decode_span_is(d->kind, "measurements") && !hc__decode_span_is(d->kind, "messages") &&
        !hc__decode_span_is(d->kind, "notifications") && !hc__decode_span_is(d->kind, "payloads"))
        hc__decode_note(d, "kind: '%.*s' is not a documented event kind", (int)d->kind.n,
                        d->kind.p);
    else if (hc__decode_span_is(d->kind, "measurements") && !d->tdef)
        hc__decode_note(d, "type: '%.*s' unknown, passed through without unit",
                        (int)d->type_received.n, d->type_received.p);
    else if (d->tdef && !hc__decode_span_is(d->type_received, d->tdef->name))
        hc__decode_note(d, "type: %.*s -> %s", (int)d->type_received.n, d->type_received.p,
                        d->tdef->name);
}

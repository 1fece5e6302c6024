/*
 * The decoder's legacy Thingsee half (HALTIAN.md section 5): the cloudext/json/... topic and
 * the tsm* payloads, one object or an array of them, mapped field by field to canonical types
 * (measurements.def). The pass that calls it is in decode.c.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "decode_internal.h"
#include "internal.h"
#include "measurements.h"

static const char *const thingsee_header[] = {"tsmId",   "tsmEv", "tsmTs",
                                              "tsmTuid", "tsmGw", "deploymentGroupId"};

static const struct hc__thingsee_field *thingsee_field(const char *name, int tsm_id)
{
    for (size_t i = 0; i < HC__ARRAY_LEN(hc__thingsee_fields); i++) {
        const struct hc__thingsee_field *f = &hc__thingsee_fields[i];

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

static int64_t thingsee_ms(double secs)
{
    return (int64_t)llround(secs * 1000.0);
}

/* Validates one record; sets the message type and timestamp from record 0. */
static bool thingsee_check(struct hc__dec *d, const cJSON *rec, int i)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(rec, "tsmTs");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "tsmId");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(rec, "tsmEv");
    int tsm_id = 0;

    if (!cJSON_IsObject(rec)) {
        hc__decode_fail(d, "not-object", "record %d is a %s, not an object", i,
                        hc__decode_json_type(rec));
        return false;
    }
    if (!ts) {
        hc__decode_fail(d, "missing-timestamp", "record %d has no tsmTs", i);
        return false;
    }
    /* Epoch seconds must stay within int64 ns (years 1678-2261). */
    if (!hc__decode_is_finite(ts) || fabs(ts->valuedouble) > 9.2e9) {
        hc__decode_fail(d, "invalid-timestamp", "record %d: tsmTs must be epoch seconds, got %s", i,
                        cJSON_IsNumber(ts) ? "an out-of-range number" : hc__decode_json_type(ts));
        return false;
    }
    if (id && !hc__decode_want_number(d, id, "tsmId"))
        return false;
    if (ev && !hc__decode_want_number(d, ev, "tsmEv"))
        return false;
    if (id && fabs(id->valuedouble) < 1e9)
        tsm_id = (int)id->valuedouble;
    if (i == 0)
        hc__decode_set_timestamp(d, thingsee_ms(ts->valuedouble));
    for (const cJSON *c = rec->child; c; c = c->next) {
        const struct hc__thingsee_field *f;

        if (thingsee_is_header(c->string))
            continue;
        f = thingsee_field(c->string, tsm_id);
        if (f && !hc__decode_want_number(d, c, c->string))
            return false;
        if (i == 0 && !d->type_str) {
            d->type_str = f ? hc__measurements[f->type].name : NULL;
            d->type_received.p = c->string;
            d->type_received.n = strlen(c->string);
            if (!f)
                d->type_str = c->string; /* unmapped: passed through under its own name */
        }
    }
    return true;
}

static double thingsee_convert(const struct hc__thingsee_field *f, double v)
{
    switch (f->conv) {
    case HC__TC_DIV100:
        return v / 100.0;
    case HC__TC_DIV1000:
        return v / 1000.0;
    default:
        return v;
    }
}

static void thingsee_conv_note(struct hc__dec *d, const struct hc__thingsee_field *f)
{
    switch (f->conv) {
    case HC__TC_DIV100:
        hc__decode_note(d, "unit: %s Pa -> hPa (/100)", f->field);
        break;
    case HC__TC_DIV1000:
        hc__decode_note(d, "unit: accx/accy/accz mG -> g (/1000)");
        break;
    case HC__TC_BOOL:
        hc__decode_note(d, "value: %s 0/1 -> false/true", f->field);
        break;
    case HC__TC_BOOL_OPEN0:
        hc__decode_note(d, "polarity: %s 0 = open, 1 = closed -> magneticState true = open",
                        f->field);
        break;
    case HC__TC_NONE:
        break;
    }
}

static void thingsee_record(struct hc__dec *d, cJSON *list, cJSON *rec, int idx)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(rec, "tsmTs");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "tsmId");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(rec, "tsmEv");
    int64_t ms = thingsee_ms(ts->valuedouble);
    int tsm_id = id && fabs(id->valuedouble) < 1e9 ? (int)id->valuedouble : 0;
    bool done[HC__ARRAY_LEN(hc__thingsee_fields)] = {false};

    for (cJSON *c = rec->child; c; c = c->next) {
        const struct hc__thingsee_field *f;
        cJSON *m, *v = NULL, *vr = NULL;
        const char *unit = NULL, *unit_received = NULL;
        char field[64] = "";

        if (thingsee_is_header(c->string))
            continue;
        f = thingsee_field(c->string, tsm_id);
        if (f && done[f - hc__thingsee_fields])
            continue;
        m = hc__decode_new_object(d);
        if (!m)
            return;
        if (!f) {
            hc__decode_note(d, "thingsee: field %s not mapped, kept as received", c->string);
            hc__decode_put(d, m, "type", cJSON_CreateString(c->string));
            hc__decode_put(d, m, "field", cJSON_CreateString(c->string));
            hc__decode_put(d, m, "value", cJSON_Duplicate(c, 1));
        } else {
            unit = hc__measurements[f->type].unit;
            if (f->conv == HC__TC_DIV100)
                unit_received = "Pa";
            else if (f->conv == HC__TC_DIV1000)
                unit_received = "mG";
            thingsee_conv_note(d, f);
            if (f->member) {
                /* Gather every member of this group (accx/accy/accz, in/out, ...). */
                v = cJSON_CreateObject();
                vr = f->conv != HC__TC_NONE ? cJSON_CreateObject() : NULL;
                if (!v || (f->conv != HC__TC_NONE && !vr))
                    d->nomem = true;
                for (size_t k = 0; k < HC__ARRAY_LEN(hc__thingsee_fields); k++) {
                    const struct hc__thingsee_field *g = &hc__thingsee_fields[k];
                    const cJSON *gv;

                    if (g->type != f->type || !g->member)
                        continue;
                    gv = cJSON_GetObjectItemCaseSensitive(rec, g->field);
                    if (!gv)
                        continue;
                    done[k] = true;
                    if (field[0])
                        strncat(field, ",", sizeof(field) - strlen(field) - 1);
                    strncat(field, g->field, sizeof(field) - strlen(field) - 1);
                    if (v)
                        hc__decode_put_num(d, v, g->member, thingsee_convert(g, gv->valuedouble));
                    if (vr)
                        hc__decode_put_num(d, vr, g->field, gv->valuedouble);
                }
            } else {
                done[f - hc__thingsee_fields] = true;
                snprintf(field, sizeof(field), "%s", f->field);
                if (f->conv == HC__TC_BOOL || f->conv == HC__TC_BOOL_OPEN0) {
                    bool b = c->valuedouble != 0;

                    v = cJSON_CreateBool(f->conv == HC__TC_BOOL ? b : !b);
                    vr = cJSON_CreateNumber(c->valuedouble);
                } else {
                    v = cJSON_CreateNumber(thingsee_convert(f, c->valuedouble));
                    if (f->conv != HC__TC_NONE)
                        vr = cJSON_CreateNumber(c->valuedouble);
                }
            }
            hc__decode_put_ref(d, m, "type", hc__measurements[f->type].name);
            hc__decode_put(d, m, "field", cJSON_CreateString(field));
            hc__decode_put(d, m, "value", v);
            if (unit)
                hc__decode_put_ref(d, m, "unit", unit);
            if (vr)
                hc__decode_put(d, m, "value_received", vr);
            if (unit_received)
                hc__decode_put_ref(d, m, "unit_received", unit_received);
        }
        hc__decode_put_timestamp(d, m, ms);
        hc__decode_put_num(d, m, "measured_at_ms", (double)ms);
        hc__decode_put_num(d, m, "record", idx);
        if (id)
            hc__decode_put(d, m, "tsm_id", cJSON_Duplicate(id, 0));
        if (ev)
            hc__decode_put(d, m, "tsm_ev", cJSON_Duplicate(ev, 0));
        if (!cJSON_AddItemToArray(list, m)) {
            cJSON_Delete(m);
            d->nomem = true;
        }
    }
}

void hc__decode_thingsee_payload(struct hc__dec *d, cJSON *obj, cJSON *root)
{
    bool array = cJSON_IsArray(root);
    int n = array ? cJSON_GetArraySize(root) : 1;
    cJSON *first = array ? root->child : root;
    cJSON *list;
    int i = 0;

    if (!array && !cJSON_IsObject(root)) {
        hc__decode_fail(d, "not-object", "payload is a %s, expected a Thingsee object or array",
                        hc__decode_json_type(root));
        return;
    }
    if (n == 0) {
        hc__decode_fail(d, "empty-array", "payload is an empty array");
        return;
    }
    for (cJSON *r = first; r; r = array ? r->next : NULL, i++)
        if (!thingsee_check(d, r, i))
            break;
    /* Type and time of record 0 are known even when a later record is bad (the index has them). */
    if (d->type_str && obj) {
        if (d->type_str == d->type_received.p)
            hc__decode_put_span(d, obj, "type", d->type_received);
        else
            hc__decode_put_ref(d, obj, "type", d->type_str);
        hc__decode_put_span(d, obj, "type_received", d->type_received);
    }
    if (d->err_code) {
        if (d->has_ts) {
            hc__decode_put_timestamp(d, obj, d->ts_ms);
            hc__decode_put_num(d, obj, "measured_at_ms", (double)d->ts_ms);
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
                hc__decode_put(d, obj, hdr[k].out, cJSON_Duplicate(h, 1));
        }
    }
    hc__decode_put_timestamp(d, obj, d->ts_ms);
    hc__decode_put(d, obj, "measured_at_received",
                   cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(first, "tsmTs"), 0));
    hc__decode_put_num(d, obj, "measured_at_ms", (double)d->ts_ms);
    hc__decode_put_ref(d, obj, "measured_at_source", "tsmTs");
    hc__decode_note(d, "measured_at: tsmTs epoch seconds -> RFC 3339 UTC");
    hc__decode_put_ref(d, obj, "shape", array ? "thingsee-array" : "thingsee-object");
    hc__decode_put_num(d, obj, "records", n);
    list = cJSON_CreateArray();
    if (!list) {
        d->nomem = true;
        return;
    }
    i = 0;
    for (cJSON *r = first; r; r = array ? r->next : NULL, i++)
        thingsee_record(d, list, r, i);
    hc__decode_put(d, obj, "measurements", list);
}

void hc__decode_thingsee_topic(struct hc__dec *d, cJSON *obj)
{
    static const char *const keys[] = {NULL, NULL, "env", "country", "group_id", NULL, NULL};
    int n = d->nlv;

    d->format = HC__FMT_THINGSEE;
    d->kind_str = "thingsee";
    hc__decode_put_ref(d, obj, "format", "thingsee");
    hc__decode_put_ref(d, obj, "kind", "thingsee");
    if (n == 7)
        d->device = d->lv[5];
    if (d->device.p)
        hc__decode_put_span(d, obj, "device_id", d->device);
    for (int i = 2; i < 5 && i < n && i < DECODE_MAX_LEVELS; i++)
        hc__decode_put_span(d, obj, keys[i], d->lv[i]);
    if (n < 7)
        hc__decode_fail(
            d, "topic-too-short",
            "thingsee topic has %d levels, expected cloudext/json/env/country/group/tuid/tsmId", n);
    else if (n > 7)
        hc__decode_fail(d, "topic-too-long", "thingsee topic has %d levels, expected 7", n);
}

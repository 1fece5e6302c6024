/*
 * The generator's messages on the wire: Haltian IoT topics and payloads in the shapes --shapes
 * selects, and legacy Thingsee ones, written by hand into the generator's reused buffers (no
 * allocation, no printf, no cJSON: the same values give the same bytes on every C library).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gen_internal.h"
#include "internal.h"
#include "measurements.h"

/* ---- formatting --------------------------------------------------------------------------- */

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

static char *put_uint(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_int(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_uint(p, (uint64_t)(-(v + 1)) + 1);
    }
    return put_uint(p, (uint64_t)v);
}

/* v with exactly dec decimals (0-6), rounded half away from zero; never "-0.0". */
static char *put_fixed(char *p, double v, int dec)
{
    static const int64_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    int64_t n = hc__gen_round(v * (double)pow10[dec]);
    int64_t ip, fp;
    int i;

    if (n < 0) {
        *p++ = '-';
        n = -n;
    }
    ip = n / pow10[dec];
    fp = n % pow10[dec];
    p = put_uint(p, (uint64_t)ip);
    if (dec > 0) {
        *p++ = '.';
        for (i = dec - 1; i >= 0; i--) {
            p[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        p += dec;
    }
    return p;
}

static char *put_2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t era, yoe, doy, mp, yy;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    yoe = z - era * 146097;
    yy = (yoe - yoe / 1460 + yoe / 36524 - yoe / 146096) / 365;
    doy = yoe - (365 * yy + yy / 4 - yy / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + era * 400 + (*m <= 2));
}

static char *put_time(hc_gen *g, char *p, int64_t ms, int style)
{
    int64_t days = ms / 86400000, in_day = ms % 86400000;
    int s = (int)(in_day / 1000), frac = (int)(in_day % 1000);

    if (days != g->day_cached) {
        int y, m, d;
        civil_from_days(days, &y, &m, &d);
        put_2(put_2(g->day_text, y / 100), y % 100);
        g->day_text[4] = '-';
        put_2(g->day_text + 5, m);
        g->day_text[7] = '-';
        put_2(g->day_text + 8, d);
        g->day_text[10] = 'T';
        g->day_cached = days;
    }
    memcpy(p, g->day_text, 11);
    p += 11;
    p = put_2(p, s / 3600);
    *p++ = ':';
    p = put_2(p, s / 60 % 60);
    *p++ = ':';
    p = put_2(p, s % 60);
    if (style != 2) {
        *p++ = '.';
        *p++ = (char)('0' + frac / 100);
        p = put_2(p, frac % 100);
    }
    if (style == 1)
        return PUT_LIT(p, "000+00:00");
    *p++ = 'Z';
    return p;
}

static char *put_measured_at(hc_gen *g, char *p, const struct device *d, int64_t ms)
{
    p = PUT_LIT(p, "\"measured_at\":\"");
    p = put_time(g, p, ms, d->ts_style);
    *p++ = '"';
    return p;
}

static char *put_bool(char *p, bool b)
{
    return b ? PUT_LIT(p, "true") : PUT_LIT(p, "false");
}

static void lon_lat(const struct device *d, double *lon, double *lat)
{
    /* A building in Helsinki; metres to degrees at 60.17 N. */
    *lon = 24.9384 + d->x / (111320.0 * 0.49815);
    *lat = 60.1699 + d->y / 111320.0;
}

/* A member of an object of numbers: its key and decimals. */
struct number_member {
    const char *key;
    int decimals;
};

static const struct number_member movement[] = {{"entries", 0}, {"exits", 0}};
static const struct number_member old_movement[] = {{"in", 0}, {"out", 0}, {"net", 0}};
static const struct number_member vibration[] = {{"level", 3}, {"total", 2}};
static const struct number_member orientation[] = {{"accx", 3}, {"accy", 3}, {"accz", 3}};

/* {"key0":values[0],...} */
static char *put_numbers(char *p, const struct number_member *m, const double *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *p++ = i ? ',' : '{';
        *p++ = '"';
        p = put_str(p, m[i].key);
        *p++ = '"';
        *p++ = ':';
        p = put_fixed(p, values[i], m[i].decimals);
    }
    *p++ = '}';
    return p;
}

/* The JSON value of a Haltian IoT message (canonical "value" member content). */
static char *put_value(hc_gen *g, char *p, const struct device *d, enum hc__mtype t)
{
    const struct gval *v = &g->val;
    double lon, lat;

    if (t == HC__M_DIST && d->kind == HC_GEN_RADAR && d->alias_style)
        return put_fixed(p, v->v[0] / 1000.0, 3); /* radar_distance is in metres */
    if (hc__gen_models[t].decimals >= 0)
        return put_fixed(p, v->v[0], hc__gen_models[t].decimals);
    if (hc__measurements[t].vkind == HC__VK_BOOL || hc__measurements[t].vkind == HC__VK_MAGNETIC)
        return put_bool(p, v->b);
    switch (t) {
    case HC__M_DIRMOVE:
        if (d->alias_style) { /* the old {in, out, net} form */
            double old[3] = {v->v[0], v->v[1],
                             (double)(hc__gen_round(v->v[0]) - hc__gen_round(v->v[1]))};
            return put_numbers(p, old_movement, old, HC__ARRAY_LEN(old_movement));
        }
        return put_numbers(p, movement, v->v, HC__ARRAY_LEN(movement));
    case HC__M_VIB:
        return put_numbers(p, vibration, v->v, HC__ARRAY_LEN(vibration));
    case HC__M_ORIENT:
        return put_numbers(p, orientation, v->v, HC__ARRAY_LEN(orientation));
    case HC__M_POS:
        lon_lat(d, &lon, &lat);
        if (d->pos_style == 3) {
            p = PUT_LIT(p, "{\"x\":");
            p = put_fixed(p, d->x, 2);
            p = PUT_LIT(p, ",\"y\":");
            p = put_fixed(p, d->y, 2);
            return PUT_LIT(p, ",\"z\":0.0}");
        }
        if (d->pos_style == 1) {
            p = PUT_LIT(p, "{\"type\":\"Point\",\"coordinates\":[");
            p = put_fixed(p, lon, 6);
            *p++ = ',';
            p = put_fixed(p, lat, 6);
            return PUT_LIT(p, "]}");
        }
        p = PUT_LIT(p, "{\"position_local\":{\"x\":");
        p = put_fixed(p, d->x, 2);
        p = PUT_LIT(p, ",\"y\":");
        p = put_fixed(p, d->y, 2);
        p = PUT_LIT(p, ",\"z\":0.0},\"position_global\":{\"type\":\"Point\",\"coordinates\":[");
        p = put_fixed(p, lon, 6);
        *p++ = ',';
        p = put_fixed(p, lat, 6);
        p = PUT_LIT(p, "]},\"accuracy\":");
        p = put_fixed(p, v->v[0], 1);
        p = PUT_LIT(p, ",\"space_id\":\"");
        p = put_str(p, g->space_id);
        *p++ = '"';
        if (d->pos_style == 2) {
            p = PUT_LIT(p, ",\"floor\":");
            p = put_uint(p, d->floor);
            p = PUT_LIT(p, ",\"building_id\":\"");
            p = put_str(p, g->building_id);
            *p++ = '"';
        }
        *p++ = '}';
        return p;
    case HC__M_ZONE:
        *p++ = '"';
        p = put_str(p, g->zone_ids[d->zone & 3]);
        *p++ = '"';
        return p;
    case HC__M_RSS:
        p = PUT_LIT(p, "{\"rss\":");
        p = put_int(p, hc__gen_round(v->v[0]));
        p = PUT_LIT(p, ",\"isStatic\":");
        p = put_bool(p, !d->moving);
        p = PUT_LIT(p, ",\"mode\":\"asset\",\"moveCount\":");
        p = put_uint(p, d->move_count);
        p = PUT_LIT(p, ",\"sourceDeviceId\":\"");
        p = put_str(p, g->gateway_uuid);
        return PUT_LIT(p, "\"}");
    default:
        break;
    }
    return p;
}

static const char *topic_type(const struct device *d, enum hc__mtype t)
{
    if (t == HC__M_POS && d->pos_style == 3)
        return "positionLocal";
    if (!d->alias_style || (t == HC__M_DIST && d->kind != HC_GEN_RADAR))
        return hc__measurements[t].name;
    return hc__gen_models[t].mixed_spelling;
}

size_t hc__gen_format_haltian(hc_gen *g, const struct device *d, enum hc__mtype t, int64_t ms)
{
    char *p = g->topic;
    const char *type = topic_type(d, t);

    memcpy(p, g->prefix, g->prefix_len);
    p = put_str(p + g->prefix_len, type);
    *p++ = '/';
    p = put_str(p, d->id);
    *p = '\0';

    p = g->payload;
    *p++ = '{';
    if (d->named_style &&
        (t == HC__M_OCC || t == HC__M_MAG || t == HC__M_DIRMOVE || t == HC__M_ORIENT)) {
        /* named fields: documented for these types only */
        p = put_measured_at(g, p, d, ms);
        if (t == HC__M_OCC) {
            p = PUT_LIT(p, ",\"isOccupied\":");
            p = put_bool(p, g->val.b);
        } else if (t == HC__M_MAG) {
            if (d->alias_style) { /* magnetoSwitchStatus: opposite polarity */
                p = PUT_LIT(p, ",\"isClosed\":");
                p = put_bool(p, !g->val.b);
            } else {
                p = PUT_LIT(p, ",\"isOpen\":");
                p = put_bool(p, g->val.b);
            }
        } else {
            char inner[256];
            char *q = put_value(g, inner, d, t);
            *p++ = ',';
            /* strip the braces of the object value */
            memcpy(p, inner + 1, (size_t)(q - inner - 2));
            p += q - inner - 2;
        }
    } else if (t == HC__M_POS && d->pos_style == 1) {
        /* the GeoJSON layout puts value first and space_id beside it */
        p = PUT_LIT(p, "\"value\":");
        p = put_value(g, p, d, t);
        *p++ = ',';
        p = put_measured_at(g, p, d, ms);
        p = PUT_LIT(p, ",\"space_id\":\"");
        p = put_str(p, g->space_id);
        *p++ = '"';
    } else {
        p = put_measured_at(g, p, d, ms);
        p = PUT_LIT(p, ",\"value\":");
        if (t == HC__M_MAG && d->alias_style) {
            p = put_bool(p, !g->val.b);
        } else {
            p = put_value(g, p, d, t);
        }
    }
    *p++ = '}';
    *p = '\0';
    return (size_t)(p - g->payload);
}

/* The legacy Thingsee fields of type t (measurements.def), from the sampled value(s) v. */
static char *put_thingsee_fields(char *p, const struct gval *v, enum hc__mtype t)
{
    int slot = 0; /* a type's fields carry v[0], v[1], ... in table order */

    for (size_t i = 0; i < HC__THINGSEE_FIELD_COUNT; i++) {
        const struct hc__thingsee_field *f = &hc__thingsee_fields[i];
        double x;

        if (f->type != t)
            continue;
        x = v->v[slot++];
        *p++ = ',';
        *p++ = '"';
        p = put_str(p, f->field);
        *p++ = '"';
        *p++ = ':';
        switch (f->conv) {
        case HC__TC_BOOL:
            *p++ = v->b ? '1' : '0';
            break;
        case HC__TC_BOOL_OPEN0: /* hall: 0 open, 1 closed */
            *p++ = v->b ? '0' : '1';
            break;
        case HC__TC_DIV100: /* hPa -> Pa */
            p = put_fixed(p, x * 100.0, f->decimals);
            break;
        case HC__TC_DIV1000: /* g -> mG */
            p = put_fixed(p, x * 1000.0, f->decimals);
            break;
        case HC__TC_NONE:
            p = put_fixed(p, x, f->decimals);
            break;
        }
    }
    return p;
}

size_t hc__gen_format_thingsee(hc_gen *g, const struct device *d, enum hc__mtype t, int64_t ms)
{
    const struct gval *v = &g->val;
    int tsm = hc__measurements[t].tsm_id;
    char *p = g->topic;

    if (t == HC__M_DIST && d->kind == HC_GEN_RADAR)
        tsm = 17200;
    p = PUT_LIT(p, "cloudext/json/pr/fi/prfi00hkitgen/");
    p = put_str(p, d->id);
    *p++ = '/';
    p = put_uint(p, (uint64_t)tsm);
    *p = '\0';

    p = g->payload;
    p = PUT_LIT(p, "{\"tsmId\":");
    p = put_uint(p, (uint64_t)tsm);
    p = PUT_LIT(p, ",\"tsmEv\":");
    p = put_uint(p, (uint64_t)v->tsm_ev);
    p = put_thingsee_fields(p, v, t);
    if (t == HC__M_DIRMOVE) {
        p = PUT_LIT(p, ",\"totalIn\":");
        p = put_uint(p, d->total_in);
        p = PUT_LIT(p, ",\"totalOut\":");
        p = put_uint(p, d->total_out);
    }
    if (hc__gen_models[t].thingsee_extra) {
        *p++ = ',';
        p = put_str(p, hc__gen_models[t].thingsee_extra);
    }
    p = PUT_LIT(p, ",\"tsmTs\":");
    p = put_uint(p, (uint64_t)(ms / 1000));
    *p++ = '.';
    *p++ = (char)('0' + ms % 1000 / 100);
    p = put_2(p, (int)(ms % 100));
    p = PUT_LIT(p, ",\"tsmTuid\":\"");
    p = put_str(p, d->id);
    p = PUT_LIT(p, "\",\"tsmGw\":\"");
    p = put_str(p, g->gateway_tuid);
    p = PUT_LIT(p, "\",\"deploymentGroupId\":\"prfi00hkitgen\"}");
    *p = '\0';
    return (size_t)(p - g->payload);
}

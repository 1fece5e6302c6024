/*
 * Tests of the traffic generator: determinism (same seed, same bytes; another seed, other
 * bytes), every value inside its type's documented range (HALTIAN.md section 4, written out
 * again here rather than taken from the generator), cadences, time order, legacy Thingsee
 * units, and that every shape the generator emits decodes without an error.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hcore/decode.h"
#include "hcore/gen.h"
#include "hcore/timefmt.h"

#define DAY_NS (86400LL * 1000000000LL)
#define HOUR_MS 3600000LL

static hc_gen *make_gen(uint64_t seed, int64_t duration_ns, enum hc_gen_shapes shapes,
                        bool thingsee)
{
    struct hc_gen_options o;
    hc_gen *g = NULL;
    hc_error err = HC_ERROR_INIT;

    hc_gen_options_init(&o);
    o.seed = seed;
    o.duration_ns = duration_ns;
    o.shapes = shapes;
    o.thingsee = thingsee;
    cr_assert_eq(hc_gen_new(&o, &g, &err), HC_OK, "%s", err.message);
    return g;
}

/* FNV-1a over every message's times, topic and payload. */
static uint64_t hash_run(hc_gen *g, int64_t *count)
{
    struct hc_gen_msg m;
    uint64_t h = 1469598103934665603ULL;
    *count = 0;
    while (hc_gen_next(g, &m) == HC_OK) {
        const unsigned char *parts[3] = {(const unsigned char *)m.topic,
                                         (const unsigned char *)m.payload,
                                         (const unsigned char *)&m.received_at_ns};
        size_t lens[3] = {strlen(m.topic), m.payload_len, sizeof(m.received_at_ns)};
        for (int p = 0; p < 3; p++)
            for (size_t i = 0; i < lens[p]; i++)
                h = (h ^ parts[p][i]) * 1099511628211ULL;
        (*count)++;
    }
    return h;
}

Test(gen, same_seed_and_options_give_the_same_message_sequence)
{
    int64_t n1, n2;
    hc_gen *a = make_gen(42, DAY_NS, HC_GEN_SHAPES_MIXED, false);
    hc_gen *b = make_gen(42, DAY_NS, HC_GEN_SHAPES_MIXED, false);
    uint64_t h1 = hash_run(a, &n1), h2 = hash_run(b, &n2);
    cr_assert_gt(n1, 10000);
    cr_assert_eq(n1, n2);
    cr_assert_eq(h1, h2);
    hc_gen_free(a);
    hc_gen_free(b);
}

Test(gen, different_seeds_give_different_traffic)
{
    int64_t n1, n2;
    hc_gen *a = make_gen(1, DAY_NS, HC_GEN_SHAPES_CANONICAL, false);
    hc_gen *b = make_gen(2, DAY_NS, HC_GEN_SHAPES_CANONICAL, false);
    cr_assert_neq(hash_run(a, &n1), hash_run(b, &n2));
    cr_assert_str_neq(hc_gen_device_id(a, HC_GEN_PRESENCE, 0),
                      hc_gen_device_id(b, HC_GEN_PRESENCE, 0));
    hc_gen_free(a);
    hc_gen_free(b);
}

Test(gen, device_ids_are_uuids_that_do_not_depend_on_the_rest_of_the_mix)
{
    struct hc_gen_options o;
    hc_gen *a, *b;
    const char *id;

    hc_gen_options_init(&o);
    o.seed = 9;
    cr_assert_eq(hc_gen_new(&o, &a, NULL), HC_OK);
    memset(o.devices, 0, sizeof(o.devices));
    o.devices[HC_GEN_AIR] = 4;
    cr_assert_eq(hc_gen_new(&o, &b, NULL), HC_OK);
    id = hc_gen_device_id(a, HC_GEN_AIR, 3);
    cr_assert_str_eq(id, hc_gen_device_id(b, HC_GEN_AIR, 3));
    cr_assert_eq(strlen(id), 36);
    cr_assert_eq(id[14], '4');
    cr_assert_null(hc_gen_device_id(b, HC_GEN_AIR, 4));
    cr_assert_null(hc_gen_device_id(b, HC_GEN_TAG, 0));
    hc_gen_free(a);
    hc_gen_free(b);
}

/* Documented ranges (HALTIAN.md section 4) for scalar values. */
struct range {
    const char *type;
    double lo, hi;
};
static const struct range ranges[] = {
    {"ambientTemperature", -40, 85},
    {"humidity", 0, 100},
    {"barometricPressure", 870, 1084},
    {"ambientLight", 0, 100000},
    {"co2", 400, 5000},
    {"tvoc", 0, 60000},
    {"movementDetections", 0, 34},
    {"positionConfidence", 0, 100},
    {"batteryPercentage", 0, 100},
    {"distance", 0, 4000},
    {"magneticStateChanges", 0, 1e9},
    {"electricalResistance", 0, 1e9},
    {"echo", 0, 1e9},
    {"occupantsCount", 0, 40},
    {"occupancySeconds", 0, 3600},
};

static void check_value(const char *type, const cJSON *v)
{
    size_t i;
    for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if (strcmp(ranges[i].type, type) == 0) {
            cr_assert(cJSON_IsNumber(v), "%s: value is not a number", type);
            cr_assert(v->valuedouble >= ranges[i].lo && v->valuedouble <= ranges[i].hi,
                      "%s: %g outside %g..%g", type, v->valuedouble, ranges[i].lo, ranges[i].hi);
            return;
        }
    }
    if (strcmp(type, "occupancyStatus") == 0 || strcmp(type, "magneticState") == 0) {
        cr_assert(cJSON_IsBool(v), "%s: not a boolean", type);
    } else if (strcmp(type, "directionalMovement") == 0) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, "entries");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, "exits");
        cr_assert(cJSON_IsNumber(e) && cJSON_IsNumber(x) && e->valuedouble >= 0 &&
                  x->valuedouble >= 0 && e->valuedouble == (double)(int)e->valuedouble);
    } else if (strcmp(type, "rss") == 0) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(v, "rss");
        cr_assert(cJSON_IsNumber(r) && r->valuedouble >= -100 && r->valuedouble <= 0);
        cr_assert(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(v, "isStatic")));
    } else if (strcmp(type, "deviceOrientation") == 0) {
        const cJSON *z = cJSON_GetObjectItemCaseSensitive(v, "accz");
        cr_assert(cJSON_IsNumber(z) && z->valuedouble > 0.9 && z->valuedouble < 1.1);
    } else if (strcmp(type, "vibration") == 0) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(v, "level");
        cr_assert(cJSON_IsNumber(l) && l->valuedouble >= 0 && l->valuedouble <= 1);
    } else if (strcmp(type, "position") == 0) {
        const cJSON *loc = cJSON_GetObjectItemCaseSensitive(v, "position_local");
        const cJSON *glob = cJSON_GetObjectItemCaseSensitive(v, "position_global");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(glob, "coordinates");
        cr_assert(cJSON_IsObject(loc) && cJSON_GetArraySize(c) == 2);
        /* GeoJSON order: longitude (Helsinki ~24.9) first, then latitude (~60.2) */
        cr_assert(cJSON_GetArrayItem(c, 0)->valuedouble < 30 &&
                  cJSON_GetArrayItem(c, 1)->valuedouble > 59);
    } else if (strcmp(type, "positionZone") == 0) {
        cr_assert(cJSON_IsString(v) && strlen(v->valuestring) == 36);
    } else {
        cr_assert_fail("unexpected type %s", type);
    }
}

Test(gen, every_value_stays_inside_its_documented_range_over_two_weeks)
{
    hc_gen *g = make_gen(7, 14 * DAY_NS, HC_GEN_SHAPES_CANONICAL, false);
    struct hc_gen_msg m;
    int64_t n = 0;

    while (hc_gen_next(g, &m) == HC_OK) {
        cJSON *root = cJSON_ParseWithLength(m.payload, m.payload_len);
        const char *slash = strrchr(m.topic, '/');
        char type[64];
        int64_t at;
        const cJSON *ts;

        cr_assert_not_null(root, "not JSON: %s", m.payload);
        /* the topic names the canonical type */
        cr_assert_not_null(slash);
        {
            const char *p = strstr(m.topic, "/measurements/") + 14;
            snprintf(type, sizeof(type), "%.*s", (int)(slash - p), p);
        }
        cr_assert_str_eq(type, m.type);
        ts = cJSON_GetObjectItemCaseSensitive(root, "measured_at");
        cr_assert(cJSON_IsString(ts));
        cr_assert_eq(strlen(ts->valuestring), 24, "%s", ts->valuestring);
        cr_assert_eq(hc_time_parse_rfc3339(ts->valuestring, 24, &at, NULL), HC_OK);
        cr_assert_eq(at, m.measured_at_ns);
        check_value(m.type, cJSON_GetObjectItemCaseSensitive(root, "value"));
        cJSON_Delete(root);
        n++;
    }
    cr_assert_gt(n, 500000);
    hc_gen_free(g);
}

Test(gen, messages_come_in_time_order_and_arrive_after_they_were_measured)
{
    hc_gen *g = make_gen(3, 3 * DAY_NS, HC_GEN_SHAPES_CANONICAL, false);
    struct hc_gen_msg m;
    int64_t last_measured = 0, last_received = 0, n = 0;
    int64_t start = HC_GEN_DEFAULT_START_NS, end = start + 3 * DAY_NS;

    while (hc_gen_next(g, &m) == HC_OK) {
        cr_assert_geq(m.measured_at_ns, last_measured);
        cr_assert_gt(m.received_at_ns, last_received);
        cr_assert_gt(m.received_at_ns, m.measured_at_ns);
        cr_assert_lt(m.received_at_ns - m.measured_at_ns, 10LL * 1000000000LL);
        cr_assert(m.measured_at_ns >= start && m.measured_at_ns < end);
        cr_assert_eq(m.measured_at_ns % 1000000, 0);
        last_measured = m.measured_at_ns;
        last_received = m.received_at_ns;
        n++;
    }
    cr_assert_gt(n, 0);
    hc_gen_free(g);
}

/* Per (kind, device, type): last time seen and the largest and smallest gap. */
struct cadence {
    int64_t last_ms, min_gap, max_gap, count;
};

Test(gen, cadences_follow_the_documented_intervals)
{
    enum { DEVS = 64, TYPES = 8 };
    static struct cadence c[HC_GEN_KIND__COUNT][DEVS][TYPES];
    static const char *const watched[TYPES] = {"batteryPercentage",
                                               "ambientTemperature",
                                               "co2",
                                               "movementDetections",
                                               "occupancyStatus",
                                               "directionalMovement",
                                               "magneticStateChanges",
                                               "rss"};
    hc_gen *g = make_gen(5, 4 * DAY_NS, HC_GEN_SHAPES_CANONICAL, false);
    struct hc_gen_msg m;
    int k, d, t;

    while (hc_gen_next(g, &m) == HC_OK) {
        int64_t ms = m.measured_at_ns / 1000000;
        for (t = 0; t < TYPES; t++)
            if (strcmp(m.type, watched[t]) == 0)
                break;
        if (t == TYPES || m.device >= DEVS)
            continue;
        struct cadence *x = &c[m.kind][m.device][t];
        if (x->count) {
            int64_t gap = ms - x->last_ms;
            if (!x->min_gap || gap < x->min_gap)
                x->min_gap = gap;
            if (gap > x->max_gap)
                x->max_gap = gap;
        }
        x->last_ms = ms;
        x->count++;
    }
    for (k = 0; k < HC_GEN_KIND__COUNT; k++) {
        for (d = 0; d < DEVS; d++) {
            struct cadence *b = &c[k][d][0];
            struct cadence *temp = &c[k][d][1];
            if (b->count > 1) { /* battery: exactly every 6 h */
                cr_assert_eq(b->min_gap, 6 * HOUR_MS, "kind %d device %d", k, d);
                cr_assert_eq(b->max_gap, 6 * HOUR_MS);
            }
            if (temp->count > 1 && k != HC_GEN_AIR) { /* threshold + hourly heartbeat */
                cr_assert_leq(temp->max_gap, HOUR_MS, "kind %d device %d", k, d);
                cr_assert_eq(temp->min_gap % 60000, 0);
            }
            if (temp->count > 1 && k == HC_GEN_AIR) /* air quality every 5 min */
                cr_assert(temp->min_gap == 300000 && temp->max_gap == 300000);
            if (c[k][d][2].count > 1)
                cr_assert(c[k][d][2].min_gap == 300000 && c[k][d][2].max_gap == 300000);
            for (t = 3; t <= 5; t++) /* activity reports, hourly heartbeat otherwise */
                if (c[k][d][t].count > 1)
                    cr_assert_leq(c[k][d][t].max_gap, HOUR_MS, "%s", watched[t]);
            if (c[k][d][3].count > 1)
                cr_assert_eq(c[k][d][3].min_gap, 60000);
            if (c[k][d][5].count > 1) /* people counters every 30 s, device groups every 60 s */
                cr_assert_eq(c[k][d][5].min_gap, k == HC_GEN_GROUP ? 60000 : 30000);
            if (c[k][d][6].count > 1)
                cr_assert(c[k][d][6].min_gap == HOUR_MS && c[k][d][6].max_gap == HOUR_MS);
            if (c[k][d][7].count > 1)
                cr_assert(c[k][d][7].min_gap == 600000 && c[k][d][7].max_gap == 600000);
        }
    }
    /* every default kind that has a battery sent it */
    cr_assert_gt(c[HC_GEN_ENVIRONMENT][0][0].count, 10);
    cr_assert_eq(c[HC_GEN_COUNT][0][0].count, 0);
    hc_gen_free(g);
}

/*
 * A device group's four streams describe one population: occupancyStatus is whether the last
 * occupantsCount was above zero, the entries minus exits reported so far equal the last
 * occupantsCount, and occupancySeconds comes every hour and never exceeds it.
 */
Test(gen, device_groups_report_one_consistent_population)
{
    enum { GROUPS = 12 };
    struct hc_gen_options o;
    struct hc_gen_msg m;
    hc_gen *g = NULL;
    hc_error err = HC_ERROR_INIT;
    int64_t occupants[GROUPS] = {0}, net[GROUPS] = {0}, last_seconds_ms[GROUPS] = {0};
    int64_t seen_full = 0, checked_status = 0, checked_moves = 0, hours = 0;

    hc_gen_options_init(&o);
    memset(o.devices, 0, sizeof(o.devices));
    o.devices[HC_GEN_GROUP] = GROUPS;
    o.seed = 21;
    o.duration_ns = 2 * DAY_NS;
    cr_assert_eq(hc_gen_new(&o, &g, &err), HC_OK, "%s", err.message);
    while (hc_gen_next(g, &m) == HC_OK) {
        cJSON *root = cJSON_ParseWithLength(m.payload, m.payload_len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "value");
        int64_t ms = m.measured_at_ns / 1000000;
        uint32_t d = m.device;

        cr_assert_eq(m.kind, HC_GEN_GROUP);
        cr_assert_lt(d, GROUPS);
        cr_assert_not_null(strstr(m.topic, "/measurements/"));
        if (strcmp(m.type, "occupantsCount") == 0) {
            cr_assert(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 40);
            occupants[d] = (int64_t)v->valuedouble;
            seen_full += occupants[d] > 0;
        } else if (strcmp(m.type, "occupancyStatus") == 0) {
            cr_assert(cJSON_IsBool(v));
            cr_assert_eq(cJSON_IsTrue(v), occupants[d] > 0, "group %u at %lld", d, (long long)ms);
            checked_status++;
        } else if (strcmp(m.type, "directionalMovement") == 0) {
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(v, "entries");
            const cJSON *out = cJSON_GetObjectItemCaseSensitive(v, "exits");
            net[d] += (int64_t)in->valuedouble - (int64_t)out->valuedouble;
            cr_assert_eq(net[d], occupants[d], "group %u at %lld", d, (long long)ms);
            checked_moves++;
        } else {
            cr_assert_str_eq(m.type, "occupancySeconds");
            cr_assert(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 3600);
            if (last_seconds_ms[d])
                cr_assert_eq(ms - last_seconds_ms[d], 3600000);
            last_seconds_ms[d] = ms;
            hours++;
        }
        cJSON_Delete(root);
    }
    cr_assert_gt(seen_full, 100, "groups were occupied by day");
    cr_assert_gt(checked_status, GROUPS * 48);
    cr_assert_gt(checked_moves, 100);
    cr_assert_geq(hours, GROUPS * 47);
    hc_gen_free(g);
}

Test(gen, activity_follows_day_and_night)
{
    hc_gen *g = make_gen(11, DAY_NS, HC_GEN_SHAPES_CANONICAL, false);
    struct hc_gen_msg m;
    int64_t night = 0, day = 0;

    while (hc_gen_next(g, &m) == HC_OK) {
        int64_t hour = (m.measured_at_ns - HC_GEN_DEFAULT_START_NS) / (3600LL * 1000000000LL);
        if (strcmp(m.type, "movementDetections") != 0 && strcmp(m.type, "directionalMovement") != 0)
            continue;
        if (hour >= 1 && hour < 4)
            night++;
        else if (hour >= 10 && hour < 13)
            day++;
    }
    cr_assert_gt(day, 5 * night, "day %lld night %lld", (long long)day, (long long)night);
    hc_gen_free(g);
}

static void assert_decodes(hc_gen *g, int64_t *n_out)
{
    struct hc_gen_msg m;
    int64_t n = 0;
    while (hc_gen_next(g, &m) == HC_OK) {
        cJSON *out = NULL;
        struct hc_decode_index idx;
        cr_assert_eq(
            hc_decode_message(m.topic, (const unsigned char *)m.payload, m.payload_len, &out, NULL),
            HC_OK);
        cr_assert_null(cJSON_GetObjectItemCaseSensitive(out, "error"), "%s %s: %s", m.topic,
                       m.payload, cJSON_PrintUnformatted(out));
        hc_decode_index(m.topic, (const unsigned char *)m.payload, m.payload_len, &idx);
        cr_assert_eq(idx.has_error, 0);
        cr_assert(idx.has_measured_at);
        {
            int64_t ms = m.measured_at_ns / 1000000;
            /* payloads with whole-second timestamps carry less precision */
            cr_assert(idx.measured_at_ms == ms || idx.measured_at_ms == ms / 1000 * 1000);
        }
        cJSON_Delete(out);
        n++;
    }
    *n_out = n;
}

Test(gen, canonical_mixed_and_thingsee_shapes_all_decode_without_error)
{
    int64_t n;
    hc_gen *g = make_gen(21, DAY_NS / 2, HC_GEN_SHAPES_CANONICAL, false);
    assert_decodes(g, &n);
    cr_assert_gt(n, 1000);
    hc_gen_free(g);
    g = make_gen(21, DAY_NS / 2, HC_GEN_SHAPES_MIXED, false);
    assert_decodes(g, &n);
    cr_assert_gt(n, 1000);
    hc_gen_free(g);
    g = make_gen(21, DAY_NS / 2, HC_GEN_SHAPES_CANONICAL, true);
    assert_decodes(g, &n);
    cr_assert_gt(n, 1000);
    hc_gen_free(g);
}

Test(gen, mixed_shapes_use_aliases_named_fields_and_other_timestamp_forms)
{
    hc_gen *g = make_gen(21, DAY_NS, HC_GEN_SHAPES_MIXED, false);
    struct hc_gen_msg m;
    bool snake = false, upper = false, named = false, micro = false, seconds = false,
         geojson = false, local = false, closed = false;

    while (hc_gen_next(g, &m) == HC_OK) {
        snake |= strstr(m.topic, "/ambient_temperature/") != NULL;
        upper |= strstr(m.topic, "/CO2/") != NULL;
        named |= strstr(m.payload, "\"isOccupied\":") != NULL;
        closed |= strstr(m.payload, "\"isClosed\":") != NULL;
        micro |= strstr(m.payload, "000+00:00\"") != NULL;
        seconds |= m.payload[35] == 'Z' && m.payload[36] == '"';
        geojson |= strncmp(m.payload, "{\"value\":{\"type\":\"Point\"", 24) == 0;
        local |= strstr(m.topic, "/positionLocal/") != NULL;
    }
    cr_assert(snake && upper && named && micro && seconds && geojson && local && closed,
              "snake %d upper %d named %d micro %d seconds %d geojson %d local %d closed %d", snake,
              upper, named, micro, seconds, geojson, local, closed);
    hc_gen_free(g);
}

Test(gen, thingsee_messages_use_legacy_topics_and_units)
{
    hc_gen *g = make_gen(4, DAY_NS, HC_GEN_SHAPES_CANONICAL, true);
    struct hc_gen_msg m;
    int64_t airp = 0, acc = 0;

    while (hc_gen_next(g, &m) == HC_OK) {
        cJSON *root = cJSON_ParseWithLength(m.payload, m.payload_len);
        const cJSON *f;
        char topic_end[16];
        cr_assert_not_null(root);
        cr_assert_eq(strncmp(m.topic, "cloudext/json/pr/fi/prfi00hkitgen/", 34), 0, "%s", m.topic);
        f = cJSON_GetObjectItemCaseSensitive(root, "tsmTuid");
        cr_assert(cJSON_IsString(f) && strlen(f->valuestring) == 17);
        cr_assert_eq(strncmp(m.topic + 34, f->valuestring, 17), 0);
        snprintf(topic_end, sizeof(topic_end), "%d",
                 cJSON_GetObjectItemCaseSensitive(root, "tsmId")->valueint);
        cr_assert_str_eq(m.topic + 34 + 18, topic_end);
        /* tsmTs: epoch seconds (with milliseconds as decimals) */
        f = cJSON_GetObjectItemCaseSensitive(root, "tsmTs");
        cr_assert(cJSON_IsNumber(f));
        cr_assert_lt(f->valuedouble * 1e9 - (double)m.measured_at_ns, 2e6);
        cr_assert_gt(f->valuedouble * 1e9 - (double)m.measured_at_ns, -2e6);
        if ((f = cJSON_GetObjectItemCaseSensitive(root, "airp"))) { /* Pa */
            cr_assert(f->valuedouble >= 87000 && f->valuedouble <= 108400, "%g", f->valuedouble);
            airp++;
        }
        if ((f = cJSON_GetObjectItemCaseSensitive(root, "accz"))) { /* mG, integers */
            cr_assert(f->valuedouble > 900 && f->valuedouble < 1100, "%g", f->valuedouble);
            cr_assert_eq(f->valuedouble, (double)f->valueint);
            acc++;
        }
        cr_assert_null(strstr(m.topic, "haltian-iot"));
        cJSON_Delete(root);
    }
    cr_assert_gt(airp, 100);
    cr_assert_gt(acc, 10);
    hc_gen_free(g);
}

Test(gen, parse_devices_accepts_a_mix_and_names_every_problem)
{
    long c[HC_GEN_KIND__COUNT];
    hc_error err = HC_ERROR_INIT;

    cr_assert_eq(hc_gen_parse_devices("environment=50,presence=100,leakage=2", c, &err), HC_OK);
    cr_assert_eq(c[HC_GEN_ENVIRONMENT], 50);
    cr_assert_eq(c[HC_GEN_PRESENCE], 100);
    cr_assert_eq(c[HC_GEN_LEAKAGE], 2);
    cr_assert_eq(c[HC_GEN_TAG], 0);
    cr_assert_eq(hc_gen_parse_devices("lamp=3", c, &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "unknown device kind 'lamp' (known: environment, presence, air, "
                                  "beam, count, tag, radar, leakage, group)");
    cr_assert_eq(hc_gen_parse_devices("air=x", c, &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "bad count 'x' for 'air'");
    cr_assert_eq(hc_gen_parse_devices("air=1,air=2", c, &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "device kind 'air' given twice");
    cr_assert_eq(hc_gen_parse_devices("air", c, &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "expected KIND=COUNT, got 'air'");
    cr_assert_eq(hc_gen_parse_devices("air=0", c, &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "no devices in the mix");
    cr_assert_eq(hc_gen_parse_devices("air=1,", c, &err), HC_ERR_INVALID);
    cr_assert_eq(hc_gen_parse_devices("air=2000000", c, &err), HC_ERR_INVALID);
}

Test(gen, a_generator_stops_at_the_end_of_its_duration)
{
    struct hc_gen_options o;
    hc_gen *g;
    struct hc_gen_msg m;
    int64_t n = 0;

    hc_gen_options_init(&o);
    memset(o.devices, 0, sizeof(o.devices));
    o.devices[HC_GEN_AIR] = 1;
    o.duration_ns = 3600LL * 1000000000LL;
    cr_assert_eq(hc_gen_new(&o, &g, NULL), HC_OK);
    while (hc_gen_next(g, &m) == HC_OK)
        n++;
    /* 5 air types every 5 minutes for an hour, plus at most one battery report */
    cr_assert(n == 60 || n == 61, "%lld", (long long)n);
    cr_assert_eq(hc_gen_next(g, &m), HC_DONE);
    hc_gen_free(g);
}

/* The measured_at and payload of every message of one device, hashed in order. */
static uint64_t hash_device(hc_gen *g, enum hc_gen_kind kind, uint32_t device, int64_t *count)
{
    struct hc_gen_msg m;
    uint64_t h = 1469598103934665603ULL;
    *count = 0;
    while (hc_gen_next(g, &m) == HC_OK) {
        if (m.kind != kind || m.device != device)
            continue;
        for (size_t i = 0; i < m.payload_len; i++)
            h = (h ^ (unsigned char)m.payload[i]) * 1099511628211ULL;
        h = (h ^ (uint64_t)m.measured_at_ns) * 1099511628211ULL;
        (*count)++;
    }
    return h;
}

Test(gen, a_device_sends_the_same_traffic_whatever_else_is_in_the_mix)
{
    struct hc_gen_options o;
    hc_gen *alone, *crowd;
    int64_t n1, n2;
    uint64_t h1, h2;

    /* a presence device (occupancy Markov chain, movement) and an environment one (random
       walks, thresholds, door), once alone and once among a thousand other devices */
    for (int k = 0; k < 2; k++) {
        enum hc_gen_kind kind = k ? HC_GEN_ENVIRONMENT : HC_GEN_PRESENCE;
        hc_gen_options_init(&o);
        o.seed = 17;
        o.duration_ns = DAY_NS;
        memset(o.devices, 0, sizeof(o.devices));
        o.devices[kind] = 3;
        cr_assert_eq(hc_gen_new(&o, &alone, NULL), HC_OK);
        o.devices[HC_GEN_ENVIRONMENT] = 300;
        o.devices[HC_GEN_PRESENCE] = 600;
        o.devices[HC_GEN_TAG] = 100;
        cr_assert_eq(hc_gen_new(&o, &crowd, NULL), HC_OK);
        h1 = hash_device(alone, kind, 2, &n1);
        h2 = hash_device(crowd, kind, 2, &n2);
        cr_assert_gt(n1, 20);
        cr_assert_eq(n1, n2, "%s: %lld alone, %lld in a crowd", hc_gen_kind_name(kind),
                     (long long)n1, (long long)n2);
        cr_assert_eq(h1, h2, "%s: other traffic alone than in a crowd", hc_gen_kind_name(kind));
        hc_gen_free(alone);
        hc_gen_free(crowd);
    }
}

/*
 * Unit tests of the Haltian decoder: every shape, type, alias and timestamp form of HALTIAN.md
 * sections 3-5, the legacy Thingsee format, and every class of malformed input. Each decode also
 * runs hc_decode_index on the same input and asserts that both agree (kind, type, device,
 * measured_at, error), and that the output prints and parses back as the same JSON.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/decode.h"
#include "hcore/timefmt.h"

#define H                                                                                          \
    "haltian-iot/events/0f8c2c4e-2a7e-4d4b-9a51-6a3f0f9b1c11/7d3c9f5e-1b2a-4c8d-9e0f-123456789abc"
#define DEV "b1a2c3d4-e5f6-4789-a012-3456789abcde"
#define M(type) H "/measurements/" type "/" DEV
#define TS "\"measured_at\":\"2026-02-05T10:30:45.123Z\""
#define TS_MS 1770287445123LL

/* Outputs of the running test, freed by the suite's fini. */
static cJSON *outputs[64];
static int noutputs;

static void free_outputs(void)
{
    for (int i = 0; i < noutputs; i++)
        cJSON_Delete(outputs[i]);
    noutputs = 0;
}

TestSuite(decode, .fini = free_outputs);

static const char *opt_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The index must agree with the full output on every column it stores. */
static void assert_index_agrees(const cJSON *o, const char *topic, const unsigned char *payload,
                                size_t len)
{
    struct hc_decode_index idx;
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "measured_at_ms");

    memset(&idx, 0x5a, sizeof(idx));
    hc_decode_index(topic, payload, len, &idx);
    cr_assert_str_eq(idx.kind, opt_str(o, "kind"), "index kind for %s", topic);
    cr_assert_str_eq(idx.type, opt_str(o, "type"), "index type for %s", topic);
    cr_assert_str_eq(idx.device_id, opt_str(o, "device_id"), "index device for %s", topic);
    cr_assert_eq(idx.has_error, cJSON_HasObjectItem(o, "error") ? 1 : 0, "index error for %s",
                 topic);
    cr_assert_eq(idx.has_measured_at, ms ? 1 : 0, "index has_measured_at for %s", topic);
    if (ms) {
        char buf[40];

        cr_assert_eq(idx.measured_at_ms, (int64_t)ms->valuedouble);
        hc_time_format_rfc3339(idx.measured_at_ms * 1000000, 3, buf, sizeof(buf));
        cr_assert_str_eq(opt_str(o, "measured_at"), buf);
    } else {
        cr_assert_eq(idx.measured_at_ms, 0);
    }
}

static cJSON *decode_bytes(const char *topic, const void *payload, size_t len)
{
    cJSON *o = NULL, *back;
    hc_error err = HC_ERROR_INIT;
    char *text;

    cr_assert_eq(hc_decode_message(topic, payload, len, &o, &err), HC_OK, "%s", err.message);
    cr_assert_not_null(o);
    cr_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "normalised")));
    cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "format")));
    assert_index_agrees(o, topic, payload, len);
    text = cJSON_PrintUnformatted(o);
    cr_assert_not_null(text);
    back = cJSON_Parse(text);
    cr_assert(cJSON_Compare(o, back, 1), "output does not survive printing: %s", text);
    cJSON_Delete(back);
    free(text);
    cr_assert_lt(noutputs, 64);
    outputs[noutputs++] = o;
    return o;
}

static cJSON *dec(const char *topic, const char *payload)
{
    return decode_bytes(topic, payload, strlen(payload));
}

/* Item at a dotted path ("value.entries", "measurements.1.unit"); NULL when absent. */
static const cJSON *at(const cJSON *o, const char *path)
{
    char buf[256], *save = NULL;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *part = strtok_r(buf, ".", &save); part && o; part = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(o))
            o = cJSON_GetArrayItem(o, atoi(part));
        else
            o = cJSON_GetObjectItemCaseSensitive(o, part);
    }
    return o;
}

static const char *str_at(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);

    cr_assert(cJSON_IsString(v), "%s is not a string", path);
    return v->valuestring;
}

static double num_at(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);

    cr_assert(cJSON_IsNumber(v), "%s is not a number", path);
    return v->valuedouble;
}

static bool bool_at(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);

    cr_assert(cJSON_IsBool(v), "%s is not a boolean", path);
    return cJSON_IsTrue(v);
}

static bool has_note(const cJSON *o, const char *text)
{
    const cJSON *n;

    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(o, "normalised"))
    {
        if (strstr(n->valuestring, text))
            return true;
    }
    return false;
}

static const char *err_code(const cJSON *o)
{
    const cJSON *c = at(o, "error.code");

    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static void assert_ok(const cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);

    cr_assert_null(err_code(o), "unexpected error: %s", text);
    free(text);
}

static void assert_error(const cJSON *o, const char *code)
{
    cr_assert_not_null(err_code(o), "expected error %s", code);
    cr_assert_str_eq(err_code(o), code);
    cr_assert_neq(str_at(o, "error.detail")[0], '\0');
}

static void assert_near(double a, double b)
{
    cr_assert(a - b < 1e-9 && b - a < 1e-9, "%.12g != %.12g", a, b);
}

/* ---- canonical payloads ---- */

Test(decode, canonical_value_payload_fills_every_documented_key)
{
    cJSON *o = dec(M("ambientTemperature"), "{" TS ",\"value\":23.5}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "format"), "haltian");
    cr_assert_str_eq(str_at(o, "kind"), "measurements");
    cr_assert_str_eq(str_at(o, "type"), "ambientTemperature");
    cr_assert_str_eq(str_at(o, "type_received"), "ambientTemperature");
    cr_assert_str_eq(str_at(o, "integration_id"), "0f8c2c4e-2a7e-4d4b-9a51-6a3f0f9b1c11");
    cr_assert_str_eq(str_at(o, "api_key_id"), "7d3c9f5e-1b2a-4c8d-9e0f-123456789abc");
    cr_assert_str_eq(str_at(o, "device_id"), DEV);
    cr_assert_str_eq(str_at(o, "shape"), "value");
    cr_assert_str_eq(str_at(o, "measured_at"), "2026-02-05T10:30:45.123Z");
    cr_assert_str_eq(str_at(o, "measured_at_received"), "2026-02-05T10:30:45.123Z");
    cr_assert_eq((int64_t)num_at(o, "measured_at_ms"), TS_MS);
    cr_assert_str_eq(str_at(o, "measured_at_source"), "measured_at");
    assert_near(num_at(o, "value"), 23.5);
    cr_assert_str_eq(str_at(o, "unit"), "°C");
    cr_assert_eq(cJSON_GetArraySize(at(o, "normalised")), 0, "nothing to normalise");
    cr_assert_null(at(o, "extra"));
}

struct type_case {
    const char *type;
    const char *value;
    const char *unit; /* NULL: no unit */
};

/* HALTIAN.md section 4, one row each, with the example value of the table. */
static const struct type_case table[] = {
    {"ambientTemperature", "23.5", "°C"},
    {"humidity", "45.8", "%RH"},
    {"barometricPressure", "1013.25", "hPa"},
    {"ambientLight", "450", "lux"},
    {"co2", "850", "ppm"},
    {"tvoc", "125", "ppb"},
    {"occupancyStatus", "true", NULL},
    {"occupantsCount", "5", "people"},
    {"occupancySeconds", "3600", "s"},
    {"directionalMovement", "{\"entries\":12,\"exits\":8}", "people"},
    {"movementDetections", "7", "count"},
    {"positionZone", "\"55a0a3d0-84b6-4ace-b131-0b2420053e91\"", NULL},
    {"positionConfidence", "85.5", "%"},
    {"deviceOrientation", "{\"accx\":0.02,\"accy\":-0.01,\"accz\":1.0}", "g"},
    {"vibration", "{\"level\":0.05,\"total\":1.2}", "%"},
    {"machineUsageSeconds", "204", "s"},
    {"batteryPercentage", "85", "%"},
    {"batteryVoltage", "3.12", "V"},
    {"batteryCurrent", "0.015", "A"},
    {"solarPanelVoltage", "3.2", "V"},
    {"harvesterStorageVoltage", "3.2", "V"},
    {"usbVoltage", "3.2", "V"},
    {"rss", "{\"rss\":-67,\"isStatic\":true,\"mode\":1,\"moveCount\":0,\"sourceDeviceId\":\"abc\"}",
     "dBm"},
    {"systemTemperature", "28.5", "°C"},
    {"bootCount", "{\"bootCount\":42,\"bootReason\":\"power_on\"}", NULL},
    {"distance", "1250", "mm"},
    {"echo", "150", NULL},
    {"magneticState", "false", NULL},
    {"magneticStateChanges", "15", "count"},
    {"electricalResistance", "10000", "Ω"},
    {"deviceRole", "\"gateway\"", NULL},
    {"diagnosticsInterval", "3600", "s"},
};

Test(decode, every_documented_type_keeps_its_value_and_gets_its_unit)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        char topic[512], payload[512];
        cJSON *o, *want;

        snprintf(topic, sizeof(topic), H "/measurements/%s/" DEV, table[i].type);
        snprintf(payload, sizeof(payload), "{" TS ",\"value\":%s}", table[i].value);
        o = dec(topic, payload);
        assert_ok(o);
        cr_assert_str_eq(str_at(o, "type"), table[i].type);
        cr_assert_str_eq(str_at(o, "shape"), "value");
        if (table[i].unit) {
            cr_assert_str_eq(str_at(o, "unit"), table[i].unit, "unit of %s", table[i].type);
            cr_assert_str_eq(hc_decode_unit(table[i].type), table[i].unit);
        } else {
            cr_assert_null(at(o, "unit"), "%s has no unit", table[i].type);
            cr_assert_null(hc_decode_unit(table[i].type));
        }
        want = cJSON_Parse(table[i].value);
        cr_assert(cJSON_Compare(at(o, "value"), want, 1), "value of %s", table[i].type);
        cJSON_Delete(want);
        cr_assert_str_eq(hc_decode_canonical_type(table[i].type), table[i].type);
        free_outputs();
    }
}

struct alias_case {
    const char *alias;
    const char *canonical;
};

static const struct alias_case alias_table[] = {
    {"ambient_temperature", "ambientTemperature"},
    {"ambientHumidity", "humidity"},
    {"ambientPressure", "barometricPressure"},
    {"air_pressure", "barometricPressure"},
    {"ambient_light", "ambientLight"},
    {"CO2", "co2"},
    {"TVOC", "tvoc"},
    {"occupants_count", "occupantsCount"},
    {"peopleCounting", "directionalMovement"},
    {"pir_count", "movementDetections"},
    {"position_zone", "positionZone"},
    {"battery_level", "batteryPercentage"},
    {"battery_voltage", "batteryVoltage"},
    {"rssi", "rss"},
    {"device_temperature", "systemTemperature"},
    {"radar_distance", "distance"},
    {"magnetoSwitchStatus", "magneticState"},
    {"hall_effect", "magneticState"},
    {"AMBIENT_TEMPERATURE", "ambientTemperature"},
    {"Humidity", "humidity"},
    {"battery_percentage", "batteryPercentage"},
};

Test(decode, every_documented_alias_maps_to_its_canonical_name)
{
    for (size_t i = 0; i < sizeof(alias_table) / sizeof(alias_table[0]); i++)
        cr_assert_str_eq(hc_decode_canonical_type(alias_table[i].alias), alias_table[i].canonical,
                         "%s", alias_table[i].alias);
    cr_assert_null(hc_decode_canonical_type("fooBar"));
    cr_assert_null(hc_decode_canonical_type(""));
    cr_assert_null(hc_decode_canonical_type(NULL));
    cr_assert_null(hc_decode_unit(NULL));
    cr_assert_null(hc_decode_unit("fooBar"));
}

Test(decode, aliases_in_topics_are_normalised_and_noted)
{
    static const struct {
        const char *alias, *payload_value, *canonical;
    } cases[] = {
        {"ambient_temperature", "21", "ambientTemperature"},
        {"CO2", "850", "co2"},
        {"TVOC", "125", "tvoc"},
        {"ambientHumidity", "40", "humidity"},
        {"air_pressure", "1000", "barometricPressure"},
        {"occupants_count", "3", "occupantsCount"},
        {"pir_count", "4", "movementDetections"},
        {"battery_level", "90", "batteryPercentage"},
        {"rssi", "-70", "rss"},
        {"device_temperature", "30", "systemTemperature"},
        {"position_zone",
         "{\"zone_id\":\"z1\",\"zone_name\":\"Lobby\",\"entered_at\":"
         "\"2026-02-05T10:00:00Z\"}",
         "positionZone"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char topic[512], payload[512], want[128];
        cJSON *o;

        snprintf(topic, sizeof(topic), H "/measurements/%s/" DEV, cases[i].alias);
        snprintf(payload, sizeof(payload), "{" TS ",\"value\":%s}", cases[i].payload_value);
        o = dec(topic, payload);
        assert_ok(o);
        cr_assert_str_eq(str_at(o, "type"), cases[i].canonical);
        cr_assert_str_eq(str_at(o, "type_received"), cases[i].alias);
        snprintf(want, sizeof(want), "type: %s -> %s", cases[i].alias, cases[i].canonical);
        cr_assert(has_note(o, want), "note '%s'", want);
        free_outputs();
    }
}

Test(decode, radar_distance_in_metres_becomes_millimetres)
{
    cJSON *o = dec(M("radar_distance"), "{" TS ",\"value\":1.25}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "type"), "distance");
    assert_near(num_at(o, "value"), 1250);
    cr_assert_str_eq(str_at(o, "unit"), "mm");
    cr_assert(has_note(o, "m -> mm"));
}

/* ---- named fields ---- */

Test(decode, is_occupied_field_becomes_the_boolean_value)
{
    cJSON *o = dec(M("occupancyStatus"), "{\"measured_at\":\"2026-01-28T08:52:11Z\","
                                         "\"isOccupied\":true}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "named-fields");
    cr_assert(bool_at(o, "value"));
    cr_assert_null(at(o, "extra"), "the field was consumed");
    cr_assert(has_note(o, "field isOccupied -> value"));
    cr_assert_str_eq(str_at(o, "measured_at"), "2026-01-28T08:52:11.000Z");
}

Test(decode, entries_and_exits_fields_become_the_movement_object)
{
    cJSON *o = dec(M("directionalMovement"), "{" TS ",\"entries\":3,\"exits\":1}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "named-fields");
    cr_assert_eq(num_at(o, "value.entries"), 3);
    cr_assert_eq(num_at(o, "value.exits"), 1);
    cr_assert_str_eq(str_at(o, "unit"), "people");
}

Test(decode, old_in_out_net_form_maps_to_entries_and_exits)
{
    cJSON *o = dec(M("peopleCounting"), "{" TS ",\"value\":{\"in\":12,\"out\":8,\"net\":4}}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "type"), "directionalMovement");
    cr_assert_eq(num_at(o, "value.entries"), 12);
    cr_assert_eq(num_at(o, "value.exits"), 8);
    cr_assert_null(at(o, "value.net"));
    cr_assert_null(at(o, "value.in"));
    cr_assert_null(at(o, "extra"));
    cr_assert(has_note(o, "in/out/net -> entries/exits"));

    o = dec(M("directionalMovement"), "{" TS ",\"in\":2,\"out\":5}");
    assert_ok(o);
    cr_assert_eq(num_at(o, "value.entries"), 2);
    cr_assert_eq(num_at(o, "value.exits"), 5);
}

Test(decode, acceleration_fields_become_the_orientation_object)
{
    cJSON *o = dec(M("deviceOrientation"), "{" TS ",\"accx\":0.02,\"accy\":0.01,\"accz\":1.0}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "named-fields");
    assert_near(num_at(o, "value.accx"), 0.02);
    assert_near(num_at(o, "value.accy"), 0.01);
    assert_near(num_at(o, "value.accz"), 1.0);
    cr_assert_str_eq(str_at(o, "unit"), "g");
}

Test(decode, magnetic_state_is_open_keeps_its_polarity)
{
    cJSON *o = dec(M("magneticState"), "{" TS ",\"value\":true}");

    assert_ok(o);
    cr_assert(bool_at(o, "value"));
    cr_assert(!has_note(o, "polarity"));
    o = dec(M("magneticState"), "{" TS ",\"isOpen\":false}");
    assert_ok(o);
    cr_assert(!bool_at(o, "value"));
    o = dec(M("magneticState"), "{" TS ",\"value\":{\"isOpen\":true}}");
    assert_ok(o);
    cr_assert(bool_at(o, "value"));
}

Test(decode, magneto_switch_is_closed_is_flipped_to_open_semantics)
{
    cJSON *o = dec(M("magnetoSwitchStatus"), "{" TS ",\"isClosed\":true}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "type"), "magneticState");
    cr_assert(!bool_at(o, "value"), "closed means not open");
    cr_assert(has_note(o, "polarity: isClosed true"));
    o = dec(M("magnetoSwitchStatus"), "{" TS ",\"isClosed\":false}");
    cr_assert(bool_at(o, "value"));
    o = dec(M("magnetoSwitchStatus"), "{" TS ",\"value\":true}");
    cr_assert(!bool_at(o, "value"));
    cr_assert(has_note(o, "polarity: magnetoSwitchStatus value true"));
    o = dec(M("magneticState"), "{" TS ",\"value\":{\"isClosed\":true}}");
    cr_assert(!bool_at(o, "value"));
    o = dec(M("hall_effect"), "{" TS ",\"value\":0}");
    assert_ok(o);
    cr_assert(bool_at(o, "value"), "hall 0 = open");
}

Test(decode, numeric_zero_and_one_are_accepted_as_booleans_with_a_note)
{
    cJSON *o = dec(M("occupancyStatus"), "{" TS ",\"value\":1}");

    assert_ok(o);
    cr_assert(bool_at(o, "value"));
    cr_assert(has_note(o, "1 -> true"));
}

/* ---- position ---- */

Test(decode, position_with_local_and_global_becomes_one_flat_object)
{
    cJSON *o =
        dec(M("position"),
            "{\"measured_at\":\"2026-02-05T10:30:45.123Z\",\"value\":{\"position_local\":"
            "{\"x\":12.5,\"y\":8.3,\"z\":0.0},\"position_global\":{\"type\":\"Point\","
            "\"coordinates\":[24.9384,60.1699]},\"accuracy\":2.5,\"space_id\":"
            "\"55a0a3d0-84b6-4ace-b131-0b2420053e91\",\"floor\":2,\"building_id\":\"b-7\"}}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "position");
    assert_near(num_at(o, "value.x"), 12.5);
    assert_near(num_at(o, "value.y"), 8.3);
    assert_near(num_at(o, "value.z"), 0.0);
    assert_near(num_at(o, "value.lon"), 24.9384);
    assert_near(num_at(o, "value.lat"), 60.1699);
    assert_near(num_at(o, "value.accuracy"), 2.5);
    cr_assert_str_eq(str_at(o, "value.space_id"), "55a0a3d0-84b6-4ace-b131-0b2420053e91");
    cr_assert_eq(num_at(o, "value.floor"), 2);
    cr_assert_str_eq(str_at(o, "value.building_id"), "b-7");
    cr_assert_null(at(o, "value.position_local"));
    cr_assert_str_eq(str_at(o, "unit"), "m");
}

Test(decode, geojson_position_with_top_level_space_id_is_merged)
{
    cJSON *o = dec(M("position"), "{\"value\":{\"type\":\"Point\",\"coordinates\":[17.5,35.4]},"
                                  "\"measured_at\":\"2024-03-07T06:53:46.059000+00:00\","
                                  "\"space_id\":\"55a0a3d0\",\"floor\":2}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "position-geojson");
    assert_near(num_at(o, "value.lon"), 17.5);
    assert_near(num_at(o, "value.lat"), 35.4);
    cr_assert_str_eq(str_at(o, "value.space_id"), "55a0a3d0");
    cr_assert_eq(num_at(o, "value.floor"), 2);
    cr_assert_null(at(o, "value.type"));
    cr_assert_null(at(o, "extra"));
    cr_assert(has_note(o, "top-level space_id -> value"));
    cr_assert_str_eq(str_at(o, "measured_at"), "2024-03-07T06:53:46.059Z");
}

Test(decode, position_local_type_takes_x_y_z)
{
    cJSON *o = dec(M("positionLocal"), "{" TS ",\"value\":{\"x\":12.5,\"y\":8.3,\"z\":0.0}}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "type"), "positionLocal");
    cr_assert_str_eq(str_at(o, "shape"), "position");
    assert_near(num_at(o, "value.x"), 12.5);
    cr_assert_null(at(o, "value.lon"));
}

Test(decode, position_without_coordinates_is_a_value_type_error)
{
    assert_error(dec(M("position"), "{" TS ",\"value\":{\"foo\":1}}"), "value-type");
    assert_error(dec(M("position"), "{" TS ",\"value\":[1,2]}"), "value-type");
    assert_error(
        dec(M("position"), "{" TS ",\"value\":{\"type\":\"Point\",\"coordinates\":[\"a\",1]}}"),
        "value-type");
    assert_error(
        dec(M("position"), "{" TS ",\"value\":{\"type\":\"LineString\",\"coordinates\":[1,2]}}"),
        "value-type");
}

/* ---- other kinds ---- */

Test(decode, binary_passthrough_takes_its_time_from_received_at_and_keeps_the_payload)
{
    cJSON *o = dec(H "/payloads/wirepas/" DEV,
                   "{\"received_at\":\"2026-01-29T12:34:56.789Z\",\"value\":{\"mqtt_topic\":"
                   "\"haltian-iot/wirepas/gw-event/received_data/BS225000789/sink1/7156763/21/"
                   "21\",\"payload\":\"CgQIARAC\"}}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "kind"), "payloads");
    cr_assert_str_eq(str_at(o, "type"), "wirepas");
    cr_assert_str_eq(str_at(o, "shape"), "passthrough");
    cr_assert_str_eq(str_at(o, "measured_at_source"), "received_at");
    cr_assert_str_eq(str_at(o, "measured_at"), "2026-01-29T12:34:56.789Z");
    cr_assert_str_eq(str_at(o, "value.payload"), "CgQIARAC");
    cr_assert_str_eq(str_at(o, "value.mqtt_topic"),
                     "haltian-iot/wirepas/gw-event/received_data/BS225000789/sink1/7156763/21/21");
    cr_assert(has_note(o, "taken from received_at"));
    assert_error(dec(H "/payloads/wirepas/" DEV, "{\"value\":{}}"), "missing-timestamp");
}

Test(decode, notification_topic_has_six_levels_and_no_device_id)
{
    cJSON *o = dec(H "/notifications/deviceOffline", "{" TS ",\"reason\":\"timeout\"}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "kind"), "notifications");
    cr_assert_str_eq(str_at(o, "type"), "deviceOffline");
    cr_assert_null(at(o, "device_id"));
    cr_assert_str_eq(str_at(o, "shape"), "named-fields");
    cr_assert_str_eq(str_at(o, "value.reason"), "timeout");

    o = dec(H "/notifications/deviceOffline", "{}");
    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "empty");
    cr_assert_null(at(o, "measured_at"));
    cr_assert(has_note(o, "no timestamp"));
}

Test(decode, sales_demo_literal_ids_are_accepted)
{
    cJSON *o = dec("haltian-iot/events/haltiansalesdemo/haltiansalesdemo/measurements/CO2/"
                   "demo-device-1",
                   "{" TS ",\"value\":612}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "integration_id"), "haltiansalesdemo");
    cr_assert_str_eq(str_at(o, "api_key_id"), "haltiansalesdemo");
    cr_assert_str_eq(str_at(o, "device_id"), "demo-device-1");
    cr_assert_str_eq(str_at(o, "type"), "co2");
}

Test(decode, raw_data_messages_keep_binary_content_as_base64)
{
    static const unsigned char bin[] = {0x00, 0xff, 0x10, 'a'};
    cJSON *o = decode_bytes(H "/messages/rawData/" DEV, bin, sizeof(bin));

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "binary");
    cr_assert_str_eq(str_at(o, "payload_base64"), "AP8QYQ==");
    o = dec(H "/messages/rawData/" DEV, "{" TS ",\"value\":\"0102\"}");
    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "value");
    cr_assert_str_eq(str_at(o, "value"), "0102");
}

Test(decode, unknown_type_passes_through_with_its_value_and_no_unit)
{
    cJSON *o = dec(M("fluxCapacitance"), "{" TS ",\"value\":{\"gw\":1.21}}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "type"), "fluxCapacitance");
    cr_assert_str_eq(str_at(o, "type_received"), "fluxCapacitance");
    assert_near(num_at(o, "value.gw"), 1.21);
    cr_assert_null(at(o, "unit"));
    cr_assert(has_note(o, "unknown"));
}

Test(decode, unknown_event_kind_is_kept_with_a_note)
{
    cJSON *o = dec(H "/alarms/smoke/" DEV, "{" TS ",\"value\":1}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "kind"), "alarms");
    cr_assert(has_note(o, "not a documented event kind"));
}

Test(decode, extra_payload_fields_are_kept_under_extra)
{
    cJSON *o = dec(M("co2"), "{" TS ",\"value\":850,\"quality\":\"good\"}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "extra.quality"), "good");
}

/* ---- timestamps ---- */

Test(decode, every_documented_timestamp_form_is_normalised_to_milliseconds_utc)
{
    static const struct {
        const char *received, *canonical, *note;
    } cases[] = {
        {"2025-01-28T10:30:00.000Z", "2025-01-28T10:30:00.000Z", NULL},
        {"2024-03-07T06:53:46.059000+00:00", "2024-03-07T06:53:46.059Z", "6 fractional"},
        {"2026-01-28T08:52:11Z", "2026-01-28T08:52:11.000Z", "0 fractional"},
        {"2026-01-28T10:52:11.5+02:00", "2026-01-28T08:52:11.500Z", "zone '+02:00'"},
        {"2026-01-27T22:52:11.123-10:00", "2026-01-28T08:52:11.123Z", "zone '-10:00'"},
        {"2026-01-28 08:52:11.123z", "2026-01-28T08:52:11.123Z", "separator"},
        {"2026-01-28T08:52:11.123456789Z", "2026-01-28T08:52:11.123Z", "9 fractional"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char payload[256];
        cJSON *o;

        snprintf(payload, sizeof(payload), "{\"measured_at\":\"%s\",\"value\":1}",
                 cases[i].received);
        o = dec(M("co2"), payload);
        assert_ok(o);
        cr_assert_str_eq(str_at(o, "measured_at"), cases[i].canonical);
        cr_assert_str_eq(str_at(o, "measured_at_received"), cases[i].received);
        if (cases[i].note)
            cr_assert(has_note(o, cases[i].note), "note for %s", cases[i].received);
        else
            cr_assert_eq(cJSON_GetArraySize(at(o, "normalised")), 0);
        free_outputs();
    }
}

Test(decode, received_at_stands_in_for_a_missing_measured_at)
{
    cJSON *o = dec(M("co2"), "{\"received_at\":\"2026-01-29T12:34:56.789Z\",\"value\":5}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "measured_at_source"), "received_at");
    cr_assert(has_note(o, "taken from received_at"));
}

/* ---- legacy Thingsee ---- */

#define TSN "cloudext/json/pr/fi/prfi00samplegroup/"

Test(decode, thingsee_environment_object_gives_one_measurement_per_field)
{
    cJSON *o = dec(TSN "TSEN01ABC12345678/12100",
                   "{\"tsmId\":12100,\"tsmEv\":10,\"airp\":101364.599,\"lght\":6,\"temp\":21.3,"
                   "\"humd\":21.7,\"tsmTs\":1520416221,\"tsmTuid\":\"TSEN01ABC12345678\","
                   "\"tsmGw\":\"TSGW06ABC12345678\",\"deploymentGroupId\":\"prfi00samplegroup\"}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "format"), "thingsee");
    cr_assert_str_eq(str_at(o, "kind"), "thingsee");
    cr_assert_str_eq(str_at(o, "shape"), "thingsee-object");
    cr_assert_str_eq(str_at(o, "device_id"), "TSEN01ABC12345678");
    cr_assert_str_eq(str_at(o, "env"), "pr");
    cr_assert_str_eq(str_at(o, "country"), "fi");
    cr_assert_str_eq(str_at(o, "group_id"), "prfi00samplegroup");
    cr_assert_eq(num_at(o, "tsm_id"), 12100);
    cr_assert_eq(num_at(o, "tsm_ev"), 10);
    cr_assert_str_eq(str_at(o, "gateway"), "TSGW06ABC12345678");
    cr_assert_str_eq(str_at(o, "group"), "prfi00samplegroup");
    cr_assert_str_eq(str_at(o, "measured_at"), "2018-03-07T09:50:21.000Z");
    cr_assert_eq(num_at(o, "measured_at_received"), 1520416221);
    cr_assert_str_eq(str_at(o, "measured_at_source"), "tsmTs");
    cr_assert_eq(cJSON_GetArraySize(at(o, "measurements")), 4);
    cr_assert_str_eq(str_at(o, "type"), "barometricPressure");
    cr_assert_str_eq(str_at(o, "measurements.0.type"), "barometricPressure");
    cr_assert_str_eq(str_at(o, "measurements.0.field"), "airp");
    assert_near(num_at(o, "measurements.0.value"), 1013.64599);
    cr_assert_str_eq(str_at(o, "measurements.0.unit"), "hPa");
    assert_near(num_at(o, "measurements.0.value_received"), 101364.599);
    cr_assert_str_eq(str_at(o, "measurements.0.unit_received"), "Pa");
    cr_assert_str_eq(str_at(o, "measurements.1.type"), "ambientLight");
    cr_assert_str_eq(str_at(o, "measurements.1.unit"), "lux");
    cr_assert_str_eq(str_at(o, "measurements.2.type"), "ambientTemperature");
    assert_near(num_at(o, "measurements.2.value"), 21.3);
    cr_assert_str_eq(str_at(o, "measurements.2.unit"), "°C");
    cr_assert_null(at(o, "measurements.2.value_received"), "no conversion, no copy");
    cr_assert_str_eq(str_at(o, "measurements.3.type"), "humidity");
    cr_assert_str_eq(str_at(o, "measurements.3.measured_at"), "2018-03-07T09:50:21.000Z");
    cr_assert_eq(num_at(o, "measurements.3.record"), 0);
    cr_assert(has_note(o, "airp Pa -> hPa"));
}

Test(decode, thingsee_co2_and_presence_examples_decode)
{
    cJSON *o = dec("cloudext/json/pr/ch/prch00switzerland/TSAR02TG122043408/24100",
                   "{\"tsmId\":24100,\"tsmTuid\":\"TSAR02TG122043408\",\"tsmTs\":1657105690,"
                   "\"tsmGw\":\"TSGW06EWK14800496\",\"tsmEv\":10,\"deploymentGroupId\":"
                   "\"prch00switzerland\",\"carbonDioxide\":460,\"status\":0}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "measurements.0.type"), "co2");
    cr_assert_eq(num_at(o, "measurements.0.value"), 460);
    cr_assert_str_eq(str_at(o, "measurements.0.unit"), "ppm");
    cr_assert_str_eq(str_at(o, "measurements.1.type"), "status", "unmapped field kept");
    cr_assert(has_note(o, "field status not mapped"));

    o = dec("cloudext/json/pr/ch/prch00switzerland/TSPR04EZU20400472/2100",
            "{\"tsmId\":2100,\"tsmTuid\":\"TSPR04EZU20400472\",\"tsmTs\":1657195118,\"tsmGw\":"
            "\"TSGW06EWK14800496\",\"tsmEv\":10,\"deploymentGroupId\":\"prch00switzerland\","
            "\"state\":0}");
    assert_ok(o);
    cr_assert_str_eq(str_at(o, "type"), "occupancyStatus");
    cr_assert(!bool_at(o, "measurements.0.value"));
    cr_assert_eq(num_at(o, "measurements.0.value_received"), 0);
}

Test(decode, thingsee_array_with_battery_and_decimal_timestamps)
{
    cJSON *o = dec("cloudext/json/pr/fi/g1/TSPOD6789/1110",
                   "[{\"tsmId\":1110,\"tsmEv\":101,\"tsmTs\":1492603998,\"tsmTuid\":\"TSPOD6789\","
                   "\"tsmGw\":\"TSGW1234\",\"batl\":34.6,\"chrg\":2},"
                   "{\"tsmId\":1110,\"tsmEv\":10,\"tsmTs\":1492604000.25,\"batl\":34.5}]");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "shape"), "thingsee-array");
    cr_assert_eq(num_at(o, "records"), 2);
    cr_assert_str_eq(str_at(o, "type"), "batteryPercentage");
    cr_assert_str_eq(str_at(o, "measurements.0.unit"), "%");
    assert_near(num_at(o, "measurements.0.value"), 34.6);
    cr_assert_str_eq(str_at(o, "measurements.1.field"), "chrg");
    cr_assert_eq(num_at(o, "measurements.2.record"), 1);
    cr_assert_eq(num_at(o, "measurements.2.tsm_ev"), 10);
    cr_assert_str_eq(str_at(o, "measurements.2.measured_at"), "2017-04-19T12:13:20.250Z");
    cr_assert_eq((int64_t)num_at(o, "measurements.2.measured_at_ms"), 1492604000250LL);
}

Test(decode, thingsee_acceleration_in_milli_g_becomes_one_orientation_in_g)
{
    cJSON *o = dec(TSN "TSEN01ABC12345678/1111",
                   "{\"tsmId\":1111,\"tsmEv\":9,\"tsmTs\":1520416221,\"accx\":20,\"accy\":-10,"
                   "\"accz\":1000}");

    assert_ok(o);
    cr_assert_eq(cJSON_GetArraySize(at(o, "measurements")), 1);
    cr_assert_str_eq(str_at(o, "measurements.0.type"), "deviceOrientation");
    cr_assert_str_eq(str_at(o, "measurements.0.field"), "accx,accy,accz");
    assert_near(num_at(o, "measurements.0.value.accx"), 0.02);
    assert_near(num_at(o, "measurements.0.value.accy"), -0.01);
    assert_near(num_at(o, "measurements.0.value.accz"), 1.0);
    cr_assert_eq(num_at(o, "measurements.0.value_received.accz"), 1000);
    cr_assert_str_eq(str_at(o, "measurements.0.unit"), "g");
    cr_assert_str_eq(str_at(o, "measurements.0.unit_received"), "mG");
    cr_assert(has_note(o, "mG -> g"));
}

Test(decode, thingsee_hall_zero_open_one_closed_becomes_magnetic_state)
{
    cJSON *o = dec(TSN "TSEN01ABC12345678/12101",
                   "[{\"tsmId\":12101,\"tsmTs\":1520416221,\"hall\":1,\"hallCount\":15},"
                   "{\"tsmId\":12101,\"tsmTs\":1520416222,\"hall\":0}]");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "measurements.0.type"), "magneticState");
    cr_assert(!bool_at(o, "measurements.0.value"), "1 = closed = not open");
    cr_assert_str_eq(str_at(o, "measurements.1.type"), "magneticStateChanges");
    cr_assert_eq(num_at(o, "measurements.1.value"), 15);
    cr_assert_str_eq(str_at(o, "measurements.1.unit"), "count");
    cr_assert(bool_at(o, "measurements.2.value"), "0 = open");
    cr_assert(has_note(o, "polarity: hall"));
}

Test(decode, thingsee_remaining_profiles_map_to_their_types)
{
    static const struct {
        const char *payload, *type, *unit;
        double value;
    } cases[] = {
        {"{\"tsmId\":13100,\"tsmTs\":1,\"moveCount\":7}", "movementDetections", "count", 7},
        {"{\"tsmId\":17100,\"tsmTs\":1,\"dist\":1250,\"status\":0}", "distance", "mm", 1250},
        {"{\"tsmId\":17200,\"tsmTs\":1,\"dist\":900}", "distance", "mm", 900},
        {"{\"tsmId\":24101,\"tsmTs\":1,\"tvoc\":125}", "tvoc", "ppb", 125},
        {"{\"tsmId\":12102,\"tsmTs\":1,\"resistance\":10000}", "electricalResistance", "Ω", 10000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *o = dec(TSN "TSX/1", cases[i].payload);

        assert_ok(o);
        cr_assert_str_eq(str_at(o, "measurements.0.type"), cases[i].type);
        cr_assert_str_eq(str_at(o, "measurements.0.unit"), cases[i].unit);
        assert_near(num_at(o, "measurements.0.value"), cases[i].value);
        cr_assert_str_eq(str_at(o, "measured_at"), "1970-01-01T00:00:01.000Z");
        free_outputs();
    }
}

Test(decode, thingsee_counter_and_vibration_groups_become_objects)
{
    cJSON *o = dec(TSN "TSX/13103", "{\"tsmId\":13103,\"tsmTs\":1520416221,\"in\":3,\"out\":1,"
                                    "\"totalIn\":100,\"totalOut\":90}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "measurements.0.type"), "directionalMovement");
    cr_assert_eq(num_at(o, "measurements.0.value.entries"), 3);
    cr_assert_eq(num_at(o, "measurements.0.value.exits"), 1);
    cr_assert_str_eq(str_at(o, "measurements.1.field"), "totalIn");

    o = dec(TSN "TSX/16100",
            "{\"tsmId\":16100,\"tsmTs\":1520416221,\"activityLevel\":0.05,\"energyLevel\":1.2}");
    assert_ok(o);
    cr_assert_str_eq(str_at(o, "measurements.0.type"), "vibration");
    assert_near(num_at(o, "measurements.0.value.level"), 0.05);
    assert_near(num_at(o, "measurements.0.value.total"), 1.2);
}

Test(decode, thingsee_state_outside_profile_2100_is_not_occupancy)
{
    cJSON *o = dec(TSN "TSX/9999", "{\"tsmId\":9999,\"tsmTs\":1,\"state\":1}");

    assert_ok(o);
    cr_assert_str_eq(str_at(o, "measurements.0.type"), "state");
}

Test(decode, thingsee_errors_are_reported)
{
    assert_error(dec(TSN "TSX/1", "[]"), "empty-array");
    assert_error(dec(TSN "TSX/1", "[1]"), "not-object");
    assert_error(dec(TSN "TSX/1", "42"), "not-object");
    assert_error(dec(TSN "TSX/1", "{\"tsmId\":1,\"temp\":2}"), "missing-timestamp");
    assert_error(dec(TSN "TSX/1", "{\"tsmTs\":\"yesterday\",\"temp\":2}"), "invalid-timestamp");
    assert_error(dec(TSN "TSX/1", "{\"tsmTs\":1e300,\"temp\":2}"), "invalid-timestamp");
    assert_error(dec(TSN "TSX/1", "{\"tsmTs\":1,\"temp\":\"warm\"}"), "value-type");
    assert_error(dec(TSN "TSX/1", "{\"tsmTs\":1,\"tsmId\":\"x\"}"), "value-type");
    assert_error(dec("cloudext/json/pr/fi/g", "{\"tsmTs\":1}"), "topic-too-short");
    assert_error(dec("cloudext/json/pr/fi/g/t/1/extra", "{\"tsmTs\":1}"), "topic-too-long");
}

Test(decode, thingsee_error_in_a_later_record_keeps_the_first_records_type_and_time)
{
    cJSON *o = dec(TSN "TSX/1", "[{\"tsmTs\":10,\"temp\":1},{\"temp\":2}]");

    assert_error(o, "missing-timestamp");
    cr_assert_str_eq(str_at(o, "type"), "ambientTemperature");
    cr_assert_str_eq(str_at(o, "measured_at"), "1970-01-01T00:00:10.000Z");
}

/* ---- malformed input ---- */

Test(decode, payload_that_is_not_json_is_an_error_with_topic_info)
{
    cJSON *o = dec(M("co2"), "hello");

    assert_error(o, "not-json");
    cr_assert_str_eq(str_at(o, "type"), "co2");
    cr_assert_str_eq(str_at(o, "device_id"), DEV);
    assert_error(dec(M("co2"), "{" TS ",\"value\":1} trailing"), "not-json");
    assert_error(dec(M("co2"), "{\"a\":\"x\ty\"}"), "not-json");
}

Test(decode, truncated_json_is_reported_as_truncated)
{
    assert_error(dec(M("co2"), "{" TS ",\"value\":"), "truncated-json");
    assert_error(dec(M("co2"), "{\"measured_at\":\"2026-02"), "truncated-json");
    assert_error(dec(M("co2"), "{"), "truncated-json");
}

Test(decode, wrong_value_types_are_errors)
{
    assert_error(dec(M("co2"), "{" TS ",\"value\":\"850\"}"), "value-type");
    assert_error(dec(M("occupancyStatus"), "{" TS ",\"value\":\"yes\"}"), "value-type");
    assert_error(dec(M("occupancyStatus"), "{" TS ",\"value\":2}"), "value-type");
    assert_error(dec(M("deviceRole"), "{" TS ",\"value\":3}"), "value-type");
    assert_error(dec(M("directionalMovement"), "{" TS ",\"value\":5}"), "value-type");
    assert_error(dec(M("directionalMovement"), "{" TS ",\"value\":{\"entries\":\"x\"}}"),
                 "value-type");
    assert_error(dec(M("deviceOrientation"), "{" TS ",\"value\":{\"foo\":1}}"), "value-type");
    assert_error(dec(M("vibration"), "{" TS ",\"value\":null}"), "value-type");
    assert_error(dec(M("magneticState"), "{" TS ",\"value\":{\"state\":1}}"), "value-type");
    assert_error(dec(M("positionZone"), "{" TS ",\"value\":7}"), "value-type");
}

Test(decode, missing_and_invalid_timestamps_are_errors)
{
    cJSON *o = dec(M("co2"), "{\"value\":850}");

    assert_error(o, "missing-timestamp");
    cr_assert_null(at(o, "measured_at"));
    assert_error(dec(M("co2"), "{\"measured_at\":\"yesterday\",\"value\":850}"),
                 "invalid-timestamp");
    assert_error(dec(M("co2"), "{\"measured_at\":1738060200,\"value\":850}"), "invalid-timestamp");
    assert_error(dec(M("co2"), "{\"measured_at\":\"2026-02-30T10:00:00Z\",\"value\":850}"),
                 "invalid-timestamp");
    assert_error(dec(M("co2"), "{\"measured_at\":\"2026-02-05T10:30:45\",\"value\":850}"),
                 "invalid-timestamp");
}

Test(decode, missing_value_is_an_error)
{
    assert_error(dec(M("co2"), "{" TS "}"), "missing-value");
    assert_error(dec(M("co2"), "{" TS ",\"a\":1,\"b\":2}"), "missing-value");
}

Test(decode, non_utf8_payload_is_an_error)
{
    static const unsigned char bad[] =
        "{\"measured_at\":\"2026-02-05T10:30:45Z\",\"value\":\"\xff\"}";
    static const unsigned char overlong[] = "{\"value\":\"\xc0\xaf\"}";
    static const unsigned char surrogate[] = "{\"value\":\"\xed\xa0\x80\"}";

    assert_error(decode_bytes(M("deviceRole"), bad, sizeof(bad) - 1), "invalid-utf8");
    assert_error(decode_bytes(M("deviceRole"), overlong, sizeof(overlong) - 1), "invalid-utf8");
    assert_error(decode_bytes(M("deviceRole"), surrogate, sizeof(surrogate) - 1), "invalid-utf8");
    assert_ok(dec(M("deviceRole"), "{" TS ",\"value\":\"gåteway ✓ \xf0\x9f\x98\x80\"}"));
}

Test(decode, payload_with_nul_bytes_is_an_error_not_a_truncation)
{
    static const unsigned char nul[] = "{\"measured_at\":\"2026-02-05T10:30:45Z\",\"value\":1}\0x";

    assert_error(decode_bytes(M("co2"), nul, sizeof(nul) - 1), "not-json");
}

Test(decode, deeply_nested_payload_is_refused_before_parsing)
{
    char payload[4096];
    size_t n = 0;

    n += (size_t)snprintf(payload, sizeof(payload), "{" TS ",\"value\":");
    for (int i = 0; i < 1500; i++)
        payload[n++] = '[';
    for (int i = 0; i < 1500; i++)
        payload[n++] = ']';
    payload[n++] = '}';
    payload[n] = '\0';
    assert_error(dec(M("co2"), payload), "too-deep");
}

Test(decode, huge_numbers_are_errors_not_infinities)
{
    assert_error(dec(M("co2"), "{" TS ",\"value\":1e999}"), "number-out-of-range");
    assert_error(dec(M("co2"), "{" TS ",\"value\":-1e999}"), "number-out-of-range");
    assert_ok(dec(M("co2"), "{" TS ",\"value\":1e300}"));
}

Test(decode, empty_payload_is_an_error)
{
    assert_error(decode_bytes(M("co2"), NULL, 0), "empty-payload");
    assert_error(dec(M("co2"), ""), "empty-payload");
}

Test(decode, json_that_is_not_an_object_is_an_error)
{
    assert_error(dec(M("co2"), "[1,2]"), "not-object");
    assert_error(dec(M("co2"), "850"), "not-object");
    assert_error(dec(M("co2"), "\"x\""), "not-object");
}

Test(decode, non_haltian_topics_are_errors_that_keep_the_topic)
{
    cJSON *o = dec("sensors/kitchen/temp", "{" TS ",\"value\":1}");

    assert_error(o, "not-haltian-topic");
    cr_assert_str_eq(str_at(o, "format"), "unknown");
    cr_assert_str_eq(str_at(o, "topic"), "sensors/kitchen/temp");
    assert_error(dec("haltian-iot", "{}"), "not-haltian-topic");
    o = dec("haltian-iot/wirepas/gw-event/received_data", "{}");
    assert_error(o, "not-event-topic");
    cr_assert_str_eq(str_at(o, "format"), "haltian");
}

Test(decode, topics_with_wrong_level_counts_are_errors)
{
    cJSON *o = dec("haltian-iot/events/i/k/measurements", "{" TS ",\"value\":1}");

    assert_error(o, "topic-too-short");
    cr_assert_str_eq(str_at(o, "kind"), "measurements");
    cr_assert_null(at(o, "type"));
    assert_error(dec("haltian-iot/events/i", "{}"), "topic-too-short");
    assert_error(dec(H "/measurements/co2", "{" TS ",\"value\":1}"), "topic-too-short");
    assert_error(dec(M("co2") "/more", "{" TS ",\"value\":1}"), "topic-too-long");
    assert_error(dec("haltian-iot/events/i/k/measurements//d", "{}"), "topic-empty-level");
}

Test(decode, invalid_topics_are_errors)
{
    assert_error(dec("", "{}"), "invalid-topic");
    assert_error(dec("haltian-iot/events/\xff/k/measurements/co2/d", "{}"), "invalid-topic");
}

Test(decode, null_arguments_are_rejected_without_output)
{
    cJSON *o = NULL;
    struct hc_decode_index idx;

    cr_assert_eq(hc_decode_message(NULL, (const unsigned char *)"{}", 2, &o, NULL), HC_ERR_INVALID);
    cr_assert_eq(hc_decode_message(M("co2"), (const unsigned char *)"{}", 2, NULL, NULL),
                 HC_ERR_INVALID);
    cr_assert_eq(hc_decode_message(M("co2"), NULL, 5, &o, NULL), HC_ERR_INVALID);
    cr_assert_null(o);
    hc_decode_index(NULL, NULL, 0, &idx);
    cr_assert_eq(idx.has_error, 1);
    hc_decode_index(M("co2"), NULL, 0, NULL); /* must not crash */
}

/* ---- the index ---- */

Test(decode, index_reads_only_payload_len_bytes)
{
    const char *buf = "{" TS ",\"value\":850}GARBAGE";
    size_t len = strlen(buf) - strlen("GARBAGE");
    struct hc_decode_index idx;

    hc_decode_index(M("CO2"), (const unsigned char *)buf, len, &idx);
    cr_assert_eq(idx.has_error, 0);
    cr_assert_str_eq(idx.kind, "measurements");
    cr_assert_str_eq(idx.type, "co2");
    cr_assert_str_eq(idx.device_id, DEV);
    cr_assert_eq(idx.measured_at_ms, TS_MS);
    cr_assert_eq(idx.has_measured_at, 1);
}

Test(decode, index_truncates_long_device_ids_at_a_character_boundary)
{
    char topic[512], dev[200];
    struct hc_decode_index idx;

    /* 126 ASCII bytes then a 2-byte character: it cannot fit in 127 bytes and is dropped. */
    memset(dev, 'd', 126);
    strcpy(dev + 126, "é");
    snprintf(topic, sizeof(topic), H "/measurements/co2/%s", dev);
    hc_decode_index(topic, (const unsigned char *)"{" TS ",\"value\":1}",
                    strlen("{" TS ",\"value\":1}"), &idx);
    cr_assert_eq(strlen(idx.device_id), 126);
    cr_assert_eq(idx.has_error, 0);
}

Test(decode, thingsee_index_uses_kind_thingsee_first_type_and_tuid)
{
    struct hc_decode_index idx;
    const char *p = "{\"tsmId\":12100,\"temp\":21.3,\"tsmTs\":1520416221.5}";

    hc_decode_index(TSN "TSEN01ABC12345678/12100", (const unsigned char *)p, strlen(p), &idx);
    cr_assert_str_eq(idx.kind, "thingsee");
    cr_assert_str_eq(idx.type, "ambientTemperature");
    cr_assert_str_eq(idx.device_id, "TSEN01ABC12345678");
    cr_assert_eq(idx.measured_at_ms, 1520416221500LL);
}

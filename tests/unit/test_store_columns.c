/*
 * Tests of the decoded columns the store writes beside each message (kind, type, device_id,
 * measured_at_ms, decode_error), read back through the file's messages view with SQLite itself, as
 * a user of the sqlite3 shell sees them, and held against the full decoder's output; Thingsee
 * messages whose type comes from the payload; filters on those columns with and without the
 * secondary indexes.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "hcore/decode.h"
#include "hcore/store.h"
#include "store_helpers.h"

TestSuite(store_columns, .init = make_tmpdir, .fini = remove_tmpdir);

/* --- decoded columns, as a user of the sqlite3 shell sees them ------------------------------- */

/* Inputs around the decoder's shortcut for plain measurements, and shapes beside it. */
static const struct {
    const char *topic, *payload;
    size_t len; /* 0: strlen(payload) */
} decoded_cases[] = {
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":23.5}", 0},
    {HT "ambientTemperature/dev-1", " {\n\t" TS_OK " ,\r\"value\" : -0.125 } \n", 0},
    {HT "ambientTemperature/dev-1", "{\"value\":23.5," TS_OK "}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":0}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":01}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":1.}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":-}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":1e999}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":1E3}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":123456789012345678901234567890}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":\"23.5\"}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":null}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":23.5", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":23.5}x", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":23.5}\x01", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":23.5,\"value\":1}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK "," TS_OK ",\"value\":1}", 0},
    {HT "ambientTemperature/dev-1", "{" TS_OK ",\"value\":23.5,\"extra\":1}", 0},
    {HT "ambientTemperature/dev-1", "{\"measured_at\":\"2026-02-30T10:30:45Z\",\"value\":1}", 0},
    {HT "ambientTemperature/dev-1",
     "{\"measured_at\":\"2026-02-05 10:30:45.1234567+02:00\","
     "\"value\":1}",
     0},
    {HT "ambientTemperature/dev-1", "{\"measured_at\":\"\",\"value\":1}", 0},
    {HT "ambientTemperature/dev-1", "{\"measured_at\":\"2026-02-05T10:30:45\\u005a\",\"value\":1}",
     0},
    {HT "ambientTemperature/dev-1", "{\"measured_at\":1770287445,\"value\":1}", 0},
    {HT "ambientTemperature/dev-1", "{\"received_at\":\"2026-02-05T10:30:45Z\",\"value\":1}", 0},
    {HT "ambientTemperature/dev-1", "{\"measured_at\":\"1969-12-31T23:59:59.999Z\",\"value\":1}",
     0},
    {HT "ambientTemperature/dev-1", "{\"ambientTemperature\":21.5," TS_OK "}", 0},
    {HT "batteryPercentage/dev-2", "{" TS_OK ",\"value\":99}", 0},
    {HT "batteryPercentage/dev-2", "{" TS_OK ",\"value\":true}", 0},
    {HT "batteryPercentage/dev-2", "{" TS_OK ",\"value\":9007199254740993}", 0},
    {HT "batteryPercentage/dev-2", "{" TS_OK ",\"value\":-900719925474.099}", 0},
    {HT "batteryPercentage/dev-2", "{" TS_OK ",\"value\":1234567890.12345}", 0},
    {HT "distance/dev-2", "{" TS_OK ",\"value\":1.5}", 0},
    {HT "radar_distance/dev-2", "{" TS_OK ",\"value\":1.5}", 0},
    {HT "CO2/dev-2", "{" TS_OK ",\"value\":400}", 0},
    {HT "occupancyStatus/dev-2", "{" TS_OK ",\"value\":1}", 0},
    {HT "somethingNew/dev-2", "{" TS_OK ",\"value\":1}", 0},
    {HT "ambientTemperature", "{" TS_OK ",\"value\":1}", 0},
    {HT "ambientTemperature/dev-1/extra", "{" TS_OK ",\"value\":1}", 0},
    {"haltian-iot/events/intg/key/notifications/deviceOffline", "{\"value\":true}", 0},
    {"haltian-iot/events/intg/key/messages/rawData/dev-3", "\x00\xff", 2},
    {"haltian-iot/events/intg/key/payloads/x/dev-3",
     "{\"received_at\":\"2026-02-05T10:30:45Z\",\"value\":{}}", 0},
    {"haltian-iot/elsewhere/x", "{}", 0},
    {"not/haltian", "{" TS_OK ",\"value\":1}", 0},
    {TSN "1110", "{\"tsmId\":1110,\"tsmTs\":1770287445,\"temp\":21.5}", 0},
    {TSN "1110", "{\"tsmId\":1110,\"tsmTs\":1770287446,\"humd\":40}", 0},
    {TSN "1110", "[{\"tsmTs\":1770287447,\"airp\":101325},{\"tsmTs\":1770287448,\"temp\":2}]", 0},
    {TSN "1110", "{\"tsmTs\":1770287449,\"someField\":1}", 0},
    {TSN "1110", "{\"tsmTs\":\"soon\",\"temp\":1}", 0},
    {TSN "1110", "not json", 0},
};

static const char *member_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *column_str(sqlite3_stmt *q, int i)
{
    const unsigned char *v = sqlite3_column_text(q, i);
    return v ? (const char *)v : "(null)";
}

Test(store_columns, messages_view_shows_the_decoded_columns_the_full_decoder_reports)
{
    const char *path = tmp_path("decoded.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    int64_t s = begin_session(st, 0);
    size_t n = sizeof(decoded_cases) / sizeof(decoded_cases[0]);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;

    for (size_t i = 0; i < n; i++) {
        size_t len = decoded_cases[i].len ? decoded_cases[i].len : strlen(decoded_cases[i].payload);
        append(st, s, (int64_t)i + 1, decoded_cases[i].topic, decoded_cases[i].payload, len);
    }
    close_ok(st);

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT kind, type, device_id, measured_at_ms, decode_error "
                                    "FROM messages ORDER BY seq",
                                    -1, &q, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    for (size_t i = 0; i < n; i++) {
        const char *topic = decoded_cases[i].topic;
        size_t len = decoded_cases[i].len ? decoded_cases[i].len : strlen(decoded_cases[i].payload);
        cJSON *o = NULL;
        const cJSON *ms;
        hc_error err = HC_ERROR_INIT;

        cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "row %zu", i + 1);
        cr_assert_eq(hc_decode_message(topic, (const unsigned char *)decoded_cases[i].payload, len,
                                       &o, &err),
                     HC_OK, "%s", err.message);
        ms = cJSON_GetObjectItemCaseSensitive(o, "measured_at_ms");
        cr_assert_str_eq(column_str(q, 0), member_str(o, "kind"), "kind of case %zu", i);
        cr_assert_str_eq(column_str(q, 1), member_str(o, "type"), "type of case %zu", i);
        cr_assert_str_eq(column_str(q, 2), member_str(o, "device_id"), "device of case %zu", i);
        if (ms)
            cr_assert_eq(sqlite3_column_int64(q, 3), (int64_t)ms->valuedouble,
                         "measured_at_ms of case %zu", i);
        else
            cr_assert_eq(sqlite3_column_type(q, 3), SQLITE_NULL, "measured_at_ms of case %zu", i);
        cr_assert_eq(sqlite3_column_int(q, 4), cJSON_HasObjectItem(o, "error") ? 1 : 0,
                     "decode_error of case %zu (%s)", i, decoded_cases[i].payload);
        cJSON_Delete(o);
    }
    cr_assert_eq(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

Test(store_columns, thingsee_messages_take_their_type_from_the_payload_in_filters_and_counts)
{
    hc_store *st = open_ok(tmp_path("thingsee.db"), HC_STORE_CREATE);
    int64_t s = begin_session(st, 0), seqs[4];
    struct hc_select sel = {0};
    const char *temp[] = {"ambient_temperature"}, *hum[] = {"humidity"}, *kind[] = {"thingsee"};
    const char *dev[] = {"TSPOD1"}, *both[] = {"humidity", "co2"};
    struct group_log g = {0};
    hc_error err = HC_ERROR_INIT;

    append_text(st, s, 1, TSN "1110", "{\"tsmTs\":1770287445,\"temp\":21.5}");
    append_text(st, s, 2, TSN "1110", "{\"tsmTs\":1770287446,\"humd\":40}");
    append_text(st, s, 3, T_HUM, P_HUM);
    append_text(st, s, 4, TSN "1110", "{\"tsmTs\":1770287447,\"humd\":41}");

    sel.types = temp;
    sel.n_types = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 4), 1);
    cr_assert_eq(seqs[0], 1);
    sel.types = hum;
    cr_assert_eq(select_seqs(st, &sel, seqs, 4), 3);
    cr_assert_eq(seqs[0], 2);
    cr_assert_eq(seqs[1], 3);
    cr_assert_eq(seqs[2], 4);
    sel.types = both;
    sel.n_types = 2;
    cr_assert_eq(select_seqs(st, &sel, NULL, 0), 3);
    sel.kinds = kind;
    sel.n_kinds = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 4), 2, "humidity AND thingsee");
    sel.n_types = 0;
    sel.devices = dev;
    sel.n_devices = 1;
    cr_assert_eq(select_seqs(st, &sel, NULL, 0), 3);

    cr_assert_eq(hc_store_count_by(st, NULL, "type", collect_group, &g, &err), HC_OK, "%s",
                 err.message);
    cr_assert_eq(g.n, 2);
    cr_assert_str_eq(g.keys[0], "humidity");
    cr_assert_eq(g.counts[0], 3);
    cr_assert_str_eq(g.keys[1], "ambientTemperature");
    cr_assert_eq(g.counts[1], 1);
    memset(&g, 0, sizeof(g));
    cr_assert_eq(hc_store_count_by(st, NULL, "kind", collect_group, &g, &err), HC_OK);
    cr_assert_str_eq(g.keys[0], "thingsee");
    cr_assert_eq(g.counts[0], 3);
    cr_assert_str_eq(g.keys[1], "measurements");
    close_ok(st);
}

Test(store_columns, filters_give_the_same_rows_once_secondary_indexes_exist)
{
    hc_store *st = open_ok(tmp_path("indexed.db"), HC_STORE_CREATE);
    int64_t s = begin_session(st, 0), before[3], after[3];
    struct hc_select sel = {0};
    const char *hum[] = {"humidity"}, *dev[] = {"dev-1"};
    hc_error err = HC_ERROR_INIT;

    append_text(st, s, 1, TSN "1110", "{\"tsmTs\":1770287446,\"humd\":40}");
    append_text(st, s, 2, T_TEMP, P_TEMP);
    append_text(st, s, 3, T_HUM, P_HUM);
    sel.types = hum;
    sel.n_types = 1;
    cr_assert_eq(select_seqs(st, &sel, before, 3), 2);
    cr_assert_eq(hc_store_index(st, &err), HC_OK, "%s", err.message);
    cr_assert_eq(select_seqs(st, &sel, after, 3), 2);
    cr_assert_eq(after[0], before[0]);
    cr_assert_eq(after[1], before[1]);
    sel.n_types = 0;
    sel.devices = dev;
    sel.n_devices = 1;
    cr_assert_eq(select_seqs(st, &sel, after, 3), 2);
    cr_assert_eq(after[0], 2);
    cr_assert_eq(after[1], 3);
    close_ok(st);
}

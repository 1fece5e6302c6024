/*
 * Tests of the recording store on real SQLite files in a temporary directory: byte-exact round
 * trips, arrival order, every selection filter, sessions, meta, flush visibility to a second
 * connection, refusal of files that are not (intact, readable) recordings, open modes, indexes,
 * the absence of deleted bytes after a vacuum, reads that leave every byte as it was, the flush
 * deadline, and checks of a path and of a whole file. The decoded columns are tested in
 * test_store_columns.c, summaries and time windows in test_store_summary.c.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hcore/store.h"
#include "store_helpers.h"

TestSuite(store, .init = make_tmpdir, .fini = remove_tmpdir);

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t n = strlen(needle), len;
    char *buf;
    bool found = false;

    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, len, f), len);
    fclose(f);
    for (size_t i = 0; i + n <= len && !found; i++)
        found = memcmp(buf + i, needle, n) == 0;
    free(buf);
    return found;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Overwrites 4 big-endian bytes of the SQLite header (user_version at 60, application_id 68). */
static void patch_header_u32(const char *path, long offset, uint32_t value)
{
    unsigned char b[4] = {(unsigned char)(value >> 24), (unsigned char)(value >> 16),
                          (unsigned char)(value >> 8), (unsigned char)value};
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, offset, SEEK_SET), 0);
    cr_assert_eq(fwrite(b, 1, 4, f), 4);
    cr_assert_eq(fclose(f), 0);
}

static void make_small_recording(const char *path, int rows)
{
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    int64_t s = begin_session(st, 1000);
    for (int i = 0; i < rows; i++)
        append_text(st, s, 1000 + i, "a/b", "{\"value\":1}");
    close_ok(st);
}

static hc_err open_read_err(const char *path, hc_error *err)
{
    hc_store *st = NULL;
    hc_err rc = hc_store_open(path, HC_STORE_READ, &st, err);
    cr_assert_null(st);
    return rc;
}

/* --- round trip ------------------------------------------------------------------------------- */

Test(store, append_then_query_returns_every_payload_byte_for_byte)
{
    static const unsigned char binary[] = {0x00, 0xff, 0x80, 0x01, 0x00, 0xfe};
    static const char nul_inside[] = "before\0after";
    static const unsigned char bad_utf8[] = {0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1};
    const char *path = tmp_path("roundtrip.db");
    size_t big_len = 1024 * 1024;
    unsigned char *big = malloc(big_len);
    struct {
        const void *data;
        size_t len;
    } cases[] = {{binary, sizeof(binary)},
                 {"", 0},
                 {nul_inside, sizeof(nul_inside) - 1},
                 {bad_utf8, sizeof(bad_utf8)},
                 {big, big_len}};
    size_t n_cases = sizeof(cases) / sizeof(cases[0]);
    hc_error err = HC_ERROR_INIT;
    hc_cursor *cur = NULL;
    struct hc_msg m;
    hc_store *st;
    int64_t s;

    cr_assert_not_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i * 31 + 7);
    st = open_ok(path, HC_STORE_CREATE);
    s = begin_session(st, 5000000000LL);
    for (size_t i = 0; i < n_cases; i++) {
        struct hc_msg in = {0};
        int64_t seq = 0;
        in.session_id = s;
        in.received_at_ns = 5000000000LL + (int64_t)i;
        in.mono_ns = 10 + (int64_t)i;
        in.topic = "t/x";
        in.payload = cases[i].len ? cases[i].data : NULL;
        in.payload_len = cases[i].len;
        in.qos = (int)(i % 3);
        in.retain = i == 1;
        in.dup = i == 2;
        cr_assert_eq(hc_store_append(st, &in, &seq, &err), HC_OK, "%s", err.message);
        cr_assert_eq(seq, (int64_t)i + 1);
    }
    close_ok(st);

    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_query(st, NULL, &cur, &err), HC_OK, "%s", err.message);
    for (size_t i = 0; i < n_cases; i++) {
        cr_assert_eq(hc_cursor_next(cur, &m, &err), HC_OK, "%s", err.message);
        cr_assert_eq(m.seq, (int64_t)i + 1);
        cr_assert_eq(m.session_id, s);
        cr_assert_eq(m.received_at_ns, 5000000000LL + (int64_t)i);
        cr_assert_eq(m.mono_ns, 10 + (int64_t)i);
        /* session started_at (5 s) + mono */
        cr_assert_eq(m.timeline_ns, 5000000000LL + 10 + (int64_t)i);
        cr_assert_str_eq(m.topic, "t/x");
        cr_assert_eq(m.payload_len, cases[i].len, "case %zu: length %zu", i, m.payload_len);
        if (cases[i].len)
            cr_assert_eq(memcmp(m.payload, cases[i].data, cases[i].len), 0, "case %zu", i);
        cr_assert_eq(m.qos, (int)(i % 3));
        cr_assert_eq(m.retain, i == 1);
        cr_assert_eq(m.dup, i == 2);
    }
    cr_assert_eq(hc_cursor_next(cur, &m, &err), HC_DONE);
    hc_cursor_free(cur);
    close_ok(st);
    free(big);
}

Test(store, query_returns_messages_in_arrival_order_even_when_the_clock_went_back)
{
    hc_store *st = open_ok(tmp_path("order.db"), HC_STORE_CREATE);
    int64_t s = begin_session(st, 0);
    int64_t seqs[3];

    append_text(st, s, 300, "a", "first");
    append_text(st, s, 100, "b", "second");
    append_text(st, s, 200, "c", "third");
    cr_assert_eq(select_seqs(st, NULL, seqs, 3), 3);
    cr_assert_eq(seqs[0], 1);
    cr_assert_eq(seqs[1], 2);
    cr_assert_eq(seqs[2], 3);
    close_ok(st);
}

/* --- filters -------------------------------------------------------------------------------- */

Test(store, time_window_includes_since_and_excludes_until)
{
    int64_t s1, s2, seqs[5];
    hc_store *st = filter_fixture(&s1, &s2);
    struct hc_select sel = {0};

    sel.has_since = true;
    sel.since_ns = 200;
    sel.has_until = true;
    sel.until_ns = 400;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[0], 2);
    cr_assert_eq(seqs[1], 3);

    sel.has_until = false;
    cr_assert_eq(select_seqs(st, &sel, NULL, 0), 4);
    sel.has_since = false;
    sel.has_until = true;
    sel.until_ns = 100;
    cr_assert_eq(select_seqs(st, &sel, NULL, 0), 0);
    close_ok(st);
}

Test(store, topic_filters_with_plus_and_hash_select_matching_topics)
{
    int64_t s1, s2, seqs[5];
    hc_store *st = filter_fixture(&s1, &s2);
    struct hc_select sel = {0};
    const char *plus[] = {"haltian-iot/events/+/+/measurements/+/dev-1"};
    const char *hash[] = {"haltian-iot/events/intg/key/notifications/#"};
    const char *both[] = {"other/#", T_HUM};
    const char *everything[] = {"#"};
    const char *invalid[] = {"a/#/b"};
    hc_error err = HC_ERROR_INIT;
    hc_cursor *cur = NULL;

    sel.topic_filters = plus;
    sel.n_topic_filters = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[0], 1);
    cr_assert_eq(seqs[1], 2);

    sel.topic_filters = hash;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 1);
    cr_assert_eq(seqs[0], 4);

    sel.topic_filters = both;
    sel.n_topic_filters = 2;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[0], 2);
    cr_assert_eq(seqs[1], 5);

    sel.topic_filters = everything;
    sel.n_topic_filters = 1;
    cr_assert_eq(select_seqs(st, &sel, NULL, 0), 5);

    sel.topic_filters = invalid;
    cr_assert_eq(hc_store_query(st, &sel, &cur, &err), HC_ERR_INVALID);
    cr_assert_null(cur);
    cr_assert(strstr(err.message, "a/#/b") != NULL, "%s", err.message);
    close_ok(st);
}

Test(store, kind_type_and_device_filters_use_the_decoded_columns)
{
    int64_t s1, s2, seqs[5];
    hc_store *st = filter_fixture(&s1, &s2);
    struct hc_select sel = {0};
    const char *kinds[] = {"notifications"};
    const char *types[] = {"ambientTemperature"};
    const char *alias[] = {"ambient_temperature"};
    const char *types2[] = {"humidity", "ambientTemperature"};
    const char *devices[] = {"dev-1"};

    sel.kinds = kinds;
    sel.n_kinds = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 1);
    cr_assert_eq(seqs[0], 4);
    sel.n_kinds = 0;

    /* The alias in the topic of message 3 was stored under its canonical name. */
    sel.types = types;
    sel.n_types = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[0], 1);
    cr_assert_eq(seqs[1], 3);
    sel.types = alias;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[0], 1);
    cr_assert_eq(seqs[1], 3);
    sel.types = types2;
    sel.n_types = 2;
    cr_assert_eq(select_seqs(st, &sel, NULL, 0), 3);
    sel.n_types = 0;

    sel.devices = devices;
    sel.n_devices = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[0], 1);
    cr_assert_eq(seqs[1], 2);
    close_ok(st);
}

Test(store, session_limit_and_combined_filters_are_anded)
{
    int64_t s1, s2, seqs[5];
    hc_store *st = filter_fixture(&s1, &s2);
    struct hc_select sel = {0};
    int64_t sessions[1];
    const char *types[] = {"ambientTemperature"};
    hc_error err = HC_ERROR_INIT;
    hc_cursor *cur = NULL;

    sessions[0] = s2;
    sel.sessions = sessions;
    sel.n_sessions = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[0], 4);
    cr_assert_eq(seqs[1], 5);

    sel.limit = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 1);
    cr_assert_eq(seqs[0], 4);

    /* Type AND time window AND session: message 3 only. */
    sessions[0] = s1;
    sel.limit = 0;
    sel.types = types;
    sel.n_types = 1;
    sel.has_since = true;
    sel.since_ns = 150;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 1);
    cr_assert_eq(seqs[0], 3);

    sel.limit = -1;
    cr_assert_eq(hc_store_query(st, &sel, &cur, &err), HC_ERR_INVALID);
    close_ok(st);
}

/* --- sessions and meta ----------------------------------------------------------------------- */

struct session_log {
    struct hc_session_row rows[4];
    char reasons[4][64];
    int n;
};

static int collect_session(const struct hc_session_row *row, void *user)
{
    struct session_log *log = user;
    if (log->n < 4) {
        log->rows[log->n] = *row;
        snprintf(log->reasons[log->n], sizeof(log->reasons[0]), "%s", row->end_reason);
        log->n++;
    }
    return 0;
}

Test(store, sessions_record_begin_end_reason_and_message_counts)
{
    hc_store *st = open_ok(tmp_path("sessions.db"), HC_STORE_CREATE);
    hc_error err = HC_ERROR_INIT;
    struct session_log log = {0};
    int64_t s1 = begin_session(st, 100);
    int64_t s2;

    append_text(st, s1, 110, "a", "x");
    append_text(st, s1, 120, "a", "y");
    cr_assert_eq(hc_store_session_end(st, s1, 130, "connection lost: keepalive timeout", &err),
                 HC_OK, "%s", err.message);
    s2 = begin_session(st, 200);
    cr_assert_eq(hc_store_session_end(st, 999, 1, "x", &err), HC_ERR_INVALID);

    cr_assert_eq(hc_store_sessions_each(st, collect_session, &log, &err), HC_OK, "%s", err.message);
    cr_assert_eq(log.n, 2);
    cr_assert_eq(log.rows[0].id, s1);
    cr_assert_eq(log.rows[0].started_at_ns, 100);
    cr_assert_eq(log.rows[0].started_mono_ns, 1000);
    cr_assert_eq(log.rows[0].ended_at_ns, 130);
    cr_assert_str_eq(log.reasons[0], "connection lost: keepalive timeout");
    cr_assert_eq(log.rows[0].messages, 2);
    cr_assert_eq(log.rows[0].first_received_at_ns, 110);
    cr_assert_eq(log.rows[0].last_received_at_ns, 120);
    cr_assert_eq(log.rows[1].id, s2);
    cr_assert_eq(log.rows[1].ended_at_ns, 0);
    cr_assert_str_eq(log.reasons[1], "");
    cr_assert_eq(log.rows[1].messages, 0);
    close_ok(st);
}

Test(store, append_to_an_unknown_session_is_refused)
{
    hc_store *st = open_ok(tmp_path("nosession.db"), HC_STORE_CREATE);
    struct hc_msg m = {0};
    hc_error err = HC_ERROR_INIT;

    m.session_id = 1;
    m.topic = "a";
    cr_assert_eq(hc_store_append(st, &m, NULL, &err), HC_ERR_INVALID);
    cr_assert(strstr(err.message, "no session 1") != NULL, "%s", err.message);
    close_ok(st);
}

static int collect_meta(const char *key, const char *value, void *user)
{
    char *buf = user;
    strcat(buf, key);
    strcat(buf, "=");
    strcat(buf, value);
    strcat(buf, ";");
    return 0;
}

Test(store, meta_values_round_trip_and_list_in_key_order)
{
    const char *path = tmp_path("meta.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    hc_error err = HC_ERROR_INIT;
    char *value = NULL;
    char listing[512] = "";

    cr_assert_eq(hc_store_meta_set(st, "broker", "localhost:1883", &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_store_meta_set(st, "note", "first", &err), HC_OK);
    cr_assert_eq(hc_store_meta_set(st, "note", "ünïcode note", &err), HC_OK);
    close_ok(st);

    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_meta_get(st, "note", &value, &err), HC_OK);
    cr_assert_str_eq(value, "ünïcode note");
    free(value);
    cr_assert_eq(hc_store_meta_get(st, "absent", &value, &err), HC_OK);
    cr_assert_null(value);
    cr_assert_eq(hc_store_meta_each(st, collect_meta, listing, &err), HC_OK);
    cr_assert_str_eq(listing, "broker=localhost:1883;note=ünïcode note;schema_version=2;");
    cr_assert_eq(hc_store_meta_set(st, "x", "y", &err), HC_ERR_INVALID);
    close_ok(st);
}

/* --- flushing ------------------------------------------------------------------------------- */

Test(store, a_second_connection_sees_rows_only_after_they_are_committed)
{
    const char *path = tmp_path("flush.db");
    hc_store *writer = open_ok(path, HC_STORE_CREATE);
    hc_store *reader;
    hc_error err = HC_ERROR_INIT;
    int64_t s;

    hc_store_set_flush_interval(writer, 3600LL * 1000000000LL);
    s = begin_session(writer, 0);
    reader = open_ok(path, HC_STORE_READ);
    for (int i = 0; i < 10; i++)
        append_text(writer, s, i, "a/b", "payload");
    cr_assert_eq(count_messages(writer), 10, "the writer sees its own batch");
    cr_assert_eq(count_messages(reader), 0, "the reader must not see an uncommitted batch");
    cr_assert_eq(hc_store_flush_if_due(writer, &err), HC_OK);
    cr_assert_eq(count_messages(reader), 0, "the batch is not due yet");
    cr_assert_eq(hc_store_flush(writer, &err), HC_OK, "%s", err.message);
    cr_assert_eq(count_messages(reader), 10);

    /* A zero interval makes the next due check commit. */
    append_text(writer, s, 99, "a/b", "more");
    hc_store_set_flush_interval(writer, 0);
    cr_assert_eq(hc_store_flush_if_due(writer, &err), HC_OK);
    cr_assert_eq(count_messages(reader), 11);

    /* The row bound commits during append. */
    hc_store_set_flush_interval(writer, 3600LL * 1000000000LL);
    hc_store_set_batch_rows(writer, 3);
    append_text(writer, s, 100, "a/b", "1");
    append_text(writer, s, 101, "a/b", "2");
    cr_assert_eq(count_messages(reader), 11);
    append_text(writer, s, 102, "a/b", "3");
    cr_assert_eq(count_messages(reader), 14);
    close_ok(reader);
    close_ok(writer);
}

Test(store, close_commits_the_pending_batch)
{
    const char *path = tmp_path("close.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    int64_t s;

    hc_store_set_flush_interval(st, 3600LL * 1000000000LL);
    s = begin_session(st, 0);
    append_text(st, s, 1, "a", "x");
    close_ok(st);
    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(count_messages(st), 1);
    close_ok(st);
}

/* --- refusing what is not a recording -------------------------------------------------------- */

Test(store, a_text_file_is_not_a_recording)
{
    const char *path = tmp_path("notes.txt");
    hc_error err = HC_ERROR_INIT;
    const char text[] = "these are my notes, not a database\n";
    hc_store *st = NULL;

    write_file(path, text, sizeof(text) - 1);
    cr_assert_eq(open_read_err(path, &err), HC_ERR_NOT_RECORDING);
    cr_assert(strstr(err.message, "is not an hkit recording") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, "notes.txt'") != NULL, "%s", err.message);
    /* Appending must not touch it either. */
    cr_assert_eq(hc_store_open(path, HC_STORE_APPEND, &st, &err), HC_ERR_NOT_RECORDING);
    cr_assert(file_contains(path, "these are my notes"));
}

Test(store, an_empty_file_is_not_a_recording)
{
    const char *path = tmp_path("empty.db");
    hc_error err = HC_ERROR_INIT;

    write_file(path, "", 0);
    cr_assert_eq(open_read_err(path, &err), HC_ERR_NOT_RECORDING, "%s", err.message);
}

Test(store, a_missing_file_cannot_be_read)
{
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(open_read_err(tmp_path("missing.db"), &err), HC_ERR_IO);
    cr_assert(strstr(err.message, "cannot open '") != NULL, "%s", err.message);
}

Test(store, an_sqlite_file_of_another_application_is_not_a_recording)
{
    const char *path = tmp_path("other.db");
    hc_error err = HC_ERROR_INIT;

    make_small_recording(path, 1);
    patch_header_u32(path, 68, 0x12345678);
    cr_assert_eq(open_read_err(path, &err), HC_ERR_NOT_RECORDING);
    cr_assert(strstr(err.message, "is not an hkit recording") != NULL, "%s", err.message);
}

Test(store, a_newer_schema_is_refused_naming_both_versions)
{
    const char *path = tmp_path("newer.db");
    hc_error err = HC_ERROR_INIT;
    hc_store *st = NULL;

    make_small_recording(path, 1);
    patch_header_u32(path, 60, 7);
    cr_assert_eq(open_read_err(path, &err), HC_ERR_SCHEMA_NEWER);
    cr_assert(strstr(err.message, "version 7") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, "version 2") != NULL, "%s", err.message);
    cr_assert_eq(hc_store_open(path, HC_STORE_APPEND, &st, &err), HC_ERR_SCHEMA_NEWER);
}

Test(store, a_truncated_copy_of_a_recording_is_reported_as_damaged)
{
    const char *path = tmp_path("full.db");
    const char *cut = tmp_path("cut.db");
    hc_error err = HC_ERROR_INIT;
    struct stat sb;
    FILE *f;
    char *buf;

    make_small_recording(path, 5000);
    cr_assert_eq(stat(path, &sb), 0);
    buf = malloc((size_t)sb.st_size);
    cr_assert_not_null(buf);
    f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(buf, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
    fclose(f);
    write_file(cut, buf, (size_t)sb.st_size / 2);
    free(buf);
    cr_assert_eq(open_read_err(cut, &err), HC_ERR_CORRUPT);
    cr_assert(strstr(err.message, "cut.db' is damaged") != NULL, "%s", err.message);
}

/* --- open modes ------------------------------------------------------------------------------ */

Test(store, create_refuses_an_existing_file_and_force_replaces_it)
{
    const char *path = tmp_path("modes.db");
    hc_error err = HC_ERROR_INIT;
    hc_store *st = NULL;

    make_small_recording(path, 3);
    cr_assert_eq(hc_store_open(path, HC_STORE_CREATE, &st, &err), HC_ERR_EXISTS);
    cr_assert_null(st);
    cr_assert(strstr(err.message, "modes.db': file exists") != NULL, "%s", err.message);

    st = open_ok(path, HC_STORE_FORCE);
    cr_assert_eq(count_messages(st), 0);
    close_ok(st);
    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(count_messages(st), 0);
    close_ok(st);
}

Test(store, append_adds_a_session_to_an_existing_recording_or_creates_one)
{
    const char *path = tmp_path("append.db");
    struct session_log log = {0};
    hc_error err = HC_ERROR_INIT;
    hc_store *st;
    int64_t s;

    st = open_ok(path, HC_STORE_APPEND); /* created */
    s = begin_session(st, 10);
    append_text(st, s, 11, "a", "one");
    close_ok(st);

    st = open_ok(path, HC_STORE_APPEND);
    s = begin_session(st, 20);
    cr_assert_eq(s, 2);
    append_text(st, s, 21, "a", "two");
    close_ok(st);

    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_sessions_each(st, collect_session, &log, &err), HC_OK);
    cr_assert_eq(log.n, 2);
    cr_assert_eq(log.rows[1].messages, 1);
    cr_assert_eq(count_messages(st), 2);
    close_ok(st);
}

Test(store, read_only_stores_refuse_writes_and_destructors_accept_null)
{
    const char *path = tmp_path("ro.db");
    hc_error err = HC_ERROR_INIT;
    struct hc_msg m = {0};
    hc_store *st;

    make_small_recording(path, 1);
    st = open_ok(path, HC_STORE_READ);
    m.session_id = 1;
    m.topic = "a";
    cr_assert_eq(hc_store_append(st, &m, NULL, &err), HC_ERR_INVALID);
    cr_assert_eq(hc_store_session_begin(st, 0, 0, NULL, &err), HC_ERR_INVALID);
    cr_assert_eq(hc_store_vacuum(st, &err), HC_ERR_INVALID);
    close_ok(st);
    cr_assert_eq(hc_store_close(NULL, NULL), HC_OK);
    hc_cursor_free(NULL);
}

/* --- indexes -------------------------------------------------------------------------------- */

Test(store, building_the_indexes_keeps_every_selection_identical)
{
    int64_t s1, s2, seqs[5];
    hc_store *st = filter_fixture(&s1, &s2);
    hc_error err = HC_ERROR_INIT;
    struct hc_select sel = {0};
    const char *devices[] = {"dev-1"};
    const char *types[] = {"ambient_temperature"};

    cr_assert_eq(hc_store_index(st, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_store_index(st, &err), HC_OK, "building twice is harmless");
    sel.devices = devices;
    sel.n_devices = 1;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[0], 1);
    cr_assert_eq(seqs[1], 2);
    sel.n_devices = 0;
    sel.types = types;
    sel.n_types = 1;
    sel.has_since = true;
    sel.since_ns = 200;
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 1);
    cr_assert_eq(seqs[0], 3);
    /* Appends after indexing stay visible through the indexes. */
    append_text(st, s2, 600, T_TEMP, P_TEMP);
    cr_assert_eq(select_seqs(st, &sel, seqs, 5), 2);
    cr_assert_eq(seqs[1], 6);
    close_ok(st);
}

/* --- vacuum and scale ------------------------------------------------------------------------ */

Test(store, replaced_values_do_not_survive_in_the_file_after_vacuum)
{
    const char *path = tmp_path("vacuum.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    hc_error err = HC_ERROR_INIT;
    int64_t s = begin_session(st, 0);

    cr_assert_eq(hc_store_meta_set(st, "note", "MARKER-7f3a-secret-note", &err), HC_OK);
    for (int i = 0; i < 200; i++)
        append_text(st, s, i, "a/b", "filler payload to spread pages around");
    cr_assert_eq(hc_store_flush(st, &err), HC_OK);
    cr_assert_eq(hc_store_meta_set(st, "note", "redacted", &err), HC_OK);
    cr_assert_eq(hc_store_vacuum(st, &err), HC_OK, "%s", err.message);
    close_ok(st);
    cr_assert_not(file_contains(path, "MARKER-7f3a-secret-note"));
    cr_assert(file_contains(path, "redacted"));
}

Test(store, iterating_200k_rows_streams_them_all_in_order)
{
    const char *path = tmp_path("large.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    hc_error err = HC_ERROR_INIT;
    hc_cursor *cur = NULL;
    struct hc_msg m;
    int64_t s = begin_session(st, 0), expected = 1;
    char topic[64];
    hc_err rc;

    for (int i = 0; i < 200000; i++) {
        snprintf(topic, sizeof(topic), "site/dev-%d/t", i % 1000);
        append_text(st, s, i, topic, "{\"value\":1}");
    }
    close_ok(st);
    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_query(st, NULL, &cur, &err), HC_OK);
    while ((rc = hc_cursor_next(cur, &m, &err)) == HC_OK) {
        cr_assert_eq(m.seq, expected);
        snprintf(topic, sizeof(topic), "site/dev-%d/t", (int)((expected - 1) % 1000));
        cr_assert_str_eq(m.topic, topic);
        expected++;
    }
    cr_assert_eq(rc, HC_DONE, "%s", err.message);
    cr_assert_eq(expected, 200001);
    hc_cursor_free(cur);
    close_ok(st);
}

/*
 * Rows that lost their topic or session row (a hand-edited file) read as they always did: a
 * message without its topic is skipped, one without its session gets its arrival time as its
 * place on the timeline; the other rows of the same topics and sessions are unaffected.
 */
Test(store, messages_whose_topic_or_session_row_is_gone_are_skipped_or_keep_arrival_time)
{
    const char *path = tmp_path("orphans.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    hc_error err = HC_ERROR_INIT;
    hc_cursor *cur = NULL;
    struct hc_msg m;
    sqlite3 *db;
    int64_t s1 = begin_session(st, 1000000000LL), s2;

    append_text(st, s1, 1000000100LL, "t/keep", "1");
    append_text(st, s1, 1000000200LL, "t/gone", "2");
    s2 = begin_session(st, 2000000000LL);
    append_text(st, s2, 2000000300LL, "t/keep", "3");
    append_text(st, s2, 2000000400LL, "t/gone", "4");
    close_ok(st);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
                              "DELETE FROM topics WHERE name = 't/gone';"
                              "DELETE FROM sessions WHERE id = 2;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);

    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_query(st, NULL, &cur, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_cursor_next(cur, &m, &err), HC_OK, "%s", err.message);
    cr_assert_eq(m.seq, 1);
    cr_assert_str_eq(m.topic, "t/keep");
    cr_assert_eq(m.timeline_ns, 1000000000LL + m.mono_ns);
    cr_assert_eq(hc_cursor_next(cur, &m, &err), HC_OK, "%s", err.message);
    cr_assert_eq(m.seq, 3);
    cr_assert_str_eq(m.topic, "t/keep");
    cr_assert_eq(m.session_id, s2);
    cr_assert_eq(m.timeline_ns, 2000000300LL, "no session row: the arrival time");
    cr_assert_eq(hc_cursor_next(cur, &m, &err), HC_DONE);
    hc_cursor_free(cur);
    close_ok(st);
}

/* --- reading leaves every byte as it was ----------------------------------------------------- */

Test(store, reading_a_closed_recording_creates_no_side_files)
{
    const char *path = tmp_path("clean.db");
    char wal[600], shm[600];
    hc_store *st;

    make_small_recording(path, 20);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);
    cr_assert(!exists(wal) && !exists(shm));
    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(count_messages(st), 20);
    cr_assert(!exists(wal) && !exists(shm), "a reader made a -wal or -shm");
    close_ok(st);
    cr_assert(!exists(wal) && !exists(shm), "a reader left a -wal or -shm");
}

/* A crashed writer: committed rows only in the -wal, which a reader must neither checkpoint
 * into the file nor remove, with or without the -shm beside it. */
Test(store, reading_a_crashed_recording_reads_its_wal_and_changes_nothing)
{
    const char *path = tmp_path("crashed.db");
    const char *names[3] = {"", "-wal", "-shm"};
    char side[3][600], *before[3];
    size_t len[3];
    sqlite3 *db;
    pid_t pid;
    int status;

    make_small_recording(path, 10);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* a writer that dies after committing, without closing */
        if (sqlite3_open(path, &db) != SQLITE_OK ||
            sqlite3_exec(db,
                         "PRAGMA wal_autocheckpoint = 0;"
                         "INSERT INTO message_rows(session_id, received_at_ns, mono_ns, topic_id,"
                         " payload, qos, retain, dup, decode_error) SELECT session_id,"
                         " received_at_ns + 100, mono_ns, topic_id, payload, qos, retain, dup,"
                         " decode_error FROM message_rows",
                         NULL, NULL, NULL) != SQLITE_OK)
            _exit(1);
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < 3; i++) {
        snprintf(side[i], sizeof(side[i]), "%s%s", path, names[i]);
        cr_assert(exists(side[i]), "the crashed writer left no %s", side[i]);
        before[i] = slurp(side[i], &len[i]);
    }
    for (int round = 0; round < 2; round++) {
        hc_store *st = open_ok(path, HC_STORE_READ);
        cr_assert_eq(count_messages(st), 20, "the committed rows in the -wal are read");
        close_ok(st);
        for (int i = 0; i < (round ? 2 : 3); i++)
            assert_same_bytes(side[i], before[i], len[i]);
        /* second round: the pair without its -shm, as copied into a bug report */
        if (!round)
            cr_assert_eq(unlink(side[2]), 0);
    }
    cr_assert(!exists(side[2]), "a reader made a -shm");
    for (int i = 0; i < 3; i++)
        free(before[i]);
}

/* --- flush deadline and durability ----------------------------------------------------------- */

Test(store, the_open_batch_tells_when_it_is_due)
{
    const char *path = tmp_path("due.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    hc_error err = HC_ERROR_INIT;
    int64_t s, due;

    cr_assert_eq(hc_store_flush_due_in_ns(NULL), INT64_MAX);
    hc_store_set_flush_interval(st, 3600LL * 1000000000LL);
    s = begin_session(st, 0);
    cr_assert_eq(hc_store_flush_due_in_ns(st), INT64_MAX, "nothing uncommitted");
    append_text(st, s, 1, "a/b", "x");
    due = hc_store_flush_due_in_ns(st);
    cr_assert(due > 1800LL * 1000000000LL && due <= 3600LL * 1000000000LL, "due in %lld ns",
              (long long)due);
    hc_store_set_flush_interval(st, 0);
    cr_assert_eq(hc_store_flush_due_in_ns(st), 0, "a zero interval is due at once");
    cr_assert_eq(hc_store_flush_if_due(st, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_store_flush_due_in_ns(st), INT64_MAX, "committed");
    cr_assert_eq(hc_store_set_sync_commits(st, true, &err), HC_OK, "%s", err.message);
    append_text(st, s, 2, "a/b", "y");
    close_ok(st);
    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(count_messages(st), 2);
    cr_assert_eq(hc_store_set_sync_commits(st, true, &err), HC_ERR_INVALID, "read-only");
    close_ok(st);
}

/* --- checking a path before writing ---------------------------------------------------------- */

Test(store, a_path_is_checked_for_writing_without_creating_anything)
{
    const char *fresh = tmp_path("fresh.db"), *rec = tmp_path("rec.db");
    const char *empty = tmp_path("empty-append.db"), *text = tmp_path("text-append.db");
    hc_error err = HC_ERROR_INIT;

    cr_assert_eq(hc_store_check_writable(fresh, HC_STORE_CREATE, &err), HC_OK, "%s", err.message);
    cr_assert(!exists(fresh), "the check created the file");
    cr_assert_eq(hc_store_check_writable(fresh, HC_STORE_APPEND, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_store_check_writable("/proc/nope/x.db", HC_STORE_CREATE, &err), HC_ERR_IO);
    cr_assert_str_eq(err.message, "cannot write '/proc/nope/x.db': directory '/proc/nope' does "
                                  "not exist");
    cr_assert_eq(hc_store_check_writable(tmpdir, HC_STORE_FORCE, &err), HC_ERR_INVALID);
    cr_assert(strstr(err.message, "is a directory") != NULL, "%s", err.message);

    make_small_recording(rec, 2);
    cr_assert_eq(hc_store_check_writable(rec, HC_STORE_CREATE, &err), HC_ERR_EXISTS);
    cr_assert_eq(hc_store_check_writable(rec, HC_STORE_FORCE, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_store_check_writable(rec, HC_STORE_APPEND, &err), HC_OK, "%s", err.message);

    write_file(empty, "", 0);
    cr_assert_eq(hc_store_check_writable(empty, HC_STORE_APPEND, &err), HC_ERR_NOT_RECORDING);
    cr_assert(strstr(err.message, "the file is empty") != NULL, "%s", err.message);
    write_file(text, "notes\n", 6);
    cr_assert_eq(hc_store_check_writable(text, HC_STORE_APPEND, &err), HC_ERR_NOT_RECORDING);
    cr_assert(file_contains(text, "notes"));
}

/* --- checking a whole file ------------------------------------------------------------------- */

Test(store, check_finds_a_message_whose_session_does_not_exist)
{
    const char *path = tmp_path("orphan.db");
    hc_error err = HC_ERROR_INIT;
    hc_store *st;
    sqlite3 *db;

    make_small_recording(path, 3);
    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_check(st, &err), HC_OK, "%s", err.message);
    close_ok(st);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(
        sqlite3_exec(db, "UPDATE message_rows SET session_id = 9 WHERE seq = 2", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_check(st, &err), HC_ERR_CORRUPT);
    cr_assert(strstr(err.message, "orphan.db' is damaged: message 2 names session 9, which does "
                                  "not exist") != NULL,
              "%s", err.message);
    close_ok(st);
}

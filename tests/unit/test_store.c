/*
 * Tests of the recording store on real SQLite files in a temporary directory: byte-exact round
 * trips, arrival order, every selection filter, sessions, meta, flush visibility to a second
 * connection, refusal of files that are not (intact, readable) recordings, open modes, summaries
 * and the absence of deleted bytes after a vacuum. The decoded columns are read back through the
 * file's messages view with SQLite itself and held against the full decoder's output.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hcore/decode.h"
#include "hcore/store.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/hkit-store-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(store, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *tmp_path(const char *name)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof(paths[0]), "%s/%s", tmpdir, name);
    return p;
}

static hc_store *open_ok(const char *path, enum hc_store_mode mode)
{
    hc_error err = HC_ERROR_INIT;
    hc_store *st = NULL;
    hc_err rc = hc_store_open(path, mode, &st, &err);
    cr_assert_eq(rc, HC_OK, "open '%s' failed: %s", path, err.message);
    cr_assert_not_null(st);
    return st;
}

static void close_ok(hc_store *st)
{
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_store_close(st, &err), HC_OK, "close failed: %s", err.message);
}

static int64_t begin_session(hc_store *st, int64_t started_at_ns)
{
    hc_error err = HC_ERROR_INIT;
    int64_t id = 0;
    cr_assert_eq(hc_store_session_begin(st, started_at_ns, 1000, &id, &err), HC_OK, "%s",
                 err.message);
    cr_assert_gt(id, 0);
    return id;
}

static int64_t append(hc_store *st, int64_t session, int64_t received_at_ns, const char *topic,
                      const void *payload, size_t len)
{
    struct hc_msg m = {0};
    hc_error err = HC_ERROR_INIT;
    int64_t seq = 0;

    m.session_id = session;
    m.received_at_ns = received_at_ns;
    m.mono_ns = received_at_ns - 1000000000LL;
    m.topic = topic;
    m.payload = payload;
    m.payload_len = len;
    cr_assert_eq(hc_store_append(st, &m, &seq, &err), HC_OK, "append failed: %s", err.message);
    return seq;
}

static int64_t append_text(hc_store *st, int64_t session, int64_t received_at_ns, const char *topic,
                           const char *payload)
{
    return append(st, session, received_at_ns, topic, payload, strlen(payload));
}

/* Runs a selection and returns the number of rows; seqs (when not NULL) gets their seq values. */
static size_t select_seqs(hc_store *st, const struct hc_select *sel, int64_t *seqs, size_t max)
{
    hc_error err = HC_ERROR_INIT;
    hc_cursor *cur = NULL;
    struct hc_msg m;
    size_t n = 0;
    hc_err rc;

    cr_assert_eq(hc_store_query(st, sel, &cur, &err), HC_OK, "query failed: %s", err.message);
    while ((rc = hc_cursor_next(cur, &m, &err)) == HC_OK) {
        if (seqs && n < max)
            seqs[n] = m.seq;
        n++;
    }
    cr_assert_eq(rc, HC_DONE, "cursor failed: %s", err.message);
    hc_cursor_free(cur);
    return n;
}

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

#define T_TEMP "haltian-iot/events/intg/key/measurements/ambientTemperature/dev-1"
#define T_TEMP_ALIAS "haltian-iot/events/intg/key/measurements/ambient_temperature/dev-2"
#define T_HUM "haltian-iot/events/intg/key/measurements/humidity/dev-1"
#define T_OFFLINE "haltian-iot/events/intg/key/notifications/deviceOffline"
#define P_TEMP "{\"measured_at\":\"2026-02-05T10:30:45.123Z\",\"value\":23.5}"
#define P_HUM "{\"measured_at\":\"2026-02-05T10:30:46.000Z\",\"value\":45.8}"

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

/* Five messages: two sessions, times 100..500, a mix of topics, kinds, types and devices. */
static hc_store *filter_fixture(int64_t *s1, int64_t *s2)
{
    hc_store *st = open_ok(tmp_path("filters.db"), HC_STORE_CREATE);
    *s1 = begin_session(st, 0);
    append_text(st, *s1, 100, T_TEMP, P_TEMP);       /* 1 */
    append_text(st, *s1, 200, T_HUM, P_HUM);         /* 2 */
    append_text(st, *s1, 300, T_TEMP_ALIAS, P_TEMP); /* 3 */
    *s2 = begin_session(st, 1000);
    append_text(st, *s2, 400, T_OFFLINE, "{\"value\":true}");          /* 4 */
    append_text(st, *s2, 500, "other/tree/x", "not json at all \x01"); /* 5 */
    return st;
}

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

static int64_t count_messages(hc_store *st)
{
    struct hc_store_summary sum;
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_store_summarize(st, NULL, &sum, &err), HC_OK, "%s", err.message);
    return sum.messages;
}

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

/* --- summaries ------------------------------------------------------------------------------- */

struct group_log {
    char keys[8][128];
    int64_t counts[8], first[8], last[8];
    int n;
};

static int collect_group(const char *key, int64_t count, int64_t first_ns, int64_t last_ns,
                         void *user)
{
    struct group_log *g = user;
    if (g->n < 8) {
        snprintf(g->keys[g->n], sizeof(g->keys[0]), "%s", key);
        g->counts[g->n] = count;
        g->first[g->n] = first_ns;
        g->last[g->n] = last_ns;
        g->n++;
    }
    return 0;
}

Test(store, count_by_groups_by_whitelisted_columns_only)
{
    int64_t s1, s2;
    hc_store *st = filter_fixture(&s1, &s2);
    hc_error err = HC_ERROR_INIT;
    struct group_log g = {0};
    struct hc_select sel = {0};

    cr_assert_eq(hc_store_count_by(st, NULL, "session_id", collect_group, &g, &err), HC_OK, "%s",
                 err.message);
    cr_assert_eq(g.n, 2);
    cr_assert_str_eq(g.keys[0], "1");
    cr_assert_eq(g.counts[0], 3);
    cr_assert_eq(g.first[0], 100);
    cr_assert_eq(g.last[0], 300);
    cr_assert_str_eq(g.keys[1], "2");
    cr_assert_eq(g.counts[1], 2);

    memset(&g, 0, sizeof(g));
    cr_assert_eq(hc_store_count_by(st, NULL, "type", collect_group, &g, &err), HC_OK);
    cr_assert_str_eq(g.keys[0], "ambientTemperature");
    cr_assert_eq(g.counts[0], 2);

    memset(&g, 0, sizeof(g));
    sel.limit = 2;
    cr_assert_eq(hc_store_count_by(st, &sel, "topic", collect_group, &g, &err), HC_OK);
    cr_assert_eq(g.n, 2);
    cr_assert_str_eq(g.keys[0], T_TEMP); /* ties ordered by key */
    cr_assert_str_eq(g.keys[1], T_HUM);

    /* Only message 5 ("not json at all") is undecodable; its key is the decoder's error code. */
    memset(&g, 0, sizeof(g));
    cr_assert_eq(hc_store_count_by(st, NULL, "decode_error", collect_group, &g, &err), HC_OK, "%s",
                 err.message);
    cr_assert_eq(g.n, 1);
    cr_assert_eq(g.counts[0], 1);
    cr_assert_eq(g.first[0], 500);
    cr_assert_str_neq(g.keys[0], "");

    cr_assert_eq(
        hc_store_count_by(st, NULL, "payload; DROP TABLE messages", collect_group, &g, &err),
        HC_ERR_INVALID);
    cr_assert_eq(hc_store_count_by(st, NULL, "seq", collect_group, &g, &err), HC_ERR_INVALID);
    cr_assert_eq(count_messages(st), 5);
    close_ok(st);
}

Test(store, summarize_reports_counts_times_and_payload_size_statistics)
{
    hc_store *st = open_ok(tmp_path("summary.db"), HC_STORE_CREATE);
    hc_error err = HC_ERROR_INIT;
    struct hc_store_summary sum;
    struct hc_select sel = {0};
    char payload[101];
    int64_t s = begin_session(st, 0);

    memset(payload, 'x', sizeof(payload));
    begin_session(st, 0); /* a session without messages still counts */
    for (int i = 1; i <= 100; i++)
        append(st, s, 1000 + i, "a/b", payload, (size_t)i);
    cr_assert_eq(hc_store_summarize(st, NULL, &sum, &err), HC_OK, "%s", err.message);
    cr_assert_eq(sum.messages, 100);
    cr_assert_eq(sum.payload_bytes, 5050);
    cr_assert_eq(sum.first_received_at_ns, 1001);
    cr_assert_eq(sum.last_received_at_ns, 1100);
    cr_assert_eq(sum.sessions, 2);
    cr_assert_eq(sum.payload_min, 1);
    cr_assert_eq(sum.payload_max, 100);
    cr_assert_float_eq(sum.payload_mean, 50.5, 1e-9);
    cr_assert_eq(sum.payload_p50, 50);
    cr_assert_eq(sum.payload_p99, 99);

    sel.has_since = true;
    sel.since_ns = 1091;
    cr_assert_eq(hc_store_summarize(st, &sel, &sum, &err), HC_OK);
    cr_assert_eq(sum.messages, 10);
    cr_assert_eq(sum.sessions, 1);
    cr_assert_eq(sum.payload_min, 91);
    cr_assert_eq(sum.payload_p50, 95);

    sel.since_ns = 5000;
    cr_assert_eq(hc_store_summarize(st, &sel, &sum, &err), HC_OK);
    cr_assert_eq(sum.messages, 0);
    cr_assert_eq(sum.first_received_at_ns, 0);
    cr_assert_eq(sum.payload_p99, 0);
    close_ok(st);
}

Test(store, count_gives_the_selection_size_and_its_earliest_arrival)
{
    hc_store *st = open_ok(tmp_path("count.db"), HC_STORE_CREATE);
    hc_error err = HC_ERROR_INIT;
    struct hc_select sel = {0};
    const char *filter = "a/+";
    int64_t s = begin_session(st, 0), n = -1, first = -1;

    /* arrival times out of seq order: the earliest is not the first row */
    for (int i = 1; i <= 100; i++)
        append_text(st, s, i == 50 ? 500 : 1000 + i, i % 2 ? "a/odd" : "b/even", "x");
    cr_assert_eq(hc_store_count(st, NULL, &n, &first, &err), HC_OK, "%s", err.message);
    cr_assert_eq(n, 100);
    cr_assert_eq(first, 500);
    cr_assert_eq(hc_store_count(st, NULL, &n, NULL, &err), HC_OK, "%s", err.message);
    cr_assert_eq(n, 100);

    sel.topic_filters = &filter;
    sel.n_topic_filters = 1;
    cr_assert_eq(hc_store_count(st, &sel, &n, &first, &err), HC_OK, "%s", err.message);
    cr_assert_eq(n, 50);
    cr_assert_eq(first, 1001);
    sel.limit = 7;
    cr_assert_eq(hc_store_count(st, &sel, &n, NULL, &err), HC_OK, "%s", err.message);
    cr_assert_eq(n, 7);

    sel.limit = 0;
    sel.has_since = true;
    sel.since_ns = 5000;
    cr_assert_eq(hc_store_count(st, &sel, &n, &first, &err), HC_OK, "%s", err.message);
    cr_assert_eq(n, 0);
    cr_assert_eq(first, 0);

    filter = "a/#/b";
    sel.has_since = false;
    cr_assert_eq(hc_store_count(st, &sel, &n, NULL, &err), HC_ERR_INVALID);
    close_ok(st);
}

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

Test(store, summarize_counts_decode_errors)
{
    int64_t s1, s2;
    hc_store *st = filter_fixture(&s1, &s2);
    hc_error err = HC_ERROR_INIT;
    struct hc_store_summary sum;

    cr_assert_eq(hc_store_summarize(st, NULL, &sum, &err), HC_OK, "%s", err.message);
    cr_assert_eq(sum.messages, 5);
    cr_assert_eq(sum.decode_errors, 1);
    cr_assert_eq(sum.sessions, 2);
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

/* --- decoded columns, as a user of the sqlite3 shell sees them ------------------------------- */

#define HT "haltian-iot/events/intg/key/measurements/"
#define TS_OK "\"measured_at\":\"2026-02-05T10:30:45.123Z\""
#define TSN "cloudext/json/pr/fi/group1/TSPOD1/"

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

Test(store, messages_view_shows_the_decoded_columns_the_full_decoder_reports)
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

Test(store, thingsee_messages_take_their_type_from_the_payload_in_filters_and_counts)
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

Test(store, filters_give_the_same_rows_once_secondary_indexes_exist)
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

/* --- reading leaves every byte as it was ----------------------------------------------------- */

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    struct stat sb;

    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fstat(fileno(f), &sb), 0);
    buf = malloc((size_t)sb.st_size + 1);
    cr_assert_not_null(buf);
    *len = fread(buf, 1, (size_t)sb.st_size, f);
    fclose(f);
    return buf;
}

static void assert_same_bytes(const char *path, const char *before, size_t before_len)
{
    size_t len;
    char *now = slurp(path, &len);
    cr_assert(len == before_len && memcmp(now, before, len) == 0, "%s changed", path);
    free(now);
}

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

/* --- summaries and time windows ----------------------------------------------------------------
 */

/* A growable text that summaries are written into, so two of them compare as strings. */
struct text {
    char *s;
    size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        cr_assert_not_null(t->s);
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static int text_group(const char *key, int64_t count, int64_t first_ns, int64_t last_ns, void *user)
{
    text_add(user, "%s=%lld,%lld,%lld;", key, (long long)count, (long long)first_ns,
             (long long)last_ns);
    return 0;
}

static int text_minute(int64_t minute_start_ns, const char *type, int64_t count, void *user)
{
    text_add(user, "%lld/%s=%lld;", (long long)minute_start_ns, type, (long long)count);
    return 0;
}

/* Everything a summary says, as text. */
static char *summary_text(hc_store *st, unsigned flags)
{
    static const char *const columns[] = {"kind",  "type",       "device_id",
                                          "topic", "session_id", "decode_error"};
    struct hc_store_summary t;
    hc_summary *s = NULL;
    hc_error err = HC_ERROR_INIT;
    struct text out = {0};

    cr_assert_eq(hc_store_summary_load(st, NULL, flags, &s, &err), HC_OK, "%s", err.message);
    hc_summary_totals(s, &t);
    text_add(&out,
             "messages=%lld bytes=%lld first=%lld last=%lld sessions=%lld errors=%lld min=%lld "
             "max=%lld mean=%.6f p50=%lld p99=%lld\n",
             (long long)t.messages, (long long)t.payload_bytes, (long long)t.first_received_at_ns,
             (long long)t.last_received_at_ns, (long long)t.sessions, (long long)t.decode_errors,
             (long long)t.payload_min, (long long)t.payload_max, t.payload_mean,
             (long long)t.payload_p50, (long long)t.payload_p99);
    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
        text_add(&out, "%s: ", columns[i]);
        cr_assert_eq(hc_summary_count_by(s, columns[i], text_group, &out, &err), HC_OK);
        text_add(&out, "\n");
    }
    cr_assert_eq(hc_summary_minutes_each(s, text_minute, &out, &err), HC_OK);
    hc_summary_free(s);
    return out.s;
}

/* The stored summaries (plus any unfolded tail) say exactly what a full scan says. */
static void assert_summaries_match_a_scan(hc_store *st, const char *when)
{
    char *stored = summary_text(st, 0), *scanned = summary_text(st, HC_SUMMARY_SCAN);
    cr_assert_str_eq(stored, scanned, "%s: stored summaries differ from a scan", when);
    free(stored);
    free(scanned);
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int64_t v = -1;

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static const char *const mixed_topics[] = {HT "ambientTemperature/dev-1",
                                           HT "humidity/dev-1",
                                           HT "co2/dev-2",
                                           HT "ambient_temperature/dev-3",
                                           TSN "1110",
                                           "other/broker/topic",
                                           T_OFFLINE};

/* Appends n messages of every shape the summaries separate: types from topics and from legacy
 * Thingsee payloads, decode errors, payloads from empty to several KiB, and a clock that steps
 * back now and then. */
static void append_mixed_every(hc_store *st, int64_t session, int64_t *clock_ns, unsigned *seed,
                               int n, int max_step_ms)
{
    static char big[6000];
    char payload[200];

    memset(big, 'x', sizeof(big));
    for (int i = 0; i < n; i++) {
        unsigned r = (unsigned)rand_r(seed);
        const char *topic = mixed_topics[r % 7];
        *clock_ns += (int64_t)(r % (unsigned)max_step_ms) * 1000000LL;
        if (r % 97 == 0)
            *clock_ns -= 18LL * max_step_ms * 1000000LL; /* the wall clock steps back */
        if (r % 13 == 0) {
            append(st, session, *clock_ns, topic, big, (r >> 8) % sizeof(big));
        } else if (r % 11 == 0) {
            append_text(st, session, *clock_ns, topic, "not json at all");
        } else if (topic[0] == 'c') {
            snprintf(payload, sizeof(payload), "{\"tsmTs\":1770287445,\"%s\":%u}",
                     (r >> 4) % 2 ? "temp" : "humd", r % 50);
            append_text(st, session, *clock_ns, topic, payload);
        } else {
            snprintf(payload, sizeof(payload), "{" TS_OK ",\"value\":%u.%u}", r % 100, r % 7);
            append_text(st, session, *clock_ns, topic, payload);
        }
    }
}

static void append_mixed(hc_store *st, int64_t session, int64_t *clock_ns, unsigned *seed, int n)
{
    append_mixed_every(st, session, clock_ns, seed, n, 5000);
}

Test(store, summaries_equal_a_full_scan_after_random_appends_sessions_and_reopening)
{
    const char *path = tmp_path("summaries.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    int64_t clock_ns = 1770287400000000000LL;
    unsigned seed = 16;

    hc_store_set_batch_rows(st, 64);
    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 3000);
    assert_summaries_match_a_scan(st, "the writer, with an unfolded tail");
    cr_assert_eq(hc_store_session_end(st, 1, clock_ns, "clean exit", NULL), HC_OK);
    begin_session(st, clock_ns); /* a session without messages */
    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 2000);
    close_ok(st);
    cr_assert_eq(sql_int(path, "SELECT folded_seq FROM summary_state"),
                 sql_int(path, "SELECT max(seq) FROM message_rows"), "close folds everything");

    st = open_ok(path, HC_STORE_READ);
    assert_summaries_match_a_scan(st, "a reader after close");
    close_ok(st);

    st = open_ok(path, HC_STORE_APPEND);
    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 1500);
    close_ok(st);
    st = open_ok(path, HC_STORE_READ);
    assert_summaries_match_a_scan(st, "after --append");
    close_ok(st);
}

Test(store, summaries_stay_true_when_the_writer_is_killed_and_a_new_writer_appends)
{
    const char *path = tmp_path("killed.db");
    int64_t clock_ns = 1770287400000000000LL, folded, max_seq;
    unsigned seed = 7;
    pid_t pid;
    int status;
    hc_store *st;

    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        st = open_ok(path, HC_STORE_CREATE);
        hc_store_set_batch_rows(st, 5000);
        /* dense in time, as a busy site: few summary entries per row, so the writer folds */
        append_mixed_every(st, begin_session(st, clock_ns), &clock_ns, &seed, 200000, 20);
        hc_store_flush(st, NULL);
        raise(SIGKILL); /* no close: summaries folded earlier stay, the rest is a tail */
        _exit(1);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    folded = sql_int(path, "SELECT folded_seq FROM summary_state");
    max_seq = sql_int(path, "SELECT max(seq) FROM message_rows");
    cr_assert_eq(max_seq, 200000);
    cr_assert(folded > 0 && folded < max_seq, "folded %lld of %lld", (long long)folded,
              (long long)max_seq);

    st = open_ok(path, HC_STORE_READ);
    assert_summaries_match_a_scan(st, "a reader after the kill");
    close_ok(st);

    st = open_ok(path, HC_STORE_APPEND);
    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 1000);
    assert_summaries_match_a_scan(st, "the next writer, before its first fold");
    close_ok(st);
    st = open_ok(path, HC_STORE_READ);
    assert_summaries_match_a_scan(st, "after the next writer closed");
    close_ok(st);
}

/* Turns a recording into what version 1 wrote: no summary tables, user_version 1. */
static void make_version_1(const char *path)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
                              "DROP TABLE summary_state; DROP TABLE summary_topics;"
                              "DROP TABLE summary_minutes; DROP TABLE summary_sessions;"
                              "DROP TABLE summary_sizes; DROP TABLE summary_errors;"
                              "DROP TABLE time_runs; PRAGMA user_version = 1;"
                              "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
                              "PRAGMA journal_mode = DELETE;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

Test(store, a_version_1_file_is_read_without_a_byte_changing_and_upgrades_in_place)
{
    const char *path = tmp_path("v1.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    int64_t clock_ns = 1770287400000000000LL, seqs[4000];
    unsigned seed = 3;
    struct hc_select sel = {0};
    hc_error err = HC_ERROR_INIT;
    char *before, *as_v1, *as_v2;
    size_t len, n_v1;
    int from = 0;

    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 3000);
    close_ok(st);
    make_version_1(path);
    before = slurp(path, &len);

    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_schema_version(st), 1);
    as_v1 = summary_text(st, 0);
    cr_assert(strstr(as_v1, "messages=3000 ") == as_v1, "%s", as_v1);
    sel.has_since = true;
    sel.since_ns = 1770287400000000000LL + 600LL * 1000000000LL;
    sel.has_until = true;
    sel.until_ns = sel.since_ns + 60LL * 1000000000LL;
    n_v1 = select_seqs(st, &sel, seqs, 4000);
    close_ok(st);
    assert_same_bytes(path, before, len);
    cr_assert(!exists(tmp_path("v1.db-wal")) && !exists(tmp_path("v1.db-shm")));

    cr_assert_eq(hc_store_upgrade(path, &from, &err), HC_OK, "%s", err.message);
    cr_assert_eq(from, 1);
    st = open_ok(path, HC_STORE_READ);
    cr_assert_eq(hc_store_schema_version(st), 2);
    as_v2 = summary_text(st, 0);
    cr_assert_str_eq(as_v2, as_v1, "the upgrade's summaries equal the version 1 scan");
    cr_assert_eq(select_seqs(st, &sel, NULL, 0), n_v1);
    close_ok(st);
    free(before);
    free(as_v1);
    free(as_v2);
}

/* The seqs a window selects, worked out from every row: what the store must return. */
static size_t brute_window(const int64_t *seq, const int64_t *t, size_t n,
                           const struct hc_select *sel, int64_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (sel->has_since && t[i] < sel->since_ns)
            continue;
        if (sel->has_until && t[i] >= sel->until_ns)
            continue;
        if (sel->limit && (int64_t)k >= sel->limit)
            break;
        out[k++] = seq[i];
    }
    return k;
}

static void assert_windows(hc_store *st, unsigned seed, const char *when)
{
    enum { MAX = 20000 };
    static int64_t seq[MAX], t[MAX], want[MAX], got[MAX];
    struct hc_select all = {0};
    hc_error err = HC_ERROR_INIT;
    hc_cursor *cur = NULL;
    struct hc_msg m;
    size_t n = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;

    cr_assert_eq(hc_store_query(st, &all, &cur, &err), HC_OK);
    while (hc_cursor_next(cur, &m, &err) == HC_OK && n < MAX) {
        seq[n] = m.seq;
        t[n] = m.received_at_ns;
        lo = t[n] < lo ? t[n] : lo;
        hi = t[n] > hi ? t[n] : hi;
        n++;
    }
    hc_cursor_free(cur);
    for (int i = 0; i < 400; i++) {
        struct hc_select sel = {0};
        unsigned r = (unsigned)rand_r(&seed);
        int64_t span = hi - lo + 2,
                a = lo - 1 + (int64_t)((double)rand_r(&seed) / RAND_MAX * (double)span);
        int64_t width = (int64_t)(r % 4 == 0 ? span : (int64_t)(r % 600) * 1000000000LL);
        size_t k, w, count_n;
        int64_t count = 0, first = 0;

        sel.has_since = r % 5 != 1;
        sel.since_ns = a;
        sel.has_until = r % 5 != 2;
        sel.until_ns = i % 50 == 0 ? t[(size_t)r % n] : a + width; /* exactly on a row sometimes */
        sel.limit = r % 7 == 0 ? (int64_t)(r % 30) : 0;
        w = brute_window(seq, t, n, &sel, want);
        k = select_seqs(st, &sel, got, MAX);
        cr_assert_eq(k, w, "%s: window %d [%lld, %lld) gave %zu rows, not %zu", when, i,
                     (long long)sel.since_ns, (long long)sel.until_ns, k, w);
        for (size_t j = 0; j < k; j++)
            cr_assert_eq(got[j], want[j], "%s: window %d row %zu", when, i, j);
        cr_assert_eq(hc_store_count(st, &sel, &count, &first, &err), HC_OK, "%s", err.message);
        count_n = (size_t)count;
        cr_assert_eq(count_n, w, "%s: count of window %d", when, i);
    }
}

Test(store, time_windows_agree_with_every_row_across_sessions_clock_steps_and_tails)
{
    const char *path = tmp_path("windows.db");
    hc_store *st = open_ok(path, HC_STORE_CREATE);
    int64_t clock_ns = 1770287400000000000LL;
    unsigned seed = 99;

    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 3000);
    clock_ns -= 3600LL * 1000000000LL; /* the next session starts an hour earlier */
    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 3000);
    clock_ns += 7200LL * 1000000000LL;
    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 2000);
    close_ok(st);
    cr_assert_gt(sql_int(path, "SELECT count(*) FROM time_runs"), 3, "the clock steps make runs");

    st = open_ok(path, HC_STORE_READ);
    assert_windows(st, 1, "after close");
    close_ok(st);

    st = open_ok(path, HC_STORE_APPEND);
    append_mixed(st, begin_session(st, clock_ns), &clock_ns, &seed, 2000);
    assert_windows(st, 2, "a writer with an unfolded tail");
    close_ok(st);
    st = open_ok(path, HC_STORE_READ);
    assert_windows(st, 3, "after appending");
    close_ok(st);
}

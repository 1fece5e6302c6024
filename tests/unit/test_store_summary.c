/*
 * Tests of the recording store's summaries and time windows on real SQLite files in a temporary
 * directory: counts by column, totals and payload size statistics, counts of a selection, decode
 * errors; stored summaries held against a full scan after random appends, reopening and a killed
 * writer; a version 1 file read unchanged and upgraded in place; time windows held against every
 * row across sessions, clock steps and unfolded tails.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hcore/store.h"
#include "store_helpers.h"

TestSuite(store_summary, .init = make_tmpdir, .fini = remove_tmpdir);

/* --- summaries ------------------------------------------------------------------------------- */

Test(store_summary, count_by_groups_by_whitelisted_columns_only)
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

Test(store_summary, summarize_reports_counts_times_and_payload_size_statistics)
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

Test(store_summary, count_gives_the_selection_size_and_its_earliest_arrival)
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

Test(store_summary, summarize_counts_decode_errors)
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

Test(store_summary, summaries_equal_a_full_scan_after_random_appends_sessions_and_reopening)
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

Test(store_summary, summaries_stay_true_when_the_writer_is_killed_and_a_new_writer_appends)
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

Test(store_summary, a_version_1_file_is_read_without_a_byte_changing_and_upgrades_in_place)
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

Test(store_summary, time_windows_agree_with_every_row_across_sessions_clock_steps_and_tails)
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

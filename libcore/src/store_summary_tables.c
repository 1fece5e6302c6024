/*
 * The recording's summary tables (the counting itself is in store_summary.c). A writer counts
 * each appended message in memory and folds the counts into the summary tables inside the
 * batch's transaction, so tables and messages always agree at a commit; folding every few hundred
 * thousand rows, not at every commit, keeps the upserts a small share of the append cost (their
 * number grows with the topics touched, not the rows). The tables state which rows they cover
 * (summary_state.folded_seq): a reader adds the rows after it by scanning them, and a writer that
 * finds such a tail (a killed writer's) recounts it before its next fold. Also here: the upgrade
 * of a version 1 file, which adds the tables and counts every row.
 */
#include "hcore/store.h"
#include "hcore/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "store_internal.h"
#include "store_summary_internal.h"

/* Fold when this many rows are counted per touched entry (upserts stay a few % of appends) and
 * at least FOLD_MIN_ROWS rows or FOLD_MAX_AGE_NS have gone by; always by the tail bound. */
#define FOLD_ROWS_PER_ENTRY 32
#define FOLD_MIN_ROWS 131072
#define FOLD_MAX_AGE_NS (5LL * 1000000000LL)

const char hc__summary_schema_sql[] =
    "CREATE TABLE summary_state(id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  folded_seq INTEGER NOT NULL);"
    "INSERT INTO summary_state(id, folded_seq) VALUES (1, 0);"
    "CREATE TABLE summary_topics(topic_id INTEGER NOT NULL, type TEXT NOT NULL,"
    "  messages INTEGER NOT NULL, payload_bytes INTEGER NOT NULL,"
    "  first_received_at_ns INTEGER NOT NULL, last_received_at_ns INTEGER NOT NULL,"
    "  PRIMARY KEY (topic_id, type)) WITHOUT ROWID;"
    "CREATE TABLE summary_minutes(minute INTEGER NOT NULL, type TEXT NOT NULL,"
    "  messages INTEGER NOT NULL, PRIMARY KEY (minute, type)) WITHOUT ROWID;"
    "CREATE TABLE summary_sessions(session_id INTEGER PRIMARY KEY, messages INTEGER NOT NULL,"
    "  payload_bytes INTEGER NOT NULL, first_received_at_ns INTEGER NOT NULL,"
    "  last_received_at_ns INTEGER NOT NULL);"
    "CREATE TABLE summary_sizes(size_class INTEGER PRIMARY KEY, messages INTEGER NOT NULL,"
    "  payload_bytes INTEGER NOT NULL, min_len INTEGER NOT NULL, max_len INTEGER NOT NULL);"
    "CREATE TABLE summary_errors(code TEXT PRIMARY KEY, messages INTEGER NOT NULL,"
    "  first_received_at_ns INTEGER NOT NULL, last_received_at_ns INTEGER NOT NULL);"
    "CREATE TABLE time_runs(first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,"
    "  first_received_at_ns INTEGER NOT NULL, last_received_at_ns INTEGER NOT NULL);";

/* --- counting rows from the file ----------------------------------------------------------------
 */

#define SCAN_COLUMNS                                                                               \
    "m.seq, m.session_id, m.received_at_ns, m.topic_id, length(m.payload), m.payload_type,"        \
    " m.decode_error"

/*
 * Counts the rows stmt yields (SCAN_COLUMNS) into s; rows whose topic does not exist are left
 * out, as cursors leave them out. Topic types and, for undecodable rows, error codes are looked
 * up as needed.
 */
static hc_err scan_rows(hc_store *st, struct hc_summary *s, struct hc__selection *sel,
                        hc_error *err)
{
    struct acc_map topic_types = {0}; /* (topic_id, 0) -> messages: type_ix + 1, or 0: missing */
    sqlite3_stmt *type_of = NULL, *error_of = NULL;
    hc_err code = HC_OK;
    int rc;

    rc = sqlite3_prepare_v2(st->db, "SELECT type FROM topics WHERE id = ?", -1, &type_of, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db,
                                "SELECT t.name, m.payload FROM message_rows m"
                                " JOIN topics t ON t.id = m.topic_id WHERE m.seq = ?",
                                -1, &error_of, NULL);
    if (rc != SQLITE_OK) {
        code = hc__store_fail(st, rc, err, "read");
        goto out;
    }
    while ((rc = hc__selection_step(sel)) == SQLITE_ROW) {
        sqlite3_stmt *r = sel->stmt;
        int64_t seq = sqlite3_column_int64(r, 0), topic_id = sqlite3_column_int64(r, 3);
        struct acc_val *tt = hc__acc_get(&topic_types, topic_id, 0);
        int32_t type_ix;
        char codebuf[128];
        const char *error_code = NULL;

        if (!tt) {
            code = hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
            goto out;
        }
        if (tt->first == INT64_MAX) { /* first sight of this topic */
            tt->first = 0;
            sqlite3_bind_int64(type_of, 1, topic_id);
            rc = sqlite3_step(type_of);
            if (rc == SQLITE_ROW) {
                const char *type = (const char *)sqlite3_column_text(type_of, 0);
                tt->messages = hc__summary_type_ix(s, type ? type : "") + 1;
                rc = SQLITE_DONE;
            }
            sqlite3_reset(type_of);
            if (rc != SQLITE_DONE) {
                code = hc__store_fail(st, rc, err, "read");
                goto out;
            }
        }
        if (tt->messages == 0)
            continue; /* no such topic */
        type_ix = (int32_t)(tt->messages - 1);
        if (sqlite3_column_type(r, 5) != SQLITE_NULL) {
            const char *ptype = (const char *)sqlite3_column_text(r, 5);
            type_ix = hc__summary_type_ix(s, ptype ? ptype : "");
        }
        if (sqlite3_column_int(r, 6) != 0) {
            sqlite3_bind_int64(error_of, 1, seq);
            rc = sqlite3_step(error_of);
            if (rc == SQLITE_ROW)
                hc__summary_error_code((const char *)sqlite3_column_text(error_of, 0),
                                       sqlite3_column_blob(error_of, 1),
                                       (size_t)sqlite3_column_bytes(error_of, 1), codebuf,
                                       sizeof(codebuf));
            else
                codebuf[0] = '\0';
            sqlite3_reset(error_of);
            error_code = codebuf;
        }
        hc__summary_add(s, seq, sqlite3_column_int64(r, 1), sqlite3_column_int64(r, 2), topic_id,
                        type_ix, sqlite3_column_int64(r, 4), error_code);
        if (s->oom) {
            code = hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        code = hc__store_fail(st, rc, err, "read");
    hc__summary_flush_dense(s);
    if (code == HC_OK && s->oom)
        code = hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
out:
    sqlite3_finalize(type_of);
    sqlite3_finalize(error_of);
    hc__acc_clear(&topic_types);
    return code;
}

/* Counts the rows after seq into s. */
static hc_err scan_after(hc_store *st, struct hc_summary *s, int64_t after_seq, hc_error *err)
{
    struct hc__selection sel = {0};
    struct hc__seq_range range = {after_seq + 1, INT64_MAX};
    hc_err code;
    int rc;

    rc = sqlite3_prepare_v2(st->db,
                            "SELECT " SCAN_COLUMNS
                            " FROM message_rows m WHERE m.seq BETWEEN ? AND ? ORDER BY m.seq",
                            -1, &sel.stmt, NULL);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "read");
    sel.range_param = 1;
    sel.ranges = &range;
    sel.n_ranges = 1;
    code = scan_rows(st, s, &sel, err);
    sel.ranges = NULL;
    hc__selection_release(&sel);
    return code;
}

/* --- the writer ---------------------------------------------------------------------------------
 */

/* Reads folded_seq and the last run, so that counting continues where the tables end. */
static hc_err load_fold_state(hc_store *st, hc_error *err)
{
    struct hc_summary *s = st->acc;
    sqlite3_stmt *stmt = NULL;
    int64_t max_seq = 0;
    int rc;

    rc = hc__store_query_int(st, "SELECT folded_seq FROM summary_state WHERE id = 1",
                             &st->folded_seq);
    if (rc == SQLITE_OK)
        rc = hc__store_query_int(st, "SELECT max(seq) FROM message_rows", &max_seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db,
                                "SELECT first_seq, last_seq, first_received_at_ns,"
                                " last_received_at_ns FROM time_runs ORDER BY first_seq DESC"
                                " LIMIT 1",
                                -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    s->run_open = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        s->run.first_seq = sqlite3_column_int64(stmt, 0);
        s->run.last_seq = sqlite3_column_int64(stmt, 1);
        s->run.first_ns = sqlite3_column_int64(stmt, 2);
        s->run.last_ns = sqlite3_column_int64(stmt, 3);
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    st->acc_stale = max_seq > st->folded_seq;
    st->acc_since_ns = hc_time_monotonic_ns();
    return HC_OK;
}

/* A parameter the statement does not use (SQLITE_RANGE) is not an error. */
static int bind_used(sqlite3_stmt *stmt, int at, int rc)
{
    (void)stmt;
    (void)at;
    return rc == SQLITE_RANGE ? SQLITE_OK : rc;
}

/* Upserts one map into its table; sql binds (a, b-as-text-or-int, messages, bytes, first,
 * last) in the order its placeholders name them. */
static int fold_map(hc_store *st, const struct acc_map *m, const char *sql,
                    const struct str_table *b_names, const struct str_table *a_names)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);

    for (size_t i = 0; rc == SQLITE_OK && i < m->cap; i++) {
        const struct acc_slot *e = &m->slots[i];
        if (!e->used)
            continue;
        if (a_names)
            rc = bind_used(stmt, 1, sqlite3_bind_text(stmt, 1, a_names->items[e->a], -1, NULL));
        else
            rc = bind_used(stmt, 1, sqlite3_bind_int64(stmt, 1, e->a));
        if (rc == SQLITE_OK && b_names)
            rc = bind_used(stmt, 2, sqlite3_bind_text(stmt, 2, b_names->items[e->b], -1, NULL));
        else if (rc == SQLITE_OK)
            rc = bind_used(stmt, 2, sqlite3_bind_int64(stmt, 2, e->b));
        if (rc == SQLITE_OK)
            rc = bind_used(stmt, 3, sqlite3_bind_int64(stmt, 3, e->v.messages));
        if (rc == SQLITE_OK)
            rc = bind_used(stmt, 4, sqlite3_bind_int64(stmt, 4, e->v.bytes));
        if (rc == SQLITE_OK)
            rc = bind_used(stmt, 5, sqlite3_bind_int64(stmt, 5, e->v.first));
        if (rc == SQLITE_OK)
            rc = bind_used(stmt, 6, sqlite3_bind_int64(stmt, 6, e->v.last));
        if (rc == SQLITE_OK)
            rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Each statement names the parameters it uses: ?1 key, ?2 second key, ?3 messages, ?4 bytes,
 * ?5 first, ?6 last. */
static const char FOLD_TOPICS_SQL[] =
    "INSERT INTO summary_topics(topic_id, type, messages, payload_bytes, first_received_at_ns,"
    " last_received_at_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(topic_id, type) DO UPDATE"
    " SET messages = messages + excluded.messages,"
    " payload_bytes = payload_bytes + excluded.payload_bytes,"
    " first_received_at_ns = min(first_received_at_ns, excluded.first_received_at_ns),"
    " last_received_at_ns = max(last_received_at_ns, excluded.last_received_at_ns)";
static const char FOLD_MINUTES_SQL[] =
    "INSERT INTO summary_minutes(minute, type, messages) VALUES (?1, ?2, ?3)"
    " ON CONFLICT(minute, type) DO UPDATE SET messages = messages + excluded.messages";
static const char FOLD_SESSIONS_SQL[] =
    "INSERT INTO summary_sessions(session_id, messages, payload_bytes, first_received_at_ns,"
    " last_received_at_ns) VALUES (?1, ?3, ?4, ?5, ?6) ON CONFLICT(session_id) DO UPDATE"
    " SET messages = messages + excluded.messages,"
    " payload_bytes = payload_bytes + excluded.payload_bytes,"
    " first_received_at_ns = min(first_received_at_ns, excluded.first_received_at_ns),"
    " last_received_at_ns = max(last_received_at_ns, excluded.last_received_at_ns)";
static const char FOLD_SIZES_SQL[] =
    "INSERT INTO summary_sizes(size_class, messages, payload_bytes, min_len, max_len)"
    " VALUES (?1, ?3, ?4, ?5, ?6) ON CONFLICT(size_class) DO UPDATE"
    " SET messages = messages + excluded.messages,"
    " payload_bytes = payload_bytes + excluded.payload_bytes,"
    " min_len = min(min_len, excluded.min_len), max_len = max(max_len, excluded.max_len)";
static const char FOLD_ERRORS_SQL[] =
    "INSERT INTO summary_errors(code, messages, first_received_at_ns, last_received_at_ns)"
    " VALUES (?1, ?3, ?5, ?6) ON CONFLICT(code) DO UPDATE"
    " SET messages = messages + excluded.messages,"
    " first_received_at_ns = min(first_received_at_ns, excluded.first_received_at_ns),"
    " last_received_at_ns = max(last_received_at_ns, excluded.last_received_at_ns)";

static int fold_runs(hc_store *st, const struct hc_summary *s)
{
    sqlite3_stmt *stmt = NULL;
    int rc =
        sqlite3_prepare_v2(st->db,
                           "INSERT INTO time_runs(first_seq, last_seq, first_received_at_ns,"
                           " last_received_at_ns) VALUES (?, ?, ?, ?)"
                           " ON CONFLICT(first_seq) DO UPDATE SET last_seq = excluded.last_seq,"
                           " last_received_at_ns = excluded.last_received_at_ns",
                           -1, &stmt, NULL);

    for (size_t i = 0; rc == SQLITE_OK && i < s->n_runs; i++) {
        sqlite3_bind_int64(stmt, 1, s->runs[i].first_seq);
        sqlite3_bind_int64(stmt, 2, s->runs[i].last_seq);
        sqlite3_bind_int64(stmt, 3, s->runs[i].first_ns);
        sqlite3_bind_int64(stmt, 4, s->runs[i].last_ns);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Recounts the rows after folded_seq (a killed writer's tail, a rolled-back batch). */
static hc_err recount(hc_store *st, hc_error *err)
{
    struct hc_summary *s = st->acc;
    hc_err code;

    hc__summary_reset_counts(s);
    code = load_fold_state(st, err);
    if (code == HC_OK)
        code = scan_after(st, s, st->folded_seq, err);
    if (code == HC_OK)
        st->acc_stale = false;
    return code;
}

static bool fold_due(const hc_store *st)
{
    const struct hc_summary *s = st->acc;
    size_t entries = s->topics.n + s->dense_topics_used + s->minutes.n + DENSE_TYPES / 16 +
                     s->sessions.n + s->sizes.n + s->dense_sizes_used + s->errors.n + s->n_runs;

    if (s->rows >= HC_STORE_SUMMARY_TAIL_MAX / 2)
        return true;
    if (s->rows < (int64_t)entries * FOLD_ROWS_PER_ENTRY)
        return false;
    return s->rows >= FOLD_MIN_ROWS || hc_time_monotonic_ns() - st->acc_since_ns >= FOLD_MAX_AGE_NS;
}

hc_err hc__summary_fold(hc_store *st, bool force, hc_error *err)
{
    struct hc_summary *s = st->acc;
    int64_t last_seq = 0;
    hc_err code = HC_OK;
    int rc;

    if (!s)
        return HC_OK;
    if (s->oom)
        st->acc_stale = true;
    if (!st->acc_stale && !s->rows)
        return HC_OK;
    /* a stale count is recounted at the next fold point; a tail must never outgrow its bound */
    if (!force && !fold_due(st))
        return HC_OK;
    if (st->acc_stale) {
        code = recount(st, err);
        if (code != HC_OK)
            return code;
    }
    hc__summary_flush_dense(s);
    if (s->oom) {
        st->acc_stale = true;
        return hc_error_set(err, HC_ERR_NOMEM, "cannot write to '%s': out of memory", st->path);
    }
    rc = hc__store_query_int(st, "SELECT max(seq) FROM message_rows", &last_seq);
    if (rc == SQLITE_OK)
        rc = fold_map(st, &s->topics, FOLD_TOPICS_SQL, &s->types, NULL);
    if (rc == SQLITE_OK)
        rc = fold_map(st, &s->minutes, FOLD_MINUTES_SQL, &s->types, NULL);
    if (rc == SQLITE_OK)
        rc = fold_map(st, &s->sessions, FOLD_SESSIONS_SQL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = fold_map(st, &s->sizes, FOLD_SIZES_SQL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = fold_map(st, &s->errors, FOLD_ERRORS_SQL, NULL, &s->codes);
    if (rc == SQLITE_OK)
        rc = fold_runs(st, s);
    if (rc == SQLITE_OK && last_seq > st->folded_seq) {
        sqlite3_stmt *stmt = NULL;
        rc = sqlite3_prepare_v2(st->db, "UPDATE summary_state SET folded_seq = ? WHERE id = 1", -1,
                                &stmt, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 1, last_seq);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        sqlite3_finalize(stmt);
    }
    if (rc != SQLITE_OK) {
        st->acc_stale = true;
        return hc__store_fail(st, rc, err, "write to");
    }
    /* Until the commit succeeds this fold is not on disk: the caller marks the count stale if
     * it fails. The run in progress stays open: the next rows may extend it. */
    if (last_seq > st->folded_seq)
        st->folded_seq = last_seq;
    hc__summary_reset_counts(s);
    st->acc_since_ns = hc_time_monotonic_ns();
    return HC_OK;
}

void hc__summary_abandon(hc_store *st)
{
    if (st->acc)
        st->acc_stale = true;
}

/* Adds the summary tables to a version 1 file and counts every row, in one transaction. */
static hc_err upgrade_in_place(hc_store *st, hc_error *err)
{
    char sql[200];
    hc_err code = hc__store_exec(st, "BEGIN IMMEDIATE", err, "upgrade");

    if (code != HC_OK)
        return code;
    code = hc__store_exec(st, hc__summary_schema_sql, err, "upgrade");
    snprintf(sql, sizeof(sql),
             "PRAGMA user_version = %d; INSERT OR REPLACE INTO meta(key, value) VALUES "
             "('schema_version', '%d');",
             HC_STORE_SCHEMA_VERSION, HC_STORE_SCHEMA_VERSION);
    if (code == HC_OK)
        code = hc__store_exec(st, sql, err, "upgrade");
    if (code == HC_OK)
        code = load_fold_state(st, err);
    if (code == HC_OK)
        code = hc__summary_fold(st, true, err);
    if (code == HC_OK)
        code = hc__store_exec(st, "COMMIT", err, "upgrade");
    if (code != HC_OK) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return code;
    }
    st->schema_version = HC_STORE_SCHEMA_VERSION;
    return HC_OK;
}

hc_err hc__summary_writer_open(hc_store *st, hc_error *err)
{
    st->acc = calloc(1, sizeof(*st->acc));
    if (!st->acc)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot open '%s': out of memory", st->path);
    if (st->schema_version < 2)
        return upgrade_in_place(st, err);
    return load_fold_state(st, err);
}

/* Empties the summary tables and counts every row again, in one transaction. */
static hc_err rebuild(hc_store *st, hc_error *err)
{
    hc_err code = hc__store_exec(st, "BEGIN IMMEDIATE", err, "upgrade");

    if (code != HC_OK)
        return code;
    code = hc__store_exec(st,
                          "DELETE FROM summary_topics; DELETE FROM summary_minutes;"
                          "DELETE FROM summary_sessions; DELETE FROM summary_sizes;"
                          "DELETE FROM summary_errors; DELETE FROM time_runs;"
                          "UPDATE summary_state SET folded_seq = 0;",
                          err, "upgrade");
    if (code == HC_OK) {
        hc__summary_reset_counts(st->acc);
        st->acc->run_open = false;
        st->acc_stale = true;
        code = hc__summary_fold(st, true, err);
    }
    if (code == HC_OK)
        code = hc__store_exec(st, "COMMIT", err, "upgrade");
    if (code != HC_OK)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return code;
}

hc_err hc_store_upgrade(const char *path, int *from_version, hc_error *err)
{
    hc_store *st = NULL;
    int version = 0;
    hc_err code;

    if (from_version)
        *from_version = 0;
    /* a reader's open first: a missing file is an error here, not a new recording */
    code = hc_store_open(path, HC_STORE_READ, &st, err);
    if (code == HC_OK)
        version = st->schema_version;
    hc_store_close(st, NULL);
    st = NULL;
    if (code == HC_OK)
        code = hc_store_open(path, HC_STORE_APPEND, &st, err);
    /* a current file's summaries are counted again (after rows were edited with sqlite3) */
    if (code == HC_OK && version >= 2)
        code = rebuild(st, err);
    if (code == HC_OK)
        code = hc_store_close(st, err);
    else
        hc_store_close(st, NULL);
    if (code == HC_OK && from_version)
        *from_version = version;
    return code;
}

int hc_store_schema_version(const hc_store *st)
{
    return st ? st->schema_version : 0;
}

/* --- the reader ---------------------------------------------------------------------------------
 */

/* Reads one summary table into m; sql yields (a or a's text, b's text or 0, messages, bytes,
 * first, last). */
static hc_err load_map(hc_store *st, const char *sql, struct acc_map *m, struct str_table *a_names,
                       struct str_table *b_names, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);

    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t a, b;
        struct acc_val *v;
        if (a_names) {
            const char *text = (const char *)sqlite3_column_text(stmt, 0);
            a = hc__str_intern(a_names, text ? text : "");
        } else {
            a = sqlite3_column_int64(stmt, 0);
        }
        if (b_names) {
            const char *text = (const char *)sqlite3_column_text(stmt, 1);
            b = hc__str_intern(b_names, text ? text : "");
        } else {
            b = sqlite3_column_int64(stmt, 1);
        }
        if ((a_names && a < 0) || (b_names && b < 0) || !(v = hc__acc_get(m, a, b))) {
            sqlite3_finalize(stmt);
            return hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
        }
        hc__acc_count(v, sqlite3_column_int64(stmt, 3), sqlite3_column_int64(stmt, 4),
                      sqlite3_column_int64(stmt, 5), sqlite3_column_int64(stmt, 2));
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "read");
    return HC_OK;
}

static hc_err load_tables(hc_store *st, struct hc_summary *s, unsigned parts, int64_t *folded,
                          hc_error *err)
{
    hc_err code = HC_OK;
    int rc = hc__store_query_int(st, "SELECT folded_seq FROM summary_state WHERE id = 1", folded);

    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "read");
    if (parts == HC__SUMMARY_SESSIONS)
        return load_map(st,
                        "SELECT session_id, 0, messages, payload_bytes, first_received_at_ns,"
                        " last_received_at_ns FROM summary_sessions",
                        &s->sessions, NULL, NULL, err);
    code = load_map(st,
                    "SELECT topic_id, type, messages, payload_bytes, first_received_at_ns,"
                    " last_received_at_ns FROM summary_topics",
                    &s->topics, NULL, &s->types, err);
    if (parts == HC__SUMMARY_TOPICS)
        return code;
    if (code == HC_OK && (parts & HC__SUMMARY_MINUTES))
        code = load_map(st, "SELECT minute, type, messages, 0, 0, 0 FROM summary_minutes",
                        &s->minutes, NULL, &s->types, err);
    if (code == HC_OK)
        code = load_map(st,
                        "SELECT session_id, 0, messages, payload_bytes, first_received_at_ns,"
                        " last_received_at_ns FROM summary_sessions",
                        &s->sessions, NULL, NULL, err);
    if (code == HC_OK)
        code = load_map(st,
                        "SELECT size_class, 0, messages, payload_bytes, min_len, max_len"
                        " FROM summary_sizes",
                        &s->sizes, NULL, NULL, err);
    if (code == HC_OK)
        code = load_map(st,
                        "SELECT code, 0, messages, 0, first_received_at_ns, last_received_at_ns"
                        " FROM summary_errors",
                        &s->errors, &s->codes, NULL, err);
    return code;
}

static hc_err load_topic_infos(hc_store *st, struct hc_summary *s, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    size_t cap = 0;
    int rc = sqlite3_prepare_v2(st->db, "SELECT id, name, kind, device_id FROM topics ORDER BY id",
                                -1, &stmt, NULL);

    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct topic_info *ti;
        const char *name = (const char *)sqlite3_column_text(stmt, 1);
        const char *kind = (const char *)sqlite3_column_text(stmt, 2);
        const char *device = (const char *)sqlite3_column_text(stmt, 3);
        if (s->n_topic_infos == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct topic_info *p = realloc(s->topic_infos, ncap * sizeof(*p));
            if (!p)
                goto oom;
            s->topic_infos = p;
            cap = ncap;
        }
        ti = &s->topic_infos[s->n_topic_infos];
        ti->id = sqlite3_column_int64(stmt, 0);
        ti->name = strdup(name ? name : "");
        ti->kind = strdup(kind ? kind : "");
        ti->device_id = strdup(device ? device : "");
        s->n_topic_infos++;
        if (!ti->name || !ti->kind || !ti->device_id)
            goto oom;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "read");
    return HC_OK;
oom:
    sqlite3_finalize(stmt);
    return hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
}

hc_err hc_store_summary_load(hc_store *st, const struct hc_select *sel, unsigned flags,
                             hc_summary **out, hc_error *err)
{
    return hc__summary_load(st, sel, flags, HC__SUMMARY_ALL, out, err);
}

hc_err hc__summary_load(hc_store *st, const struct hc_select *sel, unsigned flags, unsigned parts,
                        hc_summary **out, hc_error *err)
{
    struct hc_summary *s = NULL;
    struct hc__selection scan = {0};
    bool began = false;
    hc_err code = HC_OK;

    if (out)
        *out = NULL;
    if (!st || !out)
        return hc_error_set(err, HC_ERR_INVALID, "cannot summarize: missing argument");
    s = calloc(1, sizeof(*s));
    if (!s)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
    s->everything = hc__select_is_everything(sel);
    /* one snapshot: the tables and the tail after them must agree */
    if (sqlite3_get_autocommit(st->db)) {
        code = hc__store_exec(st, "BEGIN", err, "read");
        began = code == HC_OK;
    }
    if (flags & HC_SUMMARY_NO_MINUTES)
        parts &= ~HC__SUMMARY_MINUTES;
    if (code == HC_OK && s->everything && !(flags & HC_SUMMARY_SCAN) && st->schema_version >= 2) {
        int64_t folded = 0;
        code = load_tables(st, s, parts, &folded, err);
        if (code == HC_OK)
            code = scan_after(st, s, folded, err);
    } else if (code == HC_OK) {
        code = hc__store_select(st, sel, SCAN_COLUMNS, &scan, err);
        if (code == HC_OK)
            code = scan_rows(st, s, &scan, err);
        hc__selection_release(&scan);
    }
    if (code == HC_OK && s->everything) {
        int rc = hc__store_query_int(st, "SELECT count(*) FROM sessions", &s->all_sessions);
        if (rc != SQLITE_OK)
            code = hc__store_fail(st, rc, err, "read");
    }
    if (code == HC_OK && (parts & HC__SUMMARY_NAMES))
        code = load_topic_infos(st, s, err);
    if (began)
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (code != HC_OK) {
        hc_summary_free(s);
        return code;
    }
    *out = s;
    return HC_OK;
}

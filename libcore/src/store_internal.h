/*
 * What the recording store's source files share (hc__store_ prefix): the store handle, its topic
 * cache and the helpers every part uses. store.c opens, checks and closes recordings and keeps
 * their meta; store_write.c appends in batches; store_read.c turns selections into SQL and
 * streams them; store_summary.c keeps the summaries in memory and reads them out,
 * store_summary_tables.c keeps their SQL tables (schema, fold, load, upgrade); store_segments.c
 * reads a directory of segments as one recording. This header is the only file in hkit that
 * includes sqlite3.h, so that a change of schema or of SQL API stays inside the store.
 * Internal to libcore; not part of the public API.
 */
#ifndef HCORE_STORE_INTERNAL_H
#define HCORE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "decode_split.h"
#include "hcore/store.h"

#define STORE_DEFAULT_FLUSH_NS (200 * 1000 * 1000LL)
/* Large enough that commits are a small share of the work, small enough to bound the WAL. */
#define STORE_DEFAULT_BATCH_ROWS 10000
/* The cache is dropped and rebuilt past this many topics, so memory stays bounded. */
#define STORE_TOPIC_CACHE_MAX 100000
#define STORE_BUSY_TIMEOUT_MS 5000
/*
 * Pages of 32 KiB instead of SQLite's 4 KiB: the WAL writes every page as two write calls and a
 * checkpoint reads it back and writes it again, so larger pages mean far fewer system calls for
 * the same bytes. Measured with 1M Haltian-sized messages: ~+25% appends per CPU second for
 * 32 KiB (16 KiB about as good, 64 KiB no better). Rows stay byte-exact whatever the page size.
 */
#define STORE_PAGE_SIZE_SQL "PRAGMA page_size = 32768"
/* The -wal file is checkpointed into the database once it holds this many bytes of pages. */
#define STORE_WAL_CHECKPOINT_BYTES (8LL * 1024 * 1024)
/* PRAGMA quick_check reads the whole file: only worth it while that is quick. */
#define STORE_QUICK_CHECK_MAX_BYTES (8LL * 1024 * 1024)

/* --- topic cache: open addressing, linear probing -------------------------------------------- */

/* One cached topic: its row id and the decoder's topic half, with the name right after them so
 * a lookup that finds the slot touches one allocation. */
struct topic_entry {
    int64_t id;
    int32_t type_ix; /* the topic's type in the summary's table of types, or -1 */
    struct hc__decoded_topic dt;
    size_t len;
    char name[];
};

/* Slots stay small (16 bytes) so that probing a few thousand topics stays in the CPU's cache. */
struct topic_slot {
    uint64_t hash;
    struct topic_entry *e; /* NULL: empty slot */
};

struct topic_cache {
    struct topic_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
};

/* --- the store ------------------------------------------------------------------------------- */

struct hc_store {
    sqlite3 *db;
    char *path;
    bool writable;
    char *private_dir, *private_db; /* a reader's private copy (copy_for_reading), or NULL */
    sqlite3_stmt *insert_message;
    sqlite3_stmt *select_topic;
    sqlite3_stmt *insert_topic;
    bool in_batch;
    int64_t batch_started_ns; /* CLOCK_MONOTONIC */
    int64_t batch_rows;
    int64_t flush_interval_ns;
    /* How long recent commits took (decaying maximum): a batch is committed this much before
     * its interval ends, so that the commit has returned by then. */
    int64_t commit_margin_ns;
    int64_t max_batch_rows;
    int64_t max_session_id;
    /* Values still bound to insert_message (bindings survive sqlite3_reset): a recorder's
     * session and flags rarely change, so they are not bound again for every row. */
    bool binds_valid;
    int64_t bound_session;
    int bound_qos, bound_retain, bound_dup;
    struct topic_cache topics;
    int schema_version; /* of the file (a version 1 file opened for writing is upgraded) */
    /* Writer: what was appended since the summaries were last folded into their tables. When
     * stale (a rolled-back batch, a tail left by a killed writer), the next fold recomputes it
     * from the rows after folded_seq first. */
    struct hc_summary *acc;
    bool acc_stale;
    int64_t acc_since_ns; /* CLOCK_MONOTONIC of the last fold */
    int64_t folded_seq;
};

/* "cannot <what> '<path>': <sqlite's reason>" with the code sqlite's result maps to. */
hc_err hc__store_fail(const hc_store *st, int rc, hc_error *err, const char *what);

/* Runs SQL text without results; an error names what. */
hc_err hc__store_exec(hc_store *st, const char *sql, hc_error *err, const char *what);

/* Runs a statement returning one integer (a PRAGMA, a count); 0 when it returns no row. Returns
 * SQLite's result code. */
int hc__store_query_int(hc_store *st, const char *sql, int64_t *out);

/* Commits the open batch, if any. */
hc_err hc__store_commit(hc_store *st, hc_error *err);

/* HC_ERR_INVALID for a store opened read-only. */
hc_err hc__store_require_writable(const hc_store *st, hc_error *err);

/* --- selections (store_read.c) --- */

/* An inclusive range of seq. */
struct hc__seq_range {
    int64_t lo, hi;
};

/*
 * A selection being streamed: one statement with "m.seq BETWEEN ? AND ?" when a time window
 * narrowed it to ranges of seq (run one after the other, in seq order), and the limit counted
 * here.
 */
struct hc__selection {
    sqlite3_stmt *stmt;
    int range_param; /* parameter number of the range's lo (hi follows); 0: no ranges */
    struct hc__seq_range *ranges;
    size_t n_ranges, next_range;
    int64_t limit, returned; /* limit 0: none */
};

/* Prepares "SELECT <columns> FROM message_rows m WHERE <sel> ORDER BY m.seq". */
hc_err hc__store_select(hc_store *st, const struct hc_select *sel, const char *columns,
                        struct hc__selection *out, hc_error *err);

/* SQLITE_ROW with the next selected row, SQLITE_DONE, or SQLite's error. */
int hc__selection_step(struct hc__selection *s);

void hc__selection_release(struct hc__selection *s);

/* True when sel selects every message. */
bool hc__select_is_everything(const struct hc_select *sel);

/* --- summaries (store_summary.c, store_summary_tables.c) --- */

/* The summary tables (part of the schema of a new file, or added by an upgrade). */
extern const char hc__summary_schema_sql[];

/* After a writer's open: upgrades a version 1 file, loads the fold state. */
hc_err hc__summary_writer_open(hc_store *st, hc_error *err);

/* The index of type in the summary's table of types (interned), -1 when out of memory. */
int32_t hc__summary_type_ix(struct hc_summary *acc, const char *type);

/* Counts one appended message; error_code is the decoder's code, NULL when it decoded. */
void hc__summary_add(struct hc_summary *acc, int64_t seq, int64_t session_id,
                     int64_t received_at_ns, int64_t topic_id, int32_t type_ix, int64_t payload_len,
                     const char *error_code);

/* Inside the open batch: writes what was counted into the summary tables when due (or always
 * when force). */
hc_err hc__summary_fold(hc_store *st, bool force, hc_error *err);

/* A batch was rolled back: what was counted no longer matches the rows. */
void hc__summary_abandon(hc_store *st);

/* The messages and first and last received_at_ns of one session in a summary; false when it
 * has none. */
bool hc__summary_session(const struct hc_summary *s, int64_t session_id, int64_t *messages,
                         int64_t *first_ns, int64_t *last_ns);

/* Parts of a whole-recording summary a caller needs (the others stay empty): totals by topic
 * (messages, bytes, times), sessions, or everything. A selection is always scanned whole. */
#define HC__SUMMARY_TOPICS 1u
#define HC__SUMMARY_SESSIONS 2u
#define HC__SUMMARY_MINUTES 4u
#define HC__SUMMARY_NAMES 8u /* topic names, kinds, devices for grouping */
#define HC__SUMMARY_ALL 0xffu
hc_err hc__summary_load(hc_store *st, const struct hc_select *sel, unsigned flags, unsigned parts,
                        struct hc_summary **out, hc_error *err);

/* Before the writer's last commit: folds whatever is counted. */
hc_err hc__store_finish(hc_store *st, hc_error *err);

/* The decoder's error code for a message ("" when none): buf holds the text. */
void hc__summary_error_code(const char *topic, const unsigned char *payload, size_t len, char *buf,
                            size_t size);

/* Drops every cached topic. */
void hc__store_topic_cache_clear(struct topic_cache *c);

/* --- segments (store_segments.c) --- */

/* Merges the segments of dir into a new recording at merged_path (which must not exist). */
hc_err hc__store_merge_segments(const char *dir, const char *merged_path, hc_error *err);

#endif

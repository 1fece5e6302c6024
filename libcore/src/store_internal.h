/*
 * What the recording store's source files share (hc__store_ prefix): the store handle, its topic
 * cache and the helpers every part uses. store.c opens, checks and closes recordings and keeps
 * their meta; store_write.c appends in batches; store_read.c turns selections into SQL and
 * streams them; store_summary.c keeps and reads the summaries. They are the only files in hkit
 * that include sqlite3.h, so that a change of schema or of SQL API stays inside the store.
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

/* Drops every cached topic. */
void hc__store_topic_cache_clear(struct topic_cache *c);

#endif

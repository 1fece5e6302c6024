/*
 * The recording store: one SQLite file per recording (WAL mode), holding every message byte for
 * byte with its topic, arrival times, flags and session, plus decoded index columns so that
 * selections run in SQL. Writes are batched in transactions and committed at least every flush
 * interval; readers stream in arrival order in constant memory.
 *
 * Schema (PRAGMA user_version = HC_STORE_SCHEMA_VERSION, application_id = HC_STORE_APP_ID):
 *   meta(key TEXT PRIMARY KEY, value TEXT)             never credentials
 *   sessions(id, started_at_ns, started_mono_ns, ended_at_ns, end_reason)
 *   topics(id, name, kind, type, device_id)            interned topic names with the columns the
 *                                                      decoder takes from the topic alone
 *   message_rows(seq, session_id, received_at_ns, mono_ns, topic_id, payload BLOB, qos, retain,
 *            dup, measured_at_ms, decode_error, payload_type)
 *                                                      one row per message; payload_type is NULL
 *                                                      unless the payload names the type (legacy
 *                                                      Thingsee)
 *   messages                                           view: message_rows with kind, type
 *                                                      (payload_type, else the topic's) and
 *                                                      device_id, i.e. one row per message with
 *                                                      every decoded column
 *   messages_v                                         view: the same with topic names, readable
 *                                                      times, payload as text
 * decode_error is 1 when the decoder reported an error for the message, else 0.
 *
 * Summaries (schema version 2), written in the same transactions as the messages:
 *   summary_state(id = 1, folded_seq)                  the summaries below cover every message
 *                                                      with seq <= folded_seq; the few after it
 *                                                      (at most HC_STORE_SUMMARY_TAIL_MAX, only
 *                                                      while a writer runs or after it was
 *                                                      killed) are summed when read
 *   summary_topics(topic_id, type, messages, payload_bytes, first_received_at_ns,
 *                  last_received_at_ns)                per topic and type (one type per topic
 *                                                      except legacy Thingsee); first and last
 *                                                      are the minimum and maximum
 *   summary_minutes(minute, type, messages)            minute = floor(received_at_ns / 60 s)
 *   summary_sessions(session_id, messages, payload_bytes, first_received_at_ns,
 *                    last_received_at_ns)
 *   summary_sizes(size_class, messages, payload_bytes, min_len, max_len)
 *                                                      payload sizes: one class per length below
 *                                                      1024 bytes, 64 classes per doubling above
 *   summary_errors(code, messages, first_received_at_ns, last_received_at_ns)
 *                                                      decode errors by the decoder's code
 *   time_runs(first_seq, last_seq, first_received_at_ns, last_received_at_ns)
 *                                                      stretches of seq over which received_at_ns
 *                                                      never decreases: a new run starts where
 *                                                      the clock stepped back. Time windows find
 *                                                      their start by binary search inside runs.
 * A version 1 file (no summaries) is read as it is, the summaries computed in memory by one scan
 * when asked for; opening it for writing, or hc_store_upgrade, converts it to version 2.
 */
#ifndef HCORE_STORE_H
#define HCORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"
#include "hcore/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HC_STORE_SCHEMA_VERSION 2
/* The unfolded messages a reader may have to sum after the stored summaries (see above). */
#define HC_STORE_SUMMARY_TAIL_MAX (1 << 20)
#define HC_STORE_APP_ID 0x686b6974 /* "hkit" */

typedef struct hc_store hc_store;
typedef struct hc_cursor hc_cursor;

enum hc_store_mode {
    HC_STORE_READ = 0,   /* existing recording, read only: no byte of it or beside it changes */
    HC_STORE_CREATE = 1, /* new recording; HC_ERR_EXISTS if the file exists */
    HC_STORE_APPEND = 2, /* existing recording for writing; created when missing */
    HC_STORE_FORCE = 3   /* new recording, replacing any existing file */
};

/*
 * Opens or creates a recording. A file that is not a recording (wrong application_id, no
 * schema, not SQLite), a truncated or corrupt one, or a newer schema returns a clear error
 * (HC_ERR_NOT_RECORDING, HC_ERR_CORRUPT, HC_ERR_SCHEMA_NEWER). *out is owned by the caller:
 * hc_store_close.
 * HC_STORE_READ writes nothing, also where nothing may be written: a file without a -wal is read
 * as immutable; with a -wal and a -shm (a writer running or crashed) through a read-only -shm,
 * seeing the committed batches, checkpointing nothing; a -wal without its -shm from a private
 * copy under $TMPDIR that hc_store_close removes. A read sees the batches committed when it
 * began.
 */
hc_err hc_store_open(const char *path, enum hc_store_mode mode, hc_store **out, hc_error *err);

/*
 * What is checked when: hc_store_open reads the header (SQLite's, application_id, schema
 * version, a truncated copy) and, for files up to 8 MiB, runs PRAGMA quick_check (page
 * structure, no index contents). Damage found later while reading returns HC_ERR_CORRUPT from
 * the reading call. hc_store_check reads everything: PRAGMA integrity_check (every page, and
 * every index against its table) and then the recording's own rules (each message names an
 * existing session and topic; flags, QoS and column types are values a writer produces).
 * Returns HC_OK, or HC_ERR_CORRUPT with the first problem on one line. Bytes changed inside a
 * payload that keep the page well-formed cannot be detected: the format has no checksums.
 */
hc_err hc_store_check(hc_store *st, hc_error *err);

/*
 * Checks, creating and changing nothing, that hc_store_open(path, mode) for writing can be
 * expected to succeed, so a tool can refuse a bad path before it does anything slow: path is
 * not a directory; for HC_STORE_CREATE it does not exist; its directory exists and is writable
 * (the -wal and -shm go there); for HC_STORE_APPEND an existing file is readable, writable,
 * not empty, and a recording this version can read (the errors of hc_store_open). Returns
 * HC_OK, HC_ERR_EXISTS, HC_ERR_IO, HC_ERR_INVALID, HC_ERR_NOT_RECORDING, ...
 */
hc_err hc_store_check_writable(const char *path, enum hc_store_mode mode, hc_error *err);

/*
 * Converts a version 1 recording to the current schema in place: adds the summary tables and
 * fills them with one scan, in one transaction (a crash leaves the file as it was). A current
 * file's summaries are emptied and counted again (for a file whose rows were edited with
 * sqlite3: the summaries cannot see such edits). *from_version (may be NULL) receives the
 * version found. Errors as hc_store_open; a missing file is HC_ERR_IO.
 */
hc_err hc_store_upgrade(const char *path, int *from_version, hc_error *err);

/* Schema version of the file as opened (1 or 2; a version 1 file opened for writing is 2). */
int hc_store_schema_version(const hc_store *st);

/* Commits pending writes and closes. Accepts NULL. Returns the commit's error, if any. */
hc_err hc_store_close(hc_store *st, hc_error *err);

/* --- meta ------------------------------------------------------------------------------------ */

/* Sets (replaces) one meta value. Callers never store credentials here. */
hc_err hc_store_meta_set(hc_store *st, const char *key, const char *value, hc_error *err);

/* *value_out is a new string (free()) or NULL when the key is absent. */
hc_err hc_store_meta_get(hc_store *st, const char *key, char **value_out, hc_error *err);

/* Calls fn for each meta row in key order; stops early when fn returns non-zero. */
hc_err hc_store_meta_each(hc_store *st, int (*fn)(const char *key, const char *value, void *user),
                          void *user, hc_error *err);

/* --- writing --------------------------------------------------------------------------------- */

/*
 * Maximum time a written message may stay uncommitted (default 200 ms). Appends commit the batch
 * once it is older than this; hc_store_flush_if_due lets an idle writer honour the bound too.
 */
void hc_store_set_flush_interval(hc_store *st, int64_t interval_ns);

/*
 * Maximum number of messages in one uncommitted batch (default 10000): appends also commit once
 * the batch holds this many rows, which bounds the -wal file and the loss on a crash when
 * messages arrive faster than the flush interval. Values below 1 mean 1.
 */
void hc_store_set_batch_rows(hc_store *st, int64_t rows);

/*
 * Starts a session (one per connection). started_at_ns is CLOCK_REALTIME, started_mono_ns
 * CLOCK_MONOTONIC at connect; message mono_ns values are relative to started_mono_ns.
 */
hc_err hc_store_session_begin(hc_store *st, int64_t started_at_ns, int64_t started_mono_ns,
                              int64_t *session_id_out, hc_error *err);

/* Ends a session with its CLOCK_REALTIME end and a short reason ("clean exit", "connection
 * lost: ..."). Commits. */
hc_err hc_store_session_end(hc_store *st, int64_t session_id, int64_t ended_at_ns,
                            const char *reason, hc_error *err);

/*
 * Appends one message (msg->seq is ignored and assigned; msg->session_id must name a session of
 * this store; msg->mono_ns is relative to the session's start). Decoded index columns are
 * computed with hc_decode_index. Commits when the batch is due. *seq_out may be NULL.
 */
hc_err hc_store_append(hc_store *st, const struct hc_msg *msg, int64_t *seq_out, hc_error *err);

/* Commits the current batch now. */
hc_err hc_store_flush(hc_store *st, hc_error *err);

/*
 * Commits the current batch if it is due: when its first row is older than the flush interval
 * less the time recent commits took and 2 ms for waking up (at most half the interval), so
 * that the commit has returned within the interval of the batch's first append.
 */
hc_err hc_store_flush_if_due(hc_store *st, hc_error *err);

/*
 * Nanoseconds until the open batch is due (0: now), INT64_MAX when nothing is uncommitted or st
 * is NULL. A writer that waits for input waits at most this long, then calls
 * hc_store_flush_if_due, to keep the flush bound while no message arrives.
 */
int64_t hc_store_flush_due_in_ns(const hc_store *st);

/*
 * Durability of commits. Off (the default): SQLite's synchronous=NORMAL in WAL mode; a commit
 * survives a crash of the process, but a power loss or kernel crash may roll back commits made
 * since the last checkpoint (every 8 MiB of WAL). On: synchronous=FULL; every commit is on the
 * storage device (fsync of the -wal) before it returns. Commits the open batch first.
 */
hc_err hc_store_set_sync_commits(hc_store *st, bool sync_commits, hc_error *err);

/*
 * Rewrites the file to drop free pages (VACUUM) so deleted or replaced bytes do not survive in
 * it. Commits first.
 */
hc_err hc_store_vacuum(hc_store *st, hc_error *err);

/*
 * Builds the secondary indexes on messages (type, device_id, received_at_ns) if missing. They are
 * not maintained on the write path by default because they slow appends several times over (see
 * README, "The recording format"); queries use them once they exist, and later appends keep them
 * up to date. Commits first.
 */
hc_err hc_store_index(hc_store *st, hc_error *err);

/* --- reading --------------------------------------------------------------------------------- */

/*
 * A selection. Zero-initialise, then fill what matters; empty lists select everything. Lists
 * within one field are OR-ed; fields are AND-ed. Time bounds are on received_at_ns:
 * since inclusive, until exclusive.
 */
struct hc_select {
    bool has_since;
    int64_t since_ns;
    bool has_until;
    int64_t until_ns;
    const char *const *topic_filters; /* MQTT filters with + and # */
    size_t n_topic_filters;
    const char *const *kinds; /* event kinds ("measurements") */
    size_t n_kinds;
    const char *const *types; /* canonical or received type names */
    size_t n_types;
    const char *const *devices; /* device ids */
    size_t n_devices;
    const int64_t *sessions; /* session ids */
    size_t n_sessions;
    int64_t limit; /* 0: no limit */
};

/*
 * Streams the selected messages in arrival order (seq). *out: hc_cursor_free, before closing the
 * store. Invalid topic filters, NULL list entries or a negative limit return HC_ERR_INVALID.
 * A writer's own cursor sees its uncommitted batch; other connections see committed batches.
 */
hc_err hc_store_query(hc_store *st, const struct hc_select *sel, hc_cursor **out, hc_error *err);

/*
 * Fills *msg with the next message (borrowed pointers, valid until the next call or free).
 * Returns HC_OK, HC_DONE at the end, or an error (e.g. HC_ERR_CORRUPT).
 */
hc_err hc_cursor_next(hc_cursor *cur, struct hc_msg *msg, hc_error *err);

/* Accepts NULL. */
void hc_cursor_free(hc_cursor *cur);

/* --- summaries (hcat --info) ----------------------------------------------------------------- */

struct hc_store_summary {
    int64_t messages;
    int64_t payload_bytes;
    int64_t first_received_at_ns; /* 0 when empty */
    int64_t last_received_at_ns;
    int64_t sessions;
    int64_t decode_errors;
    int64_t payload_min, payload_max; /* bytes */
    double payload_mean;
    int64_t payload_p50, payload_p99;
};

hc_err hc_store_summarize(hc_store *st, const struct hc_select *sel, struct hc_store_summary *out,
                          hc_error *err);

/*
 * Counts the selected messages and, when first_received_at_ns is not NULL, gives the earliest
 * received_at_ns among them (0 when none): one pass, no sorting, far cheaper than
 * hc_store_summarize on a large recording (what a replay needs before it starts).
 */
hc_err hc_store_count(hc_store *st, const struct hc_select *sel, int64_t *messages,
                      int64_t *first_received_at_ns, hc_error *err);

/*
 * Counts the selected messages grouped by one column: "kind", "type", "device_id", "topic",
 * "session_id", or "decode_error" (the error code of undecodable messages). fn gets each group's
 * key (never NULL, "" for empty), its count and its first and last received_at_ns, ordered by
 * count descending then key.
 */
hc_err hc_store_count_by(hc_store *st, const struct hc_select *sel, const char *column,
                         int (*fn)(const char *key, int64_t count, int64_t first_ns,
                                   int64_t last_ns, void *user),
                         void *user, hc_error *err);

/*
 * All the summaries of a selection at once (hcat --info, reports): totals, groups, sessions,
 * minutes. For the whole recording they come from the summary tables (plus the unfolded tail),
 * in time independent of the recording's size; for any other selection, or with
 * HC_SUMMARY_SCAN, from one scan of the selected messages. A version 1 file is scanned once.
 * *out: hc_summary_free. Memory grows with the number of topics, minutes and sessions, not
 * messages.
 */
typedef struct hc_summary hc_summary;
#define HC_SUMMARY_SCAN 1u /* ignore the stored summaries: compute them by scanning */
/* leave out the per-minute counts (they grow with the recording's duration, the others with its
 * topics and sessions); hc_summary_minutes_each then lists nothing */
#define HC_SUMMARY_NO_MINUTES 2u

hc_err hc_store_summary_load(hc_store *st, const struct hc_select *sel, unsigned flags,
                             hc_summary **out, hc_error *err);

/*
 * Totals. payload_p50/p99 are exact for payloads below 1024 bytes; above, they are the largest
 * size seen in a class 1/64 of a doubling wide. sessions: with the whole recording, every
 * session (also those without messages), else the sessions of the selected messages.
 */
void hc_summary_totals(const hc_summary *s, struct hc_store_summary *out);

/* As hc_store_count_by, from the summary. */
hc_err hc_summary_count_by(const hc_summary *s, const char *column,
                           int (*fn)(const char *key, int64_t count, int64_t first_ns,
                                     int64_t last_ns, void *user),
                           void *user, hc_error *err);

/* Calls fn for each (minute, type) with messages, minute ascending then type; minute_start_ns
 * is a multiple of 60 s (CLOCK_REALTIME of received_at_ns). */
hc_err hc_summary_minutes_each(const hc_summary *s,
                               int (*fn)(int64_t minute_start_ns, const char *type, int64_t count,
                                         void *user),
                               void *user, hc_error *err);

/* One (topic, type) of a summary: type is "" when neither the topic nor the payload names one. */
struct hc_summary_topic {
    const char *topic, *kind, *type, *device_id; /* owned by the summary; device_id "" if none */
    int64_t messages, payload_bytes;
    int64_t first_ns, last_ns; /* earliest and latest received_at_ns, CLOCK_REALTIME */
};

/* Calls fn for each (topic, type) with messages, in no particular order; a non-zero return
 * stops. Topics the recording no longer names are left out. */
hc_err hc_summary_topics_each(const hc_summary *s,
                              int (*fn)(const struct hc_summary_topic *t, void *user), void *user,
                              hc_error *err);

/* Accepts NULL. */
void hc_summary_free(hc_summary *s);

struct hc_session_row {
    int64_t id;
    int64_t started_at_ns;
    int64_t started_mono_ns;
    int64_t ended_at_ns;    /* 0 while open or when the writer died */
    const char *end_reason; /* "" when none */
    int64_t messages;
    int64_t first_received_at_ns, last_received_at_ns; /* 0 when no messages */
};

/* Calls fn for each session in id order. */
hc_err hc_store_sessions_each(hc_store *st, int (*fn)(const struct hc_session_row *row, void *user),
                              void *user, hc_error *err);

/* --- segmented recordings (hrecord --rotate-size/--rotate-time) ------------------------------ */

/*
 * A segmented recording is a directory of recordings named 000001.db, 000002.db, ... (six
 * digits, ascending in the order written) and a manifest.json describing them. Each segment is a
 * complete recording on its own. hc_store_open(dir, HC_STORE_READ) reads the directory as one
 * recording: the segments are merged, in number order, into a private copy under $TMPDIR that
 * hc_store_close removes (nothing in the directory changes); seq continues from one segment to
 * the next, and a session that spans segments (a writer begins the same connection's session,
 * with the same started_at_ns and started_mono_ns, in each new segment) is one session, ended as
 * the last segment holding it says. A segment that is not a recording because its writer was
 * killed while creating it (HC_ERR_NOT_RECORDING: no schema, so no message was committed) is
 * read as empty. The merge costs one pass over every message.
 */

/* "<dir>/<number as 6 digits>.db" into buf. HC_ERR_INVALID when number is 0 or above 999999
 * or buf is too small. */
hc_err hc_segments_path(const char *dir, unsigned number, char *buf, size_t size, hc_error *err);

/* The segment numbers found in dir, ascending. *numbers: free(); NULL when none. */
hc_err hc_segments_list(const char *dir, unsigned **numbers, size_t *n_numbers, hc_error *err);

/* Removes one segment with its -wal, -shm and -journal (missing files are fine). */
hc_err hc_segments_remove(const char *dir, unsigned number, hc_error *err);

/*
 * Rebuilds dir/manifest.json from the segments (written beside and renamed over it, so it is
 * always whole): per segment its file, messages, sessions, bytes, first and last
 * received_at_ns (also as RFC 3339), and, once sealed (no committed pages left in a -wal), the
 * sha256 of its file; "sealed": false and "sha256": null for one being written or left by a
 * killed writer; {"file", "messages": 0, "unfinished": true} for one killed while created. The
 * manifest is derived data: rebuilding it after a crash makes it true again.
 */
hc_err hc_segments_manifest_write(const char *dir, hc_error *err);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Writing a recording: appends go into an open transaction that is committed when it is older
 * than the flush interval or holds too many rows, so the writer runs at batch speed while a
 * crash loses at most one interval. Topic names are interned in their own table behind an
 * in-memory hash table, together with what the decoder takes from a topic alone (kind, type,
 * device): that part of the decoding pass runs once per topic (decode_split.h), and a message row
 * keeps only its topic id and the columns its payload decides.
 */
#include "hcore/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "decode_split.h"
#include "hcore/decode.h"
#include "internal.h"
#include "store_internal.h"

/*
 * Secondary indexes are not part of the write path: measured with 1000 interleaved devices, an
 * index on the messages' topic or time dirties pages all over the index in every batch and slows
 * appends several times over (see README, "The recording format"), while a full scan of 1M rows
 * with a device filter takes ~0.1 s. hc_store_index builds them on demand; queries use them when
 * they exist. Kind, type and device filters go through topics (a few thousand rows) to topic_id.
 */
static const char INDEX_SQL[] =
    "CREATE INDEX IF NOT EXISTS topics_type ON topics(type);"
    "CREATE INDEX IF NOT EXISTS topics_device_id ON topics(device_id);"
    "CREATE INDEX IF NOT EXISTS message_rows_topic ON message_rows(topic_id);"
    "CREATE INDEX IF NOT EXISTS message_rows_payload_type ON message_rows(payload_type)"
    "  WHERE payload_type IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS message_rows_received_at ON message_rows(received_at_ns);";

static int64_t mono_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Eight bytes per step: Haltian topics are ~160 bytes and this runs once per message. */
static uint64_t topic_hash(const char *s, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, s + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

void hc__store_topic_cache_clear(struct topic_cache *c)
{
    for (size_t i = 0; i < c->cap; i++)
        free(c->slots[i].e);
    free(c->slots);
    c->slots = NULL;
    c->cap = 0;
    c->count = 0;
}

static const struct topic_entry *topic_cache_get(const struct topic_cache *c, const char *name,
                                                 size_t len, uint64_t hash)
{
    if (!c->cap)
        return NULL;
    for (size_t i = hash & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        const struct topic_slot *s = &c->slots[i];
        if (!s->e)
            return NULL;
        if (s->hash == hash && s->e->len == len && memcmp(s->e->name, name, len) == 0)
            return s->e;
    }
}

static void topic_cache_place(struct topic_slot *slots, size_t cap, struct topic_slot slot)
{
    size_t i = slot.hash & (cap - 1);
    while (slots[i].e)
        i = (i + 1) & (cap - 1);
    slots[i] = slot;
}

/* Failing to cache is not an error: the topics table stays the source of truth. Returns the
 * cached entry, or NULL. */
static const struct topic_entry *topic_cache_put(struct topic_cache *c, const char *name,
                                                 size_t len, uint64_t hash,
                                                 const struct topic_entry *from)
{
    struct topic_slot slot;

    if (c->count >= STORE_TOPIC_CACHE_MAX)
        hc__store_topic_cache_clear(c);
    if ((c->count + 1) * 10 > c->cap * 7) {
        size_t new_cap = c->cap ? c->cap * 2 : 1024;
        struct topic_slot *slots = calloc(new_cap, sizeof(*slots));
        if (!slots)
            return NULL;
        for (size_t i = 0; i < c->cap; i++)
            if (c->slots[i].e)
                topic_cache_place(slots, new_cap, c->slots[i]);
        free(c->slots);
        c->slots = slots;
        c->cap = new_cap;
    }
    slot.e = malloc(sizeof(*slot.e) + len + 1);
    if (!slot.e)
        return NULL;
    slot.hash = hash;
    slot.e->id = from->id;
    slot.e->type_ix = from->type_ix;
    slot.e->dt = from->dt;
    slot.e->len = len;
    memcpy(slot.e->name, name, len + 1);
    topic_cache_place(c->slots, c->cap, slot);
    c->count++;
    return slot.e;
}

/* After a failed write SQLite may have rolled the transaction back on its own; whatever it did,
 * leave no transaction open and forget topic ids that may have been rolled back with it. */
static void abandon_batch(hc_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->in_batch = false;
    st->batch_rows = 0;
    hc__store_topic_cache_clear(&st->topics);
    hc__summary_abandon(st);
}

/* Commits the open batch, folding the summaries first when due (or when force). */
static hc_err commit_batch(hc_store *st, bool force, hc_error *err)
{
    int64_t started = mono_now_ns(), took;
    hc_err code;
    int rc;

    if (!st->in_batch)
        return HC_OK;
    code = hc__summary_fold(st, force, err);
    if (code != HC_OK) {
        abandon_batch(st);
        return code;
    }
    rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        code = hc__store_fail(st, rc, err, "write to");
        abandon_batch(st);
        return code;
    }
    st->in_batch = false;
    st->batch_rows = 0;
    took = mono_now_ns() - started;
    st->commit_margin_ns -= st->commit_margin_ns / 8;
    if (took > st->commit_margin_ns)
        st->commit_margin_ns = took;
    return HC_OK;
}

/* A waiting writer wakes up to a millisecond late (timeouts in ms) and takes a little to start
 * the commit: keep that much in hand too. */
#define STORE_WAKE_SLACK_NS 2000000LL

/* CLOCK_MONOTONIC instant at which the open batch must be committed: its first row plus the
 * flush interval, less what a commit takes and the wake-up slack (at most half the interval). */
static int64_t batch_due_ns(const hc_store *st)
{
    int64_t margin = st->commit_margin_ns + STORE_WAKE_SLACK_NS;
    if (margin > st->flush_interval_ns / 2)
        margin = st->flush_interval_ns / 2;
    return st->batch_started_ns + st->flush_interval_ns - margin;
}

static hc_err begin_batch(hc_store *st, hc_error *err)
{
    int rc;

    if (st->in_batch)
        return HC_OK;
    rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "write to");
    st->in_batch = true;
    st->batch_rows = 0;
    st->batch_started_ns = mono_now_ns();
    return HC_OK;
}

hc_err hc__store_commit(hc_store *st, hc_error *err)
{
    return commit_batch(st, false, err);
}

hc_err hc__store_finish(hc_store *st, hc_error *err)
{
    hc_err code;

    if (!st->writable || !st->acc)
        return hc__store_commit(st, err);
    code = begin_batch(st, err);
    if (code == HC_OK)
        code = commit_batch(st, true, err);
    return code;
}

hc_err hc__store_require_writable(const hc_store *st, hc_error *err)
{
    if (!st->writable)
        return hc_error_set(err, HC_ERR_INVALID, "cannot write to '%s': opened read-only",
                            st->path);
    return HC_OK;
}

/* --- writing --------------------------------------------------------------------------------- */

void hc_store_set_flush_interval(hc_store *st, int64_t interval_ns)
{
    if (st)
        st->flush_interval_ns = interval_ns > 0 ? interval_ns : 0;
}

void hc_store_set_batch_rows(hc_store *st, int64_t rows)
{
    if (st)
        st->max_batch_rows = rows > 0 ? rows : 1;
}

hc_err hc_store_session_begin(hc_store *st, int64_t started_at_ns, int64_t started_mono_ns,
                              int64_t *session_id_out, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    hc_err code;
    int rc;

    if (session_id_out)
        *session_id_out = 0;
    if (!st)
        return hc_error_set(err, HC_ERR_INVALID, "cannot begin a session: no store");
    code = hc__store_require_writable(st, err);
    if (code == HC_OK)
        code = hc__store_commit(st, err);
    if (code != HC_OK)
        return code;
    rc = sqlite3_prepare_v2(st->db,
                            "INSERT INTO sessions(started_at_ns, started_mono_ns) VALUES (?, ?)",
                            -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 1, started_at_ns);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, started_mono_ns);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        code = hc__store_fail(st, rc, err, "write to");
        goto out;
    }
    st->max_session_id = sqlite3_last_insert_rowid(st->db);
    if (session_id_out)
        *session_id_out = st->max_session_id;
out:
    sqlite3_finalize(stmt);
    return code;
}

hc_err hc_store_session_end(hc_store *st, int64_t session_id, int64_t ended_at_ns,
                            const char *reason, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    hc_err code;
    int rc;

    if (!st)
        return hc_error_set(err, HC_ERR_INVALID, "cannot end a session: no store");
    code = hc__store_require_writable(st, err);
    if (code == HC_OK)
        code = hc__store_commit(st, err);
    if (code != HC_OK)
        return code;
    rc = sqlite3_prepare_v2(st->db,
                            "UPDATE sessions SET ended_at_ns = ?, end_reason = ? WHERE id = ?", -1,
                            &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 1, ended_at_ns);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, reason ? reason : "", -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 3, session_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        code = hc__store_fail(st, rc, err, "write to");
        goto out;
    }
    if (sqlite3_changes(st->db) != 1)
        code = hc_error_set(err, HC_ERR_INVALID, "cannot end session %lld in '%s': no such session",
                            (long long)session_id, st->path);
out:
    sqlite3_finalize(stmt);
    return code;
}

/*
 * The topic's cache entry (id and decoded topic half), inserting the topic with its decoded
 * columns on first sight. Runs inside the open batch. When the cache cannot hold the entry (out
 * of memory), *scratch is filled and returned instead.
 */
static int intern_topic(hc_store *st, const char *topic, struct topic_entry *scratch,
                        const struct topic_entry **out)
{
    size_t len = strlen(topic);
    uint64_t hash = topic_hash(topic, len);
    const struct topic_entry *hit = topic_cache_get(&st->topics, topic, len, hash);
    sqlite3_stmt *ins = st->insert_topic;
    int rc;

    if (hit) {
        *out = hit;
        return SQLITE_OK;
    }
    hc__decode_topic(topic, &scratch->dt);
    rc = sqlite3_bind_text64(st->select_topic, 1, topic, len, SQLITE_STATIC, SQLITE_UTF8);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st->select_topic);
    if (rc == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st->select_topic, 1);
        scratch->id = sqlite3_column_int64(st->select_topic, 0);
        scratch->type_ix = hc__summary_type_ix(st->acc, type ? type : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        struct hc_decode_index idx;

        hc__decode_topic_index(topic, &scratch->dt, &idx);
        rc = sqlite3_bind_text64(ins, 1, topic, len, SQLITE_STATIC, SQLITE_UTF8);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(ins, 2, idx.kind, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(ins, 3, idx.type, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(ins, 4, idx.device_id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(ins);
        if (rc == SQLITE_DONE) {
            scratch->id = sqlite3_last_insert_rowid(st->db);
            scratch->type_ix = hc__summary_type_ix(st->acc, idx.type);
            rc = SQLITE_OK;
        }
        sqlite3_reset(ins);
        sqlite3_clear_bindings(ins);
    }
    sqlite3_reset(st->select_topic);
    sqlite3_clear_bindings(st->select_topic);
    if (rc != SQLITE_OK)
        return rc;
    hit = topic_cache_put(&st->topics, topic, len, hash, scratch);
    *out = hit ? hit : scratch;
    return SQLITE_OK;
}

/* The type column of a message row: NULL unless its payload names a type other than the topic's
 * (legacy Thingsee), so a Haltian row spends nothing on it. */
static int bind_payload_type(sqlite3_stmt *ins, int at, const char *topic,
                             const struct topic_entry *ts, const struct hc__decoded_payload *dp,
                             bool *bound)
{
    struct hc_decode_index idx;

    *bound = false;
    if (!dp->type_from_payload)
        return sqlite3_bind_null(ins, at);
    hc__decode_topic_index(topic, &ts->dt, &idx);
    if (strcmp(idx.type, dp->type) == 0)
        return sqlite3_bind_null(ins, at);
    *bound = true;
    return sqlite3_bind_text(ins, at, dp->type, -1, SQLITE_TRANSIENT);
}

/* Counts an appended row in the summaries (the same columns a reader's scan sees). */
static void count_appended(hc_store *st, int64_t seq, const struct hc_msg *msg,
                           const struct topic_entry *ts, const struct hc__decoded_payload *dp,
                           bool payload_typed)
{
    char code[128];
    int32_t type_ix = payload_typed ? hc__summary_type_ix(st->acc, dp->type) : ts->type_ix;

    if (dp->has_error)
        hc__summary_error_code(msg->topic, msg->payload, msg->payload_len, code, sizeof(code));
    hc__summary_add(st->acc, seq, msg->session_id, msg->received_at_ns, ts->id, type_ix,
                    (int64_t)msg->payload_len, dp->has_error ? code : NULL);
}

hc_err hc_store_append(hc_store *st, const struct hc_msg *msg, int64_t *seq_out, hc_error *err)
{
    static const unsigned char empty[1] = {0};
    struct hc__decoded_payload dp;
    struct topic_entry scratch;
    const struct topic_entry *ts = NULL;
    bool payload_typed = false;
    int64_t seq;
    sqlite3_stmt *ins;
    hc_err code;
    int rc;

    if (seq_out)
        *seq_out = 0;
    if (!st || !msg)
        return hc_error_set(err, HC_ERR_INVALID, "cannot append a message: missing argument");
    code = hc__store_require_writable(st, err);
    if (code != HC_OK)
        return code;
    if (!msg->topic || (!msg->payload && msg->payload_len > 0) || msg->qos < 0 || msg->qos > 2)
        return hc_error_set(err, HC_ERR_INVALID,
                            "cannot append to '%s': message without topic, with a NULL payload "
                            "or a qos other than 0, 1, 2",
                            st->path);
    if (msg->session_id < 1 || msg->session_id > st->max_session_id)
        return hc_error_set(err, HC_ERR_INVALID, "cannot append to '%s': no session %lld", st->path,
                            (long long)msg->session_id);

    code = begin_batch(st, err);
    if (code != HC_OK)
        return code;
    rc = intern_topic(st, msg->topic, &scratch, &ts);
    if (rc != SQLITE_OK)
        goto fail;
    /* The same two halves hc_decode_index runs, the topic's half cached. */
    hc__decode_payload(msg->topic, &ts->dt, msg->payload, msg->payload_len, &dp);

    ins = st->insert_message;
    /* A zero-length blob needs a non-NULL pointer, or SQLite stores NULL. */
    rc = SQLITE_OK;
    if (!st->binds_valid || st->bound_session != msg->session_id)
        rc = sqlite3_bind_int64(ins, 1, msg->session_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(ins, 2, msg->received_at_ns);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(ins, 3, msg->mono_ns);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(ins, 4, ts->id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(ins, 5, msg->payload_len ? msg->payload : empty, msg->payload_len,
                                 SQLITE_STATIC);
    if (rc == SQLITE_OK && (!st->binds_valid || st->bound_qos != msg->qos))
        rc = sqlite3_bind_int(ins, 6, msg->qos);
    if (rc == SQLITE_OK && (!st->binds_valid || st->bound_retain != (int)msg->retain))
        rc = sqlite3_bind_int(ins, 7, msg->retain);
    if (rc == SQLITE_OK && (!st->binds_valid || st->bound_dup != (int)msg->dup))
        rc = sqlite3_bind_int(ins, 8, msg->dup);
    /* Valid only once every bind above succeeded. */
    st->binds_valid = rc == SQLITE_OK;
    st->bound_session = msg->session_id;
    st->bound_qos = msg->qos;
    st->bound_retain = msg->retain;
    st->bound_dup = msg->dup;
    if (rc == SQLITE_OK)
        rc = dp.has_measured_at ? sqlite3_bind_int64(ins, 9, dp.measured_at_ms)
                                : sqlite3_bind_null(ins, 9);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(ins, 10, dp.has_error ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = bind_payload_type(ins, 11, msg->topic, ts, &dp, &payload_typed);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE)
        goto fail;
    seq = sqlite3_last_insert_rowid(st->db);
    if (seq_out)
        *seq_out = seq;
    count_appended(st, seq, msg, ts, &dp, payload_typed);
    st->batch_rows++;
    if (st->batch_rows >= st->max_batch_rows || mono_now_ns() >= batch_due_ns(st))
        return hc__store_commit(st, err);
    return HC_OK;

fail:
    code = hc__store_fail(st, rc, err, "write to");
    /* A failed statement leaves earlier rows of the batch intact unless SQLite rolled back. */
    if (sqlite3_get_autocommit(st->db))
        abandon_batch(st);
    return code;
}

hc_err hc_store_flush(hc_store *st, hc_error *err)
{
    if (!st)
        return hc_error_set(err, HC_ERR_INVALID, "cannot flush: no store");
    return hc__store_commit(st, err);
}

hc_err hc_store_flush_if_due(hc_store *st, hc_error *err)
{
    if (!st)
        return hc_error_set(err, HC_ERR_INVALID, "cannot flush: no store");
    if (st->in_batch && mono_now_ns() >= batch_due_ns(st))
        return hc__store_commit(st, err);
    return HC_OK;
}

int64_t hc_store_flush_due_in_ns(const hc_store *st)
{
    int64_t left;

    if (!st || !st->in_batch)
        return INT64_MAX;
    left = batch_due_ns(st) - mono_now_ns();
    return left > 0 ? left : 0;
}

hc_err hc_store_set_sync_commits(hc_store *st, bool sync_commits, hc_error *err)
{
    hc_err code;

    if (!st)
        return hc_error_set(err, HC_ERR_INVALID, "cannot set durability: no store");
    code = hc__store_require_writable(st, err);
    if (code == HC_OK)
        code = hc__store_commit(st, err);
    if (code == HC_OK)
        code = hc__store_exec(
            st, sync_commits ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", err,
            "configure");
    return code;
}

/* Commits, then runs maintenance SQL on a writable store (vacuum, indexes). */
static hc_err run_maintenance(hc_store *st, const char *sql, const char *what, hc_error *err)
{
    hc_err code;

    if (!st)
        return hc_error_set(err, HC_ERR_INVALID, "cannot %s: no store", what);
    code = hc__store_require_writable(st, err);
    if (code == HC_OK)
        code = hc__store_commit(st, err);
    if (code == HC_OK)
        code = hc__store_exec(st, sql, err, what);
    return code;
}

hc_err hc_store_vacuum(hc_store *st, hc_error *err)
{
    hc_err code = run_maintenance(st, "VACUUM", "vacuum", err);
    /* Until checkpointed and truncated, the old pages still sit in the -wal file. */
    if (code == HC_OK)
        code = hc__store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)", err, "vacuum");
    return code;
}

hc_err hc_store_index(hc_store *st, hc_error *err)
{
    return run_maintenance(st, INDEX_SQL, "index", err);
}

/*
 * The recording's summaries: per topic and type, per minute and type, per session, payload
 * sizes, decode errors, and the runs of seq over which the arrival clock never stepped back (what
 * time windows search in). A writer counts each appended message in memory and folds the counts
 * into the summary tables inside the batch's transaction, so tables and messages always agree at
 * a commit; folding every few hundred thousand rows, not at every commit, keeps the upserts a
 * small share of the append cost (their number grows with the topics touched, not the rows). The
 * tables state which rows they cover (summary_state.folded_seq): a reader adds the rows after it
 * by scanning them, and a writer that finds such a tail (a killed writer's) recounts it before its
 * next fold. The same counting code serves the writer, the reader's tail and a selection's scan,
 * so they cannot disagree.
 */
#include "hcore/store.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "hcore/decode.h"
#include "internal.h"
#include "store_internal.h"

#define NS_PER_MINUTE (60LL * 1000000000LL)
/* Fold when this many rows are counted per touched entry (upserts stay a few % of appends) and
 * at least FOLD_MIN_ROWS rows or FOLD_MAX_AGE_NS have gone by; always by the tail bound. */
#define FOLD_ROWS_PER_ENTRY 32
#define FOLD_MIN_ROWS 131072
#define FOLD_MAX_AGE_NS (5LL * 1000000000LL)
/* Payload sizes: exact below this, then 64 classes per doubling. */
#define SIZE_EXACT 1024

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

/* --- counters keyed by two integers ----------------------------------------------------------- */

struct acc_val {
    int64_t messages, bytes;
    int64_t first, last; /* received_at_ns min and max; sizes: min and max length */
};

struct acc_slot {
    int64_t a, b;
    bool used;
    struct acc_val v;
};

struct acc_map {
    struct acc_slot *slots;
    size_t cap, n; /* cap: a power of two, or 0 */
    size_t last;   /* slot of the last hit: consecutive rows often share a key */
};

static size_t key_hash(int64_t a, int64_t b, size_t cap)
{
    uint64_t h = ((uint64_t)a * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)b * 0xc2b2ae3d27d4eb4fULL);
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static bool acc_grow(struct acc_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct acc_slot *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return false;
    for (size_t i = 0; i < m->cap; i++) {
        size_t at;
        if (!m->slots[i].used)
            continue;
        for (at = key_hash(m->slots[i].a, m->slots[i].b, cap); slots[at].used;
             at = (at + 1) & (cap - 1))
            ;
        slots[at] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->last = 0;
    return true;
}

/* The counters of (a, b), zeroed on first sight; NULL when out of memory. */
static struct acc_val *acc_get(struct acc_map *m, int64_t a, int64_t b)
{
    size_t at;

    if (m->cap && m->slots[m->last].used && m->slots[m->last].a == a && m->slots[m->last].b == b)
        return &m->slots[m->last].v;
    if ((m->n + 1) * 10 > m->cap * 7 && !acc_grow(m))
        return NULL;
    for (at = key_hash(a, b, m->cap); m->slots[at].used; at = (at + 1) & (m->cap - 1)) {
        if (m->slots[at].a == a && m->slots[at].b == b) {
            m->last = at;
            return &m->slots[at].v;
        }
    }
    m->slots[at].used = true;
    m->slots[at].a = a;
    m->slots[at].b = b;
    m->slots[at].v.first = INT64_MAX;
    m->slots[at].v.last = INT64_MIN;
    m->n++;
    m->last = at;
    return &m->slots[at].v;
}

static void acc_count(struct acc_val *v, int64_t bytes, int64_t first, int64_t last,
                      int64_t messages)
{
    v->messages += messages;
    v->bytes += bytes;
    if (first < v->first)
        v->first = first;
    if (last > v->last)
        v->last = last;
}

static void acc_clear(struct acc_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* --- interned strings (types, error codes: a few dozen) -----------------------------------------
 */

struct str_table {
    char **items;
    size_t n, cap;
};

static int32_t str_intern(struct str_table *t, const char *s)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i], s) == 0)
            return (int32_t)i;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **items = realloc(t->items, cap * sizeof(*items));
        if (!items)
            return -1;
        t->items = items;
        t->cap = cap;
    }
    if (t->n >= INT32_MAX || !(t->items[t->n] = strdup(s)))
        return -1;
    return (int32_t)t->n++;
}

static void str_release(struct str_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->items[i]);
    free(t->items);
    memset(t, 0, sizeof(*t));
}

/* --- the summary --------------------------------------------------------------------------------
 */

struct time_run {
    int64_t first_seq, last_seq, first_ns, last_ns;
};

/* One topic as a reader reports it. */
struct topic_info {
    int64_t id;
    char *name, *kind, *device_id;
};

/* The counters most rows touch, by index instead of by hash (most of the per-row cost was
 * hashing): a topic's own type by topic id, sizes below SIZE_EXACT, and the current minute of
 * each of the first DENSE_TYPES types. Moved into the maps before anything reads them. */
#define DENSE_TYPES 256
#define DENSE_TOPICS_MAX (1 << 20)
struct dense_topic {
    int32_t type_ix; /* -1: unused */
    struct acc_val v;
};

struct hc_summary {
    struct dense_topic *dense_topics;
    size_t dense_topics_cap, dense_topics_used;
    struct acc_val dense_sizes[SIZE_EXACT];
    size_t dense_sizes_used;
    int64_t minute_now[DENSE_TYPES], minute_count[DENSE_TYPES];
    struct acc_map topics;   /* (topic_id, type_ix) */
    struct acc_map minutes;  /* (minute, type_ix) */
    struct acc_map sessions; /* (session_id, 0) */
    struct acc_map sizes;    /* (size class, 0): first/last are min/max length */
    struct acc_map errors;   /* (code_ix, 0) */
    struct str_table types, codes;
    /* Runs begun or extended since the last fold; run_open: the last of them (or the table's
     * last run) may be extended by the next row. */
    struct time_run *runs;
    size_t n_runs, cap_runs;
    bool run_open;
    struct time_run run;
    int64_t rows;
    bool oom;
    /* A reader's: the selection was the whole recording, with every session; topics by id. */
    bool everything;
    int64_t all_sessions;
    struct topic_info *topic_infos;
    size_t n_topic_infos;
};

static int64_t size_class(int64_t len)
{
    int p;

    if (len < SIZE_EXACT)
        return len < 0 ? 0 : len;
    p = 63 - __builtin_clzll((unsigned long long)len);
    return SIZE_EXACT + (int64_t)(p - 10) * 64 + ((len >> (p - 6)) & 63);
}

static int64_t minute_of(int64_t ns)
{
    int64_t m = ns / NS_PER_MINUTE;
    return ns % NS_PER_MINUTE < 0 ? m - 1 : m;
}

static void run_push(struct hc_summary *s)
{
    if (s->n_runs == s->cap_runs) {
        size_t cap = s->cap_runs ? s->cap_runs * 2 : 8;
        struct time_run *runs = realloc(s->runs, cap * sizeof(*runs));
        if (!runs) {
            s->oom = true;
            return;
        }
        s->runs = runs;
        s->cap_runs = cap;
    }
    s->runs[s->n_runs++] = s->run;
}

/* The clock's runs: a row earlier than the run's last starts a new one. */
static void run_add(struct hc_summary *s, int64_t seq, int64_t t)
{
    if (s->run_open && t >= s->run.last_ns) {
        s->run.last_seq = seq;
        s->run.last_ns = t;
        if (s->n_runs && s->runs[s->n_runs - 1].first_seq == s->run.first_seq)
            s->runs[s->n_runs - 1] = s->run;
        else
            run_push(s);
        return;
    }
    s->run = (struct time_run){seq, seq, t, t};
    s->run_open = true;
    run_push(s);
}

int32_t hc__summary_type_ix(struct hc_summary *acc, const char *type)
{
    return acc ? str_intern(&acc->types, type ? type : "") : -1;
}

static struct acc_val *dense_topic(struct hc_summary *s, int64_t topic_id, int32_t type_ix)
{
    struct dense_topic *d;

    if (topic_id < 0 || topic_id >= DENSE_TOPICS_MAX)
        return NULL;
    if ((size_t)topic_id >= s->dense_topics_cap) {
        size_t cap = s->dense_topics_cap ? s->dense_topics_cap : 1024;
        struct dense_topic *p;
        while (cap <= (size_t)topic_id)
            cap *= 2;
        p = realloc(s->dense_topics, cap * sizeof(*p));
        if (!p)
            return NULL;
        for (size_t i = s->dense_topics_cap; i < cap; i++)
            p[i].type_ix = -1;
        s->dense_topics = p;
        s->dense_topics_cap = cap;
    }
    d = &s->dense_topics[topic_id];
    if (d->type_ix < 0) {
        d->type_ix = type_ix;
        d->v = (struct acc_val){0, 0, INT64_MAX, INT64_MIN};
        s->dense_topics_used++;
    }
    return d->type_ix == type_ix ? &d->v : NULL;
}

/* Moves the dense counters into the maps. */
static void dense_flush(struct hc_summary *s)
{
    struct acc_val *v;

    for (size_t i = 0; s->dense_topics_used && i < s->dense_topics_cap; i++) {
        struct dense_topic *d = &s->dense_topics[i];
        if (d->type_ix < 0)
            continue;
        if ((v = acc_get(&s->topics, (int64_t)i, d->type_ix)))
            acc_count(v, d->v.bytes, d->v.first, d->v.last, d->v.messages);
        else
            s->oom = true;
        d->type_ix = -1;
    }
    s->dense_topics_used = 0;
    for (int64_t len = 0; s->dense_sizes_used && len < SIZE_EXACT; len++) {
        struct acc_val *d = &s->dense_sizes[len];
        if (!d->messages)
            continue;
        if ((v = acc_get(&s->sizes, len, 0)))
            acc_count(v, d->bytes, d->first, d->last, d->messages);
        else
            s->oom = true;
        *d = (struct acc_val){0, 0, 0, 0};
    }
    s->dense_sizes_used = 0;
    for (int i = 0; i < DENSE_TYPES; i++) {
        if (!s->minute_count[i])
            continue;
        if ((v = acc_get(&s->minutes, s->minute_now[i], i)))
            v->messages += s->minute_count[i];
        else
            s->oom = true;
        s->minute_count[i] = 0;
    }
}

void hc__summary_add(struct hc_summary *s, int64_t seq, int64_t session_id, int64_t received_at_ns,
                     int64_t topic_id, int32_t type_ix, int64_t payload_len, const char *error_code)
{
    struct acc_val *v;
    int64_t t = received_at_ns, minute;

    if (!s)
        return;
    if (type_ix < 0) {
        s->oom = true;
        return;
    }
    s->rows++;
    if ((v = dense_topic(s, topic_id, type_ix)) || (v = acc_get(&s->topics, topic_id, type_ix)))
        acc_count(v, payload_len, t, t, 1);
    else
        s->oom = true;
    minute = minute_of(t);
    if (type_ix < DENSE_TYPES && (!s->minute_count[type_ix] || s->minute_now[type_ix] == minute)) {
        s->minute_now[type_ix] = minute;
        s->minute_count[type_ix]++;
    } else if (type_ix < DENSE_TYPES) {
        if ((v = acc_get(&s->minutes, s->minute_now[type_ix], type_ix)))
            v->messages += s->minute_count[type_ix];
        else
            s->oom = true;
        s->minute_now[type_ix] = minute;
        s->minute_count[type_ix] = 1;
    } else if ((v = acc_get(&s->minutes, minute, type_ix))) {
        v->messages++;
    } else {
        s->oom = true;
    }
    if ((v = acc_get(&s->sessions, session_id, 0)))
        acc_count(v, payload_len, t, t, 1);
    else
        s->oom = true;
    if (payload_len >= 0 && payload_len < SIZE_EXACT) {
        v = &s->dense_sizes[payload_len];
        if (!v->messages) {
            *v = (struct acc_val){0, 0, INT64_MAX, INT64_MIN};
            s->dense_sizes_used++;
        }
        acc_count(v, payload_len, payload_len, payload_len, 1);
    } else if ((v = acc_get(&s->sizes, size_class(payload_len), 0))) {
        acc_count(v, payload_len, payload_len, payload_len, 1);
    } else {
        s->oom = true;
    }
    if (error_code) {
        int32_t ix = str_intern(&s->codes, error_code);
        if (ix < 0 || !(v = acc_get(&s->errors, ix, 0)))
            s->oom = true;
        else
            acc_count(v, 0, t, t, 1);
    }
    run_add(s, seq, t);
}

/* Forgets the counts (not the interned strings, which topic cache entries refer to). */
static void summary_reset_counts(struct hc_summary *s)
{
    for (size_t i = 0; s->dense_topics_used && i < s->dense_topics_cap; i++)
        s->dense_topics[i].type_ix = -1;
    s->dense_topics_used = 0;
    memset(s->dense_sizes, 0, sizeof(s->dense_sizes));
    s->dense_sizes_used = 0;
    memset(s->minute_count, 0, sizeof(s->minute_count));
    acc_clear(&s->topics);
    acc_clear(&s->minutes);
    acc_clear(&s->sessions);
    acc_clear(&s->sizes);
    acc_clear(&s->errors);
    s->n_runs = 0;
    s->rows = 0;
    s->oom = false;
}

void hc_summary_free(hc_summary *s)
{
    if (!s)
        return;
    summary_reset_counts(s);
    free(s->runs);
    free(s->dense_topics);
    str_release(&s->types);
    str_release(&s->codes);
    for (size_t i = 0; i < s->n_topic_infos; i++) {
        free(s->topic_infos[i].name);
        free(s->topic_infos[i].kind);
        free(s->topic_infos[i].device_id);
    }
    free(s->topic_infos);
    free(s);
}

void hc__summary_error_code(const char *topic, const unsigned char *payload, size_t len, char *buf,
                            size_t size)
{
    cJSON *decoded = NULL;
    const cJSON *code;

    buf[0] = '\0';
    if (!topic || hc_decode_message(topic, payload, len, &decoded, NULL) != HC_OK)
        goto out;
    code = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(decoded, "error"),
                                            "code");
    if (cJSON_IsString(code) && code->valuestring)
        snprintf(buf, size, "%s", code->valuestring);
    else if (cJSON_IsNumber(code))
        snprintf(buf, size, "%lld", (long long)code->valuedouble);
out:
    cJSON_Delete(decoded);
}

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
        struct acc_val *tt = acc_get(&topic_types, topic_id, 0);
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
    dense_flush(s);
    if (code == HC_OK && s->oom)
        code = hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
out:
    sqlite3_finalize(type_of);
    sqlite3_finalize(error_of);
    acc_clear(&topic_types);
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

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

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
    st->acc_since_ns = mono_ns();
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

    summary_reset_counts(s);
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
    return s->rows >= FOLD_MIN_ROWS || mono_ns() - st->acc_since_ns >= FOLD_MAX_AGE_NS;
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
    dense_flush(s);
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
    summary_reset_counts(s);
    st->acc_since_ns = mono_ns();
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
        summary_reset_counts(st->acc);
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
            a = str_intern(a_names, text ? text : "");
        } else {
            a = sqlite3_column_int64(stmt, 0);
        }
        if (b_names) {
            const char *text = (const char *)sqlite3_column_text(stmt, 1);
            b = str_intern(b_names, text ? text : "");
        } else {
            b = sqlite3_column_int64(stmt, 1);
        }
        if ((a_names && a < 0) || (b_names && b < 0) || !(v = acc_get(m, a, b))) {
            sqlite3_finalize(stmt);
            return hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
        }
        acc_count(v, sqlite3_column_int64(stmt, 3), sqlite3_column_int64(stmt, 4),
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

static int class_order(const void *a, const void *b)
{
    const struct acc_slot *x = *(const struct acc_slot *const *)a;
    const struct acc_slot *y = *(const struct acc_slot *const *)b;
    return (x->a > y->a) - (x->a < y->a);
}

/* Nearest rank over the size classes: the largest size in the class holding the smallest rank
 * with at least q of the messages at or below it (exact where a class holds one size). */
static int64_t size_at(const struct hc_summary *s, int64_t total, double q)
{
    const struct acc_slot **classes = calloc(s->sizes.n ? s->sizes.n : 1, sizeof(*classes));
    int64_t rank = (int64_t)ceil((double)total * q), seen = 0, size = 0;
    size_t n = 0;

    if (!classes)
        return 0;
    for (size_t i = 0; i < s->sizes.cap; i++)
        if (s->sizes.slots[i].used && s->sizes.slots[i].v.messages)
            classes[n++] = &s->sizes.slots[i];
    qsort(classes, n, sizeof(*classes), class_order);
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < n; i++) {
        seen += classes[i]->v.messages;
        size = classes[i]->v.last;
        if (seen >= rank)
            break;
    }
    free(classes);
    return size;
}

void hc_summary_totals(const hc_summary *s, struct hc_store_summary *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    out->first_received_at_ns = INT64_MAX;
    out->last_received_at_ns = INT64_MIN;
    out->payload_min = INT64_MAX;
    for (size_t i = 0; i < s->topics.cap; i++) {
        const struct acc_slot *e = &s->topics.slots[i];
        if (!e->used || !e->v.messages)
            continue;
        out->messages += e->v.messages;
        out->payload_bytes += e->v.bytes;
        if (e->v.first < out->first_received_at_ns)
            out->first_received_at_ns = e->v.first;
        if (e->v.last > out->last_received_at_ns)
            out->last_received_at_ns = e->v.last;
    }
    for (size_t i = 0; i < s->sizes.cap; i++) {
        const struct acc_slot *e = &s->sizes.slots[i];
        if (!e->used || !e->v.messages)
            continue;
        if (e->v.first < out->payload_min)
            out->payload_min = e->v.first;
        if (e->v.last > out->payload_max)
            out->payload_max = e->v.last;
    }
    for (size_t i = 0; i < s->errors.cap; i++)
        if (s->errors.slots[i].used)
            out->decode_errors += s->errors.slots[i].v.messages;
    if (s->everything) {
        out->sessions = s->all_sessions;
    } else {
        for (size_t i = 0; i < s->sessions.cap; i++)
            if (s->sessions.slots[i].used && s->sessions.slots[i].v.messages)
                out->sessions++;
    }
    if (!out->messages) {
        out->first_received_at_ns = out->last_received_at_ns = 0;
        out->payload_min = 0;
        return;
    }
    out->payload_mean = (double)out->payload_bytes / (double)out->messages;
    out->payload_p50 = size_at(s, out->messages, 0.50);
    out->payload_p99 = size_at(s, out->messages, 0.99);
}

/* One group while grouping: key borrowed from the summary, or from key_buf. */
struct group_row {
    const char *key;
    char key_buf[24];
    int64_t numeric; /* session ids sort as numbers */
    int64_t count, first, last;
};

static int group_by_key(const void *a, const void *b)
{
    const struct group_row *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->numeric > y->numeric) - (x->numeric < y->numeric);
}

static int group_by_count(const void *a, const void *b)
{
    const struct group_row *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    if (x->numeric != y->numeric)
        return x->numeric < y->numeric ? -1 : 1;
    return strcmp(x->key, y->key);
}

static const struct topic_info *topic_info_of(const struct hc_summary *s, int64_t id)
{
    size_t lo = 0, hi = s->n_topic_infos;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->topic_infos[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_topic_infos && s->topic_infos[lo].id == id ? &s->topic_infos[lo] : NULL;
}

hc_err hc_summary_count_by(const hc_summary *s, const char *column,
                           int (*fn)(const char *key, int64_t count, int64_t first_ns,
                                     int64_t last_ns, void *user),
                           void *user, hc_error *err)
{
    enum { BY_KIND, BY_TYPE, BY_DEVICE, BY_TOPIC, BY_SESSION, BY_ERROR } by;
    static const char *const names[] = {"kind",  "type",       "device_id",
                                        "topic", "session_id", "decode_error"};
    const struct acc_map *m;
    struct group_row *rows = NULL;
    size_t n = 0, merged = 0;

    if (!s || !column || !fn)
        return hc_error_set(err, HC_ERR_INVALID, "cannot count: missing argument");
    for (by = BY_KIND; by <= BY_ERROR; by++)
        if (strcmp(column, names[by]) == 0)
            break;
    if (by > BY_ERROR)
        return hc_error_set(err, HC_ERR_INVALID,
                            "cannot count by '%s': not one of kind, type, device_id, topic, "
                            "session_id, decode_error",
                            column);
    m = by == BY_SESSION ? &s->sessions : by == BY_ERROR ? &s->errors : &s->topics;
    rows = calloc(m->n ? m->n : 1, sizeof(*rows));
    if (!rows)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot count: out of memory");
    for (size_t i = 0; i < m->cap; i++) {
        const struct acc_slot *e = &m->slots[i];
        struct group_row *g = &rows[n];
        const struct topic_info *ti = NULL;
        if (!e->used || !e->v.messages)
            continue;
        if (by != BY_SESSION && by != BY_ERROR && by != BY_TYPE && !(ti = topic_info_of(s, e->a)))
            continue;
        switch (by) {
        case BY_KIND:
            g->key = ti->kind;
            break;
        case BY_TYPE:
            g->key = s->types.items[e->b];
            break;
        case BY_DEVICE:
            g->key = ti->device_id;
            break;
        case BY_TOPIC:
            g->key = ti->name;
            break;
        case BY_SESSION:
            /* unique keys, ordered as numbers; the text is pointed at once rows stop moving */
            snprintf(g->key_buf, sizeof(g->key_buf), "%" PRId64, e->a);
            g->key = "";
            g->numeric = e->a;
            break;
        case BY_ERROR:
            g->key = s->codes.items[e->a];
            break;
        }
        g->count = e->v.messages;
        g->first = e->v.first;
        g->last = e->v.last;
        n++;
    }
    qsort(rows, n, sizeof(*rows), group_by_key);
    for (size_t i = 0; i < n; i++) {
        if (merged && by != BY_SESSION && strcmp(rows[merged - 1].key, rows[i].key) == 0) {
            struct group_row *g = &rows[merged - 1];
            g->count += rows[i].count;
            if (rows[i].first < g->first)
                g->first = rows[i].first;
            if (rows[i].last > g->last)
                g->last = rows[i].last;
            continue;
        }
        rows[merged++] = rows[i];
    }
    qsort(rows, merged, sizeof(*rows), group_by_count);
    for (size_t i = 0; i < merged; i++) {
        if (by == BY_SESSION)
            rows[i].key = rows[i].key_buf;
        if (fn(rows[i].key, rows[i].count, rows[i].first, rows[i].last, user))
            break;
    }
    free(rows);
    return HC_OK;
}

struct minute_row {
    int64_t minute;
    const char *type;
    int64_t count;
};

static int minute_order(const void *a, const void *b)
{
    const struct minute_row *x = a, *y = b;
    if (x->minute != y->minute)
        return x->minute < y->minute ? -1 : 1;
    return strcmp(x->type, y->type);
}

hc_err hc_summary_minutes_each(const hc_summary *s,
                               int (*fn)(int64_t minute_start_ns, const char *type, int64_t count,
                                         void *user),
                               void *user, hc_error *err)
{
    struct minute_row *rows;
    size_t n = 0;

    if (!s || !fn)
        return hc_error_set(err, HC_ERR_INVALID, "cannot list minutes: missing argument");
    rows = calloc(s->minutes.n ? s->minutes.n : 1, sizeof(*rows));
    if (!rows)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot list minutes: out of memory");
    for (size_t i = 0; i < s->minutes.cap; i++) {
        const struct acc_slot *e = &s->minutes.slots[i];
        if (e->used && e->v.messages)
            rows[n++] = (struct minute_row){e->a, s->types.items[e->b], e->v.messages};
    }
    qsort(rows, n, sizeof(*rows), minute_order);
    for (size_t i = 0; i < n; i++) {
        int64_t start;
        if (__builtin_mul_overflow(rows[i].minute, NS_PER_MINUTE, &start))
            start = rows[i].minute < 0 ? INT64_MIN : INT64_MAX;
        if (fn(start, rows[i].type, rows[i].count, user))
            break;
    }
    free(rows);
    return HC_OK;
}

hc_err hc_summary_topics_each(const hc_summary *s,
                              int (*fn)(const struct hc_summary_topic *t, void *user), void *user,
                              hc_error *err)
{
    if (!s || !fn)
        return hc_error_set(err, HC_ERR_INVALID, "cannot list topics: missing argument");
    for (size_t i = 0; i < s->topics.cap; i++) {
        const struct acc_slot *e = &s->topics.slots[i];
        const struct topic_info *ti;
        struct hc_summary_topic t;
        if (!e->used || !e->v.messages || !(ti = topic_info_of(s, e->a)))
            continue;
        t = (struct hc_summary_topic){.topic = ti->name,
                                      .kind = ti->kind,
                                      .type = s->types.items[e->b],
                                      .device_id = ti->device_id,
                                      .messages = e->v.messages,
                                      .payload_bytes = e->v.bytes,
                                      .first_ns = e->v.first,
                                      .last_ns = e->v.last};
        if (fn(&t, user))
            break;
    }
    return HC_OK;
}

bool hc__summary_session(const hc_summary *s, int64_t session_id, int64_t *messages,
                         int64_t *first_ns, int64_t *last_ns)
{
    struct acc_map *m = (struct acc_map *)&s->sessions;
    size_t at;

    *messages = *first_ns = *last_ns = 0;
    if (!m->cap)
        return false;
    for (at = key_hash(session_id, 0, m->cap); m->slots[at].used; at = (at + 1) & (m->cap - 1)) {
        if (m->slots[at].a == session_id && m->slots[at].b == 0) {
            *messages = m->slots[at].v.messages;
            *first_ns = m->slots[at].v.first;
            *last_ns = m->slots[at].v.last;
            return true;
        }
    }
    return false;
}

/*
 * Reading a recording: a struct hc_select becomes one parameterised statement, streamed with
 * sqlite3_step so that memory stays constant whatever the file's size, and the counts and
 * groupings that --info and replays ask for.
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


#include "hcore/decode.h"
#include "hcore/topic.h"
#include "internal.h"
#include "store_internal.h"

/*
 * A cursor reads message_rows alone and resolves topic names and session starts through small
 * per-cursor caches: joining topics and sessions on every row cost about a third of a full read,
 * while a recording has few topics and sessions next to its messages.
 */
struct id_entry {
    int64_t id;
    bool used, found;
    int64_t value; /* sessions: started_at_ns */
    char *name;    /* topics */
};

struct id_cache {
    struct id_entry *slots;
    size_t cap, n; /* cap: a power of two, or 0 */
    sqlite3_stmt *lookup;
};

struct hc_cursor {
    hc_store *st;
    struct hc__selection sel;
    struct id_cache topics, sessions;
};

/* --- selections ------------------------------------------------------------------------------ */

struct sql_bind {
    bool is_text;
    int64_t value;
    const char *text;
};

/* A WHERE clause under construction: text with '?' placeholders and what to bind to them. */
struct sql_builder {
    char *sql;
    size_t len, cap;
    struct sql_bind *binds;
    size_t n_binds, cap_binds;
    bool oom;
};

static void sb_add(struct sql_builder *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (b->len + n + 1 > cap)
            cap *= 2;
        p = realloc(b->sql, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->sql = p;
        b->cap = cap;
    }
    memcpy(b->sql + b->len, s, n + 1);
    b->len += n;
}

static void sb_bind(struct sql_builder *b, bool is_text, int64_t value, const char *text)
{
    if (b->oom)
        return;
    if (b->n_binds == b->cap_binds) {
        size_t cap = b->cap_binds ? b->cap_binds * 2 : 16;
        struct sql_bind *p = realloc(b->binds, cap * sizeof(*p));
        if (!p) {
            b->oom = true;
            return;
        }
        b->binds = p;
        b->cap_binds = cap;
    }
    b->binds[b->n_binds].is_text = is_text;
    b->binds[b->n_binds].value = value;
    b->binds[b->n_binds].text = text;
    b->n_binds++;
    sb_add(b, "?");
}

static void sb_release(struct sql_builder *b)
{
    free(b->sql);
    free(b->binds);
    memset(b, 0, sizeof(*b));
}

static void sb_in_list(struct sql_builder *b, const char *column, const char *const *texts,
                       const int64_t *ints, size_t n)
{
    sb_add(b, " AND ");
    sb_add(b, column);
    sb_add(b, " IN (");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_add(b, ", ");
        if (texts)
            sb_bind(b, true, 0, texts[i]);
        else
            sb_bind(b, false, ints[i], NULL);
    }
    sb_add(b, ")");
}

static hc_err check_list(const hc_store *st, const char *what, const char *const *list, size_t n,
                         hc_error *err)
{
    if (n && !list)
        return hc_error_set(err, HC_ERR_INVALID, "cannot select from '%s': %s list is NULL",
                            st->path, what);
    for (size_t i = 0; i < n; i++)
        if (!list[i])
            return hc_error_set(err, HC_ERR_INVALID, "cannot select from '%s': %s list holds NULL",
                                st->path, what);
    return HC_OK;
}

/* " AND column IN (types...)": canonical names are stored, so an alias selects its canonical
 * name too. */
static void type_list(struct sql_builder *b, const char *column, const struct hc_select *sel)
{
    sb_add(b, " AND ");
    sb_add(b, column);
    sb_add(b, " IN (");
    for (size_t i = 0; i < sel->n_types; i++) {
        const char *canonical = hc_decode_canonical_type(sel->types[i]);
        if (i)
            sb_add(b, ", ");
        sb_bind(b, true, 0, sel->types[i]);
        if (canonical && strcmp(canonical, sel->types[i]) != 0) {
            sb_add(b, ", ");
            sb_bind(b, true, 0, canonical);
        }
    }
    sb_add(b, ")");
}

/*
 * Appends the conditions of sel on table alias m (message_rows), starting with " WHERE 1".
 * Conditions on the topic (filters, kind, type, device) run once per distinct topic through a
 * subquery on topics, not once per message. Once hc_store_index has run, only the device
 * condition may use the index on topic_id ("+m.topic_id" keeps the others off it): a device is
 * a small share of a recording, but a kind, a type or a topic filter often selects a quarter of it
 * or all of it, and walking the index then sorting by seq took 4x as long as a plain scan
 * (0.94 s against 0.24 s for a type holding 250k of 1M messages). A scan's worst case is bounded.
 */
static hc_err build_where(const hc_store *st, const struct hc_select *sel, struct sql_builder *b,
                          int *range_param, hc_error *err)
{
    hc_err code = HC_OK;

    sb_add(b, " WHERE 1");
    if (range_param) {
        /* first, so that the rowid range is what SQLite searches by */
        sb_add(b, " AND m.seq BETWEEN ");
        *range_param = (int)b->n_binds + 1;
        sb_bind(b, false, 0, NULL);
        sb_add(b, " AND ");
        sb_bind(b, false, 0, NULL);
    }
    if (!sel)
        return HC_OK;
    if (sel->limit < 0)
        return hc_error_set(err, HC_ERR_INVALID, "cannot select from '%s': negative limit",
                            st->path);
    if ((code = check_list(st, "topic filter", sel->topic_filters, sel->n_topic_filters, err)) ||
        (code = check_list(st, "kind", sel->kinds, sel->n_kinds, err)) ||
        (code = check_list(st, "type", sel->types, sel->n_types, err)) ||
        (code = check_list(st, "device", sel->devices, sel->n_devices, err)))
        return code;
    if (sel->n_sessions && !sel->sessions)
        return hc_error_set(err, HC_ERR_INVALID, "cannot select from '%s': session list is NULL",
                            st->path);
    if (sel->has_since) {
        sb_add(b, " AND m.received_at_ns >= ");
        sb_bind(b, false, sel->since_ns, NULL);
    }
    if (sel->has_until) {
        sb_add(b, " AND m.received_at_ns < ");
        sb_bind(b, false, sel->until_ns, NULL);
    }
    if (sel->n_topic_filters) {
        sb_add(b, " AND +m.topic_id IN (SELECT id FROM topics WHERE 0");
        for (size_t i = 0; i < sel->n_topic_filters; i++) {
            hc_error ferr = HC_ERROR_INIT;
            if (hc_topic_filter_validate(sel->topic_filters[i], &ferr) != HC_OK)
                return hc_error_set(err, HC_ERR_INVALID, "cannot select from '%s': %s", st->path,
                                    ferr.message);
            sb_add(b, " OR hc_topic_match(");
            sb_bind(b, true, 0, sel->topic_filters[i]);
            sb_add(b, ", name)");
        }
        sb_add(b, ")");
    }
    if (sel->n_kinds) {
        sb_add(b, " AND +m.topic_id IN (SELECT id FROM topics WHERE 1");
        sb_in_list(b, "kind", sel->kinds, NULL, sel->n_kinds);
        sb_add(b, ")");
    }
    if (sel->n_types) {
        /* A message's type is its payload's (legacy Thingsee) or else its topic's. */
        sb_add(b,
               " AND ((m.payload_type IS NULL AND +m.topic_id IN (SELECT id FROM topics WHERE 1");
        type_list(b, "type", sel);
        sb_add(b, ")) OR (m.payload_type IS NOT NULL");
        type_list(b, "m.payload_type", sel);
        sb_add(b, "))");
    }
    if (sel->n_devices) {
        sb_add(b, " AND m.topic_id IN (SELECT id FROM topics WHERE 1");
        sb_in_list(b, "device_id", sel->devices, NULL, sel->n_devices);
        sb_add(b, ")");
    }
    if (sel->n_sessions)
        sb_in_list(b, "m.session_id", NULL, sel->sessions, sel->n_sessions);
    return HC_OK;
}

/* Prepares prefix + b's SQL + suffix and binds b's values; *stmt is the caller's. */
static hc_err prepare_built(hc_store *st, const char *prefix, struct sql_builder *b,
                            const char *suffix, sqlite3_stmt **stmt, hc_error *err)
{
    struct sql_builder whole = {0};
    hc_err code = HC_OK;
    int rc = SQLITE_OK;

    *stmt = NULL;
    sb_add(&whole, prefix);
    sb_add(&whole, b->sql ? b->sql : "");
    sb_add(&whole, suffix);
    if (whole.oom || b->oom) {
        code = hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
        goto out;
    }
    rc = sqlite3_prepare_v2(st->db, whole.sql, -1, stmt, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < b->n_binds; i++) {
        const struct sql_bind *v = &b->binds[i];
        int at = (int)i + 1;
        rc = v->is_text ? sqlite3_bind_text(*stmt, at, v->text, -1, SQLITE_TRANSIENT)
                        : sqlite3_bind_int64(*stmt, at, v->value);
    }
    if (rc != SQLITE_OK) {
        code = hc__store_fail(st, rc, err, "read");
        sqlite3_finalize(*stmt);
        *stmt = NULL;
    }
out:
    sb_release(&whole);
    return code;
}

/* --- time windows ------------------------------------------------------------------------------
 */

/* Past this many runs of the clock in a window (a recording whose times go back and forth), a
 * scan is cheaper than searching each. */
#define WINDOW_MAX_RANGES 4096

bool hc__select_is_everything(const struct hc_select *sel)
{
    return !sel || (!sel->has_since && !sel->has_until && !sel->n_topic_filters && !sel->n_kinds &&
                    !sel->n_types && !sel->n_devices && !sel->n_sessions && !sel->limit);
}

/* The first seq in [lo, hi] whose row (the first at or after it) has received_at_ns >= t; hi + 1
 * when none. Rows in [lo, hi] are one run: their times never decrease. */
static int lower_bound(hc_store *st, sqlite3_stmt *probe, int64_t lo, int64_t hi, int64_t t,
                       int64_t *out)
{
    int64_t end = hi + 1;
    int rc = SQLITE_OK;

    while (lo < end) {
        int64_t mid = lo + (end - lo) / 2, seq = INT64_MAX, at = INT64_MAX;
        sqlite3_bind_int64(probe, 1, mid);
        rc = sqlite3_step(probe);
        if (rc == SQLITE_ROW) {
            seq = sqlite3_column_int64(probe, 0);
            at = sqlite3_column_int64(probe, 1);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            seq = INT64_MAX;
            at = INT64_MAX;
            rc = SQLITE_OK;
        }
        sqlite3_reset(probe);
        if (rc != SQLITE_OK)
            return rc;
        if (seq <= hi && at < t)
            lo = seq + 1;
        else
            end = mid;
    }
    *out = lo;
    (void)st;
    return SQLITE_OK;
}

static bool add_range(struct hc__seq_range **ranges, size_t *n, size_t *cap, int64_t lo, int64_t hi)
{
    if (*n && (*ranges)[*n - 1].hi >= lo - 1) {
        if (hi > (*ranges)[*n - 1].hi)
            (*ranges)[*n - 1].hi = hi;
        return true;
    }
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        struct hc__seq_range *p = realloc(*ranges, c * sizeof(*p));
        if (!p)
            return false;
        *ranges = p;
        *cap = c;
    }
    (*ranges)[(*n)++] = (struct hc__seq_range){lo, hi};
    return true;
}

/*
 * The ranges of seq that can hold messages of the window [since, until): in each run of the
 * clock overlapping it, a binary search finds where the window starts and ends; rows after the
 * summaries' folded_seq (not yet in a run) are one more range. *n_out 0 with *ranges_out NULL:
 * no narrowing possible (a version 1 file, too many runs); scan everything.
 */
static hc_err window_ranges(hc_store *st, const struct hc_select *sel,
                            struct hc__seq_range **ranges_out, size_t *n_out, bool *narrowed,
                            hc_error *err)
{
    int64_t since = sel->has_since ? sel->since_ns : INT64_MIN;
    int64_t until = sel->has_until ? sel->until_ns : INT64_MAX;
    sqlite3_stmt *runs = NULL, *probe = NULL;
    struct hc__seq_range *ranges = NULL;
    size_t n = 0, cap = 0;
    int64_t folded = 0, max_seq = 0;
    int rc;

    *ranges_out = NULL;
    *n_out = 0;
    *narrowed = false;
    if (st->schema_version < 2)
        return HC_OK;
    rc = hc__store_query_int(st, "SELECT folded_seq FROM summary_state WHERE id = 1", &folded);
    if (rc == SQLITE_OK)
        rc = hc__store_query_int(st, "SELECT max(seq) FROM message_rows", &max_seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db,
                                "SELECT first_seq, last_seq FROM time_runs"
                                " WHERE last_received_at_ns >= ? AND first_received_at_ns < ?"
                                " AND first_seq <= ? ORDER BY first_seq",
                                -1, &runs, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db,
                                "SELECT seq, received_at_ns FROM message_rows WHERE seq >= ?"
                                " ORDER BY seq LIMIT 1",
                                -1, &probe, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(runs, 1, since);
    sqlite3_bind_int64(runs, 2, until);
    sqlite3_bind_int64(runs, 3, folded);
    while ((rc = sqlite3_step(runs)) == SQLITE_ROW) {
        int64_t first = sqlite3_column_int64(runs, 0), last = sqlite3_column_int64(runs, 1);
        int64_t lo = first, hi_end = last + 1;
        if (last > folded)
            last = folded;
        if (sel->has_since && (rc = lower_bound(st, probe, first, last, since, &lo)) != SQLITE_OK)
            goto fail;
        if (sel->has_until &&
            (rc = lower_bound(st, probe, first, last, until, &hi_end)) != SQLITE_OK)
            goto fail;
        if (hi_end > last + 1)
            hi_end = last + 1;
        if (lo < hi_end && !add_range(&ranges, &n, &cap, lo, hi_end - 1))
            goto oom;
        if (n > WINDOW_MAX_RANGES) {
            free(ranges);
            sqlite3_finalize(runs);
            sqlite3_finalize(probe);
            return HC_OK;
        }
    }
    if (rc != SQLITE_DONE)
        goto fail;
    if (max_seq > folded && !add_range(&ranges, &n, &cap, folded + 1, INT64_MAX))
        goto oom;
    sqlite3_finalize(runs);
    sqlite3_finalize(probe);
    *ranges_out = ranges;
    *n_out = n;
    *narrowed = true;
    return HC_OK;
oom:
    free(ranges);
    sqlite3_finalize(runs);
    sqlite3_finalize(probe);
    return hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
fail:
    free(ranges);
    sqlite3_finalize(runs);
    sqlite3_finalize(probe);
    return hc__store_fail(st, rc, err, "read");
}

/* --- streaming a selection ---------------------------------------------------------------------
 */

hc_err hc__store_select(hc_store *st, const struct hc_select *sel, const char *columns,
                        struct hc__selection *out, hc_error *err)
{
    struct sql_builder b = {0};
    char prefix[512];
    bool narrowed = false;
    hc_err code = HC_OK;

    memset(out, 0, sizeof(*out));
    if (sel && sel->limit < 0)
        return hc_error_set(err, HC_ERR_INVALID, "cannot select from '%s': negative limit",
                            st->path);
    if (sel && (sel->has_since || sel->has_until)) {
        code = window_ranges(st, sel, &out->ranges, &out->n_ranges, &narrowed, err);
        if (code != HC_OK)
            return code;
    }
    code = build_where(st, sel, &b, narrowed ? &out->range_param : NULL, err);
    if (code != HC_OK)
        goto out;
    sb_add(&b, " ORDER BY m.seq");
    snprintf(prefix, sizeof(prefix), "SELECT %s FROM message_rows m", columns);
    code = prepare_built(st, prefix, &b, "", &out->stmt, err);
    out->limit = sel ? sel->limit : 0;
out:
    sb_release(&b);
    if (code != HC_OK)
        hc__selection_release(out);
    return code;
}

int hc__selection_step(struct hc__selection *s)
{
    int rc;

    if (s->limit && s->returned >= s->limit)
        return SQLITE_DONE;
    for (;;) {
        if (s->range_param && s->next_range == 0) {
            if (!s->n_ranges)
                return SQLITE_DONE;
            sqlite3_bind_int64(s->stmt, s->range_param, s->ranges[0].lo);
            sqlite3_bind_int64(s->stmt, s->range_param + 1, s->ranges[0].hi);
            s->next_range = 1;
        }
        rc = sqlite3_step(s->stmt);
        if (rc == SQLITE_ROW) {
            s->returned++;
            return rc;
        }
        if (rc != SQLITE_DONE || !s->range_param || s->next_range >= s->n_ranges)
            return rc;
        sqlite3_reset(s->stmt);
        sqlite3_bind_int64(s->stmt, s->range_param, s->ranges[s->next_range].lo);
        sqlite3_bind_int64(s->stmt, s->range_param + 1, s->ranges[s->next_range].hi);
        s->next_range++;
    }
}

void hc__selection_release(struct hc__selection *s)
{
    sqlite3_finalize(s->stmt);
    free(s->ranges);
    memset(s, 0, sizeof(*s));
}

hc_err hc_store_query(hc_store *st, const struct hc_select *sel, hc_cursor **out, hc_error *err)
{
    hc_cursor *cur = NULL;
    hc_err code;
    int rc;

    if (out)
        *out = NULL;
    if (!st || !out)
        return hc_error_set(err, HC_ERR_INVALID, "cannot select messages: missing argument");
    cur = calloc(1, sizeof(*cur));
    if (!cur)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
    cur->st = st;
    /* a row whose topic is missing is skipped, as an inner join with topics would */
    code = hc__store_select(st, sel,
                            "m.seq, m.session_id, m.received_at_ns, m.mono_ns, m.topic_id,"
                            " m.payload, m.qos, m.retain, m.dup",
                            &cur->sel, err);
    if (code != HC_OK)
        goto out;
    rc = sqlite3_prepare_v2(st->db, "SELECT name FROM topics WHERE id = ?", -1, &cur->topics.lookup,
                            NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db, "SELECT started_at_ns FROM sessions WHERE id = ?", -1,
                                &cur->sessions.lookup, NULL);
    if (rc != SQLITE_OK)
        code = hc__store_fail(st, rc, err, "read");
out:
    if (code != HC_OK) {
        hc_cursor_free(cur);
        return code;
    }
    *out = cur;
    return HC_OK;
}

static size_t id_hash(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15ULL) >> 17) & (cap - 1);
}

static bool id_cache_grow(struct id_cache *c)
{
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct id_entry *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return false;
    for (size_t i = 0; i < c->cap; i++) {
        size_t at;
        if (!c->slots[i].used)
            continue;
        for (at = id_hash(c->slots[i].id, cap); slots[at].used; at = (at + 1) & (cap - 1))
            ;
        slots[at] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return true;
}

/*
 * *out: the cached entry for id, looked up in the database on a miss (found is false when the
 * row does not exist).
 */
static hc_err id_cache_get(hc_cursor *cur, struct id_cache *c, int64_t id, bool is_text,
                           const struct id_entry **out, hc_error *err)
{
    struct id_entry *e;
    size_t at;
    int rc;

    if (c->cap) {
        for (at = id_hash(id, c->cap); c->slots[at].used; at = (at + 1) & (c->cap - 1)) {
            if (c->slots[at].id == id) {
                *out = &c->slots[at];
                return HC_OK;
            }
        }
    }
    if ((c->n + 1) * 2 > c->cap && !id_cache_grow(c))
        return hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", cur->st->path);
    for (at = id_hash(id, c->cap); c->slots[at].used; at = (at + 1) & (c->cap - 1))
        ;
    e = &c->slots[at];
    memset(e, 0, sizeof(*e));
    sqlite3_bind_int64(c->lookup, 1, id);
    rc = sqlite3_step(c->lookup);
    if (rc == SQLITE_ROW) {
        e->found = true;
        if (is_text) {
            const char *name = (const char *)sqlite3_column_text(c->lookup, 0);
            e->name = strdup(name ? name : "");
            if (!e->name) {
                sqlite3_reset(c->lookup);
                return hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory",
                                    cur->st->path);
            }
        } else {
            e->value = sqlite3_column_int64(c->lookup, 0);
        }
        rc = SQLITE_DONE;
    }
    sqlite3_reset(c->lookup);
    if (rc != SQLITE_DONE)
        return hc__store_fail(cur->st, rc, err, "read");
    e->id = id;
    e->used = true;
    c->n++;
    *out = e;
    return HC_OK;
}

static void id_cache_release(struct id_cache *c)
{
    for (size_t i = 0; i < c->cap; i++)
        free(c->slots[i].name);
    free(c->slots);
    sqlite3_finalize(c->lookup);
}

hc_err hc_cursor_next(hc_cursor *cur, struct hc_msg *msg, hc_error *err)
{
    static const unsigned char empty[1] = {0};
    const struct id_entry *topic, *session;
    sqlite3_stmt *s;
    hc_err code;
    int rc;

    if (!cur || !msg)
        return hc_error_set(err, HC_ERR_INVALID, "cannot read the next message: missing argument");
    s = cur->sel.stmt;
    do {
        rc = hc__selection_step(&cur->sel);
        if (rc == SQLITE_DONE)
            return HC_DONE;
        if (rc != SQLITE_ROW)
            return hc__store_fail(cur->st, rc, err, "read");
        code = id_cache_get(cur, &cur->topics, sqlite3_column_int64(s, 4), true, &topic, err);
        if (code != HC_OK)
            return code;
    } while (!topic->found);
    memset(msg, 0, sizeof(*msg));
    msg->seq = sqlite3_column_int64(s, 0);
    msg->session_id = sqlite3_column_int64(s, 1);
    msg->received_at_ns = sqlite3_column_int64(s, 2);
    msg->mono_ns = sqlite3_column_int64(s, 3);
    code = id_cache_get(cur, &cur->sessions, msg->session_id, false, &session, err);
    if (code != HC_OK)
        return code;
    /* A message whose session row is missing still gets a usable time axis. */
    msg->timeline_ns = session->found ? session->value + msg->mono_ns : msg->received_at_ns;
    msg->topic = topic->name;
    msg->payload = sqlite3_column_blob(s, 5);
    msg->payload_len = (size_t)sqlite3_column_bytes(s, 5);
    if (!msg->payload) {
        msg->payload = empty;
        msg->payload_len = 0;
    }
    msg->qos = sqlite3_column_int(s, 6);
    msg->retain = sqlite3_column_int(s, 7) != 0;
    msg->dup = sqlite3_column_int(s, 8) != 0;
    return HC_OK;
}

void hc_cursor_free(hc_cursor *cur)
{
    if (!cur)
        return;
    hc__selection_release(&cur->sel);
    id_cache_release(&cur->topics);
    id_cache_release(&cur->sessions);
    free(cur);
}

/* --- summaries ------------------------------------------------------------------------------- */

hc_err hc_store_summarize(hc_store *st, const struct hc_select *sel, struct hc_store_summary *out,
                          hc_error *err)
{
    hc_summary *s = NULL;
    hc_err code;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!st || !out)
        return hc_error_set(err, HC_ERR_INVALID, "cannot summarize: missing argument");
    code = hc_store_summary_load(st, sel, 0, &s, err);
    if (code == HC_OK)
        hc_summary_totals(s, out);
    hc_summary_free(s);
    return code;
}

hc_err hc_store_count(hc_store *st, const struct hc_select *sel, int64_t *messages,
                      int64_t *first_received_at_ns, hc_error *err)
{
    struct hc__selection scan = {0};
    int64_t n = 0, first = INT64_MAX;
    hc_err code;
    int rc;

    if (messages)
        *messages = 0;
    if (first_received_at_ns)
        *first_received_at_ns = 0;
    if (!st || !messages)
        return hc_error_set(err, HC_ERR_INVALID, "cannot count: missing argument");
    if (hc__select_is_everything(sel) && st->schema_version >= 2) {
        struct hc_store_summary sum;
        hc_summary *s = NULL;
        code = hc__summary_load(st, NULL, 0, HC__SUMMARY_TOPICS, &s, err);
        hc_summary_totals(s, &sum);
        hc_summary_free(s);
        *messages = sum.messages;
        if (first_received_at_ns)
            *first_received_at_ns = sum.first_received_at_ns;
        return code;
    }
    /* the rows themselves, counted here: the selection may be narrowed to ranges of seq */
    code = hc__store_select(st, sel, "m.received_at_ns, m.topic_id IN (SELECT id FROM topics)",
                            &scan, err);
    if (code != HC_OK)
        return code;
    while ((rc = hc__selection_step(&scan)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(scan.stmt, 0);
        if (!sqlite3_column_int(scan.stmt, 1))
            continue; /* as a cursor, which skips rows without a topic */
        n++;
        if (t < first)
            first = t;
    }
    if (rc != SQLITE_DONE)
        code = hc__store_fail(st, rc, err, "read");
    hc__selection_release(&scan);
    *messages = n;
    if (first_received_at_ns)
        *first_received_at_ns = n ? first : 0;
    return code;
}

hc_err hc_store_count_by(hc_store *st, const struct hc_select *sel, const char *column,
                         int (*fn)(const char *key, int64_t count, int64_t first_ns,
                                   int64_t last_ns, void *user),
                         void *user, hc_error *err)
{
    hc_summary *s = NULL;
    hc_err code;

    if (!st || !column || !fn)
        return hc_error_set(err, HC_ERR_INVALID, "cannot count: missing argument");
    /* the column is checked before anything is read */
    if (strcmp(column, "kind") && strcmp(column, "type") && strcmp(column, "device_id") &&
        strcmp(column, "topic") && strcmp(column, "session_id") && strcmp(column, "decode_error"))
        return hc_error_set(err, HC_ERR_INVALID,
                            "cannot count by '%s': not one of kind, type, device_id, topic, "
                            "session_id, decode_error",
                            column);
    code = hc_store_summary_load(st, sel, 0, &s, err);
    if (code == HC_OK)
        code = hc_summary_count_by(s, column, fn, user, err);
    hc_summary_free(s);
    return code;
}

hc_err hc_store_sessions_each(hc_store *st, int (*fn)(const struct hc_session_row *row, void *user),
                              void *user, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    hc_summary *s = NULL;
    hc_err code = HC_OK;
    int rc;

    if (!st || !fn)
        return hc_error_set(err, HC_ERR_INVALID, "cannot list sessions: missing argument");
    code = hc__summary_load(st, NULL, 0, HC__SUMMARY_SESSIONS, &s, err);
    if (code != HC_OK)
        return code;
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT id, started_at_ns, started_mono_ns, ended_at_ns, end_reason"
                            " FROM sessions ORDER BY id",
                            -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        code = hc__store_fail(st, rc, err, "read");
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct hc_session_row row;
        const char *reason = (const char *)sqlite3_column_text(stmt, 4);
        row.id = sqlite3_column_int64(stmt, 0);
        row.started_at_ns = sqlite3_column_int64(stmt, 1);
        row.started_mono_ns = sqlite3_column_int64(stmt, 2);
        row.ended_at_ns = sqlite3_column_int64(stmt, 3);
        row.end_reason = reason ? reason : "";
        hc__summary_session(s, row.id, &row.messages, &row.first_received_at_ns,
                            &row.last_received_at_ns);
        if (fn(&row, user))
            goto out;
    }
    if (rc != SQLITE_DONE)
        code = hc__store_fail(st, rc, err, "read");
out:
    sqlite3_finalize(stmt);
    hc_summary_free(s);
    return code;
}

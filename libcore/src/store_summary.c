/*
 * The recording's summaries in memory: per topic and type, per minute and type, per session,
 * payload sizes, decode errors, and the runs of seq over which the arrival clock never stepped
 * back (what time windows search in). One counting function (hc__summary_add) serves the writer,
 * a reader's tail and a selection's scan, so they cannot disagree; the rest reads a summary out:
 * totals and size percentiles, counts by a column, minutes, topics, sessions. How the counts get
 * into and out of a recording's summary tables is in store_summary_tables.c.
 */
#include "hcore/store.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/decode.h"
#include "store_internal.h"
#include "store_summary_internal.h"

#define NS_PER_MINUTE (60LL * 1000000000LL)

/* --- counters keyed by two integers ----------------------------------------------------------- */

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
struct acc_val *hc__acc_get(struct acc_map *m, int64_t a, int64_t b)
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

void hc__acc_count(struct acc_val *v, int64_t bytes, int64_t first, int64_t last, int64_t messages)
{
    v->messages += messages;
    v->bytes += bytes;
    if (first < v->first)
        v->first = first;
    if (last > v->last)
        v->last = last;
}

void hc__acc_clear(struct acc_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* --- interned strings (types, error codes: a few dozen) -----------------------------------------
 */

int32_t hc__str_intern(struct str_table *t, const char *s)
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
    return acc ? hc__str_intern(&acc->types, type ? type : "") : -1;
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
void hc__summary_flush_dense(struct hc_summary *s)
{
    struct acc_val *v;

    for (size_t i = 0; s->dense_topics_used && i < s->dense_topics_cap; i++) {
        struct dense_topic *d = &s->dense_topics[i];
        if (d->type_ix < 0)
            continue;
        if ((v = hc__acc_get(&s->topics, (int64_t)i, d->type_ix)))
            hc__acc_count(v, d->v.bytes, d->v.first, d->v.last, d->v.messages);
        else
            s->oom = true;
        d->type_ix = -1;
    }
    s->dense_topics_used = 0;
    for (int64_t len = 0; s->dense_sizes_used && len < SIZE_EXACT; len++) {
        struct acc_val *d = &s->dense_sizes[len];
        if (!d->messages)
            continue;
        if ((v = hc__acc_get(&s->sizes, len, 0)))
            hc__acc_count(v, d->bytes, d->first, d->last, d->messages);
        else
            s->oom = true;
        *d = (struct acc_val){0, 0, 0, 0};
    }
    s->dense_sizes_used = 0;
    for (int i = 0; i < DENSE_TYPES; i++) {
        if (!s->minute_count[i])
            continue;
        if ((v = hc__acc_get(&s->minutes, s->minute_now[i], i)))
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
    if ((v = dense_topic(s, topic_id, type_ix)) || (v = hc__acc_get(&s->topics, topic_id, type_ix)))
        hc__acc_count(v, payload_len, t, t, 1);
    else
        s->oom = true;
    minute = minute_of(t);
    if (type_ix < DENSE_TYPES && (!s->minute_count[type_ix] || s->minute_now[type_ix] == minute)) {
        s->minute_now[type_ix] = minute;
        s->minute_count[type_ix]++;
    } else if (type_ix < DENSE_TYPES) {
        if ((v = hc__acc_get(&s->minutes, s->minute_now[type_ix], type_ix)))
            v->messages += s->minute_count[type_ix];
        else
            s->oom = true;
        s->minute_now[type_ix] = minute;
        s->minute_count[type_ix] = 1;
    } else if ((v = hc__acc_get(&s->minutes, minute, type_ix))) {
        v->messages++;
    } else {
        s->oom = true;
    }
    if ((v = hc__acc_get(&s->sessions, session_id, 0)))
        hc__acc_count(v, payload_len, t, t, 1);
    else
        s->oom = true;
    if (payload_len >= 0 && payload_len < SIZE_EXACT) {
        v = &s->dense_sizes[payload_len];
        if (!v->messages) {
            *v = (struct acc_val){0, 0, INT64_MAX, INT64_MIN};
            s->dense_sizes_used++;
        }
        hc__acc_count(v, payload_len, payload_len, payload_len, 1);
    } else if ((v = hc__acc_get(&s->sizes, size_class(payload_len), 0))) {
        hc__acc_count(v, payload_len, payload_len, payload_len, 1);
    } else {
        s->oom = true;
    }
    if (error_code) {
        int32_t ix = hc__str_intern(&s->codes, error_code);
        if (ix < 0 || !(v = hc__acc_get(&s->errors, ix, 0)))
            s->oom = true;
        else
            hc__acc_count(v, 0, t, t, 1);
    }
    run_add(s, seq, t);
}

/* Forgets the counts (not the interned strings, which topic cache entries refer to). */
void hc__summary_reset_counts(struct hc_summary *s)
{
    for (size_t i = 0; s->dense_topics_used && i < s->dense_topics_cap; i++)
        s->dense_topics[i].type_ix = -1;
    s->dense_topics_used = 0;
    memset(s->dense_sizes, 0, sizeof(s->dense_sizes));
    s->dense_sizes_used = 0;
    memset(s->minute_count, 0, sizeof(s->minute_count));
    hc__acc_clear(&s->topics);
    hc__acc_clear(&s->minutes);
    hc__acc_clear(&s->sessions);
    hc__acc_clear(&s->sizes);
    hc__acc_clear(&s->errors);
    s->n_runs = 0;
    s->rows = 0;
    s->oom = false;
}

void hc_summary_free(hc_summary *s)
{
    if (!s)
        return;
    hc__summary_reset_counts(s);
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

/* --- what a summary says ---------------------------------------------------------------------
 */

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

/*
 * Aggregates for pictures of a recording (see hcore/recstats.h): one pass, fixed time columns
 * whose width doubles as the span grows, string maps for types, devices and topics.
 */
#include "hcore/recstats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/decode.h"
#include "internal.h"

const int64_t hc_recstats_latency_edges_ms[HC_RECSTATS_LATENCY_BINS - 2] = {
    25, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000, 900000, 3600000};

struct topic_state {
    int64_t last_measured_at_ms;
    bool has_measured_at;
    uint64_t last_payload_hash;
    size_t last_payload_len;
    bool seen;
};

struct hc_recstats_private {
    struct hc__strmap types, devices, topics;
    struct topic_state *topic_states;
    size_t n_topics, cap_topics;
    size_t cap_types, cap_devices;
    bool started; /* origin set */
};

hc_err hc_recstats_new(struct hc_recstats **out, hc_error *err)
{
    struct hc_recstats *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!s || !(s->priv = calloc(1, sizeof(*s->priv)))) {
        free(s);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    hc__strmap_init(&s->priv->types);
    hc__strmap_init(&s->priv->devices);
    hc__strmap_init(&s->priv->topics);
    s->bucket_ns = 1000000000;
    for (int i = 0; i < HC_RECSTATS_BUCKETS; i++)
        s->latency_max_per_bucket[i] = INT64_MIN;
    *out = s;
    return HC_OK;
}

void hc_recstats_free(struct hc_recstats *s)
{
    if (!s)
        return;
    if (s->priv) {
        hc__strmap_release(&s->priv->types);
        hc__strmap_release(&s->priv->devices);
        hc__strmap_release(&s->priv->topics);
        free(s->priv->topic_states);
        free(s->priv);
    }
    free(s->types);
    free(s->devices);
    free(s);
}

int hc_recstats_columns(const struct hc_recstats *s)
{
    uint64_t d;
    if (!s->messages)
        return 0;
    d = s->last_ns > s->origin_ns ? (uint64_t)s->last_ns - (uint64_t)s->origin_ns : 0;
    return (int)(d / (uint64_t)s->bucket_ns) + 1;
}

int64_t hc_recstats_latency_quantile_ms(const int64_t bins[HC_RECSTATS_LATENCY_BINS], double q)
{
    int64_t total = 0, seen = 0;
    for (int i = 0; i < HC_RECSTATS_LATENCY_BINS; i++)
        total += bins[i];
    if (!total)
        return 0;
    for (int i = 0; i < HC_RECSTATS_LATENCY_BINS; i++) {
        seen += bins[i];
        if ((double)seen >= q * (double)total)
            return i == 0 ? 0
                          : hc_recstats_latency_edges_ms[i <= HC_RECSTATS_LATENCY_BINS - 2
                                                             ? i - 1
                                                             : HC_RECSTATS_LATENCY_BINS - 3];
    }
    return hc_recstats_latency_edges_ms[HC_RECSTATS_LATENCY_BINS - 3];
}

/* --- the time axis --------------------------------------------------------------------------- */

static void merge_i64(int64_t *a, int shift_cols, bool take_max)
{
    int64_t merged[HC_RECSTATS_BUCKETS];
    for (int i = 0; i < HC_RECSTATS_BUCKETS; i++)
        merged[i] = take_max ? INT64_MIN : 0;
    for (int i = 0; i < HC_RECSTATS_BUCKETS; i++) {
        int j = (i + shift_cols) / 2;
        if (take_max)
            merged[j] = a[i] > merged[j] ? a[i] : merged[j];
        else
            merged[j] += a[i];
    }
    memcpy(a, merged, sizeof(merged));
}

static void merge_u32(uint32_t *a, int shift_cols)
{
    uint32_t merged[HC_RECSTATS_BUCKETS] = {0};
    for (int i = 0; i < HC_RECSTATS_BUCKETS; i++)
        merged[(i + shift_cols) / 2] += a[i];
    memcpy(a, merged, sizeof(merged));
}

/* Doubles the column width: column i (of width w from origin) goes to (i + shift) / 2, where
 * shift is 1 when the new origin (aligned to 2w) lies one old column earlier. */
static void double_width(struct hc_recstats *s)
{
    int64_t w2 = s->bucket_ns * 2;
    int64_t origin2 = s->origin_ns - ((s->origin_ns % w2) + w2) % w2;
    int shift = (int)((s->origin_ns - origin2) / s->bucket_ns);

    merge_i64(s->per_bucket, shift, false);
    merge_i64(s->decode_errors_per_bucket, shift, false);
    merge_i64(s->duplicates_per_bucket, shift, false);
    merge_i64(s->backwards_per_bucket, shift, false);
    merge_i64(s->latency_max_per_bucket, shift, true);
    for (size_t t = 0; t < s->n_types; t++)
        merge_i64(s->types[t].per_bucket, shift, false);
    for (size_t d = 0; d < s->n_devices; d++)
        merge_u32(s->devices[d].per_bucket, shift);
    {
        static const int64_t zero[HC_RECSTATS_LATENCY_BINS] = {0};
        for (int i = 0; i < HC_RECSTATS_BUCKETS; i++) {
            int j = (i + shift) / 2;
            if (j == i)
                continue;
            for (int b = 0; b < HC_RECSTATS_LATENCY_BINS; b++)
                s->latency_bins_per_bucket[j][b] += s->latency_bins_per_bucket[i][b];
            memcpy(s->latency_bins_per_bucket[i], zero, sizeof(zero));
        }
    }
    s->origin_ns = origin2;
    s->bucket_ns = w2;
}

/* The column of time t, widening the columns until it fits. */
static int column_of(struct hc_recstats *s, int64_t t)
{
    uint64_t d;
    if (t <= s->origin_ns)
        return 0;
    d = (uint64_t)t - (uint64_t)s->origin_ns;
    while (d / (uint64_t)s->bucket_ns >= HC_RECSTATS_BUCKETS && s->bucket_ns < INT64_MAX / 4) {
        double_width(s);
        d = (uint64_t)t - (uint64_t)s->origin_ns;
    }
    d /= (uint64_t)s->bucket_ns;
    return d >= HC_RECSTATS_BUCKETS ? HC_RECSTATS_BUCKETS - 1 : (int)d;
}

/* --- lookups --------------------------------------------------------------------------------- */

static hc_err intern_type(struct hc_recstats *s, const char *name, size_t *index)
{
    struct hc_recstats_private *p = s->priv;
    size_t n = strlen(name);
    if (hc__strmap_get(&p->types, name, n, index))
        return HC_OK;
    if (s->n_types == p->cap_types) {
        size_t cap = p->cap_types ? p->cap_types * 2 : 16;
        struct hc_recstats_type *grown = realloc(s->types, cap * sizeof(*grown));
        if (!grown)
            return HC_ERR_NOMEM;
        s->types = grown;
        p->cap_types = cap;
    }
    memset(&s->types[s->n_types], 0, sizeof(s->types[0]));
    snprintf(s->types[s->n_types].name, sizeof(s->types[0].name), "%s", name);
    *index = s->n_types;
    if (hc__strmap_put(&p->types, name, n, *index) != HC_OK)
        return HC_ERR_NOMEM;
    s->n_types++;
    return HC_OK;
}

static hc_err intern_device(struct hc_recstats *s, const char *id, const char *type, size_t *index)
{
    struct hc_recstats_private *p = s->priv;
    size_t n = strlen(id);
    if (hc__strmap_get(&p->devices, id, n, index))
        return HC_OK;
    if (s->n_devices == p->cap_devices) {
        size_t cap = p->cap_devices ? p->cap_devices * 2 : 64;
        struct hc_recstats_device *grown = realloc(s->devices, cap * sizeof(*grown));
        if (!grown)
            return HC_ERR_NOMEM;
        s->devices = grown;
        p->cap_devices = cap;
    }
    memset(&s->devices[s->n_devices], 0, sizeof(s->devices[0]));
    snprintf(s->devices[s->n_devices].id, sizeof(s->devices[0].id), "%s", id);
    snprintf(s->devices[s->n_devices].first_type, sizeof(s->devices[0].first_type), "%s", type);
    *index = s->n_devices;
    if (hc__strmap_put(&p->devices, id, n, *index) != HC_OK)
        return HC_ERR_NOMEM;
    s->n_devices++;
    return HC_OK;
}

static hc_err topic_state(struct hc_recstats *s, const char *topic, struct topic_state **out)
{
    struct hc_recstats_private *p = s->priv;
    size_t n = strlen(topic), index;
    if (!hc__strmap_get(&p->topics, topic, n, &index)) {
        if (p->n_topics == p->cap_topics) {
            size_t cap = p->cap_topics ? p->cap_topics * 2 : 64;
            struct topic_state *grown = realloc(p->topic_states, cap * sizeof(*grown));
            if (!grown)
                return HC_ERR_NOMEM;
            p->topic_states = grown;
            p->cap_topics = cap;
        }
        index = p->n_topics;
        memset(&p->topic_states[index], 0, sizeof(p->topic_states[0]));
        if (hc__strmap_put(&p->topics, topic, n, index) != HC_OK)
            return HC_ERR_NOMEM;
        p->n_topics++;
    }
    *out = &p->topic_states[index];
    return HC_OK;
}

static uint64_t payload_hash(const unsigned char *b, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int latency_bin(int64_t ms)
{
    if (ms < 0)
        return 0;
    for (int i = 0; i < HC_RECSTATS_LATENCY_BINS - 2; i++)
        if (ms < hc_recstats_latency_edges_ms[i])
            return i + 1;
    return HC_RECSTATS_LATENCY_BINS - 1;
}

static void note_event(struct hc_recstats *s, enum hc_recstats_event_kind kind,
                       const struct hc_msg *m)
{
    struct hc_recstats_event *e;
    if (s->n_events >= HC_RECSTATS_MAX_EVENTS)
        return;
    e = &s->events[s->n_events++];
    e->kind = kind;
    e->received_at_ns = m->received_at_ns;
    snprintf(e->topic, sizeof(e->topic), "%s", m->topic);
}

/* --- adding ---------------------------------------------------------------------------------- */

/*
 * Widens the span to [first, last] (the first call sets the origin) and returns the column of
 * first. An instant before the origin lands in column 0, as it always has for a message that
 * arrives out of order.
 */
static int note_time(struct hc_recstats *s, int64_t first, int64_t last)
{
    if (!s->priv->started) {
        s->priv->started = true;
        s->first_ns = first;
        s->last_ns = last;
        s->origin_ns = first - ((first % s->bucket_ns) + s->bucket_ns) % s->bucket_ns;
    }
    if (first < s->first_ns)
        s->first_ns = first;
    if (last > s->last_ns)
        s->last_ns = last;
    column_of(s, last); /* widens the columns when last lies beyond them */
    return column_of(s, first);
}

hc_err hc_recstats_add(struct hc_recstats *s, const struct hc_msg *m, hc_error *err)
{
    struct hc_decode_index idx;
    struct hc_recstats_device *dev = NULL;
    struct topic_state *ts;
    char type[80];
    size_t ti, di;
    int col;
    uint64_t hash;
    bool duplicate, backwards = false;

    hc_decode_index(m->topic, m->payload, m->payload_len, &idx);
    col = note_time(s, m->received_at_ns, m->received_at_ns);
    s->messages++;
    s->payload_bytes += (int64_t)m->payload_len;
    s->per_bucket[col]++;

    if (idx.type[0])
        snprintf(type, sizeof(type), "%s", idx.type);
    else
        snprintf(type, sizeof(type), "(%s)", idx.kind[0] ? idx.kind : "unknown");
    if (intern_type(s, type, &ti) != HC_OK)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    s->types[ti].messages++;
    s->types[ti].per_bucket[col]++;

    if (idx.device_id[0]) {
        if (intern_device(s, idx.device_id, type, &di) != HC_OK)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        dev = &s->devices[di];
        if (dev->messages) {
            int64_t gap = m->received_at_ns - dev->last_ns;
            if (gap > dev->longest_silence_ns)
                dev->longest_silence_ns = gap;
        } else {
            dev->first_ns = m->received_at_ns;
            dev->latency_max_ms = INT64_MIN;
        }
        dev->last_ns = m->received_at_ns;
        dev->messages++;
        if (dev->per_bucket[col] < UINT32_MAX)
            dev->per_bucket[col]++;
    } else {
        s->without_device++;
    }

    if (idx.has_measured_at) {
        int64_t ms = m->received_at_ns / 1000000 - idx.measured_at_ms;
        int bin = latency_bin(ms);
        s->latency_bins[bin]++;
        s->latency_bins_per_bucket[col][bin]++;
        if (ms > s->latency_max_per_bucket[col])
            s->latency_max_per_bucket[col] = ms;
        if (dev) {
            dev->latency_n++;
            dev->latency_sum_ms += ms;
            if (ms > dev->latency_max_ms)
                dev->latency_max_ms = ms;
        }
    } else {
        s->without_measured_at++;
    }

    if (idx.has_error) {
        s->decode_errors++;
        s->decode_errors_per_bucket[col]++;
        if (dev)
            dev->decode_errors++;
        note_event(s, HC_EVENT_DECODE_ERROR, m);
    }
    if (topic_state(s, m->topic, &ts) != HC_OK)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    hash = payload_hash(m->payload, m->payload_len);
    duplicate = m->dup || (ts->seen && ts->last_payload_hash == hash &&
                           ts->last_payload_len == m->payload_len);
    if (idx.has_measured_at) {
        backwards = ts->has_measured_at && idx.measured_at_ms < ts->last_measured_at_ms;
        ts->last_measured_at_ms = idx.measured_at_ms;
        ts->has_measured_at = true;
    }
    ts->seen = true;
    ts->last_payload_hash = hash;
    ts->last_payload_len = m->payload_len;
    if (duplicate) {
        s->duplicates++;
        s->duplicates_per_bucket[col]++;
        if (dev)
            dev->duplicates++;
        note_event(s, HC_EVENT_DUPLICATE, m);
    }
    if (backwards) {
        s->backwards++;
        s->backwards_per_bucket[col]++;
        if (dev)
            dev->backwards++;
        note_event(s, HC_EVENT_BACKWARDS, m);
    }
    return HC_OK;
}

/* --- filling from summaries ------------------------------------------------------------------ */

static void add_device_summary(struct hc_recstats_device *dev,
                               const struct hc_recstats_summary_row *row, int col, int64_t first,
                               int64_t last)
{
    if (!dev->messages) {
        dev->first_ns = first;
        dev->last_ns = last;
        dev->latency_max_ms = INT64_MIN;
    } else if (row->span_only) {
        if (first < dev->first_ns)
            dev->first_ns = first;
        if (last > dev->last_ns)
            dev->last_ns = last;
    } else {
        /* slots may come in any order: the silence between them is known, not within */
        int64_t gap = first > dev->last_ns ? first - dev->last_ns : dev->first_ns - last;
        if (gap > dev->longest_silence_ns)
            dev->longest_silence_ns = gap;
        if (first < dev->first_ns)
            dev->first_ns = first;
        if (last > dev->last_ns)
            dev->last_ns = last;
    }
    dev->messages += row->messages;
    if (!row->span_only)
        dev->per_bucket[col] = (uint32_t)((int64_t)dev->per_bucket[col] + row->messages > UINT32_MAX
                                              ? UINT32_MAX
                                              : dev->per_bucket[col] + (uint32_t)row->messages);
    dev->decode_errors += row->decode_errors;
    dev->duplicates += row->duplicates;
    dev->backwards += row->backwards;
}

static void add_latency_summary(struct hc_recstats *s, const struct hc_recstats_summary_row *row,
                                int col)
{
    for (int b = 0; b < HC_RECSTATS_LATENCY_BINS; b++) {
        s->latency_bins[b] += row->latency_bins[b];
        s->latency_bins_per_bucket[col][b] += row->latency_bins[b];
    }
    if (row->latency_max_ms > s->latency_max_per_bucket[col])
        s->latency_max_per_bucket[col] = row->latency_max_ms;
}

hc_err hc_recstats_add_summary(struct hc_recstats *s, const struct hc_recstats_summary_row *row,
                               hc_error *err)
{
    int64_t first = row->first_ns ? row->first_ns : row->slot_start_ns;
    int64_t last = row->last_ns ? row->last_ns : row->slot_start_ns + row->slot_ns - 1;
    size_t index;
    int col;

    if (row->slot_ns <= 0 || (!row->type && !row->device) || (row->type && row->device) ||
        row->messages < 0 || row->payload_bytes < 0)
        return hc_error_set(err, HC_ERR_INVALID,
                            "invalid summary row: needs a slot, and a type or a device");
    if (!row->messages)
        return HC_OK;
    col = note_time(s, first, last);
    if (row->device) {
        if (intern_device(s, row->device, row->device_type ? row->device_type : "", &index) !=
            HC_OK)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        add_device_summary(&s->devices[index], row, col, first, last);
        return HC_OK;
    }
    if (intern_type(s, row->type, &index) != HC_OK)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    s->messages += row->messages;
    s->payload_bytes += row->payload_bytes;
    s->per_bucket[col] += row->messages;
    s->types[index].messages += row->messages;
    s->types[index].per_bucket[col] += row->messages;
    s->decode_errors += row->decode_errors;
    s->decode_errors_per_bucket[col] += row->decode_errors;
    s->duplicates += row->duplicates;
    s->duplicates_per_bucket[col] += row->duplicates;
    s->backwards += row->backwards;
    s->backwards_per_bucket[col] += row->backwards;
    s->without_measured_at += row->without_measured_at;
    if (row->latency_bins)
        add_latency_summary(s, row, col);
    return HC_OK;
}

/*
 * hcat --report FILE.html: one self-contained page about the selected messages. The work is
 * split in two so that either half can change alone: libcore's hc_recstats computes every
 * aggregate in one pass over the messages, or, for the whole of one recording, from the store's
 * summary tables plus a scan of its last SAMPLE_MESSAGES messages for what needs each message
 * (latency, duplicates, measured_at going back, anomalies, the heatmap): the time then no
 * longer grows with the messages. report_render draws those structs, plus the sessions and
 * meta of the recordings, with libcore's HTML pieces, and says which figures are summaries and
 * which the sample. Sizes are bounded whatever the recording: HC_RECSTATS_BUCKETS time columns,
 * at most HEATMAP_ROWS devices in the heatmap and TABLE_ROWS in the table, at most TYPES_SHOWN
 * series.
 */
#include "hcat.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/html.h"
#include "hcore/recstats.h"
#include "hcore/store.h"

#ifndef HKIT_VERSION
#define HKIT_VERSION "unknown"
#endif

#define HEATMAP_ROWS 100
#define HEATMAP_COLUMNS (HC_RECSTATS_BUCKETS / 2)
#define TABLE_ROWS 300
#define TYPES_SHOWN 9

struct session {
    int64_t id, start_ns, end_ns, messages;
    char *source, *reason;
};

struct meta_item {
    char *key, *value;
};

/* What the page shows besides the message aggregates. */
struct report_context {
    const struct hcat_opts *o;
    struct session *sessions;
    size_t n_sessions;
    struct meta_item *meta;
    size_t n_meta;
    bool interrupted;
    /* From summaries: `sample` holds the last messages, scanned for what summaries lack
     * (latency, duplicates, measured_at going back, the anomaly list, the device heatmap). */
    bool from_summaries;
    const struct hc_recstats *sample;
    char decode_error_codes[256]; /* "code n, ..." from the summary of decode errors */
};

struct report_sink {
    struct hcat_sink base;
    const struct hcat_opts *o;
    struct hc_recstats *stats;
    bool from_summaries; /* the whole of one recording: its summaries, no pass over messages */
};

/* --- collecting sessions and meta ------------------------------------------------------------ */

struct collect {
    struct report_context *ctx;
    const char *source;
    bool failed;
};

static int collect_session(const struct hc_session_row *row, void *user)
{
    struct collect *c = user;
    struct report_context *x = c->ctx;
    struct session *grown = realloc(x->sessions, (x->n_sessions + 1) * sizeof(*grown));
    struct session *s;

    if (!grown)
        return c->failed = true;
    x->sessions = grown;
    s = &x->sessions[x->n_sessions++];
    s->id = row->id;
    s->start_ns = row->started_at_ns;
    s->end_ns = row->ended_at_ns ? row->ended_at_ns : row->last_received_at_ns;
    if (s->end_ns < s->start_ns)
        s->end_ns = s->start_ns;
    s->messages = row->messages;
    s->source = strdup(c->source);
    s->reason = strdup(row->end_reason);
    if (!s->source || !s->reason)
        return c->failed = true;
    return 0;
}

static int collect_meta(const char *key, const char *value, void *user)
{
    struct collect *c = user;
    struct report_context *x = c->ctx;
    struct meta_item *grown;

    for (size_t i = 0; i < x->n_meta; i++)
        if (strcmp(x->meta[i].key, key) == 0)
            return 0; /* the first input's value wins */
    grown = realloc(x->meta, (x->n_meta + 1) * sizeof(*grown));
    if (!grown)
        return c->failed = true;
    x->meta = grown;
    x->meta[x->n_meta].key = strdup(key);
    x->meta[x->n_meta].value = strdup(value);
    x->n_meta++;
    if (!x->meta[x->n_meta - 1].key || !x->meta[x->n_meta - 1].value)
        return c->failed = true;
    return 0;
}

static int by_start(const void *a, const void *b)
{
    const struct session *x = a, *y = b;
    return (x->start_ns > y->start_ns) - (x->start_ns < y->start_ns);
}

static hc_err collect_context(struct report_context *x, const char *const *recordings, size_t n,
                              hc_error *err)
{
    for (size_t i = 0; i < n; i++) {
        struct collect c = {x, recordings[i], false};
        hc_store *st = NULL;
        hc_err rc = hc_store_open(recordings[i], HC_STORE_READ, &st, err);
        if (rc == HC_OK)
            rc = hc_store_sessions_each(st, collect_session, &c, err);
        if (rc == HC_OK)
            rc = hc_store_meta_each(st, collect_meta, &c, err);
        hc_store_close(st, NULL);
        if (rc == HC_OK && c.failed)
            rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        if (rc != HC_OK)
            return rc;
    }
    if (x->n_sessions)
        qsort(x->sessions, x->n_sessions, sizeof(*x->sessions), by_start);
    return HC_OK;
}

static void context_release(struct report_context *x)
{
    for (size_t i = 0; i < x->n_sessions; i++) {
        free(x->sessions[i].source);
        free(x->sessions[i].reason);
    }
    for (size_t i = 0; i < x->n_meta; i++) {
        free(x->meta[i].key);
        free(x->meta[i].value);
    }
    free(x->sessions);
    free(x->meta);
}

/* --- filling from the store's summaries ------------------------------------------------------ */

/* The sampled scan reads at least this many of the last messages (whole minutes of them). */
#define SAMPLE_MESSAGES 200000
#define NS_PER_MINUTE (60LL * 1000000000LL)

struct minute_total {
    int64_t start_ns, messages;
};

struct summary_fill {
    struct hc_recstats *s;
    struct hc_store_summary totals;
    const char *untyped; /* the name of messages without a type, as hc_recstats_add names them */
    struct hc_summary_topic *topics; /* strings owned by the summary */
    size_t n_topics, cap_topics;
    struct minute_total *minutes; /* messages per minute, all types */
    size_t n_minutes, cap_minutes;
    struct report_context *ctx;
    hc_error *err;
    hc_err rc;
};

static int fill_minute(int64_t start_ns, const char *type, int64_t count, void *user)
{
    struct summary_fill *c = user;
    struct hc_recstats_summary_row row = {.slot_start_ns = start_ns,
                                          .slot_ns = NS_PER_MINUTE,
                                          .type = type[0] ? type : c->untyped,
                                          .messages = count};
    /* the exact span: the first and the last minute end at the first and the last message */
    row.first_ns =
        start_ns > c->totals.first_received_at_ns ? start_ns : c->totals.first_received_at_ns;
    row.last_ns = start_ns + NS_PER_MINUTE - 1 < c->totals.last_received_at_ns
                      ? start_ns + NS_PER_MINUTE - 1
                      : c->totals.last_received_at_ns;
    if (c->n_minutes && c->minutes[c->n_minutes - 1].start_ns == start_ns) {
        c->minutes[c->n_minutes - 1].messages += count;
    } else {
        if (c->n_minutes == c->cap_minutes) {
            size_t cap = c->cap_minutes ? 2 * c->cap_minutes : 1024;
            struct minute_total *grown = realloc(c->minutes, cap * sizeof(*grown));
            if (!grown) {
                c->rc = hc_error_set(c->err, HC_ERR_NOMEM, "out of memory");
                return 1;
            }
            c->minutes = grown;
            c->cap_minutes = cap;
        }
        c->minutes[c->n_minutes++] = (struct minute_total){start_ns, count};
    }
    c->rc = hc_recstats_add_summary(c->s, &row, c->err);
    return c->rc != HC_OK;
}

static int keep_topic(const struct hc_summary_topic *t, void *user)
{
    struct summary_fill *c = user;
    if (c->n_topics == c->cap_topics) {
        size_t cap = c->cap_topics ? 2 * c->cap_topics : 1024;
        struct hc_summary_topic *grown = realloc(c->topics, cap * sizeof(*grown));
        if (!grown) {
            c->rc = hc_error_set(c->err, HC_ERR_NOMEM, "out of memory");
            return 1;
        }
        c->topics = grown;
        c->cap_topics = cap;
    }
    c->topics[c->n_topics++] = *t;
    return 0;
}

static int by_first_seen(const void *a, const void *b)
{
    const struct hc_summary_topic *x = a, *y = b;
    if (x->first_ns != y->first_ns)
        return x->first_ns < y->first_ns ? -1 : 1;
    return strcmp(x->topic, y->topic);
}

static int note_error_code(const char *code, int64_t count, int64_t first_ns, int64_t last_ns,
                           void *user)
{
    struct summary_fill *c = user;
    char *to = c->ctx->decode_error_codes;
    size_t used = strlen(to);
    (void)first_ns;
    (void)last_ns;
    snprintf(to + used, sizeof(c->ctx->decode_error_codes) - used, "%s%s %" PRId64,
             used ? ", " : "", code[0] ? code : "(no code)", count);
    return 0;
}

/* Untyped messages are "(kind)" in a scan; a minute row has no kind, so one name stands for
 * them all: the kind's when every untyped topic has the same one. */
static const char *untyped_name(const struct summary_fill *c, char *buf, size_t size)
{
    const char *kind = NULL;
    for (size_t i = 0; i < c->n_topics; i++) {
        if (c->topics[i].type[0])
            continue;
        if (kind && strcmp(kind, c->topics[i].kind) != 0)
            return "(untyped)";
        kind = c->topics[i].kind;
    }
    snprintf(buf, size, "(%s)", kind && kind[0] ? kind : "unknown");
    return buf;
}

/* Devices from the per-topic summary, in order of first appearance so that a device's first
 * type is the scan's. */
static hc_err fill_devices(struct summary_fill *c)
{
    if (c->n_topics)
        qsort(c->topics, c->n_topics, sizeof(*c->topics), by_first_seen);
    for (size_t i = 0; i < c->n_topics; i++) {
        const struct hc_summary_topic *t = &c->topics[i];
        char type[80];
        struct hc_recstats_summary_row row = {.slot_start_ns = t->first_ns,
                                              .slot_ns = t->last_ns - t->first_ns + 1,
                                              .first_ns = t->first_ns,
                                              .last_ns = t->last_ns,
                                              .device = t->device_id,
                                              .device_type = type,
                                              .messages = t->messages,
                                              .span_only = true};
        hc_err rc;
        if (!t->device_id[0]) {
            c->s->without_device += t->messages;
            continue;
        }
        if (t->type[0])
            snprintf(type, sizeof(type), "%s", t->type);
        else
            snprintf(type, sizeof(type), "(%s)", t->kind[0] ? t->kind : "unknown");
        rc = hc_recstats_add_summary(c->s, &row, c->err);
        if (rc != HC_OK)
            return rc;
    }
    return HC_OK;
}

/* The last SAMPLE_MESSAGES messages (or more, whole minutes), scanned message by message. */
static hc_err scan_sample(hc_store *st, const struct summary_fill *c, struct hc_recstats *sample,
                          hc_error *err)
{
    struct hc_select sel = {0};
    int64_t seen = 0;
    hc_cursor *cur = NULL;
    struct hc_msg m;
    hc_err rc;

    for (size_t i = c->n_minutes; i-- > 0 && seen < SAMPLE_MESSAGES;) {
        seen += c->minutes[i].messages;
        sel.has_since = true;
        sel.since_ns = c->minutes[i].start_ns;
    }
    rc = hc_store_query(st, &sel, &cur, err);
    while (rc == HC_OK && (rc = hc_cursor_next(cur, &m, err)) == HC_OK)
        rc = hc_recstats_add(sample, &m, err);
    hc_cursor_free(cur);
    return rc == HC_DONE ? HC_OK : rc;
}

/* Fills s from the summaries of one recording and sample from a scan of its last messages. */
static hc_err fill_from_summaries(struct hc_recstats *s, struct hc_recstats *sample,
                                  const char *path, struct report_context *x, hc_error *err)
{
    struct summary_fill c = {.s = s, .ctx = x, .err = err, .rc = HC_OK};
    hc_store *st = NULL;
    hc_summary *sum = NULL;
    char untyped[80];
    hc_err rc = hc_store_open(path, HC_STORE_READ, &st, err);

    if (rc == HC_OK)
        rc = hc_store_summary_load(st, NULL, 0, &sum, err);
    if (rc == HC_OK) {
        hc_summary_totals(sum, &c.totals);
        rc = hc_summary_topics_each(sum, keep_topic, &c, err);
    }
    if (rc == HC_OK && (rc = c.rc) == HC_OK) {
        c.untyped = untyped_name(&c, untyped, sizeof(untyped));
        rc = hc_summary_minutes_each(sum, fill_minute, &c, err);
    }
    if (rc == HC_OK && (rc = c.rc) == HC_OK)
        rc = fill_devices(&c);
    if (rc == HC_OK)
        rc = hc_summary_count_by(sum, "decode_error", note_error_code, &c, err);
    if (rc == HC_OK) {
        /* totals the per-minute rows do not carry */
        s->payload_bytes = c.totals.payload_bytes;
        s->decode_errors = c.totals.decode_errors;
        /* what a summary tells of silence: before a device's first and after its last message */
        for (size_t i = 0; i < s->n_devices; i++) {
            struct hc_recstats_device *d = &s->devices[i];
            int64_t before = d->first_ns - s->first_ns, after = s->last_ns - d->last_ns;
            d->longest_silence_ns = before > after ? before : after;
        }
        rc = scan_sample(st, &c, sample, err);
    }
    free(c.topics);
    free(c.minutes);
    hc_summary_free(sum);
    hc_store_close(st, NULL);
    return rc;
}

/* --- rendering ------------------------------------------------------------------------------- */

static void row_text(FILE *f, const char *name, const char *value)
{
    fputs("<tr><th>", f);
    hc_html_text(f, name);
    fputs("</th><td>", f);
    hc_html_text(f, value);
    fputs("</td></tr>\n", f);
}

/* Gaps between consecutive sessions (positive only): count, longest. */
static void session_gaps(const struct report_context *x, size_t *count, int64_t *longest)
{
    int64_t end = 0;
    *count = 0;
    *longest = 0;
    for (size_t i = 0; i < x->n_sessions; i++) {
        if (i && x->sessions[i].start_ns > end) {
            (*count)++;
            if (x->sessions[i].start_ns - end > *longest)
                *longest = x->sessions[i].start_ns - end;
        }
        if (!i || x->sessions[i].end_ns > end)
            end = x->sessions[i].end_ns;
    }
}

static void render_header(FILE *f, const struct hc_recstats *s, const struct report_context *x)
{
    char a[64], b[64], d[64], line[512];
    double span_s = (double)(s->last_ns - s->first_ns) / 1e9;
    size_t gaps;
    int64_t longest;
    const struct hc_recstats *lat = x->from_summaries ? x->sample : s;

    fputs("<table>\n", f);
    line[0] = 0;
    for (size_t i = 0; i < x->o->n_inputs; i++) {
        size_t used = strlen(line);
        snprintf(line + used, sizeof(line) - used, "%s%s", i ? ", " : "", x->o->inputs[i]);
    }
    row_text(f, "files", line);
    if (x->o->selection_text[0])
        row_text(f, "selection", x->o->selection_text);
    if (s->messages) {
        hc_html_time(s->first_ns, a, sizeof(a));
        hc_html_time(s->last_ns, b, sizeof(b));
        hc_html_duration(s->last_ns - s->first_ns, d, sizeof(d));
        snprintf(line, sizeof(line), "%s .. %s UTC (%s)", a, b, d);
        row_text(f, "span", line);
    }
    snprintf(line, sizeof(line), "%" PRId64 " (%.3g msg/s), %" PRId64 " payload bytes", s->messages,
             span_s > 0 ? (double)s->messages / span_s : 0.0, s->payload_bytes);
    row_text(f, "messages", line);
    snprintf(line, sizeof(line), "%zu types, %zu devices%s", s->n_types, s->n_devices,
             s->without_device ? " (and messages naming no device)" : "");
    row_text(f, "counts", line);
    session_gaps(x, &gaps, &longest);
    hc_html_duration(longest, d, sizeof(d));
    if (x->n_sessions)
        snprintf(line, sizeof(line), "%zu sessions, %zu gaps between them%s%s", x->n_sessions, gaps,
                 gaps ? ", longest " : "", gaps ? d : "");
    else
        snprintf(line, sizeof(line), "none recorded (JSON lines input)");
    row_text(f, "sessions", line);
    snprintf(line, sizeof(line),
             "p50 %" PRId64 " ms, p90 %" PRId64 " ms, p99 %" PRId64 " ms (bin edges); %" PRId64
             " messages without measured_at",
             hc_recstats_latency_quantile_ms(lat->latency_bins, 0.5),
             hc_recstats_latency_quantile_ms(lat->latency_bins, 0.9),
             hc_recstats_latency_quantile_ms(lat->latency_bins, 0.99), lat->without_measured_at);
    row_text(f, x->from_summaries ? "latency (sample)" : "latency", line);
    if (x->from_summaries) {
        const struct hc_recstats *smp = x->sample;
        char from[64], sampled[400];
        hc_html_time(smp->first_ns, from, sizeof(from));
        snprintf(
            line, sizeof(line),
            "%" PRId64 " decode errors, %" PRId64 " duplicates, %" PRId64
            " times measured_at went back%s%s%s",
            s->decode_errors, smp->duplicates, smp->backwards,
            smp->messages < s->messages ? " (duplicates and measured_at: in the sample only)" : "",
            x->decode_error_codes[0] ? "; decode errors by code: " : "", x->decode_error_codes);
        row_text(f, "from summaries",
                 "messages, bytes, span, rate per type (per minute), devices (messages, first "
                 "and last seen, first type), sessions and decode errors: the recording's "
                 "summary tables, every message counted without being read");
        if (smp->messages < s->messages)
            snprintf(sampled, sizeof(sampled),
                     "latency, duplicates, measured_at going back, the anomaly list and the "
                     "device heatmap: the last %" PRId64 " messages (received from %s UTC), read "
                     "one by one; not drawn for earlier messages, nor decode errors on the "
                     "timeline",
                     smp->messages, from);
        else
            snprintf(sampled, sizeof(sampled),
                     "latency, duplicates, measured_at going back, the anomaly list and the "
                     "device heatmap: every message, read one by one (the recording is shorter "
                     "than the sample); decode errors are not drawn on the timeline");
        if (s->messages)
            row_text(f, "sampled", sampled);
    } else {
        snprintf(line, sizeof(line),
                 "%" PRId64 " decode errors, %" PRId64 " duplicates, %" PRId64
                 " times measured_at went back",
                 s->decode_errors, s->duplicates, s->backwards);
    }
    fprintf(f, "<tr><th>anomalies</th><td%s>",
            s->decode_errors || s->duplicates || s->backwards ||
                    (x->from_summaries && (x->sample->duplicates || x->sample->backwards))
                ? " class=\"warn\""
                : "");
    hc_html_text(f, line);
    fputs("</td></tr>\n", f);
    if (x->interrupted)
        row_text(f, "note", "interrupted: this report covers the messages read before the stop");
    for (size_t i = 0; i < x->n_meta; i++) {
        snprintf(line, sizeof(line), "meta %s", x->meta[i].key);
        row_text(f, line, x->meta[i].value);
    }
    fputs("</table>\n", f);
}

static int by_messages_desc(const void *a, const void *b)
{
    const struct hc_recstats_type *x = *(const struct hc_recstats_type *const *)a;
    const struct hc_recstats_type *y = *(const struct hc_recstats_type *const *)b;
    if (x->messages != y->messages)
        return x->messages < y->messages ? 1 : -1;
    return strcmp(x->name, y->name);
}

static hc_err render_rates(FILE *f, const struct hc_recstats *s, const struct report_context *x)
{
    int columns = hc_recstats_columns(s);
    size_t n_series = s->n_types > TYPES_SHOWN + 1 ? TYPES_SHOWN + 1 : s->n_types;
    const struct hc_recstats_type **sorted = calloc(s->n_types + 1, sizeof(*sorted));
    struct hc_html_series *series = calloc(n_series + 1, sizeof(*series));
    double *values = calloc((n_series + 1) * HC_RECSTATS_BUCKETS, sizeof(*values));
    struct hc_html_band *bands = calloc(2 * x->n_sessions + 1, sizeof(*bands));
    char(*labels)[160] = calloc(2 * x->n_sessions + 1, sizeof(*labels));
    size_t n_bands = 0;
    hc_err rc = HC_OK;

    if (!sorted || !series || !values || !bands || !labels) {
        rc = HC_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < s->n_types; i++)
        sorted[i] = &s->types[i];
    qsort(sorted, s->n_types, sizeof(*sorted), by_messages_desc);
    for (size_t i = 0; i < s->n_types; i++) {
        size_t k = i < n_series - 1 || s->n_types == n_series ? i : n_series - 1;
        for (int c = 0; c < columns; c++)
            values[k * HC_RECSTATS_BUCKETS + (size_t)c] += (double)sorted[i]->per_bucket[c];
        series[k].name = k == i && (i < n_series - 1 || s->n_types == n_series) ? sorted[i]->name
                                                                                : "other types";
        series[k].values = &values[k * HC_RECSTATS_BUCKETS];
    }
    for (size_t i = 0; i < x->n_sessions; i++) {
        char a[32], d[32];
        const struct session *ss = &x->sessions[i];
        hc_html_time(ss->start_ns, a, sizeof(a));
        hc_html_duration(ss->end_ns - ss->start_ns, d, sizeof(d));
        snprintf(labels[n_bands], sizeof(labels[0]),
                 "session %" PRId64 " of %s\nfrom %s for %s\n%" PRId64 " messages%s%s", ss->id,
                 ss->source, a, d, ss->messages, ss->reason[0] ? "\nended: " : "", ss->reason);
        bands[n_bands] = (struct hc_html_band){ss->start_ns, ss->end_ns, 0, labels[n_bands]};
        n_bands++;
        if (i + 1 < x->n_sessions && x->sessions[i + 1].start_ns > ss->end_ns) {
            hc_html_duration(x->sessions[i + 1].start_ns - ss->end_ns, d, sizeof(d));
            hc_html_time(ss->end_ns, a, sizeof(a));
            snprintf(labels[n_bands], sizeof(labels[0]), "gap of %s from %s", d, a);
            bands[n_bands] =
                (struct hc_html_band){ss->end_ns, x->sessions[i + 1].start_ns, 1, labels[n_bands]};
            n_bands++;
        }
    }
    {
        struct hc_html_marks marks[3] = {{"decode errors", s->decode_errors_per_bucket, "#d62728"},
                                         {"duplicates", s->duplicates_per_bucket, "#ff7f0e"},
                                         {"measured_at back", s->backwards_per_bucket, "#9467bd"}};
        struct hc_html_timechart chart = {
            .title = "Message rate per event type (sessions green, gaps red)",
            .y_label = "msg/s",
            .origin_ns = s->origin_ns,
            .column_ns = s->bucket_ns,
            .columns = columns,
            .series = series,
            .n_series = n_series,
            .stacked = true,
            .bands = bands,
            .n_bands = n_bands,
            .marks = marks,
            .n_marks = 3,
            .value_scale = 1e9 / (double)s->bucket_ns,
            .value_unit = "msg/s"};
        hc_html_timechart(f, &chart);
    }
out:
    free(sorted);
    free(series);
    free(values);
    free(bands);
    free(labels);
    return rc;
}

/* One row per event type, most messages first (as ros2 bag info lists its topics). */
static hc_err render_types(FILE *f, const struct hc_recstats *s)
{
    const struct hc_recstats_type **sorted = calloc(s->n_types + 1, sizeof(*sorted));
    if (!sorted)
        return HC_ERR_NOMEM;
    for (size_t i = 0; i < s->n_types; i++)
        sorted[i] = &s->types[i];
    qsort(sorted, s->n_types, sizeof(*sorted), by_messages_desc);
    fprintf(f,
            "<h2>Event types (%zu)</h2>\n<table><tr><th>type</th><th>messages</th>"
            "<th>share</th></tr>\n",
            s->n_types);
    for (size_t i = 0; i < s->n_types; i++) {
        fputs("<tr><td class=\"type\">", f);
        hc_html_text(f, sorted[i]->name);
        fprintf(f, "</td><td class=\"n\">%" PRId64 "</td><td class=\"n\">%.1f%%</td></tr>\n",
                sorted[i]->messages, 100.0 * (double)sorted[i]->messages / (double)s->messages);
    }
    fputs("</table>\n", f);
    free(sorted);
    return HC_OK;
}

/* Devices by how much of the span they were silent (most first), then by id. */
static int active_columns(const struct hc_recstats_device *d)
{
    int n = 0;
    for (int c = 0; c < HC_RECSTATS_BUCKETS; c++)
        n += d->per_bucket[c] != 0;
    return n;
}

static int by_silence(const void *a, const void *b)
{
    const struct hc_recstats_device *x = *(const struct hc_recstats_device *const *)a;
    const struct hc_recstats_device *y = *(const struct hc_recstats_device *const *)b;
    if (x->longest_silence_ns != y->longest_silence_ns)
        return x->longest_silence_ns < y->longest_silence_ns ? 1 : -1;
    return strcmp(x->id, y->id);
}

static hc_err render_heatmap(FILE *f, const struct hc_recstats *s,
                             const struct hc_recstats_device *const *devices, size_t n,
                             const char *scope)
{
    int columns = (hc_recstats_columns(s) + 1) / 2;
    size_t rows = n > HEATMAP_ROWS ? HEATMAP_ROWS : n;
    uint32_t(*cells)[HEATMAP_COLUMNS] = calloc(rows + 1, sizeof(*cells));
    const uint32_t **row_ptrs = calloc(rows + 1, sizeof(*row_ptrs));
    const char **labels = calloc(rows + 1, sizeof(*labels));
    const char **tips = calloc(rows + 1, sizeof(*tips));
    char(*label_text)[96] = calloc(rows + 1, sizeof(*label_text));
    char(*tip_text)[400] = calloc(rows + 1, sizeof(*tip_text));
    char title[160];
    hc_err rc = HC_OK;

    if (!cells || !row_ptrs || !labels || !tips || !label_text || !tip_text) {
        rc = HC_ERR_NOMEM;
        goto out;
    }
    for (size_t r = 0; r < rows; r++) {
        const struct hc_recstats_device *d = devices[r];
        char last[32], silence[32];
        for (int c = 0; c < HC_RECSTATS_BUCKETS; c++)
            cells[r][c / 2] += d->per_bucket[c];
        row_ptrs[r] = cells[r];
        snprintf(label_text[r], sizeof(label_text[0]), "%.24s %.13s", d->first_type, d->id);
        hc_html_time(d->last_ns, last, sizeof(last));
        hc_html_duration(d->longest_silence_ns, silence, sizeof(silence));
        snprintf(tip_text[r], sizeof(tip_text[0]),
                 "%s (%s)\n%" PRId64 " messages, active in %d of %d columns\nlongest silence %s"
                 "\nlast seen %s",
                 d->id, d->first_type, d->messages, active_columns(d), hc_recstats_columns(s),
                 silence, last);
        labels[r] = label_text[r];
        tips[r] = tip_text[r];
    }
    snprintf(title, sizeof(title),
             "Devices over %s (%zu of %zu devices, longest silence first; "
             "blank = silent)",
             scope, rows, n);
    {
        struct hc_html_heatmap h = {title,  s->origin_ns, s->bucket_ns * 2, columns,
                                    labels, tips,         row_ptrs,         rows};
        hc_html_heatmap(f, &h);
    }
out:
    free(cells);
    free(row_ptrs);
    free(labels);
    free(tips);
    free(label_text);
    free(tip_text);
    return rc;
}

static void render_latency(FILE *f, const struct hc_recstats *s, const char *scope)
{
    char title[2][160];
    const char *labels[HC_RECSTATS_LATENCY_BINS];
    char text[HC_RECSTATS_LATENCY_BINS][40];
    double values[HC_RECSTATS_LATENCY_BINS];
    double p50[HC_RECSTATS_BUCKETS], p90[HC_RECSTATS_BUCKETS];
    int columns = hc_recstats_columns(s);

    for (int i = 0; i < HC_RECSTATS_LATENCY_BINS; i++) {
        if (i == 0)
            snprintf(text[i], sizeof(text[i]), "< 0");
        else if (i == HC_RECSTATS_LATENCY_BINS - 1)
            snprintf(text[i], sizeof(text[i]), ">= 1h");
        else if (hc_recstats_latency_edges_ms[i - 1] < 1000)
            snprintf(text[i], sizeof(text[i]), "< %" PRId64 " ms",
                     hc_recstats_latency_edges_ms[i - 1]);
        else if (hc_recstats_latency_edges_ms[i - 1] < 60000)
            snprintf(text[i], sizeof(text[i]), "< %" PRId64 " s",
                     hc_recstats_latency_edges_ms[i - 1] / 1000);
        else
            snprintf(text[i], sizeof(text[i]), "< %" PRId64 " min",
                     hc_recstats_latency_edges_ms[i - 1] / 60000);
        labels[i] = text[i];
        values[i] = (double)s->latency_bins[i];
    }
    snprintf(title[0], sizeof(title[0]), "Delivery latency (received_at - measured_at)%s", scope);
    snprintf(title[1], sizeof(title[1]), "Delivery latency over time%s", scope);
    hc_html_barchart(f, title[0], labels, values, HC_RECSTATS_LATENCY_BINS, "messages");
    for (int c = 0; c < columns; c++) {
        p50[c] = (double)hc_recstats_latency_quantile_ms(s->latency_bins_per_bucket[c], 0.5);
        p90[c] = (double)hc_recstats_latency_quantile_ms(s->latency_bins_per_bucket[c], 0.9);
    }
    {
        struct hc_html_series series[2] = {{"p50 (bin edge)", p50, "#4e79a7"},
                                           {"p90 (bin edge)", p90, "#e15759"}};
        struct hc_html_timechart chart = {.title = title[1],
                                          .y_label = "ms",
                                          .origin_ns = s->origin_ns,
                                          .column_ns = s->bucket_ns,
                                          .columns = columns,
                                          .series = series,
                                          .n_series = 2,
                                          .value_unit = "ms"};
        hc_html_timechart(f, &chart);
    }
}

static void render_events(FILE *f, const struct hc_recstats *s, const char *scope)
{
    static const char *const kinds[] = {"decode error", "duplicate", "measured_at went back"};
    if (!s->n_events)
        return;
    fprintf(f,
            "<h2>First anomalies%s (%zu shown)</h2>\n<table><tr><th>received_at</th><th>what</th>"
            "<th>topic</th></tr>\n",
            scope, s->n_events);
    for (size_t i = 0; i < s->n_events; i++) {
        char when[32];
        hc_html_time(s->events[i].received_at_ns, when, sizeof(when));
        fprintf(f, "<tr><td>%s</td><td>%s</td><td class=\"mono\">", when, kinds[s->events[i].kind]);
        hc_html_text(f, s->events[i].topic);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void render_devices(FILE *f, bool from_summaries,
                           const struct hc_recstats_device *const *devices, size_t n)
{
    size_t rows = n > TABLE_ROWS ? TABLE_ROWS : n;
    fprintf(f,
            "<h2>Devices (%zu of %zu, longest silence first%s)</h2>\n<table><tr><th>device</th>"
            "<th>first type</th><th>messages</th><th>first seen</th><th>last seen</th>"
            "<th>%s</th><th>latency mean / max</th><th>decode errors</th>"
            "<th>duplicates</th><th>measured_at back</th></tr>\n",
            rows, n,
            from_summaries ? "; from summaries, which give no per-device latency or anomalies" : "",
            from_summaries ? "silent before first or after last seen" : "longest silence");
    for (size_t i = 0; i < rows; i++) {
        const struct hc_recstats_device *d = devices[i];
        char first[32], last[32], silence[32];
        hc_html_time(d->first_ns, first, sizeof(first));
        hc_html_time(d->last_ns, last, sizeof(last));
        hc_html_duration(d->longest_silence_ns, silence, sizeof(silence));
        fputs("<tr><td class=\"mono\">", f);
        hc_html_text(f, d->id);
        fputs("</td><td>", f);
        hc_html_text(f, d->first_type);
        fprintf(f,
                "</td><td class=\"n\">%" PRId64 "</td><td>%s</td><td>%s</td><td class=\"n\">%s"
                "</td>",
                d->messages, first, last, silence);
        if (from_summaries) {
            fputs("<td class=\"n\">-</td><td class=\"n\">-</td><td class=\"n\">-</td>"
                  "<td class=\"n\">-</td></tr>\n",
                  f);
            continue;
        }
        if (d->latency_n)
            fprintf(f, "<td class=\"n\">%" PRId64 " / %" PRId64 " ms</td>",
                    d->latency_sum_ms / d->latency_n, d->latency_max_ms);
        else
            fputs("<td class=\"n\">-</td>", f);
        fprintf(f,
                "<td class=\"n\">%" PRId64 "</td><td class=\"n\">%" PRId64 "</td>"
                "<td class=\"n\">%" PRId64 "</td></tr>\n",
                d->decode_errors, d->duplicates, d->backwards);
    }
    fputs("</table>\n", f);
}

/* Draws the whole page from the aggregates and the context. */
static const struct hc_recstats_device **devices_by_silence(const struct hc_recstats *s)
{
    const struct hc_recstats_device **devices = calloc(s->n_devices + 1, sizeof(*devices));
    if (!devices)
        return NULL;
    for (size_t i = 0; i < s->n_devices; i++)
        devices[i] = &s->devices[i];
    qsort(devices, s->n_devices, sizeof(*devices), by_silence);
    return devices;
}

static hc_err report_render(FILE *f, const struct hc_recstats *s, const struct report_context *x)
{
    /* with summaries, what needs each message comes from the sample of the last ones */
    const struct hc_recstats *detail = x->from_summaries ? x->sample : s;
    const struct hc_recstats_device **devices = devices_by_silence(s);
    const struct hc_recstats_device **recent = devices_by_silence(detail);
    const char *scope = x->from_summaries ? " in the sample of the last messages" : "";
    char title[256];
    hc_err rc;

    if (!devices || !recent) {
        free(devices);
        free(recent);
        return HC_ERR_NOMEM;
    }
    snprintf(title, sizeof(title), "hkit report: %s%s", x->o->inputs[0],
             x->o->n_inputs > 1 ? " and more" : "");
    hc_html_begin(f, title);
    render_header(f, s, x);
    rc = s->messages ? render_rates(f, s, x) : HC_OK;
    if (rc == HC_OK && s->messages)
        rc = render_types(f, s);
    if (rc == HC_OK && detail->messages && detail->n_devices)
        rc = render_heatmap(f, detail, recent, detail->n_devices,
                            x->from_summaries ? "the sampled last messages" : "time");
    if (rc == HC_OK && s->messages) {
        render_latency(f, detail, scope);
        render_events(f, detail, scope);
        render_devices(f, x->from_summaries, devices, s->n_devices);
    }
    if (!s->messages)
        fputs("<p class=\"note\">No messages in the selection.</p>\n", f);
    fputs("<p class=\"note\">Made by hcat " HKIT_VERSION ". Hover over charts for values.</p>\n",
          f);
    hc_html_end(f);
    free(devices);
    free(recent);
    return rc;
}

/* --- the sink -------------------------------------------------------------------------------- */

static hc_err report_add(struct hcat_sink *base, const struct hc_msg *m, hc_error *err)
{
    struct report_sink *s = (struct report_sink *)base;
    return hc_recstats_add(s->stats, m, err);
}

static hc_err report_finish(struct hcat_sink *base, const char *const *recordings, size_t n,
                            bool interrupted, hc_error *err)
{
    struct report_sink *s = (struct report_sink *)base;
    struct report_context x = {.o = s->o, .interrupted = interrupted};
    struct hc_recstats *sample = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    hc_err rc = collect_context(&x, recordings, n, err);

    if (rc == HC_OK && s->from_summaries && n == 1) {
        x.from_summaries = true;
        /* columns of whole minutes, so that no column gets one minute more than its neighbour */
        s->stats->bucket_ns = NS_PER_MINUTE;
        rc = hc_recstats_new(&sample, err);
        if (rc == HC_OK)
            rc = fill_from_summaries(s->stats, sample, recordings[0], &x, err);
        x.sample = sample;
        s->base.messages = s->stats->messages;
    }

    if (rc == HC_OK)
        rc = hcat_output_begin(s->o->report, s->o->force, &tmp, &f, err);
    if (rc == HC_OK) {
        rc = report_render(f, s->stats, &x);
        if (rc != HC_OK)
            hc_error_set(err, rc, "out of memory");
    }
    if (rc == HC_OK) {
        rc = hcat_output_commit(s->o->report, tmp, f, err);
        tmp = NULL;
        f = NULL;
    }
    hcat_output_abandon(tmp, f);
    context_release(&x);
    hc_recstats_free(sample);
    return rc;
}

static void report_free(struct hcat_sink *base)
{
    struct report_sink *s = (struct report_sink *)base;
    hc_recstats_free(s->stats);
    free(s);
}

hc_err hcat_report_sink_new(const struct hcat_opts *o, struct hcat_sink **out, hc_error *err)
{
    struct report_sink *s = calloc(1, sizeof(*s));
    hc_err rc;

    *out = NULL;
    if (!s)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    s->base.add = report_add;
    s->base.finish = report_finish;
    s->base.free = report_free;
    s->o = o;
    /* The whole of one recording, ids as stored: its summaries hold the counts, so no message
     * is read for them (finish does the rest). A selection or redaction reads every message. */
    if (o->n_inputs == 1 && !o->selection_text[0] && !o->redact && !o->n_masks) {
        bool is_db = false;
        if (tool_detect_input(o->inputs[0], &is_db, NULL) == HC_OK && is_db) {
            s->from_summaries = true;
            s->base.add = NULL;
        }
    }
    rc = hc_recstats_new(&s->stats, err);
    if (rc != HC_OK) {
        free(s);
        return rc;
    }
    *out = &s->base;
    return HC_OK;
}

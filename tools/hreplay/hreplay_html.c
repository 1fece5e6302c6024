/*
 * hreplay --report-html FILE: one self-contained page about a replay, drawn with libcore's
 * hc_html_* pieces. Two halves that change apart:
 *
 *   - the timeline (struct hreplay_timeline) collects per-time figures through the engine's
 *     hooks while the replay runs: handled_at gives each message's due time and hand-off time
 *     (rate scheduled vs achieved, lateness per column), progress gives the running figures
 *     (failures and reconnects, placed in the column where they were noticed). Memory is fixed:
 *     HREPLAY_HTML_COLUMNS columns of time since the first message, whose width starts at
 *     10 ms and doubles (merging neighbours) whenever an instant falls beyond the last one;
 *
 *   - the page (hreplay_html_write) is a table of sections, each a function that draws one part
 *     from struct hreplay_html_page: the figures, the rates, the lateness.
 *
 * Adding the --ramp section (rate in vs rate out, backlog and consumer latency per step): give
 * struct hreplay_html_page the steps (an array of {step rate, rate in, rate out, backlog at the
 * step's end, latency p50/p99}, filled by the ramp driver), write draw_ramp (a time chart with
 * one column per step: rate in and rate out as lines, backlog and latency as two more charts,
 * or hc_html_barchart per figure) and add {"ramp", has_ramp, draw_ramp} to SECTIONS. Nothing
 * else changes: sections draw only from the page struct, and each sits in its own
 * <section id="..."> so tests can find it.
 */
#include "hreplay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/html.h"

#define FIRST_COLUMN_NS 10000000LL /* 10 ms: a short replay still gets a readable picture */
#define LATENESS_BINS 40           /* bin 0: < 1 us; bin i: [2^(i-1), 2^i) us; the last: more */

struct hreplay_timeline {
    bool started;
    int64_t origin_ns, column_ns; /* CLOCK_MONOTONIC; column c covers origin + [c, c+1) * width */
    int64_t last_ns;              /* the latest instant seen */
    bool timed;                   /* due times were given (not --max) */
    double due[HREPLAY_HTML_COLUMNS], handled[HREPLAY_HTML_COLUMNS];
    int64_t failed[HREPLAY_HTML_COLUMNS], reconnects[HREPLAY_HTML_COLUMNS];
    int64_t lateness_max_ns[HREPLAY_HTML_COLUMNS];
    uint32_t lateness_bins[HREPLAY_HTML_COLUMNS][LATENESS_BINS];
    uint64_t seen_failed, seen_reconnects; /* running totals at the last progress call */
};

hc_err hreplay_timeline_new(struct hreplay_timeline **out, hc_error *err)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    (*out)->column_ns = FIRST_COLUMN_NS;
    return HC_OK;
}

void hreplay_timeline_free(struct hreplay_timeline *tl)
{
    free(tl);
}

/* Halves the resolution: column i goes to i / 2 (the origin stays: it is the first instant). */
static void double_width(struct hreplay_timeline *tl)
{
    for (int i = 0; i < HREPLAY_HTML_COLUMNS; i++) {
        int j = i / 2;
        if (i == j)
            continue;
        tl->due[j] += tl->due[i];
        tl->handled[j] += tl->handled[i];
        tl->failed[j] += tl->failed[i];
        tl->reconnects[j] += tl->reconnects[i];
        if (tl->lateness_max_ns[i] > tl->lateness_max_ns[j])
            tl->lateness_max_ns[j] = tl->lateness_max_ns[i];
        for (int b = 0; b < LATENESS_BINS; b++)
            tl->lateness_bins[j][b] += tl->lateness_bins[i][b];
        tl->due[i] = tl->handled[i] = 0;
        tl->failed[i] = tl->reconnects[i] = tl->lateness_max_ns[i] = 0;
        memset(tl->lateness_bins[i], 0, sizeof(tl->lateness_bins[i]));
    }
    tl->column_ns *= 2;
}

/* The column of instant t (the first instant seen is the origin), widening until it fits. */
static int column_of(struct hreplay_timeline *tl, int64_t t)
{
    if (!tl->started) {
        tl->started = true;
        tl->origin_ns = tl->last_ns = t;
    }
    if (t > tl->last_ns)
        tl->last_ns = t;
    if (t <= tl->origin_ns)
        return 0;
    while ((t - tl->origin_ns) / tl->column_ns >= HREPLAY_HTML_COLUMNS)
        double_width(tl);
    return (int)((t - tl->origin_ns) / tl->column_ns);
}

static int lateness_bin(int64_t ns)
{
    int64_t us = ns / 1000;
    int b = 0;
    while (us > 0 && b < LATENESS_BINS - 1) {
        us >>= 1;
        b++;
    }
    return b;
}

/* The upper edge (ns) of the bin where fraction q of the column's messages is reached. */
static int64_t column_quantile_ns(const uint32_t bins[LATENESS_BINS], double q)
{
    uint64_t total = 0, seen = 0;
    for (int b = 0; b < LATENESS_BINS; b++)
        total += bins[b];
    for (int b = 0; b < LATENESS_BINS && total; b++) {
        seen += bins[b];
        if ((double)seen >= q * (double)total)
            return (int64_t)1000 << b;
    }
    return 0;
}

void hreplay_timeline_handled(struct hreplay_timeline *tl, int64_t due_ns, int64_t handled_ns)
{
    /* the first message's due time is the origin: the schedule's zero */
    int due_col = due_ns ? column_of(tl, due_ns) : -1;
    int col = column_of(tl, handled_ns);

    if (due_ns) {
        int64_t late = handled_ns > due_ns ? handled_ns - due_ns : 0;
        int b = lateness_bin(late);
        due_col = column_of(tl, due_ns); /* again: handled_ns may have widened the columns */
        tl->timed = true;
        tl->due[due_col]++;
        if (tl->lateness_bins[col][b] < UINT32_MAX)
            tl->lateness_bins[col][b]++;
        if (late > tl->lateness_max_ns[col])
            tl->lateness_max_ns[col] = late;
    }
    tl->handled[col]++;
}

void hreplay_timeline_progress(struct hreplay_timeline *tl, const struct hc_replay_stats *s,
                               int64_t now_ns)
{
    /* a connection lost, or broken on purpose by the disconnect fault: either way a reconnect */
    uint64_t reconnects = s->reconnects + s->faults.reconnects;
    int col;

    if (s->failed == tl->seen_failed && reconnects == tl->seen_reconnects)
        return; /* nothing to place: do not start the axis on an idle call */
    col = column_of(tl, now_ns);
    tl->failed[col] += (int64_t)(s->failed - tl->seen_failed);
    tl->reconnects[col] += (int64_t)(reconnects - tl->seen_reconnects);
    tl->seen_failed = s->failed;
    tl->seen_reconnects = reconnects;
}

static int columns_used(const struct hreplay_timeline *tl)
{
    return tl->started ? (int)((tl->last_ns - tl->origin_ns) / tl->column_ns) + 1 : 0;
}

/* --- the page -------------------------------------------------------------------------------- */

static void row(FILE *f, const char *name, const char *value, bool warn)
{
    fputs("<tr><th>", f);
    hc_html_text(f, name);
    fputs(warn ? "</th><td class=\"warn\">" : "</th><td>", f);
    hc_html_text(f, value);
    fputs("</td></tr>\n", f);
}

static void draw_figures(FILE *f, const struct hreplay_html_page *p)
{
    const struct hc_replay_stats *s = p->stats;
    const struct hc_sched_stats *l = &s->lateness;
    char line[512], d[48];
    double seconds = (double)(s->end_mono_ns - s->start_mono_ns) / 1e9;

    fputs("<table>\n", f);
    row(f, "input", p->o->input, false);
    row(f, "broker", p->url ? p->url : "?", false);
    if (p->o->sched.mode == HC_SCHED_SPEED)
        snprintf(line, sizeof(line), "%s, x%g", p->mode, p->o->sched.speed);
    else if (p->o->sched.mode == HC_SCHED_RATE)
        snprintf(line, sizeof(line), "%s, %g msg/s", p->mode, p->o->sched.rate);
    else
        snprintf(line, sizeof(line), "%s", p->mode);
    row(f, "timing", line, false);
    hc_html_duration(s->end_mono_ns - s->start_mono_ns, d, sizeof(d));
    snprintf(line, sizeof(line),
             "%" PRIu64 " sent, %" PRIu64 " failed, %" PRIu64 " taken from the input, in %s: %.0f "
             "msg/s",
             s->sent, s->failed, s->scheduled, d, seconds > 0 ? (double)s->sent / seconds : 0.0);
    row(f, "messages", line, s->failed > 0);
    if (l->count) {
        snprintf(line, sizeof(line),
                 "p50 %.0f us, p90 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us over %" PRIu64
                 " messages; schedule kept: %s (p99 under 1000 us)",
                 (double)l->p50_ns / 1e3, (double)l->p90_ns / 1e3, (double)l->p99_ns / 1e3,
                 (double)l->p999_ns / 1e3, (double)l->max_ns / 1e3, l->count,
                 p->schedule_kept ? "yes" : "no");
        row(f, "lateness", line, !p->schedule_kept);
    } else {
        row(f, "lateness",
            p->o->sched.mode == HC_SCHED_MAX ? "not measured (--max has no schedule)"
                                             : "nothing sent",
            false);
    }
    snprintf(line, sizeof(line),
             "%" PRIu64 " reconnects, %" PRIu64 " resent, up to %" PRIu64
             " QoS 0 messages may have been lost%s",
             s->reconnects, s->resent, s->qos0_maybe_lost,
             s->gave_up ? "; gave up: a connection could not be restored" : "");
    row(f, "connection", line, s->reconnects > 0 || s->gave_up);
    if (s->invalid_topics || s->invalid_input || s->other_shards) {
        snprintf(line, sizeof(line),
                 "%" PRIu64 " invalid topics, %" PRIu64 " invalid input lines, %" PRIu64
                 " left to other shards",
                 s->invalid_topics, s->invalid_input, s->other_shards);
        row(f, "not sent", line, s->invalid_topics || s->invalid_input);
    }
    if (p->o->faults) {
        snprintf(line, sizeof(line),
                 "%s (seed %" PRIu64 "): %" PRIu64 " dropped, %" PRIu64
                 " lost at disconnects, %" PRIu64 " duplicates sent, %" PRIu64
                 " connections broken",
                 p->o->faults_text ? p->o->faults_text : "", p->o->fault_seed, s->faults.dropped,
                 s->faults.lost, s->faults.duplicates, s->faults.reconnects);
        row(f, "faults", line, false);
    }
    snprintf(line, sizeof(line), "%" PRIu64 "%s", s->passes,
             s->interrupted ? " (interrupted: the figures cover what was sent before the stop)"
                            : "");
    row(f, "passes", line, s->interrupted);
    fputs("</table>\n", f);
}

static bool has_columns(const struct hreplay_html_page *p)
{
    return columns_used(p->timeline) > 0;
}

static bool is_timed(const struct hreplay_html_page *p)
{
    return has_columns(p) && p->timeline->timed;
}

static void draw_rates(FILE *f, const struct hreplay_html_page *p)
{
    const struct hreplay_timeline *tl = p->timeline;
    struct hc_html_series series[2] = {{"achieved", tl->handled, "#4e79a7"},
                                       {"scheduled", tl->due, "#f28e2b"}};
    int64_t failed[HREPLAY_HTML_COLUMNS], reconnects[HREPLAY_HTML_COLUMNS];
    struct hc_html_marks marks[2] = {{"failures", failed, "#d62728"},
                                     {"reconnects", reconnects, "#9467bd"}};
    struct hc_html_timechart chart = {.title = "Rate achieved vs scheduled (failures and "
                                               "reconnects, faults' included, marked where "
                                               "noticed)",
                                      .y_label = "msg/s",
                                      .origin_ns = tl->origin_ns,
                                      .column_ns = tl->column_ns,
                                      .columns = columns_used(tl),
                                      .series = series,
                                      .n_series = tl->timed ? 2 : 1,
                                      .marks = marks,
                                      .n_marks = 2,
                                      .value_scale = 1e9 / (double)tl->column_ns,
                                      .value_unit = "msg/s",
                                      .elapsed_axis = true};
    memcpy(failed, tl->failed, sizeof(failed));
    memcpy(reconnects, tl->reconnects, sizeof(reconnects));
    hc_html_timechart(f, &chart);
}

static void draw_lateness(FILE *f, const struct hreplay_html_page *p)
{
    const struct hreplay_timeline *tl = p->timeline;
    double p50[HREPLAY_HTML_COLUMNS], p99[HREPLAY_HTML_COLUMNS], max[HREPLAY_HTML_COLUMNS];
    int columns = columns_used(tl);
    struct hc_html_series series[3] = {{"p50 (bin edge)", p50, "#4e79a7"},
                                       {"p99 (bin edge)", p99, "#e15759"},
                                       {"max", max, "#bab0ac"}};
    struct hc_html_timechart chart = {.title = "Lateness over time (sent minus due)",
                                      .y_label = "us",
                                      .origin_ns = tl->origin_ns,
                                      .column_ns = tl->column_ns,
                                      .columns = columns,
                                      .series = series,
                                      .n_series = 3,
                                      .value_unit = "us",
                                      .elapsed_axis = true};
    for (int c = 0; c < columns; c++) {
        p50[c] = (double)column_quantile_ns(tl->lateness_bins[c], 0.5) / 1e3;
        p99[c] = (double)column_quantile_ns(tl->lateness_bins[c], 0.99) / 1e3;
        max[c] = (double)tl->lateness_max_ns[c] / 1e3;
    }
    hc_html_timechart(f, &chart);
}

/* The page's parts, in order: a section is drawn when wanted (NULL: always). */
static const struct section {
    const char *id;
    bool (*wanted)(const struct hreplay_html_page *p);
    void (*draw)(FILE *f, const struct hreplay_html_page *p);
} SECTIONS[] = {
    {"figures", NULL, draw_figures},
    {"rates", has_columns, draw_rates},
    {"lateness", is_timed, draw_lateness},
    /* {"ramp", has_ramp, draw_ramp}: hreplay --ramp, see the top of this file */
};

bool hreplay_html_write(FILE *f, const struct hreplay_html_page *p)
{
    char title[300];

    snprintf(title, sizeof(title), "hkit report: replay of %s", p->o->input);
    hc_html_begin(f, title);
    for (size_t i = 0; i < sizeof(SECTIONS) / sizeof(SECTIONS[0]); i++) {
        if (SECTIONS[i].wanted && !SECTIONS[i].wanted(p))
            continue;
        fprintf(f, "<section id=\"%s\">\n", SECTIONS[i].id);
        SECTIONS[i].draw(f, p);
        fputs("</section>\n", f);
    }
    if (!has_columns(p))
        fputs("<p class=\"note\">Nothing was sent: no timeline to draw.</p>\n", f);
    fputs("<p class=\"note\">Made by hreplay. Times are since the first message's due time (or, "
          "under --max, since it went out). Hover over charts for values.</p>\n",
          f);
    hc_html_end(f);
    return !ferror(f);
}

/*
 * hverify --report-html FILE: one self-contained page of a run, drawn with libcore's hc_html_*
 * pieces: the run's figures, a table of every case, then for each case that failed its
 * mismatches (the input concerned, the first differing path, expected and actual), and for
 * each --consumer case a timeline of inputs sent and output lines received with the failing
 * ones marked (from struct hv_timeline, which consumer_case.c and mismatch.c fill as the case
 * is compared). Sizes are bounded: the mismatches are the first --max-report per case, a
 * timeline has TIMELINE_COLUMNS columns whatever the number of lines.
 */
#include "hverify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/html.h"

#define TIMELINE_COLUMNS 120

static const char *const STATUS[] = {"passed", "FAILED", "ERROR"};

static void row(FILE *f, const char *name, const char *value)
{
    fputs("<tr><th>", f);
    hc_html_text(f, name);
    fputs("</th><td>", f);
    hc_html_text(f, value);
    fputs("</td></tr>\n", f);
}

static void cell(FILE *f, const char *cls, const char *text)
{
    if (cls)
        fprintf(f, "<td class=\"%s\">", cls);
    else
        fputs("<td>", f);
    hc_html_text(f, text ? text : "");
    fputs("</td>", f);
}

static void draw_figures(FILE *f, const struct hverify_opts *o, const struct hv_case_result *r,
                         size_t n)
{
    long passed = 0, failed = 0, errors = 0, mismatches = 0;
    double seconds = 0;
    char line[256];

    for (size_t i = 0; i < n; i++) {
        passed += r[i].status == HV_PASSED;
        failed += r[i].status == HV_FAILED;
        errors += r[i].status == HV_ERROR;
        mismatches += r[i].status == HV_FAILED ? r[i].mismatch_count : 0;
        seconds += r[i].seconds;
    }
    fputs("<table>\n", f);
    snprintf(line, sizeof(line), "%zu cases: %ld passed, %ld failed, %ld could not run", n, passed,
             failed, errors);
    fputs("<tr><th>result</th><td", f);
    fputs(failed || errors ? " class=\"warn\">" : ">", f);
    hc_html_text(f, line);
    fputs("</td></tr>\n", f);
    snprintf(line, sizeof(line), "%ld mismatches in the failed cases, in %.2f s", mismatches,
             seconds);
    row(f, "figures", line);
    if (o->consumer)
        row(f, "consumer", o->consumer);
    else
        row(f, "decoder", o->decoder ? o->decoder : "built-in (hc_decode_message)");
    fputs("</table>\n", f);
}

static void draw_cases(FILE *f, const struct hv_case_result *r, size_t n)
{
    fputs("<h2>Cases</h2>\n<table id=\"cases\"><tr><th>case</th><th>status</th><th>inputs</th>"
          "<th>mismatches</th><th>what</th><th>seconds</th></tr>\n",
          f);
    for (size_t i = 0; i < n; i++) {
        const struct hv_case_result *c = &r[i];
        char summary[300] = "";

        if (c->status == HV_FAILED)
            hv_case_summary(c, summary, sizeof(summary));
        else if (c->status == HV_ERROR)
            snprintf(summary, sizeof(summary), "%s", c->error ? c->error : "could not run");
        else if (c->consumer)
            snprintf(summary, sizeof(summary), "%ld output lines", c->outputs);
        fputs("<tr>", f);
        cell(f, "mono", c->name);
        cell(f, c->status == HV_PASSED ? NULL : "warn", STATUS[c->status]);
        fprintf(f, "<td class=\"n\">%ld</td><td class=\"n\">%ld</td>", c->messages,
                c->status == HV_PASSED ? 0 : c->mismatch_count);
        cell(f, NULL, summary);
        fprintf(f, "<td class=\"n\">%.3f</td></tr>\n", c->seconds);
    }
    fputs("</table>\n", f);
}

static void draw_mismatches(FILE *f, const struct hv_case_result *c)
{
    fputs("<table class=\"mismatches\"><tr><th>where</th><th>input</th><th>first differing "
          "path</th><th>expected</th><th>actual</th><th>note</th></tr>\n",
          f);
    for (size_t k = 0; k < c->n_mm; k++) {
        const struct hv_mismatch *m = &c->mm[k];
        char where[64];

        if (m->message)
            snprintf(where, sizeof(where), c->consumer ? "output line %ld" : "message %ld",
                     m->message);
        else
            snprintf(where, sizeof(where), c->consumer ? "missing output" : "expected.jsonl");
        fputs("<tr>", f);
        cell(f, NULL, where);
        cell(f, "mono", m->topic);
        cell(f, "mono", m->path);
        cell(f, "mono", m->expected ? m->expected : "(missing)");
        cell(f, "mono warn", m->actual ? m->actual : "(missing)");
        cell(f, "note", m->note);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    if ((long)c->n_mm < c->mismatch_count)
        fprintf(f, "<p class=\"note\">... and %ld more (--max-report 0 shows all)</p>\n",
                c->mismatch_count - (long)c->n_mm);
}

/* Counts instants into columns: what lands where, and how many of them are failing. */
static void bin(const int64_t *at, const bool *failing, size_t n, int64_t origin, int64_t width,
                double *all, int64_t *marks, int64_t *failing_marks)
{
    for (size_t i = 0; i < n; i++) {
        int64_t col;
        if (!at[i])
            continue; /* an input never sent */
        col = (at[i] - origin) / width;
        col = col < 0 ? 0 : col >= TIMELINE_COLUMNS ? TIMELINE_COLUMNS - 1 : col;
        all[col]++;
        marks[col]++;
        failing_marks[col] += failing[i];
    }
}

static void draw_timeline(FILE *f, const struct hv_case_result *c)
{
    const struct hv_timeline *tl = &c->timeline;
    int64_t first = 0, last = 0, width;
    double inputs[TIMELINE_COLUMNS] = {0}, outputs[TIMELINE_COLUMNS] = {0};
    int64_t in_marks[TIMELINE_COLUMNS] = {0}, in_failing[TIMELINE_COLUMNS] = {0};
    int64_t out_marks[TIMELINE_COLUMNS] = {0}, out_failing[TIMELINE_COLUMNS] = {0};
    long never = 0, failing_inputs = 0, failing_outputs = 0;
    char title[200];

    for (size_t i = 0; i < tl->n_inputs + tl->n_outputs; i++) {
        int64_t t = i < tl->n_inputs ? tl->input_ns[i] : tl->output_ns[i - tl->n_inputs];
        if (!t) {
            never++;
            continue;
        }
        first = !first || t < first ? t : first;
        last = t > last ? t : last;
    }
    for (size_t i = 0; i < tl->n_inputs; i++)
        failing_inputs += tl->input_failing[i];
    for (size_t i = 0; i < tl->n_outputs; i++)
        failing_outputs += tl->output_failing[i];
    if (!first) {
        fputs("<p class=\"note\">No input was sent and no output line came: no timeline.</p>\n", f);
        return;
    }
    width = (last - first) / TIMELINE_COLUMNS + 1;
    if (width < 1000000)
        width = 1000000; /* 1 ms columns at least */
    bin(tl->input_ns, tl->input_failing, tl->n_inputs, first, width, inputs, in_marks, in_failing);
    bin(tl->output_ns, tl->output_failing, tl->n_outputs, first, width, outputs, out_marks,
        out_failing);
    snprintf(title, sizeof(title),
             "Timeline: %zu inputs sent (%ld failing), %zu output lines (%ld failing)",
             tl->n_inputs - (size_t)never, failing_inputs, tl->n_outputs, failing_outputs);
    {
        struct hc_html_series series[2] = {{"inputs sent", inputs, "#4e79a7"},
                                           {"output lines", outputs, "#59a14f"}};
        struct hc_html_marks marks[4] = {{"inputs", in_marks, "#4e79a7"},
                                         {"failing inputs", in_failing, "#d62728"},
                                         {"outputs", out_marks, "#59a14f"},
                                         {"failing outputs", out_failing, "#d62728"}};
        int columns = (int)((last - first) / width) + 1;
        struct hc_html_timechart chart = {.title = title,
                                          .y_label = "per column",
                                          .origin_ns = first,
                                          .column_ns = width,
                                          .columns = columns,
                                          .series = series,
                                          .n_series = 2,
                                          .marks = marks,
                                          .n_marks = 4,
                                          .value_unit = "",
                                          .elapsed_axis = true};
        hc_html_timechart(f, &chart);
    }
    if (never)
        fprintf(f, "<p class=\"warn\">%ld inputs were never sent.</p>\n", never);
}

static void draw_case(FILE *f, const struct hv_case_result *c)
{
    char heading[4200];

    snprintf(heading, sizeof(heading), "%s: %s", c->name, STATUS[c->status]);
    fputs("<section class=\"case\"><h2>", f);
    hc_html_text(f, heading);
    fputs("</h2>\n", f);
    if (c->status == HV_ERROR) {
        fputs("<p class=\"warn\">", f);
        hc_html_text(f, c->error ? c->error : "could not run");
        fputs("</p>\n", f);
    } else if (c->status == HV_FAILED) {
        char summary[300];
        hv_case_summary(c, summary, sizeof(summary));
        fputs("<p>", f);
        hc_html_text(f, summary);
        fputs("</p>\n", f);
        draw_mismatches(f, c);
    }
    if (c->consumer) {
        char line[400];
        fputs("<table>\n", f);
        snprintf(line, sizeof(line), "%ld inputs sent, %ld output lines", c->inputs_sent,
                 c->outputs);
        row(f, "figures", line);
        if (c->latency_n) {
            snprintf(line, sizeof(line),
                     "p50 %.1f ms, p99 %.1f ms, max %.1f ms (%ld inputs matched to an output)",
                     c->latency_p50_ms, c->latency_p99_ms, c->latency_max_ms, c->latency_n);
            row(f, "latency", line);
        }
        if (c->consumer_exit)
            row(f, "consumer", c->consumer_exit);
        if (c->status != HV_PASSED && c->stderr_tail)
            row(f, "its stderr", c->stderr_tail);
        fputs("</table>\n", f);
        draw_timeline(f, c);
    }
    fputs("</section>\n", f);
}

bool hv_report_html(const char *path, const struct hverify_opts *o, const struct hv_case_result *r,
                    size_t n, hc_error *err)
{
    FILE *f = fopen(path, "w");
    char title[128];

    if (!f) {
        hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    snprintf(title, sizeof(title), "hkit report: hverify, %zu case%s", n, n == 1 ? "" : "s");
    hc_html_begin(f, title);
    draw_figures(f, o, r, n);
    draw_cases(f, r, n);
    for (size_t i = 0; i < n; i++)
        if (r[i].status != HV_PASSED || r[i].consumer)
            draw_case(f, &r[i]);
    fputs("<p class=\"note\">Made by hverify. Timelines are in time since the case's first input "
          "or output line. Hover over charts for values.</p>\n",
          f);
    hc_html_end(f);
    if (ferror(f) | (fclose(f) != 0)) {
        hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}

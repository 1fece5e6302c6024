/*
 * Self-contained HTML pages with inline SVG charts, for hkit's reports (hcat --report today;
 * hreplay and hverify reports can draw with the same pieces). A page needs no network: styles
 * and the small hover script are inline, no fonts, images or scripts are fetched. Charts take
 * plain arrays, so any aggregate can be drawn; sizes stay bounded by the number of columns and
 * rows the caller passes, never by the number of messages behind them.
 *
 * Everything writes to a caller's FILE (opened for writing); errors surface through ferror(f),
 * which the caller checks when it closes the file. Text is escaped here: pass raw strings.
 */
#ifndef HCORE_HTML_H
#define HCORE_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts the document: doctype, title (escaped), inline style, <body>, an <h1> title. */
void hc_html_begin(FILE *f, const char *title);

/* Ends the document with the inline hover script (tooltips from data-tip attributes). */
void hc_html_end(FILE *f);

/* Writes s with & < > " ' escaped; invalid UTF-8 bytes become U+FFFD. */
void hc_html_text(FILE *f, const char *s);

/* "2026-02-02 10:30:00" (UTC, seconds) of ns since the epoch, into buf. */
void hc_html_time(int64_t ns, char *buf, size_t size);

/* "1h 05m", "2.5 s", "3d 04h" of a duration in ns, into buf. */
void hc_html_duration(int64_t ns, char *buf, size_t size);

/* One line or stacked area of a time chart: values[column] for each column. */
struct hc_html_series {
    const char *name;
    const double *values;
    const char *color; /* CSS colour; NULL: from the palette by position */
};

/* A band behind a time chart: a session (kind 0) or a gap (kind 1). */
struct hc_html_band {
    int64_t from_ns, to_ns;
    int kind;
    const char *label; /* tooltip */
};

/* A row of marks under a time chart: counts[column] > 0 draws a mark there. */
struct hc_html_marks {
    const char *name; /* "decode errors" */
    const int64_t *counts;
    const char *color;
};

struct hc_html_timechart {
    const char *title;
    const char *y_label;
    int64_t origin_ns, column_ns; /* column c covers [origin + c*column, origin + (c+1)*column) */
    int columns;
    const struct hc_html_series *series;
    size_t n_series;
    bool stacked; /* areas stacked in series order; else lines */
    const struct hc_html_band *bands;
    size_t n_bands;
    const struct hc_html_marks *marks;
    size_t n_marks;
    double value_scale;     /* tooltip values are values * value_scale (e.g. 1/column seconds) */
    const char *value_unit; /* tooltip unit after values ("msg/s", "ms") */
    /*
     * false: the axis and tooltips show UTC times (origin_ns is CLOCK_REALTIME). true: they
     * show the time since origin_ns ("+1.5 s"), for runs timed on CLOCK_MONOTONIC (a replay, a
     * consumer case), where a wall-clock date would mean nothing; steps go down to 1 ms.
     */
    bool elapsed_axis;
};

/* Draws a time chart (SVG) with axes, legend and one hover target per column. */
void hc_html_timechart(FILE *f, const struct hc_html_timechart *c);

/* A heatmap: one row per label, cells coloured by count (log scale), empty cells blank. */
struct hc_html_heatmap {
    const char *title;
    int64_t origin_ns, column_ns;
    int columns;
    const char *const *row_labels;
    const char *const *row_tips; /* hover text per row; may be NULL */
    const uint32_t *const *rows; /* rows[r][column] */
    size_t n_rows;
};
void hc_html_heatmap(FILE *f, const struct hc_html_heatmap *h);

/* A bar chart of n labelled values (a histogram with named bins). */
void hc_html_barchart(FILE *f, const char *title, const char *const *labels, const double *values,
                      size_t n, const char *unit);

#ifdef __cplusplus
}
#endif
#endif

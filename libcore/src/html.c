/*
 * Self-contained HTML with inline SVG (see hcore/html.h). Geometry is fixed (960 px wide
 * charts) so pages look the same everywhere; coordinates are written with one decimal to keep
 * files small.
 */
#include "hcore/html.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "hcore/text.h"

#define W 960
#define LEFT 100
#define RIGHT 16
#define PLOT_W (W - LEFT - RIGHT)

static const char *const PALETTE[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                      "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                                      "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c"};
#define PALETTE_N (sizeof(PALETTE) / sizeof(PALETTE[0]))

static const char STYLE[] =
    "body{font:13px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;background:#fff}"
    "h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:24px 0 6px;border-bottom:1px solid "
    "#ddd}table{border-collapse:collapse;margin:4px 0}td,th{padding:2px 8px;text-align:left;"
    "border-bottom:1px solid #eee;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}code,.mono{font-family:monospace}svg{display:block;"
    "margin:4px 0}svg text{font:10px sans-serif;fill:#444}.axis{stroke:#999;stroke-width:1}"
    ".grid{stroke:#eee;stroke-width:1}.b0{fill:#e6f4ea}.b1{fill:#fde2e1}.hit{fill:transparent}"
    ".hit:hover{fill:rgba(0,0,0,.08)}.h1{fill:#c6dbef}.h2{fill:#9ecae1}.h3{fill:#6baed6}"
    ".h4{fill:#3182bd}.h5{fill:#08519c}.warn{color:#b00}.note{color:#666}"
    "#tip{position:absolute;display:none;background:#222;color:#fff;padding:4px 6px;"
    "border-radius:3px;font-size:12px;white-space:pre;pointer-events:none;z-index:9}";

static const char SCRIPT[] =
    "(function(){var t=document.getElementById('tip');"
    "document.addEventListener('mousemove',function(e){"
    "var n=e.target&&e.target.closest?e.target.closest('[data-tip]'):null;"
    "if(!n){t.style.display='none';return;}"
    "t.textContent=n.getAttribute('data-tip');t.style.display='block';"
    "t.style.left=(e.pageX+12)+'px';t.style.top=(e.pageY+12)+'px';});})();";

void hc_html_text(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    for (size_t i = 0; i < n;) {
        size_t len = hc_utf8_sequence_len(p + i, n - i);
        if (!len) {
            fputs("\xef\xbf\xbd", f);
            i++;
            continue;
        }
        switch (p[i]) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fwrite(p + i, 1, len, f);
        }
        i += len;
    }
}

void hc_html_begin(FILE *f, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width\"><title>",
          f);
    hc_html_text(f, title);
    fprintf(f, "</title><style>%s</style></head><body><div id=\"tip\"></div>\n<h1>", STYLE);
    hc_html_text(f, title);
    fputs("</h1>\n", f);
}

void hc_html_end(FILE *f)
{
    fprintf(f, "<script>%s</script>\n</body></html>\n", SCRIPT);
}

void hc_html_time(int64_t ns, char *buf, size_t size)
{
    time_t t = (time_t)(ns / 1000000000 - (ns % 1000000000 < 0));
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, size, "?");
}

void hc_html_duration(int64_t ns, char *buf, size_t size)
{
    const char *sign = ns < 0 ? "-" : "";
    uint64_t mag = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    uint64_t s = mag / 1000000000u;

    if (s < 60)
        snprintf(buf, size, "%s%.3g s", sign, (double)mag / 1e9);
    else if (s < 3600)
        snprintf(buf, size, "%s%" PRIu64 "m %02" PRIu64 "s", sign, s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, size, "%s%" PRIu64 "h %02" PRIu64 "m", sign, s / 3600, s % 3600 / 60);
    else
        snprintf(buf, size, "%s%" PRIu64 "d %02" PRIu64 "h", sign, s / 86400, s % 86400 / 3600);
}

/* --- axes ------------------------------------------------------------------------------------ */

static double x_of(double column, int columns)
{
    return LEFT + column / (columns ? columns : 1) * PLOT_W;
}

/* "+1.5 s" since origin, or the UTC time, of instant ns on chart c's axis. */
static void chart_time(const struct hc_html_timechart *c, int64_t ns, char *buf, size_t size)
{
    if (c->elapsed_axis) {
        buf[0] = '+';
        hc_html_duration(ns - c->origin_ns, buf + 1, size - 1);
    } else {
        hc_html_time(ns, buf, size);
    }
}

static void tick(FILE *f, double x, double y, const char *label)
{
    fprintf(f,
            "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
            x, y, x, y + 4, x, y + 14, label);
}

/* Elapsed axis: ticks at a round step (1 ms up) from the origin, labelled "1.5 s", "2m 00s". */
static void elapsed_axis(FILE *f, int64_t column_ns, int columns, double y)
{
    static const int64_t steps_ms[] = {1,      2,       5,       10,      20,       50,
                                       100,    200,     500,     1000,    2000,     5000,
                                       10000,  15000,   30000,   60000,   120000,   300000,
                                       600000, 1800000, 3600000, 7200000, 21600000, 86400000};
    int64_t span_ns = column_ns * columns, step = steps_ms[0] * 1000000;

    for (size_t i = 0; i < sizeof(steps_ms) / sizeof(steps_ms[0]); i++) {
        step = steps_ms[i] * 1000000;
        if (span_ns / step <= 8)
            break;
    }
    for (int64_t t = 0; t <= span_ns; t += step) {
        char label[32];
        hc_html_duration(t, label, sizeof(label));
        tick(f, x_of((double)t / (double)column_ns, columns), y, t ? label : "0");
    }
}

/* Ticks at a round step so that about 6-10 fit; labels in UTC. */
static void time_axis(FILE *f, int64_t origin_ns, int64_t column_ns, int columns, double y,
                      bool elapsed)
{
    static const int64_t steps_s[] = {
        1,    2,    5,     10,    15,    30,    60,     120,    300,     600,     900,     1800,
        3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000, 7776000, 31536000};
    int64_t span_s = column_ns / 1000000000 * columns, step = steps_s[0];
    int64_t end_ns = origin_ns + column_ns * columns;

    fprintf(f, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", LEFT, y,
            W - RIGHT, y);
    if (elapsed) {
        elapsed_axis(f, column_ns, columns, y);
        return;
    }
    if (span_s < 1)
        span_s = 1;
    for (size_t i = 0; i < sizeof(steps_s) / sizeof(steps_s[0]); i++) {
        step = steps_s[i];
        if (span_s / step <= 8)
            break;
    }
    for (int64_t t = (origin_ns / 1000000000 / step + 1) * step; t * 1000000000 < end_ns;
         t += step) {
        double x = x_of((double)(t * 1000000000 - origin_ns) / (double)column_ns, columns);
        char label[32];
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(label, sizeof(label),
                 step >= 86400               ? "%m-%d"
                 : step < 60                 ? "%H:%M:%S"
                 : (tm.tm_hour || tm.tm_min) ? "%H:%M"
                                             : "%m-%d",
                 &tm);
        tick(f, x, y, label);
    }
}

static double nice_max(double v)
{
    double p, m;
    if (v <= 0)
        return 1;
    p = pow(10, floor(log10(v)));
    m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static const char *series_color(const struct hc_html_series *s, size_t i)
{
    return s->color ? s->color : PALETTE[i % PALETTE_N];
}

/* --- time chart ------------------------------------------------------------------------------ */

static void column_tip(FILE *f, const struct hc_html_timechart *c, int col)
{
    char from[32], to[32];
    chart_time(c, c->origin_ns + c->column_ns * col, from, sizeof(from));
    chart_time(c, c->origin_ns + c->column_ns * (col + 1), to, sizeof(to));
    fprintf(f, "%s .. %s", from, c->elapsed_axis ? to : to + 11);
    for (size_t i = 0, shown = 0; i < c->n_series && shown < 8; i++) {
        double v = c->series[i].values[col] * (c->value_scale ? c->value_scale : 1);
        if (v == 0 && c->n_series > 3)
            continue;
        fputc('\n', f);
        hc_html_text(f, c->series[i].name);
        fprintf(f, ": %.4g %s", v, c->value_unit ? c->value_unit : "");
        shown++;
    }
}

/* The time chart's plot area, top to bottom, in SVG units. */
#define CHART_TOP 20.0
#define CHART_PLOT_H 180.0
#define CHART_BOTTOM (CHART_TOP + CHART_PLOT_H)

/* The largest column: the sum of the series when stacked, the largest one otherwise. */
static double chart_max(const struct hc_html_timechart *c)
{
    double max = 0;

    for (int col = 0; col < c->columns; col++) {
        double sum = 0;
        for (size_t i = 0; i < c->n_series; i++) {
            double v = c->series[i].values[col];
            sum = c->stacked ? sum + v : (v > sum ? v : sum);
        }
        if (sum > max)
            max = sum;
    }
    return max;
}

/* Sessions and gaps, behind everything, with a hover strip above the plot. */
static void chart_bands(FILE *f, const struct hc_html_timechart *c, int n)
{
    for (size_t i = 0; i < c->n_bands; i++) {
        const struct hc_html_band *b = &c->bands[i];
        double x0 = x_of((double)(b->from_ns - c->origin_ns) / (double)c->column_ns, n);
        double x1 = x_of((double)(b->to_ns - c->origin_ns) / (double)c->column_ns, n);
        x0 = x0 < LEFT ? LEFT : x0 > W - RIGHT ? W - RIGHT : x0;
        x1 = x1 < LEFT ? LEFT : x1 > W - RIGHT ? W - RIGHT : x1;
        if (x1 - x0 < 1)
            x1 = x0 + 1;
        fprintf(f, "<rect class=\"b%d\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\"/>",
                b->kind ? 1 : 0, x0, CHART_TOP, x1 - x0, CHART_PLOT_H);
        fprintf(f,
                "<rect class=\"b%d\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"8\" "
                "stroke=\"#bbb\" data-tip=\"",
                b->kind ? 1 : 0, x0, CHART_TOP - 12, x1 - x0);
        hc_html_text(f, b->label ? b->label : "");
        fputs("\"/>", f);
    }
}

/* Grid lines, y labels up to top_value, and the y axis title. */
static void chart_grid(FILE *f, const struct hc_html_timechart *c, double top_value)
{
    for (int g = 0; g <= 4; g++) {
        double y = CHART_BOTTOM - CHART_PLOT_H * g / 4;
        fprintf(f,
                "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>",
                LEFT, y, W - RIGHT, y, LEFT - 4, y + 3, top_value * g / 4);
    }
    if (c->y_label) {
        fprintf(f,
                "<text x=\"12\" y=\"%.0f\" transform=\"rotate(-90 12 %.0f)\" "
                "text-anchor=\"middle\">",
                CHART_TOP + CHART_PLOT_H / 2, CHART_TOP + CHART_PLOT_H / 2);
        hc_html_text(f, c->y_label);
        fputs("</text>", f);
    }
}

/* Stacked areas (drawn top-down so each covers the ones below) or lines, max at the top. */
static void chart_series(FILE *f, const struct hc_html_timechart *c, int n, double max)
{
    for (size_t k = c->n_series; k-- > 0;) {
        const struct hc_html_series *s = &c->series[k];
        fprintf(f, "<%s fill=\"%s\" stroke=\"%s\" points=\"", c->stacked ? "polygon" : "polyline",
                c->stacked ? series_color(s, k) : "none", series_color(s, k));
        for (int col = 0; col < c->columns; col++) {
            double sum = 0;
            for (size_t i = 0; i <= k; i++)
                sum += c->stacked || i == k ? c->series[i].values[col] : 0;
            fprintf(f, "%.1f,%.1f ", x_of(col + 0.5, n), CHART_BOTTOM - CHART_PLOT_H * sum / max);
        }
        if (c->stacked && c->columns)
            fprintf(f, "%.1f,%.1f %.1f,%.1f", x_of(c->columns - 0.5, n), CHART_BOTTOM, x_of(0.5, n),
                    CHART_BOTTOM);
        fputs("\"/>", f);
    }
}

/* Marks under the axis: one row each, a box in every column that counts some. */
static void chart_marks(FILE *f, const struct hc_html_timechart *c, int n)
{
    for (size_t m = 0; m < c->n_marks; m++) {
        double y = CHART_BOTTOM + 22 + 12.0 * (double)m;
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", LEFT - 4, y + 8);
        hc_html_text(f, c->marks[m].name);
        fputs("</text>", f);
        for (int col = 0; col < c->columns; col++) {
            char when[32];
            if (c->marks[m].counts[col] <= 0)
                continue;
            chart_time(c, c->origin_ns + c->column_ns * col, when, sizeof(when));
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"9\" fill=\"%s\" "
                    "data-tip=\"%" PRId64 " ",
                    x_of(col, n), y, x_of(col + 1, n) - x_of(col, n) + 0.5, c->marks[m].color,
                    c->marks[m].counts[col]);
            hc_html_text(f, c->marks[m].name);
            fprintf(f, " from %s\"/>", when);
        }
    }
}

static void chart_legend(FILE *f, const struct hc_html_timechart *c)
{
    for (size_t i = 0; i < c->n_series; i++) {
        double x = LEFT + (double)(i % 6) * 148;
        double y = CHART_BOTTOM + 34 + 12.0 * (double)c->n_marks + 16 * (double)(i / 6);
        fprintf(f,
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                "<text x=\"%.0f\" y=\"%.0f\">",
                x, y - 9, series_color(&c->series[i], i), x + 14, y);
        hc_html_text(f, c->series[i].name);
        fputs("</text>", f);
    }
}

/* Hover targets, one per column, on top of everything. */
static void chart_hover_targets(FILE *f, const struct hc_html_timechart *c, int n)
{
    for (int col = 0; col < c->columns; col++) {
        fprintf(f,
                "<rect class=\"hit\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" "
                "data-tip=\"",
                x_of(col, n), CHART_TOP, x_of(col + 1, n) - x_of(col, n), CHART_PLOT_H);
        column_tip(f, c, col);
        fputs("\"/>", f);
    }
}

void hc_html_timechart(FILE *f, const struct hc_html_timechart *c)
{
    double height =
        CHART_BOTTOM + 24 + 12.0 * (double)c->n_marks + 22 + 16 * (double)((c->n_series + 5) / 6);
    double scale = c->value_scale ? c->value_scale : 1;
    double max = nice_max(chart_max(c) * scale) / scale;
    int n = c->columns > 0 ? c->columns : 1;

    fputs("<h2>", f);
    hc_html_text(f, c->title);
    fprintf(f, "</h2>\n<svg width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\">", W, height, W,
            height);
    chart_bands(f, c, n);
    chart_grid(f, c, max * scale);
    chart_series(f, c, n, max);
    time_axis(f, c->origin_ns, c->column_ns, n, CHART_BOTTOM, c->elapsed_axis);
    chart_marks(f, c, n);
    chart_legend(f, c);
    chart_hover_targets(f, c, n);
    fputs("</svg>\n", f);
}

/* --- heatmap --------------------------------------------------------------------------------- */

void hc_html_heatmap(FILE *f, const struct hc_html_heatmap *h)
{
    const int label_w = 250, row_h = 9, top = 4;
    const double cell_w = (double)(W - label_w - RIGHT) / (h->columns > 0 ? h->columns : 1);
    double height = top + (double)h->n_rows * row_h + 24;
    uint32_t max = 1;

    for (size_t r = 0; r < h->n_rows; r++)
        for (int c = 0; c < h->columns; c++)
            if (h->rows[r][c] > max)
                max = h->rows[r][c];
    fputs("<h2>", f);
    hc_html_text(f, h->title);
    fprintf(f, "</h2>\n<svg width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\">", W, height, W,
            height);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%zu\" fill=\"#fafafa\"/>", label_w,
            top, W - label_w - RIGHT, h->n_rows * (size_t)row_h);
    for (size_t r = 0; r < h->n_rows; r++) {
        int y = top + (int)r * row_h;
        fputs("<g data-tip=\"", f);
        hc_html_text(f, h->row_tips ? h->row_tips[r] : h->row_labels[r]);
        fprintf(f,
                "\"><text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"mono\" "
                "style=\"font-size:8px\">",
                label_w - 4, y + row_h - 1);
        hc_html_text(f, h->row_labels[r]);
        fputs("</text>", f);
        for (int c = 0; c < h->columns;) {
            uint32_t v = h->rows[r][c];
            int level = v ? 1 + (int)(4.0 * log((double)v) / log((double)max + 1)) : 0, run = 1;
            if (level > 5)
                level = 5;
            /* neighbours of the same level merge into one rectangle */
            while (c + run < h->columns) {
                uint32_t w = h->rows[r][c + run];
                int l2 = w ? 1 + (int)(4.0 * log((double)w) / log((double)max + 1)) : 0;
                if ((l2 > 5 ? 5 : l2) != level)
                    break;
                run++;
            }
            if (level)
                fprintf(f, "<rect class=\"h%d\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>",
                        level, label_w + c * cell_w, y, run * cell_w, row_h - 1);
            c += run;
        }
        fputs("</g>", f);
    }
    {
        /* the time axis reuses the chart geometry: map heatmap columns onto its plot width */
        double y = top + (double)h->n_rows * row_h + 2;
        fprintf(f, "<g transform=\"translate(%.1f 0) scale(%.4f 1)\">",
                label_w - LEFT * ((double)(W - label_w - RIGHT) / PLOT_W),
                (double)(W - label_w - RIGHT) / PLOT_W);
        fprintf(f, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/></g>", LEFT,
                y, W - RIGHT, y);
        for (int c = 0; c <= h->columns; c += h->columns / 6 > 0 ? h->columns / 6 : 1) {
            char when[32];
            hc_html_time(h->origin_ns + h->column_ns * c, when, sizeof(when));
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                    label_w + c * cell_w, y + 12, when + 5);
        }
    }
    fputs("</svg>\n", f);
}

/* --- bar chart ------------------------------------------------------------------------------- */

void hc_html_barchart(FILE *f, const char *title, const char *const *labels, const double *values,
                      size_t n, const char *unit)
{
    const double top = 10, plot_h = 150, bottom = top + plot_h;
    double max = 0, bar_w = n ? (double)PLOT_W / (double)n : PLOT_W;

    for (size_t i = 0; i < n; i++)
        if (values[i] > max)
            max = values[i];
    max = nice_max(max);
    fputs("<h2>", f);
    hc_html_text(f, title);
    fprintf(f, "</h2>\n<svg width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\">", W, bottom + 30,
            W, bottom + 30);
    for (int g = 0; g <= 4; g++) {
        double y = bottom - plot_h * g / 4;
        fprintf(f,
                "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>",
                LEFT, y, W - RIGHT, y, LEFT - 4, y + 3, max * g / 4);
    }
    for (size_t i = 0; i < n; i++) {
        double h = plot_h * values[i] / max, x = LEFT + bar_w * (double)i;
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                "data-tip=\"",
                x + 2, bottom - h, bar_w - 4, h > 0 ? h : 0, PALETTE[0]);
        hc_html_text(f, labels[i]);
        fprintf(f, ": %.6g %s\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", values[i],
                unit ? unit : "", x + bar_w / 2, bottom + 14);
        hc_html_text(f, labels[i]);
        fputs("</text>", f);
    }
    fprintf(f, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/></svg>\n", LEFT,
            bottom, W - RIGHT, bottom);
}

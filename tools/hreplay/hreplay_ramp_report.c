/*
 * hreplay --ramp reports: one table in text (stdout), the same figures in --report-json, and a
 * standalone SVG (--report-svg) with rate in vs rate out, backlog and latency per step.
 */
#include "hreplay_ramp.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double ramp_max_sustainable(const struct ramp_result *r, enum hc_ramp_limit *limit,
                            const struct ramp_step **failed)
{
    double best = -1;

    *limit = HC_RAMP_LIMIT_NONE;
    *failed = NULL;
    for (size_t i = 0; i < r->n_steps; i++) {
        if (r->steps[i].verdict != HC_RAMP_KEPT_UP && !r->steps[i].transient) {
            *limit = r->steps[i].limit;
            *failed = &r->steps[i];
            break;
        }
        best = r->steps[i].target_rate;
    }
    return best;
}

static const char *observe_kind(const struct hreplay_opts *o)
{
    return o->ramp.observe == HREPLAY_OBSERVE_MQTT     ? "mqtt"
           : o->ramp.observe == HREPLAY_OBSERVE_STDOUT ? "stdout"
                                                       : "file";
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* --- text ---------------------------------------------------------------------------------- */

bool ramp_report_text(const struct ramp_result *r, FILE *out)
{
    const struct hreplay_opts *o = r->o;
    enum hc_ramp_limit limit;
    const struct ramp_step *failed;
    double best = ramp_max_sustainable(r, &limit, &failed);

    fprintf(out, "ramp: %zu step%s of %.1f s, QoS %s, observed on %s:%s\n", r->n_steps,
            r->n_steps == 1 ? "" : "s", (double)o->ramp.hold_ns / 1e9,
            r->qos < 0    ? "as recorded"
            : r->qos == 0 ? "0"
            : r->qos == 1 ? "1"
                          : "2",
            observe_kind(o), o->ramp.observe_target);
    fprintf(out, "latency matched %s\n", r->matching_note);
    if (!r->broker_evidence)
        fprintf(out, "broker evidence: unavailable ($SYS not readable)\n");
    fprintf(out, "%5s %8s %8s %9s %8s %8s %8s %22s %7s %7s  %s\n", "step", "target", "input",
            "late p99", "output", "backlog", "slope", "latency p50/p99/max", "dropped", "stored",
            "verdict");
    fprintf(out, "%5s %8s %8s %9s %8s %8s %8s %22s %7s %7s\n", "", "msg/s", "msg/s", "ms", "msg/s",
            "msgs", "msg/s", "ms", "", "");
    for (size_t i = 0; i < r->n_steps; i++) {
        const struct ramp_step *s = &r->steps[i];
        char lat[40] = "-", dropped[24] = "-", stored[24] = "-";
        if (s->latency_count)
            snprintf(lat, sizeof(lat), "%.1f/%.1f/%.1f", ms(s->latency_p50_ns),
                     ms(s->latency_p99_ns), ms(s->latency_max_ns));
        if (s->broker_known) {
            snprintf(dropped, sizeof(dropped), "%" PRId64, s->dropped_delta);
            snprintf(stored, sizeof(stored), "%+" PRId64, s->stored_delta);
        }
        fprintf(out, "%5zu %8.0f %8.1f %9.2f %8.1f %8.0f %8.1f %22s %7s %7s  %s%s\n", i + 1,
                s->target_rate, s->input_rate, ms(s->lateness_p99_ns), s->output_rate,
                s->backlog_end, s->backlog_slope, lat, dropped, stored,
                hc_ramp_verdict_name(s->verdict), s->transient ? " (transient: repeated)" : "");
    }
    if (failed)
        fprintf(out, "step %zu at %.0f msg/s: %s: %s\n", (size_t)(failed - r->steps) + 1,
                failed->target_rate, hc_ramp_verdict_name(failed->verdict), failed->why);
    if (best < 0)
        fprintf(out, "maximum sustainable rate: none (the first step failed); limited by %s\n",
                hc_ramp_limit_name(limit));
    else
        fprintf(out, "maximum sustainable rate: %.0f msg/s; limited by %s%s\n", best,
                hc_ramp_limit_name(limit),
                failed           ? ""
                : r->interrupted ? " (interrupted)"
                                 : " (the ramp reached MAX)");
    return true;
}

/* --- JSON ---------------------------------------------------------------------------------- */

static void add_ms_or_null(cJSON *j, const char *name, bool known, int64_t ns)
{
    if (known)
        cJSON_AddNumberToObject(j, name, ms(ns));
    else
        cJSON_AddNullToObject(j, name);
}

static cJSON *step_json(const struct ramp_step *s)
{
    cJSON *j = cJSON_CreateObject(), *lat, *late;

    cJSON_AddNumberToObject(j, "rate_target", s->target_rate);
    cJSON_AddNumberToObject(j, "duration_s", s->duration_s);
    cJSON_AddNumberToObject(j, "inputs", (double)s->inputs);
    cJSON_AddNumberToObject(j, "input_rate", s->input_rate);
    late = cJSON_AddObjectToObject(j, "lateness_ms");
    cJSON_AddNumberToObject(late, "p50", ms(s->lateness_p50_ns));
    cJSON_AddNumberToObject(late, "p99", ms(s->lateness_p99_ns));
    cJSON_AddNumberToObject(late, "max", ms(s->lateness_max_ns));
    if (s->generator_busy >= 0)
        cJSON_AddNumberToObject(j, "generator_busy", s->generator_busy);
    else
        cJSON_AddNullToObject(j, "generator_busy");
    cJSON_AddNumberToObject(j, "outputs", (double)s->outputs);
    cJSON_AddNumberToObject(j, "output_rate", s->output_rate);
    cJSON_AddNumberToObject(j, "backlog_end", s->backlog_end);
    cJSON_AddNumberToObject(j, "backlog_slope", s->backlog_slope);
    cJSON_AddNumberToObject(j, "observer_lag", s->observer_lag);
    cJSON_AddNumberToObject(j, "broker_drop_notices", (double)s->drop_notices);
    if (s->latency_count) {
        lat = cJSON_AddObjectToObject(j, "latency_ms");
        cJSON_AddNumberToObject(lat, "count", (double)s->latency_count);
        cJSON_AddNumberToObject(lat, "p50", ms(s->latency_p50_ns));
        cJSON_AddNumberToObject(lat, "p99", ms(s->latency_p99_ns));
        cJSON_AddNumberToObject(lat, "max", ms(s->latency_max_ns));
    } else {
        cJSON_AddNullToObject(j, "latency_ms");
    }
    if (s->broker_known) {
        cJSON_AddNumberToObject(j, "broker_dropped", (double)s->dropped_delta);
        cJSON_AddNumberToObject(j, "broker_stored", (double)s->stored_delta);
    } else {
        cJSON_AddNullToObject(j, "broker_dropped");
        cJSON_AddNullToObject(j, "broker_stored");
    }
    cJSON_AddStringToObject(j, "verdict", hc_ramp_verdict_name(s->verdict));
    cJSON_AddStringToObject(j, "limited_by", hc_ramp_limit_name(s->limit));
    cJSON_AddStringToObject(j, "reason", s->why);
    cJSON_AddBoolToObject(j, "transient", s->transient);
    cJSON_AddBoolToObject(j, "repeat", s->repeat);
    return j;
}

bool ramp_report_json(const struct ramp_result *r, FILE *fp)
{
    const struct hreplay_opts *o = r->o;
    enum hc_ramp_limit limit;
    const struct ramp_step *failed;
    double best = ramp_max_sustainable(r, &limit, &failed);
    cJSON *j, *ramp, *steps;
    char *text, observed[300];
    bool ok;

    if (!fp)
        return true;
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "input", o->input);
    cJSON_AddStringToObject(j, "mode", "ramp");
    ramp = cJSON_AddObjectToObject(j, "ramp");
    cJSON_AddNumberToObject(ramp, "start", o->ramp.start_rate);
    cJSON_AddNumberToObject(ramp, "step", o->ramp.step_rate);
    cJSON_AddNumberToObject(ramp, "hold_s", (double)o->ramp.hold_ns / 1e9);
    if (o->ramp.max_rate > 0)
        cJSON_AddNumberToObject(ramp, "max", o->ramp.max_rate);
    else
        cJSON_AddNullToObject(ramp, "max");
    snprintf(observed, sizeof(observed), "%s:%s", observe_kind(o), o->ramp.observe_target);
    cJSON_AddStringToObject(j, "observe", observed);
    if (o->ramp.consumer)
        cJSON_AddStringToObject(j, "consumer", o->ramp.consumer);
    if (r->qos >= 0)
        cJSON_AddNumberToObject(j, "qos", r->qos);
    else
        cJSON_AddNullToObject(j, "qos");
    add_ms_or_null(j, "slo_ms", o->ramp.slo_ns > 0, o->ramp.slo_ns);
    cJSON_AddStringToObject(j, "matching",
                            r->matching == RAMP_MATCH_KEY        ? "device_id+measured_at"
                            : r->matching == RAMP_MATCH_POSITION ? "position"
                                                                 : "none");
    cJSON_AddStringToObject(j, "matching_note", r->matching_note);
    cJSON_AddBoolToObject(j, "broker_evidence", r->broker_evidence);
    if (best >= 0)
        cJSON_AddNumberToObject(j, "max_sustainable_rate", best);
    else
        cJSON_AddNullToObject(j, "max_sustainable_rate");
    cJSON_AddStringToObject(j, "limited_by", hc_ramp_limit_name(limit));
    cJSON_AddStringToObject(j, "limit_reason",
                            failed           ? failed->why
                            : r->interrupted ? "interrupted before a step failed"
                                             : "every step kept up up to MAX");
    cJSON_AddNumberToObject(j, "sent", (double)r->sent);
    cJSON_AddNumberToObject(j, "failed", (double)r->failed);
    cJSON_AddNumberToObject(j, "outputs", (double)r->outputs_total);
    cJSON_AddBoolToObject(j, "interrupted", r->interrupted);
    steps = cJSON_AddArrayToObject(j, "steps");
    for (size_t i = 0; i < r->n_steps; i++)
        cJSON_AddItemToArray(steps, step_json(&r->steps[i]));
    text = cJSON_Print(j);
    ok = text && fprintf(fp, "%s\n", text) >= 0;
    ok = fclose(fp) == 0 && ok;
    if (!ok)
        tool_error("cannot write report '%s': %s", o->report_json, strerror(errno));
    free(text);
    cJSON_Delete(j);
    return ok;
}

/* --- SVG ----------------------------------------------------------------------------------- */

#define SVG_W 720
#define PANEL_H 180
#define PANEL_GAP 50
#define LEFT 70
#define RIGHT 20
#define TOP 40

struct series {
    const char *name, *colour;
    double (*value)(const struct ramp_step *s); /* NAN: no point */
};

static double v_target(const struct ramp_step *s)
{
    return s->target_rate;
}
static double v_input(const struct ramp_step *s)
{
    return s->input_rate;
}
static double v_output(const struct ramp_step *s)
{
    return s->output_rate;
}
static double v_backlog(const struct ramp_step *s)
{
    return s->backlog_end;
}
static double v_p50(const struct ramp_step *s)
{
    return s->latency_count ? ms(s->latency_p50_ns) : NAN;
}
static double v_p99(const struct ramp_step *s)
{
    return s->latency_count ? ms(s->latency_p99_ns) : NAN;
}

static double nice_ceiling(double v)
{
    double p;
    if (!(v > 0))
        return 1;
    p = pow(10, floor(log10(v)));
    for (double m = 1; m <= 10; m += (m < 2 ? 1 : m < 5 ? 3 : 5))
        if (m * p >= v)
            return m * p;
    return 10 * p;
}

/* One panel: a y axis from 0, steps along x, a polyline and dots per series. */
static void svg_panel(FILE *f, const struct ramp_result *r, int top, const char *title,
                      const char *unit, const struct series *ser, size_t n_ser)
{
    double ymax = 0;
    int plot_w = SVG_W - LEFT - RIGHT;
    size_t n = r->n_steps;

    for (size_t k = 0; k < n_ser; k++)
        for (size_t i = 0; i < n; i++) {
            double v = ser[k].value(&r->steps[i]);
            if (!isnan(v) && v > ymax)
                ymax = v;
        }
    ymax = nice_ceiling(ymax);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", LEFT, top - 10, title);
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#999\"/>\n",
            LEFT, top, plot_w, PANEL_H);
    for (int g = 0; g <= 4; g++) {
        double y = top + PANEL_H - g * PANEL_H / 4.0;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n", LEFT, y,
                LEFT + plot_w, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", LEFT - 6, y + 4,
                ymax * g / 4);
    }
    fprintf(f,
            "<text x=\"12\" y=\"%d\" transform=\"rotate(-90 12 %d)\" "
            "text-anchor=\"middle\">%s</text>\n",
            top + PANEL_H / 2, top + PANEL_H / 2, unit);
    for (size_t i = 0; i < n; i++) {
        double x = LEFT + (n > 1 ? (double)i * plot_w / (double)(n - 1) * 0.9 + plot_w * 0.05
                                 : plot_w / 2.0);
        const struct ramp_step *s = &r->steps[i];
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n", x,
                top + PANEL_H + 16, s->target_rate);
        if (s->verdict != HC_RAMP_KEPT_UP)
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%d\" width=\"8\" height=\"%d\" fill=\"#f4cccc\" "
                    "opacity=\"0.6\"><title>%s</title></rect>\n",
                    x - 4, top, PANEL_H, hc_ramp_verdict_name(s->verdict));
    }
    for (size_t k = 0; k < n_ser; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                ser[k].colour);
        for (size_t i = 0; i < n; i++) {
            double v = ser[k].value(&r->steps[i]);
            double x = LEFT + (n > 1 ? (double)i * plot_w / (double)(n - 1) * 0.9 + plot_w * 0.05
                                     : plot_w / 2.0);
            if (!isnan(v))
                fprintf(f, "%.1f,%.1f ", x, top + PANEL_H - v / ymax * PANEL_H);
        }
        fprintf(f, "\"/>\n");
        fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"%s\" text-anchor=\"end\">%s</text>\n",
                SVG_W - RIGHT - 4, top + 14 + 14 * (int)k, ser[k].colour, ser[k].name);
    }
}

bool ramp_report_svg(const struct ramp_result *r, const char *path)
{
    static const struct series rates[] = {{"target", "#999999", v_target},
                                          {"rate in", "#1f77b4", v_input},
                                          {"rate out", "#d62728", v_output}};
    static const struct series backlog[] = {{"backlog at step end", "#9467bd", v_backlog}};
    static const struct series latency[] = {{"p50", "#2ca02c", v_p50}, {"p99", "#ff7f0e", v_p99}};
    enum hc_ramp_limit limit;
    const struct ramp_step *failed;
    double best = ramp_max_sustainable(r, &limit, &failed);
    int height = TOP + 3 * (PANEL_H + PANEL_GAP) + 10;
    FILE *f = fopen(path, "w");
    bool ok;

    if (!f) {
        tool_error("cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n",
            SVG_W, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    if (best >= 0)
        fprintf(f,
                "<text x=\"%d\" y=\"18\" font-size=\"14\">hreplay --ramp: maximum "
                "sustainable rate %.0f msg/s, limited by %s</text>\n",
                LEFT, best, hc_ramp_limit_name(limit));
    else
        fprintf(f,
                "<text x=\"%d\" y=\"18\" font-size=\"14\">hreplay --ramp: the first step "
                "failed, limited by %s</text>\n",
                LEFT, hc_ramp_limit_name(limit));
    svg_panel(f, r, TOP + 20, "Rate in vs rate out per step (x: target msg/s)", "msg/s", rates, 3);
    svg_panel(f, r, TOP + 20 + PANEL_H + PANEL_GAP, "Backlog (inputs delivered - outputs seen)",
              "messages", backlog, 1);
    svg_panel(f, r, TOP + 20 + 2 * (PANEL_H + PANEL_GAP),
              r->matching == RAMP_MATCH_NONE ? "Latency through the consumer: not matched"
                                             : "Latency through the consumer",
              "ms", latency, 2);
    fprintf(f, "</svg>\n");
    ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok)
        tool_error("cannot write '%s': %s", path, strerror(errno));
    return ok;
}

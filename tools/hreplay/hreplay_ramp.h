/*
 * hreplay --ramp, shared between the run (hreplay_ramp.c: the stepped source, the observer and
 * the measurements) and its reports (hreplay_ramp_report.c: text, JSON, SVG).
 */
#ifndef HREPLAY_RAMP_H
#define HREPLAY_RAMP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "hcore/ramp.h"
#include "hreplay.h"

/* How outputs were paired with inputs for latency. */
enum ramp_matching {
    RAMP_MATCH_KEY,      /* device id and measured_at carried by each output */
    RAMP_MATCH_POSITION, /* output n answers input n */
    RAMP_MATCH_NONE      /* rates only */
};

/* One step's measurements and judgement. Times: CLOCK_MONOTONIC ns. */
struct ramp_step {
    double target_rate;                                        /* msg/s */
    uint64_t inputs;                                           /* published during the step */
    double input_rate;                                         /* msg/s achieved */
    int64_t lateness_p50_ns, lateness_p99_ns, lateness_max_ns; /* hreplay's own */
    uint64_t outputs;       /* consumer outputs seen during the step */
    double output_rate;     /* msg/s */
    double backlog_end;     /* messages delivered and not yet answered, at the end */
    double backlog_slope;   /* msg/s */
    double observer_lag;    /* outputs in the file hreplay had not read at the end */
    uint64_t latency_count; /* outputs matched to an input */
    int64_t latency_p50_ns, latency_p99_ns, latency_max_ns;
    bool broker_known; /* $SYS figures seen */
    int64_t dropped_delta, stored_delta;
    int64_t drop_notices;  /* --consumer: the broker's "being dropped" lines for it */
    double generator_busy; /* 0..1, < 0 unknown */
    double duration_s;     /* the step's measuring window */
    enum hc_ramp_verdict verdict;
    enum hc_ramp_limit limit;
    char why[200];
    bool transient; /* failed, but its repetition at the same rate kept up */
    bool repeat;    /* a repetition of the step before it */
};

/* The whole ramp as the reports see it. */
struct ramp_result {
    const struct hreplay_opts *o;
    struct ramp_step *steps;
    size_t n_steps;
    enum ramp_matching matching;
    char matching_note[200];
    bool broker_evidence; /* the broker's $SYS topics could be subscribed to */
    bool interrupted;
    uint64_t sent, failed;
    uint64_t outputs_total;
    int qos;
};

/* The highest sustainable step's rate, or < 0 when the first step failed. */
double ramp_max_sustainable(const struct ramp_result *r, enum hc_ramp_limit *limit,
                            const struct ramp_step **failed);

/* Text report (stdout), JSON report (fp, closed here; NULL: none), SVG (--report-svg). Each
 * returns false after printing why it could not write. */
bool ramp_report_text(const struct ramp_result *r, FILE *out);
bool ramp_report_json(const struct ramp_result *r, FILE *fp);
bool ramp_report_svg(const struct ramp_result *r, const char *path);

#endif

/*
 * Load ramps (hreplay --ramp): the pure parts of judging whether a consumer kept up with one
 * rate step, and of summing a ramp up. No I/O and no clock: the caller measures, this module
 * decides, so the rules are unit-tested on figures alone.
 *
 *   backlog      b(t) = inputs delivered - outputs seen, sampled during the step
 *   slope        least-squares slope of b over t (msg/s); noise = max(5% of the target, 2)
 *   verdict      rate not reached  input rate < 95% of the target (hreplay or the broker could
 *                                  not send it: the consumer is not judged)
 *                not observed      hreplay read the consumer's outputs too slowly: outputs it
 *                                  had not read yet exceed 50 ms of input (the consumer is
 *                                  not judged; "generator": hreplay is the limit)
 *                dropping          the broker dropped messages during the step
 *                falling behind    slope > noise and the backlog at the end exceeds 50 ms of
 *                                  input, or p99 latency > the SLO
 *                kept up           otherwise
 *   sustainable  a step that kept up; the ramp ends at the first step that did not
 *   limited_by   rate not reached: "generator" when hreplay's publishing thread was busy (or
 *                waiting for a CPU) for >= 70% of the step, else "broker" (it waited on the
 *                connection); dropping: "consumer" when messages piled up for it (the broker's
 *                store grew, or the backlog grew beyond the noise), else "broker" (it dropped
 *                what the consumer could have taken); falling behind: "consumer"; no failing
 *                step: "none"
 *
 * The matcher pairs each output of a consumer with the input that caused it: by a key (device
 * id and measured_at) when outputs carry one, else by position (output n answers input n).
 */
#ifndef HCORE_RAMP_H
#define HCORE_RAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HC_RAMP_RATE_REACHED 0.95   /* input rate / target rate at or above this: reached */
#define HC_RAMP_SLOPE_NOISE 0.05    /* backlog slope noise, a fraction of the target rate */
#define HC_RAMP_SLOPE_NOISE_MIN 2.0 /* ... and at least this many msg/s */
#define HC_RAMP_BACKLOG_MIN_S 0.05  /* a growing backlog counts once above this much input */
#define HC_RAMP_GENERATOR_BUSY 0.70 /* publishing thread busy fraction that blames hreplay */

/*
 * Least-squares slope of y over x (n points). 0 when n < 2 or every x is equal.
 */
double hc_ramp_slope(const double *x, const double *y, size_t n);

/* What was measured over one step; the inputs of hc_ramp_judge. */
struct hc_ramp_figures {
    double target_rate;   /* msg/s the step asked for */
    double input_rate;    /* msg/s hreplay achieved */
    double backlog_slope; /* msg/s, hc_ramp_slope of the backlog samples */
    double backlog_end;   /* messages, at the end of the step */
    bool latency_known;
    int64_t latency_p99_ns;
    int64_t slo_ns;        /* 0: no latency objective */
    bool broker_known;     /* the broker's $SYS figures were seen */
    int64_t dropped_delta; /* $SYS/broker/publish/messages/dropped over the step */
    int64_t stored_delta;  /* $SYS/broker/store/messages/count over the step */
    double generator_busy; /* 0..1 of the step; < 0: unknown (then the generator is blamed) */
    double observer_lag;   /* outputs written by the consumer, not yet read by hreplay (end) */
};

enum hc_ramp_verdict {
    HC_RAMP_KEPT_UP,
    HC_RAMP_FALLING_BEHIND,
    HC_RAMP_DROPPING,
    HC_RAMP_RATE_NOT_REACHED,
    HC_RAMP_NOT_OBSERVED
};

enum hc_ramp_limit {
    HC_RAMP_LIMIT_NONE,
    HC_RAMP_LIMIT_CONSUMER,
    HC_RAMP_LIMIT_BROKER,
    HC_RAMP_LIMIT_GENERATOR
};

/*
 * Judges one step (the rules above). *limit receives who limited it (HC_RAMP_LIMIT_NONE when it
 * kept up); why (may be NULL, size bytes) a one-line reason in figures.
 */
enum hc_ramp_verdict hc_ramp_judge(const struct hc_ramp_figures *f, enum hc_ramp_limit *limit,
                                   char *why, size_t size);

/* "kept up", "falling behind", "dropping", "rate not reached", "not observed". */
const char *hc_ramp_verdict_name(enum hc_ramp_verdict v);
/* "none", "consumer", "broker", "generator" (the --report-json values). */
const char *hc_ramp_limit_name(enum hc_ramp_limit l);

/* --- matching outputs to inputs ------------------------------------------------------------- */

typedef struct hc_ramp_match hc_ramp_match;

/* *out: hc_ramp_match_free. HC_ERR_NOMEM. */
hc_err hc_ramp_match_new(hc_ramp_match **out, hc_error *err);
/* Accepts NULL. */
void hc_ramp_match_free(hc_ramp_match *m);

/*
 * One input, sent at sent_ns (any clock, the same for outputs). key (key_len bytes, copied) may
 * be NULL: the input is then matched by position only. Inputs with equal keys are matched
 * oldest first. HC_ERR_NOMEM.
 */
hc_err hc_ramp_match_input(hc_ramp_match *m, const char *key, size_t key_len, int64_t sent_ns,
                           hc_error *err);

/*
 * An output carrying key: true and *sent_ns = the send time of the oldest unmatched input with
 * that key (which is then matched); false when there is none.
 */
bool hc_ramp_match_by_key(hc_ramp_match *m, const char *key, size_t key_len, int64_t *sent_ns);

/* The n-th output (from 0) answering the n-th input: true with its send time, false when fewer
 * than n + 1 inputs were sent. */
bool hc_ramp_match_by_position(const hc_ramp_match *m, uint64_t n, int64_t *sent_ns);

/* Inputs recorded, and inputs with a key still unmatched. */
uint64_t hc_ramp_match_inputs(const hc_ramp_match *m);
uint64_t hc_ramp_match_unmatched(const hc_ramp_match *m);

#ifdef __cplusplus
}
#endif
#endif

/*
 * The replay scheduler: turns each message's recording time (hc_msg.timeline_ns) into an
 * absolute due time on CLOCK_MONOTONIC, waits for it, and measures how late every message went
 * out. Due times are always computed from the start of the replay, never by adding up per-message
 * sleeps, so errors cannot accumulate over millions of messages. The clock is injected (a struct
 * of function pointers) so unit tests assert exact due times without sleeping.
 *
 * Schedule (all arithmetic in integer nanoseconds, one long double division per message):
 *   virtual time   v_0 = 0, v_i = v_{i-1} + min(max(t_i - t_{i-1}, 0), max_gap)
 *                  (t = timeline_ns; a negative step counts as 0 so arrival order is kept;
 *                  without max_gap and with ordered times v_i = t_i - t_0 exactly)
 *   original       due_i = start + v_i
 *   speed X        due_i = start + round(v_i / X)
 *   rate N         due_i = start + round(i * 1e9 / N)   (i counts messages over all passes)
 *   max            due_i = the time the scheduler is asked (no waiting)
 * Loops: pass p+1 continues the virtual time of pass p: its first message sits one "loop gap"
 * after the last message of pass p. The loop gap is the recording's mean interval in virtual
 * time, v_last / (n - 1) of the first pass (1 s when the pass had a single message), capped by
 * max_gap, unless the caller sets loop_gap_ns.
 * Any int64 recording times are accepted: gaps, v_i and due times saturate at the int64 limits
 * instead of overflowing, so times far apart (years 1678 and 2262) still give due times in
 * arrival order, never a negative step.
 */
#ifndef HCORE_SCHED_H
#define HCORE_SCHED_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A clock on CLOCK_MONOTONIC nanoseconds. sleep_until_ns may return early (a signal, or a
 * chunked sleep); the scheduler then asks now_ns and sleeps again.
 */
struct hc_clock {
    int64_t (*now_ns)(void *ctx);
    void (*sleep_until_ns)(void *ctx, int64_t deadline_ns);
    void *ctx;
};

/*
 * The real clock: clock_gettime / clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME). Each call
 * also sets the calling thread's timer slack to 1 ns (prctl PR_SET_TIMERSLACK; the default 50 µs
 * slack makes wake-ups ~90 µs late instead of ~40 µs): call it on the thread that sleeps.
 * Returns a static, constant struct.
 */
const struct hc_clock *hc_clock_real(void);

enum hc_sched_mode {
    HC_SCHED_ORIGINAL, /* recorded timing */
    HC_SCHED_SPEED,    /* recorded timing divided by speed */
    HC_SCHED_RATE,     /* evenly spaced, rate messages per second */
    HC_SCHED_MAX       /* as fast as possible */
};

struct hc_sched_options {
    enum hc_sched_mode mode;
    double speed;        /* HC_SCHED_SPEED: > 0 */
    double rate;         /* HC_SCHED_RATE: messages per second, > 0 */
    int64_t max_gap_ns;  /* > 0: cap every idle gap (recording time) at this; 0: no cap */
    int64_t loop_gap_ns; /* > 0: gap between passes (recording time); 0: the mean interval */
};

typedef struct hc_sched hc_sched;

/*
 * Creates a scheduler. The clock is copied. HC_ERR_INVALID for a bad speed, rate or gap.
 * *out: hc_sched_free.
 */
hc_err hc_sched_new(const struct hc_sched_options *opts, const struct hc_clock *clock,
                    hc_sched **out, hc_error *err);

/* Accepts NULL. */
void hc_sched_free(hc_sched *s);

/* Sets the schedule's start (CLOCK_MONOTONIC ns); by default the first hc_sched_due call's now. */
void hc_sched_start(hc_sched *s, int64_t start_ns);

/*
 * Due time of the next message, whose recording time is timeline_ns. Call once per message in
 * order. In HC_SCHED_MAX mode returns the clock's now.
 */
int64_t hc_sched_due(hc_sched *s, int64_t timeline_ns);

/* Marks the end of a pass: the next hc_sched_due call starts the next pass (see loops above). */
void hc_sched_next_pass(hc_sched *s);

/*
 * Sleeps until due (absolute). Returns true with *now_out = the clock's now after waking
 * (>= due), or false when *stop became non-zero (checked at least every 100 ms of sleeping, so a
 * signal caught by another thread still stops a long gap), *now_out then being the time it
 * stopped. stop may be NULL.
 */
bool hc_sched_wait(hc_sched *s, int64_t due_ns, const volatile sig_atomic_t *stop,
                   int64_t *now_out);

/* Records one message's lateness (actual - due, ns; negative counts as 0). */
void hc_sched_record(hc_sched *s, int64_t lateness_ns);

/*
 * Lateness statistics over recorded messages. Fixed memory: a log-linear histogram (128
 * sub-buckets per power of two, so a percentile is within 1% of the true value); max is exact.
 */
struct hc_sched_stats {
    uint64_t count;
    int64_t p50_ns, p90_ns, p99_ns, p999_ns, max_ns;
    double mean_ns;
};
void hc_sched_stats(const hc_sched *s, struct hc_sched_stats *out);

/* --- the histogram on its own (also used for windows of a run) ------------------------------ */

#define HC_HIST_SUB_BITS 7
#define HC_HIST_BUCKETS ((64 - HC_HIST_SUB_BITS + 1) << HC_HIST_SUB_BITS)

struct hc_hist {
    uint64_t counts[HC_HIST_BUCKETS];
    uint64_t total;
    int64_t max;
    long double sum;
};

void hc_hist_init(struct hc_hist *h);
void hc_hist_add(struct hc_hist *h, int64_t value); /* negative counts as 0 */
/* n values of value at once (a histogram read back from a report: value a bucket's edge). */
void hc_hist_add_n(struct hc_hist *h, int64_t value, uint64_t n);
/* The value at quantile q (0..1): the upper edge of its bucket, never above max; 0 when empty. */
int64_t hc_hist_quantile(const struct hc_hist *h, double q);
/* Adds every count of from into into (histograms of several runs or shards combine exactly). */
void hc_hist_merge(struct hc_hist *into, const struct hc_hist *from);
/* The largest value that falls into bucket idx (< HC_HIST_BUCKETS): how reports name buckets. */
int64_t hc_hist_bucket_upper(size_t idx);
/* The histogram behind hc_sched_stats. */
const struct hc_hist *hc_sched_lateness(const hc_sched *s);

#ifdef __cplusplus
}
#endif
#endif

/*
 * The replay scheduler (see sched.h for the schedule's rules): absolute due times from integer
 * virtual time, waiting on an injected clock, and a fixed-memory log-linear lateness histogram.
 */
#define _GNU_SOURCE /* prctl's PR_SET_TIMERSLACK */
#include "hcore/sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define SLEEP_CHUNK_NS 100000000LL /* how often a long wait looks at the stop flag */

struct hc_sched {
    struct hc_sched_options opts;
    struct hc_clock clock;
    bool started;
    int64_t start_ns;
    bool have_prev;     /* a message has been scheduled (prev_t and virtual_ns are valid) */
    bool pass_pending;  /* hc_sched_next_pass was called since the last message */
    int64_t prev_t;     /* timeline_ns of the previous message */
    int64_t virtual_ns; /* v_i: capped recording time since the first message */
    uint64_t index;     /* messages scheduled over all passes */
    uint64_t pass;      /* passes completed */
    uint64_t pass_messages;
    int64_t loop_gap_ns;
    struct hc_hist lateness;
};

/* --- the real clock -------------------------------------------------------------------------- */

static int64_t real_now_ns(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void real_sleep_until_ns(void *ctx, int64_t deadline_ns)
{
    struct timespec ts;
    (void)ctx;
    if (deadline_ns < 0)
        return;
    ts.tv_sec = (time_t)(deadline_ns / 1000000000LL);
    ts.tv_nsec = (long)(deadline_ns % 1000000000LL);
    /* EINTR just returns: hc_sched_wait looks at the clock and the stop flag again. */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

const struct hc_clock *hc_clock_real(void)
{
    static const struct hc_clock real = {real_now_ns, real_sleep_until_ns, NULL};

    /* Best effort, and per thread (as the slack is): without it wake-ups are ~50 µs later,
     * which is still correct. Cheap enough to repeat on every call; no flag to keep. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    return &real;
}

/* --- histogram ------------------------------------------------------------------------------- */

#define SUB_COUNT (1 << HC_HIST_SUB_BITS)

static size_t bucket_of(uint64_t v)
{
    unsigned e, shift;

    if (v < SUB_COUNT)
        return (size_t)v;
    e = 63u - (unsigned)__builtin_clzll(v);
    shift = e - HC_HIST_SUB_BITS;
    return ((size_t)(shift + 1) << HC_HIST_SUB_BITS) + (size_t)((v >> shift) - SUB_COUNT);
}

/* The largest value that falls into bucket idx. */
static uint64_t bucket_upper(size_t idx)
{
    unsigned shift;
    uint64_t mantissa;

    if (idx < SUB_COUNT)
        return idx;
    shift = (unsigned)(idx >> HC_HIST_SUB_BITS) - 1u;
    mantissa = (idx & (SUB_COUNT - 1)) + SUB_COUNT;
    return ((mantissa + 1) << shift) - 1;
}

void hc_hist_init(struct hc_hist *h)
{
    memset(h, 0, sizeof(*h));
}

void hc_hist_add(struct hc_hist *h, int64_t value)
{
    if (value < 0)
        value = 0;
    h->counts[bucket_of((uint64_t)value)]++;
    h->total++;
    h->sum += (long double)value;
    if (value > h->max)
        h->max = value;
}

void hc_hist_add_n(struct hc_hist *h, int64_t value, uint64_t n)
{
    if (value < 0)
        value = 0;
    h->counts[bucket_of((uint64_t)value)] += n;
    h->total += n;
    h->sum += (long double)value * (long double)n;
    if (n && value > h->max)
        h->max = value;
}

void hc_hist_merge(struct hc_hist *into, const struct hc_hist *from)
{
    for (size_t i = 0; i < HC_HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
}

int64_t hc_hist_bucket_upper(size_t idx)
{
    uint64_t v = bucket_upper(idx);
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

const struct hc_hist *hc_sched_lateness(const hc_sched *s)
{
    return &s->lateness;
}

int64_t hc_hist_quantile(const struct hc_hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->total == 0)
        return 0;
    if (q <= 0)
        q = 0;
    if (q >= 1)
        return h->max;
    /* the smallest value with at least ceil(q * total) values at or below it */
    rank = (uint64_t)ceill((long double)q * (long double)h->total);
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < HC_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t upper = bucket_upper(i);
            return upper > (uint64_t)h->max ? h->max : (int64_t)upper;
        }
    }
    return h->max;
}

/* --- scheduler ------------------------------------------------------------------------------- */

hc_err hc_sched_new(const struct hc_sched_options *opts, const struct hc_clock *clock,
                    hc_sched **out, hc_error *err)
{
    hc_sched *s;

    *out = NULL;
    if (!opts || !clock || !clock->now_ns || !clock->sleep_until_ns)
        return hc_error_set(err, HC_ERR_INVALID, "scheduler needs options and a clock");
    if (opts->mode == HC_SCHED_SPEED && !(opts->speed > 0 && isfinite(opts->speed)))
        return hc_error_set(err, HC_ERR_INVALID, "speed must be a number above 0");
    if (opts->mode == HC_SCHED_RATE && !(opts->rate > 0 && isfinite(opts->rate)))
        return hc_error_set(err, HC_ERR_INVALID, "rate must be a number above 0");
    if (opts->max_gap_ns < 0 || opts->loop_gap_ns < 0)
        return hc_error_set(err, HC_ERR_INVALID, "gaps must not be negative");
    s = calloc(1, sizeof(*s));
    if (!s)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    s->opts = *opts;
    s->clock = *clock;
    s->loop_gap_ns = opts->loop_gap_ns;
    hc_hist_init(&s->lateness);
    *out = s;
    return HC_OK;
}

void hc_sched_free(hc_sched *s)
{
    free(s);
}

void hc_sched_start(hc_sched *s, int64_t start_ns)
{
    s->start_ns = start_ns;
    s->started = true;
}

/*
 * Saturating arithmetic: recording times may be anything an int64 holds (a store written by
 * another tool, a JSON line's session_started_at_ns + mono_ns), and a gap between two extreme
 * times does not fit in an int64. Saturating keeps every due time in order instead of wrapping
 * to a negative span (and is defined behaviour, which signed overflow is not).
 */
static int64_t add_saturating(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sub_saturating(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* start + round(v), with v >= 0 in ns; INT64_MAX when it does not fit. */
static int64_t offset_saturating(int64_t start, long double v)
{
    if (!(v < 9.2e18L))
        return INT64_MAX;
    return add_saturating(start, (int64_t)llroundl(v));
}

static int64_t capped(const hc_sched *s, int64_t gap)
{
    if (gap < 0)
        return 0;
    if (s->opts.max_gap_ns > 0 && gap > s->opts.max_gap_ns)
        return s->opts.max_gap_ns;
    return gap;
}

int64_t hc_sched_due(hc_sched *s, int64_t timeline_ns)
{
    uint64_t i;

    if (!s->started)
        hc_sched_start(s, s->clock.now_ns(s->clock.ctx));
    i = s->index++;
    s->pass_messages++;
    switch (s->opts.mode) {
    case HC_SCHED_MAX:
        return s->clock.now_ns(s->clock.ctx);
    case HC_SCHED_RATE:
        return offset_saturating(s->start_ns, (long double)i * 1e9L / (long double)s->opts.rate);
    case HC_SCHED_ORIGINAL:
    case HC_SCHED_SPEED:
        break;
    }
    if (!s->have_prev) {
        s->virtual_ns = 0;
        s->have_prev = true;
    } else if (s->pass_pending) {
        s->virtual_ns = add_saturating(s->virtual_ns, s->loop_gap_ns);
    } else {
        s->virtual_ns =
            add_saturating(s->virtual_ns, capped(s, sub_saturating(timeline_ns, s->prev_t)));
    }
    s->pass_pending = false;
    s->prev_t = timeline_ns;
    if (s->opts.mode == HC_SCHED_SPEED)
        return offset_saturating(s->start_ns,
                                 (long double)s->virtual_ns / (long double)s->opts.speed);
    return add_saturating(s->start_ns, s->virtual_ns);
}

void hc_sched_next_pass(hc_sched *s)
{
    if (s->pass == 0 && s->loop_gap_ns == 0) {
        /* a pass that takes no time (one message, or all at one instant) repeats once a second,
         * never in a tight loop */
        if (s->pass_messages > 1 && s->virtual_ns > 0)
            s->loop_gap_ns = s->virtual_ns / (int64_t)(s->pass_messages - 1);
        else
            s->loop_gap_ns = 1000000000LL;
        s->loop_gap_ns = capped(s, s->loop_gap_ns);
    }
    s->pass++;
    s->pass_messages = 0;
    if (s->have_prev)
        s->pass_pending = true;
}

bool hc_sched_wait(hc_sched *s, int64_t due_ns, const volatile sig_atomic_t *stop, int64_t *now_out)
{
    int64_t now;

    for (;;) {
        now = s->clock.now_ns(s->clock.ctx);
        if (now >= due_ns) {
            *now_out = now;
            return true;
        }
        if (stop && *stop) {
            *now_out = now;
            return false;
        }
        s->clock.sleep_until_ns(s->clock.ctx, sub_saturating(due_ns, now) > SLEEP_CHUNK_NS
                                                  ? add_saturating(now, SLEEP_CHUNK_NS)
                                                  : due_ns);
    }
}

void hc_sched_record(hc_sched *s, int64_t lateness_ns)
{
    hc_hist_add(&s->lateness, lateness_ns);
}

void hc_sched_stats(const hc_sched *s, struct hc_sched_stats *out)
{
    const struct hc_hist *h = &s->lateness;

    memset(out, 0, sizeof(*out));
    out->count = h->total;
    if (!h->total)
        return;
    out->p50_ns = hc_hist_quantile(h, 0.50);
    out->p90_ns = hc_hist_quantile(h, 0.90);
    out->p99_ns = hc_hist_quantile(h, 0.99);
    out->p999_ns = hc_hist_quantile(h, 0.999);
    out->max_ns = h->max;
    out->mean_ns = (double)(h->sum / (long double)h->total);
}

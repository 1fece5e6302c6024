/*
 * Tests of the replay scheduler with a fake clock: exact due times for every timing mode, idle
 * gap caps, loops continuing the schedule, no drift over a million messages, waiting that sleeps
 * to absolute deadlines and stops on request, and the lateness histogram's percentiles.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <signal.h>
#include <stdint.h>

#include "hcore/sched.h"

/* A clock that only moves when slept on (or set by the test). */
struct fake_clock {
    int64_t now;
    int sleeps;
    int64_t last_deadline;
};

static int64_t fake_now(void *ctx)
{
    return ((struct fake_clock *)ctx)->now;
}

static void fake_sleep_until(void *ctx, int64_t deadline)
{
    struct fake_clock *fc = ctx;
    fc->sleeps++;
    fc->last_deadline = deadline;
    if (deadline > fc->now)
        fc->now = deadline;
}

static hc_sched *make(struct fake_clock *fc, struct hc_sched_options o)
{
    struct hc_clock clock = {fake_now, fake_sleep_until, fc};
    hc_sched *s = NULL;
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_sched_new(&o, &clock, &s, &err), HC_OK, "%s", err.message);
    return s;
}

#define S 1000000000LL
#define MS 1000000LL

Test(sched, original_mode_due_times_equal_start_plus_recording_offsets)
{
    struct fake_clock fc = {.now = 5 * S};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);
    const int64_t t0 = 1770287400LL * S + 123;

    cr_assert_eq(hc_sched_due(s, t0), 5 * S);
    cr_assert_eq(hc_sched_due(s, t0 + 1500 * MS), 5 * S + 1500 * MS);
    cr_assert_eq(hc_sched_due(s, t0 + 1500 * MS), 5 * S + 1500 * MS);
    cr_assert_eq(hc_sched_due(s, t0 + 3600 * S + 7), 5 * S + 3600 * S + 7);
    hc_sched_free(s);
}

Test(sched, an_explicit_start_is_used_instead_of_the_first_call_time)
{
    struct fake_clock fc = {.now = 5 * S};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);

    hc_sched_start(s, 42);
    cr_assert_eq(hc_sched_due(s, 1000), 42);
    cr_assert_eq(hc_sched_due(s, 2000), 1042);
    hc_sched_free(s);
}

Test(sched, times_going_backwards_are_sent_at_once_in_arrival_order)
{
    struct fake_clock fc = {0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);

    cr_assert_eq(hc_sched_due(s, 10 * S), 0);
    cr_assert_eq(hc_sched_due(s, 12 * S), 2 * S);
    cr_assert_eq(hc_sched_due(s, 11 * S), 2 * S); /* step back: no wait */
    cr_assert_eq(hc_sched_due(s, 13 * S), 4 * S); /* then the recorded gap again */
    hc_sched_free(s);
}

static void check_speed(double speed, const int64_t *offsets, const int64_t *expected, int n)
{
    struct fake_clock fc = {.now = 100};
    struct hc_sched_options o = {.mode = HC_SCHED_SPEED, .speed = speed};
    hc_sched *s = make(&fc, o);

    for (int i = 0; i < n; i++)
        cr_assert_eq(hc_sched_due(s, 1000 * S + offsets[i]), 100 + expected[i],
                     "speed %g message %d", speed, i);
    hc_sched_free(s);
}

Test(sched, speed_divides_recording_offsets_exactly)
{
    const int64_t off[] = {0, 1 * S, 3 * S, 3 * S + 1, 10 * S + 999};
    const int64_t half[] = {0, 2 * S, 6 * S, 6 * S + 2, 20 * S + 1998};
    const int64_t ten[] = {0, 100 * MS, 300 * MS, 300 * MS, 1 * S + 100}; /* 0.1 ns rounds */
    const int64_t thousand[] = {0, 1 * MS, 3 * MS, 3 * MS, 10 * MS + 1};  /* 0.999 -> 1 */

    check_speed(0.5, off, half, 5);
    check_speed(10, off, ten, 5);
    check_speed(1000, off, thousand, 5);
}

Test(sched, rate_spaces_messages_evenly_whatever_their_recorded_times)
{
    struct fake_clock fc = {.now = 7};
    struct hc_sched_options o = {.mode = HC_SCHED_RATE, .rate = 3};
    hc_sched *s = make(&fc, o);

    cr_assert_eq(hc_sched_due(s, 999 * S), 7);
    cr_assert_eq(hc_sched_due(s, 0), 7 + 333333333);
    cr_assert_eq(hc_sched_due(s, 5), 7 + 666666667);
    cr_assert_eq(hc_sched_due(s, 5), 7 + 1 * S);
    hc_sched_next_pass(s); /* loops keep the spacing */
    cr_assert_eq(hc_sched_due(s, 999 * S), 7 + 1333333333);
    hc_sched_free(s);
}

Test(sched, max_mode_is_due_immediately)
{
    struct fake_clock fc = {.now = 50};
    struct hc_sched_options o = {.mode = HC_SCHED_MAX};
    hc_sched *s = make(&fc, o);

    cr_assert_eq(hc_sched_due(s, 0), 50);
    fc.now = 60;
    cr_assert_eq(hc_sched_due(s, 100 * S), 60);
    hc_sched_free(s);
}

Test(sched, max_gap_caps_every_idle_gap_and_keeps_shorter_ones)
{
    struct fake_clock fc = {0};
    struct hc_sched_options o = {.mode = HC_SCHED_SPEED, .speed = 2, .max_gap_ns = 5 * S};
    hc_sched *s = make(&fc, o);

    cr_assert_eq(hc_sched_due(s, 0), 0);
    cr_assert_eq(hc_sched_due(s, 4 * S), 2 * S);                /* under the cap */
    cr_assert_eq(hc_sched_due(s, 4 * S + 3600 * S), 4500 * MS); /* an hour capped at 5 s */
    cr_assert_eq(hc_sched_due(s, 4 * S + 3601 * S), 5 * S);
    hc_sched_free(s);
}

Test(sched, loops_continue_after_the_last_message_plus_the_mean_interval)
{
    struct fake_clock fc = {0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);
    const int64_t t[] = {100 * S, 101 * S, 104 * S}; /* mean interval 2 s */

    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < 3; i++)
            cr_assert_eq(hc_sched_due(s, t[i]), pass * 6 * S + (t[i] - t[0]), "pass %d msg %d",
                         pass, i);
        hc_sched_next_pass(s);
    }
    hc_sched_free(s);
}

Test(sched, an_explicit_loop_gap_and_max_gap_apply_between_passes)
{
    struct fake_clock fc = {0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL, .loop_gap_ns = 250 * MS};
    hc_sched *s = make(&fc, o);

    cr_assert_eq(hc_sched_due(s, 0), 0);
    cr_assert_eq(hc_sched_due(s, 10 * S), 10 * S);
    hc_sched_next_pass(s);
    cr_assert_eq(hc_sched_due(s, 0), 10 * S + 250 * MS);
    hc_sched_free(s);

    /* mean interval 50 s capped by max_gap 3 s */
    struct hc_sched_options o2 = {.mode = HC_SCHED_ORIGINAL, .max_gap_ns = 3 * S};
    s = make(&fc, o2);
    hc_sched_start(s, 0);
    cr_assert_eq(hc_sched_due(s, 0), 0);
    cr_assert_eq(hc_sched_due(s, 1 * S), 1 * S);
    cr_assert_eq(hc_sched_due(s, 100 * S), 4 * S);
    hc_sched_next_pass(s);
    cr_assert_eq(hc_sched_due(s, 0), 4 * S + 2 * S); /* mean of capped gaps: 4 s / 2 */
    hc_sched_free(s);
}

Test(sched, a_single_message_recording_loops_once_per_second)
{
    struct fake_clock fc = {0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);

    for (int pass = 0; pass < 4; pass++) {
        cr_assert_eq(hc_sched_due(s, 77), pass * S);
        hc_sched_next_pass(s);
    }
    hc_sched_free(s);
}

Test(sched, a_pass_whose_messages_share_one_instant_loops_once_per_second)
{
    /* two messages at the same time: no mean interval, never a tight loop */
    struct fake_clock fc = {0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);

    for (int pass = 0; pass < 4; pass++) {
        cr_assert_eq(hc_sched_due(s, 5 * S), pass * S, "pass %d first", pass);
        cr_assert_eq(hc_sched_due(s, 5 * S), pass * S, "pass %d second", pass);
        hc_sched_next_pass(s);
    }
    hc_sched_free(s);
}

Test(sched, no_drift_accumulates_over_a_million_messages)
{
    /* 1M messages 333,333,333 ns apart (not a whole ms): at speed 3 and 7 the millionth is due
     * exactly at start + round(offset / speed), as a single division would put it. */
    const double speeds[] = {3, 7, 0.3};
    for (size_t k = 0; k < sizeof(speeds) / sizeof(speeds[0]); k++) {
        struct fake_clock fc = {0};
        struct hc_sched_options o = {.mode = HC_SCHED_SPEED, .speed = speeds[k]};
        hc_sched *s = make(&fc, o);
        const int64_t step = 333333333;
        int64_t due = 0;
        for (int64_t i = 0; i < 1000000; i++) {
            due = hc_sched_due(s, 1770287400LL * S + i * step);
            if (i % 99991 == 0)
                cr_assert_eq(due,
                             (int64_t)llroundl((long double)(i * step) / (long double)speeds[k]));
        }
        cr_assert_eq(due,
                     (int64_t)llroundl((long double)(999999LL * step) / (long double)speeds[k]));
        hc_sched_free(s);
    }

    /* rate: the millionth message at exactly 999999 / rate seconds */
    struct fake_clock fc = {0};
    struct hc_sched_options o = {.mode = HC_SCHED_RATE, .rate = 3};
    hc_sched *s = make(&fc, o);
    int64_t due = 0;
    for (int i = 0; i < 1000000; i++)
        due = hc_sched_due(s, 0);
    cr_assert_eq(due, 333333 * S); /* 999999 / 3 s */
    hc_sched_free(s);
}

Test(sched, wait_sleeps_to_the_absolute_due_time_in_chunks)
{
    struct fake_clock fc = {.now = 0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);
    int64_t now = -1;

    cr_assert(hc_sched_wait(s, 250 * MS, NULL, &now));
    cr_assert_eq(now, 250 * MS);
    cr_assert_eq(fc.sleeps, 3); /* 100 ms, 100 ms, then to the deadline */
    cr_assert_eq(fc.last_deadline, 250 * MS);

    fc.sleeps = 0;
    cr_assert(hc_sched_wait(s, 10 * MS, NULL, &now)); /* already late: no sleep */
    cr_assert_eq(fc.sleeps, 0);
    cr_assert_eq(now, 250 * MS);
    hc_sched_free(s);
}

Test(sched, wait_returns_false_when_asked_to_stop)
{
    struct fake_clock fc = {.now = 0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);
    volatile sig_atomic_t stop = 1;
    int64_t now = -1;

    cr_assert_not(hc_sched_wait(s, 3600 * S, &stop, &now));
    cr_assert_eq(now, 0);
    hc_sched_free(s);
}

Test(sched, invalid_options_are_refused)
{
    struct fake_clock fc = {0};
    struct hc_clock clock = {fake_now, fake_sleep_until, &fc};
    hc_sched *s = NULL;
    hc_error err = HC_ERROR_INIT;
    struct hc_sched_options bad_speed = {.mode = HC_SCHED_SPEED, .speed = 0};
    struct hc_sched_options bad_rate = {.mode = HC_SCHED_RATE, .rate = -1};
    struct hc_sched_options bad_gap = {.mode = HC_SCHED_ORIGINAL, .max_gap_ns = -1};

    cr_assert_eq(hc_sched_new(&bad_speed, &clock, &s, &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "speed must be a number above 0");
    cr_assert_eq(hc_sched_new(&bad_rate, &clock, &s, &err), HC_ERR_INVALID);
    cr_assert_eq(hc_sched_new(&bad_gap, &clock, &s, &err), HC_ERR_INVALID);
    cr_assert_null(s);
}

Test(sched, lateness_percentiles_are_within_one_percent_and_max_is_exact)
{
    struct fake_clock fc = {0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL};
    hc_sched *s = make(&fc, o);
    struct hc_sched_stats st;

    /* 1..10000 µs: p50 5000 µs, p99 9900 µs */
    for (int64_t us = 1; us <= 10000; us++)
        hc_sched_record(s, us * 1000);
    hc_sched_record(s, -5); /* early counts as on time */
    hc_sched_stats(s, &st);
    cr_assert_eq(st.count, 10001);
    cr_assert_eq(st.max_ns, 10000 * 1000);
    cr_assert(st.p50_ns >= 4999 * 1000 && st.p50_ns <= 5000 * 1000 * 101 / 100, "p50 %lld",
              (long long)st.p50_ns);
    cr_assert(st.p99_ns >= 9899 * 1000 && st.p99_ns <= 9900 * 1000 * 101 / 100, "p99 %lld",
              (long long)st.p99_ns);
    hc_sched_free(s);
}

Test(sched, small_values_are_exact_and_an_empty_histogram_reports_zero)
{
    struct hc_hist h;

    hc_hist_init(&h);
    cr_assert_eq(hc_hist_quantile(&h, 0.5), 0);
    for (int v = 0; v < 100; v++)
        hc_hist_add(&h, v);
    cr_assert_eq(hc_hist_quantile(&h, 0.5), 49);
    cr_assert_eq(hc_hist_quantile(&h, 0.99), 98);
    cr_assert_eq(hc_hist_quantile(&h, 1.0), 99);
    hc_hist_add(&h, INT64_MAX);
    cr_assert_eq(hc_hist_quantile(&h, 1.0), INT64_MAX);
}

/* Issue 10 item 11: extreme times overflowed the gap (UBSan) and gave a negative, unordered span.
 */
Test(sched, extreme_times_saturate_and_keep_arrival_order)
{
    const int64_t times[] = {
        INT64_MIN, -9000000000000000000LL, 0, 9000000000000000000LL, INT64_MAX, INT64_MIN,
        INT64_MAX};
    const enum hc_sched_mode modes[] = {HC_SCHED_ORIGINAL, HC_SCHED_SPEED};

    for (size_t m = 0; m < 2; m++) {
        struct fake_clock fc = {.now = 5 * S};
        struct hc_sched_options o = {.mode = modes[m], .speed = 0.5};
        hc_sched *s = make(&fc, o);
        int64_t prev = INT64_MIN;
        for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
            int64_t due = hc_sched_due(s, times[i]);
            cr_assert_geq(due, prev, "mode %zu message %zu: due %lld before %lld", m, i,
                          (long long)due, (long long)prev);
            prev = due;
        }
        cr_assert_eq(prev, INT64_MAX);
        hc_sched_next_pass(s);
        cr_assert_eq(hc_sched_due(s, 0), INT64_MAX);
        hc_sched_free(s);
    }
}

Test(sched, a_gap_cap_still_applies_between_extreme_times)
{
    struct fake_clock fc = {.now = 0};
    struct hc_sched_options o = {.mode = HC_SCHED_ORIGINAL, .max_gap_ns = 5 * S};
    hc_sched *s = make(&fc, o);

    cr_assert_eq(hc_sched_due(s, INT64_MIN), 0);
    cr_assert_eq(hc_sched_due(s, INT64_MAX), 5 * S);
    cr_assert_eq(hc_sched_due(s, INT64_MIN), 5 * S);
    hc_sched_free(s);
}

static volatile sig_atomic_t stop_after_sleep;

static void sleep_then_stop(void *ctx, int64_t deadline)
{
    fake_sleep_until(ctx, deadline);
    stop_after_sleep = 1;
}

Test(sched, waiting_for_the_far_future_from_a_negative_clock_does_not_overflow)
{
    struct fake_clock fc = {.now = -9000000000000000000LL};
    struct hc_clock clock = {fake_now, sleep_then_stop, &fc};
    struct hc_sched_options o = {.mode = HC_SCHED_MAX};
    hc_sched *s = NULL;
    int64_t now = 0;

    cr_assert_eq(hc_sched_new(&o, &clock, &s, NULL), HC_OK);
    stop_after_sleep = 0;
    cr_assert(!hc_sched_wait(s, INT64_MAX, &stop_after_sleep, &now));
    cr_assert_eq(fc.last_deadline, -9000000000000000000LL + 100 * MS);
    cr_assert_eq(now, -9000000000000000000LL + 100 * MS);
    hc_sched_free(s);
}

/*
 * Unit tests of the ramp rules (hcore/ramp.h): the backlog slope, each verdict and who is blamed,
 * and matching outputs to inputs by key and by position.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hcore/ramp.h"

static struct hc_ramp_figures kept(void)
{
    struct hc_ramp_figures f = {
        .target_rate = 100,
        .input_rate = 100,
        .backlog_slope = 0.5,
        .backlog_end = 3,
        .latency_known = true,
        .latency_p99_ns = 2000000,
        .broker_known = true,
        .generator_busy = 0.1,
    };
    return f;
}

Test(ramp, slope_of_a_straight_line_is_its_gradient)
{
    double x[] = {0, 1, 2, 3, 4}, y[] = {10, 13, 16, 19, 22};
    cr_assert_float_eq(hc_ramp_slope(x, y, 5), 3.0, 1e-12);
}

Test(ramp, slope_of_noise_around_a_level_is_near_zero)
{
    double x[] = {0, 1, 2, 3, 4, 5}, y[] = {5, 7, 5, 7, 5, 7};
    cr_assert(fabs(hc_ramp_slope(x, y, 6)) < 0.3);
}

Test(ramp, slope_needs_two_distinct_x)
{
    double x[] = {1, 1}, y[] = {0, 5};
    cr_assert_float_eq(hc_ramp_slope(x, y, 1), 0.0, 0);
    cr_assert_float_eq(hc_ramp_slope(x, y, 2), 0.0, 0);
}

Test(ramp, a_flat_backlog_kept_up)
{
    struct hc_ramp_figures f = kept();
    enum hc_ramp_limit l;
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_KEPT_UP);
    cr_assert_eq(l, HC_RAMP_LIMIT_NONE);
}

Test(ramp, a_growing_backlog_is_falling_behind_and_blames_the_consumer)
{
    struct hc_ramp_figures f = kept();
    enum hc_ramp_limit l;
    char why[200];
    f.backlog_slope = 20;
    f.backlog_end = 60;
    cr_assert_eq(hc_ramp_judge(&f, &l, why, sizeof(why)), HC_RAMP_FALLING_BEHIND);
    cr_assert_eq(l, HC_RAMP_LIMIT_CONSUMER);
    cr_assert(strstr(why, "backlog grows 20.0 msg/s") != NULL, "%s", why);
}

Test(ramp, a_slope_within_noise_or_a_tiny_backlog_still_kept_up)
{
    struct hc_ramp_figures f = kept();
    enum hc_ramp_limit l;
    f.backlog_slope = 4.9; /* noise: 5% of 100 msg/s */
    f.backlog_end = 60;
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_KEPT_UP);
    f.backlog_slope = 30;
    f.backlog_end = 4; /* under 50 ms of input */
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_KEPT_UP);
}

Test(ramp, latency_over_the_slo_is_falling_behind)
{
    struct hc_ramp_figures f = kept();
    enum hc_ramp_limit l;
    f.slo_ns = 1000000;
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_FALLING_BEHIND);
    cr_assert_eq(l, HC_RAMP_LIMIT_CONSUMER);
    f.latency_known = false; /* rates only: the SLO cannot be judged */
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_KEPT_UP);
}

Test(ramp, broker_drops_are_dropping_and_blame_whoever_piled_up)
{
    struct hc_ramp_figures f = kept();
    enum hc_ramp_limit l;
    f.dropped_delta = 12;
    f.stored_delta = 300;
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_DROPPING);
    cr_assert_eq(l, HC_RAMP_LIMIT_CONSUMER);
    f.stored_delta = 0;
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_DROPPING);
    cr_assert_eq(l, HC_RAMP_LIMIT_BROKER);
    f.broker_known = false;
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_KEPT_UP);
}

Test(ramp, a_missed_rate_is_never_blamed_on_the_consumer)
{
    struct hc_ramp_figures f = kept();
    enum hc_ramp_limit l;
    f.input_rate = 90;
    f.backlog_slope = 50;
    f.backlog_end = 500;
    f.generator_busy = 0.95;
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_RATE_NOT_REACHED);
    cr_assert_eq(l, HC_RAMP_LIMIT_GENERATOR);
    f.generator_busy = 0.2; /* it waited: on the connection */
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_RATE_NOT_REACHED);
    cr_assert_eq(l, HC_RAMP_LIMIT_BROKER);
    f.generator_busy = -1;
    hc_ramp_judge(&f, &l, NULL, 0);
    cr_assert_eq(l, HC_RAMP_LIMIT_GENERATOR);
}

Test(ramp, outputs_hreplay_has_not_read_yet_blame_hreplay_not_the_consumer)
{
    struct hc_ramp_figures f = kept();
    enum hc_ramp_limit l;
    f.backlog_slope = 50;
    f.backlog_end = 500;
    f.observer_lag = 400;
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_NOT_OBSERVED);
    cr_assert_eq(l, HC_RAMP_LIMIT_GENERATOR);
    f.observer_lag = 4; /* under 50 ms of input: noise */
    cr_assert_eq(hc_ramp_judge(&f, &l, NULL, 0), HC_RAMP_FALLING_BEHIND);
}

Test(ramp, names_are_the_report_values)
{
    cr_assert_str_eq(hc_ramp_verdict_name(HC_RAMP_KEPT_UP), "kept up");
    cr_assert_str_eq(hc_ramp_verdict_name(HC_RAMP_DROPPING), "dropping");
    cr_assert_str_eq(hc_ramp_limit_name(HC_RAMP_LIMIT_GENERATOR), "generator");
    cr_assert_str_eq(hc_ramp_limit_name(HC_RAMP_LIMIT_NONE), "none");
}

Test(ramp, equal_keys_match_oldest_first_and_once)
{
    hc_ramp_match *m;
    int64_t t;
    cr_assert_eq(hc_ramp_match_new(&m, NULL), HC_OK);
    cr_assert_eq(hc_ramp_match_input(m, "dev|1", 5, 100, NULL), HC_OK);
    cr_assert_eq(hc_ramp_match_input(m, "dev|2", 5, 200, NULL), HC_OK);
    cr_assert_eq(hc_ramp_match_input(m, "dev|1", 5, 300, NULL), HC_OK);
    cr_assert(hc_ramp_match_by_key(m, "dev|1", 5, &t));
    cr_assert_eq(t, 100);
    cr_assert(hc_ramp_match_by_key(m, "dev|1", 5, &t));
    cr_assert_eq(t, 300);
    cr_assert_not(hc_ramp_match_by_key(m, "dev|1", 5, &t));
    cr_assert_eq(hc_ramp_match_unmatched(m), 1);
    hc_ramp_match_free(m);
}

Test(ramp, many_keys_survive_the_table_growing)
{
    hc_ramp_match *m;
    char key[32];
    int64_t t;
    cr_assert_eq(hc_ramp_match_new(&m, NULL), HC_OK);
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof(key), "d%d|%d", i % 37, i);
        cr_assert_eq(hc_ramp_match_input(m, key, (size_t)n, i, NULL), HC_OK);
    }
    for (int i = 19999; i >= 0; i -= 7) {
        int n = snprintf(key, sizeof(key), "d%d|%d", i % 37, i);
        cr_assert(hc_ramp_match_by_key(m, key, (size_t)n, &t));
        cr_assert_eq(t, i);
    }
    cr_assert_eq(hc_ramp_match_inputs(m), 20000);
    hc_ramp_match_free(m);
}

Test(ramp, position_matching_answers_the_nth_input)
{
    hc_ramp_match *m;
    int64_t t;
    cr_assert_eq(hc_ramp_match_new(&m, NULL), HC_OK);
    hc_ramp_match_input(m, NULL, 0, 10, NULL);
    hc_ramp_match_input(m, NULL, 0, 20, NULL);
    cr_assert(hc_ramp_match_by_position(m, 1, &t));
    cr_assert_eq(t, 20);
    cr_assert_not(hc_ramp_match_by_position(m, 2, &t));
    cr_assert_eq(hc_ramp_match_unmatched(m), 0);
    hc_ramp_match_free(m);
}

/*
 * hrecord's pure parts: the Haltian filters built from --kind/--type/--device, and the
 * reconnect backoff (doubling, cap, jitter bounds).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hrecord.h"

#define PREFIX "haltian-iot/events/int-1/key-1/"

static char **filters;
static size_t n_filters;

static void free_filters(void)
{
    for (size_t i = 0; i < n_filters; i++)
        free(filters[i]);
    free(filters);
    filters = NULL;
    n_filters = 0;
}

static hc_err build(const char *const *kinds, size_t nk, const char *const *types, size_t nt,
                    const char *const *devices, size_t nd, hc_error *err)
{
    free_filters();
    return hrecord_build_filters("int-1", "key-1", kinds, nk, types, nt, devices, nd, 100, &filters,
                                 &n_filters, err);
}

Test(hrecord, no_kind_type_or_device_gives_the_whole_key_prefix)
{
    cr_assert_eq(build(NULL, 0, NULL, 0, NULL, 0, NULL), HC_OK);
    cr_assert_eq(n_filters, 1);
    cr_assert_str_eq(filters[0], PREFIX "#");
    free_filters();
}

Test(hrecord, trailing_unspecified_levels_fold_into_one_hash_and_middle_ones_become_plus)
{
    const char *kinds[] = {"measurements"};
    const char *devices[] = {"dev-1"};

    cr_assert_eq(build(kinds, 1, NULL, 0, NULL, 0, NULL), HC_OK);
    cr_assert_eq(n_filters, 1);
    cr_assert_str_eq(filters[0], PREFIX "measurements/#");
    cr_assert_eq(build(NULL, 0, NULL, 0, devices, 1, NULL), HC_OK);
    cr_assert_str_eq(filters[0], PREFIX "+/+/dev-1");
    cr_assert_eq(build(kinds, 1, NULL, 0, devices, 1, NULL), HC_OK);
    cr_assert_str_eq(filters[0], PREFIX "measurements/+/dev-1");
    free_filters();
}

Test(hrecord, a_type_alias_subscribes_the_canonical_name_and_the_alias)
{
    const char *types[] = {"ambient_temperature"};

    cr_assert_eq(build(NULL, 0, types, 1, NULL, 0, NULL), HC_OK);
    cr_assert_eq(n_filters, 2);
    cr_assert_str_eq(filters[0], PREFIX "+/ambientTemperature/#");
    cr_assert_str_eq(filters[1], PREFIX "+/ambient_temperature/#");
    free_filters();
}

Test(hrecord, a_canonical_type_is_subscribed_once)
{
    const char *types[] = {"co2", "co2"};
    const char *kinds[] = {"measurements"};

    cr_assert_eq(build(kinds, 1, types, 2, NULL, 0, NULL), HC_OK);
    cr_assert_eq(n_filters, 1);
    cr_assert_str_eq(filters[0], PREFIX "measurements/co2/#");
    free_filters();
}

Test(hrecord, kinds_types_and_devices_combine_as_a_cross_product)
{
    const char *kinds[] = {"measurements", "notifications"};
    const char *types[] = {"co2"};
    const char *devices[] = {"d1", "d2", "d3"};

    cr_assert_eq(build(kinds, 2, types, 1, devices, 3, NULL), HC_OK);
    cr_assert_eq(n_filters, 6);
    cr_assert_str_eq(filters[0], PREFIX "measurements/co2/d1");
    cr_assert_str_eq(filters[5], PREFIX "notifications/co2/d3");
    free_filters();
}

Test(hrecord, segments_with_wildcards_or_slashes_and_too_many_filters_are_rejected)
{
    const char *bad[] = {"a/b"}, *plus[] = {"+"}, *empty[] = {""};
    const char *many[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"};
    hc_error err = HC_ERROR_INIT;

    cr_assert_eq(build(bad, 1, NULL, 0, NULL, 0, &err), HC_ERR_INVALID);
    cr_assert(strstr(err.message, "--kind") != NULL, "%s", err.message);
    cr_assert_eq(build(NULL, 0, plus, 1, NULL, 0, &err), HC_ERR_INVALID);
    cr_assert_eq(build(NULL, 0, NULL, 0, empty, 1, &err), HC_ERR_INVALID);
    cr_assert_eq(build(many, 11, many, 11, NULL, 0, &err), HC_ERR_INVALID);
    cr_assert(strstr(err.message, "121 filters") != NULL, "%s", err.message);
    cr_assert_eq(n_filters, 0);
}

Test(hrecord, backoff_doubles_from_the_minimum_up_to_the_cap)
{
    const int64_t s = 1000000000LL;

    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 0, 1.0), s);
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 1, 1.0), 2 * s);
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 5, 1.0), 32 * s);
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 6, 1.0), 60 * s);
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 1000, 1.0), 60 * s);
}

Test(hrecord, backoff_jitter_stays_between_half_and_the_whole_step)
{
    const int64_t s = 1000000000LL;

    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 2, 0.0), 2 * s);
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 2, 0.5), 3 * s);
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 2, -3.0), 2 * s);
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 2, 7.0), 4 * s);
}

Test(hrecord, backoff_jitter_never_goes_below_the_minimum)
{
    const int64_t s = 1000000000LL;

    for (unsigned attempt = 0; attempt < 8; attempt++)
        for (double j = 0.0; j <= 1.0; j += 0.125) {
            int64_t d = hrecord_backoff_ns(3 * s, 10 * s, attempt, j);

            cr_assert_geq(d, 3 * s, "attempt %u, jitter %g: %lld ns below --reconnect-min",
                          attempt, j, (long long)d);
            cr_assert_leq(d, 10 * s, "attempt %u, jitter %g: above --reconnect-max", attempt, j);
        }
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 0, 0.0), s);
    cr_assert_eq(hrecord_backoff_ns(s, 60 * s, 1, 0.0), s);
}

Test(hrecord, the_default_name_gets_a_number_when_taken)
{
    char buf[64];

    hrecord_output_variant("hkit-20260205T103045Z.db", 1, buf, sizeof(buf));
    cr_assert_str_eq(buf, "hkit-20260205T103045Z.db");
    hrecord_output_variant("hkit-20260205T103045Z.db", 2, buf, sizeof(buf));
    cr_assert_str_eq(buf, "hkit-20260205T103045Z-2.db");
    hrecord_output_variant("hkit-20260205T103045Z.db", 17, buf, sizeof(buf));
    cr_assert_str_eq(buf, "hkit-20260205T103045Z-17.db");
}

Test(hrecord, waiting_for_a_message_never_passes_the_open_batch_deadline)
{
    /* the flush bound: an idle recorder wakes when the batch is due, not up to 50 ms later */
    cr_assert_eq(hrecord_receive_timeout_ms(INT64_MAX), 50, "no open batch");
    cr_assert_eq(hrecord_receive_timeout_ms(200000000), 50);
    cr_assert_eq(hrecord_receive_timeout_ms(30000000), 30);
    cr_assert_eq(hrecord_receive_timeout_ms(29500000), 30, "rounded up: wakes once due");
    cr_assert_eq(hrecord_receive_timeout_ms(1), 1);
    cr_assert_eq(hrecord_receive_timeout_ms(0), 1, "due now: flushed before waiting");
}

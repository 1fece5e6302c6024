/*
 * Unit tests of the time module: RFC 3339 parsing (forms, zones, ranges, leap years, bad input),
 * formatting at every precision, round trips, and the two clocks.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "hcore/timefmt.h"

static int64_t parse_ok(const char *text)
{
    int64_t ns = -1;
    hc_error err = HC_ERROR_INIT;
    hc_err rc = hc_time_parse_rfc3339(text, strlen(text), &ns, &err);

    cr_assert_eq(rc, HC_OK, "'%s' should parse: %s", text, err.message);
    return ns;
}

static void parse_bad(const char *text)
{
    int64_t ns = 12345;
    hc_error err = HC_ERROR_INIT;
    hc_err rc = hc_time_parse_rfc3339(text, strlen(text), &ns, &err);

    cr_assert_eq(rc, HC_ERR_PARSE, "'%s' should be rejected", text);
    cr_assert_eq(ns, 12345, "output must be untouched on error");
    cr_assert_neq(err.message[0], '\0', "an error needs a reason");
}

static const char *fmt(int64_t ns, int digits)
{
    static char buf[64];

    return hc_time_format_rfc3339(ns, digits, buf, sizeof(buf));
}

Test(timefmt, epoch_parses_to_zero)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
}

Test(timefmt, documented_haltian_forms_parse_to_exact_ns)
{
    cr_assert_eq(parse_ok("2026-02-05T10:30:45.123Z"), 1770287445123000000LL);
    cr_assert_eq(parse_ok("2024-03-07T06:53:46.059000+00:00"), 1709794426059000000LL);
    cr_assert_eq(parse_ok("2026-01-28T08:52:11Z"), 1769590331000000000LL);
    cr_assert_eq(parse_ok("2025-01-28T10:30:00.000Z"), 1738060200000000000LL);
}

Test(timefmt, every_fraction_length_from_one_to_nine_digits_is_scaled)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.1Z"), 100000000);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.12Z"), 120000000);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.123Z"), 123000000);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.1234Z"), 123400000);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.12345Z"), 123450000);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.123456Z"), 123456000);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.1234567Z"), 123456700);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.12345678Z"), 123456780);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.123456789Z"), 123456789);
}

Test(timefmt, digits_beyond_nanoseconds_are_truncated)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.1234567899999Z"), 123456789);
}

Test(timefmt, lower_case_t_and_z_and_space_separator_are_accepted)
{
    int64_t ref = parse_ok("2026-02-05T10:30:45.123Z");

    cr_assert_eq(parse_ok("2026-02-05t10:30:45.123z"), ref);
    cr_assert_eq(parse_ok("2026-02-05 10:30:45.123Z"), ref);
}

Test(timefmt, positive_offset_is_subtracted)
{
    cr_assert_eq(parse_ok("2026-02-05T12:30:45+02:00"), parse_ok("2026-02-05T10:30:45Z"));
    cr_assert_eq(parse_ok("2026-02-05T16:00:45+05:30"), parse_ok("2026-02-05T10:30:45Z"));
}

Test(timefmt, negative_offset_crossing_midnight_moves_to_the_next_day)
{
    /* 22:30 at -05:00 is 03:30 UTC the next day. */
    cr_assert_eq(parse_ok("2026-02-05T22:30:00-05:00"), parse_ok("2026-02-06T03:30:00Z"));
    cr_assert_str_eq(fmt(parse_ok("2026-02-05T22:30:00-05:00"), 0), "2026-02-06T03:30:00Z");
}

Test(timefmt, positive_offset_crossing_midnight_moves_to_the_previous_day)
{
    cr_assert_str_eq(fmt(parse_ok("2026-03-01T01:00:00+03:00"), 0), "2026-02-28T22:00:00Z");
}

Test(timefmt, offsets_crossing_a_year_boundary_change_the_year)
{
    cr_assert_str_eq(fmt(parse_ok("2025-12-31T23:30:00-01:00"), 3), "2026-01-01T00:30:00.000Z");
    cr_assert_str_eq(fmt(parse_ok("2026-01-01T00:15:00+00:30"), 3), "2025-12-31T23:45:00.000Z");
}

Test(timefmt, minus_zero_offset_equals_utc)
{
    cr_assert_eq(parse_ok("2026-02-05T10:30:45-00:00"), parse_ok("2026-02-05T10:30:45Z"));
}

Test(timefmt, leap_day_is_valid_only_in_leap_years)
{
    cr_assert_str_eq(fmt(parse_ok("2024-02-29T12:00:00Z"), 0), "2024-02-29T12:00:00Z");
    cr_assert_str_eq(fmt(parse_ok("2000-02-29T00:00:00Z"), 0), "2000-02-29T00:00:00Z");
    parse_bad("2023-02-29T12:00:00Z");
    parse_bad("1900-02-29T12:00:00Z");
    parse_bad("2100-02-29T12:00:00Z");
    parse_bad("2024-02-30T12:00:00Z");
}

Test(timefmt, day_after_leap_day_is_march_first)
{
    cr_assert_eq(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-29T00:00:00Z"),
                 86400LL * 1000000000LL);
}

Test(timefmt, thirty_day_months_reject_day_31)
{
    parse_bad("2026-04-31T00:00:00Z");
    parse_bad("2026-06-31T00:00:00Z");
    parse_bad("2026-09-31T00:00:00Z");
    parse_bad("2026-11-31T00:00:00Z");
    parse_ok("2026-12-31T00:00:00Z");
}

Test(timefmt, out_of_range_fields_are_rejected)
{
    parse_bad("2026-13-01T00:00:00Z");
    parse_bad("2026-00-01T00:00:00Z");
    parse_bad("2026-01-00T00:00:00Z");
    parse_bad("2026-01-32T00:00:00Z");
    parse_bad("2026-01-01T24:00:00Z");
    parse_bad("2026-01-01T00:60:00Z");
    parse_bad("2026-01-01T00:00:61Z");
    parse_bad("2026-01-01T00:00:00+24:00");
    parse_bad("2026-01-01T00:00:00+01:60");
}

Test(timefmt, leap_second_lands_on_the_next_second)
{
    cr_assert_eq(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2017-01-01T00:00:00Z"));
}

Test(timefmt, malformed_text_is_rejected)
{
    parse_bad("");
    parse_bad("2026-02-05");
    parse_bad("2026-02-05T10:30:45");          /* no zone */
    parse_bad("2026-02-05T10:30:45.Z");        /* dot without digits */
    parse_bad("2026-02-05T10:30:45.123");      /* no zone */
    parse_bad("2026-02-05T10:30:45.123Zjunk"); /* trailing text */
    parse_bad("2026-02-05T10:30:45+0200");     /* offset without colon */
    parse_bad("2026-02-05T10:30:45+02");
    parse_bad("2026-02-05X10:30:45Z");
    parse_bad("2026/02/05T10:30:45Z");
    parse_bad("26-02-05T10:30:45Z");
    parse_bad("2026-2-5T10:30:45Z");
    parse_bad("2026-02-05T1:30:45Z");
    parse_bad("２026-02-05T10:30:45Z");
    parse_bad("+2026-02-05T10:30:45Z");
    parse_bad("2026-02-05T10:30:45 Z");
}

Test(timefmt, length_limits_the_text_read)
{
    int64_t ns;
    const char *text = "2026-02-05T10:30:45Z trailing";

    cr_assert_eq(hc_time_parse_rfc3339(text, 20, &ns, NULL), HC_OK);
    cr_assert_eq(ns, parse_ok("2026-02-05T10:30:45Z"));
    cr_assert_eq(hc_time_parse_rfc3339(text, 19, &ns, NULL), HC_ERR_PARSE);
}

Test(timefmt, years_outside_int64_nanoseconds_are_rejected)
{
    parse_bad("9999-12-31T23:59:59Z");
    parse_bad("0000-01-01T00:00:00Z");
    parse_ok("2262-01-01T00:00:00Z");
    parse_ok("1678-01-01T00:00:00Z");
}

Test(timefmt, dates_before_the_epoch_are_negative)
{
    cr_assert_eq(parse_ok("1969-12-31T23:59:59Z"), -1000000000LL);
    cr_assert_eq(parse_ok("1969-12-31T23:59:59.999Z"), -1000000LL);
}

Test(timefmt, null_arguments_are_invalid_not_a_crash)
{
    int64_t ns;

    cr_assert_eq(hc_time_parse_rfc3339(NULL, 0, &ns, NULL), HC_ERR_INVALID);
    cr_assert_eq(hc_time_parse_rfc3339("2026-02-05T10:30:45Z", 20, NULL, NULL), HC_ERR_INVALID);
}

Test(timefmt, format_writes_each_precision)
{
    int64_t ns = parse_ok("2026-02-05T10:30:45.123456789Z");

    cr_assert_str_eq(fmt(ns, 0), "2026-02-05T10:30:45Z");
    cr_assert_str_eq(fmt(ns, 3), "2026-02-05T10:30:45.123Z");
    cr_assert_str_eq(fmt(ns, 6), "2026-02-05T10:30:45.123456Z");
    cr_assert_str_eq(fmt(ns, 9), "2026-02-05T10:30:45.123456789Z");
}

Test(timefmt, format_truncates_rather_than_rounds)
{
    cr_assert_str_eq(fmt(parse_ok("2026-02-05T10:30:45.999999Z"), 3), "2026-02-05T10:30:45.999Z");
}

Test(timefmt, format_pads_small_fields_with_zeros)
{
    cr_assert_str_eq(fmt(parse_ok("2001-02-03T04:05:06.007Z"), 3), "2001-02-03T04:05:06.007Z");
}

Test(timefmt, format_before_the_epoch_uses_floor_division)
{
    cr_assert_str_eq(fmt(-1, 9), "1969-12-31T23:59:59.999999999Z");
    cr_assert_str_eq(fmt(-1000000, 3), "1969-12-31T23:59:59.999Z");
    cr_assert_str_eq(fmt(0, 3), "1970-01-01T00:00:00.000Z");
}

Test(timefmt, format_handles_the_extremes_of_int64)
{
    cr_assert_str_eq(fmt(INT64_MAX, 9), "2262-04-11T23:47:16.854775807Z");
    cr_assert_str_eq(fmt(INT64_MIN, 9), "1677-09-21T00:12:43.145224192Z");
}

Test(timefmt, format_clamps_digits_and_truncates_to_the_buffer)
{
    char small[11];

    cr_assert_str_eq(fmt(0, -4), "1970-01-01T00:00:00Z");
    cr_assert_str_eq(fmt(0, 42), "1970-01-01T00:00:00.000000000Z");
    hc_time_format_rfc3339(0, 3, small, sizeof(small));
    cr_assert_str_eq(small, "1970-01-01");
}

Test(timefmt, parse_and_format_round_trip_across_centuries_and_leap_years)
{
    /* Every day from 1900 to 2200 (step 1 day + 7 s, so the time of day varies as well). */
    char buf[64];
    int64_t step = 86407LL * 1000000000LL;

    for (int64_t ns = parse_ok("1900-01-01T00:00:00Z"); ns < parse_ok("2200-01-01T00:00:00Z");
         ns += step) {
        int64_t back;
        int64_t want = ns + 123000000;

        hc_time_format_rfc3339(want, 3, buf, sizeof(buf));
        cr_assert_eq(hc_time_parse_rfc3339(buf, strlen(buf), &back, NULL), HC_OK, "%s", buf);
        cr_assert_eq(back, want, "%s", buf);
    }
}

Test(timefmt, clocks_are_plausible_and_monotonic_does_not_go_back)
{
    int64_t a = hc_time_monotonic_ns(), b = hc_time_monotonic_ns();
    int64_t now = hc_time_realtime_ns();

    cr_assert_geq(b, a);
    cr_assert_gt(now, parse_ok("2020-01-01T00:00:00Z"));
    cr_assert_lt(now, parse_ok("2200-01-01T00:00:00Z"));
}

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
}

/* Issue 10 item 11: 1678 and 2262 parsed, but their difference overflowed (UBSan, negative span).
 */
Test(timefmt, valid_times_outside_1900_to_2100_say_they_are_out_of_range)
{
    const char *far[] = {"2262-01-01T00:00:00Z", "1678-01-01T00:00:00Z", "2101-01-01T00:00:00Z",
                         "1899-12-31T23:59:59.999999999Z", "1900-01-01T00:00:00+00:01"};
    for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++) {
        hc_error err = HC_ERROR_INIT;
        int64_t ns = 7;
        cr_assert_eq(hc_time_parse_rfc3339(far[i], strlen(far[i]), &ns, &err), HC_ERR_PARSE, "%s",
                     far[i]);
        cr_assert_str_eq(err.message, "time out of range: hkit handles 1900-01-01T00:00:00Z to "
                                      "2100-12-31T23:59:59Z");
        cr_assert_eq(ns, 7);
    }
    cr_assert_eq(parse_ok("1900-01-01T00:00:00Z"), HC_TIME_MIN_NS);
    cr_assert_eq(parse_ok("2100-12-31T23:59:59.999999999Z"), HC_TIME_MAX_NS);
    cr_assert_eq(parse_ok("2101-01-01T00:30:00+01:00"), HC_TIME_MAX_NS + 1 - 1800000000000LL);
    cr_assert(hc_time_in_range(HC_TIME_MIN_NS) && hc_time_in_range(HC_TIME_MAX_NS));
    cr_assert(!hc_time_in_range(HC_TIME_MIN_NS - 1) && !hc_time_in_range(HC_TIME_MAX_NS + 1));
    /* any two accepted times differ by something an int64 holds */
    cr_assert_lt((double)HC_TIME_MAX_NS - (double)HC_TIME_MIN_NS, 9.2e18);
}

static int64_t duration_ok(const char *text)
{
    int64_t ns = -1;
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_duration_parse(text, &ns, &err), HC_OK, "'%s': %s", text, err.message);
    return ns;
}

static const char *duration_bad(const char *text)
{
    static hc_error err;
    int64_t ns = 42;
    memset(&err, 0, sizeof(err));
    cr_assert_eq(hc_duration_parse(text, &ns, &err), HC_ERR_PARSE, "'%s' should be refused", text);
    cr_assert_eq(ns, 42);
    return err.message;
}

Test(timefmt, durations_take_a_number_and_every_documented_unit)
{
    cr_assert_eq(duration_ok("250us"), 250000);
    cr_assert_eq(duration_ok("250ms"), 250000000);
    cr_assert_eq(duration_ok("10s"), 10000000000LL);
    cr_assert_eq(duration_ok("1.5s"), 1500000000LL);
    cr_assert_eq(duration_ok("5m"), 300000000000LL);
    cr_assert_eq(duration_ok("2h"), 7200000000000LL);
    cr_assert_eq(duration_ok("1d"), 86400000000000LL);
    cr_assert_eq(duration_ok("0.001us"), 1);
    cr_assert_eq(duration_ok("0.1h"), 360000000000LL);
    cr_assert_eq(duration_ok("0"), 0);
    cr_assert_eq(duration_ok("0.0"), 0);
    cr_assert_eq(duration_ok("0s"), 0);
}

/* Issue 11 item 20: bare numbers and "++5s" were accepted, undocumented; "us" was not listed. */
Test(timefmt, durations_refuse_what_the_documentation_does_not_describe)
{
    cr_assert_str_eq(duration_bad("5"), "missing unit (use us, ms, s, m, h or d)");
    cr_assert_str_eq(duration_bad("1.5"), "missing unit (use us, ms, s, m, h or d)");
    cr_assert_str_eq(duration_bad("5x"), "unknown unit 'x' (use us, ms, s, m, h or d)");
    cr_assert_str_eq(duration_bad("5 s"), "unknown unit ' s' (use us, ms, s, m, h or d)");
    cr_assert_str_eq(duration_bad("5S"), "unknown unit 'S' (use us, ms, s, m, h or d)");
    cr_assert_str_eq(duration_bad("1e3ms"), "unknown unit 'e3ms' (use us, ms, s, m, h or d)");
    cr_assert_str_eq(duration_bad("0x10s"), "unknown unit 'x10s' (use us, ms, s, m, h or d)");
    const char *shape[] = {"+5s", "++5s", "-5s", " 5s", "", "s", ".5s", "5.s", "inf", "nan"};
    for (size_t i = 0; i < sizeof(shape) / sizeof(shape[0]); i++)
        cr_assert_str_eq(duration_bad(shape[i]), "expected e.g. 250ms, 10s, 5m, 2h", "'%s'",
                         shape[i]);
    cr_assert_str_eq(duration_bad("106752d"), "too long");
    cr_assert_str_eq(duration_bad("99999999999999999999s"), "too long");
    cr_assert_eq(duration_ok("106751d"), 106751LL * 86400000000000LL);
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
    /* Every day from 1900 to 2100 (step 1 day + 7 s, so the time of day varies as well). */
    char buf[64];
    int64_t step = 86407LL * 1000000000LL;

    for (int64_t ns = parse_ok("1900-01-01T00:00:00Z"); ns < parse_ok("2100-12-31T00:00:00Z");
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
    cr_assert_lt(now, parse_ok("2100-12-31T00:00:00Z"));
}

/*
 * Clocks and timestamps: RFC 3339 parsing (0-9 fractional digits, Z or +hh:mm / -hh:mm) and
 * formatting, plus the two clocks hkit records.
 */
#ifndef HCORE_TIMEFMT_H
#define HCORE_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CLOCK_REALTIME in ns since the Unix epoch. */
int64_t hc_time_realtime_ns(void);

/* CLOCK_MONOTONIC in ns. */
int64_t hc_time_monotonic_ns(void);

/*
 * The times hkit accepts: 1900-01-01T00:00:00Z to 2100-12-31T23:59:59.999999999Z, in ns since
 * the epoch. int64 ns would reach 1677 to 2262, but then the difference of two times (a span, a
 * replay gap) could overflow; within this range any difference or sum of two times fits.
 */
#define HC_TIME_MIN_NS (-2208988800LL * 1000000000LL)
#define HC_TIME_MAX_NS (4133980800LL * 1000000000LL - 1)

/* True when HC_TIME_MIN_NS <= ns <= HC_TIME_MAX_NS. */
bool hc_time_in_range(int64_t ns);

/*
 * Parses an RFC 3339 timestamp ("2026-02-05T10:30:45.123Z", "2024-03-07T06:53:46.059000+00:00",
 * "2026-01-28T08:52:11Z"; 't'/' ' separators and lower-case 'z' accepted) into ns since the
 * epoch (UTC). Fractional digits beyond 9 are truncated. Rejects out-of-range fields
 * (month 13, Feb 30, hour 24...) and trailing text (HC_ERR_PARSE), and valid times outside
 * HC_TIME_MIN_NS..HC_TIME_MAX_NS (also HC_ERR_PARSE, "time out of range: ..."). *ns_out is only
 * written on success.
 */
hc_err hc_time_parse_rfc3339(const char *text, size_t len, int64_t *ns_out, hc_error *err);

/*
 * Formats ns since the epoch as RFC 3339 UTC with `digits` fractional digits (0, 3, 6 or 9),
 * e.g. digits=3 -> "2026-02-05T10:30:45.123Z". buf needs at least 36 bytes. Returns buf.
 */
char *hc_time_format_rfc3339(int64_t ns, int digits, char *buf, size_t size);

/*
 * Parses a duration: a decimal number and a unit, `us`, `ms`, `s`, `m`, `h` or `d` ("250ms",
 * "1.5h"); a bare "0" (or "0.0") is zero. Nothing else: no sign, no exponent, no blank, no bare
 * non-zero number. Fractions below 1 ns are truncated. Errors (for "invalid duration 'X' for
 * OPTION: <reason>"): HC_ERR_PARSE "expected e.g. 250ms, 10s, 5m, 2h", "missing unit (use us,
 * ms, s, m, h or d)", "unknown unit 'x' (use us, ms, s, m, h or d)", "too long"
 * (over 2^63 ns, about 292 years).
 */
hc_err hc_duration_parse(const char *text, int64_t *ns_out, hc_error *err);

#ifdef __cplusplus
}
#endif
#endif

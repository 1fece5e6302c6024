/*
 * Clocks and timestamps: RFC 3339 parsing (0-9 fractional digits, Z or +hh:mm / -hh:mm) and
 * formatting, plus the two clocks hkit records.
 */
#ifndef HCORE_TIMEFMT_H
#define HCORE_TIMEFMT_H

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
 * Parses an RFC 3339 timestamp ("2026-02-05T10:30:45.123Z", "2024-03-07T06:53:46.059000+00:00",
 * "2026-01-28T08:52:11Z"; 't'/' ' separators and lower-case 'z' accepted) into ns since the
 * epoch (UTC). Fractional digits beyond 9 are truncated. Rejects out-of-range fields
 * (month 13, Feb 30, hour 24...) and trailing text. Returns HC_OK or HC_ERR_PARSE.
 */
hc_err hc_time_parse_rfc3339(const char *text, size_t len, int64_t *ns_out, hc_error *err);

/*
 * Formats ns since the epoch as RFC 3339 UTC with `digits` fractional digits (0, 3, 6 or 9),
 * e.g. digits=3 -> "2026-02-05T10:30:45.123Z". buf needs at least 36 bytes. Returns buf.
 */
char *hc_time_format_rfc3339(int64_t ns, int digits, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif

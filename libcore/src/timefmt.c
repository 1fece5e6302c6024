/*
 * Clocks and RFC 3339 timestamps. Parsing and formatting use days-from-civil arithmetic on the
 * proleptic Gregorian calendar, so the result never depends on the process's time zone, locale
 * or on timegm() being available. Timestamps are int64 ns since the Unix epoch, which covers the
 * years 1677 to 2262; hkit accepts only 1900 to 2100 (HC_TIME_MIN_NS..HC_TIME_MAX_NS), so that the
 * difference and the sum of any two accepted times still fit in an int64 (see timefmt.h).
 */
#include "hcore/timefmt.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL

int64_t hc_time_realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t hc_time_monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* Days since 1970-01-01 of a civil date; the year starts in March so Feb 29 is a year's end. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y_out, int *m_out, int *d_out)
{
    int64_t era, doe, yoe, y, doy, mp;
    int m;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *d_out = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m_out = m;
    *y_out = y + (m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n ASCII digits at s; false on anything else. */
static bool read_digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

hc_err hc_time_parse_rfc3339(const char *text, size_t len, int64_t *ns_out, hc_error *err)
{
    int year, month, day, hour, minute, second, off_h = 0, off_m = 0, off_sign = 0;
    int64_t frac_ns = 0, secs;
    size_t pos;

    if (!text || !ns_out)
        return hc_error_set(err, HC_ERR_INVALID, "no timestamp given");
    /* Shortest valid form: "YYYY-MM-DDTHH:MM:SSZ". */
    if (len < 20)
        return hc_error_set(err, HC_ERR_PARSE, "timestamp too short");
    if (!read_digits(text, 4, &year) || text[4] != '-' || !read_digits(text + 5, 2, &month) ||
        text[7] != '-' || !read_digits(text + 8, 2, &day))
        return hc_error_set(err, HC_ERR_PARSE, "bad date, expected YYYY-MM-DD");
    if (text[10] != 'T' && text[10] != 't' && text[10] != ' ')
        return hc_error_set(err, HC_ERR_PARSE, "bad date-time separator");
    if (!read_digits(text + 11, 2, &hour) || text[13] != ':' ||
        !read_digits(text + 14, 2, &minute) || text[16] != ':' ||
        !read_digits(text + 17, 2, &second))
        return hc_error_set(err, HC_ERR_PARSE, "bad time, expected hh:mm:ss");
    pos = 19;
    if (text[pos] == '.') {
        size_t start = ++pos;
        int64_t scale = NS_PER_SEC / 10;

        while (pos < len && text[pos] >= '0' && text[pos] <= '9') {
            /* Digits beyond nanoseconds are read and dropped (truncation). */
            frac_ns += (text[pos] - '0') * scale;
            scale /= 10;
            pos++;
        }
        if (pos == start)
            return hc_error_set(err, HC_ERR_PARSE, "no digits after the decimal point");
    }
    if (pos >= len)
        return hc_error_set(err, HC_ERR_PARSE, "missing time zone (Z or +hh:mm)");
    if (text[pos] == 'Z' || text[pos] == 'z') {
        pos++;
    } else if (text[pos] == '+' || text[pos] == '-') {
        off_sign = text[pos] == '-' ? -1 : 1;
        if (len - pos < 6 || !read_digits(text + pos + 1, 2, &off_h) || text[pos + 3] != ':' ||
            !read_digits(text + pos + 4, 2, &off_m))
            return hc_error_set(err, HC_ERR_PARSE, "bad time zone offset, expected +hh:mm");
        pos += 6;
    } else {
        return hc_error_set(err, HC_ERR_PARSE, "missing time zone (Z or +hh:mm)");
    }
    if (pos != len)
        return hc_error_set(err, HC_ERR_PARSE, "trailing text after the timestamp");
    if (month < 1 || month > 12)
        return hc_error_set(err, HC_ERR_PARSE, "month %d out of range", month);
    if (day < 1 || day > days_in_month(year, month))
        return hc_error_set(err, HC_ERR_PARSE, "day %d out of range for %04d-%02d", day, year,
                            month);
    /* Second 60 is RFC 3339's leap second; like POSIX time it lands on the next second. */
    if (hour > 23 || minute > 59 || second > 60)
        return hc_error_set(err, HC_ERR_PARSE, "time %02d:%02d:%02d out of range", hour, minute,
                            second);
    if (off_h > 23 || off_m > 59)
        return hc_error_set(err, HC_ERR_PARSE, "time zone offset out of range");

    /* Years have 4 digits, so none of this can overflow; the range check comes before any ns. */
    secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    secs -= off_sign * (off_h * 3600 + off_m * 60);
    if (secs < HC_TIME_MIN_NS / NS_PER_SEC || secs > HC_TIME_MAX_NS / NS_PER_SEC)
        return hc_error_set(err, HC_ERR_PARSE,
                            "time out of range: hkit handles 1900-01-01T00:00:00Z to "
                            "2100-12-31T23:59:59Z");
    *ns_out = secs * NS_PER_SEC + frac_ns;
    return HC_OK;
}

static char *put_num(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

char *hc_time_format_rfc3339(int64_t ns, int digits, char *buf, size_t size)
{
    char tmp[40];
    char *p = tmp;
    int64_t secs, frac, days, tod, year;
    int month, day;
    size_t n;

    if (!buf || size == 0)
        return buf;
    if (digits < 0)
        digits = 0;
    if (digits > 9)
        digits = 9;
    /* Floor division so instants before 1970 keep a positive fraction. */
    secs = ns / NS_PER_SEC;
    frac = ns % NS_PER_SEC;
    if (frac < 0) {
        frac += NS_PER_SEC;
        secs--;
    }
    days = secs / 86400;
    tod = secs % 86400;
    if (tod < 0) {
        tod += 86400;
        days--;
    }
    civil_from_days(days, &year, &month, &day);
    p = put_num(p, year, 4);
    *p++ = '-';
    p = put_num(p, month, 2);
    *p++ = '-';
    p = put_num(p, day, 2);
    *p++ = 'T';
    p = put_num(p, tod / 3600, 2);
    *p++ = ':';
    p = put_num(p, tod / 60 % 60, 2);
    *p++ = ':';
    p = put_num(p, tod % 60, 2);
    if (digits > 0) {
        int64_t f = frac;

        for (int i = digits; i < 9; i++)
            f /= 10;
        *p++ = '.';
        p = put_num(p, f, digits);
    }
    *p++ = 'Z';
    n = (size_t)(p - tmp);
    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[i];
    buf[n] = '\0';
    return buf;
}

bool hc_time_in_range(int64_t ns)
{
    return ns >= HC_TIME_MIN_NS && ns <= HC_TIME_MAX_NS;
}

/* Units of a duration, longest name first so "ms" is not read as "m" followed by "s". */
static const struct {
    const char *name;
    int64_t ns;
} duration_units[] = {
    {"us", 1000LL},         {"ms", 1000000LL},        {"s", NS_PER_SEC},
    {"m", 60 * NS_PER_SEC}, {"h", 3600 * NS_PER_SEC}, {"d", 86400 * NS_PER_SEC},
};

hc_err hc_duration_parse(const char *text, int64_t *ns_out, hc_error *err)
{
    const char *p = text, *unit;
    int64_t whole = 0, frac_num = 0, frac_den = 1, scale = 0, ns;

    if (!text || !ns_out)
        return hc_error_set(err, HC_ERR_INVALID, "no duration given");
    if (*p < '0' || *p > '9')
        return hc_error_set(err, HC_ERR_PARSE, "expected e.g. 250ms, 10s, 5m, 2h");
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (INT64_MAX - 9) / 10)
            return hc_error_set(err, HC_ERR_PARSE, "too long");
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return hc_error_set(err, HC_ERR_PARSE, "expected e.g. 250ms, 10s, 5m, 2h");
        /* digits past nanoseconds of a day cannot matter; keep 12 so the sums stay exact */
        for (; *p >= '0' && *p <= '9'; p++) {
            if (frac_den < 1000000000000LL) {
                frac_num = frac_num * 10 + (*p - '0');
                frac_den *= 10;
            }
        }
    }
    unit = p;
    if (!*unit) {
        if (whole == 0 && frac_num == 0) {
            *ns_out = 0; /* zero needs no unit */
            return HC_OK;
        }
        return hc_error_set(err, HC_ERR_PARSE, "missing unit (use us, ms, s, m, h or d)");
    }
    for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
        if (strcmp(unit, duration_units[i].name) == 0)
            scale = duration_units[i].ns;
    if (!scale)
        return hc_error_set(err, HC_ERR_PARSE, "unknown unit '%s' (use us, ms, s, m, h or d)",
                            unit);
    if (whole > INT64_MAX / scale)
        return hc_error_set(err, HC_ERR_PARSE, "too long");
    ns = whole * scale;
    /* frac_num < frac_den <= 10^12 and scale <= 8.64e13: split to stay within int64 */
    {
        int64_t part =
            scale / frac_den * frac_num + (int64_t)((long double)(scale % frac_den) *
                                                    (long double)frac_num / (long double)frac_den);
        if (part > INT64_MAX - ns)
            return hc_error_set(err, HC_ERR_PARSE, "too long");
        ns += part;
    }
    *ns_out = ns;
    return HC_OK;
}

/*
 * Timestamps inside JSON payloads, found without parsing the payload: the replay engine rewrites
 * them for --rebase-time and fault injection moves them for stale, future and skew. Every other
 * byte of the payload is left as it was.
 */
#include <string.h>

#include "hcore/timefmt.h"
#include "internal.h"

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool hc__json_next_time(const unsigned char *p, size_t n, size_t *pos, size_t *start, size_t *end,
                        int64_t *ts, const char **field)
{
    size_t i = *pos;

    if (i == 0) {
        while (i < n && is_ws(p[i]))
            i++;
        if (i == n || (p[i] != '{' && p[i] != '['))
            return false;
    }
    for (; i + 13 <= n; i++) {
        size_t j, s, e;

        if (p[i] != '"' || (i > 0 && p[i - 1] == '\\'))
            continue;
        if (memcmp(p + i + 1, "measured_at\"", 12) != 0 &&
            memcmp(p + i + 1, "received_at\"", 12) != 0)
            continue;
        j = i + 13;
        while (j < n && is_ws(p[j]))
            j++;
        if (j >= n || p[j] != ':')
            continue;
        j++;
        while (j < n && is_ws(p[j]))
            j++;
        if (j >= n || p[j] != '"')
            continue;
        s = j + 1;
        for (e = s; e < n && p[e] != '"'; e++)
            ;
        if (e >= n || e - s > 40 ||
            hc_time_parse_rfc3339((const char *)p + s, e - s, ts, NULL) != HC_OK)
            continue;
        if (field)
            *field = (const char *)p + i + 1;
        *start = s;
        *end = e;
        *pos = e;
        return true;
    }
    *pos = n;
    return false;
}

int hc__time_fraction_digits(const char *text, size_t len)
{
    const char *dot = memchr(text, '.', len);
    int n = 0;

    if (!dot)
        return 0;
    for (const char *q = dot + 1; q < text + len && *q >= '0' && *q <= '9'; q++)
        n++;
    return n == 0 ? 0 : n <= 3 ? 3 : n <= 6 ? 6 : 9;
}

/*
 * Fault injection's payload rewrites (see hcore/faults.h): stale, future and skew move the
 * timestamps inside a JSON payload and leave every other byte as it was; corrupt breaks a payload
 * one of five ways (cut short, a member removed, a value of the wrong type, a byte that is not
 * UTF-8, the quotes gone). Both work on a message the stream holds (faults_stream.c) and build
 * the new payload in the stream's scratch buffer.
 */
#include "hcore/faults.h"

#include <stdio.h>
#include <string.h>

#include "faults_internal.h"
#include "hcore/timefmt.h"
#include "internal.h"

#define MAX_MEMBERS 64

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool scratch_reserve(hc_faults_stream *s, size_t need)
{
    return hc__grow((void **)&s->scratch, &s->scratch_cap, need, 1, 64);
}

/* Replaces it's payload by the len bytes of s->scratch. */
static bool payload_set(struct item *it, const unsigned char *bytes, size_t len)
{
    if (!hc__grow((void **)&it->payload, &it->payload_cap, len + 1, 1, 64))
        return false;
    memcpy(it->payload, bytes, len);
    it->o.msg.payload = it->payload;
    it->o.msg.payload_len = len;
    return true;
}

/*
 * Moves every "measured_at"/"received_at" RFC 3339 string value by delta_ns (UTC out, the same
 * fractional precision rounded up to 0, 3, 6 or 9 digits); every other byte stays.
 */
bool hc__faults_shift_times(hc_faults_stream *s, struct item *it, int64_t delta_ns)
{
    const unsigned char *p = it->payload;
    size_t n = it->o.msg.payload_len, pos = 0, start, end, copied = 0, out = 0;
    const char *field;
    int64_t ts;

    if (!scratch_reserve(s, n + 256))
        return false;
    while (hc__json_next_time(p, n, &pos, &start, &end, &ts, &field)) {
        size_t tl;
        char text[48];

        if ((delta_ns > 0 && ts > INT64_MAX - delta_ns) ||
            (delta_ns < 0 && ts < INT64_MIN - delta_ns) || !hc_time_in_range(ts + delta_ns))
            continue;
        hc_time_format_rfc3339(ts + delta_ns,
                               hc__time_fraction_digits((const char *)p + start, end - start), text,
                               sizeof(text));
        tl = strlen(text);
        if (!scratch_reserve(s, out + (start - copied) + tl + (n - end) + 1))
            return false;
        memcpy(s->scratch + out, p + copied, start - copied);
        out += start - copied;
        memcpy(s->scratch + out, text, tl);
        out += tl;
        if (it->o.times_changed++ == 0) {
            snprintf(it->o.time_field, sizeof(it->o.time_field), "%.11s", field);
            snprintf(it->o.time_before, sizeof(it->o.time_before), "%.*s", (int)(end - start),
                     (const char *)p + start);
            snprintf(it->o.time_after, sizeof(it->o.time_after), "%.39s", text);
        }
        copied = end;
    }
    if (!copied)
        return true;
    memcpy(s->scratch + out, p + copied, n - copied);
    out += n - copied;
    return payload_set(it, s->scratch, out);
}

/* Index after the JSON value at i, or 0 when it is malformed. */
static size_t skip_value(const unsigned char *p, size_t n, size_t i)
{
    int depth = 0;
    bool in_string = false;

    if (i >= n)
        return 0;
    if (p[i] != '"' && p[i] != '{' && p[i] != '[') {
        while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && !is_ws(p[i]))
            i++;
        return i;
    }
    for (; i < n; i++) {
        if (in_string) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_string = false;
            if (!in_string && depth == 0)
                return i + 1;
            continue;
        }
        if (p[i] == '"')
            in_string = true;
        else if (p[i] == '{' || p[i] == '[')
            depth++;
        else if ((p[i] == '}' || p[i] == ']') && --depth == 0)
            return i + 1;
    }
    return 0;
}

struct member {
    size_t key, value, end; /* offsets: the key's quote, the value, after the value */
};

/* The members of a top-level JSON object; 0 when the payload is no object or is malformed. */
static size_t object_members(const unsigned char *p, size_t n, struct member *m, size_t max)
{
    size_t i = 0, count = 0;

    while (i < n && is_ws(p[i]))
        i++;
    if (i >= n || p[i] != '{')
        return 0;
    i++;
    for (;;) {
        while (i < n && is_ws(p[i]))
            i++;
        if (i < n && p[i] == '}' && count == 0)
            return 0;
        if (i >= n || p[i] != '"' || count == max)
            return 0;
        m[count].key = i;
        i = skip_value(p, n, i);
        while (i && i < n && is_ws(p[i]))
            i++;
        if (!i || i >= n || p[i] != ':')
            return 0;
        i++;
        while (i < n && is_ws(p[i]))
            i++;
        m[count].value = i;
        i = skip_value(p, n, i);
        if (!i || i == m[count].value)
            return 0;
        m[count].end = i;
        count++;
        while (i < n && is_ws(p[i]))
            i++;
        if (i < n && p[i] == ',') {
            i++;
            continue;
        }
        return i < n && p[i] == '}' ? count : 0;
    }
}

/* Builds scratch = p[0..a) + mid + p[b..n). */
static bool splice(hc_faults_stream *s, struct item *it, size_t a, size_t b, const void *mid,
                   size_t mid_len)
{
    const unsigned char *p = it->payload;
    size_t n = it->o.msg.payload_len;
    if (!scratch_reserve(s, a + mid_len + (n - b) + 1))
        return false;
    memcpy(s->scratch, p, a);
    if (mid_len)
        memcpy(s->scratch + a, mid, mid_len);
    memcpy(s->scratch + a + mid_len, p + b, n - b);
    return payload_set(it, s->scratch, a + mid_len + (n - b));
}

/*
 * Breaks the payload the way r picks; a way that does not apply to this payload (no members to
 * remove, too short to cut) passes to the next. False on out of memory only.
 */
bool hc__faults_corrupt(hc_faults_stream *s, struct item *it, uint64_t r)
{
    const unsigned char *p = it->payload;
    size_t n = it->o.msg.payload_len, count;
    struct member m[MAX_MEMBERS];
    uint64_t r2 = hc__faults_mix64(r);

    count = object_members(p, n, m, MAX_MEMBERS);
    for (int t = 0; t < HC_CORRUPT__COUNT; t++) {
        enum hc_faults_corruption how =
            (enum hc_faults_corruption)((r + (uint64_t)t) % HC_CORRUPT__COUNT);
        it->o.corruption = how;
        switch (how) {
        case HC_CORRUPT_TRUNCATED:
            if (n < 2)
                continue;
            it->o.msg.payload_len = 1 + (size_t)(r2 % (n - 1));
            return true;
        case HC_CORRUPT_MEMBER_REMOVED: {
            size_t k, a, b;
            if (count == 0)
                continue;
            k = (size_t)(r2 % count);
            if (count == 1) {
                a = m[0].key;
                b = m[0].end;
            } else if (k + 1 < count) {
                a = m[k].key;
                b = m[k + 1].key;
            } else {
                a = m[k - 1].end;
                b = m[k].end;
            }
            return splice(s, it, a, b, NULL, 0);
        }
        case HC_CORRUPT_WRONG_TYPE: {
            size_t scalars[MAX_MEMBERS], ns = 0, k;
            unsigned char quoted[64];
            for (size_t j = 0; j < count; j++)
                if (p[m[j].value] != '{' && p[m[j].value] != '[' &&
                    (p[m[j].value] == '"' || m[j].end - m[j].value + 2 <= sizeof(quoted)))
                    scalars[ns++] = j;
            if (ns == 0)
                continue;
            k = scalars[r2 % ns];
            if (p[m[k].value] == '"')
                return splice(s, it, m[k].value, m[k].end, "0", 1); /* a string becomes a number */
            /* a number or literal becomes a string of its text */
            quoted[0] = '"';
            memcpy(quoted + 1, p + m[k].value, m[k].end - m[k].value);
            quoted[m[k].end - m[k].value + 1] = '"';
            return splice(s, it, m[k].value, m[k].end, quoted, m[k].end - m[k].value + 2);
        }
        case HC_CORRUPT_INVALID_UTF8: {
            /* a byte no UTF-8 text holds, inside the first string when there is one */
            static const unsigned char bad = 0xff;
            const unsigned char *q = memchr(p, '"', n);
            size_t at = q ? (size_t)(q - p) + 1 : (size_t)(r2 % (n + 1));
            return splice(s, it, at, at, &bad, 1);
        }
        case HC_CORRUPT_NOT_JSON: {
            /* the quotes gone, as a naive serialiser writes it: {measured_at:...,value:21.5} */
            size_t out = 0;
            if (!memchr(p, '"', n))
                continue;
            if (!scratch_reserve(s, n + 1))
                return false;
            for (size_t j = 0; j < n; j++)
                if (p[j] != '"')
                    s->scratch[out++] = p[j];
            return payload_set(it, s->scratch, out);
        }
        default:
            break;
        }
    }
    return true;
}

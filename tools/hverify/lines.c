/*
 * Fast input for hverify's built-in decoder path, where a million-message case must run in well
 * under two seconds and a full cJSON parse of every input line would cost as much as decoding it.
 *
 * hv_lines reads a file in large blocks and hands out its lines in place (no copy, no allocation
 * per line). hv_jsonl_simple recognises the common shape of an hkit JSON line (topic, text
 * payload and a few plain fields) in one pass, unescaping the strings in place. It is
 * deliberately narrow: it accepts a line only when hc_jsonl_next would accept it too and give
 * the same topic and payload bytes; anything else (escapes \u, control bytes, payload_b64,
 * "decoded", mosquitto lines, duplicate members, odd whitespace, bad values) is declined, and
 * the caller falls back to hc_jsonl_next, which then decides and words any error.
 */
#include "hverify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcore/timefmt.h"

#define LINES_BLOCK ((size_t)1 << 18) /* fits in L2 with what is parsed from it */

hc_err hv_lines_open(struct hv_lines *l, const char *path, hc_error *err)
{
    memset(l, 0, sizeof(*l));
    l->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (l->fd < 0) {
        int e = errno;

        hc_error_set(err, HC_ERR_IO, "cannot open '%s': %s", path, strerror(e));
        errno = e; /* callers word their own message from it */
        return HC_ERR_IO;
    }
    l->buf = malloc(LINES_BLOCK);
    if (!l->buf) {
        close(l->fd);
        l->fd = -1;
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    l->cap = LINES_BLOCK;
    return HC_OK;
}

void hv_lines_close(struct hv_lines *l)
{
    if (l->buf && l->fd >= 0)
        close(l->fd);
    free(l->buf);
    memset(l, 0, sizeof(*l));
    l->fd = -1;
}

/* Reads more bytes after buf[end]; keeps one byte spare for the NUL of a last unended line. */
static hc_err fill(struct hv_lines *l, hc_error *err)
{
    ssize_t n;

    if (l->start > 0) {
        memmove(l->buf, l->buf + l->start, l->end - l->start);
        l->end -= l->start;
        l->start = 0;
    }
    if (l->end + 1 >= l->cap) {
        char *b = realloc(l->buf, l->cap * 2);

        if (!b)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory (line too long)");
        l->buf = b;
        l->cap *= 2;
    }
    do
        n = read(l->fd, l->buf + l->end, l->cap - l->end - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return hc_error_set(err, HC_ERR_IO, "cannot read: %s", strerror(errno));
    if (n == 0)
        l->eof = true;
    l->end += (size_t)n;
    return HC_OK;
}

hc_err hv_lines_next(struct hv_lines *l, char **line, size_t *len, hc_error *err)
{
    size_t scanned = 0; /* bytes after start already known to hold no '\n' */

    for (;;) {
        char *nl = memchr(l->buf + l->start + scanned, '\n', l->end - l->start - scanned);

        if (nl) {
            *line = l->buf + l->start;
            *len = (size_t)(nl - *line);
            *nl = '\0';
            l->start += *len + 1;
            l->lineno++;
            return HC_OK;
        }
        scanned = l->end - l->start;
        if (l->eof) {
            if (scanned == 0)
                return HC_DONE;
            *line = l->buf + l->start;
            *len = scanned;
            (*line)[scanned] = '\0'; /* fill() kept a byte spare */
            l->start = l->end;
            l->lineno++;
            return HC_OK;
        }
        {
            hc_err rc = fill(l, err);

            if (rc != HC_OK)
                return rc;
        }
    }
}

/* --- the simple-line recogniser ---------------------------------------------------------------
 */

static char *skip_blank(char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/*
 * A JSON string at p, unescaped in place and NUL-terminated: *out and *out_len get its text and the
 * return value points past the closing quote. NULL when it is not a plain string: \u escapes
 * (they can encode NUL, which would cut the text short in hc_jsonl_next), raw control bytes, a
 * bad escape, no end.
 */
/* Bytes that end a run of plain string text: the quote, the backslash, control bytes. */
static const bool special[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1};

#define ONES 0x0101010101010101u
#define HIGHS 0x8080808080808080u

/* Non-zero when a byte of v is '"', '\\' or below 0x20; the lowest set bit is the high bit of the
 * first such byte in memory order on little-endian machines (borrows only run upwards, so a
 * false mark can only follow a true one). */
static uint64_t special_mask(uint64_t v)
{
    uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');

    return (((v - ONES * 0x20) & ~v) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

/* Plain bytes before the first special one in a word with special_mask m != 0. */
static size_t plain_prefix(uint64_t m)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(m) >> 3;
#else
    (void)m;
    return 0; /* the byte loop finds it */
#endif
}

static char *plain_string(char *p, char *e, char **out, size_t *out_len)
{
    char *w, *s;

    if (p >= e || *p != '"')
        return NULL;
    s = w = ++p;
    while (p < e) {
        unsigned char c;

        /* Plain text eight bytes at a time (loaded before stored: w may trail p). */
        while (e - p >= 8) {
            uint64_t v, m;

            memcpy(&v, p, 8);
            if ((m = special_mask(v)) != 0) {
                size_t k = plain_prefix(m);

                if (w != p)
                    memmove(w, p, k);
                p += k;
                w += k;
                break;
            }
            if (w != p)
                memcpy(w, &v, 8);
            p += 8;
            w += 8;
        }
        if (p >= e)
            break;
        c = (unsigned char)*p;
        if (!special[c]) {
            *w++ = (char)c;
            p++;
            continue;
        }
        if (c == '"') {
            *w = '\0';
            *out = s;
            *out_len = (size_t)(w - s);
            return p + 1;
        }
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p >= e)
                return NULL;
            switch (*p) {
            case '"':
            case '\\':
            case '/':
                c = (unsigned char)*p;
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            default:
                return NULL;
            }
        }
        *w++ = (char)c;
        p++;
    }
    return NULL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A JSON number (strict grammar) at p; returns the end, or NULL. *digits counts integer digits
 * and *integer tells whether it has no fraction or exponent. */
static char *json_number(char *p, const char *e, size_t *digits, bool *integer)
{
    char *d;

    if (p < e && *p == '-')
        p++;
    d = p;
    if (p < e && *p == '0') {
        p++;
    } else {
        if (p >= e || !is_digit(*p))
            return NULL;
        while (p < e && is_digit(*p))
            p++;
    }
    *digits = (size_t)(p - d);
    *integer = true;
    if (p < e && *p == '.') {
        *integer = false;
        if (++p >= e || !is_digit(*p))
            return NULL;
        while (p < e && is_digit(*p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *integer = false;
        if (++p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || !is_digit(*p))
            return NULL;
        while (p < e && is_digit(*p))
            p++;
    }
    return p;
}

static char *literal(char *p, const char *e, const char *word)
{
    size_t n = strlen(word);

    return (size_t)(e - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

enum member {
    M_TOPIC,
    M_PAYLOAD,
    M_RECEIVED_AT,
    M_SEQ,
    M_SESSION,
    M_QOS,
    M_RETAIN,
    M_DUP,
    M_START_NS,
    M_MONO_NS,
    M_COUNT
};

static int member_of(const char *key)
{
    static const char *const names[M_COUNT] = {
        "topic",  "payload", "received_at",           "seq",    "session", "qos",
        "retain", "dup",     "session_started_at_ns", "mono_ns"};

    for (int i = 0; i < M_COUNT; i++)
        if (strcmp(key, names[i]) == 0)
            return i;
    return -1;
}

bool hv_jsonl_simple(char *line, size_t len, struct hv_simple_line *out)
{
    char *p = line, *e = line + len;
    bool seen[M_COUNT] = {false};
    char *received_at = NULL;
    size_t received_len = 0;

    memset(out, 0, sizeof(*out));
    out->payload = (const unsigned char *)"";
    p = skip_blank(p, e);
    if (p >= e || *p++ != '{')
        return false;
    p = skip_blank(p, e);
    if (p < e && *p == '}')
        return false; /* no topic */
    for (;;) {
        char *key, *s;
        size_t klen, slen, digits;
        bool integer;
        int m;

        p = plain_string(skip_blank(p, e), e, &key, &klen);
        if (!p || (m = member_of(key)) < 0 || seen[m])
            return false;
        seen[m] = true;
        p = skip_blank(p, e);
        if (p >= e || *p++ != ':')
            return false;
        p = skip_blank(p, e);
        switch (m) {
        case M_TOPIC:
        case M_PAYLOAD:
        case M_RECEIVED_AT:
            p = plain_string(p, e, &s, &slen);
            if (!p)
                return false;
            if (m == M_TOPIC) {
                out->topic = s;
            } else if (m == M_PAYLOAD) {
                out->payload = (const unsigned char *)s;
                out->payload_len = slen;
            } else {
                received_at = s;
                received_len = slen;
            }
            break;
        case M_SEQ:
        case M_SESSION: /* any number: hc_jsonl_next keeps it when it is an exact integer */
            p = json_number(p, e, &digits, &integer);
            break;
        case M_QOS:
            p = p < e && *p >= '0' && *p <= '2' ? p + 1 : NULL;
            break;
        case M_RETAIN:
        case M_DUP:
            if (!(s = literal(p, e, "true")))
                s = literal(p, e, "false");
            p = s;
            break;
        default: /* session_started_at_ns, mono_ns: integers that fit in int64_t */
            p = json_number(p, e, &digits, &integer);
            if (p && (!integer || digits > 19 ||
                      (digits == 19 && memcmp(p - 19, "9223372036854775807", 19) > 0)))
                return false;
            break;
        }
        if (!p)
            return false;
        p = skip_blank(p, e);
        if (p >= e)
            return false;
        if (*p == '}')
            break;
        if (*p++ != ',')
            return false;
    }
    if (skip_blank(p + 1, e) != e)
        return false;
    if (!out->topic || !out->topic[0])
        return false;
    if (received_at) {
        int64_t ns;

        if (hc_time_parse_rfc3339(received_at, received_len, &ns, NULL) != HC_OK)
            return false;
    }
    return true;
}

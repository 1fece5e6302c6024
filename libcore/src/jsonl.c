/*
 * JSON lines reading and writing. Reading buffers the file descriptor itself (any line length,
 * a wait hook before blocking on a pipe) and takes hkit's own lines in one pass with no tree and
 * no allocation once warm; anything unusual in a line goes to cJSON, which stays the reference
 * semantics, and the parsed line is kept alive until the next call so the record can borrow from
 * it. Writing escapes by hand into a reused buffer because hcat exports millions of lines.
 */
#include "hcore/jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hcore/jsonout.h"
#include "hcore/text.h"
#include "hcore/timefmt.h"

/* Large enough that a regular file is read in few system calls; lines may be longer. */
#define READ_BUFFER_SIZE (256 * 1024)
/* Bytes allocated after each buffer's end so that the fast path may load whole words. */
#define WORD_SLACK 8

struct hc_jsonl_reader {
    int fd;
    bool owns_fd;
    bool is_regular; /* a regular file never blocks, so it needs no poll before read */
    bool eof;
    bool fast_path;
    char *path;
    char *buf; /* read buffer: buf[start, end) not yet consumed, scan..end not yet searched */
    size_t cap, start, end, scan;
    char *line; /* current line inside buf, NUL-terminated (no '\n', no trailing '\r') */
    size_t line_no;
    void (*wait_hook)(void *ctx);
    void *wait_ctx;
    unsigned char *arena; /* fast path: the line's unescaped strings */
    size_t arena_cap;
    cJSON *doc;             /* current line's parse */
    unsigned char *payload; /* current payload bytes */
    char *printed;          /* payload printed from a non-string JSON value */
};

hc_err hc_jsonl_reader_open(const char *path, hc_jsonl_reader **out, hc_error *err)
{
    hc_jsonl_reader *r;
    struct stat st;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->path = strdup(path)) || !(r->buf = malloc(READ_BUFFER_SIZE + WORD_SLACK))) {
        if (r)
            free(r->path);
        free(r);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    r->cap = READ_BUFFER_SIZE;
    r->fast_path = true;
    if (strcmp(path, "-") == 0) {
        r->fd = STDIN_FILENO;
    } else {
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        r->owns_fd = true;
        if (r->fd < 0) {
            hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
            free(r->buf);
            free(r->path);
            free(r);
            return rc;
        }
    }
    r->is_regular = fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode);
    *out = r;
    return HC_OK;
}

void hc_jsonl_reader_set_wait_hook(hc_jsonl_reader *r, void (*hook)(void *ctx), void *ctx)
{
    r->wait_hook = hook;
    r->wait_ctx = ctx;
}

void hc_jsonl_reader_set_fast_path(hc_jsonl_reader *r, bool on)
{
    r->fast_path = on;
}

void hc_jsonl_reader_close(hc_jsonl_reader *r)
{
    if (!r)
        return;
    if (r->owns_fd)
        close(r->fd);
    cJSON_Delete(r->doc);
    free(r->payload);
    free(r->printed);
    free(r->arena);
    free(r->buf);
    free(r->path);
    free(r);
}

/* --- lines from the descriptor --------------------------------------------------------------- */

/* Makes room after buf[end] for one more read, keeping one byte for a final NUL. */
static bool make_room(hc_jsonl_reader *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->scan -= r->start;
        r->start = 0;
    }
    /* A partial line filling half the buffer: grow, so long lines cost amortised linear time. */
    if (r->end > r->cap / 2) {
        char *p = realloc(r->buf, r->cap * 2 + WORD_SLACK);
        if (!p)
            return false;
        r->buf = p;
        r->cap *= 2;
    }
    return true;
}

/*
 * Sets *line and *len to the next line without its '\n'; HC_DONE at the end of input. A read
 * interrupted by a signal is an error, as it was with stdio: the tools' signal handlers do not
 * restart system calls, so that Ctrl-C stops a tool waiting on a pipe.
 */
static hc_err read_line(hc_jsonl_reader *r, char **line, size_t *len, hc_error *err)
{
    for (;;) {
        char *nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
        ssize_t n;

        if (nl) {
            *line = r->buf + r->start;
            *len = (size_t)(nl - *line);
            *nl = '\0';
            r->start = r->scan = (size_t)(nl - r->buf) + 1;
            return HC_OK;
        }
        r->scan = r->end;
        if (r->eof) {
            if (r->start == r->end)
                return HC_DONE;
            *line = r->buf + r->start;
            *len = r->end - r->start;
            r->buf[r->end] = '\0'; /* make_room keeps this byte free */
            r->start = r->scan = r->end;
            return HC_OK;
        }
        if (!make_room(r))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        if (r->wait_hook && !r->is_regular) {
            struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
            if (poll(&pfd, 1, 0) == 0)
                r->wait_hook(r->wait_ctx);
        }
        n = read(r->fd, r->buf + r->end, r->cap - 1 - r->end);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* a non-blocking standard input: wait as a blocking one would */
            struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
            if (poll(&pfd, 1, -1) >= 0 || errno != EINTR)
                continue;
        }
        if (n < 0)
            return hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", r->path,
                                strerror(errno ? errno : EIO));
        if (n == 0)
            r->eof = true;
        r->end += (size_t)n;
    }
}

/* --- the cJSON path: every line it is given, with the reference semantics ------------------- */

static hc_err line_error(hc_jsonl_reader *r, hc_error *err, const char *what)
{
    return hc_error_set(err, HC_ERR_PARSE, "'%s' line %zu: %s", r->path, r->line_no, what);
}

/* Two's complement wrap-around instead of undefined behaviour for absurd inputs. */
static int64_t add_wrapping(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

/* mosquitto_sub writes "2026-11-25T00:16:12.916478Z+0000"; accept that and plain RFC 3339. */
static hc_err parse_tst(const char *s, int64_t *ns)
{
    size_t len = strlen(s);
    if (len > 6 && strcmp(s + len - 6, "Z+0000") == 0)
        len -= 5;
    return hc_time_parse_rfc3339(s, len, ns, NULL);
}

static bool json_flag(const cJSON *item)
{
    if (cJSON_IsBool(item))
        return cJSON_IsTrue(item);
    if (cJSON_IsNumber(item))
        return item->valuedouble != 0;
    return false;
}

static bool json_int64(const cJSON *item, int64_t *out)
{
    /* cJSON keeps numbers as doubles; 2^53 covers ns timestamps until the year 2255. */
    if (!cJSON_IsNumber(item) || item->valuedouble != item->valuedouble ||
        item->valuedouble > 9007199254740992.0 || item->valuedouble < -9007199254740992.0)
        return false;
    *out = (int64_t)item->valuedouble;
    return (double)*out == item->valuedouble;
}

/*
 * cJSON holds numbers as doubles, exact only up to 2^53, but ns timestamps
 * (session_started_at_ns, ~1.8e18) need all 64 bits. The top-level member's digits are read
 * again from the line itself: an unescaped "name" can only be a key there, since quotes inside
 * JSON strings are escaped. Falls back to the double when the text cannot be found.
 */
static bool line_int64(const hc_jsonl_reader *r, const char *name, const cJSON *item, int64_t *out)
{
    char pattern[64];
    const char *at;
    size_t plen;

    if (!cJSON_IsNumber(item))
        return false;
    plen = (size_t)snprintf(pattern, sizeof(pattern), "\"%s\"", name);
    for (at = strstr(r->line, pattern); at; at = strstr(at + 1, pattern)) {
        const char *p = at + plen;
        char *end;
        long long v;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p++ != ':')
            continue;
        while (*p == ' ' || *p == '\t')
            p++;
        errno = 0;
        v = strtoll(p, &end, 10);
        if (end == p || errno || *end == '.' || *end == 'e' || *end == 'E')
            break;
        /* the same member as cJSON's, to within a double's precision */
        if (fabs((double)v - item->valuedouble) > fabs(item->valuedouble) * 1e-15 + 1)
            break;
        *out = (int64_t)v;
        return true;
    }
    return json_int64(item, out);
}

static hc_err fill_payload(hc_jsonl_reader *r, const cJSON *obj, struct hc_jsonl_record *rec,
                           hc_error *err)
{
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(obj, "payload");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(obj, "payload_b64");

    if (b64 && !cJSON_IsNull(b64)) {
        size_t n;
        if (!cJSON_IsString(b64))
            return line_error(r, err, "\"payload_b64\" must be a string");
        if (hc_base64_decode(b64->valuestring, strlen(b64->valuestring), &r->payload, &n, NULL) !=
            HC_OK)
            return line_error(r, err, "\"payload_b64\" is not valid base64");
        rec->msg.payload = r->payload;
        rec->msg.payload_len = n;
    } else if (cJSON_IsString(text)) {
        rec->msg.payload = (const unsigned char *)text->valuestring;
        rec->msg.payload_len = strlen(text->valuestring);
    } else if (!text || cJSON_IsNull(text)) {
        rec->msg.payload = (const unsigned char *)"";
        rec->msg.payload_len = 0;
    } else {
        r->printed = cJSON_PrintUnformatted(text);
        if (!r->printed)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        rec->msg.payload = (const unsigned char *)r->printed;
        rec->msg.payload_len = strlen(r->printed);
    }
    return HC_OK;
}

static hc_err parse_hkit(hc_jsonl_reader *r, const cJSON *obj, struct hc_jsonl_record *rec,
                         hc_error *err)
{
    const cJSON *item;
    int64_t v;

    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "seq")) && line_int64(r, "seq", item, &v))
        rec->msg.seq = v;
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "session")) &&
        line_int64(r, "session", item, &v))
        rec->msg.session_id = v;
    item = cJSON_GetObjectItemCaseSensitive(obj, "received_at");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsString(item) ||
            hc_time_parse_rfc3339(item->valuestring, strlen(item->valuestring),
                                  &rec->msg.received_at_ns, NULL) != HC_OK)
            return line_error(r, err, "\"received_at\" is not an RFC 3339 timestamp");
        rec->has_received_at = true;
    }
    {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(obj, "session_started_at_ns");
        const cJSON *mono = cJSON_GetObjectItemCaseSensitive(obj, "mono_ns");
        if (start && mono) {
            if (!line_int64(r, "session_started_at_ns", start, &rec->session_started_at_ns) ||
                !line_int64(r, "mono_ns", mono, &rec->msg.mono_ns))
                return line_error(r, err,
                                  "\"session_started_at_ns\" and \"mono_ns\" must be integers");
            rec->has_session_start = true;
        }
    }
    return fill_payload(r, obj, rec, err);
}

static hc_err parse_mosquitto(hc_jsonl_reader *r, const cJSON *obj, struct hc_jsonl_record *rec,
                              hc_error *err)
{
    const cJSON *tst = cJSON_GetObjectItemCaseSensitive(obj, "tst");
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(obj, "payloadlen");
    int64_t expected;
    hc_err rc;

    rec->format = HC_JSONL_MOSQUITTO;
    if (!cJSON_IsString(tst) || parse_tst(tst->valuestring, &rec->msg.received_at_ns) != HC_OK)
        return line_error(r, err, "\"tst\" is not a timestamp");
    rec->has_received_at = true;
    rc = fill_payload(r, obj, rec, err);
    if (rc != HC_OK)
        return rc;
    if (json_int64(len, &expected) && cJSON_IsString(cJSON_GetObjectItem(obj, "payload")) &&
        (size_t)expected != rec->msg.payload_len) {
        char what[200];
        snprintf(what, sizeof(what),
                 "payload of %" PRId64 " bytes was cut to %zu by mosquitto_sub (binary "
                 "payloads do not survive '%%j')",
                 expected, rec->msg.payload_len);
        return line_error(r, err, what);
    }
    return HC_OK;
}

static hc_err slow_line(hc_jsonl_reader *r, size_t len, struct hc_jsonl_record *rec, hc_error *err)
{
    const cJSON *item;
    hc_err rc;

    r->doc = cJSON_ParseWithLength(r->line, len);
    if (!r->doc)
        return line_error(r, err, "not valid JSON");
    if (!cJSON_IsObject(r->doc))
        return line_error(r, err, "not a JSON object");
    item = cJSON_GetObjectItemCaseSensitive(r->doc, "topic");
    if (!cJSON_IsString(item) || !item->valuestring[0])
        return line_error(r, err, "missing \"topic\"");
    rec->msg.topic = item->valuestring;
    item = cJSON_GetObjectItemCaseSensitive(r->doc, "qos");
    if (item) {
        int64_t q;
        if (!json_int64(item, &q) || q < 0 || q > 2)
            return line_error(r, err, "\"qos\" must be 0, 1 or 2");
        rec->msg.qos = (int)q;
    }
    rec->msg.retain = json_flag(cJSON_GetObjectItemCaseSensitive(r->doc, "retain"));
    rec->msg.dup = json_flag(cJSON_GetObjectItemCaseSensitive(r->doc, "dup"));
    rec->decoded = cJSON_GetObjectItemCaseSensitive(r->doc, "decoded");

    rc = cJSON_GetObjectItemCaseSensitive(r->doc, "tst") ? parse_mosquitto(r, r->doc, rec, err)
                                                         : parse_hkit(r, r->doc, rec, err);
    if (rc != HC_OK)
        return rc;
    rec->msg.timeline_ns = rec->has_session_start
                               ? add_wrapping(rec->session_started_at_ns, rec->msg.mono_ns)
                               : rec->msg.received_at_ns;
    return HC_OK;
}

/* --- the fast path: hkit's own strict lines, or nothing ------------------------------------- */

/*
 * Each function below returns the position after what it read, or NULL for "not the common
 * shape", never an error: the line then goes to the cJSON path, which decides. Accepting only
 * what cJSON reads the same way keeps the two paths' results identical:
 *   - blank space is ' ' and '\t' only, which is also all line_int64 skips;
 *   - numbers are -?(0|[1-9][0-9]*) with at most 19 digits, within int64, followed by blank
 *     space, ',' or '}': exactly what both strtoll (line_int64) and strtod (json_int64, json_flag)
 *     read as the same integer;
 *   - strings hold no raw control byte, and no escape that would give a NUL or more than one
 *     byte, so their length is cJSON's strlen;
 *   - keys are known, unescaped and not repeated (cJSON would take the first of twins).
 * The line is NUL-terminated, and NUL ends every scan as an unusual byte, so no scan needs the
 * line's length.
 */
enum fast_key {
    KEY_TOPIC,
    KEY_QOS,
    KEY_RETAIN,
    KEY_DUP,
    KEY_SEQ,
    KEY_SESSION,
    KEY_RECEIVED_AT,
    KEY_SESSION_STARTED_AT_NS,
    KEY_MONO_NS,
    KEY_PAYLOAD,
    KEY_UNKNOWN
};

static enum fast_key fast_key(const unsigned char *k, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(k, "qos", 3) == 0)
            return KEY_QOS;
        if (memcmp(k, "seq", 3) == 0)
            return KEY_SEQ;
        if (memcmp(k, "dup", 3) == 0)
            return KEY_DUP;
        break;
    case 5:
        if (memcmp(k, "topic", 5) == 0)
            return KEY_TOPIC;
        break;
    case 6:
        if (memcmp(k, "retain", 6) == 0)
            return KEY_RETAIN;
        break;
    case 7:
        if (memcmp(k, "payload", 7) == 0)
            return KEY_PAYLOAD;
        if (memcmp(k, "session", 7) == 0)
            return KEY_SESSION;
        if (memcmp(k, "mono_ns", 7) == 0)
            return KEY_MONO_NS;
        break;
    case 11:
        if (memcmp(k, "received_at", 11) == 0)
            return KEY_RECEIVED_AT;
        break;
    case 21:
        if (memcmp(k, "session_started_at_ns", 21) == 0)
            return KEY_SESSION_STARTED_AT_NS;
        break;
    default:
        break;
    }
    return KEY_UNKNOWN;
}

static const unsigned char *skip_blank(const unsigned char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool ends_value(unsigned char c)
{
    return c == ',' || c == '}' || c == ' ' || c == '\t';
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#define BYTES_OF(c) (0x0101010101010101ull * (c))

/*
 * Whether any of the 8 bytes is '"', '\\' or a control byte (NUL included), so that plain runs
 * are copied a word at a time (Mycroft's "has a zero byte" test, exact as a yes/no).
 */
static bool word_has_special(uint64_t x)
{
    uint64_t quote = x ^ BYTES_OF('"'), backslash = x ^ BYTES_OF('\\');
    uint64_t found = ((x - BYTES_OF(0x20)) & ~x) | ((quote - BYTES_OF(1)) & ~quote) |
                     ((backslash - BYTES_OF(1)) & ~backslash);
    return (found & BYTES_OF(0x80)) != 0;
}

/*
 * p: after the opening quote. Unescapes into *out (advanced) and NUL-terminates it there. Words
 * are loaded only while none of their bytes is special, so a load never starts past the line's
 * NUL, and the buffers keep WORD_SLACK bytes after it; the output never overtakes the input.
 */
static const unsigned char *fast_string(const unsigned char *p, unsigned char **out)
{
    unsigned char *o = *out;

    for (;;) {
        uint64_t w;
        for (;;) {
            memcpy(&w, p, sizeof(w));
            if (word_has_special(w))
                break;
            memcpy(o, &w, sizeof(w));
            o += sizeof(w);
            p += sizeof(w);
        }
        while (*p >= 0x20 && *p != '"' && *p != '\\')
            *o++ = *p++;
        if (*p == '"')
            break;
        if (*p != '\\')
            return NULL; /* a raw control byte or the end of the line */
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            *o++ = p[1];
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            /* \u0001..\u007f only: one byte out, as cJSON gives; the && stops at a NUL */
            int h2 = 0, h3 = 0;
            if (!(p[2] == '0' && p[3] == '0' && (h2 = hex_digit(p[4])) >= 0 &&
                  (h3 = hex_digit(p[5])) >= 0) ||
                h2 > 7 || (h2 == 0 && h3 == 0))
                return NULL;
            *o++ = (unsigned char)(h2 * 16 + h3);
            p += 4;
            break;
        }
        default:
            return NULL;
        }
        p += 2;
    }
    *o++ = '\0';
    *out = o;
    return p + 1;
}

static const unsigned char *fast_null(const unsigned char *p)
{
    return p[0] == 'n' && p[1] == 'u' && p[2] == 'l' && p[3] == 'l' && ends_value(p[4]) ? p + 4
                                                                                        : NULL;
}

static const unsigned char *fast_int(const unsigned char *p, int64_t *out)
{
    bool negative = *p == '-';
    const unsigned char *digits;
    uint64_t v = 0;

    if (negative)
        p++;
    digits = p;
    if (*p == '0')
        p++;
    else
        while (*p >= '0' && *p <= '9' && p - digits < 19)
            v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == digits || !ends_value(*p) || v > (uint64_t)INT64_MAX)
        return NULL; /* no digit, a leading zero, a 20th digit, a fraction, an exponent... */
    *out = negative ? -(int64_t)v : (int64_t)v;
    return p;
}

/* true, false, null or an integer, as json_flag reads them; *flag is 0, 1, or -1 for null */
static const unsigned char *fast_flag(const unsigned char *p, int *flag)
{
    int64_t v;

    if (p[0] == 't' && p[1] == 'r' && p[2] == 'u' && p[3] == 'e') {
        *flag = 1;
        p += 4;
    } else if (p[0] == 'f' && p[1] == 'a' && p[2] == 'l' && p[3] == 's' && p[4] == 'e') {
        *flag = 0;
        p += 5;
    } else if (p[0] == 'n' && p[1] == 'u' && p[2] == 'l' && p[3] == 'l') {
        *flag = -1;
        p += 4;
    } else {
        if (!(p = fast_int(p, &v)))
            return NULL;
        *flag = v != 0;
        return p;
    }
    return ends_value(*p) ? p : NULL;
}

static bool reserve_arena(hc_jsonl_reader *r, size_t need)
{
    size_t cap = r->arena_cap ? r->arena_cap : 4096;
    unsigned char *p;

    if (need <= r->arena_cap)
        return true;
    while (cap < need)
        cap *= 2;
    if (!(p = realloc(r->arena, cap + WORD_SLACK)))
        return false;
    r->arena = p;
    r->arena_cap = cap;
    return true;
}

/* Fills rec from the line and returns true, or returns false and leaves rec to the cJSON path. */
static bool fast_line(hc_jsonl_reader *r, size_t len, struct hc_jsonl_record *rec)
{
    const unsigned char *p = (const unsigned char *)r->line;
    const unsigned char *end = p + len, *q;
    unsigned char *o;
    unsigned seen = 0;
    int64_t start = 0, mono = 0, v;
    int flag;

    /* every string's unescaped bytes and NUL fit in its quoted form */
    if (!reserve_arena(r, len + 1))
        return false;
    o = r->arena;
    rec->msg.payload = (const unsigned char *)"";
    p = skip_blank(p);
    if (*p++ != '{')
        return false;
    p = skip_blank(p);
    for (;;) {
        const unsigned char *key;
        enum fast_key k;
        unsigned char *s = o;

        if (*p++ != '"')
            return false;
        key = p;
        while (*p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        if (*p != '"')
            return false;
        k = fast_key(key, (size_t)(p - key));
        if (k == KEY_UNKNOWN || (seen & (1u << k)))
            return false;
        seen |= 1u << k;
        p = skip_blank(p + 1);
        if (*p++ != ':')
            return false;
        p = skip_blank(p);
        switch (k) {
        case KEY_TOPIC:
            if (*p != '"' || !(p = fast_string(p + 1, &o)) || !*s)
                return false;
            rec->msg.topic = (const char *)s;
            break;
        case KEY_PAYLOAD:
            if (*p == '"') {
                if (!(p = fast_string(p + 1, &o)))
                    return false;
                rec->msg.payload = s;
                rec->msg.payload_len = (size_t)(o - 1 - s);
            } else if (!(p = fast_null(p))) {
                return false;
            }
            break;
        case KEY_RECEIVED_AT:
            if (*p == '"') {
                if (!(p = fast_string(p + 1, &o)) ||
                    hc_time_parse_rfc3339((const char *)s, (size_t)(o - 1 - s),
                                          &rec->msg.received_at_ns, NULL) != HC_OK)
                    return false;
                rec->has_received_at = true;
            } else if (!(p = fast_null(p))) {
                return false;
            }
            break;
        case KEY_QOS:
            if (!(p = fast_int(p, &v)) || v < 0 || v > 2)
                return false;
            rec->msg.qos = (int)v;
            break;
        case KEY_RETAIN:
        case KEY_DUP:
            if (!(p = fast_flag(p, &flag)))
                return false;
            if (k == KEY_RETAIN)
                rec->msg.retain = flag == 1;
            else
                rec->msg.dup = flag == 1;
            break;
        case KEY_SEQ: /* null: no number, so no seq, as line_int64 has it */
            if (!(q = fast_int(p, &rec->msg.seq)) && !(q = fast_null(p)))
                return false;
            p = q;
            break;
        case KEY_SESSION:
            if (!(q = fast_int(p, &rec->msg.session_id)) && !(q = fast_null(p)))
                return false;
            p = q;
            break;
        case KEY_SESSION_STARTED_AT_NS:
            if (!(p = fast_int(p, &start)))
                return false;
            break;
        case KEY_MONO_NS:
            if (!(p = fast_int(p, &mono)))
                return false;
            break;
        case KEY_UNKNOWN:
        default:
            return false;
        }
        p = skip_blank(p);
        if (*p == '}')
            break;
        if (*p++ != ',')
            return false;
        p = skip_blank(p);
    }
    if (skip_blank(p + 1) != end || !(seen & (1u << KEY_TOPIC)))
        return false;
    /* like parse_hkit: the pair or nothing (a lone mono_ns is not kept either) */
    if ((seen & (1u << KEY_SESSION_STARTED_AT_NS)) && (seen & (1u << KEY_MONO_NS))) {
        rec->has_session_start = true;
        rec->session_started_at_ns = start;
        rec->msg.mono_ns = mono;
        rec->msg.timeline_ns = add_wrapping(start, mono);
    } else {
        rec->msg.timeline_ns = rec->msg.received_at_ns;
    }
    return true;
}

hc_err hc_jsonl_next(hc_jsonl_reader *r, struct hc_jsonl_record *rec, hc_error *err)
{
    size_t len;

    cJSON_Delete(r->doc);
    r->doc = NULL;
    free(r->payload);
    r->payload = NULL;
    free(r->printed);
    r->printed = NULL;
    memset(rec, 0, sizeof(*rec));

    for (;;) {
        hc_err rc = read_line(r, &r->line, &len, err);
        if (rc != HC_OK)
            return rc;
        r->line_no++;
        while (len > 0 && r->line[len - 1] == '\r')
            r->line[--len] = '\0';
        if (len > 0)
            break;
    }
    rec->line = r->line_no;
    if (r->fast_path && fast_line(r, len, rec))
        return HC_OK;
    memset(rec, 0, sizeof(*rec));
    rec->line = r->line_no;
    return slow_line(r, len, rec, err);
}

/* --- writing ------------------------------------------------------------------------------- */

struct outbuf {
    char *data;
    size_t len, cap;
    bool failed;
};

static void out_reserve(struct outbuf *b, size_t more)
{
    if (b->failed || b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return;
    }
    b->data = p;
    b->cap = cap;
}

static void out_raw(struct outbuf *b, const char *s, size_t n)
{
    out_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void out_str(struct outbuf *b, const char *s)
{
    out_raw(b, s, strlen(s));
}

/* Writes a JSON string literal; bytes >= 0x80 pass through (the caller checked UTF-8). */
static void out_json_string(struct outbuf *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    out_reserve(b, n * 6 + 2);
    if (b->failed)
        return;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c >= 0x20) {
            *o++ = (char)c;
        } else if (c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else if (c == '\t') {
            *o++ = '\\';
            *o++ = 't';
        } else if (c == '\r') {
            *o++ = '\\';
            *o++ = 'r';
        } else {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
}

hc_err hc_jsonl_write(FILE *fp, const struct hc_msg *msg, const cJSON *decoded, hc_error *err)
{
    /* One buffer per thread would be nicer; tools write from one thread, so one static buffer. */
    static struct outbuf b;
    char num[96];
    char when[40];

    b.len = 0;
    b.failed = false;
    out_raw(&b, "{", 1);
    if (msg->seq) {
        snprintf(num, sizeof(num), "\"seq\":%" PRId64 ",", msg->seq);
        out_str(&b, num);
    }
    if (msg->session_id) {
        snprintf(num, sizeof(num), "\"session\":%" PRId64 ",", msg->session_id);
        out_str(&b, num);
    }
    if (msg->received_at_ns) {
        hc_time_format_rfc3339(msg->received_at_ns, 9, when, sizeof(when));
        out_str(&b, "\"received_at\":\"");
        out_str(&b, when);
        out_str(&b, "\",");
    }
    if (msg->session_id) {
        snprintf(num, sizeof(num), "\"session_started_at_ns\":%" PRId64 ",\"mono_ns\":%" PRId64 ",",
                 msg->timeline_ns - msg->mono_ns, msg->mono_ns);
        out_str(&b, num);
    }
    out_str(&b, "\"topic\":");
    out_json_string(&b, (const unsigned char *)msg->topic, strlen(msg->topic));
    snprintf(num, sizeof(num), ",\"qos\":%d,\"retain\":%s,\"dup\":%s,", msg->qos,
             msg->retain ? "true" : "false", msg->dup ? "true" : "false");
    out_str(&b, num);
    if (hc_text_is_json_safe_utf8(msg->payload, msg->payload_len)) {
        out_str(&b, "\"payload\":");
        out_json_string(&b, msg->payload, msg->payload_len);
    } else {
        size_t n = hc_base64_encoded_len(msg->payload_len);
        out_str(&b, "\"payload_b64\":\"");
        out_reserve(&b, n + 1);
        if (!b.failed) {
            hc_base64_encode(msg->payload, msg->payload_len, b.data + b.len);
            b.len += n;
        }
        out_raw(&b, "\"", 1);
    }
    if (decoded) {
        /* Reused like b: exact numbers, no allocation per line once warm. */
        static struct hc_jsonout printed;
        hc_err rc = hc_jsonout_print(&printed, decoded, err);
        if (rc != HC_OK)
            return rc;
        out_str(&b, ",\"decoded\":");
        out_raw(&b, printed.data, printed.len);
    }
    out_raw(&b, "}\n", 2);
    if (b.failed)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (fwrite(b.data, 1, b.len, fp) != b.len)
        return hc_error_set(err, HC_ERR_IO, "cannot write: %s", strerror(errno));
    return HC_OK;
}

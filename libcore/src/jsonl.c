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
#include "internal.h"

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
    char *printed;          /* payload compacted from a non-string JSON value */
    char *blanked;          /* the line with such a payload replaced by null, for cJSON */
    unsigned char *topic;   /* topic decoded from "topic_b64" */
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
    free(r->blanked);
    free(r->topic);
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

static bool reserve_arena(hc_jsonl_reader *r, size_t need);

static hc_err line_error(hc_jsonl_reader *r, hc_error *err, const char *what)
{
    return hc_error_set(err, HC_ERR_PARSE, "'%s' line %zu: %s", r->path, r->line_no, what);
}

/*
 * mosquitto_sub writes its local time, a 'Z' that does not mean UTC, and the real offset:
 * "2026-11-25T09:36:03.675306Z+0200" is 07:36:03.675306 UTC. Accept that and plain RFC 3339.
 */
static hc_err parse_tst(const char *s, size_t len, int64_t *ns, hc_error *err)
{
    char fixed[64];

    if (len > 6 && len < sizeof(fixed) - 2 && (s[len - 6] == 'Z' || s[len - 6] == 'z') &&
        (s[len - 5] == '+' || s[len - 5] == '-')) {
        /* "...Z+0200" -> "...+02:00" */
        memcpy(fixed, s, len - 6);
        memcpy(fixed + len - 6, s + len - 5, 3);
        fixed[len - 3] = ':';
        memcpy(fixed + len - 2, s + len - 2, 2);
        return hc_time_parse_rfc3339(fixed, len, ns, err);
    }
    return hc_time_parse_rfc3339(s, len, ns, err);
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

/*
 * Lines may nest this deep, which is also cJSON's limit (CJSON_NESTING_LIMIT), so a line the
 * lexer accepts is never refused by cJSON for its depth.
 */
#define MAX_DEPTH 1000

/* Top-level members read from the line's own text rather than from cJSON's tree. */
enum member { M_TOPIC, M_TOPIC_B64, M_PAYLOAD, M_PAYLOAD_B64, M_RECEIVED_AT, M_TST, M_COUNT };

static const char *const member_names[M_COUNT] = {"topic",       "topic_b64",   "payload",
                                                  "payload_b64", "received_at", "tst"};

/* The first occurrence of a member's value (cJSON also takes the first of twins). */
struct raw_member {
    bool found;
    enum hc_json_type type;
    const char *text; /* the value as written; a container spans to its closing bracket */
    size_t len;
    const unsigned char *str; /* a string value, decoded (U+0000 kept), NUL-terminated */
    size_t str_len;
};

/* A member name as decoded, or -1 when it is not one of member_names. */
static int member_of(const struct hc_json_token *key)
{
    unsigned char name[16];

    if (key->len > sizeof(name) + 2)
        return -1;
    size_t n = hc_json_string_decode(key->text, key->len, name);
    for (int m = 0; m < M_COUNT; m++)
        if (strlen(member_names[m]) == n && memcmp(member_names[m], name, n) == 0)
            return m;
    return -1;
}

/*
 * Lexes the whole line: checks it is one JSON object nested at most MAX_DEPTH deep, and finds
 * the members in `m`, decoding their strings into the arena.
 */
static hc_err scan_line(hc_jsonl_reader *r, size_t len, struct raw_member m[M_COUNT], hc_error *err)
{
    struct hc_json_lexer lx;
    struct hc_json_token tok;
    hc_error why = HC_ERROR_INIT;
    int pending = -1;
    size_t open_at = 0;
    unsigned char *o;
    hc_err rc;
    bool first = true, object = false;
    const char *nul = memchr(r->line, '\0', len);

    memset(m, 0, sizeof(*m) * M_COUNT);
    if (nul) {
        char what[96];
        snprintf(what, sizeof(what), "raw NUL byte at column %zu (inside a string write \\u0000)",
                 (size_t)(nul - r->line) + 1);
        return line_error(r, err, what);
    }
    if (!reserve_arena(r, len + M_COUNT))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    o = r->arena;
    hc_json_lexer_init(&lx, r->line, len, MAX_DEPTH);
    while ((rc = hc_json_lexer_next(&lx, &tok, &why)) == HC_OK) {
        if (first)
            object = tok.type == HC_JSON_BEGIN_OBJECT;
        first = false;
        /* text after the line's value is ignored, as cJSON_ParseWithLength has always done */
        if (tok.depth == 0 && tok.type != HC_JSON_BEGIN_OBJECT && tok.type != HC_JSON_BEGIN_ARRAY) {
            rc = HC_DONE;
            break;
        }
        if (tok.depth == 1 && tok.type == HC_JSON_KEY) {
            pending = member_of(&tok);
            if (pending >= 0 && m[pending].found)
                pending = -1;
            continue;
        }
        if (pending >= 0 && tok.depth == 1) {
            struct raw_member *v = &m[pending];
            v->found = true;
            v->type = tok.type;
            v->text = tok.text;
            v->len = tok.len;
            if (tok.type == HC_JSON_STRING) {
                v->str = o;
                v->str_len = hc_json_string_decode(tok.text, tok.len, o);
                o += v->str_len;
                *o++ = '\0';
            }
            if (tok.type == HC_JSON_BEGIN_OBJECT || tok.type == HC_JSON_BEGIN_ARRAY)
                open_at = (size_t)pending + 1; /* its end comes back at depth 1 */
            pending = -1;
        } else if (open_at && tok.depth == 1 &&
                   (tok.type == HC_JSON_END_OBJECT || tok.type == HC_JSON_END_ARRAY)) {
            struct raw_member *v = &m[open_at - 1];
            v->len = (size_t)(tok.text + 1 - v->text);
            open_at = 0;
        }
    }
    hc_json_lexer_release(&lx);
    if (rc == HC_ERR_NOMEM)
        return hc_error_set(err, rc, "out of memory");
    if (rc != HC_DONE)
        return line_error(r, err, lx.too_deep ? why.message : "not valid JSON");
    if (!object)
        return line_error(r, err, "not a JSON object");
    return HC_OK;
}

/* "topic" (or "topic_b64"): present, a non-empty string, no U+0000, valid UTF-8. */
static hc_err read_topic(hc_jsonl_reader *r, const struct raw_member m[M_COUNT],
                         struct hc_jsonl_record *rec, hc_error *err)
{
    const unsigned char *topic;
    size_t n;

    if (m[M_TOPIC].found) {
        if (m[M_TOPIC].type != HC_JSON_STRING)
            return line_error(r, err, "\"topic\" must be a string");
        topic = m[M_TOPIC].str;
        n = m[M_TOPIC].str_len;
    } else if (m[M_TOPIC_B64].found) {
        if (m[M_TOPIC_B64].type != HC_JSON_STRING ||
            hc_base64_decode((const char *)m[M_TOPIC_B64].str, m[M_TOPIC_B64].str_len, &r->topic,
                             &n, NULL) != HC_OK)
            return line_error(r, err, "\"topic_b64\" is not valid base64");
        topic = r->topic;
        r->topic[n] = '\0'; /* hc_base64_decode leaves room for it */
    } else {
        return line_error(r, err, "missing \"topic\"");
    }
    if (n == 0)
        return line_error(r, err, "\"topic\" is empty");
    if (memchr(topic, '\0', n))
        return line_error(r, err, "\"topic\" contains U+0000, which MQTT does not allow");
    if (!hc_text_is_json_safe_utf8(topic, n))
        return line_error(r, err, "\"topic\" is not valid UTF-8, which MQTT requires");
    rec->msg.topic = (const char *)topic;
    return HC_OK;
}

static hc_err fill_payload(hc_jsonl_reader *r, const struct raw_member m[M_COUNT],
                           struct hc_jsonl_record *rec, hc_error *err)
{
    const struct raw_member *text = &m[M_PAYLOAD], *b64 = &m[M_PAYLOAD_B64];

    if (b64->found && b64->type != HC_JSON_NULL) {
        size_t n;
        if (b64->type != HC_JSON_STRING)
            return line_error(r, err, "\"payload_b64\" must be a string");
        if (hc_base64_decode((const char *)b64->str, b64->str_len, &r->payload, &n, NULL) != HC_OK)
            return line_error(r, err, "\"payload_b64\" is not valid base64");
        rec->msg.payload = r->payload;
        rec->msg.payload_len = n;
    } else if (text->found && text->type == HC_JSON_STRING) {
        rec->msg.payload = text->str;
        rec->msg.payload_len = text->str_len;
    } else if (!text->found || text->type == HC_JSON_NULL) {
        rec->msg.payload = (const unsigned char *)"";
        rec->msg.payload_len = 0;
    } else {
        /* the compact form of the value, every token as written (numbers stay exact) */
        if (!r->printed && !(r->printed = malloc(text->len + 1)))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        rec->msg.payload = (const unsigned char *)r->printed;
        rec->msg.payload_len = hc_json_compact(text->text, text->len, r->printed);
        r->printed[rec->msg.payload_len] = '\0';
    }
    return HC_OK;
}

/* An arrival time: the parser's reason when the time is valid but out of range. */
static hc_err read_time(hc_jsonl_reader *r, const char *name, const struct raw_member *v,
                        int64_t *ns, hc_error *err)
{
    hc_error why = HC_ERROR_INIT;
    char what[200];
    hc_err rc = HC_ERR_PARSE;

    if (v->type == HC_JSON_STRING)
        rc = strcmp(name, "tst") == 0
                 ? parse_tst((const char *)v->str, v->str_len, ns, &why)
                 : hc_time_parse_rfc3339((const char *)v->str, v->str_len, ns, &why);
    if (rc == HC_OK)
        return HC_OK;
    if (strncmp(why.message, "time out of range", 17) == 0)
        snprintf(what, sizeof(what), "\"%s\": %.120s", name, why.message);
    else
        snprintf(what, sizeof(what), "\"%s\" is not an RFC 3339 timestamp", name);
    return line_error(r, err, what);
}

/*
 * start + mono, clamped to the int64 range: absurd pairs must not wrap around into an earlier
 * time (the scheduler then saturates the gaps too, so arrival order is kept).
 */
static int64_t timeline_of(int64_t start, int64_t mono)
{
    int64_t t;

    if (__builtin_add_overflow(start, mono, &t))
        return mono > 0 ? INT64_MAX : INT64_MIN;
    return t;
}

static hc_err parse_hkit(hc_jsonl_reader *r, const cJSON *obj, const struct raw_member m[M_COUNT],
                         struct hc_jsonl_record *rec, hc_error *err)
{
    const cJSON *item;
    int64_t v;
    hc_err rc;

    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "seq")) && line_int64(r, "seq", item, &v))
        rec->msg.seq = v;
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "session")) &&
        line_int64(r, "session", item, &v))
        rec->msg.session_id = v;
    if (m[M_RECEIVED_AT].found && m[M_RECEIVED_AT].type != HC_JSON_NULL) {
        rc = read_time(r, "received_at", &m[M_RECEIVED_AT], &rec->msg.received_at_ns, err);
        if (rc != HC_OK)
            return rc;
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
    return fill_payload(r, m, rec, err);
}

static hc_err parse_mosquitto(hc_jsonl_reader *r, const cJSON *obj,
                              const struct raw_member m[M_COUNT], struct hc_jsonl_record *rec,
                              hc_error *err)
{
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(obj, "payloadlen");
    int64_t expected;
    hc_err rc;

    rec->format = HC_JSONL_MOSQUITTO;
    rc = read_time(r, "tst", &m[M_TST], &rec->msg.received_at_ns, err);
    if (rc != HC_OK)
        return rc;
    rec->has_received_at = true;
    rc = fill_payload(r, m, rec, err);
    if (rc != HC_OK)
        return rc;
    if (json_int64(len, &expected) && m[M_PAYLOAD].type == HC_JSON_STRING &&
        !(m[M_PAYLOAD_B64].found && m[M_PAYLOAD_B64].type != HC_JSON_NULL) &&
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

/*
 * cJSON reads numbers of at most 63 characters and turns them into doubles; a payload given as
 * a JSON value is taken from the line's text instead, so cJSON gets the line with that value
 * replaced by null, and never sees it.
 */
static hc_err parse_tree(hc_jsonl_reader *r, size_t len, const struct raw_member *payload,
                         hc_error *err)
{
    const char *text = r->line;
    size_t n = len;

    if (payload->found && payload->type != HC_JSON_STRING && payload->type != HC_JSON_NULL) {
        size_t head = (size_t)(payload->text - r->line);
        if (!(r->blanked = malloc(len + 5)))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        memcpy(r->blanked, r->line, head);
        memcpy(r->blanked + head, "null", 4);
        memcpy(r->blanked + head + 4, payload->text + payload->len, len - head - payload->len);
        n = len - payload->len + 4;
        r->blanked[n] = '\0';
        text = r->blanked;
    }
    r->doc = cJSON_ParseWithLength(text, n);
    if (!r->doc)
        return line_error(r, err, "not valid JSON");
    return HC_OK;
}

static hc_err slow_line(hc_jsonl_reader *r, size_t len, struct hc_jsonl_record *rec, hc_error *err)
{
    struct raw_member m[M_COUNT];
    const cJSON *item;
    hc_err rc;

    if ((rc = scan_line(r, len, m, err)) != HC_OK ||
        (rc = parse_tree(r, len, &m[M_PAYLOAD], err)) != HC_OK ||
        (rc = read_topic(r, m, rec, err)) != HC_OK)
        return rc;
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

    rc = m[M_TST].found ? parse_mosquitto(r, r->doc, m, rec, err)
                        : parse_hkit(r, r->doc, m, rec, err);
    if (rc != HC_OK)
        return rc;
    rec->msg.timeline_ns = rec->has_session_start
                               ? timeline_of(rec->session_started_at_ns, rec->msg.mono_ns)
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
        int byte = hc__json_unescape(p[1]);

        if (byte >= 0) {
            *o++ = (unsigned char)byte;
        } else {
            /* \u0001..\u007f only: one byte out, as cJSON gives; the && stops at a NUL */
            int h2 = 0, h3 = 0;
            if (p[1] != 'u' ||
                !(p[2] == '0' && p[3] == '0' && (h2 = hc__hex_value(p[4])) >= 0 &&
                  (h3 = hc__hex_value(p[5])) >= 0) ||
                h2 > 7 || (h2 == 0 && h3 == 0))
                return NULL;
            *o++ = (unsigned char)(h2 * 16 + h3);
            p += 4;
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

/*
 * p: at a member's opening quote. Reads a known key not seen before (added to *seen) and the ':'
 * after it; the position of the value, or NULL.
 */
static inline const unsigned char *fast_member_key(const unsigned char *p, unsigned *seen,
                                                   enum fast_key *k)
{
    const unsigned char *key;

    if (*p++ != '"')
        return NULL;
    key = p;
    while (*p >= 0x20 && *p != '"' && *p != '\\')
        p++;
    if (*p != '"')
        return NULL;
    *k = fast_key(key, (size_t)(p - key));
    if (*k == KEY_UNKNOWN || (*seen & (1u << *k)))
        return NULL;
    *seen |= 1u << *k;
    p = skip_blank(p + 1);
    if (*p++ != ':')
        return NULL;
    return skip_blank(p);
}

/* The string members: each unescapes into the arena at *o (advanced past its NUL). */

static inline const unsigned char *fast_topic(const unsigned char *p, unsigned char **o,
                                              struct hc_jsonl_record *rec)
{
    unsigned char *s = *o;

    /* MQTT topics are UTF-8: anything else goes to the cJSON path, which refuses it */
    if (*p != '"' || !(p = fast_string(p + 1, o)) || !*s ||
        !hc_text_is_json_safe_utf8(s, (size_t)(*o - 1 - s)))
        return NULL;
    rec->msg.topic = (const char *)s;
    return p;
}

static inline const unsigned char *fast_payload(const unsigned char *p, unsigned char **o,
                                                struct hc_jsonl_record *rec)
{
    unsigned char *s = *o;

    if (*p != '"')
        return fast_null(p);
    if (!(p = fast_string(p + 1, o)))
        return NULL;
    rec->msg.payload = s;
    rec->msg.payload_len = (size_t)(*o - 1 - s);
    return p;
}

static inline const unsigned char *fast_received_at(const unsigned char *p, unsigned char **o,
                                                    struct hc_jsonl_record *rec)
{
    unsigned char *s = *o;

    if (*p != '"')
        return fast_null(p);
    if (!(p = fast_string(p + 1, o)) ||
        hc_time_parse_rfc3339((const char *)s, (size_t)(*o - 1 - s), &rec->msg.received_at_ns,
                              NULL) != HC_OK)
        return NULL;
    rec->has_received_at = true;
    return p;
}

/* An integer or null: null is no number, so *out keeps its value, as line_int64 has it. */
static inline const unsigned char *fast_int_or_null(const unsigned char *p, int64_t *out)
{
    const unsigned char *q = fast_int(p, out);
    return q ? q : fast_null(p);
}

/* The line's session_started_at_ns and mono_ns, kept only as a pair. */
struct fast_session {
    int64_t start, mono;
};

/* p: at the value of member k. Reads it into rec; the position after it, or NULL. */
static inline const unsigned char *fast_value(enum fast_key k, const unsigned char *p,
                                              unsigned char **o, struct hc_jsonl_record *rec,
                                              struct fast_session *session)
{
    int64_t v;
    int flag;

    switch (k) {
    case KEY_TOPIC:
        return fast_topic(p, o, rec);
    case KEY_PAYLOAD:
        return fast_payload(p, o, rec);
    case KEY_RECEIVED_AT:
        return fast_received_at(p, o, rec);
    case KEY_QOS:
        if (!(p = fast_int(p, &v)) || v < 0 || v > 2)
            return NULL;
        rec->msg.qos = (int)v;
        return p;
    case KEY_RETAIN:
    case KEY_DUP:
        if (!(p = fast_flag(p, &flag)))
            return NULL;
        if (k == KEY_RETAIN)
            rec->msg.retain = flag == 1;
        else
            rec->msg.dup = flag == 1;
        return p;
    case KEY_SEQ:
        return fast_int_or_null(p, &rec->msg.seq);
    case KEY_SESSION:
        return fast_int_or_null(p, &rec->msg.session_id);
    case KEY_SESSION_STARTED_AT_NS:
        return fast_int(p, &session->start);
    case KEY_MONO_NS:
        return fast_int(p, &session->mono);
    case KEY_UNKNOWN:
    default:
        return NULL;
    }
}

/* Fills rec from the line and returns true, or returns false and leaves rec to the cJSON path. */
static bool fast_line(hc_jsonl_reader *r, size_t len, struct hc_jsonl_record *rec)
{
    const unsigned char *p = (const unsigned char *)r->line;
    const unsigned char *end = p + len;
    unsigned char *o;
    unsigned seen = 0;
    struct fast_session session = {0, 0};
    const unsigned pair = (1u << KEY_SESSION_STARTED_AT_NS) | (1u << KEY_MONO_NS);

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
        enum fast_key k;

        if (!(p = fast_member_key(p, &seen, &k)) || !(p = fast_value(k, p, &o, rec, &session)))
            return false;
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
    if ((seen & pair) == pair) {
        rec->msg.timeline_ns = timeline_of(session.start, session.mono);
        rec->has_session_start = true;
        rec->session_started_at_ns = session.start;
        rec->msg.mono_ns = session.mono;
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
    free(r->blanked);
    r->blanked = NULL;
    free(r->topic);
    r->topic = NULL;
    memset(rec, 0, sizeof(*rec));

    for (;;) {
        hc_err rc = read_line(r, &r->line, &len, err);
        if (rc != HC_OK)
            return rc;
        r->line_no++;
        /* a UTF-8 byte order mark before the first line (Windows editors write one) */
        if (r->line_no == 1 && len >= 3 && memcmp(r->line, "\xEF\xBB\xBF", 3) == 0) {
            r->line += 3;
            len -= 3;
        }
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

static void out_base64(struct hc__buf *b, const unsigned char *s, size_t n)
{
    size_t len = hc_base64_encoded_len(n);
    if (!hc__buf_grow(b, len + 3))
        return;
    b->data[b->len++] = '"';
    hc_base64_encode(s, n, (char *)b->data + b->len);
    b->len += len;
    b->data[b->len++] = '"';
}

struct hc_jsonl_writer {
    struct hc__buf line;       /* reused for every line: no allocation per line once warm */
    struct hc_jsonout printed; /* "decoded", printed with exact numbers */
};

hc_err hc_jsonl_writer_new(hc_jsonl_writer **out, hc_error *err)
{
    hc_jsonl_writer *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (!w)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    hc__buf_init(&w->line);
    *out = w;
    return HC_OK;
}

void hc_jsonl_writer_free(hc_jsonl_writer *w)
{
    if (!w)
        return;
    hc__buf_release(&w->line);
    hc_jsonout_release(&w->printed);
    free(w);
}

hc_err hc_jsonl_write(FILE *fp, const struct hc_msg *msg, const cJSON *decoded, hc_error *err)
{
    hc_jsonl_writer w;
    hc_err rc;

    memset(&w, 0, sizeof(w));
    hc__buf_init(&w.line);
    rc = hc_jsonl_writer_write(&w, fp, msg, decoded, err);
    hc__buf_release(&w.line);
    hc_jsonout_release(&w.printed);
    return rc;
}

hc_err hc_jsonl_writer_write(hc_jsonl_writer *w, FILE *fp, const struct hc_msg *msg,
                             const cJSON *decoded, hc_error *err)
{
    struct hc__buf *b = &w->line;
    char num[96];
    char when[40];

    hc__buf_reset(b);
    hc__buf_add(b, "{", 1);
    if (msg->seq) {
        snprintf(num, sizeof(num), "\"seq\":%" PRId64 ",", msg->seq);
        hc__buf_addstr(b, num);
    }
    if (msg->session_id) {
        snprintf(num, sizeof(num), "\"session\":%" PRId64 ",", msg->session_id);
        hc__buf_addstr(b, num);
    }
    if (msg->received_at_ns) {
        hc_time_format_rfc3339(msg->received_at_ns, 9, when, sizeof(when));
        hc__buf_addstr(b, "\"received_at\":\"");
        hc__buf_addstr(b, when);
        hc__buf_addstr(b, "\",");
    }
    if (msg->session_id) {
        /* wrapping, not undefined, for times no reader would accept anyway */
        snprintf(num, sizeof(num), "\"session_started_at_ns\":%" PRId64 ",\"mono_ns\":%" PRId64 ",",
                 (int64_t)((uint64_t)msg->timeline_ns - (uint64_t)msg->mono_ns), msg->mono_ns);
        hc__buf_addstr(b, num);
    }
    /* a topic stored before imports checked UTF-8 is written so the line stays valid JSON */
    if (hc_text_is_json_safe_utf8((const unsigned char *)msg->topic, strlen(msg->topic))) {
        hc__buf_addstr(b, "\"topic\":");
        hc__buf_add_json_string(b, (const unsigned char *)msg->topic, strlen(msg->topic));
    } else {
        hc__buf_addstr(b, "\"topic_b64\":");
        out_base64(b, (const unsigned char *)msg->topic, strlen(msg->topic));
    }
    snprintf(num, sizeof(num), ",\"qos\":%d,\"retain\":%s,\"dup\":%s,", msg->qos,
             msg->retain ? "true" : "false", msg->dup ? "true" : "false");
    hc__buf_addstr(b, num);
    if (hc_text_is_json_safe_utf8(msg->payload, msg->payload_len)) {
        hc__buf_addstr(b, "\"payload\":");
        hc__buf_add_json_string(b, msg->payload, msg->payload_len);
    } else {
        hc__buf_addstr(b, "\"payload_b64\":");
        out_base64(b, msg->payload, msg->payload_len);
    }
    if (decoded) {
        hc_err rc = hc_jsonout_print(&w->printed, decoded, err);
        if (rc != HC_OK)
            return rc;
        hc__buf_addstr(b, ",\"decoded\":");
        hc__buf_add(b, w->printed.data, w->printed.len);
    }
    hc__buf_add(b, "}\n", 2);
    if (b->failed)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (fwrite(b->data, 1, b->len, fp) != b->len)
        return hc_error_set(err, HC_ERR_IO, "cannot write: %s", strerror(errno));
    return HC_OK;
}

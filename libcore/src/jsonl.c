/*
 * JSON lines reading and writing. Writing escapes by hand into a reused buffer because hcat
 * exports millions of lines; reading uses cJSON per line and keeps the parsed line alive until
 * the next call so the record can borrow from it.
 */
#include "hcore/jsonl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/jsonout.h"
#include "hcore/text.h"
#include "hcore/timefmt.h"

struct hc_jsonl_reader {
    FILE *fp;
    bool owns_fp;
    char *path;
    char *line;
    size_t line_cap;
    size_t line_no;
    cJSON *doc;             /* current line's parse */
    unsigned char *payload; /* current payload bytes */
    char *printed;          /* payload printed from a non-string JSON value */
};

hc_err hc_jsonl_reader_open(const char *path, hc_jsonl_reader **out, hc_error *err)
{
    hc_jsonl_reader *r;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    if (strcmp(path, "-") == 0) {
        r->fp = stdin;
    } else {
        r->fp = fopen(path, "rb");
        r->owns_fp = true;
        if (!r->fp) {
            hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
            free(r->path);
            free(r);
            return rc;
        }
    }
    *out = r;
    return HC_OK;
}

void hc_jsonl_reader_close(hc_jsonl_reader *r)
{
    if (!r)
        return;
    if (r->owns_fp)
        fclose(r->fp);
    cJSON_Delete(r->doc);
    free(r->payload);
    free(r->printed);
    free(r->line);
    free(r->path);
    free(r);
}

static hc_err line_error(hc_jsonl_reader *r, hc_error *err, const char *what)
{
    return hc_error_set(err, HC_ERR_PARSE, "'%s' line %zu: %s", r->path, r->line_no, what);
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

hc_err hc_jsonl_next(hc_jsonl_reader *r, struct hc_jsonl_record *rec, hc_error *err)
{
    const cJSON *item;
    ssize_t n;

    cJSON_Delete(r->doc);
    r->doc = NULL;
    free(r->payload);
    r->payload = NULL;
    free(r->printed);
    r->printed = NULL;
    memset(rec, 0, sizeof(*rec));

    for (;;) {
        errno = 0;
        n = getline(&r->line, &r->line_cap, r->fp);
        if (n < 0) {
            if (ferror(r->fp))
                return hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", r->path,
                                    strerror(errno ? errno : EIO));
            return HC_DONE;
        }
        r->line_no++;
        while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r'))
            r->line[--n] = '\0';
        if (n > 0)
            break;
    }
    rec->line = r->line_no;
    r->doc = cJSON_ParseWithLength(r->line, (size_t)n);
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

    {
        hc_err rc = cJSON_GetObjectItemCaseSensitive(r->doc, "tst")
                        ? parse_mosquitto(r, r->doc, rec, err)
                        : parse_hkit(r, r->doc, rec, err);
        if (rc != HC_OK)
            return rc;
    }
    rec->msg.timeline_ns = rec->has_session_start ? rec->session_started_at_ns + rec->msg.mono_ns
                                                  : rec->msg.received_at_ns;
    return HC_OK;
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

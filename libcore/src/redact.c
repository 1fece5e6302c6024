/*
 * Redaction (see hcore/redact.h): a keyed set of known ids, each stored in its canonical form
 * (percent-decoded, lower case, a UUID with its hyphens), and one pass over each payload's JSON
 * tokens that replaces whole string values, member names and text tokens, blanks masked members,
 * and copies every other byte as it was.
 */
#include "hcore/redact.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "hcore/secret.h"
#include "hcore/text.h"
#include "internal.h"

#define REDACT_KEY_MAX 256
#define ROLL_BASE 1099511628211ULL
/* Longer strings are never ids; their canonical form would not fit either. */
#define ID_MAX 255
/* Payloads nest at most this deep to be redacted as JSON; deeper ones are treated as text. */
#define REDACT_MAX_DEPTH 1000

struct id_entry {
    char *id; /* canonical form; NULL: empty slot */
    size_t len;
    uint64_t hash;
    char pseudonym[HC_REDACT_PSEUDONYM_LEN + 1];
};

struct hc_redact {
    unsigned char key[REDACT_KEY_MAX];
    size_t key_len;
    struct id_entry *slots;
    size_t cap, count;
    char **masks; /* dotted paths */
    size_t n_masks;
    struct hc__buf topic, payload, decoded, replaced;
    char **path; /* member names of the containers open in the payload (NULL: array) */
    size_t path_cap;
};

/* --- canonical ids --------------------------------------------------------------------------- */

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hc__hex_value((unsigned char)s[i]) < 0)
            return false;
    return true;
}

static bool is_uuid(const char *s, size_t n)
{
    return n == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
           all_hex(s, 8) && all_hex(s + 9, 4) && all_hex(s + 14, 4) && all_hex(s + 19, 4) &&
           all_hex(s + 24, 12);
}

/*
 * The one form an id is known by: %XX decoded, ASCII upper case folded to lower, and 32 hex
 * digits written as a UUID (8-4-4-4-12), so "3F6C1D2A-8B4E-...", "3f6c1d2a8b4e..." and
 * "3f6c1d2a%2D8b4e..." are one id. out holds ID_MAX + 1 bytes; returns the length, or 0 when
 * the text is empty or too long to be an id.
 */
static size_t canonical_id(const unsigned char *s, size_t n, char *out)
{
    char tmp[ID_MAX + 1];
    size_t m = 0;

    if (!n || n > 3 * ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        int hi, lo;
        if (c == '%' && i + 2 < n && (hi = hc__hex_value(s[i + 1])) >= 0 &&
            (lo = hc__hex_value(s[i + 2])) >= 0) {
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (m == ID_MAX)
            return 0;
        tmp[m++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (m == 32 && all_hex(tmp, 32)) {
        static const size_t groups[] = {8, 4, 4, 4, 12};
        size_t o = 0, at = 0;
        for (size_t g = 0; g < 5; g++) {
            if (g)
                out[o++] = '-';
            memcpy(out + o, tmp + at, groups[g]);
            o += groups[g];
            at += groups[g];
        }
        return o;
    }
    memcpy(out, tmp, m);
    return m;
}

/*
 * Ids recognised by their shape alone, wherever they stand as a whole value, level or token: a
 * UUID (any of its forms, see canonical_id), and a Thingsee device or gateway id ("TS", then
 * letters and digits, 8 to 20 characters with at least one digit).
 */
static bool looks_like_id(const char *c, size_t n)
{
    bool digit = false;

    if (is_uuid(c, n))
        return true;
    if (n < 8 || n > 20 || c[0] != 't' || c[1] != 's')
        return false;
    for (size_t i = 2; i < n; i++) {
        if (c[i] >= '0' && c[i] <= '9')
            digit = true;
        else if (c[i] < 'a' || c[i] > 'z')
            return false;
    }
    return digit;
}

/* --- the id table ---------------------------------------------------------------------------- */

static uint64_t roll_hash(const unsigned char *s, size_t len)
{
    uint64_t h = 0;
    for (size_t i = 0; i < len; i++)
        h = h * ROLL_BASE + s[i];
    return h;
}

static size_t slot_of(uint64_t hash, size_t len, size_t cap)
{
    uint64_t h = hash ^ (len * 0x9e3779b97f4a7c15ULL);
    h ^= h >> 29;
    return (size_t)h & (cap - 1);
}

/* A canonical id's entry, or NULL. */
static const struct id_entry *find_id(const hc_redact *r, const char *c, size_t len)
{
    uint64_t hash = roll_hash((const unsigned char *)c, len);

    if (!r->cap)
        return NULL;
    for (size_t i = slot_of(hash, len, r->cap);; i = (i + 1) & (r->cap - 1)) {
        const struct id_entry *e = &r->slots[i];
        if (!e->id)
            return NULL;
        if (e->hash == hash && e->len == len && memcmp(e->id, c, len) == 0)
            return e;
    }
}

static bool grow_table(hc_redact *r)
{
    size_t cap = r->cap ? r->cap * 2 : 64;
    struct id_entry *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return false;
    for (size_t i = 0; i < r->cap; i++) {
        if (!r->slots[i].id)
            continue;
        size_t j = slot_of(r->slots[i].hash, r->slots[i].len, cap);
        while (slots[j].id)
            j = (j + 1) & (cap - 1);
        slots[j] = r->slots[i];
    }
    free(r->slots);
    r->slots = slots;
    r->cap = cap;
    return true;
}

static void pseudonym_of_canonical(const hc_redact *r, const char *c, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t o = 0;

    HMAC(EVP_sha256(), r->key, (int)r->key_len, (const unsigned char *)c, n, md, &md_len);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x40); /* version 4 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 15];
    }
    out[o] = '\0';
}

void hc_redact_pseudonym(const hc_redact *r, const char *id, size_t id_len, char *out)
{
    char c[ID_MAX + 1];
    size_t n = canonical_id((const unsigned char *)id, id_len, c);

    if (n)
        pseudonym_of_canonical(r, c, n, out);
    else
        pseudonym_of_canonical(r, id, id_len, out);
}

static hc_err add_canonical(hc_redact *r, const char *c, size_t n, hc_error *err)
{
    struct id_entry *e;
    size_t i;
    uint64_t hash;

    if (!n || find_id(r, c, n))
        return HC_OK;
    if ((r->count + 1) * 10 > r->cap * 7 && !grow_table(r))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    hash = roll_hash((const unsigned char *)c, n);
    for (i = slot_of(hash, n, r->cap); r->slots[i].id; i = (i + 1) & (r->cap - 1))
        ;
    e = &r->slots[i];
    if (!(e->id = malloc(n + 1)))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    memcpy(e->id, c, n);
    e->id[n] = '\0';
    e->len = n;
    e->hash = hash;
    pseudonym_of_canonical(r, c, n, e->pseudonym);
    r->count++;
    return HC_OK;
}

hc_err hc_redact_add_id(hc_redact *r, const char *id, size_t id_len, hc_error *err)
{
    char c[ID_MAX + 1];

    if (!r || !id)
        return hc_error_set(err, HC_ERR_INVALID, "cannot add id: missing argument");
    return add_canonical(r, c, canonical_id((const unsigned char *)id, id_len, c), err);
}

size_t hc_redact_id_count(const hc_redact *r)
{
    return r ? r->count : 0;
}

/* --- lifecycle ------------------------------------------------------------------------------- */

hc_err hc_redact_new(const unsigned char *key, size_t key_len, hc_redact **out, hc_error *err)
{
    hc_redact *r;

    if (!out)
        return hc_error_set(err, HC_ERR_INVALID, "cannot create redactor: missing argument");
    *out = NULL;
    if (key && key_len < HC_REDACT_MIN_KEY_LEN)
        return hc_error_set(err, HC_ERR_INVALID,
                            "redaction key too short: %zu bytes, at least %d needed", key_len,
                            HC_REDACT_MIN_KEY_LEN);
    r = calloc(1, sizeof(*r));
    if (!r)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (key) {
        /* Longer keys are hashed, as HMAC itself would do past a block. */
        if (key_len > REDACT_KEY_MAX) {
            unsigned int n = 0;
            EVP_Digest(key, key_len, r->key, &n, EVP_sha256(), NULL);
            r->key_len = n;
        } else {
            memcpy(r->key, key, key_len);
            r->key_len = key_len;
        }
    } else {
        r->key_len = 32;
        if (RAND_bytes(r->key, (int)r->key_len) != 1) {
            free(r);
            return hc_error_set(err, HC_ERR_IO, "cannot make a random redaction key");
        }
    }
    *out = r;
    return HC_OK;
}

void hc_redact_free(hc_redact *r)
{
    if (!r)
        return;
    hc_secret_wipe(r->key, sizeof(r->key));
    for (size_t i = 0; i < r->cap; i++)
        free(r->slots[i].id);
    free(r->slots);
    for (size_t i = 0; i < r->n_masks; i++)
        free(r->masks[i]);
    free(r->masks);
    hc__buf_release(&r->topic);
    hc__buf_release(&r->payload);
    hc__buf_release(&r->decoded);
    hc__buf_release(&r->replaced);
    free(r->path);
    free(r);
}

/* --- what is an id --------------------------------------------------------------------------- */

static bool ends_with(const unsigned char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/*
 * Members whose string value is an id: "id" in any case, names ending in "Id", "ID", "_id",
 * "-id", "uid"/"Uid"/"UUID"/"uuid" (gatewayId, gateway_id, sourceDeviceId, space_id, tsmTuid),
 * and Thingsee's "tsmGw".
 */
static bool is_id_member(const unsigned char *name, size_t n)
{
    static const char *const suffixes[] = {"Id", "ID", "_id", "-id", "uid", "Uid", "UUID", "uuid"};

    if (n == 2 && (name[0] == 'i' || name[0] == 'I') && (name[1] == 'd' || name[1] == 'D'))
        return true;
    if (n == 5 && memcmp(name, "tsmGw", 5) == 0)
        return true;
    for (size_t i = 0; i < HC__ARRAY_LEN(suffixes); i++)
        if (ends_with(name, n, suffixes[i]))
            return true;
    return false;
}

/* Bytes that make up a text token; anything else separates tokens. */
static bool token_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '_' || c == '%' || c == '.';
}

/* The known entry for text (learnt, or learnt now because its shape is an id's), or NULL. */
static const struct id_entry *id_for(hc_redact *r, const unsigned char *s, size_t n,
                                     bool any_length)
{
    char c[ID_MAX + 1];
    size_t m = canonical_id(s, n, c);
    const struct id_entry *e;

    if (!m || (!any_length && m < HC_REDACT_MIN_ID_LEN))
        return NULL;
    if ((e = find_id(r, c, m)) != NULL)
        return e;
    if (looks_like_id(c, m) && add_canonical(r, c, m, NULL) == HC_OK)
        return find_id(r, c, m);
    return NULL;
}

/* --- learning -------------------------------------------------------------------------------- */

/* Index (0-based) of each topic level that holds an id; returns how many (at most 3). */
static size_t id_levels(const char *topic, size_t idx[3])
{
    size_t levels = 1, n = 0;

    for (const char *p = topic; *p; p++)
        levels += *p == '/';
    if (strncmp(topic, "haltian-iot/", 12) == 0 && levels >= 4) {
        idx[n++] = 2;
        idx[n++] = 3;
        if (levels >= 7)
            idx[n++] = 6;
    } else if (strncmp(topic, "cloudext/", 9) == 0 && levels >= 6) {
        idx[n++] = 4;
        idx[n++] = 5;
    }
    return n;
}

static bool is_id_level(const size_t idx[3], size_t n, size_t level)
{
    for (size_t i = 0; i < n; i++)
        if (idx[i] == level)
            return true;
    return false;
}

/* Learns the id levels of a topic, or of a filter (its "+" and "#" levels name nothing). */
static hc_err learn_topic(hc_redact *r, const char *topic, hc_error *err)
{
    size_t idx[3], n = id_levels(topic, idx), level = 0;
    const char *seg = topic;

    for (;;) {
        size_t len = strcspn(seg, "/");
        bool wildcard = len == 1 && (seg[0] == '+' || seg[0] == '#');
        if (!wildcard && is_id_level(idx, n, level)) {
            hc_err rc = hc_redact_add_id(r, seg, len, err);
            if (rc != HC_OK)
                return rc;
        }
        if (!seg[len])
            return HC_OK;
        seg += len + 1;
        level++;
    }
}

/*
 * The ids inside a Wirepas gateway topic, as a binary passthrough's "mqtt_topic" carries it
 * ("haltian-iot/wirepas/gw-event/received_data/{gateway}/{sink}/{network}/{src-ep}/{dst-ep}",
 * or gw-request/gw-response/other gw-event topics): the gateway id after the event name and, for
 * received_data, the network address. Sink names and endpoints identify nobody.
 */
static hc_err learn_wirepas(hc_redact *r, const unsigned char *v, size_t n, hc_error *err)
{
    const unsigned char *seg[16];
    size_t len[16], count = 0, at = 0;

    while (at <= n && count < 16) {
        const unsigned char *slash = memchr(v + at, '/', n - at);
        size_t end = slash ? (size_t)(slash - v) : n;
        seg[count] = v + at;
        len[count++] = end - at;
        at = end + 1;
    }
    for (size_t i = 0; i + 2 < count; i++) {
        bool event = len[i] == 8 && memcmp(seg[i], "gw-event", 8) == 0;
        hc_err rc;
        if (!event && !(len[i] == 10 && memcmp(seg[i], "gw-request", 10) == 0) &&
            !(len[i] == 11 && memcmp(seg[i], "gw-response", 11) == 0))
            continue;
        if ((rc = hc_redact_add_id(r, (const char *)seg[i + 2], len[i + 2], err)) != HC_OK)
            return rc;
        if (event && i + 4 < count && len[i + 1] == 13 &&
            memcmp(seg[i + 1], "received_data", 13) == 0)
            return hc_redact_add_id(r, (const char *)seg[i + 4], len[i + 4], err);
        return HC_OK;
    }
    return HC_OK;
}

/* Decodes a string or key token into r->decoded (NUL-terminated). */
static bool decode_token(hc_redact *r, const struct hc_json_token *t)
{
    hc__buf_reset(&r->decoded);
    if (!hc__buf_grow(&r->decoded, t->len + 1))
        return false;
    r->decoded.len = hc_json_string_decode(t->text, t->len, r->decoded.data);
    r->decoded.data[r->decoded.len] = '\0';
    return true;
}

/* Learns from a JSON payload: id members' values and Wirepas topics. Not JSON: nothing. */
static hc_err learn_payload(hc_redact *r, const unsigned char *p, size_t n, hc_error *err)
{
    struct hc_json_lexer lx;
    struct hc_json_token t;
    bool id_member = false;
    hc_err rc = HC_OK;

    hc_json_lexer_init(&lx, (const char *)p, n, REDACT_MAX_DEPTH);
    while (hc_json_lexer_next(&lx, &t, NULL) == HC_OK) {
        if (t.type == HC_JSON_KEY) {
            if (!decode_token(r, &t)) {
                rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                break;
            }
            id_member = is_id_member(r->decoded.data, r->decoded.len);
            continue;
        }
        if (t.type == HC_JSON_STRING) {
            if (!decode_token(r, &t)) {
                rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                break;
            }
            rc = id_member ? hc_redact_add_id(r, (const char *)r->decoded.data, r->decoded.len, err)
                           : learn_wirepas(r, r->decoded.data, r->decoded.len, err);
            if (rc != HC_OK)
                break;
        }
        id_member = false;
    }
    hc_json_lexer_release(&lx);
    return rc;
}

hc_err hc_redact_learn(hc_redact *r, const char *topic, const unsigned char *payload,
                       size_t payload_len, hc_error *err)
{
    hc_err rc;

    if (!r || !topic)
        return hc_error_set(err, HC_ERR_INVALID, "cannot learn ids: missing argument");
    if ((rc = learn_topic(r, topic, err)) != HC_OK)
        return rc;
    return payload_len ? learn_payload(r, payload, payload_len, err) : HC_OK;
}

hc_err hc_redact_learn_filter(hc_redact *r, const char *filter, hc_error *err)
{
    if (!r || !filter)
        return hc_error_set(err, HC_ERR_INVALID, "cannot learn ids: missing argument");
    return learn_topic(r, filter, err);
}

/* Every string in a JSON value: learnt as a topic filter (filter == true) or as an id. */
static hc_err learn_json_strings(hc_redact *r, const char *text, bool filter, hc_error *err)
{
    struct hc_json_lexer lx;
    struct hc_json_token t;
    hc_err rc = HC_OK;

    hc_json_lexer_init(&lx, text, strlen(text), REDACT_MAX_DEPTH);
    while (rc == HC_OK && hc_json_lexer_next(&lx, &t, NULL) == HC_OK) {
        if (t.type != HC_JSON_STRING)
            continue;
        if (!decode_token(r, &t))
            rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        else if (filter)
            rc = learn_topic(r, (const char *)r->decoded.data, err);
        else
            rc = hc_redact_add_id(r, (const char *)r->decoded.data, r->decoded.len, err);
    }
    hc_json_lexer_release(&lx);
    return rc;
}

hc_err hc_redact_learn_meta(hc_redact *r, const char *key, const char *value, hc_error *err)
{
    if (!r || !key || !value)
        return hc_error_set(err, HC_ERR_INVALID, "cannot learn ids: missing argument");
    if (strcmp(key, "api_key_id") == 0 || strcmp(key, "integration_id") == 0 ||
        strcmp(key, "username") == 0)
        return hc_redact_add_id(r, value, strlen(value), err);
    if (strcmp(key, "filter_devices") == 0)
        return learn_json_strings(r, value, false, err);
    if (strcmp(key, "subscriptions") == 0) {
        /* [{"filter":"haltian-iot/events/I/K/#","qos":1,...}] or a plain list of filters */
        if (value[0] != '[')
            return learn_topic(r, value, err);
        return learn_json_strings(r, value, true, err);
    }
    return HC_OK;
}

/* --- replacing ------------------------------------------------------------------------------- */

/*
 * Appends s with every text token that is a known id (or shaped like one) replaced by its
 * pseudonym; *changed says whether any was. Tokens are runs of letters, digits, '-', '_', '%'
 * and '.', without trailing dots, so a number (81234567, 51.1234567) is one token and never
 * loses a part.
 */
static bool replace_tokens(hc_redact *r, struct hc__buf *out, const unsigned char *s, size_t n,
                           bool *changed)
{
    size_t i = 0, copied = 0;

    while (i < n) {
        size_t start, len;
        const struct id_entry *e;
        if (!token_byte(s[i])) {
            i++;
            continue;
        }
        start = i;
        while (i < n && token_byte(s[i]))
            i++;
        len = i - start;
        while (len > 0 && s[start + len - 1] == '.')
            len--;
        if (!len || !(e = id_for(r, s + start, len, false)))
            continue;
        if (!hc__buf_add(out, s + copied, start - copied) ||
            !hc__buf_add(out, e->pseudonym, HC_REDACT_PSEUDONYM_LEN))
            return false;
        copied = start + len;
        *changed = true;
    }
    return hc__buf_add(out, s + copied, n - copied);
}

static bool redact_topic(hc_redact *r, const char *topic)
{
    size_t idx[3], n = id_levels(topic, idx), level = 0;
    const char *seg = topic;

    hc__buf_reset(&r->topic);
    for (;;) {
        size_t len = strcspn(seg, "/");
        const struct id_entry *e = NULL;
        if (len)
            e = id_for(r, (const unsigned char *)seg, len, is_id_level(idx, n, level));
        if (e && !hc__buf_add(&r->topic, e->pseudonym, HC_REDACT_PSEUDONYM_LEN))
            return false;
        if (!e && !hc__buf_add(&r->topic, seg, len))
            return false;
        if (!seg[len])
            break;
        if (!hc__buf_add(&r->topic, "/", 1))
            return false;
        seg += len + 1;
        level++;
    }
    return hc__buf_add(&r->topic, "", 1);
}

/* Whether the member `name` inside the open containers r->path[0, depth) is masked. */
static bool masked(const hc_redact *r, size_t depth, const unsigned char *name, size_t name_len)
{
    for (size_t m = 0; m < r->n_masks; m++) {
        const char *p = r->masks[m];
        bool ok = true;
        for (size_t d = 0; d < depth && ok; d++) {
            size_t seg;
            if (!r->path[d])
                continue; /* arrays are transparent */
            seg = strlen(r->path[d]);
            ok = strncmp(p, r->path[d], seg) == 0 && p[seg] == '.';
            p += seg + 1;
        }
        if (ok && strlen(p) == name_len && memcmp(p, name, name_len) == 0)
            return true;
    }
    return false;
}

static bool path_set(hc_redact *r, size_t depth, const char *name)
{
    if (depth >= r->path_cap) {
        void *path = r->path;

        if (!hc__grow(&path, &r->path_cap, depth + 1, sizeof(*r->path), 16))
            return false;
        r->path = path;
    }
    r->path[depth] = name ? strdup(name) : NULL;
    return !name || r->path[depth];
}

/*
 * A string token's replacement, into out: its pseudonym when it is an id member's value or a
 * whole id, else its text tokens replaced; *changed false when it stays as written.
 */
static bool redact_string(hc_redact *r, const struct hc_json_token *t, bool id_member,
                          struct hc__buf *out, bool *changed)
{
    const struct id_entry *e;

    *changed = false;
    if (!decode_token(r, t))
        return false;
    if (!r->decoded.len)
        return true;
    if (id_member &&
        hc_redact_add_id(r, (const char *)r->decoded.data, r->decoded.len, NULL) != HC_OK)
        return false;
    e = id_for(r, r->decoded.data, r->decoded.len, id_member);
    if (e) {
        *changed = true;
        return hc__buf_add_json_string(out, (const unsigned char *)e->pseudonym,
                                       HC_REDACT_PSEUDONYM_LEN);
    }
    hc__buf_reset(&r->replaced);
    if (!replace_tokens(r, &r->replaced, r->decoded.data, r->decoded.len, changed))
        return false;
    return !*changed ||
           hc__buf_add_json_string(out, (const unsigned char *)r->replaced.data, r->replaced.len);
}

/* Where a pass over a JSON payload (redact_json) stands. */
struct json_pass {
    struct hc_json_lexer lx;
    const unsigned char *p; /* the payload */
    size_t copied;          /* p[0, copied) is in r->payload, as written or redacted */
    size_t path_depth;      /* containers open; r->path[0, path_depth) names them */
    bool have_key;          /* the last token was a member name, kept in r->path[path_depth] */
    bool id_member;         /* ... the name of an id member */
};

static hc_err out_of_memory(hc_error *err)
{
    return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
}

/*
 * A string token (a member name or a value): the bytes before it and its replacement go to
 * r->payload, or, when it stays as written, nothing does (it is copied later with what follows).
 */
static bool put_string(hc_redact *r, struct json_pass *js, const struct hc_json_token *t,
                       bool id_member)
{
    size_t at = (size_t)(t->text - (const char *)js->p);
    size_t mark = r->payload.len;
    bool changed = false;

    if (!hc__buf_add(&r->payload, js->p + js->copied, at - js->copied) ||
        !redact_string(r, t, id_member, &r->payload, &changed))
        return false;
    if (changed)
        js->copied = at + t->len;
    else
        r->payload.len = mark;
    return true;
}

/*
 * A masked member whose name t was just read: copies up to its value, writes null instead and
 * skips the value (a container whole).
 */
static hc_err mask_member(hc_redact *r, struct json_pass *js, const struct hc_json_token *t,
                          hc_error *err)
{
    const unsigned char *p = js->p;
    size_t at = (size_t)(t->text - (const char *)p);
    struct hc_json_token v;
    size_t depth;
    hc_err rc;

    free(r->path[js->path_depth]);
    if (!hc__buf_add(&r->payload, p + js->copied, at + t->len - js->copied))
        return out_of_memory(err);
    if ((rc = hc_json_lexer_next(&js->lx, &v, err)) != HC_OK)
        return rc;
    depth = v.depth;
    if (!hc__buf_add(&r->payload, p + at + t->len,
                     (size_t)(v.text - (const char *)p) - at - t->len) ||
        !hc__buf_add(&r->payload, "null", 4))
        return out_of_memory(err);
    while (v.type == HC_JSON_BEGIN_OBJECT || v.type == HC_JSON_BEGIN_ARRAY || v.depth > depth) {
        if ((rc = hc_json_lexer_next(&js->lx, &v, err)) != HC_OK)
            return rc;
        if (v.depth == depth && (v.type == HC_JSON_END_OBJECT || v.type == HC_JSON_END_ARRAY))
            break;
    }
    js->copied = (size_t)(v.text - (const char *)p) + v.len;
    js->have_key = js->id_member = false;
    return HC_OK;
}

/* A member name: masked (mask_member), or kept in the path and redacted if it is an id itself. */
static hc_err redact_key(hc_redact *r, struct json_pass *js, const struct hc_json_token *t,
                         hc_error *err)
{
    if (!decode_token(r, t))
        return out_of_memory(err);
    js->id_member = is_id_member(r->decoded.data, r->decoded.len);
    js->have_key = true;
    /* the member name, for a mask and for containers it opens */
    if (!path_set(r, js->path_depth, (const char *)r->decoded.data))
        return out_of_memory(err);
    if (masked(r, js->path_depth, r->decoded.data, r->decoded.len))
        return mask_member(r, js, t, err);
    /* a member name that is itself an id (a map keyed by device) */
    if (!put_string(r, js, t, false))
        return out_of_memory(err);
    free(r->path[js->path_depth]);
    if (!path_set(r, js->path_depth, (const char *)r->decoded.data))
        return out_of_memory(err);
    return HC_OK;
}

/* One token of the pass. */
static hc_err redact_token(hc_redact *r, struct json_pass *js, const struct hc_json_token *t,
                           hc_error *err)
{
    switch (t->type) {
    case HC_JSON_KEY:
        return redact_key(r, js, t, err);
    case HC_JSON_BEGIN_OBJECT:
    case HC_JSON_BEGIN_ARRAY:
        /* the container's name stays in path[path_depth] (NULL in an array) */
        if (!js->have_key && !path_set(r, js->path_depth, NULL))
            return out_of_memory(err);
        js->path_depth++;
        break;
    case HC_JSON_END_OBJECT:
    case HC_JSON_END_ARRAY:
        js->path_depth--;
        free(r->path[js->path_depth]);
        r->path[js->path_depth] = NULL;
        break;
    default: /* a scalar value: its member's name is no longer needed */
        if (js->have_key) {
            free(r->path[js->path_depth]);
            r->path[js->path_depth] = NULL;
        }
        if (t->type == HC_JSON_STRING && !put_string(r, js, t, js->id_member))
            return out_of_memory(err);
        break;
    }
    js->have_key = js->id_member = false;
    return HC_OK;
}

/*
 * One pass over a JSON payload into r->payload: masked members become null (every duplicate),
 * string values and member names are redacted whole (see redact_string), and every other byte
 * (numbers, blank space, untouched strings) is copied as it was. Returns HC_DONE when the payload
 * is not JSON (the caller treats it as text).
 */
static hc_err redact_json(hc_redact *r, const unsigned char *p, size_t n, hc_error *err)
{
    struct json_pass js;
    struct hc_json_token t;
    hc_err rc;

    if (hc_json_validate((const char *)p, n, REDACT_MAX_DEPTH, NULL) != HC_OK)
        return HC_DONE;
    memset(&js, 0, sizeof(js));
    js.p = p;
    hc__buf_reset(&r->payload);
    hc_json_lexer_init(&js.lx, (const char *)p, n, REDACT_MAX_DEPTH);
    while ((rc = hc_json_lexer_next(&js.lx, &t, err)) == HC_OK)
        if ((rc = redact_token(r, &js, &t, err)) != HC_OK)
            break;
    for (size_t d = 0; d < js.path_depth; d++)
        free(r->path[d]);
    hc_json_lexer_release(&js.lx);
    if (rc != HC_DONE)
        return rc == HC_OK ? hc_error_set(err, HC_ERR_INVALID, "bad JSON") : rc;
    if (!hc__buf_add(&r->payload, p + js.copied, n - js.copied))
        return out_of_memory(err);
    return HC_OK;
}

hc_err hc_redact_message(hc_redact *r, const struct hc_msg *in, struct hc_msg *out, hc_error *err)
{
    const unsigned char *p;
    size_t n;
    hc_err rc;

    if (!r || !in || !out || !in->topic)
        return hc_error_set(err, HC_ERR_INVALID, "cannot redact: missing argument");
    rc = hc_redact_learn(r, in->topic, in->payload, in->payload_len, err);
    if (rc != HC_OK)
        return rc;
    p = in->payload ? in->payload : (const unsigned char *)"";
    n = in->payload_len;
    *out = *in;
    if (!redact_topic(r, in->topic))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    rc = redact_json(r, p, n, err);
    if (rc == HC_DONE) {
        bool changed = false;
        hc__buf_reset(&r->payload);
        if (!replace_tokens(r, &r->payload, p, n, &changed))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    } else if (rc != HC_OK) {
        return rc;
    }
    if (!hc__buf_grow(&r->payload, 1))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    r->payload.data[r->payload.len] = '\0'; /* convenient for callers that print text */
    out->topic = (const char *)r->topic.data;
    out->payload = r->payload.data;
    out->payload_len = r->payload.len;
    return HC_OK;
}

hc_err hc_redact_text(hc_redact *r, const char *text, char **out, hc_error *err)
{
    struct hc__buf b = HC__BUF_INIT;
    bool changed = false;

    if (!r || !text || !out)
        return hc_error_set(err, HC_ERR_INVALID, "cannot redact: missing argument");
    *out = NULL;
    if (!replace_tokens(r, &b, (const unsigned char *)text, strlen(text), &changed) ||
        !hc__buf_add(&b, "", 1)) {
        free(b.data);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    *out = (char *)b.data;
    return HC_OK;
}

hc_err hc_redact_add_mask(hc_redact *r, const char *path, hc_error *err)
{
    char **masks;

    if (!r || !path)
        return hc_error_set(err, HC_ERR_INVALID, "cannot add mask: missing argument");
    if (!*path || path[0] == '.' || path[strlen(path) - 1] == '.' || strstr(path, ".."))
        return hc_error_set(err, HC_ERR_INVALID,
                            "invalid mask '%s': expected member names joined by dots "
                            "(value.space_id)",
                            path);
    masks = realloc(r->masks, (r->n_masks + 1) * sizeof(*masks));
    if (!masks)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    r->masks = masks;
    if (!(r->masks[r->n_masks] = strdup(path)))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    r->n_masks++;
    return HC_OK;
}

/*
 * Redaction (see hcore/redact.h): a keyed set of known ids with their pseudonyms, and a scanner
 * that replaces every occurrence of any of them in a byte string. The scanner keeps one rolling
 * (Rabin-Karp) hash per distinct id length, so a payload is read once whatever the number of
 * ids; a hash hit is confirmed with memcmp before anything is replaced.
 */
#include "hcore/redact.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "internal.h"

#define REDACT_KEY_MAX 256
#define ROLL_BASE 1099511628211ULL

struct id_entry {
    char *id; /* NULL: empty slot */
    size_t len;
    uint64_t hash; /* rolling hash of the id's bytes */
    char pseudonym[HC_REDACT_PSEUDONYM_LEN + 1];
};

struct buf {
    unsigned char *data;
    size_t len, cap;
};

struct hc_redact {
    unsigned char key[REDACT_KEY_MAX];
    size_t key_len;
    struct id_entry *slots;
    size_t cap, count;
    /* distinct lengths of ids long enough for substring replacement, longest first */
    size_t *lengths;
    uint64_t *powers; /* ROLL_BASE^(length-1), beside lengths */
    uint64_t *hashes; /* the scanner's current window hashes, beside lengths */
    size_t n_lengths;
    char **masks; /* dotted paths */
    size_t n_masks;
    struct buf topic, payload, scratch;
};

/* --- buffers --------------------------------------------------------------------------------- */

static bool buf_reserve(struct buf *b, size_t more)
{
    size_t cap;
    unsigned char *p;

    if (b->len + more <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

static bool buf_add(struct buf *b, const void *bytes, size_t n)
{
    if (!buf_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    return true;
}

/* memmem is a GNU extension; this is the portable few lines. */
static const unsigned char *find_bytes(const unsigned char *hay, size_t n, const char *needle,
                                       size_t m)
{
    if (!m || m > n)
        return NULL;
    for (const unsigned char *p = hay; (size_t)(p - hay) <= n - m; p++) {
        p = memchr(p, needle[0], n - m + 1 - (size_t)(p - hay));
        if (!p)
            return NULL;
        if (memcmp(p, needle, m) == 0)
            return p;
    }
    return NULL;
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

static const struct id_entry *find_id(const hc_redact *r, const unsigned char *s, size_t len,
                                      uint64_t hash)
{
    if (!r->cap)
        return NULL;
    for (size_t i = slot_of(hash, len, r->cap);; i = (i + 1) & (r->cap - 1)) {
        const struct id_entry *e = &r->slots[i];
        if (!e->id)
            return NULL;
        if (e->hash == hash && e->len == len && memcmp(e->id, s, len) == 0)
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

static bool add_length(hc_redact *r, size_t len)
{
    size_t i;
    size_t *lengths;
    uint64_t *powers;
    uint64_t p = 1;

    for (i = 0; i < r->n_lengths; i++)
        if (r->lengths[i] == len)
            return true;
    lengths = realloc(r->lengths, (r->n_lengths + 1) * sizeof(*lengths));
    if (!lengths)
        return false;
    r->lengths = lengths;
    powers = realloc(r->powers, (r->n_lengths + 1) * sizeof(*powers));
    if (!powers)
        return false;
    r->powers = powers;
    powers = realloc(r->hashes, (r->n_lengths + 1) * sizeof(*powers));
    if (!powers)
        return false;
    r->hashes = powers;
    for (size_t k = 1; k < len; k++)
        p *= ROLL_BASE;
    /* keep longest first, so the longest id wins where two start at the same byte */
    for (i = r->n_lengths; i > 0 && r->lengths[i - 1] < len; i--) {
        r->lengths[i] = r->lengths[i - 1];
        r->powers[i] = r->powers[i - 1];
    }
    r->lengths[i] = len;
    r->powers[i] = p;
    r->n_lengths++;
    return true;
}

void hc_redact_pseudonym(const hc_redact *r, const char *id, size_t id_len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t o = 0;

    HMAC(EVP_sha256(), r->key, (int)r->key_len, (const unsigned char *)id, id_len, md, &md_len);
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

hc_err hc_redact_add_id(hc_redact *r, const char *id, size_t id_len, hc_error *err)
{
    uint64_t hash;
    struct id_entry *e;
    size_t i;

    if (!r || !id)
        return hc_error_set(err, HC_ERR_INVALID, "cannot add id: missing argument");
    if (!id_len)
        return HC_OK;
    hash = roll_hash((const unsigned char *)id, id_len);
    if (find_id(r, (const unsigned char *)id, id_len, hash))
        return HC_OK;
    if ((r->count + 1) * 10 > r->cap * 7 && !grow_table(r))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (id_len >= HC_REDACT_MIN_ID_LEN && !add_length(r, id_len))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    for (i = slot_of(hash, id_len, r->cap); r->slots[i].id; i = (i + 1) & (r->cap - 1))
        ;
    e = &r->slots[i];
    e->id = malloc(id_len + 1);
    if (!e->id)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    memcpy(e->id, id, id_len);
    e->id[id_len] = '\0';
    e->len = id_len;
    e->hash = hash;
    hc_redact_pseudonym(r, id, id_len, e->pseudonym);
    r->count++;
    return HC_OK;
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
    OPENSSL_cleanse(r->key, sizeof(r->key));
    for (size_t i = 0; i < r->cap; i++)
        free(r->slots[i].id);
    free(r->slots);
    free(r->lengths);
    free(r->powers);
    free(r->hashes);
    for (size_t i = 0; i < r->n_masks; i++)
        free(r->masks[i]);
    free(r->masks);
    free(r->topic.data);
    free(r->payload.data);
    free(r->scratch.data);
    free(r);
}

/* --- learning -------------------------------------------------------------------------------- */

/* Segment `index` (0-based) of a topic and its length, or NULL when the topic is shorter. */
static const char *topic_segment(const char *topic, size_t index, size_t *len)
{
    const char *s = topic;
    for (size_t i = 0; i < index; i++) {
        s = strchr(s, '/');
        if (!s)
            return NULL;
        s++;
    }
    *len = strcspn(s, "/");
    return s;
}

static size_t topic_levels(const char *topic)
{
    size_t n = 1;
    for (const char *p = topic; *p; p++)
        n += *p == '/';
    return n;
}

/* Indexes of the topic segments that hold ids; returns how many (at most 3). */
static size_t id_segments(const char *topic, size_t idx[3])
{
    size_t levels = topic_levels(topic);
    size_t n = 0;

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

static const char *const ID_MEMBERS[] = {"sourceDeviceId",    "tsmTuid",  "tsmGw",
                                         "deploymentGroupId", "deviceId", "device_id",
                                         "mqtt_topic"};

/*
 * The ids inside a Wirepas gateway topic, as a binary passthrough's "mqtt_topic" carries it
 * ("haltian-iot/wirepas/gw-event/received_data/{gateway}/{sink}/{network}/{src-ep}/{dst-ep}",
 * or gw-request/gw-response/other gw-event topics): the gateway id after the event name and, for
 * received_data, the network address. Sink names and endpoints identify nobody.
 */
static hc_err each_wirepas_id(hc_redact *r, const char *v, size_t n,
                              hc_err (*fn)(hc_redact *r, const char *id, size_t len, hc_error *err),
                              hc_error *err)
{
    const char *seg[16];
    size_t len[16], count = 0, at = 0;

    while (at <= n && count < 16) {
        const char *slash = memchr(v + at, '/', n - at);
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
        if ((rc = fn(r, seg[i + 2], len[i + 2], err)) != HC_OK)
            return rc;
        if (event && i + 4 < count && len[i + 1] == 13 &&
            memcmp(seg[i + 1], "received_data", 13) == 0)
            return fn(r, seg[i + 4], len[i + 4], err);
        return HC_OK;
    }
    return HC_OK;
}

/*
 * Finds string values of id members by scanning bytes, which is cheaper than parsing every
 * payload and also works on payloads that are not quite JSON. fn gets each value.
 */
static hc_err each_id_member(hc_redact *r, const unsigned char *p, size_t n,
                             hc_err (*fn)(hc_redact *r, const char *id, size_t len, hc_error *err),
                             hc_error *err)
{
    char pattern[40];

    for (size_t m = 0; m < HC__ARRAY_LEN(ID_MEMBERS); m++) {
        size_t plen = (size_t)snprintf(pattern, sizeof(pattern), "\"%s\"", ID_MEMBERS[m]);
        const unsigned char *at = p, *end = p + n;
        while (at < end) {
            const unsigned char *hit = find_bytes(at, (size_t)(end - at), pattern, plen);
            const unsigned char *v, *q;
            if (!hit)
                break;
            v = hit + plen;
            while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
                v++;
            if (v < end && *v == ':') {
                v++;
                while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
                    v++;
                if (v < end && *v == '"') {
                    v++;
                    for (q = v; q < end && *q != '"' && *q != '\\'; q++)
                        ;
                    if (q < end && *q == '"' && q > v) {
                        hc_err rc =
                            strcmp(ID_MEMBERS[m], "mqtt_topic") == 0
                                ? each_wirepas_id(r, (const char *)v, (size_t)(q - v), fn, err)
                                : fn(r, (const char *)v, (size_t)(q - v), err);
                        if (rc != HC_OK)
                            return rc;
                    }
                }
            }
            at = hit + plen;
        }
    }
    return HC_OK;
}

hc_err hc_redact_learn(hc_redact *r, const char *topic, const unsigned char *payload,
                       size_t payload_len, hc_error *err)
{
    size_t idx[3], n, len;
    hc_err rc;

    if (!r || !topic)
        return hc_error_set(err, HC_ERR_INVALID, "cannot learn ids: missing argument");
    n = id_segments(topic, idx);
    for (size_t i = 0; i < n; i++) {
        const char *seg = topic_segment(topic, idx[i], &len);
        if (seg && (rc = hc_redact_add_id(r, seg, len, err)) != HC_OK)
            return rc;
    }
    if (payload_len)
        return each_id_member(r, payload, payload_len, hc_redact_add_id, err);
    return HC_OK;
}

/* --- replacing ------------------------------------------------------------------------------- */

/* Appends s with every known id (of substring length) replaced by its pseudonym. */
static bool replace_into(hc_redact *r, struct buf *out, const unsigned char *s, size_t n)
{
    uint64_t *hashes = r->hashes;
    size_t nl = r->n_lengths;
    size_t i = 0, copied = 0;
    bool fresh = true;

    if (!nl || !n)
        return buf_add(out, s, n);
    while (i < n) {
        const struct id_entry *hit = NULL;
        for (size_t k = 0; k < nl; k++) {
            size_t L = r->lengths[k];
            if (i + L > n)
                continue;
            if (fresh)
                hashes[k] = roll_hash(s + i, L);
            if (!hit && (hit = find_id(r, s + i, L, hashes[k])) != NULL)
                break;
        }
        if (hit) {
            if (!buf_add(out, s + copied, i - copied) ||
                !buf_add(out, hit->pseudonym, HC_REDACT_PSEUDONYM_LEN))
                return false;
            i += hit->len;
            copied = i;
            fresh = true;
            continue;
        }
        /* roll every window one byte on */
        for (size_t k = 0; k < nl; k++) {
            size_t L = r->lengths[k];
            if (i + L < n)
                hashes[k] = (hashes[k] - s[i] * r->powers[k]) * ROLL_BASE + s[i + L];
        }
        fresh = false;
        i++;
    }
    return buf_add(out, s + copied, n - copied);
}

static bool redact_topic(hc_redact *r, const char *topic)
{
    size_t idx[3], n = id_segments(topic, idx);
    size_t level = 0;
    const char *seg = topic;

    r->topic.len = 0;
    for (;;) {
        size_t len = strcspn(seg, "/");
        bool is_id = false;
        for (size_t i = 0; i < n; i++)
            is_id |= idx[i] == level;
        if (is_id && len) {
            char pseudonym[HC_REDACT_PSEUDONYM_LEN + 1];
            hc_redact_pseudonym(r, seg, len, pseudonym);
            if (!buf_add(&r->topic, pseudonym, HC_REDACT_PSEUDONYM_LEN))
                return false;
        } else if (!replace_into(r, &r->topic, (const unsigned char *)seg, len)) {
            return false;
        }
        if (!seg[len])
            break;
        if (!buf_add(&r->topic, "/", 1))
            return false;
        seg += len + 1;
        level++;
    }
    return buf_add(&r->topic, "", 1);
}

static bool mask_path(cJSON *node, char *path)
{
    char *dot = strchr(path, '.');
    bool hit = false;

    if (cJSON_IsArray(node)) {
        cJSON *el;
        cJSON_ArrayForEach(el, node) hit |= mask_path(el, path);
        return hit;
    }
    if (!cJSON_IsObject(node))
        return false;
    if (dot)
        *dot = '\0';
    if (!dot) {
        cJSON *item = cJSON_GetObjectItemCaseSensitive(node, path);
        if (item && !cJSON_IsNull(item)) {
            cJSON *null = cJSON_CreateNull();
            if (null && cJSON_ReplaceItemInObjectCaseSensitive(node, path, null))
                hit = true;
            else
                cJSON_Delete(null);
        }
    } else {
        hit = mask_path(cJSON_GetObjectItemCaseSensitive(node, path), dot + 1);
        *dot = '.';
    }
    return hit;
}

/* Applies the masks; on a hit, the new payload is left in r->scratch. */
static hc_err apply_masks(hc_redact *r, const unsigned char *p, size_t n, bool *changed,
                          hc_error *err)
{
    cJSON *doc;
    bool hit = false;
    size_t i = 0;

    *changed = false;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    if (!r->n_masks || i == n || (p[i] != '{' && p[i] != '['))
        return HC_OK;
    doc = cJSON_ParseWithLength((const char *)p, n);
    if (!doc)
        return HC_OK;
    for (size_t m = 0; m < r->n_masks; m++)
        hit |= mask_path(doc, r->masks[m]);
    if (hit) {
        char *printed = cJSON_PrintUnformatted(doc);
        if (!printed) {
            cJSON_Delete(doc);
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        }
        r->scratch.len = 0;
        if (!buf_add(&r->scratch, printed, strlen(printed))) {
            cJSON_free(printed);
            cJSON_Delete(doc);
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        }
        cJSON_free(printed);
        *changed = true;
    }
    cJSON_Delete(doc);
    return HC_OK;
}

/*
 * Short ids inside payload members: replace the member value in place when it is a known id
 * shorter than the substring limit. Done on a copy in r->scratch.
 */
static bool replace_short_members(hc_redact *r, struct buf *b)
{
    char pattern[40];
    bool any_short = false;

    for (size_t i = 0; i < r->cap && !any_short; i++)
        any_short = r->slots[i].id && r->slots[i].len < HC_REDACT_MIN_ID_LEN;
    if (!any_short)
        return true;
    for (size_t m = 0; m < HC__ARRAY_LEN(ID_MEMBERS); m++) {
        size_t plen = (size_t)snprintf(pattern, sizeof(pattern), "\"%s\"", ID_MEMBERS[m]);
        size_t at = 0;
        while (at < b->len) {
            unsigned char *hit =
                (unsigned char *)find_bytes(b->data + at, b->len - at, pattern, plen);
            unsigned char *v, *q, *end = b->data + b->len;
            const struct id_entry *e;
            if (!hit)
                break;
            at = (size_t)(hit - b->data) + plen;
            v = hit + plen;
            while (v < end && (*v == ' ' || *v == ':'))
                v++;
            if (v >= end || *v != '"')
                continue;
            v++;
            for (q = v; q < end && *q != '"'; q++)
                ;
            if (q >= end || (size_t)(q - v) >= HC_REDACT_MIN_ID_LEN)
                continue;
            e = find_id(r, v, (size_t)(q - v), roll_hash(v, (size_t)(q - v)));
            if (!e)
                continue;
            {
                size_t off = (size_t)(v - b->data), old = (size_t)(q - v);
                size_t grow = HC_REDACT_PSEUDONYM_LEN - old;
                if (!buf_reserve(b, grow))
                    return false;
                memmove(b->data + off + HC_REDACT_PSEUDONYM_LEN, b->data + off + old,
                        b->len - off - old);
                memcpy(b->data + off, e->pseudonym, HC_REDACT_PSEUDONYM_LEN);
                b->len += grow;
                at = off + HC_REDACT_PSEUDONYM_LEN;
            }
        }
    }
    return true;
}

hc_err hc_redact_message(hc_redact *r, const struct hc_msg *in, struct hc_msg *out, hc_error *err)
{
    const unsigned char *p;
    size_t n;
    bool masked;
    hc_err rc;

    if (!r || !in || !out || !in->topic)
        return hc_error_set(err, HC_ERR_INVALID, "cannot redact: missing argument");
    rc = hc_redact_learn(r, in->topic, in->payload, in->payload_len, err);
    if (rc != HC_OK)
        return rc;
    p = in->payload ? in->payload : (const unsigned char *)"";
    n = in->payload_len;
    rc = apply_masks(r, p, n, &masked, err);
    if (rc != HC_OK)
        return rc;
    if (masked) {
        p = r->scratch.data;
        n = r->scratch.len;
    }
    *out = *in;
    r->payload.len = 0;
    if (!redact_topic(r, in->topic) || !replace_into(r, &r->payload, p, n) ||
        !replace_short_members(r, &r->payload) || !buf_reserve(&r->payload, 1))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    r->payload.data[r->payload.len] = '\0'; /* convenient for callers that print text */
    out->topic = (const char *)r->topic.data;
    out->payload = r->payload.data;
    out->payload_len = r->payload.len;
    return HC_OK;
}

hc_err hc_redact_text(hc_redact *r, const char *text, char **out, hc_error *err)
{
    struct buf b = {0};

    if (!r || !text || !out)
        return hc_error_set(err, HC_ERR_INVALID, "cannot redact: missing argument");
    *out = NULL;
    if (!replace_into(r, &b, (const unsigned char *)text, strlen(text)) || !buf_add(&b, "", 1)) {
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

/*
 * libcore's one growable byte buffer (internal.h), the array growth it is built on, and the
 * string-keyed map the writers intern topics and devices with.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/text.h"
#include "internal.h"

bool hc__grow(void **items, size_t *cap, size_t need, size_t elem_size, size_t initial)
{
    size_t n = *cap ? *cap : initial;
    void *p;

    if (need <= *cap)
        return true;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return false;
        n *= 2;
    }
    if (n > SIZE_MAX / elem_size)
        return false;
    p = realloc(*items, n * elem_size);
    if (!p)
        return false;
    *items = p;
    *cap = n;
    return true;
}

void hc__buf_init(struct hc__buf *b)
{
    struct hc__buf empty = HC__BUF_INIT;

    *b = empty;
}

bool hc__buf_grow_slow(struct hc__buf *b, size_t more)
{
    void *data = b->data;

    if (b->failed)
        return false;
    if (more >= SIZE_MAX - b->len || !hc__grow(&data, &b->cap, b->len + more + 1, 1, 256)) {
        b->failed = true;
        return false;
    }
    b->data = data;
    return true;
}

bool hc__buf_add_json_string(struct hc__buf *b, const unsigned char *s, size_t n)
{
    if (n > (SIZE_MAX - 2) / 6 || !hc__buf_grow(b, n * 6 + 2)) {
        b->failed = true;
        return false;
    }
    b->len += hc_json_escape(s, n, (char *)b->data + b->len);
    b->data[b->len] = '\0';
    return true;
}

void hc__buf_reset(struct hc__buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

bool hc__buf_addf(struct hc__buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return false;
    }
    if (!hc__buf_grow(b, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

void hc__buf_release(struct hc__buf *b)
{
    free(b->data);
    hc__buf_init(b);
}

/* --- strmap ---------------------------------------------------------------------------------- */

struct hc__strmap_slot {
    char *key; /* NULL: empty */
    size_t key_len;
    uint64_t hash;
    size_t value;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void hc__strmap_init(struct hc__strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void hc__strmap_release(struct hc__strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    hc__strmap_init(m);
}

bool hc__strmap_get(const struct hc__strmap *m, const char *key, size_t key_len, size_t *value)
{
    uint64_t h;

    if (!m->cap)
        return false;
    h = hash_bytes(key, key_len);
    for (size_t i = (size_t)h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const struct hc__strmap_slot *s = &m->slots[i];
        if (!s->key)
            return false;
        if (s->hash == h && s->key_len == key_len && memcmp(s->key, key, key_len) == 0) {
            *value = s->value;
            return true;
        }
    }
}

static void place(struct hc__strmap_slot *slots, size_t cap, struct hc__strmap_slot s)
{
    size_t i = (size_t)s.hash & (cap - 1);
    while (slots[i].key)
        i = (i + 1) & (cap - 1);
    slots[i] = s;
}

hc_err hc__strmap_put(struct hc__strmap *m, const char *key, size_t key_len, size_t value)
{
    struct hc__strmap_slot s;

    if ((m->count + 1) * 4 > m->cap * 3) { /* keep the load under 3/4 */
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct hc__strmap_slot *slots = calloc(cap, sizeof(*slots));
        if (!slots)
            return HC_ERR_NOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key)
                place(slots, cap, m->slots[i]);
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    s.key = malloc(key_len + 1);
    if (!s.key)
        return HC_ERR_NOMEM;
    memcpy(s.key, key, key_len);
    s.key[key_len] = 0;
    s.key_len = key_len;
    s.hash = hash_bytes(key, key_len);
    s.value = value;
    place(m->slots, m->cap, s);
    m->count++;
    return HC_OK;
}

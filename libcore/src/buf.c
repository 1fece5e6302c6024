/*
 * libcore's one growable byte buffer (internal.h), and the array growth it is built on.
 */
#include <stdint.h>
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
    if (more > SIZE_MAX - b->len || !hc__grow(&data, &b->cap, b->len + more, 1, 256)) {
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
    return true;
}

void hc__buf_reset(struct hc__buf *b)
{
    b->len = 0;
    b->failed = false;
}

void hc__buf_release(struct hc__buf *b)
{
    free(b->data);
    hc__buf_init(b);
}

/*
 * The compact JSON printer behind hcore/jsonout.h: walks a cJSON tree without recursion into a
 * reusable buffer, with exact number formatting that avoids printf/sscanf for the numbers the
 * decoder produces (millisecond timestamps, readings with a few decimals).
 */
#include "hcore/jsonout.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/text.h"
#include "internal.h"

/* 2^53: below it every integer is a double and (double)(uint64_t) conversions are exact. */
#define EXACT_INT_LIMIT 9007199254740992.0

/* Fewest fraction digits tried by the plain-decimal path; past 17 the %g forms are shorter. */
#define MAX_FRACTION_DIGITS 17

static const char digit_pairs[] = "00010203040506070809"
                                  "10111213141516171819"
                                  "20212223242526272829"
                                  "30313233343536373839"
                                  "40414243444546474849"
                                  "50515253545556575859"
                                  "60616263646566676869"
                                  "70717273747576777879"
                                  "80818283848586878889"
                                  "90919293949596979899";

/* Exactly representable powers of ten (10^22 is the last), used as exact divisors. */
static const double pow10_exact[MAX_FRACTION_DIGITS + 1] = {
    1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
    1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
};

/* Decimal digits of v, written so they end just before end; returns where they start. */
static char *u64_digits_backwards(uint64_t v, char *end)
{
    char *p = end;

    while (v >= 100) {
        unsigned pair = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = digit_pairs[pair + 1];
        *--p = digit_pairs[pair];
    }
    if (v >= 10) {
        unsigned pair = (unsigned)v * 2;
        *--p = digit_pairs[pair + 1];
        *--p = digit_pairs[pair];
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

static size_t put_u64(uint64_t v, char *dst)
{
    char tmp[24];
    char *start = u64_digits_backwards(v, tmp + sizeof(tmp));
    size_t n = (size_t)(tmp + sizeof(tmp) - start);

    memcpy(dst, start, n);
    return n;
}

/*
 * m / 10^k with m < 2^53 and 10^k exact is one correctly rounded IEEE division, and a correctly
 * rounding strtod (glibc's is) turns the decimal text of m * 10^-k into that same double
 * (Clinger's fast path). So when the division gives back a exactly, the text reads back exactly,
 * and no digit string has to be re-parsed to know it.
 */
static size_t put_plain_decimal(double a, char *dst)
{
    for (int k = 1; k <= MAX_FRACTION_DIGITS; k++) {
        double scaled = a * pow10_exact[k];
        uint64_t m;

        if (scaled >= EXACT_INT_LIMIT)
            return 0;
        m = (uint64_t)scaled;
        if (scaled - (double)m >= 0.5)
            m++;
        if ((double)m / pow10_exact[k] != a)
            continue;

        char tmp[48];
        char *end = tmp + sizeof(tmp);
        char *start = u64_digits_backwards(m, end);
        size_t ndigits = (size_t)(end - start), frac = (size_t)k, n = 0;

        /* m ending in 0 is the same rational with one digit fewer, hence the same double. */
        while (frac > 1 && end[-1] == '0') {
            end--;
            ndigits--;
            frac--;
        }
        if (ndigits <= frac) {
            dst[n++] = '0';
            dst[n++] = '.';
            memset(dst + n, '0', frac - ndigits);
            n += frac - ndigits;
            memcpy(dst + n, start, ndigits);
            n += ndigits;
        } else {
            memcpy(dst + n, start, ndigits - frac);
            n += ndigits - frac;
            dst[n++] = '.';
            memcpy(dst + n, end - frac, frac);
            n += frac;
        }
        return n;
    }
    return 0;
}

/* printf's %g, checked with strtod; %.17g always reads back on a correctly rounding libc. */
static size_t put_general(double d, char *dst)
{
    static const int precisions[] = {15, 16, 17};
    int len = 0;

    for (size_t i = 0; i < HC__ARRAY_LEN(precisions); i++) {
        len = snprintf(dst, HC_JSONOUT_NUMBER_MAX, "%.*g", precisions[i], d);
        if (len <= 0 || len >= HC_JSONOUT_NUMBER_MAX)
            break;
        if (strtod(dst, NULL) == d)
            break;
    }
    if (len <= 0 || len >= HC_JSONOUT_NUMBER_MAX) {
        memcpy(dst, "null", 5);
        return 4;
    }
    /* printf and strtod above agree on the locale's decimal point (maybe several bytes, maybe
     * not '.'); JSON's is '.'. */
    size_t n = 0;
    for (int i = 0; i < len; i++) {
        char c = dst[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e')
            dst[n++] = c;
        else if (n == 0 || dst[n - 1] != '.')
            dst[n++] = '.';
    }
    return n;
}

/* Writes without the NUL, so the walker can use it in place. */
static size_t put_number(double d, char *dst)
{
    double a = fabs(d);
    size_t n = 0, body;

    if (!isfinite(d)) {
        memcpy(dst, "null", 4);
        return 4;
    }
    if (signbit(d))
        dst[n++] = '-';
    if (a < EXACT_INT_LIMIT && a == (double)(uint64_t)a)
        return n + put_u64((uint64_t)a, dst + n);
    if (a >= 1e-4 && a < EXACT_INT_LIMIT) {
        body = put_plain_decimal(a, dst + n);
        if (body)
            return n + body;
    }
    return put_general(d, dst);
}

size_t hc_jsonout_format_number(double d, char *dst)
{
    size_t n = put_number(d, dst);

    dst[n] = '\0';
    return n;
}

/* The part of the output being written; end leaves room for the final NUL. */
struct writer {
    struct hc_jsonout *out;
    char *p;
    char *end;
};

static bool reserve_slow(struct writer *w, size_t need)
{
    struct hc_jsonout *out = w->out;
    size_t used = (size_t)(w->p - out->data);
    void *data = out->data;

    if (need > SIZE_MAX - used - 1 || !hc__grow(&data, &out->cap, used + need + 1, 1, 256))
        return false;
    out->data = data;
    w->p = out->data + used;
    w->end = out->data + out->cap - 1;
    return true;
}

static inline bool reserve(struct writer *w, size_t need)
{
    return (size_t)(w->end - w->p) >= need || reserve_slow(w, need);
}

/* s as a JSON string literal (hc_json_escape, the escaper jsonl and redact use too). */
static bool put_string(struct writer *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n > (SIZE_MAX - 2) / 6 || !reserve(w, 6 * n + 2))
        return false;
    w->p += hc_json_escape((const unsigned char *)(s ? s : ""), n, w->p);
    return true;
}

static bool put_raw(struct writer *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return false;
    memcpy(w->p, s, n);
    w->p += n;
    return true;
}

static bool push(struct hc_jsonout *out, size_t depth, const cJSON *container)
{
    if (depth == out->stack_cap) {
        void *stack = out->stack;

        if (!hc__grow(&stack, &out->stack_cap, depth + 1, sizeof(*out->stack), 32))
            return false;
        out->stack = stack;
    }
    out->stack[depth] = container;
    return true;
}

/*
 * Depth-first with an explicit stack of the open containers (cJSON items have no parent link),
 * so the only limit on nesting is memory.
 */
static hc_err walk(struct writer *w, const cJSON *root, hc_error *err)
{
    struct hc_jsonout *out = w->out;
    const cJSON *node = root;
    size_t depth = 0;

    for (;;) {
        int type = node->type & 0xFF;

        if (depth > 0 && (out->stack[depth - 1]->type & 0xFF) == cJSON_Object) {
            if (!put_string(w, node->string) || !put_raw(w, ":", 1))
                goto nomem;
        }
        switch (type) {
        case cJSON_False:
            if (!put_raw(w, "false", 5))
                goto nomem;
            break;
        case cJSON_True:
            if (!put_raw(w, "true", 4))
                goto nomem;
            break;
        case cJSON_NULL:
            if (!put_raw(w, "null", 4))
                goto nomem;
            break;
        case cJSON_Number:
            if (!reserve(w, HC_JSONOUT_NUMBER_MAX))
                goto nomem;
            w->p += put_number(node->valuedouble, w->p);
            break;
        case cJSON_String:
            if (!put_string(w, node->valuestring))
                goto nomem;
            break;
        case cJSON_Raw:
            if (!node->valuestring)
                return hc_error_set(err, HC_ERR_INVALID, "raw JSON item without text");
            if (!put_raw(w, node->valuestring, strlen(node->valuestring)))
                goto nomem;
            break;
        case cJSON_Array:
        case cJSON_Object:
            if (node->child) {
                if (!push(out, depth, node) || !put_raw(w, type == cJSON_Array ? "[" : "{", 1))
                    goto nomem;
                depth++;
                node = node->child;
                continue;
            }
            if (!put_raw(w, type == cJSON_Array ? "[]" : "{}", 2))
                goto nomem;
            break;
        default:
            return hc_error_set(err, HC_ERR_INVALID, "JSON item of unknown type %d", node->type);
        }
        /* Next sibling, or close containers until one has a next sibling. */
        for (;;) {
            if (depth == 0)
                return HC_OK;
            if (node->next) {
                if (!put_raw(w, ",", 1))
                    goto nomem;
                node = node->next;
                break;
            }
            node = out->stack[--depth];
            if (!put_raw(w, (node->type & 0xFF) == cJSON_Array ? "]" : "}", 1))
                goto nomem;
        }
    }
nomem:
    return hc_error_set(err, HC_ERR_NOMEM, "out of memory printing JSON");
}

void hc_jsonout_init(struct hc_jsonout *out)
{
    memset(out, 0, sizeof(*out));
}

void hc_jsonout_release(struct hc_jsonout *out)
{
    if (!out)
        return;
    free(out->data);
    free(out->stack);
    hc_jsonout_init(out);
}

hc_err hc_jsonout_append(struct hc_jsonout *out, const cJSON *item, hc_error *err)
{
    struct writer w;
    size_t start;
    hc_err rc;

    if (!out || !item)
        return hc_error_set(err, HC_ERR_INVALID, "no JSON item or output buffer");
    start = out->len;
    if (!out->data) {
        out->data = malloc(256);
        if (!out->data)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory printing JSON");
        out->cap = 256;
        out->len = start = 0;
    }
    w.out = out;
    w.p = out->data + out->len;
    w.end = out->data + out->cap - 1;
    rc = walk(&w, item, err);
    if (rc == HC_OK) {
        out->len = (size_t)(w.p - out->data);
    } else {
        out->len = start;
    }
    out->data[out->len] = '\0';
    return rc;
}

hc_err hc_jsonout_print(struct hc_jsonout *out, const cJSON *item, hc_error *err)
{
    if (out)
        out->len = 0;
    return hc_jsonout_append(out, item, err);
}

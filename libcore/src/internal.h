/*
 * Helpers shared between libcore's source files (hc__ prefix); not part of the public API.
 */
#ifndef HCORE_INTERNAL_H
#define HCORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hcore/error.h"
#include "hcore/log.h"

#define HC__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Value of a hexadecimal digit (either case), -1 for any other byte. */
static inline int hc__hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The byte a two-character JSON escape stands for: \" \\ \/ \b \f \n \r \t, given the
 * character after the backslash; -1 for anything else (\u is the caller's).
 */
static inline int hc__json_unescape(unsigned char c)
{
    switch (c) {
    case '"':
    case '\\':
    case '/':
        return c;
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return -1;
    }
}

/* --- buf.c: the one growable byte buffer (git's strbuf) ------------------------------------ */

/*
 * Caller-owned: HC__BUF_INIT or hc__buf_init, then hc__buf_release. data holds len bytes and,
 * once anything was added, a NUL after them (not counted in len), so text can be used as a C
 * string. An allocation failure is sticky: the call returns false, failed is set and later adds
 * do nothing, so a writer appends freely and checks once at the end.
 */
struct hc__buf {
    unsigned char *data; /* bytes: text or binary */
    size_t len, cap;
    bool failed;
};

#define HC__BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

void hc__buf_init(struct hc__buf *b);
bool hc__buf_grow_slow(struct hc__buf *b, size_t more);

/* Room for more bytes after len, and the NUL after them. Inline: writers call it per field. */
static inline bool hc__buf_grow(struct hc__buf *b, size_t more)
{
    return (!b->failed && b->cap > b->len && more < b->cap - b->len) ||
           hc__buf_grow_slow(b, more);
}

static inline bool hc__buf_add(struct hc__buf *b, const void *bytes, size_t n)
{
    if (!hc__buf_grow(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static inline bool hc__buf_addstr(struct hc__buf *b, const char *s)
{
    return hc__buf_add(b, s, strlen(s));
}

/* printf-style text. */
bool hc__buf_addf(struct hc__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal with its quotes (hc_json_escape). */
bool hc__buf_add_json_string(struct hc__buf *b, const unsigned char *s, size_t n);
/* Empties b (len 0, failed cleared) and keeps its memory. */
void hc__buf_reset(struct hc__buf *b);
/* Frees the memory; b is empty and usable again. Accepts a released buffer. */
void hc__buf_release(struct hc__buf *b);

/*
 * Grows the array *items (capacity *cap elements of elem_size bytes) to hold at least need
 * elements, doubling from initial; false on overflow or out of memory (the array is unchanged).
 */
bool hc__grow(void **items, size_t *cap, size_t need, size_t elem_size, size_t initial);

/* The one monotonic clock is hc_time_monotonic_ns() (hcore/timefmt.h). */

/* The one secret wipe is hc_secret_wipe() (hcore/secret.h). */

/* --- tls.c: hkit's TLS floor and the check made before paho connects ---------------------- */

/* OpenSSL security level for every TLS connection: 112-bit keys (RSA >= 2048), no SHA-1. */
#define HC__TLS_SECURITY_LEVEL 2
/*
 * The TLS 1.2 cipher string of every TLS connection. paho takes no security level and no minimum
 * version, but applies a cipher string after lowering the level to 1: "@SECLEVEL=2" raises it
 * back on paho's own context, and without SHA-1/MD5 MAC suites (the only ones TLS 1.0/1.1 can
 * use) that context cannot negotiate TLS older than 1.2 either. TLS 1.3 suites are unaffected.
 */
#define HC__TLS_CIPHERS "DEFAULT:!SHA1:!MD5:@SECLEVEL=2"

struct hc__tls_target {
    const char *host; /* as in the url: [v6] hosts keep their brackets */
    int port;
    const char *cafile, *capath; /* both NULL: the system store */
    bool insecure;               /* no chain or host name check; the protocol floor still holds */
    int timeout_ms;              /* for the TCP connect and again for the handshake */
};

/*
 * TCP connect to host:port within timeout_ms; *fd_out is a non-blocking, close-on-exec socket.
 * HC_ERR_CONNECT names the cause: unresolvable host, refused, no answer in time.
 */
hc_err hc__net_connect(const char *host, int port, int timeout_ms, int *fd_out, hc_error *err);

/*
 * Connects, completes a TLS handshake under hkit's floor (TLS >= 1.2, security level 2, chain
 * and host name verified unless insecure) and closes again, sending no application data.
 * HC_OK; HC_ERR_TLS for what retrying cannot fix (verification failure naming what failed:
 * host name, expiry, unknown CA, weak key; an old protocol; a plain MQTT port); HC_ERR_CONNECT
 * for what it may (unresolvable, refused, timed out, closed during the handshake).
 */
hc_err hc__tls_probe(const struct hc__tls_target *t, hc_error *err);

/* --- strmap.c: string keys to small values ----------------------------------------------- */

/*
 * An open-addressing hash map from byte-string keys (copied) to a caller's index (size_t), for
 * interning topics, devices and types. Grows by doubling; no removal.
 */
struct hc__strmap {
    struct hc__strmap_slot *slots;
    size_t cap, count;
};

void hc__strmap_init(struct hc__strmap *m);
void hc__strmap_release(struct hc__strmap *m);
/* Finds key: true and *value. */
bool hc__strmap_get(const struct hc__strmap *m, const char *key, size_t key_len, size_t *value);
/* Adds key (must be absent) with value. HC_ERR_NOMEM. */
hc_err hc__strmap_put(struct hc__strmap *m, const char *key, size_t key_len, size_t value);

/* --- proc.c ------------------------------------------------------------------------------ */

/* Default dispositions for every signal and an empty mask: for a child before it execs. */
void hc__proc_default_signals(void);

/* --- jsontime.c: timestamps inside JSON payloads ---------------------------------------------- */

/*
 * Finds the next "measured_at" or "received_at" member of a JSON payload p (n bytes) whose value
 * is an RFC 3339 string, scanning from *pos (start at 0; a payload that is not an object or array
 * has none). True with the value's text at p[*start, *end) and its time in *ts, and *pos past it;
 * false when there is no other. field (may be NULL) receives the member's 11-byte name.
 */
bool hc__json_next_time(const unsigned char *p, size_t n, size_t *pos, size_t *start, size_t *end,
                        int64_t *ts, const char **field);
/* Fraction digits to write a time back as it was written: 0, 3, 6 or 9 (rounded up). */
int hc__time_fraction_digits(const char *text, size_t len);

#endif

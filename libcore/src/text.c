/*
 * UTF-8 validation and base64, the two things that decide how a payload is written to JSON.
 */
#include "hcore/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bool hc_text_is_json_safe_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t k;

        if (s[i] - 1u < 0x7fu) { /* 0x01-0x7f; a NUL wraps around */
            i++;
            continue;
        }
        k = hc_utf8_sequence_len(s + i, len - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t hc_base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

void hc_base64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t i = 0;
    char *o = out;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

hc_err hc_base64_decode(const char *text, size_t n, unsigned char **out, size_t *out_len,
                        hc_error *err)
{
    unsigned char *buf;
    size_t o = 0;

    *out = NULL;
    *out_len = 0;
    if (n % 4 != 0)
        return hc_error_set(err, HC_ERR_PARSE, "invalid base64: length %zu is not a multiple of 4",
                            n);
    buf = malloc(n / 4 * 3 + 1);
    if (!buf)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory decoding base64");
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = text[i + (size_t)k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = pad ? -1 : b64_value(c);
            if (v[k] < 0) {
                free(buf);
                return hc_error_set(err, HC_ERR_PARSE, "invalid base64 at offset %zu",
                                    i + (size_t)k);
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        buf[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            buf[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            buf[o++] = (unsigned char)w;
    }
    *out = buf;
    *out_len = o;
    return HC_OK;
}

/* The one UTF-8 validator of libcore (RFC 3629): the second byte's range rules out overlongs,
 * surrogates and code points above U+10FFFF without decoding the code point. */
size_t hc_utf8_sequence_len(const unsigned char *s, size_t avail)
{
    unsigned char c, lo = 0x80, hi = 0xBF;
    size_t n;

    if (!avail)
        return 0;
    c = s[0];
    if (c < 0x80)
        return c ? 1 : 0;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* --- JSON text ------------------------------------------------------------------------------- */

/* Bytes the escaper cannot copy as they are without a look: controls, '"', '\\', non-ASCII. */
static const unsigned char escape_class[256] = {
#define X16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    X16(1), X16(1), /* 0x00-0x1f */
    0,      0,      1,      0,      0,      0,      0,      0,      0,      0,
    0,      0,      0,      0,      0,      0, /* '"' */
    X16(0), X16(0), 0,      0,      0,      0,      0,      0,      0,      0,
    0,      0,      0,      0,      1,      0,      0,      0,                      /* '\\' */
    X16(0), X16(0), X16(1), X16(1), X16(1), X16(1), X16(1), X16(1), X16(1), X16(1), /* 0x80-0xff */
#undef X16
};

/* The one JSON string escaper of libcore (jsonl, jsonout, redact). */
size_t hc_json_escape(const unsigned char *s, size_t n, char *dst)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *end = s + n;
    char *o = dst;

    *o++ = '"';
    while (s < end) {
        unsigned char c = *s;
        size_t k;

        if (!escape_class[c]) {
            *o++ = (char)c;
            s++;
            continue;
        }
        if (c >= 0x80 && (k = hc_utf8_sequence_len(s, (size_t)(end - s))) != 0) {
            memcpy(o, s, k);
            o += k;
            s += k;
            continue;
        }
        s++;
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default: /* other controls, and bytes outside well-formed UTF-8 (read as Latin-1) */
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
            break;
        }
    }
    *o++ = '"';
    return (size_t)(o - dst);
}

enum lex_state { S_VALUE, S_VALUE_OR_END, S_KEY, S_KEY_OR_END, S_COLON, S_NEXT, S_DONE };

void hc_json_lexer_init(struct hc_json_lexer *lx, const char *text, size_t len, size_t max_depth)
{
    memset(lx, 0, sizeof(*lx));
    lx->text = text;
    lx->len = len;
    lx->max_depth = max_depth;
    lx->state = S_VALUE;
}

void hc_json_lexer_release(struct hc_json_lexer *lx)
{
    if (!lx)
        return;
    free(lx->stack);
    lx->stack = NULL;
    lx->stack_cap = 0;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hc__hex_value((unsigned char)p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static hc_err lex_fail(struct hc_json_lexer *lx, size_t at, hc_error *err)
{
    lx->error_at = at;
    return hc_error_set(err, HC_ERR_PARSE, "invalid JSON at byte %zu", at + 1);
}

/* A string at lx->pos (the opening quote): sets *end past the closing quote. */
static hc_err lex_string(struct hc_json_lexer *lx, size_t *end, bool *escaped, hc_error *err)
{
    const char *t = lx->text;
    size_t i = lx->pos + 1, n = lx->len;

    *escaped = false;
    for (;;) {
        unsigned char c;
        if (i >= n)
            return lex_fail(lx, i, err);
        c = (unsigned char)t[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return lex_fail(lx, i, err);
        if (c != '\\') {
            i++;
            continue;
        }
        *escaped = true;
        if (i + 1 >= n)
            return lex_fail(lx, i, err);
        switch (t[i + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            i += 2;
            break;
        case 'u': {
            int cp = i + 6 <= n ? hex4(t + i + 2) : -1;
            if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return lex_fail(lx, i, err);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* a high surrogate needs its low half, as cJSON requires */
                int lo = i + 12 <= n && t[i + 6] == '\\' && t[i + 7] == 'u' ? hex4(t + i + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return lex_fail(lx, i, err);
                i += 6;
            }
            i += 6;
            break;
        }
        default:
            return lex_fail(lx, i, err);
        }
    }
    *end = i + 1;
    return HC_OK;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 8259's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static size_t lex_number(const char *t, size_t i, size_t n)
{
    size_t start = i;

    if (i < n && t[i] == '-')
        i++;
    if (i < n && t[i] == '0')
        i++;
    else if (i < n && is_digit(t[i]))
        while (i < n && is_digit(t[i]))
            i++;
    else
        return 0;
    if (i < n && t[i] == '.') {
        if (++i >= n || !is_digit(t[i]))
            return 0;
        while (i < n && is_digit(t[i]))
            i++;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        if (i >= n || !is_digit(t[i]))
            return 0;
        while (i < n && is_digit(t[i]))
            i++;
    }
    return i - start;
}

static bool push_container(struct hc_json_lexer *lx, unsigned char c)
{
    if (lx->depth == lx->stack_cap) {
        void *stack = lx->stack;

        if (!hc__grow(&stack, &lx->stack_cap, lx->depth + 1, 1, 64))
            return false;
        lx->stack = stack;
    }
    lx->stack[lx->depth++] = c;
    return true;
}

/* The token that closes the innermost container, c ('}' or ']'), at text[i]. */
static hc_err lex_close(struct hc_json_lexer *lx, struct hc_json_token *tok, char c, size_t i,
                        hc_error *err)
{
    if (lx->state == S_VALUE_OR_END && c == '}')
        return lex_fail(lx, i, err);
    lx->depth--;
    lx->pos++;
    tok->type = c == '}' ? HC_JSON_END_OBJECT : HC_JSON_END_ARRAY;
    tok->len = 1;
    tok->depth = lx->depth;
    lx->state = lx->depth ? S_NEXT : S_DONE;
    return HC_OK;
}

/* A member's key, a string, at text[i] (c: its first byte). */
static hc_err lex_key(struct hc_json_lexer *lx, struct hc_json_token *tok, char c, size_t i,
                      hc_error *err)
{
    size_t end;
    bool escaped;
    hc_err rc;

    if (c != '"')
        return lex_fail(lx, i, err);
    if ((rc = lex_string(lx, &end, &escaped, err)) != HC_OK)
        return rc;
    tok->type = HC_JSON_KEY;
    tok->len = end - i;
    tok->escaped = escaped;
    lx->pos = end;
    lx->state = S_COLON;
    return HC_OK;
}

/* The token that opens a container, c ('{' or '['), at text[i]. */
static hc_err lex_open(struct hc_json_lexer *lx, struct hc_json_token *tok, char c, size_t i,
                       hc_error *err)
{
    if (lx->depth >= lx->max_depth) {
        lx->too_deep = true;
        lx->error_at = i;
        return hc_error_set(err, HC_ERR_PARSE, "nesting deeper than %zu levels", lx->max_depth);
    }
    if (!push_container(lx, (unsigned char)c))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    lx->pos++;
    tok->type = c == '{' ? HC_JSON_BEGIN_OBJECT : HC_JSON_BEGIN_ARRAY;
    tok->len = 1;
    lx->state = c == '{' ? S_KEY_OR_END : S_VALUE_OR_END;
    return HC_OK;
}

/* A value at text[i] (c: its first byte): a container's start or a whole scalar. */
static hc_err lex_value(struct hc_json_lexer *lx, struct hc_json_token *tok, char c, size_t i,
                        hc_error *err)
{
    const char *t = lx->text;
    size_t n = lx->len;

    if (c == '{' || c == '[')
        return lex_open(lx, tok, c, i, err);
    if (c == '"') {
        size_t end;
        bool escaped;
        hc_err rc = lex_string(lx, &end, &escaped, err);
        if (rc != HC_OK)
            return rc;
        tok->type = HC_JSON_STRING;
        tok->len = end - i;
        tok->escaped = escaped;
    } else if (c == '-' || is_digit(c)) {
        tok->type = HC_JSON_NUMBER;
        if (!(tok->len = lex_number(t, i, n)))
            return lex_fail(lx, i, err);
    } else if (n - i >= 4 && memcmp(t + i, "true", 4) == 0) {
        tok->type = HC_JSON_TRUE;
        tok->len = 4;
    } else if (n - i >= 5 && memcmp(t + i, "false", 5) == 0) {
        tok->type = HC_JSON_FALSE;
        tok->len = 5;
    } else if (n - i >= 4 && memcmp(t + i, "null", 4) == 0) {
        tok->type = HC_JSON_NULL;
        tok->len = 4;
    } else {
        return lex_fail(lx, i, err);
    }
    lx->pos = i + tok->len;
    lx->state = lx->depth ? S_NEXT : S_DONE;
    return HC_OK;
}

hc_err hc_json_lexer_next(struct hc_json_lexer *lx, struct hc_json_token *tok, hc_error *err)
{
    const char *t = lx->text;
    size_t n = lx->len;

    for (;;) {
        size_t i = lx->pos;
        unsigned char top;
        char c;
        while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
            i++;
        lx->pos = i;
        if (i >= n) {
            if (lx->state == S_DONE)
                return HC_DONE;
            return lex_fail(lx, i, err);
        }
        c = t[i];
        memset(tok, 0, sizeof(*tok));
        tok->text = t + i;
        tok->depth = lx->depth;
        switch (lx->state) {
        case S_DONE:
            return lex_fail(lx, i, err);
        case S_COLON:
            if (c != ':')
                return lex_fail(lx, i, err);
            lx->pos++;
            lx->state = S_VALUE;
            continue; /* separators give no token */
        case S_KEY:
            return lex_key(lx, tok, c, i, err);
        case S_VALUE:
            return lex_value(lx, tok, c, i, err);
        default: /* S_NEXT, S_KEY_OR_END, S_VALUE_OR_END: inside a container, its end may come */
            top = lx->stack[lx->depth - 1];
            if ((c == '}' && top == '{') || (c == ']' && top == '['))
                return lex_close(lx, tok, c, i, err);
            if (lx->state == S_KEY_OR_END)
                return lex_key(lx, tok, c, i, err);
            if (lx->state == S_VALUE_OR_END)
                return lex_value(lx, tok, c, i, err);
            if (c != ',')
                return lex_fail(lx, i, err);
            lx->pos++;
            lx->state = top == '{' ? S_KEY : S_VALUE;
            continue;
        }
    }
}

hc_err hc_json_validate(const char *text, size_t len, size_t max_depth, hc_error *err)
{
    struct hc_json_lexer lx;
    struct hc_json_token tok;
    hc_err rc;

    hc_json_lexer_init(&lx, text, len, max_depth);
    while ((rc = hc_json_lexer_next(&lx, &tok, err)) == HC_OK)
        ;
    hc_json_lexer_release(&lx);
    return rc == HC_DONE ? HC_OK : rc;
}

static void put_utf8(uint32_t cp, unsigned char **o)
{
    unsigned char *p = *o;
    if (cp < 0x80) {
        *p++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *p++ = (unsigned char)(0xC0 | (cp >> 6));
        *p++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *p++ = (unsigned char)(0xE0 | (cp >> 12));
        *p++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *p++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *p++ = (unsigned char)(0xF0 | (cp >> 18));
        *p++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *p++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *p++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    *o = p;
}

size_t hc_json_string_decode(const char *raw, size_t raw_len, unsigned char *dst)
{
    unsigned char *o = dst;
    size_t i = 1, end = raw_len - 1; /* inside the quotes */

    while (i < end) {
        char c = raw[i];
        if (c != '\\') {
            *o++ = (unsigned char)c;
            i++;
            continue;
        }
        c = raw[i + 1];
        i += 2;
        if (c != 'u') { /* the lexer let only valid escapes through */
            *o++ = (unsigned char)hc__json_unescape((unsigned char)c);
            continue;
        }
        uint32_t cp = (uint32_t)hex4(raw + i);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = (uint32_t)hex4(raw + i + 2);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        put_utf8(cp, &o);
    }
    return (size_t)(o - dst);
}

size_t hc_json_compact(const char *text, size_t len, char *dst)
{
    char *o = dst;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            *o++ = c;
            if (c == '\\')
                *o++ = text[++i];
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            *o++ = c;
            in_string = true;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            *o++ = c;
        }
    }
    return (size_t)(o - dst);
}

/*
 * Byte/text helpers used wherever payloads meet JSON: UTF-8 validation and base64 (RFC 4648,
 * standard alphabet, padded), so binary payloads survive a trip through JSON lines exactly; and
 * JSON text as text: a strict lexer that hands out every token's original bytes, string
 * decoding that keeps U+0000, and compaction that keeps every token as written. These let
 * imports and redaction keep what they were given (cJSON turns numbers into doubles and ends
 * strings at U+0000).
 */
#ifndef HCORE_TEXT_H
#define HCORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * True when bytes are well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) and contain no
 * NUL byte, i.e. can be carried as a JSON string and read back unchanged.
 */
bool hc_text_is_json_safe_utf8(const unsigned char *bytes, size_t len);

/*
 * Length (1-4) of the well-formed UTF-8 sequence at s (avail bytes readable), or 0 when s starts
 * with a NUL byte or anything that is not well-formed UTF-8 (see above).
 */
size_t hc_utf8_sequence_len(const unsigned char *s, size_t avail);

/* Length of the base64 text for len bytes, without the terminating NUL. */
size_t hc_base64_encoded_len(size_t len);

/* Encodes into out (at least hc_base64_encoded_len(len) + 1 bytes, NUL-terminated). */
void hc_base64_encode(const unsigned char *bytes, size_t len, char *out);

/*
 * Decodes base64 text (padding required when the length is not a multiple of 4; no whitespace).
 * *out is a new buffer (free()), never NULL on success even for empty input. HC_ERR_PARSE on
 * bad input.
 */
hc_err hc_base64_decode(const char *text, size_t text_len, unsigned char **out, size_t *out_len,
                        hc_error *err);

/* --- JSON text --- */

/*
 * Writes bytes as a JSON string literal with its quotes: '"' and '\\' escaped, \b \f \n \r \t,
 * other bytes below 0x20 as \u00XX (the escapes cJSON prints), well-formed UTF-8 as it is, and
 * every byte outside well-formed UTF-8 as \u00XX (its Latin-1 reading), so the result is valid
 * JSON whatever s holds. dst needs 6 * n + 2 bytes; no NUL is added. Returns the length written.
 */
size_t hc_json_escape(const unsigned char *s, size_t n, char *dst);

enum hc_json_type {
    HC_JSON_BEGIN_OBJECT = 1,
    HC_JSON_END_OBJECT,
    HC_JSON_BEGIN_ARRAY,
    HC_JSON_END_ARRAY,
    HC_JSON_KEY, /* a member name (a string followed by ':') */
    HC_JSON_STRING,
    HC_JSON_NUMBER,
    HC_JSON_TRUE,
    HC_JSON_FALSE,
    HC_JSON_NULL
};

/* One token, pointing into the lexed text. */
struct hc_json_token {
    enum hc_json_type type;
    const char *text; /* its bytes as written; a string's or key's include both quotes */
    size_t len;
    size_t depth; /* containers open around it (an END token: after it closed) */
    bool escaped; /* a string or key holding at least one backslash escape */
};

/*
 * A pull lexer over one JSON text (RFC 8259: one value, blank space ' ', \t, \n, \r only,
 * numbers as the RFC writes them, "\u" escapes with surrogates in pairs; bytes >= 0x80 inside
 * strings are not checked). Nesting is tracked on the heap, so any depth up to max_depth costs
 * no C stack. Fields are private.
 */
struct hc_json_lexer {
    const char *text;
    size_t len, pos;
    size_t max_depth, depth;
    unsigned char *stack; /* '{' or '[' per open container */
    size_t stack_cap;
    int state;
    bool too_deep;   /* the error was nesting beyond max_depth */
    size_t error_at; /* byte offset of the error */
};

/* Starts lexing text[0, len). Containers nest at most max_depth deep. */
void hc_json_lexer_init(struct hc_json_lexer *lx, const char *text, size_t len, size_t max_depth);

/*
 * The next token: HC_OK and *tok; HC_DONE after the one value and trailing blank space;
 * HC_ERR_PARSE ("invalid JSON at byte N", or "nesting deeper than N levels" with too_deep set)
 * or HC_ERR_NOMEM. After an error the lexer must not be asked again.
 */
hc_err hc_json_lexer_next(struct hc_json_lexer *lx, struct hc_json_token *tok, hc_error *err);

/* Frees the nesting stack; accepts NULL. */
void hc_json_lexer_release(struct hc_json_lexer *lx);

/* Lexes text to the end: HC_OK when it is one valid JSON value, else the lexer's error. */
hc_err hc_json_validate(const char *text, size_t len, size_t max_depth, hc_error *err);

/*
 * Decodes a string or key token (raw with its quotes, as the lexer gave it) into dst, which
 * needs raw_len bytes; returns the decoded length. \u0000 gives a NUL byte, surrogate pairs
 * one 4-byte sequence. No NUL is added. Only for tokens the lexer accepted.
 */
size_t hc_json_string_decode(const char *raw, size_t raw_len, unsigned char *dst);

/*
 * Copies a JSON text the lexer accepted without the blank space between tokens: every token
 * keeps its bytes as written (9007199254740993, 1.0, 1e400, "\u00e9" stay so). dst needs len
 * bytes; returns the length written (no NUL added).
 */
size_t hc_json_compact(const char *text, size_t len, char *dst);

#ifdef __cplusplus
}
#endif
#endif

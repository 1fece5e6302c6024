/*
 * Byte/text helpers used wherever payloads meet JSON: UTF-8 validation and base64 (RFC 4648,
 * standard alphabet, padded), so binary payloads survive a trip through JSON lines exactly.
 */
#ifndef HCORE_TEXT_H
#define HCORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * True when bytes are well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) and contain no
 * NUL byte, i.e. can be carried as a JSON string and read back unchanged.
 */
bool hc_text_is_json_safe_utf8(const unsigned char *bytes, size_t len);

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

#ifdef __cplusplus
}
#endif
#endif

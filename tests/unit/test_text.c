/*
 * UTF-8 validation and base64: what decides whether a payload travels as text or base64.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/text.h"

Test(text, valid_utf8_without_nul_is_json_safe)
{
    const char *ok[] = {"", "plain", "{\"t\":\"°C\"}", "Ω €", "\xF0\x9F\x98\x80"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_assert(hc_text_is_json_safe_utf8((const unsigned char *)ok[i], strlen(ok[i])), "%zu",
                  i);
}

Test(text, nul_overlong_surrogate_and_truncated_sequences_are_not_json_safe)
{
    struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"a\0b", 3},         /* NUL */
        {"\xC0\xAF", 2},     /* overlong '/' */
        {"\xE0\x80\xAF", 3}, /* overlong */
        {"\xED\xA0\x80", 3}, /* surrogate U+D800 */
        {"\xF4\x90\x80\x80", 4}, /* > U+10FFFF */
        {"\xE2\x82", 2},     /* truncated */
        {"\xFF", 1},         /* never valid */
        {"\x80", 1},         /* lone continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(hc_text_is_json_safe_utf8((const unsigned char *)bad[i].bytes, bad[i].len),
                      "case %zu", i);
}

Test(text, base64_round_trips_every_length_and_byte)
{
    unsigned char in[300];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(in); len += (len < 10 ? 1 : 29)) {
        char *enc = malloc(hc_base64_encoded_len(len) + 1);
        unsigned char *dec = NULL;
        size_t dec_len = 99;
        hc_base64_encode(in, len, enc);
        cr_assert_eq(strlen(enc), hc_base64_encoded_len(len));
        cr_assert_eq(hc_base64_decode(enc, strlen(enc), &dec, &dec_len, NULL), HC_OK);
        cr_assert_eq(dec_len, len);
        cr_assert(len == 0 || memcmp(dec, in, len) == 0);
        free(enc);
        free(dec);
    }
}

Test(text, base64_matches_rfc4648_vectors)
{
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        hc_base64_encode((const unsigned char *)plain[i], strlen(plain[i]), out);
        cr_assert_str_eq(out, coded[i]);
    }
}

Test(text, base64_rejects_bad_alphabet_padding_and_length)
{
    const char *bad[] = {"Zg=", "Z===", "Zm9v!A==", "=Zm9", "Zg==Zg==", "Zm9vYg=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *out = NULL;
        size_t n = 0;
        hc_error err = HC_ERROR_INIT;
        cr_assert_eq(hc_base64_decode(bad[i], strlen(bad[i]), &out, &n, &err), HC_ERR_PARSE,
                     "%s", bad[i]);
        cr_assert_null(out);
    }
}

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
        cr_assert(hc_text_is_json_safe_utf8((const unsigned char *)ok[i], strlen(ok[i])), "%zu", i);
}

Test(text, nul_overlong_surrogate_and_truncated_sequences_are_not_json_safe)
{
    struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"a\0b", 3},             /* NUL */
        {"\xC0\xAF", 2},         /* overlong '/' */
        {"\xE0\x80\xAF", 3},     /* overlong */
        {"\xED\xA0\x80", 3},     /* surrogate U+D800 */
        {"\xF4\x90\x80\x80", 4}, /* > U+10FFFF */
        {"\xE2\x82", 2},         /* truncated */
        {"\xFF", 1},             /* never valid */
        {"\x80", 1},             /* lone continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(hc_text_is_json_safe_utf8((const unsigned char *)bad[i].bytes, bad[i].len),
                      "case %zu", i);
}

Test(text, utf8_sequence_length_is_the_bytes_of_one_well_formed_character_or_zero)
{
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"a", 1), 1);
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"\xC2\xA0", 2), 2);
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"\xE2\x82\xAC", 3), 3);
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"\xF4\x8F\xBF\xBF", 4), 4);
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"\xE2\x82\xAC", 2), 0);
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"\xED\x9F\xBF", 3), 3);
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"\xED\xA0\x80", 3), 0);
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"\xF0\x8F\xBF\xBF", 4), 0);
    cr_assert_eq(hc_utf8_sequence_len((const unsigned char *)"", 1), 0);
}

Test(text, json_escape_uses_short_escapes_and_escapes_bytes_outside_utf8)
{
    static const unsigned char in[] = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f\xC3\xA9\xFF\xC3";
    char out[6 * sizeof(in) + 2];
    size_t n = hc_json_escape(in, sizeof(in) - 1, out);

    out[n] = '\0';
    cr_assert_str_eq(out, "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xC3\xA9\\u00ff"
                          "\\u00c3\"");
    n = hc_json_escape((const unsigned char *)"a\0b", 3, out);
    out[n] = '\0';
    cr_assert_str_eq(out, "\"a\\u0000b\"");
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
        cr_assert_eq(hc_base64_decode(bad[i], strlen(bad[i]), &out, &n, &err), HC_ERR_PARSE, "%s",
                     bad[i]);
        cr_assert_null(out);
    }
}

/* --- the JSON lexer, string decoding and compaction ------------------------------------------- */

static hc_err validate(const char *text)
{
    return hc_json_validate(text, strlen(text), 4, NULL);
}

Test(text, the_json_lexer_accepts_rfc_8259_and_nothing_more)
{
    const char *good[] = {
        "{}",          " [ 1 , -0.5e+3 , true , null , \"\\u00e9\\ud83d\\ude00\" ] ",
        "\"\\u0000\"", "0",
        "[[[[]]]]",    "{\"a\":{\"b\":[1]}}"};
    const char *bad[] = {"",      "01",         "1.",          "+1",      "[1,]",     "{\"a\" 1}",
                         "{,}",   "[1] [2]",    "\"\\ud800\"", "\"\\x\"", "\"a\tb\"", "nul",
                         "{1:2}", "[[[[[]]]]]", "[}",          "{]"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert_eq(validate(good[i]), HC_OK, "'%s' is JSON", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(validate(bad[i]), HC_ERR_PARSE, "'%s' is not JSON", bad[i]);
}

Test(text, the_json_lexer_gives_tokens_with_their_original_text_and_depth)
{
    const char *text = "{\"k\": [1.50, \"a\\/b\"]}";
    struct hc_json_lexer lx;
    struct hc_json_token t;
    const struct {
        enum hc_json_type type;
        const char *text;
        size_t depth;
    } want[] = {{HC_JSON_BEGIN_OBJECT, "{", 0},   {HC_JSON_KEY, "\"k\"", 1},
                {HC_JSON_BEGIN_ARRAY, "[", 1},    {HC_JSON_NUMBER, "1.50", 2},
                {HC_JSON_STRING, "\"a\\/b\"", 2}, {HC_JSON_END_ARRAY, "]", 1},
                {HC_JSON_END_OBJECT, "}", 0}};
    hc_json_lexer_init(&lx, text, strlen(text), 10);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_assert_eq(hc_json_lexer_next(&lx, &t, NULL), HC_OK);
        cr_assert_eq(t.type, want[i].type, "token %zu", i);
        cr_assert_eq(t.len, strlen(want[i].text), "token %zu", i);
        cr_assert_eq(memcmp(t.text, want[i].text, t.len), 0, "token %zu", i);
        cr_assert_eq(t.depth, want[i].depth, "token %zu", i);
    }
    cr_assert_eq(hc_json_lexer_next(&lx, &t, NULL), HC_DONE);
    hc_json_lexer_release(&lx);
}

Test(text, deep_nesting_is_refused_with_its_limit_not_a_crash)
{
    size_t n = 200000;
    char *deep = malloc(n + 1);
    hc_error err = HC_ERROR_INIT;

    cr_assert_not_null(deep);
    memset(deep, '[', n);
    deep[n] = '\0';
    cr_assert_eq(hc_json_validate(deep, n, 1000, &err), HC_ERR_PARSE);
    cr_assert_str_eq(err.message, "nesting deeper than 1000 levels");
    free(deep);
}

Test(text, json_strings_decode_with_nul_and_surrogates_and_compaction_keeps_tokens)
{
    const char *raw = "\"a\\u0000\\n\\/\\ud83d\\ude00\"";
    unsigned char out[64];
    char compact[64];
    const char *spaced = "{ \"a b\" : [ 1.0 , 1e400 ] ,\n\"c\" : \"x y\" }";
    size_t n = hc_json_string_decode(raw, strlen(raw), out);

    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(out, "a\0\n/\xf0\x9f\x98\x80", 8), 0);
    n = hc_json_compact(spaced, strlen(spaced), compact);
    compact[n] = '\0';
    cr_assert_str_eq(compact, "{\"a b\":[1.0,1e400],\"c\":\"x y\"}");
}

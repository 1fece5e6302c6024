/*
 * Tests of the compact JSON printer: byte-exact output for simple values, escapes and numbers;
 * every number reads back as the identical double; generated trees (tricky doubles, every byte
 * in keys and strings, references, raw items, empty containers) parse back equal under
 * cJSON_Compare and under a stricter bit-exact comparison; very deep nesting; buffer reuse and
 * errors; and decoder output of every fixture prints byte for byte as cJSON prints it.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/decode.h"
#include "hcore/jsonl.h"
#include "hcore/jsonout.h"
#include "hcore/text.h"

static struct hc_jsonout out = HC_JSONOUT_INIT;

static void release_out(void)
{
    hc_jsonout_release(&out);
}

TestSuite(jsonout, .fini = release_out);

static const char *print_ok(const cJSON *item)
{
    hc_error err = HC_ERROR_INIT;

    cr_assert_eq(hc_jsonout_print(&out, item, &err), HC_OK, "%s", err.message);
    cr_assert_eq(strlen(out.data), out.len);
    return out.data;
}

static void expect_print(const char *json_in, const char *expected)
{
    cJSON *item = cJSON_Parse(json_in);

    cr_assert_not_null(item, "bad test input %s", json_in);
    cr_assert_str_eq(print_ok(item), expected);
    cJSON_Delete(item);
}

static void expect_number(double d, const char *expected)
{
    char text[HC_JSONOUT_NUMBER_MAX];

    cr_assert_eq(hc_jsonout_format_number(d, text), strlen(expected), "%.17g -> '%s'", d, text);
    cr_assert_str_eq(text, expected, "%.17g", d);
}

/* Bitwise, so -0.0 differs from 0.0. */
static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

static void expect_reads_back(double d)
{
    char text[HC_JSONOUT_NUMBER_MAX];
    double back;
    cJSON *parsed;

    hc_jsonout_format_number(d, text);
    back = strtod(text, NULL);
    cr_assert(same_double(back, d), "%.17g printed as '%s' reads back as %.17g", d, text, back);
    parsed = cJSON_Parse(text);
    cr_assert_not_null(parsed, "'%s' is not JSON", text);
    cr_assert(cJSON_IsNumber(parsed));
    cr_assert(same_double(parsed->valuedouble, d), "cJSON reads '%s' as %.17g", text,
              parsed->valuedouble);
    cJSON_Delete(parsed);
}

static const double tricky[] = {
    0.1,
    0.2,
    0.3,
    1e-300,
    5e-324,
    2.2250738585072014e-308,
    2.2250738585072009e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    -0.0,
    0.0,
    9007199254740991.0,
    9007199254740992.0,
    9007199254740993.0, /* rounds to 2^53 */
    9007199254740994.0,
    -9007199254740991.0,
    -9007199254740994.0,
    23.5,
    -23.5,
    1013.64599,
    1770287445123.0,
    1770287445123.5,
    1770287445123000000.0,
    2147483647.0,
    2147483648.0,
    -2147483649.0,
    4294967296.5,
    0.0001,
    0.00009999999999999999,
    0.000123456789,
    1e-5,
    123456789012345680.0,
    1e21,
    1e22,
    1e23,
    0.30000000000000004,
    0.9999999999999999,
    4503599627370495.5,
    1.5e-10,
    3.141592653589793,
    2.718281828459045,
    100.0,
    1e15,
    1e16,
    1e17,
    -1e-7,
};

Test(jsonout, simple_values_print_exactly_as_expected)
{
    expect_print("{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}",
                 "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}");
    expect_print("[]", "[]");
    expect_print("{}", "{}");
    expect_print(" { \"a\" : [ ] , \"b\" : { } , \"c\" : [ [ ] , { } ] } ",
                 "{\"a\":[],\"b\":{},\"c\":[[],{}]}");
    expect_print("42", "42");
    expect_print("-7", "-7");
    expect_print("\"hi\"", "\"hi\"");
    expect_print("null", "null");
    expect_print("true", "true");
    expect_print("[1.5,-0.25,1e300]", "[1.5,-0.25,1e+300]");
    expect_print("{\"\":\"\"}", "{\"\":\"\"}");
}

Test(jsonout, numbers_print_in_their_shortest_exact_form)
{
    expect_number(0.0, "0");
    expect_number(-0.0, "-0");
    expect_number(1.0, "1");
    expect_number(-1.0, "-1");
    expect_number(23.5, "23.5");
    expect_number(-23.5, "-23.5");
    expect_number(1013.64599, "1013.64599");
    expect_number(0.1, "0.1");
    expect_number(0.30000000000000004, "0.30000000000000004");
    expect_number(0.0001, "0.0001");
    expect_number(1770287445123.0, "1770287445123");
    expect_number(1770287445123.5, "1770287445123.5");
    expect_number(2147483648.0, "2147483648");
    expect_number(9007199254740991.0, "9007199254740991");
    expect_number(-9007199254740991.0, "-9007199254740991");
    expect_number(9007199254740992.0, "9007199254740992");
    expect_number(1e-300, "1e-300");
    expect_number(1e-5, "1e-05");
    expect_number(1.7976931348623157e308, "1.7976931348623157e+308");
    expect_number(1e21, "1e+21");
    expect_number(NAN, "null");
    expect_number(INFINITY, "null");
    expect_number(-INFINITY, "null");
}

Test(jsonout, numbers_use_a_decimal_point_whatever_the_locale)
{
    static const char *const comma_locales[] = {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "fr_FR"};
    bool found = false;

    for (size_t i = 0; i < sizeof(comma_locales) / sizeof(comma_locales[0]) && !found; i++)
        found = setlocale(LC_NUMERIC, comma_locales[i]) != NULL;
    if (!found)
        cr_skip_test("no locale with a decimal comma installed");
    expect_number(1.5e-5, "1.5e-05");
    expect_number(1.7976931348623157e308, "1.7976931348623157e+308");
    expect_number(23.5, "23.5");
    setlocale(LC_NUMERIC, "C");
}

Test(jsonout, tricky_doubles_read_back_identical)
{
    for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++)
        expect_reads_back(tricky[i]);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_u64(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static double random_finite_double(void)
{
    for (;;) {
        uint64_t bits = next_u64();
        double d;

        memcpy(&d, &bits, sizeof(d));
        if (isfinite(d))
            return d;
    }
}

/* Values shaped like sensor readings: a few digits after the point, at every magnitude. */
static double random_decimal(void)
{
    static const double scale[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    double m = (double)(next_u64() % 100000000);
    double d = m / scale[next_u64() % 9];

    return next_u64() % 2 ? -d : d;
}

Test(jsonout, random_doubles_read_back_identical)
{
    for (int i = 0; i < 200000; i++) {
        expect_reads_back(random_finite_double());
        expect_reads_back(random_decimal());
        expect_reads_back((double)(int64_t)(next_u64() >> (next_u64() % 64)));
    }
}

/* The printf digits with the fewest significant digits that strtod reads back exactly. */
static void shortest_printf(double d, char *text, size_t size)
{
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, size, "%.*g", precision, d);
        if (strtod(text, NULL) == d)
            return;
    }
}

Test(jsonout, decimal_readings_print_no_longer_than_the_shortest_printf_form)
{
    for (int i = 0; i < 100000; i++) {
        double d = random_decimal();
        char mine[HC_JSONOUT_NUMBER_MAX], shortest[64];

        if (fabs(d) < 1e-4 || d == trunc(d))
            continue;
        hc_jsonout_format_number(d, mine);
        shortest_printf(d, shortest, sizeof(shortest));
        if (strchr(shortest, 'e'))
            continue;
        cr_assert_str_eq(mine, shortest, "%.17g", d);
    }
}

Test(jsonout, strings_escape_quotes_backslashes_and_control_bytes)
{
    cJSON *s = cJSON_CreateString("a\"b\\c/d\x01\x1f\b\f\n\r\t\x7f");

    cr_assert_str_eq(print_ok(s), "\"a\\\"b\\\\c/d\\u0001\\u001f\\b\\f\\n\\r\\t\x7f\"");
    cJSON_Delete(s);

    s = cJSON_CreateString("23.5 \xc2\xb0"
                           "C, 5 \xe2\x82\xac, \xf0\x9f\x98\x80");
    cr_assert_str_eq(print_ok(s), "\"23.5 \xc2\xb0"
                                  "C, 5 \xe2\x82\xac, \xf0\x9f\x98\x80\"");
    cJSON_Delete(s);
}

Test(jsonout, every_ascii_byte_in_keys_and_strings_survives_a_round_trip_and_matches_cjson)
{
    char all[128];
    cJSON *obj = cJSON_CreateObject(), *parsed;
    char *theirs;

    for (int c = 1; c < 128; c++)
        all[c - 1] = (char)c;
    all[127] = '\0';
    cJSON_AddStringToObject(obj, all, all);
    for (int c = 1; c < 32; c++) {
        char key[2] = {(char)c, '\0'};
        cJSON_AddStringToObject(obj, key, key);
    }
    print_ok(obj);
    theirs = cJSON_PrintUnformatted(obj);
    cr_assert_str_eq(out.data, theirs);
    parsed = cJSON_Parse(out.data);
    cr_assert_not_null(parsed);
    cr_assert(cJSON_Compare(obj, parsed, true));
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(parsed, all)->valuestring, all);
    cJSON_free(theirs);
    cJSON_Delete(parsed);
    cJSON_Delete(obj);
}

Test(jsonout, long_strings_with_scattered_escapes_print_exactly_as_cjson_does)
{
    enum { LEN = 100000 };
    char *text = malloc(LEN + 1), *theirs;
    cJSON *s;

    cr_assert_not_null(text);
    for (size_t i = 0; i < LEN; i++)
        text[i] = (char)(i % 97 == 0 ? '\n' : i % 89 == 0 ? '\x02' : 'a' + (char)(i % 26));
    text[LEN] = '\0';
    s = cJSON_CreateString(text);
    theirs = cJSON_PrintUnformatted(s);
    cr_assert_str_eq(print_ok(s), theirs);
    cJSON_free(theirs);
    cJSON_Delete(s);
    free(text);
}

Test(jsonout, references_const_keys_and_raw_items_print_like_their_targets)
{
    cJSON *shared = cJSON_Parse("{\"x\":[1,2,{\"y\":\"z\"}]}");
    cJSON *list = cJSON_Parse("[3,4]");
    cJSON *obj = cJSON_CreateObject();

    cJSON_AddItemToObjectCS(obj, "kind", cJSON_CreateStringReference("measurements"));
    cJSON_AddItemReferenceToObject(obj, "shared", shared);
    cJSON_AddItemToObject(obj, "objref", cJSON_CreateObjectReference(shared->child));
    cJSON_AddItemToObject(obj, "arrref", cJSON_CreateArrayReference(list->child));
    cJSON_AddItemToObject(obj, "raw", cJSON_CreateRaw("{\"pre\": [1, 2]}"));
    cJSON_AddItemToObject(obj, "empty", cJSON_CreateObject());
    cr_assert_str_eq(print_ok(obj), "{\"kind\":\"measurements\",\"shared\":{\"x\":[1,2,{\"y\":"
                                    "\"z\"}]},\"objref\":{\"x\":[1,2,{\"y\":\"z\"}]},"
                                    "\"arrref\":[3,4],\"raw\":{\"pre\": [1, 2]},\"empty\":{}}");
    cJSON_Delete(obj);
    cJSON_Delete(shared);
    cJSON_Delete(list);
}

static const char *const sample_strings[] = {
    "",
    "measurements",
    "\xc2\xb0"
    "C",
    "line\nbreak",
    "tab\there",
    "\"quoted\"",
    "back\\slash",
    "\x01\x02\x03\x1e\x1f",
    "\xe2\x82\xac \xf0\x9f\x98\x80 \xe6\xb8\xa9\xe5\xba\xa6",
    "/slash/",
};

static void random_string(char *s, size_t size)
{
    size_t n = next_u64() % (size - 1);

    if (next_u64() % 2) {
        const char *pick = sample_strings[next_u64() % (sizeof(sample_strings) / sizeof(char *))];
        snprintf(s, size, "%s", pick);
        return;
    }
    /* ASCII: bytes that are not UTF-8 are escaped, so they would not read back equal */
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + next_u64() % 127);
    s[n] = '\0';
}

static double random_number(void)
{
    switch (next_u64() % 4) {
    case 0:
        return tricky[next_u64() % (sizeof(tricky) / sizeof(tricky[0]))];
    case 1:
        return random_finite_double();
    case 2:
        return random_decimal();
    default:
        return (double)(int64_t)(next_u64() >> (next_u64() % 64));
    }
}

static cJSON *random_tree(int depth)
{
    int kind = (int)(next_u64() % (depth >= 6 ? 5 : 7));
    char text[48];
    cJSON *item;

    switch (kind) {
    case 0:
        return cJSON_CreateNull();
    case 1:
        return cJSON_CreateBool((int)(next_u64() % 2));
    case 2:
    case 3:
        return cJSON_CreateNumber(random_number());
    case 4:
        random_string(text, sizeof(text));
        return cJSON_CreateString(text);
    case 5:
        item = cJSON_CreateArray();
        for (int n = (int)(next_u64() % 5); n > 0; n--)
            cJSON_AddItemToArray(item, random_tree(depth + 1));
        return item;
    default:
        item = cJSON_CreateObject();
        for (int n = (int)(next_u64() % 5); n > 0; n--) {
            char key[64];

            /* Unique keys: cJSON_Compare looks members up by name. */
            random_string(text, sizeof(text));
            snprintf(key, sizeof(key), "%d%s", n, text);
            cJSON_AddItemToObject(item, key, random_tree(depth + 1));
        }
        return item;
    }
}

/* Stricter than cJSON_Compare: member order, keys, and numbers bit for bit. */
static bool exactly_equal(const cJSON *a, const cJSON *b)
{
    if ((a->type & 0xFF) != (b->type & 0xFF))
        return false;
    if (cJSON_IsNumber(a))
        return same_double(a->valuedouble, b->valuedouble);
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsArray(a) || cJSON_IsObject(a)) {
        const cJSON *x = a->child, *y = b->child;

        for (; x && y; x = x->next, y = y->next) {
            if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0)
                return false;
            if (!exactly_equal(x, y))
                return false;
        }
        return !x && !y;
    }
    return true;
}

Test(jsonout, generated_trees_parse_back_equal)
{
    for (int i = 0; i < 3000; i++) {
        cJSON *tree = random_tree(0), *parsed;

        print_ok(tree);
        parsed = cJSON_Parse(out.data);
        cr_assert_not_null(parsed, "tree %d printed as unparsable '%s'", i, out.data);
        cr_assert(cJSON_Compare(tree, parsed, true), "tree %d: %s", i, out.data);
        cr_assert(exactly_equal(tree, parsed), "tree %d not exact: %s", i, out.data);
        cJSON_Delete(parsed);
        cJSON_Delete(tree);
    }
}

Test(jsonout, nan_and_infinity_print_as_null_like_cjson)
{
    cJSON *arr = cJSON_CreateArray();
    char *theirs;

    cJSON_AddItemToArray(arr, cJSON_CreateNumber(NAN));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(INFINITY));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(-INFINITY));
    theirs = cJSON_PrintUnformatted(arr);
    cr_assert_str_eq(print_ok(arr), "[null,null,null]");
    cr_assert_str_eq(out.data, theirs);
    cJSON_free(theirs);
    cJSON_Delete(arr);
}

/* cJSON_Delete recurses; take the chain apart from the bottom so the test's stack stays small. */
static void delete_chain(cJSON **chain, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        chain[i]->child = NULL;
        cJSON_Delete(chain[i]);
    }
}

Test(jsonout, nesting_far_deeper_than_cjson_parses_prints_without_recursion)
{
    enum { DEPTH = 200000 };
    cJSON **chain = malloc(DEPTH * sizeof(*chain));

    cr_assert_not_null(chain);
    for (size_t i = 0; i < DEPTH; i++) {
        chain[i] = i % 2 ? cJSON_CreateObject() : cJSON_CreateArray();
        if (i > 0 && i % 2)
            cJSON_AddItemToArray(chain[i - 1], chain[i]);
        else if (i > 0)
            cJSON_AddItemToObject(chain[i - 1], "k", chain[i]);
    }
    print_ok(chain[0]);
    cr_assert_eq(out.len, DEPTH / 2 * (2 + 2 + 4) - 4);
    cr_assert_eq(strncmp(out.data, "[{\"k\":[{\"k\":[", 13), 0);
    cr_assert_eq(strcmp(out.data + out.len - 6, "}]}]}]"), 0);
    cr_assert_not_null(strstr(out.data, "[{}]}]"));
    delete_chain(chain, DEPTH);
    free(chain);
}

Test(jsonout, nesting_at_cjson_parse_limit_round_trips)
{
    char text[2 * 999 + 1];
    cJSON *parsed, *again;

    memset(text, '[', 999);
    memset(text + 999, ']', 999);
    text[2 * 999] = '\0';
    parsed = cJSON_Parse(text);
    cr_assert_not_null(parsed);
    cr_assert_str_eq(print_ok(parsed), text);
    again = cJSON_Parse(out.data);
    cr_assert(cJSON_Compare(parsed, again, true));
    cJSON_Delete(again);
    cJSON_Delete(parsed);
}

Test(jsonout, buffer_is_reused_and_append_concatenates)
{
    cJSON *big = cJSON_CreateArray(), *small = cJSON_CreateNumber(7);
    char *data;
    size_t cap;

    for (int i = 0; i < 1000; i++)
        cJSON_AddItemToArray(big, cJSON_CreateString("0123456789"));
    print_ok(big);
    data = out.data;
    cap = out.cap;
    cr_assert_str_eq(print_ok(small), "7");
    print_ok(big);
    cr_assert_eq(out.data, data, "a warm buffer must not move");
    cr_assert_eq(out.cap, cap);
    print_ok(small);
    cr_assert_eq(hc_jsonout_append(&out, small, NULL), HC_OK);
    cr_assert_str_eq(out.data, "77");
    cr_assert_eq(out.len, 2);
    cJSON_Delete(big);
    cJSON_Delete(small);
}

Test(jsonout, bad_items_are_errors_that_leave_the_buffer_as_it_was)
{
    hc_error err = HC_ERROR_INIT;
    cJSON *arr = cJSON_CreateArray(), *raw = cJSON_CreateRaw("1"), *one = cJSON_CreateNumber(1);

    cr_assert_eq(hc_jsonout_print(&out, NULL, &err), HC_ERR_INVALID);
    cr_assert_eq(hc_jsonout_print(NULL, one, &err), HC_ERR_INVALID);
    cr_assert_eq(hc_jsonout_print(&out, one, &err), HC_OK);
    cJSON_free(raw->valuestring);
    raw->valuestring = NULL;
    cJSON_AddItemToArray(arr, cJSON_CreateTrue());
    cJSON_AddItemToArray(arr, raw);
    cr_assert_eq(hc_jsonout_append(&out, arr, &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "raw JSON item without text");
    cr_assert_str_eq(out.data, "1");
    cr_assert_eq(out.len, 1);
    raw->type = cJSON_Invalid;
    cr_assert_eq(hc_jsonout_print(&out, arr, &err), HC_ERR_INVALID);
    cr_assert_eq(out.len, 0);
    cr_assert_str_eq(out.data, "");
    cJSON_Delete(arr);
    cJSON_Delete(one);
}

Test(jsonout, release_accepts_null_and_an_unused_printer)
{
    struct hc_jsonout unused;

    hc_jsonout_init(&unused);
    hc_jsonout_release(&unused);
    hc_jsonout_release(NULL);
    cr_assert_null(unused.data);
}

/* Every fixture's input, decoded: the output must be exactly what cJSON prints. */
Test(jsonout, decoder_output_of_every_fixture_prints_exactly_as_cjson_does)
{
    DIR *dir = opendir(HKIT_SOURCE_DIR "/fixtures");
    struct dirent *entry;
    int messages = 0;

    cr_assert_not_null(dir);
    while ((entry = readdir(dir)) != NULL) {
        char path[1024];
        hc_jsonl_reader *reader = NULL;
        struct hc_jsonl_record rec;
        hc_error err = HC_ERROR_INIT;
        hc_err rc;

        if (entry->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/fixtures/%s/input.jsonl", HKIT_SOURCE_DIR, entry->d_name);
        if (hc_jsonl_reader_open(path, &reader, NULL) != HC_OK)
            continue;
        while ((rc = hc_jsonl_next(reader, &rec, &err)) == HC_OK) {
            cJSON *decoded = NULL;
            char *theirs;

            cr_assert_eq(hc_decode_message(rec.msg.topic, rec.msg.payload, rec.msg.payload_len,
                                           &decoded, NULL),
                         HC_OK);
            theirs = cJSON_PrintUnformatted(decoded);
            cr_assert_str_eq(print_ok(decoded), theirs, "%s line %zu", path, rec.line);
            cJSON_free(theirs);
            cJSON_Delete(decoded);
            messages++;
        }
        cr_assert_eq(rc, HC_DONE, "%s: %s", path, err.message);
        hc_jsonl_reader_close(reader);
    }
    closedir(dir);
    cr_assert_gt(messages, 50);
}

/* Issue 11 item 5: a topic stored with invalid UTF-8 made hkit's own output invalid JSON. */
Test(jsonout, bytes_that_are_not_utf8_are_escaped_so_the_output_stays_json)
{
    struct hc_jsonout o = HC_JSONOUT_INIT;
    cJSON *doc = cJSON_CreateObject();
    cJSON *back;

    cJSON_AddStringToObject(doc, "topic", "a/\xff\xfe/\xc3\xa9/\xe2\x82/\xf0\x9f\x98\x80/\xc0\xaf");
    cr_assert_eq(hc_jsonout_print(&o, doc, NULL), HC_OK);
    cr_assert_str_eq(o.data, "{\"topic\":\"a/\\u00ff\\u00fe/\xc3\xa9/\\u00e2\\u0082/"
                               "\xf0\x9f\x98\x80/\\u00c0\\u00af\"}");
    cr_assert(hc_text_is_json_safe_utf8((const unsigned char *)o.data, o.len));
    back = cJSON_Parse(o.data);
    cr_assert_not_null(back);
    cJSON_Delete(back);
    /* a long string crossing the reserve chunks with bad bytes everywhere */
    {
        char big[3001];
        for (size_t i = 0; i < 3000; i++)
            big[i] = (char)(i % 3 == 0 ? 0xff : 'x');
        big[3000] = '\0';
        cJSON_ReplaceItemInObject(doc, "topic", cJSON_CreateString(big));
        cr_assert_eq(hc_jsonout_print(&o, doc, NULL), HC_OK);
        cr_assert_eq(o.len, strlen("{\"topic\":\"\"}") + 1000 * 6 + 2000);
        cr_assert(hc_text_is_json_safe_utf8((const unsigned char *)o.data, o.len));
    }
    cJSON_Delete(doc);
    hc_jsonout_release(&o);
}

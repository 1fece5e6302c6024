/*
 * Tests of JSON lines I/O: writing then reading gives back the same bytes (binary, NUL, invalid
 * UTF-8, empty payloads) and the same 64-bit times; mosquitto_sub -F '%j' lines are read,
 * including the "Z+0000" timestamp form, and a payload cut at a NUL byte is an error; bad
 * lines name their line number and leave the reader usable. The fast path gives exactly the
 * cJSON path's records and errors; line splitting copes with CRLF, empty lines, a last line
 * without newline and lines longer than the read buffer; the wait hook runs before blocking on
 * a pipe and never for a regular file.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcore/jsonl.h"
#include "hcore/text.h"
#include "hcore/timefmt.h"

static char path[256];

static void make_path(void)
{
    const char *base = getenv("TMPDIR");
    int fd;
    snprintf(path, sizeof(path), "%s/hkit-jsonl-XXXXXX", base && *base ? base : "/tmp");
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
}

static void remove_path(void)
{
    unlink(path);
}

TestSuite(jsonl, .init = make_path, .fini = remove_path);

static void write_text(const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static hc_jsonl_reader *open_reader(void)
{
    hc_error err = HC_ERROR_INIT;
    hc_jsonl_reader *r = NULL;
    cr_assert_eq(hc_jsonl_reader_open(path, &r, &err), HC_OK, "%s", err.message);
    return r;
}

static void round_trip(const unsigned char *payload, size_t len, const char *expect_member)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_msg m = {0};
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;
    char line[4096];
    FILE *f = fopen(path, "wb");

    m.seq = 7;
    m.session_id = 2;
    m.received_at_ns = 1770287445123456789LL;
    m.mono_ns = 45123456789LL;
    m.timeline_ns = 1770287400000000001LL + m.mono_ns;
    m.topic = "haltian-iot/events/i/k/measurements/co2/d";
    m.payload = payload;
    m.payload_len = len;
    m.qos = 2;
    m.retain = true;
    cr_assert_eq(hc_jsonl_write(f, &m, NULL, &err), HC_OK);
    fclose(f);
    f = fopen(path, "rb");
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    cr_assert_not_null(strstr(line, expect_member), "%s", line);

    r = open_reader();
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK, "%s", err.message);
    cr_assert_eq(rec.msg.payload_len, len);
    cr_assert(len == 0 || memcmp(rec.msg.payload, payload, len) == 0);
    cr_assert_str_eq(rec.msg.topic, m.topic);
    cr_assert_eq(rec.msg.seq, 7);
    cr_assert_eq(rec.msg.session_id, 2);
    cr_assert_eq(rec.msg.received_at_ns, m.received_at_ns);
    cr_assert(rec.has_session_start);
    cr_assert_eq(rec.session_started_at_ns, 1770287400000000001LL);
    cr_assert_eq(rec.msg.mono_ns, m.mono_ns);
    cr_assert_eq(rec.msg.timeline_ns, m.timeline_ns);
    cr_assert_eq(rec.msg.qos, 2);
    cr_assert(rec.msg.retain);
    cr_assert(!rec.msg.dup);
    cr_assert_eq(rec.format, HC_JSONL_HKIT);
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_DONE);
    hc_jsonl_reader_close(r);
}

Test(jsonl, text_payload_round_trips_as_a_json_string)
{
    const char *p = "{\"value\":\"\\u00e9 \\\" \\n\",\"t\":\"\xc3\xa9\tx\"}";
    round_trip((const unsigned char *)p, strlen(p), "\"payload\":");
}

Test(jsonl, binary_payload_round_trips_as_base64)
{
    const unsigned char p[] = {0x00, 0xff, 0x80, 0x01, 0x7f};
    round_trip(p, sizeof(p), "\"payload_b64\":\"AP+AAX8=\"");
}

Test(jsonl, payload_with_a_nul_byte_round_trips)
{
    const unsigned char p[] = {'a', 0, 'b'};
    round_trip(p, sizeof(p), "\"payload_b64\"");
}

Test(jsonl, invalid_utf8_round_trips)
{
    const unsigned char p[] = {'o', 'k', 0xc3, 0x28, 0xed, 0xa0, 0x80};
    round_trip(p, sizeof(p), "\"payload_b64\"");
}

Test(jsonl, empty_payload_round_trips)
{
    round_trip((const unsigned char *)"", 0, "\"payload\":\"\"");
}

Test(jsonl, mosquitto_line_with_z_plus_0000_time_is_read)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    write_text("{\"tst\":\"2026-11-25T00:16:12.916478Z+0000\",\"topic\":\"a/b\",\"qos\":1,"
               "\"retain\":0,\"payloadlen\":11,\"payload\":{\"value\":1}}\n"
               "{\"tst\":\"2026-11-25T00:16:13.5Z\",\"topic\":\"a/c\",\"qos\":0,\"retain\":1,"
               "\"payloadlen\":3,\"payload\":\"abc\"}\n");
    r = open_reader();
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK, "%s", err.message);
    cr_assert_eq(rec.format, HC_JSONL_MOSQUITTO);
    cr_assert_eq(rec.msg.received_at_ns, 1795565772916478000LL);
    cr_assert_eq(rec.msg.qos, 1);
    cr_assert(!rec.msg.retain);
    cr_assert_eq(rec.msg.payload_len, 11);
    cr_assert_eq(memcmp(rec.msg.payload, "{\"value\":1}", 11), 0);
    cr_assert(!rec.has_session_start);
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK, "%s", err.message);
    cr_assert_eq(rec.msg.received_at_ns, 1795565773500000000LL);
    cr_assert(rec.msg.retain);
    cr_assert_eq(memcmp(rec.msg.payload, "abc", 3), 0);
    hc_jsonl_reader_close(r);
}

Test(jsonl, mosquitto_payload_cut_at_a_nul_byte_is_an_error)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    write_text("{\"tst\":\"2026-11-25T00:16:12.916478Z+0000\",\"topic\":\"a/b\",\"qos\":0,"
               "\"retain\":0,\"payloadlen\":5,\"payload\":\"ab\"}\n");
    r = open_reader();
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_ERR_PARSE);
    cr_assert_not_null(strstr(err.message, "line 1: payload of 5 bytes was cut to 2"), "%s",
                       err.message);
    hc_jsonl_reader_close(r);
}

Test(jsonl, bad_lines_name_their_line_number_and_the_reader_goes_on)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;
    char want[400];

    write_text("{\"topic\":\"a\"}\n\nnot json\n[1]\n{\"payload\":\"x\"}\n"
               "{\"topic\":\"b\",\"qos\":3}\n{\"topic\":\"c\",\"received_at\":\"yesterday\"}\n"
               "{\"topic\":\"d\",\"payload_b64\":\"!!\"}\n{\"topic\":\"e\"}\n");
    r = open_reader();
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
    cr_assert_eq(rec.line, 1);
    cr_assert_eq(rec.msg.payload_len, 0);
    const struct {
        size_t line;
        const char *reason;
    } bad[] = {{3, "not valid JSON"},
               {4, "not a JSON object"},
               {5, "missing \"topic\""},
               {6, "\"qos\" must be 0, 1 or 2"},
               {7, "\"received_at\" is not an RFC 3339 timestamp"},
               {8, "\"payload_b64\" is not valid base64"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_ERR_PARSE);
        snprintf(want, sizeof(want), "'%s' line %zu: %s", path, bad[i].line, bad[i].reason);
        cr_assert_str_eq(err.message, want);
    }
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
    cr_assert_str_eq(rec.msg.topic, "e");
    cr_assert_eq(rec.line, 9);
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_DONE);
    hc_jsonl_reader_close(r);
}

Test(jsonl, non_string_payload_becomes_its_compact_print)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    write_text("{\"topic\":\"a\",\"payload\":{ \"value\" : [1, 2] },\"decoded\":{\"k\":1}}\r\n");
    r = open_reader();
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
    cr_assert_eq(rec.msg.payload_len, strlen("{\"value\":[1,2]}"));
    cr_assert_eq(memcmp(rec.msg.payload, "{\"value\":[1,2]}", rec.msg.payload_len), 0);
    cr_assert_not_null(rec.decoded);
    hc_jsonl_reader_close(r);
}

Test(jsonl, a_payload_mentioning_time_keys_does_not_fool_the_integer_reader)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    write_text("{\"topic\":\"a\",\"payload\":\"\\\"mono_ns\\\":5\",\"session\":1,"
               "\"session_started_at_ns\":1770287400000000001,\"mono_ns\":9007199254740993}\n");
    r = open_reader();
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK, "%s", err.message);
    cr_assert_eq(rec.msg.mono_ns, 9007199254740993LL);
    cr_assert_eq(rec.session_started_at_ns, 1770287400000000001LL);
    hc_jsonl_reader_close(r);
}

Test(jsonl, missing_file_is_an_io_error)
{
    hc_error err = HC_ERROR_INIT;
    hc_jsonl_reader *r = NULL;
    cr_assert_eq(hc_jsonl_reader_open("/nonexistent/x.jsonl", &r, &err), HC_ERR_IO);
    cr_assert_str_eq(err.message, "cannot open '/nonexistent/x.jsonl': No such file or directory");
    cr_assert_null(r);
}

/* --- fast path against the cJSON path ----------------------------------------------------------
 */

static void assert_same_record(const struct hc_jsonl_record *a, const struct hc_jsonl_record *b)
{
    cr_assert_str_eq(a->msg.topic, b->msg.topic, "line %zu", b->line);
    cr_assert_eq(a->msg.payload_len, b->msg.payload_len, "line %zu", b->line);
    cr_assert(a->msg.payload_len == 0 ||
                  memcmp(a->msg.payload, b->msg.payload, a->msg.payload_len) == 0,
              "line %zu", b->line);
    cr_assert_eq(a->msg.qos, b->msg.qos, "line %zu", b->line);
    cr_assert_eq(a->msg.retain, b->msg.retain, "line %zu", b->line);
    cr_assert_eq(a->msg.dup, b->msg.dup, "line %zu", b->line);
    cr_assert_eq(a->msg.seq, b->msg.seq, "line %zu", b->line);
    cr_assert_eq(a->msg.session_id, b->msg.session_id, "line %zu", b->line);
    cr_assert_eq(a->msg.received_at_ns, b->msg.received_at_ns, "line %zu", b->line);
    cr_assert_eq(a->msg.mono_ns, b->msg.mono_ns, "line %zu", b->line);
    cr_assert_eq(a->msg.timeline_ns, b->msg.timeline_ns, "line %zu", b->line);
    cr_assert_eq(a->has_received_at, b->has_received_at, "line %zu", b->line);
    cr_assert_eq(a->has_session_start, b->has_session_start, "line %zu", b->line);
    cr_assert_eq(a->session_started_at_ns, b->session_started_at_ns, "line %zu", b->line);
    cr_assert_eq(a->decoded == NULL, b->decoded == NULL, "line %zu", b->line);
    cr_assert_eq(a->format, b->format, "line %zu", b->line);
    cr_assert_eq(a->line, b->line);
}

/* Reads path with the fast path on and off; every line must give the same result. */
static size_t assert_both_paths_agree(void)
{
    hc_jsonl_reader *fast = open_reader(), *slow = open_reader();
    hc_error fast_err = HC_ERROR_INIT, slow_err = HC_ERROR_INIT;
    struct hc_jsonl_record fast_rec, slow_rec;
    hc_err rc;
    size_t ok = 0;

    hc_jsonl_reader_set_fast_path(slow, false);
    while ((rc = hc_jsonl_next(fast, &fast_rec, &fast_err)) != HC_DONE) {
        cr_assert_eq(hc_jsonl_next(slow, &slow_rec, &slow_err), rc, "%s / %s", fast_err.message,
                     slow_err.message);
        if (rc == HC_OK) {
            assert_same_record(&fast_rec, &slow_rec);
            ok++;
        } else {
            cr_assert_str_eq(fast_err.message, slow_err.message);
        }
    }
    cr_assert_eq(hc_jsonl_next(slow, &slow_rec, &slow_err), HC_DONE);
    hc_jsonl_reader_close(fast);
    hc_jsonl_reader_close(slow);
    return ok;
}

/* Writes one line and reads it with the fast path on and off; true when it is a message. */
static bool one_line_agrees(const char *line)
{
    write_text(line);
    return assert_both_paths_agree() == 1;
}

/* The lines hverify's own in-place reader was tested on before it gave way to this reader. */
Test(jsonl, plain_unusual_and_bad_lines_give_the_same_result_on_both_paths)
{
    static const char *const plain[] = {
        "{\"topic\":\"a/b\",\"payload\":\"{\\\"value\\\":20.5}\"}",
        "{\"topic\":\"a/b\"}",
        "{\"topic\":\"a/b\",\"payload\":\"\"}",
        "  {\"payload\" : \"x\\ty\\n\\\\\\/\\b\\f\\r\" ,\t\"topic\":\"t\"}  ",
        "{\"seq\":12,\"session\":3,\"received_at\":\"2026-02-05T10:30:45.123456789Z\","
        "\"session_started_at_ns\":1770287400000000000,\"mono_ns\":45123456789,"
        "\"topic\":\"haltian-iot/events/x\",\"qos\":1,\"retain\":false,\"dup\":true,"
        "\"payload\":\"{\\\"measured_at\\\":\\\"2026-02-05T10:30:45Z\\\"}\"}",
        "{\"topic\":\"caf\xc3\xa9\",\"payload\":\"\xe2\x82\xac \xff\"}",
        "{\"topic\":\"t\",\"seq\":-1.5e3,\"qos\":2,\"payload\":\"\\\"\"}",
        "{\"topic\":\"t\",\"mono_ns\":-9223372036854775807,\"session_started_at_ns\":0}",
    };
    static const char *const other[] = {
        "{\"topic\":\"t\",\"payload\":\"a\\u0000b\"}", /* NUL cuts the payload */
        "{\"topic\":\"t\",\"payload\":\"\\u00e9\"}",   /* any \u escape */
        "{\"topic\":\"t\",\"payload_b64\":\"AAE=\"}",  /* binary */
        "{\"topic\":\"t\",\"payload\":{\"value\":1}}", /* a JSON value as payload */
        "{\"topic\":\"t\",\"decoded\":{}}",            /* unknown member */
        "{\"topic\":\"t\",\"tst\":\"2026-11-25T00:16:12.9Z+0000\",\"payload\":\"x\"}",
        "{\"topic\":\"t\",\"topic\":\"u\"}", /* duplicate */
        "{\"topic\":\"\"}",                  /* empty topic: an error */
        "{\"payload\":\"x\"}",               /* no topic: an error */
        "{}",
        "{\"topic\":\"t\",\"qos\":3}", /* an error */
        "{\"topic\":\"t\",\"qos\":1.0}",
        "{\"topic\":\"t\",\"received_at\":\"yesterday\"}", /* an error */
        "{\"topic\":\"t\",\"received_at\":null}",
        "{\"topic\":\"t\",\"mono_ns\":1.5,\"session_started_at_ns\":1}", /* an error */
        "{\"topic\":\"t\",\"mono_ns\":9223372036854775808,\"session_started_at_ns\":1}",
        "{\"topic\":\"t\",\"seq\":01}",
        "{\"topic\":\"t\",\"retain\":1}",
        "{\"topic\":\"t\",\"payload\":\"a\tb\"}", /* raw control byte */
        "{\"topic\":\"t\",\"payload\":\"\\x\"}",  /* bad escape: an error */
        "{\"topic\":\"t\",\"payload\":\"x\"",     /* not closed: an error */
        "{\"topic\":\"t\"} trailing",
        "{\"topic\":\"t\",}",
        "[\"topic\"]",
        "\"topic\"",
        "{\"topic\":\"t\"\r}",
    };

    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        cr_assert(one_line_agrees(plain[i]), "refused: %s", plain[i]);
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        (void)one_line_agrees(other[i]);
}

Test(jsonl, escapes_and_control_bytes_are_found_at_every_offset_of_a_word)
{
    static const char *const marks[] = {"\\\"", "\\\\", "\\n", "\xc3\xa9", "\x01", "\x1f"};
    char line[200], text[64];

    for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++)
        for (int before = 0; before < 18; before++) {
            bool control = (unsigned char)marks[m][0] < 0x20;

            snprintf(text, sizeof(text), "%.*s%s%.*s", before, "abcdefghijklmnopqrstuvwxyz",
                     marks[m], 17 - before, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            snprintf(line, sizeof(line), "{\"topic\":\"%s\",\"payload\":\"%s\"}", text, text);
            cr_assert_eq(one_line_agrees(line), !control, "%s", line);
        }
}

Test(jsonl, fast_path_gives_the_same_records_and_errors_as_cjson_on_varied_lines)
{
    static const unsigned char binary[] = {0x00, 0xff, 'a'};
    static const char *const hand_made[] = {
        /* the common shape and harmless variations of it */
        "{\"topic\":\"haltian-iot/events/i/k/measurements/co2/d\",\"qos\":0,\"retain\":false,"
        "\"received_at\":\"2026-02-05T10:30:45.000000000Z\",\"payload\":\"{\\\"value\\\":  "
        "20.00}\"}",
        " {\t\"payload\" : \"x\" , \"retain\" : true ,\"topic\":\"a/b\", \"qos\" : 2 }\t ",
        "{\"topic\":\"a\",\"payload\":null,\"received_at\":null,\"dup\":1,\"retain\":-0}",
        "{\"topic\":\"a\",\"retain\":null,\"dup\":17,\"qos\":-0,\"seq\":null,\"session\":null}",
        "{\"topic\":\"a\",\"seq\":9223372036854775807,\"session\":-9223372036854775807}",
        "{\"topic\":\"a\",\"session_started_at_ns\":1770287400000000001,\"mono_ns\":-3}",
        "{\"topic\":\"a\",\"mono_ns\":5,\"received_at\":\"2026-02-05T10:30:45.5Z\"}",
        "{\"topic\":\"a\",\"session_started_at_ns\":5}",
        "{\"topic\":\"a\",\"retain\":null,\"dup\":null,\"qos\":2}",
        "{\"topic\":\"a\",\"retain\":true,\"dup\":false,\"seq\":5,\"session\":null}",
        "{\"topic\":\"\\u0041\\u007f\\u0001\\/\\b\\f\\n\\r\\t\\\"\\\\\",\"payload\":\"\\u00e9\"}",
        "{\"topic\":\"caf\xc3\xa9 \xff\",\"payload\":\"\xed\xa0\x80\"}",
        "{\"topic\":\"a\",\"received_at\":\"2026-02-05T10:30:45+02:00\"}",
        "{\"topic\":\"a\",\"seq\":0,\"session\":1,\"session_started_at_ns\":0,\"mono_ns\":0}",
        /* lines the fast path declines: cJSON decides */
        "{\"topic\":\"a\",\"topic\":\"b\"}",
        "{\"topic\":\"a\",\"extra\":1}",
        "{\"topic\":\"a\",\"decoded\":{\"k\":1}}",
        "{\"tst\":\"2026-11-25T00:16:12.916478Z+0000\",\"topic\":\"a\",\"payloadlen\":1,"
        "\"payload\":\"x\"}",
        "{\"topic\":\"a\",\"payload_b64\":\"AP+A\"}",
        "{\"topic\":\"a\",\"payload\":{ \"v\" : [1, 2.5e3] }}",
        "{\"topic\":\"a\",\"payload\":17}",
        "{\"topic\":\"a\",\"payload\":\"\\ud83d\\ude00\"}",
        "{\"topic\":\"a\",\"payload\":\"\\u0000x\"}",
        "{\"topic\":\"a\",\"payload\":\"\\u00zz\"}",
        "{\"topic\":\"a\",\"payload\":\"\\x\"}",
        "{\"topic\":\"a\",\"payload\":\"tab\there\"}",
        "{\"topic\":\"a\",\"qos\":01}",
        "{\"topic\":\"a\",\"qos\":1.0}",
        "{\"topic\":\"a\",\"qos\":1e0}",
        "{\"topic\":\"a\",\"qos\":3}",
        "{\"topic\":\"a\",\"qos\":null}",
        "{\"topic\":\"a\",\"qos\":\"1\"}",
        "{\"topic\":\"a\",\"seq\":9223372036854775808}",
        "{\"topic\":\"a\",\"seq\":92233720368547758070}",
        "{\"topic\":\"a\",\"seq\":9007199254740993.0}",
        "{\"topic\":\"a\",\"seq\":\"5\"}",
        "{\"topic\":\"a\",\"session_started_at_ns\":null,\"mono_ns\":1}",
        "{\"topic\":\"a\",\"session_started_at_ns\":1.5,\"mono_ns\":1}",
        "{\"topic\":\"a\",\"received_at\":\"yesterday\"}",
        "{\"topic\":\"a\",\"received_at\":5}",
        "{\"topic\":\"a\",\"retain\":\"yes\"}",
        "{\"topic\":\"a\",\"retain\":truex}",
        "{\"topic\":\"a\"} trailing",
        "{\"topic\":\"a\"}}",
        "{\"topic\":\"a\",}",
        "{\"topic\":\"\"}",
        "{\"topic\":5}",
        "{}",
        "{\"qos\":1}",
        "[1]",
        "not json",
        "\xef\xbb\xbf{\"topic\":\"bom\"}",
        "\v{\"topic\":\"a\"}",
        "{\"topic\":\"a\"\r,\"seq\":9007199254740993}",
        "{\"topic\"",
        "{\"topic\":\"a",
        "{\"topic\":\"a\\",
    };
    hc_error err = HC_ERROR_INIT;
    FILE *f = fopen(path, "wb");
    struct hc_msg m = {0};
    size_t ok;

    cr_assert_not_null(f);
    /* hc_jsonl_write's own lines, as hcat exports them */
    for (int i = 0; i < 64; i++) {
        char topic[64];
        char payload[64];
        snprintf(topic, sizeof(topic), "haltian-iot/events/i/k/measurements/t%d/\"dev\"", i);
        snprintf(payload, sizeof(payload), "{\"value\":%d,\"c\":\"%c\\\x01\"}", i, 'a' + i % 26);
        m.seq = i * 1000003LL;
        m.session_id = i % 3;
        m.received_at_ns = i % 5 ? 1770287445123456789LL + i : 0;
        m.mono_ns = i * 7919LL;
        m.timeline_ns = 1770287400000000001LL + m.mono_ns;
        m.topic = topic;
        m.payload = i % 7 == 3 ? binary : (const unsigned char *)payload;
        m.payload_len = i % 7 == 3 ? sizeof(binary) : i % 11 == 5 ? 0 : strlen(payload);
        m.qos = i % 3;
        m.retain = i % 2;
        m.dup = i % 4 == 1;
        cr_assert_eq(hc_jsonl_write(f, &m, NULL, &err), HC_OK);
    }
    for (size_t i = 0; i < sizeof(hand_made) / sizeof(hand_made[0]); i++)
        fprintf(f, "%s\n", hand_made[i]);
    fclose(f);
    ok = assert_both_paths_agree();
    cr_assert_geq(ok, 64 + 14, "%zu lines read", ok);
}

/* One line read with the fast path on (the default). */
static void read_one(const char *text, struct hc_jsonl_record *rec, hc_jsonl_reader **r)
{
    hc_error err = HC_ERROR_INIT;
    write_text(text);
    *r = open_reader();
    cr_assert_eq(hc_jsonl_next(*r, rec, &err), HC_OK, "%s", err.message);
}

Test(jsonl, lines_the_fast_path_declines_still_read_correctly)
{
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    read_one("{\"topic\":\"a\",\"payload\":\"x\",\"decoded\":{\"k\":1}}\n", &rec, &r);
    cr_assert_not_null(rec.decoded);
    cr_assert_eq(cJSON_GetObjectItem(rec.decoded, "k")->valuedouble, 1);
    hc_jsonl_reader_close(r);

    read_one("{\"tst\":\"2026-11-25T00:16:13.5Z\",\"topic\":\"a/c\",\"qos\":0,\"retain\":1,"
             "\"payloadlen\":3,\"payload\":\"abc\"}\n",
             &rec, &r);
    cr_assert_eq(rec.format, HC_JSONL_MOSQUITTO);
    cr_assert_eq(rec.msg.received_at_ns, 1795565773500000000LL);
    cr_assert(rec.msg.retain);
    hc_jsonl_reader_close(r);

    read_one("{\"topic\":\"\\u00e9\\ud83d\\ude00\",\"payload\":\"a\\u0000b\"}\n", &rec, &r);
    cr_assert_str_eq(rec.msg.topic, "\xc3\xa9\xf0\x9f\x98\x80");
    cr_assert_eq(rec.msg.payload_len, 3); /* U+0000 is kept, where cJSON's string ended */
    cr_assert_eq(memcmp(rec.msg.payload, "a\0b", 3), 0);
    hc_jsonl_reader_close(r);

    read_one("{\"topic\":\"a\",\"session\":1,\"session_started_at_ns\":4133980799999999000,"
             "\"mono_ns\":999,\"seq\":9223372036854775807}\n",
             &rec, &r);
    cr_assert_eq(rec.session_started_at_ns, 4133980799999999000LL);
    cr_assert_eq(rec.msg.timeline_ns, HC_TIME_MAX_NS);
    cr_assert_eq(rec.msg.seq, INT64_MAX);
    hc_jsonl_reader_close(r);

    read_one("{\"topic\":\"a\",\"seq\":92233720368547758070}\n", &rec, &r);
    cr_assert_eq(rec.msg.seq, 0); /* not an int64: ignored, as before */
    hc_jsonl_reader_close(r);

    read_one("{\"topic\":\"a\",\"payload_b64\":\"AP+A\"}\n", &rec, &r);
    cr_assert_eq(rec.msg.payload_len, 3);
    cr_assert_eq(memcmp(rec.msg.payload, "\x00\xff\x80", 3), 0);
    hc_jsonl_reader_close(r);

    read_one("{\"topic\":\"a\",\"payload\":[1, true, \"x\"]}\n", &rec, &r);
    cr_assert_eq(rec.msg.payload_len, strlen("[1,true,\"x\"]"));
    cr_assert_eq(memcmp(rec.msg.payload, "[1,true,\"x\"]", rec.msg.payload_len), 0);
    hc_jsonl_reader_close(r);

    read_one("{\"topic\":\"a\",\"payload\":2.5}\n", &rec, &r);
    cr_assert_eq(rec.msg.payload_len, 3);
    cr_assert_eq(memcmp(rec.msg.payload, "2.5", 3), 0);
    hc_jsonl_reader_close(r);
}

Test(jsonl, the_fast_path_reads_hkit_lines_exactly)
{
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    read_one(" { \"payload\" : \"\\\"q\\\" \\\\ \\/ \\u0001\\u007F\\b\\f\\n\\r\\t\", \"dup\":true,"
             "\"topic\":\"a/b\",\"seq\":-0,\"session\":3,\"mono_ns\":45123456789,"
             "\"session_started_at_ns\":1770287400000000001,\"qos\":1,\"retain\":7,"
             "\"received_at\":\"2026-02-05T10:30:45.123456789Z\"}\t\r\n",
             &rec, &r);
    cr_assert_str_eq(rec.msg.topic, "a/b");
    cr_assert_eq(rec.msg.payload_len, 15);
    cr_assert_eq(memcmp(rec.msg.payload, "\"q\" \\ / \x01\x7f\b\f\n\r\t", 15), 0);
    cr_assert(rec.msg.dup);
    cr_assert(rec.msg.retain);
    cr_assert_eq(rec.msg.qos, 1);
    cr_assert_eq(rec.msg.seq, 0);
    cr_assert_eq(rec.msg.session_id, 3);
    cr_assert(rec.has_session_start);
    cr_assert_eq(rec.session_started_at_ns, 1770287400000000001LL);
    cr_assert_eq(rec.msg.timeline_ns, 1770287445123456790LL);
    cr_assert(rec.has_received_at);
    cr_assert_eq(rec.msg.received_at_ns, 1770287445123456789LL);
    cr_assert_null(rec.decoded);
    cr_assert_eq(rec.format, HC_JSONL_HKIT);
    cr_assert_eq(rec.line, 1);
    hc_jsonl_reader_close(r);
}

/* --- line splitting -----------------------------------------------------------------------------
 */

Test(jsonl, crlf_empty_lines_and_a_last_line_without_newline_are_read_as_before)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    write_text("\n\r\n{\"topic\":\"a\",\"payload\":\"x\"}\r\n\n\n{\"topic\":\"b\"}\r\r\n   \n"
               "{\"topic\":\"c\",\"payload\":\"end\"}");
    for (int fast = 1; fast >= 0; fast--) {
        r = open_reader();
        hc_jsonl_reader_set_fast_path(r, fast);
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
        cr_assert_str_eq(rec.msg.topic, "a");
        cr_assert_eq(rec.line, 3);
        cr_assert_eq(rec.msg.payload_len, 1);
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
        cr_assert_str_eq(rec.msg.topic, "b");
        cr_assert_eq(rec.line, 6);
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_ERR_PARSE);
        cr_assert_not_null(strstr(err.message, "line 7: not valid JSON"), "%s", err.message);
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
        cr_assert_str_eq(rec.msg.topic, "c");
        cr_assert_eq(rec.line, 8);
        cr_assert_eq(rec.msg.payload_len, 3);
        cr_assert_eq(memcmp(rec.msg.payload, "end", 3), 0);
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_DONE);
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_DONE);
        hc_jsonl_reader_close(r);
    }
}

Test(jsonl, lines_longer_than_the_read_buffer_are_read_whole)
{
    const size_t big = 1024 * 1024 + 7; /* more than the 256 KiB read buffer */
    char *payload = malloc(big + 1);
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(payload);
    cr_assert_not_null(f);
    for (size_t i = 0; i < big; i++)
        payload[i] = (char)('a' + i % 26);
    payload[big] = '\0';
    fprintf(f, "{\"topic\":\"short\"}\n{\"topic\":\"long\",\"payload\":\"%s\"}\n", payload);
    payload[big / 2] = '"'; /* written escaped from here on */
    fprintf(f, "{\"topic\":\"escaped\",\"payload\":\"%.*s\\\"%s\"}\r\n", (int)(big / 2), payload,
            payload + big / 2 + 1);
    fprintf(f, "{\"topic\":\"last\",\"payload\":\"%.*s\\\"%s\"}", (int)(big / 2), payload,
            payload + big / 2 + 1);
    fclose(f);
    for (int fast = 1; fast >= 0; fast--) {
        r = open_reader();
        hc_jsonl_reader_set_fast_path(r, fast);
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
        cr_assert_str_eq(rec.msg.topic, "short");
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK, "%s", err.message);
            cr_assert_eq(rec.line, (size_t)i + 2);
            cr_assert_eq(rec.msg.payload_len, big);
            cr_assert_eq(memcmp(rec.msg.payload, payload, big / 2), 0);
            cr_assert_eq(rec.msg.payload[big / 2], i == 0 ? 'a' + (big / 2) % 26 : '"');
            cr_assert_eq(
                memcmp(rec.msg.payload + big / 2 + 1, payload + big / 2 + 1, big - big / 2 - 1), 0);
        }
        cr_assert_str_eq(rec.msg.topic, "last");
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_DONE);
        hc_jsonl_reader_close(r);
    }
    free(payload);
}

/* --- the wait hook
 * -------------------------------------------------------------------------------- */

struct trickle {
    int write_fd;
    int calls;
};

/* Each wait gets one more line, the third also the end of input: nothing to read before. */
static void feed_one_line(void *ctx)
{
    struct trickle *t = ctx;
    char line[64];
    int n;

    t->calls++;
    cr_assert_leq(t->calls, 3, "hook called after the end of input");
    n = snprintf(line, sizeof(line), "{\"topic\":\"t/%d\"}\n", t->calls);
    cr_assert_eq(write(t->write_fd, line, (size_t)n), n);
    if (t->calls == 3) {
        close(t->write_fd);
        t->write_fd = -1;
    }
}

Test(jsonl, the_wait_hook_runs_each_time_a_pipe_has_no_data_yet, .timeout = 10)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    struct trickle t = {-1, 0};
    hc_jsonl_reader *r = NULL;
    int fds[2];

    /* standard input of this test's worker becomes the pipe, so "-" is what is read */
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
    close(fds[0]);
    t.write_fd = fds[1];
    cr_assert_eq(hc_jsonl_reader_open("-", &r, &err), HC_OK, "%s", err.message);
    hc_jsonl_reader_set_wait_hook(r, feed_one_line, &t);
    for (int i = 1; i <= 3; i++) {
        char want[16];
        cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK, "%s", err.message);
        cr_assert_eq(t.calls, i);
        snprintf(want, sizeof(want), "t/%d", i);
        cr_assert_str_eq(rec.msg.topic, want);
    }
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_DONE);
    cr_assert_eq(t.calls, 3); /* a closed pipe is ready: no wait */
    hc_jsonl_reader_close(r);
}

static void count_wait(void *ctx)
{
    (*(int *)ctx)++;
}

Test(jsonl, the_wait_hook_is_never_called_for_a_regular_file)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;
    int calls = 0;

    write_text("{\"topic\":\"a\"}\n{\"topic\":\"b\"}");
    r = open_reader();
    hc_jsonl_reader_set_wait_hook(r, count_wait, &calls);
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK);
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_DONE);
    cr_assert_eq(calls, 0);
    hc_jsonl_reader_close(r);
}

/* --- issue 11: imports keep what they were given -----------------------------------------------
 */

static void write_bytes(const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* Reads the file's one line with both paths; both must give rc, and the same message or record. */
static hc_err read_both(struct hc_jsonl_record *rec, hc_jsonl_reader **keep, hc_error *err)
{
    hc_jsonl_reader *slow = open_reader();
    hc_error slow_err = HC_ERROR_INIT;
    struct hc_jsonl_record slow_rec;
    hc_err rc, slow_rc;

    *keep = open_reader();
    rc = hc_jsonl_next(*keep, rec, err);
    hc_jsonl_reader_set_fast_path(slow, false);
    slow_rc = hc_jsonl_next(slow, &slow_rec, &slow_err);
    cr_assert_eq(rc, slow_rc, "%s / %s", err->message, slow_err.message);
    if (rc == HC_OK)
        assert_same_record(rec, &slow_rec);
    else
        cr_assert_str_eq(err->message, slow_err.message);
    hc_jsonl_reader_close(slow);
    return rc;
}

static void expect_line_error(const char *text, size_t len, const char *reason)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;
    char want[600];

    write_bytes(text, len);
    cr_assert_eq(read_both(&rec, &r, &err), HC_ERR_PARSE, "'%s' should be refused", text);
    snprintf(want, sizeof(want), "'%s' line 1: %s", path, reason);
    cr_assert_str_eq(err.message, want);
    hc_jsonl_reader_close(r);
}

static void expect_payload(const char *line, const char *payload, size_t payload_len)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    write_text(line);
    cr_assert_eq(read_both(&rec, &r, &err), HC_OK, "%s", err.message);
    cr_assert_eq(rec.msg.payload_len, payload_len, "%s: %zu bytes, expected %zu", line,
                 rec.msg.payload_len, payload_len);
    cr_assert_eq(memcmp(rec.msg.payload, payload, payload_len), 0, "%s: got %.*s", line,
                 (int)rec.msg.payload_len, (const char *)rec.msg.payload);
    hc_jsonl_reader_close(r);
}

#define EXPECT_PAYLOAD(line, payload) expect_payload(line, payload, sizeof(payload) - 1)

Test(jsonl, a_payload_given_as_a_json_value_keeps_every_number_as_written)
{
    EXPECT_PAYLOAD("{\"topic\":\"a/b\",\"payload\":{\"v\":9007199254740993,"
                   "\"w\":0.30000000000000004,\"z\":1e400}}\n",
                   "{\"v\":9007199254740993,\"w\":0.30000000000000004,\"z\":1e400}");
    EXPECT_PAYLOAD(
        "{\"topic\":\"a\",\"payload\" : { \"n\" : 1.0E+2 , \"s\" : \"\\u00e9 \\/ x\" ,"
        "\"a\" : [ -0 , 12345678901234567890 , true , null ] } }\n",
        "{\"n\":1.0E+2,\"s\":\"\\u00e9 \\/ x\",\"a\":[-0,12345678901234567890,true,null]}");
    EXPECT_PAYLOAD("{\"topic\":\"a\",\"payload\":-1.50}\n", "-1.50");
    EXPECT_PAYLOAD("{\"topic\":\"a\",\"payload\":false}\n", "false");
    /* longer than cJSON's 63-character numbers */
    EXPECT_PAYLOAD("{\"topic\":\"a\",\"payload\":[1234567890123456789012345678901234567890123456789"
                   "01234567890123456789]}\n",
                   "[123456789012345678901234567890123456789012345678901234567890123456789]");
    /* duplicate keys inside the payload stay, in order */
    EXPECT_PAYLOAD("{\"topic\":\"a\",\"payload\":{\"k\":1,\"k\":2}}\n", "{\"k\":1,\"k\":2}");
}

Test(jsonl, u0000_is_kept_in_payloads_and_refused_in_topics)
{
    EXPECT_PAYLOAD("{\"topic\":\"a\",\"payload\":\"a\\u0000b\"}\n", "a\0b");
    EXPECT_PAYLOAD("{\"topic\":\"a\",\"payload\":\"\\u0000\"}\n", "\0");
    expect_line_error("{\"topic\":\"a\\u0000b\",\"payload\":\"x\"}\n", 35,
                      "\"topic\" contains U+0000, which MQTT does not allow");
    expect_line_error("{\"topic\":\"a\",\"received_at\":\"2026-02-05T10:30:45Z\\u0000\"}\n", 56,
                      "\"received_at\" is not an RFC 3339 timestamp");
    expect_line_error("{\"topic\":\"a\",\"payload_b64\":\"QQ==\\u0000\"}\n", 41,
                      "\"payload_b64\" is not valid base64");
}

Test(jsonl, a_raw_nul_byte_is_an_error_with_its_line_and_column)
{
    static const char line[] = "{\"topic\":\"a\",\"payload\":\"x\"}\0garbage\n";
    static const char inside[] = "{\"topic\":\"a\",\"payload\":\"x\0y\"}\n";
    expect_line_error(line, sizeof(line) - 1,
                      "raw NUL byte at column 28 (inside a string write \\u0000)");
    expect_line_error(inside, sizeof(inside) - 1,
                      "raw NUL byte at column 26 (inside a string write \\u0000)");
}

Test(jsonl, mosquitto_times_with_any_utc_offset_are_converted)
{
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;
    hc_error err = HC_ERROR_INIT;
    const struct {
        const char *tst;
        const char *utc;
    } cases[] = {
        {"2026-11-25T09:36:03.675306Z+0200", "2026-11-25T07:36:03.675306Z"},
        {"2026-11-25T01:06:03.675306Z-0530", "2026-11-25T06:36:03.675306Z"},
        {"2026-01-01T00:30:00.000000Z+0100", "2025-12-31T23:30:00Z"},
        {"2026-11-25T00:16:12.916478Z+0000", "2026-11-25T00:16:12.916478Z"},
        {"2026-11-25T00:16:12+02:00", "2026-11-24T22:16:12Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[200];
        int64_t want;
        snprintf(line, sizeof(line),
                 "{\"tst\":\"%s\",\"topic\":\"a\",\"qos\":0,\"retain\":0,\"payloadlen\":1,"
                 "\"payload\":\"x\"}\n",
                 cases[i].tst);
        write_text(line);
        cr_assert_eq(read_both(&rec, &r, &err), HC_OK, "%s: %s", cases[i].tst, err.message);
        cr_assert_eq(hc_time_parse_rfc3339(cases[i].utc, strlen(cases[i].utc), &want, NULL), HC_OK);
        cr_assert_eq(rec.msg.received_at_ns, want, "%s", cases[i].tst);
        hc_jsonl_reader_close(r);
    }
    const char *bad[] = {"2026-11-25T09:36:03Z+02", "2026-11-25T09:36:03Z+2400",
                         "2026-11-25T09:36:03Z+02:00x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line[200];
        snprintf(line, sizeof(line), "{\"tst\":\"%s\",\"topic\":\"a\",\"payload\":\"x\"}\n",
                 bad[i]);
        expect_line_error(line, strlen(line), "\"tst\" is not an RFC 3339 timestamp");
    }
}

Test(jsonl, invalid_utf8_topics_are_refused_by_both_paths)
{
    static const char raw[] = "{\"topic\":\"a/\xff/b\",\"payload\":\"x\"}\n";
    static const char overlong[] = "{\"topic\":\"a/\xc0\xaf\",\"payload\":\"x\"}\n";
    expect_line_error(raw, sizeof(raw) - 1, "\"topic\" is not valid UTF-8, which MQTT requires");
    expect_line_error(overlong, sizeof(overlong) - 1,
                      "\"topic\" is not valid UTF-8, which MQTT requires");
    /* a lone surrogate escape is not JSON that cJSON reads either */
    expect_line_error("{\"topic\":\"\\udc00\"}\n", 19, "not valid JSON");
}

Test(jsonl, a_stored_invalid_utf8_topic_is_written_as_topic_b64)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_msg m = {0};
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;
    char line[300];
    FILE *f = fopen(path, "wb");
    cJSON *doc;

    m.topic = "a/\xff\xfe/b";
    m.payload = (const unsigned char *)"x";
    m.payload_len = 1;
    cr_assert_not_null(f);
    cr_assert_eq(hc_jsonl_write(f, &m, NULL, &err), HC_OK);
    fclose(f);
    f = fopen(path, "rb");
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    cr_assert(hc_text_is_json_safe_utf8((const unsigned char *)line, strlen(line)), "%s", line);
    doc = cJSON_Parse(line);
    cr_assert_not_null(doc, "%s", line);
    cr_assert_str_eq(cJSON_GetObjectItem(doc, "topic_b64")->valuestring, "YS///i9i");
    cr_assert_null(cJSON_GetObjectItem(doc, "topic"));
    cJSON_Delete(doc);
    /* read back, the topic is named as what it is */
    r = open_reader();
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_ERR_PARSE);
    cr_assert(strstr(err.message, "\"topic\" is not valid UTF-8, which MQTT requires"), "%s",
              err.message);
    hc_jsonl_reader_close(r);
    write_text("{\"topic_b64\":\"YS9i\",\"payload\":\"x\"}\n");
    cr_assert_eq(read_both(&rec, &r, &err), HC_OK, "%s", err.message);
    cr_assert_str_eq(rec.msg.topic, "a/b");
    hc_jsonl_reader_close(r);
}

Test(jsonl, a_topic_that_is_not_a_string_or_empty_says_so)
{
    expect_line_error("{\"topic\":5}\n", 12, "\"topic\" must be a string");
    expect_line_error("{\"topic\":null}\n", 15, "\"topic\" must be a string");
    expect_line_error("{\"topic\":\"\"}\n", 13, "\"topic\" is empty");
    expect_line_error("{\"payload\":\"x\"}\n", 16, "missing \"topic\"");
}

Test(jsonl, deep_nesting_says_how_deep_is_allowed)
{
    size_t depth = 100000, n = 0;
    char *line = malloc(2 * depth + 64);
    char *ok = malloc(2 * 1000 + 64);

    cr_assert_not_null(line);
    n += (size_t)sprintf(line, "{\"topic\":\"a\",\"payload\":");
    memset(line + n, '[', depth);
    n += depth;
    memset(line + n, ']', depth);
    n += depth;
    n += (size_t)sprintf(line + n, "}\n");
    expect_line_error(line, n, "nesting deeper than 1000 levels");
    /* the line's object and 999 arrays: as deep as cJSON goes, accepted */
    n = (size_t)sprintf(ok, "{\"topic\":\"a\",\"payload\":");
    memset(ok + n, '[', 999);
    memset(ok + n + 999, ']', 999);
    n += 1998;
    sprintf(ok + n, "}\n");
    {
        hc_error err = HC_ERROR_INIT;
        struct hc_jsonl_record rec;
        hc_jsonl_reader *r;
        write_text(ok);
        cr_assert_eq(read_both(&rec, &r, &err), HC_OK, "%s", err.message);
        cr_assert_eq(rec.msg.payload_len, 1998);
        hc_jsonl_reader_close(r);
    }
    free(line);
    free(ok);
}

Test(jsonl, a_utf8_byte_order_mark_before_the_first_line_is_skipped)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r;

    write_text("\xEF\xBB\xBF{\"topic\":\"a\",\"payload\":\"x\"}\n\xEF\xBB\xBF{\"topic\":\"b\"}\n");
    r = open_reader();
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_OK, "%s", err.message);
    cr_assert_str_eq(rec.msg.topic, "a");
    /* only at the start of the file: elsewhere it is not JSON */
    cr_assert_eq(hc_jsonl_next(r, &rec, &err), HC_ERR_PARSE);
    hc_jsonl_reader_close(r);
}

Test(jsonl, valid_times_out_of_range_say_they_are_out_of_range)
{
    static const char *const lines[] = {
        "{\"topic\":\"a\",\"received_at\":\"2262-01-01T00:00:00Z\"}\n",
        "{\"topic\":\"a\",\"received_at\":\"1678-01-01T00:00:00Z\"}\n",
    };
    for (size_t i = 0; i < 2; i++)
        expect_line_error(lines[i], strlen(lines[i]),
                          "\"received_at\": time out of range: hkit handles "
                          "1900-01-01T00:00:00Z to 2100-12-31T23:59:59Z");
    const char *tst = "{\"tst\":\"2262-01-01T00:00:00.000000Z+0000\",\"topic\":\"a\"}\n";
    expect_line_error(tst, strlen(tst),
                      "\"tst\": time out of range: hkit handles 1900-01-01T00:00:00Z to "
                      "2100-12-31T23:59:59Z");
    /* session_started_at_ns + mono_ns beyond int64 is clamped, never wrapped to the past */
    const struct {
        const char *line;
        int64_t timeline;
    } sums[] = {
        {"{\"topic\":\"a\",\"session\":1,\"session_started_at_ns\":9223372036854775000,"
         "\"mono_ns\":9223372036854775000}\n",
         INT64_MAX},
        {"{\"topic\":\"a\",\"session\":1,\"session_started_at_ns\":-9223372036854775000,"
         "\"mono_ns\":-9223372036854775000}\n",
         INT64_MIN},
        {"{\"topic\":\"a\",\"session\":1,\"session_started_at_ns\":9223372036854775000,"
         "\"mono_ns\":-9223372036854775000}\n",
         0},
    };
    for (size_t i = 0; i < sizeof(sums) / sizeof(sums[0]); i++) {
        hc_error err = HC_ERROR_INIT;
        struct hc_jsonl_record rec;
        hc_jsonl_reader *r;
        write_text(sums[i].line);
        cr_assert_eq(read_both(&rec, &r, &err), HC_OK, "%s", err.message);
        cr_assert_eq(rec.msg.timeline_ns, sums[i].timeline, "%s", sums[i].line);
        hc_jsonl_reader_close(r);
    }
}

Test(jsonl, a_writer_handle_writes_the_same_lines_as_hc_jsonl_write)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_msg m = {0};
    hc_jsonl_writer *w;
    cJSON *decoded = cJSON_Parse("{\"value\":21.50,\"unit\":\"C\"}");
    char *once = NULL, *reused = NULL;
    size_t once_len = 0, reused_len = 0;
    FILE *a = open_memstream(&once, &once_len), *b = open_memstream(&reused, &reused_len);

    cr_assert(a && b && decoded);
    m.topic = "a/b";
    cr_assert_eq(hc_jsonl_writer_new(&w, &err), HC_OK);
    for (int i = 0; i < 3; i++) {
        unsigned char payload[8] = {'x', (unsigned char)('0' + i), 0xff};
        m.seq = i + 1;
        m.payload = payload;
        m.payload_len = i == 1 ? 3 : 2; /* text, binary, text: the buffers are reused */
        cr_assert_eq(hc_jsonl_write(a, &m, i ? decoded : NULL, &err), HC_OK);
        cr_assert_eq(hc_jsonl_writer_write(w, b, &m, i ? decoded : NULL, &err), HC_OK);
    }
    hc_jsonl_writer_free(w);
    hc_jsonl_writer_free(NULL);
    fclose(a);
    fclose(b);
    cr_assert_str_eq(reused, once);
    cr_assert_not_null(strstr(once, "\"payload_b64\""));
    cr_assert_not_null(strstr(once, "\"decoded\":{\"value\":21.5,\"unit\":\"C\"}"), "%s", once);
    free(once);
    free(reused);
    cJSON_Delete(decoded);
}

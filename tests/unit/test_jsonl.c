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
    cr_assert_eq(rec.msg.payload_len, 1); /* cJSON's string ends at the NUL */
    hc_jsonl_reader_close(r);

    read_one("{\"topic\":\"a\",\"session\":1,\"session_started_at_ns\":9223372036854775000,"
             "\"mono_ns\":807,\"seq\":9223372036854775807}\n",
             &rec, &r);
    cr_assert_eq(rec.session_started_at_ns, 9223372036854775000LL);
    cr_assert_eq(rec.msg.timeline_ns, INT64_MAX);
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

/*
 * Tests of JSON lines I/O: writing then reading gives back the same bytes (binary, NUL, invalid
 * UTF-8, empty payloads) and the same 64-bit times; mosquitto_sub -F '%j' lines are read,
 * including the "Z+0000" timestamp form, and a payload cut at a NUL byte is an error; bad
 * lines name their line number and leave the reader usable.
 */
#include <criterion/criterion.h>

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

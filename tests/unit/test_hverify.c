/*
 * Unit tests of hverify's structural comparison: key order, tolerances (global and per path),
 * ignore paths with indices and wildcards, the first differing path, and path syntax errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcore/jsonl.h"
#include "hverify.h"

static bool cmp(const char *e, const char *a, const struct hv_cfg *cfg, struct hv_diff *d)
{
    cJSON *je = cJSON_Parse(e), *ja = cJSON_Parse(a);
    bool r;

    cr_assert_not_null(je);
    cr_assert_not_null(ja);
    r = hv_compare(je, ja, cfg, d);
    cJSON_Delete(je);
    cJSON_Delete(ja);
    return r;
}

static void add_ignore(struct hv_cfg *cfg, const char *text)
{
    char why[100];

    cfg->ignore = realloc(cfg->ignore, (cfg->n_ignore + 1) * sizeof(*cfg->ignore));
    cr_assert(hv_path_compile(text, &cfg->ignore[cfg->n_ignore], why, sizeof(why)), "%s", why);
    cfg->n_ignore++;
}

Test(hverify, key_order_and_whitespace_do_not_matter)
{
    cr_assert(cmp("{\"a\":1,\"b\":{\"c\":[1,2],\"d\":\"x\"}}",
                  " { \"b\" : { \"d\":\"x\", \"c\":[ 1 , 2 ] } , \"a\" : 1 }", NULL, NULL));
}

Test(hverify, array_order_matters)
{
    struct hv_diff d;

    cr_assert_not(cmp("{\"a\":[1,2]}", "{\"a\":[2,1]}", NULL, &d));
    cr_assert_str_eq(d.path, "a[0]");
}

Test(hverify, first_differing_path_follows_expected_member_order)
{
    cJSON *e = cJSON_Parse("{\"x\":1,\"m\":[{\"v\":1},{\"v\":2,\"u\":\"g\"}],\"y\":2}");
    cJSON *a = cJSON_Parse("{\"y\":3,\"x\":1,\"m\":[{\"v\":1},{\"u\":\"g\",\"v\":2.5}]}");
    struct hv_diff d;

    cr_assert_not(hv_compare(e, a, NULL, &d));
    cr_assert_str_eq(d.path, "m[1].v");
    cr_assert_eq(d.expected->valuedouble, 2);
    cr_assert_eq(d.actual->valuedouble, 2.5);
    cJSON_Delete(e);
    cJSON_Delete(a);
}

Test(hverify, missing_and_extra_members_and_elements_are_reported)
{
    struct hv_diff d;

    cr_assert_not(cmp("{\"a\":1,\"b\":2}", "{\"a\":1}", NULL, &d));
    cr_assert_str_eq(d.path, "b");
    cr_assert_not_null(d.expected);
    cr_assert_null(d.actual);
    cr_assert_not(cmp("{\"a\":1}", "{\"a\":1,\"z\":true}", NULL, &d));
    cr_assert_str_eq(d.path, "z");
    cr_assert_null(d.expected);
    cr_assert_not(cmp("[1,2]", "[1,2,3]", NULL, &d));
    cr_assert_str_eq(d.path, "[2]");
}

Test(hverify, type_changes_differ_including_true_false_and_null)
{
    struct hv_diff d;

    cr_assert_not(cmp("{\"v\":true}", "{\"v\":false}", NULL, &d));
    cr_assert_str_eq(d.path, "v");
    cr_assert_not(cmp("{\"v\":1}", "{\"v\":\"1\"}", NULL, NULL));
    cr_assert_not(cmp("{\"v\":null}", "{\"v\":0}", NULL, NULL));
    cr_assert_not(cmp("1", "2", NULL, &d));
    cr_assert_str_eq(d.path, "$");
}

Test(hverify, odd_member_names_are_quoted_in_paths)
{
    struct hv_diff d;

    cr_assert_not(cmp("{\"a.b\":{\"c d\":1}}", "{\"a.b\":{\"c d\":2}}", NULL, &d));
    cr_assert_str_eq(d.path, "[\"a.b\"][\"c d\"]");
}

Test(hverify, absolute_and_relative_tolerances_loosen_numbers_only)
{
    struct hv_cfg cfg = {0};

    cfg.abs_tol = 0.01;
    cr_assert(cmp("{\"v\":1.0}", "{\"v\":1.005}", &cfg, NULL));
    cr_assert_not(cmp("{\"v\":1.0}", "{\"v\":1.02}", &cfg, NULL));
    cfg.abs_tol = 0;
    cfg.rel_tol = 0.001;
    cr_assert(cmp("{\"v\":1000}", "{\"v\":1000.9}", &cfg, NULL));
    cr_assert_not(cmp("{\"v\":1000}", "{\"v\":1001.1}", &cfg, NULL));
    cr_assert_not(cmp("{\"v\":\"1000\"}", "{\"v\":\"1000.5\"}", &cfg, NULL));
    cr_assert(cmp("{\"v\":0}", "{\"v\":0}", NULL, NULL));
}

Test(hverify, per_path_tolerance_applies_at_and_below_its_path)
{
    struct hv_cfg cfg = {0};
    char why[100];

    cfg.tols = calloc(1, sizeof(*cfg.tols));
    cr_assert(hv_path_compile("measurements[*].value", &cfg.tols[0].path, why, sizeof(why)));
    cfg.tols[0].abs_tol = 0.5;
    cfg.n_tols = 1;
    cr_assert(cmp("{\"measurements\":[{\"value\":1},{\"value\":{\"x\":2}}],\"v\":3}",
                  "{\"measurements\":[{\"value\":1.4},{\"value\":{\"x\":2.3}}],\"v\":3}", &cfg,
                  NULL));
    cr_assert_not(cmp("{\"measurements\":[{\"value\":1}],\"v\":3}",
                      "{\"measurements\":[{\"value\":1}],\"v\":3.1}", &cfg, NULL));
    hv_cfg_release(&cfg);
}

Test(hverify, ignore_paths_with_indices_and_wildcards)
{
    struct hv_cfg cfg = {0};
    struct hv_diff d;
    const char *e = "{\"n\":[\"a\"],\"m\":[{\"u\":\"g\",\"v\":1},{\"u\":\"g\",\"v\":2}],\"t\":1}";
    const char *a = "{\"n\":[\"b\"],\"m\":[{\"u\":\"x\",\"v\":1},{\"u\":\"y\",\"v\":2}],\"t\":1}";

    add_ignore(&cfg, "n");
    add_ignore(&cfg, "m[0].u");
    cr_assert_not(cmp(e, a, &cfg, &d));
    cr_assert_str_eq(d.path, "m[1].u");
    hv_cfg_release(&cfg);

    add_ignore(&cfg, "n[0]");
    add_ignore(&cfg, "m[*].u");
    cr_assert(cmp(e, a, &cfg, NULL));
    hv_cfg_release(&cfg);

    add_ignore(&cfg, "*[0]");
    add_ignore(&cfg, "*.*.u");
    cr_assert(cmp(e, a, &cfg, NULL));
    hv_cfg_release(&cfg);

    /* An ignored member may also be missing on one side. */
    add_ignore(&cfg, "normalised");
    cr_assert(cmp("{\"a\":1,\"normalised\":[]}", "{\"a\":1}", &cfg, NULL));
    hv_cfg_release(&cfg);
}

Test(hverify, malformed_paths_are_refused_with_a_reason)
{
    struct hv_path p;
    char why[100];

    cr_assert_not(hv_path_compile("a..b", &p, why, sizeof(why)));
    cr_assert_str_eq(why, "empty member name");
    cr_assert_not(hv_path_compile("a[x]", &p, why, sizeof(why)));
    cr_assert_not(hv_path_compile("a[1", &p, why, sizeof(why)));
    cr_assert_not(hv_path_compile("[\"a", &p, why, sizeof(why)));
    cr_assert_not(hv_path_compile("$", &p, why, sizeof(why)));
    cr_assert(hv_path_compile("[\"a.b\"].c[3]", &p, why, sizeof(why)));
    cr_assert_eq(p.n, 3);
    cr_assert_str_eq(p.segs[0].key, "a.b");
    cr_assert_eq(p.segs[2].kind, HV_SEG_INDEX);
    cr_assert_eq(p.segs[2].index, 3);
    hv_path_release(&p);
}

Test(hverify, xml_escape_handles_markup_and_control_characters)
{
    char *s = hv_xml_escape("<a & \"b\">\x01'");

    cr_assert_str_eq(s, "&lt;a &amp; &quot;b&quot;&gt;?&apos;");
    free(s);
}

/* --- the built-in path's fast input (lines.c) ----------------------------------------------- */

static char *temp_file(const char *content, size_t len)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(512);
    FILE *fp;
    int fd;

    cr_assert_not_null(path);
    snprintf(path, 512, "%s/hkit-hverify-XXXXXX", base && *base ? base : "/tmp");
    fd = mkstemp(path);
    cr_assert(fd >= 0);
    fp = fdopen(fd, "wb");
    cr_assert_not_null(fp);
    cr_assert_eq(fwrite(content, 1, len, fp), len);
    fclose(fp);
    return path;
}

/*
 * The recogniser must never disagree with hc_jsonl_next: every line it accepts, hc_jsonl_next
 * accepts with the same topic and payload bytes; every line hc_jsonl_next refuses, it declines.
 * Returns whether the recogniser accepted the line.
 */
static bool simple_agrees_with_jsonl(const char *line)
{
    char *path = temp_file(line, strlen(line));
    char *copy = strdup(line);
    hc_jsonl_reader *jr = NULL;
    struct hc_jsonl_record rec;
    struct hv_simple_line sl;
    hc_error err = HC_ERROR_INIT;
    hc_err rc;
    bool simple;

    cr_assert_not_null(copy);
    simple = hv_jsonl_simple(copy, strlen(copy), &sl);
    cr_assert_eq(hc_jsonl_reader_open(path, &jr, &err), HC_OK);
    rc = hc_jsonl_next(jr, &rec, &err);
    if (simple) {
        cr_assert_eq(rc, HC_OK, "accepted a line hc_jsonl_next refuses: %s (%s)", line,
                     err.message);
        cr_assert_str_eq(sl.topic, rec.msg.topic, "%s", line);
        cr_assert_eq(sl.payload_len, rec.msg.payload_len, "%s", line);
        cr_assert_eq(memcmp(sl.payload, rec.msg.payload, sl.payload_len), 0, "%s", line);
        cr_assert_eq(sl.payload[sl.payload_len], '\0');
    }
    hc_jsonl_reader_close(jr);
    unlink(path);
    free(path);
    free(copy);
    return simple;
}

Test(hverify, plain_input_lines_are_read_in_place_with_the_same_topic_and_payload)
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

    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        cr_assert(simple_agrees_with_jsonl(plain[i]), "declined: %s", plain[i]);
}

Test(hverify, escapes_and_control_bytes_are_found_at_every_offset_of_a_word)
{
    static const char *const marks[] = {"\\\"", "\\\\", "\\n", "\xc3\xa9", "\x01", "\x1f"};
    char line[200], text[64];

    for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++)
        for (int before = 0; before < 18; before++) {
            bool control = (unsigned char)marks[m][0] < 0x20;

            snprintf(text, sizeof(text), "%.*s%s%.*s", before, "abcdefghijklmnopqrstuvwxyz",
                     marks[m], 17 - before, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            snprintf(line, sizeof(line), "{\"topic\":\"%s\",\"payload\":\"%s\"}", text, text);
            cr_assert_eq(simple_agrees_with_jsonl(line), !control, "%s", line);
        }
}

Test(hverify, unusual_or_bad_input_lines_are_left_to_hc_jsonl_next)
{
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

    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        cr_assert_not(simple_agrees_with_jsonl(other[i]), "accepted: %s", other[i]);
}

Test(hverify, block_reader_hands_out_every_line_even_across_blocks_and_without_a_last_newline)
{
    size_t big = (size_t)3 << 20; /* longer than one block: the buffer grows */
    size_t total = big + 64;
    char *content = malloc(total);
    char *path, *line;
    size_t len, n = 0;
    struct hv_lines l;
    hc_error err = HC_ERROR_INIT;

    cr_assert_not_null(content);
    n += (size_t)sprintf(content + n, "first\n\n");
    memset(content + n, 'x', big);
    n += big;
    n += (size_t)sprintf(content + n, "\r\nlast");
    path = temp_file(content, n);
    cr_assert_eq(hv_lines_open(&l, path, &err), HC_OK);
    cr_assert_eq(hv_lines_next(&l, &line, &len, &err), HC_OK);
    cr_assert_str_eq(line, "first");
    cr_assert_eq(hv_lines_next(&l, &line, &len, &err), HC_OK);
    cr_assert_eq(len, 0);
    cr_assert_eq(hv_lines_next(&l, &line, &len, &err), HC_OK);
    cr_assert_eq(len, big + 1);
    cr_assert_eq(line[0], 'x');
    cr_assert_eq(line[big - 1], 'x');
    cr_assert_eq(line[big], '\r');
    cr_assert_eq(line[big + 1], '\0');
    cr_assert_eq(hv_lines_next(&l, &line, &len, &err), HC_OK);
    cr_assert_str_eq(line, "last");
    cr_assert_eq(len, 4);
    cr_assert_eq(hv_lines_next(&l, &line, &len, &err), HC_DONE);
    cr_assert_eq(l.lineno, 4);
    hv_lines_close(&l);
    cr_assert_eq(hv_lines_open(&l, path, &err), HC_OK);
    hv_lines_close(&l);
    unlink(path);
    cr_assert_eq(hv_lines_open(&l, path, &err), HC_ERR_IO);
    cr_assert(strstr(err.message, "No such file") != NULL, "%s", err.message);
    hv_lines_close(&l);
    free(path);
    free(content);
}

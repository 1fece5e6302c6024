/*
 * The tools' one message source (tool_source.c): selection and --limit on JSON lines and on a
 * recording alike, --skip-bad, passes, and +DURATION offsets from the earliest first message.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcore/store.h"
#include "tool.h"

#define T0 1770287400000000000LL /* 2026-02-05T10:30:00Z */

static char dir[] = "/tmp/hkit-tool-source-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static char *path_in_dir(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

/* Four messages a/1 b/2 a/3 b/4, one second apart from T0 + start_s. */
static const char *write_jsonl(const char *name, int start_s, bool bad_line)
{
    const char *path = path_in_dir(name);
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    if (bad_line)
        fputs("{\"payload\":\"no topic\"}\n", fp);
    for (int i = 1; i <= 4; i++)
        fprintf(
            fp,
            "{\"topic\":\"%s/%d\",\"received_at\":\"2026-02-05T10:30:%02dZ\",\"payload\":\"%d\"}\n",
            i % 2 ? "a" : "b", i, start_s + i - 1, i);
    cr_assert_eq(fclose(fp), 0);
    return path;
}

static const char *write_db(const char *name, int start_s)
{
    const char *path = path_in_dir(name);
    hc_store *st;
    hc_error err = HC_ERROR_INIT;
    int64_t session;

    cr_assert_eq(hc_store_open(path, HC_STORE_CREATE, &st, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_store_session_begin(st, T0, 0, &session, &err), HC_OK, "%s", err.message);
    for (int i = 1; i <= 4; i++) {
        char topic[16], payload[4];
        struct hc_msg m = {0};
        snprintf(topic, sizeof(topic), "%s/%d", i % 2 ? "a" : "b", i);
        snprintf(payload, sizeof(payload), "%d", i);
        m.topic = topic;
        m.payload = (const unsigned char *)payload;
        m.payload_len = strlen(payload);
        m.session_id = session;
        m.received_at_ns = T0 + (int64_t)(start_s + i - 1) * 1000000000LL;
        m.timeline_ns = m.received_at_ns;
        cr_assert_eq(hc_store_append(st, &m, NULL, &err), HC_OK, "%s", err.message);
    }
    cr_assert_eq(hc_store_close(st, &err), HC_OK, "%s", err.message);
    return path;
}

/* The topics one pass yields, space-separated. */
static void read_all(tool_source *s, char *out, size_t size)
{
    struct hc_msg m;
    hc_error err = HC_ERROR_INIT;
    hc_err rc;

    out[0] = '\0';
    while ((rc = tool_source_next(s, &m, &err)) == HC_OK)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? " " : "", m.topic);
    cr_assert_eq(rc, HC_DONE, "%s", err.message);
}

static void select_topic_and_limit(struct tool_select *sel)
{
    tool_select_init(sel);
    cr_assert_eq(tool_select_option(sel, 't', "a/#"), OPTS_OK);
    cr_assert_eq(tool_select_option(sel, TOOL_OPT_LIMIT, "1"), OPTS_OK);
}

Test(tool_source, json_lines_and_a_recording_select_and_limit_alike_on_every_pass, .init = setup,
     .fini = teardown)
{
    const char *inputs[2] = {write_jsonl("in.jsonl", 0, false), write_db("in.db", 0)};
    struct tool_select sel;
    struct tool_source_options opts = {.select = &sel};
    hc_error err = HC_ERROR_INIT;
    char got[256];

    select_topic_and_limit(&sel);
    for (int i = 0; i < 2; i++) {
        tool_source *s;
        int64_t n;
        cr_assert_eq(tool_source_open(inputs[i], &opts, &s, &err), HC_OK, "%s", err.message);
        cr_assert_eq(tool_source_is_recording(s), i == 1);
        cr_assert_eq(tool_source_count(s, &n, &err), HC_OK);
        cr_assert_eq(n, i == 1 ? 1 : -1);
        read_all(s, got, sizeof(got));
        cr_assert_str_eq(got, "a/1", "%s", inputs[i]);
        cr_assert_eq(tool_source_rewind(s, &err), HC_OK, "%s", err.message);
        read_all(s, got, sizeof(got));
        cr_assert_str_eq(got, "a/1", "second pass of %s", inputs[i]);
        tool_source_close(s);
    }
}

Test(tool_source, a_bad_line_fails_alone_or_is_skipped_and_counted, .init = setup, .fini = teardown)
{
    const char *path = write_jsonl("bad.jsonl", 0, true);
    struct tool_source_options opts = {0};
    hc_error err = HC_ERROR_INIT;
    struct hc_msg m;
    tool_source *s;
    char got[256];

    cr_assert_eq(tool_source_open(path, &opts, &s, &err), HC_OK);
    cr_assert_eq(tool_source_next(s, &m, &err), HC_ERR_PARSE);
    cr_assert_eq(tool_source_next(s, &m, &err), HC_OK, "the reader goes on after a bad line");
    cr_assert_str_eq(m.topic, "a/1");
    tool_source_close(s);

    opts.skip_bad = true;
    cr_assert_eq(tool_source_open(path, &opts, &s, &err), HC_OK);
    read_all(s, got, sizeof(got));
    cr_assert_str_eq(got, "a/1 b/2 a/3 b/4");
    cr_assert_eq(tool_source_skipped_bad(s), 1);
    tool_source_close(s);
}

Test(tool_source, offsets_count_from_the_earliest_first_message_of_the_inputs, .init = setup,
     .fini = teardown)
{
    const char *inputs[2] = {write_jsonl("late.jsonl", 10, true), write_db("early.db", 2)};
    struct tool_select sel;
    hc_error err = HC_ERROR_INIT;

    tool_select_init(&sel);
    cr_assert_eq(tool_select_option(&sel, TOOL_OPT_SINCE, "+1s"), OPTS_OK);
    cr_assert_eq(tool_select_option(&sel, TOOL_OPT_UNTIL, "2026-02-05T10:31:00Z"), OPTS_OK);
    cr_assert(tool_select_is_relative(&sel));
    cr_assert_eq(tool_select_resolve_inputs(&sel, inputs, 2, true, &err), HC_OK, "%s", err.message);
    cr_assert(sel.sel.has_since && sel.sel.has_until);
    cr_assert_eq(sel.sel.since_ns, T0 + 3000000000LL);
    cr_assert_eq(sel.sel.until_ns, T0 + 60000000000LL);
    /* without --skip-bad the bad first line of late.jsonl is an error, as reading it would be */
    cr_assert_eq(tool_select_resolve_inputs(&sel, inputs, 2, false, &err), HC_ERR_PARSE);
}

Test(tool_source, an_offset_with_standard_input_is_a_usage_error)
{
    const char *inputs[2] = {"x.db", "-"};
    struct tool_select sel;

    tool_init("hcat");
    tool_select_init(&sel);
    cr_assert_eq(tool_select_option(&sel, TOOL_OPT_SINCE, "2026-02-05T10:30:00Z"), OPTS_OK);
    cr_assert_eq(tool_select_check_inputs(&sel, inputs, 2), OPTS_OK, "an absolute time is fine");
    cr_assert_eq(tool_select_option(&sel, TOOL_OPT_UNTIL, "+10m"), OPTS_OK);
    cr_assert_eq(tool_select_check_inputs(&sel, inputs, 2), OPTS_ERROR);
    cr_assert_eq(tool_select_option(&sel, TOOL_OPT_SINCE, "bogus"), OPTS_ERROR,
                 "values are checked as they are parsed");
}

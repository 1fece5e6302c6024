/*
 * Tests of segmented recordings (a directory of 000001.db, 000002.db... read as one recording):
 * seq continues across segments, a session begun with the same start in several segments is one
 * session that ends as its last segment says, a segment killed while created reads as empty, and
 * the manifest lists every segment with its count.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcore/store.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/hkit-segments-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];

    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

TestSuite(segments, .init = make_tmpdir, .fini = remove_tmpdir);

#define T0 1796553378000000000LL /* CLOCK_REALTIME of the connection */
#define M0 5000000000LL          /* CLOCK_MONOTONIC of the connection */

/* Writes segment n: the connection's session, values first..last one ms apart, ended with
 * reason (NULL: left open, as by a killed writer). */
static void write_segment(unsigned n, int first, int last, const char *reason)
{
    char path[512], payload[32];
    hc_store *st = NULL;
    int64_t sid = 0;

    cr_assert_eq(hc_segments_path(tmpdir, n, path, sizeof(path), NULL), HC_OK);
    cr_assert_eq(hc_store_open(path, HC_STORE_CREATE, &st, NULL), HC_OK);
    cr_assert_eq(hc_store_session_begin(st, T0, M0, &sid, NULL), HC_OK);
    for (int v = first; v <= last; v++) {
        struct hc_msg msg;
        memset(&msg, 0, sizeof(msg));
        snprintf(payload, sizeof(payload), "{\"value\":%d}", v);
        msg.topic = "sensors/a";
        msg.payload = (const unsigned char *)payload;
        msg.payload_len = strlen(payload);
        msg.session_id = sid;
        msg.received_at_ns = T0 + (int64_t)v * 1000000;
        msg.mono_ns = (int64_t)v * 1000000;
        cr_assert_eq(hc_store_append(st, &msg, NULL, NULL), HC_OK);
    }
    if (reason)
        cr_assert_eq(hc_store_session_end(st, sid, T0 + (int64_t)last * 1000000 + 1, reason, NULL),
                     HC_OK);
    cr_assert_eq(hc_store_close(st, NULL), HC_OK);
}

static int count_session(const struct hc_session_row *row, void *user)
{
    struct hc_session_row *seen = user;
    seen->id++;
    seen->messages = row->messages;
    seen->ended_at_ns = row->ended_at_ns;
    seen->started_at_ns = row->started_at_ns;
    return 0;
}

Test(segments, directory_reads_as_one_recording_with_seq_continuing_and_one_session)
{
    struct hc_select all;
    struct hc_session_row seen;
    hc_store *st = NULL;
    hc_cursor *cur = NULL;
    struct hc_msg msg;
    hc_error err = HC_ERROR_INIT;
    int64_t expect_seq = 1;
    char path[512];
    FILE *fp;

    write_segment(1, 1, 3, "continued in the next segment");
    write_segment(2, 4, 7, "continued in the next segment");
    write_segment(3, 8, 9, NULL); /* the writer was killed */
    /* a fourth killed while created: an empty file */
    cr_assert_eq(hc_segments_path(tmpdir, 4, path, sizeof(path), NULL), HC_OK);
    fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    fclose(fp);

    cr_assert_eq(hc_store_open(tmpdir, HC_STORE_READ, &st, &err), HC_OK, "%s", err.message);
    memset(&all, 0, sizeof(all));
    cr_assert_eq(hc_store_query(st, &all, &cur, NULL), HC_OK);
    while (hc_cursor_next(cur, &msg, NULL) == HC_OK) {
        char want[32];
        snprintf(want, sizeof(want), "{\"value\":%d}", (int)expect_seq);
        cr_assert_eq(msg.seq, expect_seq);
        cr_assert_eq(msg.payload_len, strlen(want));
        cr_assert_eq(memcmp(msg.payload, want, msg.payload_len), 0);
        cr_assert_eq(msg.received_at_ns, T0 + expect_seq * 1000000);
        expect_seq++;
    }
    cr_assert_eq(expect_seq, 10);
    hc_cursor_free(cur);
    memset(&seen, 0, sizeof(seen));
    cr_assert_eq(hc_store_sessions_each(st, count_session, &seen, NULL), HC_OK);
    cr_assert_eq(seen.id, 1, "one session across the segments");
    cr_assert_eq(seen.messages, 9);
    cr_assert_eq(seen.started_at_ns, T0);
    cr_assert_eq(seen.ended_at_ns, 0, "the last segment's writer was killed: still open");
    cr_assert_eq(hc_store_close(st, NULL), HC_OK);
}

Test(segments, manifest_lists_every_segment_with_its_count)
{
    char path[512], text[4096];
    size_t n;
    FILE *fp;

    write_segment(1, 1, 3, "continued in the next segment");
    write_segment(2, 4, 5, "clean exit");
    cr_assert_eq(hc_segments_manifest_write(tmpdir, NULL), HC_OK);
    snprintf(path, sizeof(path), "%s/manifest.json", tmpdir);
    fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    cr_assert_not_null(strstr(text, "\"file\": \"000001.db\", \"messages\": 3,"), "%s", text);
    cr_assert_not_null(strstr(text, "\"file\": \"000002.db\", \"messages\": 2,"), "%s", text);
    cr_assert_null(strstr(text, "\"sha256\": null"), "both are sealed: %s", text);
}

Test(segments, a_directory_without_segments_is_not_a_recording)
{
    hc_store *st = NULL;
    hc_error err = HC_ERROR_INIT;

    cr_assert_eq(hc_store_open(tmpdir, HC_STORE_READ, &st, &err), HC_ERR_NOT_RECORDING);
    cr_assert_not_null(strstr(err.message, "without recording segments"), "%s", err.message);
}

/*
 * Helpers shared by the recording store's unit tests (test_store.c, test_store_columns.c,
 * test_store_summary.c): a temporary directory per test binary, stores opened, closed and
 * appended to under assertions, selections counted, the five-message fixture of the filter tests,
 * a collector of counts by column, and byte-for-byte file checks. Static inline, so that each
 * test file takes only what it uses without a warning.
 */
#ifndef HKIT_TESTS_STORE_HELPERS_H
#define HKIT_TESTS_STORE_HELPERS_H

#include <criterion/criterion.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hcore/store.h"

static char tmpdir[256];

static inline void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/hkit-store-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static inline void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

static inline const char *tmp_path(const char *name)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof(paths[0]), "%s/%s", tmpdir, name);
    return p;
}

static inline hc_store *open_ok(const char *path, enum hc_store_mode mode)
{
    hc_error err = HC_ERROR_INIT;
    hc_store *st = NULL;
    hc_err rc = hc_store_open(path, mode, &st, &err);
    cr_assert_eq(rc, HC_OK, "open '%s' failed: %s", path, err.message);
    cr_assert_not_null(st);
    return st;
}

static inline void close_ok(hc_store *st)
{
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_store_close(st, &err), HC_OK, "close failed: %s", err.message);
}

static inline int64_t begin_session(hc_store *st, int64_t started_at_ns)
{
    hc_error err = HC_ERROR_INIT;
    int64_t id = 0;
    cr_assert_eq(hc_store_session_begin(st, started_at_ns, 1000, &id, &err), HC_OK, "%s",
                 err.message);
    cr_assert_gt(id, 0);
    return id;
}

static inline int64_t append(hc_store *st, int64_t session, int64_t received_at_ns,
                             const char *topic, const void *payload, size_t len)
{
    struct hc_msg m = {0};
    hc_error err = HC_ERROR_INIT;
    int64_t seq = 0;

    m.session_id = session;
    m.received_at_ns = received_at_ns;
    m.mono_ns = received_at_ns - 1000000000LL;
    m.topic = topic;
    m.payload = payload;
    m.payload_len = len;
    cr_assert_eq(hc_store_append(st, &m, &seq, &err), HC_OK, "append failed: %s", err.message);
    return seq;
}

static inline int64_t append_text(hc_store *st, int64_t session, int64_t received_at_ns,
                                  const char *topic, const char *payload)
{
    return append(st, session, received_at_ns, topic, payload, strlen(payload));
}

/* Runs a selection and returns the number of rows; seqs (when not NULL) gets their seq values. */
static inline size_t select_seqs(hc_store *st, const struct hc_select *sel, int64_t *seqs,
                                 size_t max)
{
    hc_error err = HC_ERROR_INIT;
    hc_cursor *cur = NULL;
    struct hc_msg m;
    size_t n = 0;
    hc_err rc;

    cr_assert_eq(hc_store_query(st, sel, &cur, &err), HC_OK, "query failed: %s", err.message);
    while ((rc = hc_cursor_next(cur, &m, &err)) == HC_OK) {
        if (seqs && n < max)
            seqs[n] = m.seq;
        n++;
    }
    cr_assert_eq(rc, HC_DONE, "cursor failed: %s", err.message);
    hc_cursor_free(cur);
    return n;
}

#define T_TEMP "haltian-iot/events/intg/key/measurements/ambientTemperature/dev-1"
#define T_TEMP_ALIAS "haltian-iot/events/intg/key/measurements/ambient_temperature/dev-2"
#define T_HUM "haltian-iot/events/intg/key/measurements/humidity/dev-1"
#define T_OFFLINE "haltian-iot/events/intg/key/notifications/deviceOffline"
#define P_TEMP "{\"measured_at\":\"2026-02-05T10:30:45.123Z\",\"value\":23.5}"
#define P_HUM "{\"measured_at\":\"2026-02-05T10:30:46.000Z\",\"value\":45.8}"

/* Topic and payload parts of the decoded-column and summary tests. */
#define HT "haltian-iot/events/intg/key/measurements/"
#define TS_OK "\"measured_at\":\"2026-02-05T10:30:45.123Z\""
#define TSN "cloudext/json/pr/fi/group1/TSPOD1/"

/* Five messages: two sessions, times 100..500, a mix of topics, kinds, types and devices. */
static inline hc_store *filter_fixture(int64_t *s1, int64_t *s2)
{
    hc_store *st = open_ok(tmp_path("filters.db"), HC_STORE_CREATE);
    *s1 = begin_session(st, 0);
    append_text(st, *s1, 100, T_TEMP, P_TEMP);       /* 1 */
    append_text(st, *s1, 200, T_HUM, P_HUM);         /* 2 */
    append_text(st, *s1, 300, T_TEMP_ALIAS, P_TEMP); /* 3 */
    *s2 = begin_session(st, 1000);
    append_text(st, *s2, 400, T_OFFLINE, "{\"value\":true}");          /* 4 */
    append_text(st, *s2, 500, "other/tree/x", "not json at all \x01"); /* 5 */
    return st;
}

static inline int64_t count_messages(hc_store *st)
{
    struct hc_store_summary sum;
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_store_summarize(st, NULL, &sum, &err), HC_OK, "%s", err.message);
    return sum.messages;
}

struct group_log {
    char keys[8][128];
    int64_t counts[8], first[8], last[8];
    int n;
};

static inline int collect_group(const char *key, int64_t count, int64_t first_ns, int64_t last_ns,
                                void *user)
{
    struct group_log *g = user;
    if (g->n < 8) {
        snprintf(g->keys[g->n], sizeof(g->keys[0]), "%s", key);
        g->counts[g->n] = count;
        g->first[g->n] = first_ns;
        g->last[g->n] = last_ns;
        g->n++;
    }
    return 0;
}

static inline bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    struct stat sb;

    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fstat(fileno(f), &sb), 0);
    buf = malloc((size_t)sb.st_size + 1);
    cr_assert_not_null(buf);
    *len = fread(buf, 1, (size_t)sb.st_size, f);
    fclose(f);
    return buf;
}

static inline void assert_same_bytes(const char *path, const char *before, size_t before_len)
{
    size_t len;
    char *now = slurp(path, &len);
    cr_assert(len == before_len && memcmp(now, before, len) == 0, "%s changed", path);
    free(now);
}

#endif

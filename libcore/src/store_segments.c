/*
 * Segmented recordings: a directory of numbered recordings (000001.db, 000002.db, ...) that
 * hrecord --rotate-size/--rotate-time writes, with a manifest.json describing them. Each segment
 * is a complete recording on its own. Reading the directory as one recording merges the segments
 * into a private copy (seq continues, a session that spans segments stays one session), so every
 * reading API of the store works on it unchanged. The manifest is derived from the segments and
 * can always be rebuilt from them: the segments are the truth. A segment whose writer was killed
 * while creating it (no schema committed, hence no message) reads as holding nothing.
 */
#include "hcore/store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hcore/timefmt.h"
#include "internal.h"
#include "store_internal.h"

#define SEGMENT_DIGITS 6
#define SEGMENT_MAX 999999u

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return s;
}

hc_err hc_segments_path(const char *dir, unsigned number, char *buf, size_t size, hc_error *err)
{
    int n;

    if (number == 0 || number > SEGMENT_MAX)
        return hc_error_set(err, HC_ERR_INVALID, "segment number %u out of range", number);
    n = snprintf(buf, size, "%s%s%06u.db", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/",
                 number);
    if (n < 0 || (size_t)n >= size)
        return hc_error_set(err, HC_ERR_INVALID, "segment path under '%s' too long", dir);
    return HC_OK;
}

/* The segment number of a name "NNNNNN.db", else 0. */
static unsigned segment_number(const char *name)
{
    unsigned v = 0;

    for (int i = 0; i < SEGMENT_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(name[i] - '0');
    }
    return strcmp(name + SEGMENT_DIGITS, ".db") == 0 ? v : 0;
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

hc_err hc_segments_list(const char *dir, unsigned **numbers, size_t *n_numbers, hc_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned *list = NULL;
    size_t n = 0, cap = 0;

    *numbers = NULL;
    *n_numbers = 0;
    if (!d)
        return hc_error_set(err, HC_ERR_IO, "cannot open '%s': %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        unsigned v = segment_number(e->d_name);
        if (!v)
            continue;
        if (n == cap) {
            unsigned *grown = realloc(list, (cap ? cap * 2 : 16) * sizeof(*list));
            if (!grown) {
                closedir(d);
                free(list);
                return hc_error_set(err, HC_ERR_NOMEM, "cannot list '%s': out of memory", dir);
            }
            list = grown;
            cap = cap ? cap * 2 : 16;
        }
        list[n++] = v;
    }
    closedir(d);
    if (n)
        qsort(list, n, sizeof(*list), cmp_unsigned);
    *numbers = list;
    *n_numbers = n;
    return HC_OK;
}

hc_err hc_segments_remove(const char *dir, unsigned number, hc_error *err)
{
    static const char *const suffixes[] = {"-wal", "-shm", "-journal", ""};
    char path[4096], side[4160];
    hc_err rc = hc_segments_path(dir, number, path, sizeof(path), err);

    if (rc != HC_OK)
        return rc;
    /* the side files first: a -wal without its database would be read as nothing */
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(side, sizeof(side), "%s%s", path, suffixes[i]);
        if (unlink(side) != 0 && errno != ENOENT)
            return hc_error_set(err, HC_ERR_IO, "cannot remove '%s': %s", side, strerror(errno));
    }
    return HC_OK;
}

/* sha256 of a file's bytes as 64 hex digits. */
static hc_err file_sha256(const char *path, char hex[65], hc_error *err)
{
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    FILE *fp = fopen(path, "rb");
    hc_err rc = HC_OK;
    size_t n;

    if (!fp) {
        rc = hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "cannot hash '%s': no sha256", path);
        goto out;
    }
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    if (ferror(fp)) {
        rc = hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    EVP_DigestFinal_ex(ctx, md, &md_len);
    for (unsigned int i = 0; i < md_len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = '\0';
out:
    if (fp)
        fclose(fp);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int64_t file_size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* One manifest entry: what the segment holds, read through the store. */
static hc_err manifest_entry(const char *dir, unsigned number, struct hc__buf *b, hc_error *err)
{
    char path[4096], wal[4200], hex[65], first[48] = "", last[48] = "";
    struct hc_select everything;
    struct hc_store_summary s;
    hc_store *st = NULL;
    bool sealed;
    hc_err rc;

    memset(&everything, 0, sizeof(everything));
    rc = hc_segments_path(dir, number, path, sizeof(path), err);
    if (rc == HC_OK)
        rc = hc_store_open(path, HC_STORE_READ, &st, err);
    if (rc == HC_OK)
        rc = hc_store_summarize(st, &everything, &s, err);
    hc_store_close(st, NULL);
    if (rc == HC_ERR_NOT_RECORDING) {
        /* the writer died creating it: no schema was committed, so no message either */
        hc__buf_addf(b, "    {\"file\": \"%06u.db\", \"messages\": 0, \"unfinished\": true}",
                     number);
        return HC_OK;
    }
    if (rc != HC_OK)
        return rc;
    /* A segment with committed pages still in its -wal (being written, or its writer was
     * killed) has no stable bytes yet: its hash is left out until it is sealed. */
    snprintf(wal, sizeof(wal), "%s-wal", path);
    sealed = file_size_of(wal) <= 0;
    if (sealed) {
        rc = file_sha256(path, hex, err);
        if (rc != HC_OK)
            return rc;
    }
    if (s.messages) {
        hc_time_format_rfc3339(s.first_received_at_ns, 9, first, sizeof(first));
        hc_time_format_rfc3339(s.last_received_at_ns, 9, last, sizeof(last));
    }
    hc__buf_addf(b,
                 "    {\"file\": \"%06u.db\", \"messages\": %lld, \"sessions\": %lld, "
                 "\"bytes\": %lld,\n     \"first_received_at_ns\": %lld, "
                 "\"last_received_at_ns\": %lld,\n     \"first\": \"%s\", \"last\": \"%s\",\n"
                 "     \"sealed\": %s, \"sha256\": %s%s%s}",
                 number, (long long)s.messages, (long long)s.sessions,
                 (long long)file_size_of(path), (long long)s.first_received_at_ns,
                 (long long)s.last_received_at_ns, first, last, sealed ? "true" : "false",
                 sealed ? "\"" : "", sealed ? hex : "null", sealed ? "\"" : "");
    return HC_OK;
}

hc_err hc_segments_manifest_write(const char *dir, hc_error *err)
{
    struct hc__buf b;
    unsigned *numbers = NULL;
    size_t n = 0;
    char *path = NULL, *tmp = NULL;
    FILE *fp = NULL;
    hc_err rc;

    hc__buf_init(&b);
    rc = hc_segments_list(dir, &numbers, &n, err);
    if (rc != HC_OK)
        goto out;
    hc__buf_addstr(&b,
                   "{\n  \"format\": \"hkit-segments\",\n  \"version\": 1,\n  \"segments\": [\n");
    for (size_t i = 0; i < n && rc == HC_OK; i++) {
        rc = manifest_entry(dir, numbers[i], &b, err);
        hc__buf_addstr(&b, i + 1 < n ? ",\n" : "\n");
    }
    if (rc != HC_OK)
        goto out;
    if (!hc__buf_addstr(&b, "  ]\n}\n")) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "cannot write the manifest of '%s': out of memory",
                          dir);
        goto out;
    }
    path = join(dir, "manifest.json");
    tmp = join(dir, ".manifest.json.tmp");
    if (!path || !tmp) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "cannot write the manifest of '%s': out of memory",
                          dir);
        goto out;
    }
    /* written beside and renamed over: a reader or a crash sees the old or the new, whole */
    fp = fopen(tmp, "wb");
    if (!fp || fwrite(b.data, 1, b.len, fp) != b.len || fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        rc = hc_error_set(err, errno == ENOSPC ? HC_ERR_FULL : HC_ERR_IO, "cannot write '%s': %s",
                          tmp, strerror(errno));
        goto out;
    }
    if (fclose(fp) != 0) {
        fp = NULL;
        rc = hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    fp = NULL;
    if (rename(tmp, path) != 0)
        rc = hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
out:
    if (fp)
        fclose(fp);
    if (rc != HC_OK && tmp)
        unlink(tmp);
    free(path);
    free(tmp);
    free(numbers);
    hc__buf_release(&b);
    return rc;
}

/* --- reading a directory as one recording ---------------------------------------------------- */

/* A session of the merged recording; segments name it by its start (wall and monotonic). */
struct merged_session {
    int64_t started_at_ns, started_mono_ns;
    int64_t id;
    int64_t ended_at_ns;
    char *end_reason;
};

struct merge {
    hc_store *out;
    struct merged_session *sessions;
    size_t n_sessions, cap_sessions;
    /* the current segment's session ids, mapped to the merged ones */
    int64_t *local_ids, *merged_ids;
    size_t n_local, cap_local;
    hc_err failed;
    hc_error *err;
};

static int map_session(const struct hc_session_row *row, void *user)
{
    struct merge *m = user;
    size_t i;

    for (i = 0; i < m->n_sessions; i++)
        if (m->sessions[i].started_at_ns == row->started_at_ns &&
            m->sessions[i].started_mono_ns == row->started_mono_ns)
            break;
    if (i == m->n_sessions) {
        if (m->n_sessions == m->cap_sessions) {
            size_t cap = m->cap_sessions ? m->cap_sessions * 2 : 16;
            struct merged_session *grown = realloc(m->sessions, cap * sizeof(*grown));
            if (!grown)
                goto nomem;
            m->sessions = grown;
            m->cap_sessions = cap;
        }
        memset(&m->sessions[i], 0, sizeof(m->sessions[i]));
        m->sessions[i].started_at_ns = row->started_at_ns;
        m->sessions[i].started_mono_ns = row->started_mono_ns;
        m->failed = hc_store_session_begin(m->out, row->started_at_ns, row->started_mono_ns,
                                           &m->sessions[i].id, m->err);
        if (m->failed != HC_OK)
            return 1;
        m->n_sessions++;
    }
    /* the last segment holding the session knows how it ended (not at all when its writer was
     * killed: the earlier segments' "continued in the next segment" no longer holds) */
    {
        char *reason = strdup(row->end_reason ? row->end_reason : "");
        if (!reason)
            goto nomem;
        free(m->sessions[i].end_reason);
        m->sessions[i].end_reason = reason;
        m->sessions[i].ended_at_ns = row->ended_at_ns;
    }
    if (m->n_local == m->cap_local) {
        size_t cap = m->cap_local ? m->cap_local * 2 : 16;
        int64_t *a = realloc(m->local_ids, cap * sizeof(*a));
        if (a)
            m->local_ids = a;
        int64_t *b = a ? realloc(m->merged_ids, cap * sizeof(*b)) : NULL;
        if (!b)
            goto nomem;
        m->merged_ids = b;
        m->cap_local = cap;
    }
    m->local_ids[m->n_local] = row->id;
    m->merged_ids[m->n_local] = m->sessions[i].id;
    m->n_local++;
    return 0;
nomem:
    m->failed = hc_error_set(m->err, HC_ERR_NOMEM, "cannot merge segments: out of memory");
    return 1;
}

static int copy_meta(const char *key, const char *value, void *user)
{
    struct merge *m = user;
    m->failed = hc_store_meta_set(m->out, key, value, m->err);
    return m->failed != HC_OK;
}

/* Appends every message of one segment to the merged recording. */
static hc_err merge_segment(struct merge *m, const char *path, bool first, hc_error *err)
{
    struct hc_select everything;
    hc_store *st = NULL;
    hc_cursor *cur = NULL;
    struct hc_msg msg;
    hc_err rc;

    memset(&everything, 0, sizeof(everything));
    m->n_local = 0;
    m->failed = HC_OK;
    rc = hc_store_open(path, HC_STORE_READ, &st, err);
    if (rc == HC_ERR_NOT_RECORDING)
        return HC_OK; /* unfinished: its writer died creating it, before any message */
    if (rc == HC_OK && first)
        rc = hc_store_meta_each(st, copy_meta, m, err);
    if (rc == HC_OK && m->failed == HC_OK)
        rc = hc_store_sessions_each(st, map_session, m, err);
    if (rc == HC_OK && m->failed != HC_OK)
        rc = m->failed;
    if (rc == HC_OK)
        rc = hc_store_query(st, &everything, &cur, err);
    while (rc == HC_OK && (rc = hc_cursor_next(cur, &msg, err)) == HC_OK) {
        size_t i;
        for (i = 0; i < m->n_local && m->local_ids[i] != msg.session_id; i++)
            ;
        if (i == m->n_local) {
            rc = hc_error_set(err, HC_ERR_CORRUPT, "'%s': a message names no session", path);
            break;
        }
        msg.session_id = m->merged_ids[i];
        rc = hc_store_append(m->out, &msg, NULL, err);
    }
    if (rc == HC_DONE)
        rc = HC_OK;
    hc_cursor_free(cur);
    hc_store_close(st, NULL);
    return rc;
}

hc_err hc__store_merge_segments(const char *dir, const char *merged_path, hc_error *err)
{
    struct merge m;
    unsigned *numbers = NULL;
    size_t n = 0;
    char path[4096];
    hc_err rc;

    memset(&m, 0, sizeof(m));
    m.err = err;
    rc = hc_segments_list(dir, &numbers, &n, err);
    if (rc == HC_OK && n == 0)
        rc = hc_error_set(err, HC_ERR_NOT_RECORDING,
                          "'%s' is a directory without recording segments (000001.db, ...)", dir);
    if (rc == HC_OK)
        rc = hc_store_open(merged_path, HC_STORE_CREATE, &m.out, err);
    if (rc != HC_OK)
        goto out;
    /* one transaction per large batch: the copy is private, nothing waits for its commits */
    hc_store_set_flush_interval(m.out, INT64_MAX / 4);
    hc_store_set_batch_rows(m.out, 100000);
    for (size_t i = 0; i < n && rc == HC_OK; i++) {
        rc = hc_segments_path(dir, numbers[i], path, sizeof(path), err);
        if (rc == HC_OK)
            rc = merge_segment(&m, path, i == 0, err);
    }
    for (size_t i = 0; i < m.n_sessions && rc == HC_OK; i++)
        if (m.sessions[i].ended_at_ns)
            rc = hc_store_session_end(m.out, m.sessions[i].id, m.sessions[i].ended_at_ns,
                                      m.sessions[i].end_reason, err);
out:
    if (m.out) {
        hc_err crc = hc_store_close(m.out, rc == HC_OK ? err : NULL);
        if (rc == HC_OK)
            rc = crc;
    }
    for (size_t i = 0; i < m.n_sessions; i++)
        free(m.sessions[i].end_reason);
    free(m.sessions);
    free(m.local_ids);
    free(m.merged_ids);
    free(numbers);
    return rc;
}

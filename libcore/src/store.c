/*
 * The recording store: opening, checking and closing recordings, and their meta. A recording is
 * one SQLite file in WAL mode whose schema is described in hcore/store.h and README.md ("The
 * recording format"). Writing is in store_write.c, reading in store_read.c, the summaries in
 * store_summary.c; store_internal.h holds what they share.
 */
#include "hcore/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "hcore/decode.h"
#include "hcore/topic.h"
#include "internal.h"
#include "store_internal.h"

static const char SCHEMA_SQL[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE sessions("
    "  id INTEGER PRIMARY KEY,"
    "  started_at_ns INTEGER NOT NULL,"   /* CLOCK_REALTIME at connect */
    "  started_mono_ns INTEGER NOT NULL," /* CLOCK_MONOTONIC at connect */
    "  ended_at_ns INTEGER,"              /* CLOCK_REALTIME; NULL while open or after a crash */
    "  end_reason TEXT);"
    /* What the decoder takes from a topic alone is stored once per topic, not per message. */
    "CREATE TABLE topics("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL,"
    "  type TEXT NOT NULL," /* canonical; "" for legacy Thingsee (typed by the payload) */
    "  device_id TEXT NOT NULL);"
    "CREATE TABLE message_rows("
    "  seq INTEGER PRIMARY KEY,"
    "  session_id INTEGER NOT NULL,"
    "  received_at_ns INTEGER NOT NULL," /* CLOCK_REALTIME */
    "  mono_ns INTEGER NOT NULL,"        /* CLOCK_MONOTONIC minus sessions.started_mono_ns */
    "  topic_id INTEGER NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  qos INTEGER NOT NULL,"
    "  retain INTEGER NOT NULL,"
    "  dup INTEGER NOT NULL,"
    "  measured_at_ms INTEGER,"
    "  decode_error INTEGER NOT NULL,"
    "  payload_type TEXT);" /* NULL unless the payload names the type (legacy Thingsee) */
    /* Every message with its decoded columns, as one table would show them, so that SQL written
     * against a single messages table keeps working. LEFT JOIN: no message row is ever hidden. */
    "CREATE VIEW messages AS SELECT"
    "  r.seq, r.session_id, r.received_at_ns, r.mono_ns, r.topic_id, r.payload, r.qos, r.retain,"
    "  r.dup, t.kind, coalesce(r.payload_type, t.type) AS type, t.device_id, r.measured_at_ms,"
    "  r.decode_error"
    "  FROM message_rows r LEFT JOIN topics t ON t.id = r.topic_id;"
    /* What a person opening the file with the sqlite3 shell wants to read. */
    "CREATE VIEW messages_v AS SELECT"
    "  m.seq, m.session_id,"
    "  strftime('%Y-%m-%dT%H:%M:%fZ', m.received_at_ns / 1e9, 'unixepoch') AS received_at,"
    "  m.received_at_ns, m.mono_ns, s.started_at_ns + m.mono_ns AS timeline_ns,"
    "  t.name AS topic, CAST(m.payload AS TEXT) AS payload_text, m.payload,"
    "  length(m.payload) AS payload_len, m.qos, m.retain, m.dup,"
    "  t.kind, coalesce(m.payload_type, t.type) AS type, t.device_id, m.measured_at_ms,"
    "  m.decode_error"
    "  FROM message_rows m JOIN topics t ON t.id = m.topic_id"
    "  LEFT JOIN sessions s ON s.id = m.session_id;";

static hc_err code_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return HC_ERR_FULL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return HC_ERR_CORRUPT;
    case SQLITE_NOMEM:
        return HC_ERR_NOMEM;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        return HC_ERR_IO;
    default:
        return HC_ERR_DB;
    }
}

/*
 * SQLite's integrity reports are several lines ("*** in database main ***", then one line per
 * problem): keep the first problem, on one line, as every hkit message is.
 */
static void one_line(const char *text, char *buf, size_t size)
{
    static const char header[] = "*** in database main ***";
    size_t n = 0;

    while (*text == '\n' || *text == ' ')
        text++;
    if (strncmp(text, header, sizeof(header) - 1) == 0)
        text += sizeof(header) - 1;
    while (*text == '\n' || *text == ' ')
        text++;
    while (*text && *text != '\n' && n + 1 < size)
        buf[n++] = *text == '\r' || *text == '\t' ? ' ' : *text, text++;
    buf[n] = '\0';
}

/* "cannot <what> '<path>': <sqlite's reason>" with the code sqlite's result maps to. */
hc_err hc__store_fail(const hc_store *st, int rc, hc_error *err, const char *what)
{
    const char *reason = st->db ? sqlite3_errmsg(st->db) : NULL;
    char line[256];

    if (!reason || strcmp(reason, "not an error") == 0)
        reason = sqlite3_errstr(rc);
    one_line(reason, line, sizeof(line));
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
        return hc_error_set(err, HC_ERR_CORRUPT, "'%s' is damaged: %s", st->path, line);
    return hc_error_set(err, code_of(rc), "cannot %s '%s': %s", what, st->path, line);
}

hc_err hc__store_exec(hc_store *st, const char *sql, hc_error *err, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, what);
    return HC_OK;
}

/* Runs a statement returning one integer (a PRAGMA, a count). */
int hc__store_query_int(hc_store *st, const char *sql, int64_t *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
out:
    sqlite3_finalize(stmt);
    return rc;
}

/* --- SQL functions -----------------------------------------------------------------------------
 */

/* hc_topic_match(filter, topic): MQTT filter matching for selections and for sqlite3 users. */
static void sql_topic_match(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *filter = (const char *)sqlite3_value_text(argv[0]);
    const char *topic = (const char *)sqlite3_value_text(argv[1]);
    (void)argc;
    sqlite3_result_int(ctx, filter && topic && hc_topic_matches(filter, topic));
}

/* hc_decode_error_code(topic, payload): the decoder's error code, "" when it reports none. Only
 * run on rows flagged decode_error, which are few. */
static void sql_decode_error_code(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *topic = (const char *)sqlite3_value_text(argv[0]);
    const unsigned char *payload = sqlite3_value_blob(argv[1]);
    int len = sqlite3_value_bytes(argv[1]);
    cJSON *decoded = NULL;
    const cJSON *code;
    (void)argc;

    if (!topic || hc_decode_message(topic, payload, (size_t)len, &decoded, NULL) != HC_OK) {
        sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
        goto out;
    }
    code = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(decoded, "error"),
                                            "code");
    if (cJSON_IsString(code) && code->valuestring)
        sqlite3_result_text(ctx, code->valuestring, -1, SQLITE_TRANSIENT);
    else if (cJSON_IsNumber(code))
        sqlite3_result_int64(ctx, (sqlite3_int64)code->valuedouble);
    else
        sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
out:
    cJSON_Delete(decoded);
}

static hc_err register_functions(hc_store *st, hc_error *err)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int rc = sqlite3_create_function(st->db, "hc_topic_match", 2, flags, NULL, sql_topic_match,
                                     NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(st->db, "hc_decode_error_code", 2, flags, NULL,
                                     sql_decode_error_code, NULL, NULL);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    return HC_OK;
}

/* --- opening --------------------------------------------------------------------------------- */

/* "<path><suffix>", new string (free()), or NULL when out of memory. */
static char *with_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *name = malloc(n);
    if (name)
        snprintf(name, n, "%s%s", path, suffix);
    return name;
}

/* Size of path+suffix, or -1 when it does not exist (or cannot be examined). */
static int64_t side_file_size(const char *path, const char *suffix)
{
    char *name = with_suffix(path, suffix);
    struct stat sb;
    int64_t size = -1;

    if (name && stat(name, &sb) == 0)
        size = (int64_t)sb.st_size;
    free(name);
    return size;
}

/*
 * A file: URI for path with query (e.g. "immutable=1"): every byte outside the unreserved set
 * is percent-encoded, so '?', '#' and '%' in a name stay part of it, and an absolute path gets
 * an empty authority ("file:///..."). New string (free()), or NULL when out of memory.
 */
static char *file_uri(const char *path, const char *query)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path) * 3 + strlen(query) + 16, used;
    char *uri = malloc(n);

    if (!uri)
        return NULL;
    used = (size_t)snprintf(uri, n, "file:%s", path[0] == '/' ? "//" : "");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p)) {
            uri[used++] = (char)*p;
        } else {
            uri[used++] = '%';
            uri[used++] = hex[*p >> 4];
            uri[used++] = hex[*p & 15];
        }
    }
    snprintf(uri + used, n - used, "?%s", query);
    return uri;
}

/* Copies src to dst (created, mode 0600). */
static hc_err copy_file(const char *src, const char *dst, hc_error *err)
{
    char buf[65536];
    hc_err code = HC_OK;
    ssize_t got;
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;

    if (in < 0) {
        code = hc_error_set(err, HC_ERR_IO, "cannot open '%s': %s", src, strerror(errno));
        goto out;
    }
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        code = hc_error_set(err, HC_ERR_IO, "cannot create '%s': %s", dst, strerror(errno));
        goto out;
    }
    while ((got = read(in, buf, sizeof(buf))) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            code = hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", src, strerror(errno));
            goto out;
        }
        for (ssize_t done = 0; done < got;) {
            ssize_t w = write(out, buf + done, (size_t)(got - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                code = hc_error_set(err, errno == ENOSPC ? HC_ERR_FULL : HC_ERR_IO,
                                    "cannot write '%s': %s", dst, strerror(errno));
                goto out;
            }
            done += w;
        }
    }
out:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && code == HC_OK)
        code = hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", dst, strerror(errno));
    return code;
}

/* Removes a private copy made by copy_for_reading (files and directory). Accepts NULL. */
static void remove_private_copy(char *dir)
{
    static const char *const names[] = {"/r.db", "/r.db-wal", "/r.db-shm", "/r.db-journal"};

    if (!dir)
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *name = with_suffix(dir, names[i]);
        if (name)
            unlink(name);
        free(name);
    }
    rmdir(dir);
    free(dir);
}

/*
 * A recording whose -wal holds committed pages but which has no -shm (a crashed writer's file
 * copied without it, as a pair) can only be read by SQLite after rebuilding the -shm, i.e. by
 * writing beside it. Instead the pair is copied into a private directory under $TMPDIR and read
 * there; the copy goes when the store closes. *dir_out: new string, the directory.
 */
static hc_err copy_for_reading(const hc_store *st, char **dir_out, char **db_out, hc_error *err)
{
    const char *base = getenv("TMPDIR");
    char *dir = with_suffix(base && *base ? base : "/tmp", "/hkit-read-XXXXXX");
    char *db = NULL, *wal = NULL, *src_wal = with_suffix(st->path, "-wal");
    hc_err code = HC_OK;
    bool made = false;

    *dir_out = NULL;
    *db_out = NULL;
    if (!dir || !src_wal) {
        code = hc_error_set(err, HC_ERR_NOMEM, "cannot open '%s': out of memory", st->path);
        goto fail;
    }
    if (!mkdtemp(dir)) {
        code = hc_error_set(err, HC_ERR_IO,
                            "cannot open '%s': its -wal needs a private copy to be read, and "
                            "no temporary directory could be made: %s",
                            st->path, strerror(errno));
        goto fail;
    }
    made = true;
    db = with_suffix(dir, "/r.db");
    wal = with_suffix(dir, "/r.db-wal");
    if (!db || !wal) {
        code = hc_error_set(err, HC_ERR_NOMEM, "cannot open '%s': out of memory", st->path);
        goto fail;
    }
    code = copy_file(st->path, db, err);
    if (code == HC_OK)
        code = copy_file(src_wal, wal, err);
    if (code != HC_OK)
        goto fail;
    free(wal);
    free(src_wal);
    *dir_out = dir;
    *db_out = db;
    return HC_OK;
fail:
    free(db);
    free(wal);
    free(src_wal);
    if (made)
        remove_private_copy(dir);
    else
        free(dir);
    return code;
}

static bool is_directory(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A directory of segments is read through their merge, made in a private directory under
 * $TMPDIR (as copy_for_reading's copy, and removed the same way). */
static hc_err merge_for_reading(hc_store *st, hc_error *err)
{
    const char *base = getenv("TMPDIR");
    char *dir = with_suffix(base && *base ? base : "/tmp", "/hkit-read-XXXXXX");
    char *db = NULL;
    hc_err code;

    if (!dir)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot open '%s': out of memory", st->path);
    if (!mkdtemp(dir)) {
        code = hc_error_set(err, HC_ERR_IO,
                            "cannot open '%s': its segments are merged in a temporary "
                            "directory, and none could be made: %s",
                            st->path, strerror(errno));
        free(dir);
        return code;
    }
    db = with_suffix(dir, "/r.db");
    if (!db) {
        remove_private_copy(dir);
        return hc_error_set(err, HC_ERR_NOMEM, "cannot open '%s': out of memory", st->path);
    }
    code = hc__store_merge_segments(st->path, db, err);
    if (code != HC_OK) {
        free(db);
        remove_private_copy(dir);
        return code;
    }
    st->private_dir = dir;
    st->private_db = db;
    return HC_OK;
}

/*
 * Opens a recording for reading without changing a byte beside it or in it, also where nothing
 * may be written (another user's file, a read-only directory or medium):
 *  - no -wal (or an empty one) and no -shm: the writer closed cleanly or never wrote; the file is
 *    read as immutable, with no locks and no side files;
 *  - a -wal and a -shm: a writer is running, or crashed. The -shm is opened read-only
 *    (readonly_shm): with a live writer SQLite uses its -shm; without one it indexes the -wal in
 *    its own memory. Committed batches in the -wal are read, nothing is checkpointed;
 *  - a -wal with pages but no -shm (a crashed writer's pair, copied): read from a private copy.
 * Checkpoint-on-close is off, so even the last connection leaves the -wal as it was.
 */
static hc_err open_reader(hc_store *st, bool private_copy, hc_error *err)
{
    int64_t wal_size = side_file_size(st->path, "-wal");
    int64_t shm_size = side_file_size(st->path, "-shm");
    const char *open_path = st->path;
    char *uri = NULL;
    hc_err code = HC_OK;
    int rc;

    if (st->private_db && !private_copy) {
        /* a merged copy of a segmented recording, closed cleanly: nothing beside it */
        open_path = st->private_db;
        uri = file_uri(open_path, "mode=ro&immutable=1");
    } else if (private_copy || (wal_size > 0 && shm_size < 0)) {
        code = copy_for_reading(st, &st->private_dir, &st->private_db, err);
        if (code != HC_OK)
            return code;
        open_path = st->private_db;
        uri = file_uri(open_path, "mode=ro");
    } else if (wal_size >= 0 && shm_size >= 0) {
        uri = file_uri(open_path, "mode=ro&readonly_shm=1");
    } else {
        uri = file_uri(open_path, "mode=ro&immutable=1");
    }
    if (!uri)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot open '%s': out of memory", st->path);
    rc = sqlite3_open_v2(uri, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                         NULL);
    free(uri);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    rc = sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    if (rc != SQLITE_OK)
        code = hc__store_fail(st, rc, err, "open");
    return code;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Looks at the file's first bytes before SQLite does: an empty or non-SQLite file is not a
 * recording, and a header claiming more pages than the file holds is a truncated copy (SQLite
 * itself would only notice when a query reaches the missing pages). While a -wal file has content
 * a checkpoint may be rewriting the header, so the size check is skipped then.
 */
static hc_err check_file_header(const hc_store *st, hc_error *err)
{
    unsigned char header[100];
    struct stat sb;
    char *wal_path = NULL;
    FILE *f = NULL;
    hc_err code = HC_OK;
    size_t got;

    f = fopen(st->path, "rb");
    if (!f || fstat(fileno(f), &sb) != 0) {
        code = hc_error_set(err, HC_ERR_IO, "cannot open '%s': %s", st->path, strerror(errno));
        goto out;
    }
    got = fread(header, 1, sizeof(header), f);
    if (got < sizeof(header) || memcmp(header, "SQLite format 3", 16) != 0) {
        code = hc_error_set(err, HC_ERR_NOT_RECORDING,
                            "'%s' is not an hkit recording (not an sqlite database)", st->path);
        goto out;
    }
    if (be32(header + 92) == be32(header + 24)) { /* in-header page count is valid */
        uint32_t page_size = (uint32_t)header[16] << 8 | header[17];
        uint64_t pages = be32(header + 28);
        struct stat wal_sb;
        size_t n = strlen(st->path) + 5;

        if (page_size == 1)
            page_size = 65536;
        wal_path = malloc(n);
        if (!wal_path) {
            code = hc_error_set(err, HC_ERR_NOMEM, "cannot open '%s': out of memory", st->path);
            goto out;
        }
        snprintf(wal_path, n, "%s-wal", st->path);
        if (stat(wal_path, &wal_sb) == 0 && wal_sb.st_size > 0)
            goto out;
        if ((uint64_t)sb.st_size < pages * page_size)
            code = hc_error_set(err, HC_ERR_CORRUPT,
                                "'%s' is damaged: its header claims %llu bytes but the file has "
                                "%lld (truncated copy?)",
                                st->path, (unsigned long long)(pages * page_size),
                                (long long)sb.st_size);
    }
out:
    free(wal_path);
    if (f)
        fclose(f);
    return code;
}

/* Checks that an opened file is a recording this version can read. */
static hc_err validate_schema(hc_store *st, hc_error *err)
{
    int64_t app_id = 0, version = 0, tables = 0;
    struct stat sb;
    int rc;

    rc = hc__store_query_int(st, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_NOTADB)
        return hc_error_set(err, HC_ERR_NOT_RECORDING,
                            "'%s' is not an hkit recording (not an sqlite database)", st->path);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    if (app_id != HC_STORE_APP_ID)
        return hc_error_set(err, HC_ERR_NOT_RECORDING,
                            "'%s' is not an hkit recording (sqlite application_id is %lld)",
                            st->path, (long long)app_id);
    rc = hc__store_query_int(st, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    if (version > HC_STORE_SCHEMA_VERSION)
        return hc_error_set(err, HC_ERR_SCHEMA_NEWER,
                            "'%s' has recording schema version %lld, newer than the version %d "
                            "this hkit reads; upgrade hkit",
                            st->path, (long long)version, HC_STORE_SCHEMA_VERSION);
    rc = hc__store_query_int(st,
                             "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                             "('meta', 'sessions', 'topics', 'message_rows')",
                             &tables);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    if (version < 1 || tables != 4)
        return hc_error_set(err, HC_ERR_NOT_RECORDING,
                            "'%s' is not an hkit recording (schema incomplete)", st->path);
    st->schema_version = (int)version;
    if (version >= 2) {
        rc = hc__store_query_int(st,
                                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name"
                                 " IN ('summary_state', 'summary_topics', 'summary_minutes',"
                                 " 'summary_sessions', 'summary_sizes', 'summary_errors',"
                                 " 'time_runs')",
                                 &tables);
        if (rc != SQLITE_OK)
            return hc__store_fail(st, rc, err, "open");
        if (tables != 7)
            return hc_error_set(err, HC_ERR_NOT_RECORDING,
                                "'%s' is not an hkit recording (schema version %lld without its "
                                "summary tables)",
                                st->path, (long long)version);
    }
    if (stat(st->path, &sb) == 0 && sb.st_size <= STORE_QUICK_CHECK_MAX_BYTES) {
        sqlite3_stmt *stmt = NULL;
        const char *result = NULL;
        hc_err code = HC_OK;

        rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &stmt, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            result = (const char *)sqlite3_column_text(stmt, 0);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            code = hc__store_fail(st, rc, err, "check");
        } else if (result && strcmp(result, "ok") != 0) {
            char line[256];
            one_line(result, line, sizeof(line));
            code = hc_error_set(err, HC_ERR_CORRUPT, "'%s' is damaged: %s", st->path, line);
        }
        sqlite3_finalize(stmt);
        if (code != HC_OK)
            return code;
    }
    return HC_OK;
}

/* SQLite's checkpoint threshold counts pages: keep it at the same bytes whatever the file's
 * page size (a recording made with 4 KiB pages stays so). */
static hc_err set_autocheckpoint(hc_store *st, hc_error *err)
{
    int64_t page_size = 0;
    int rc = hc__store_query_int(st, "PRAGMA page_size", &page_size);

    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    if (page_size < 512)
        page_size = 4096;
    rc = sqlite3_wal_autocheckpoint(st->db, (int)(STORE_WAL_CHECKPOINT_BYTES / page_size));
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    return HC_OK;
}

static hc_err create_schema(hc_store *st, hc_error *err)
{
    char sql[256];
    hc_err code;

    code = hc__store_exec(st, "BEGIN IMMEDIATE", err, "create");
    if (code != HC_OK)
        return code;
    code = hc__store_exec(st, SCHEMA_SQL, err, "create");
    if (code == HC_OK)
        code = hc__store_exec(st, hc__summary_schema_sql, err, "create");
    if (code != HC_OK)
        goto out;
    snprintf(sql, sizeof(sql),
             "PRAGMA application_id = %d; PRAGMA user_version = %d;"
             "INSERT INTO meta(key, value) VALUES ('schema_version', '%d');",
             HC_STORE_APP_ID, HC_STORE_SCHEMA_VERSION, HC_STORE_SCHEMA_VERSION);
    code = hc__store_exec(st, sql, err, "create");
    if (code != HC_OK)
        goto out;
    code = hc__store_exec(st, "COMMIT", err, "create");
out:
    if (code != HC_OK)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return code;
}

static hc_err prepare_writer(hc_store *st, hc_error *err)
{
    int rc;
    int64_t max_id = 0;

    rc = sqlite3_prepare_v3(st->db,
                            "INSERT INTO message_rows(session_id, received_at_ns, mono_ns, "
                            "topic_id, payload, qos, retain, dup, measured_at_ms, decode_error, "
                            "payload_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            -1, SQLITE_PREPARE_PERSISTENT, &st->insert_message, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(st->db, "SELECT id, type FROM topics WHERE name = ?", -1,
                                SQLITE_PREPARE_PERSISTENT, &st->select_topic, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(st->db,
                                "INSERT INTO topics(name, kind, type, device_id) "
                                "VALUES (?, ?, ?, ?)",
                                -1, SQLITE_PREPARE_PERSISTENT, &st->insert_topic, NULL);
    if (rc == SQLITE_OK)
        rc = hc__store_query_int(st, "SELECT max(id) FROM sessions", &max_id);
    if (rc != SQLITE_OK)
        return hc__store_fail(st, rc, err, "open");
    st->max_session_id = max_id;
    return HC_OK;
}

/* Removes a file if present; "not there" is success. */
static hc_err remove_if_present(const char *path, const char *suffix, hc_error *err)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *name = malloc(n);
    hc_err code = HC_OK;

    if (!name)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot remove '%s': out of memory", path);
    snprintf(name, n, "%s%s", path, suffix);
    if (unlink(name) != 0 && errno != ENOENT)
        code = hc_error_set(err, HC_ERR_IO, "cannot remove '%s': %s", name, strerror(errno));
    free(name);
    return code;
}

/* Creates the file exclusively so two writers cannot both think they created it. */
static hc_err create_exclusive(const char *path, bool *existed, hc_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    *existed = false;
    if (fd < 0) {
        if (errno == EEXIST) {
            *existed = true;
            return HC_OK;
        }
        return hc_error_set(err, errno == ENOSPC ? HC_ERR_FULL : HC_ERR_IO,
                            "cannot create '%s': %s", path, strerror(errno));
    }
    close(fd);
    return HC_OK;
}

static hc_err connection_setup(hc_store *st, hc_error *err)
{
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    return register_functions(st, err);
}

/* The last error says the -wal's index in the -shm could not be used read-only. */
static bool wal_index_unusable(hc_store *st)
{
    int rc = st->db ? sqlite3_extended_errcode(st->db) : SQLITE_OK;
    return (rc & 0xff) == SQLITE_PROTOCOL || rc == SQLITE_READONLY_CANTINIT ||
           rc == SQLITE_READONLY_RECOVERY;
}

/* Creates a new file exclusively: one that exists already is an error. */
static hc_err create_new(const char *path, bool *existed, hc_error *err)
{
    hc_err code = create_exclusive(path, existed, err);
    if (code == HC_OK && *existed)
        code = hc_error_set(err, HC_ERR_EXISTS, "cannot create '%s': file exists", path);
    return code;
}

/*
 * Readies the file for mode before SQLite opens it: a recording's header is checked (read, and
 * append to an existing file), what force replaces is removed, a new file is created
 * exclusively. *existed: append found the file already there.
 */
static hc_err prepare_file(hc_store *st, const char *path, enum hc_store_mode mode, bool *existed,
                           hc_error *err)
{
    hc_err code = HC_OK;

    *existed = false;
    switch (mode) {
    case HC_STORE_READ:
        code = is_directory(path) ? merge_for_reading(st, err) : check_file_header(st, err);
        break;
    case HC_STORE_FORCE:
        code = remove_if_present(path, "", err);
        if (code == HC_OK)
            code = remove_if_present(path, "-wal", err);
        if (code == HC_OK)
            code = remove_if_present(path, "-shm", err);
        if (code == HC_OK)
            code = remove_if_present(path, "-journal", err);
        if (code == HC_OK)
            code = create_new(path, existed, err);
        break;
    case HC_STORE_CREATE:
        code = create_new(path, existed, err);
        break;
    case HC_STORE_APPEND:
        code = create_exclusive(path, existed, err);
        if (code == HC_OK && *existed)
            code = check_file_header(st, err);
        break;
    }
    return code;
}

/* Opens the SQLite connection: read-write for a writer, read-only (open_reader) otherwise. */
static hc_err open_connection(hc_store *st, const char *path, hc_error *err)
{
    hc_err code;

    if (st->writable) {
        int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        code = rc == SQLITE_OK ? HC_OK : hc__store_fail(st, rc, err, "open");
    } else {
        code = open_reader(st, false, err);
    }
    return code == HC_OK ? connection_setup(st, err) : code;
}

/* Checks the schema of a file that was there already, before any pragma that writes. */
static hc_err validate_existing(hc_store *st, hc_error *err)
{
    hc_err code = validate_schema(st, err);

    if (code != HC_OK && !st->writable && !st->private_db && wal_index_unusable(st)) {
        /* A -shm left in a state a read-only connection cannot recover from (its writer
         * was killed mid-update): read a private copy of the file and its -wal instead,
         * where SQLite rebuilds the index from the -wal. */
        sqlite3_close_v2(st->db);
        st->db = NULL;
        code = open_reader(st, true, err);
        if (code == HC_OK)
            code = connection_setup(st, err);
        if (code == HC_OK)
            code = validate_schema(st, err);
    }
    return code;
}

/* A writer's pragmas, the schema of a new file, and the prepared writes and summaries. */
static hc_err setup_writer(hc_store *st, bool created, hc_error *err)
{
    hc_err code = HC_OK;

    /* secure_delete zeroes freed pages so deleted or replaced data does not linger. */
    /* A page size only takes on a new file, before WAL mode is set. */
    if (created)
        code = hc__store_exec(st, STORE_PAGE_SIZE_SQL, err, "create");
    if (code == HC_OK)
        code = hc__store_exec(st,
                              "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                              "PRAGMA secure_delete = ON; PRAGMA cache_size = -16384;",
                              err, "open");
    if (code == HC_OK)
        code = set_autocheckpoint(st, err);
    if (code == HC_OK && created) {
        code = create_schema(st, err);
        st->schema_version = HC_STORE_SCHEMA_VERSION;
    }
    if (code == HC_OK)
        code = prepare_writer(st, err);
    if (code == HC_OK)
        code = hc__summary_writer_open(st, err);
    return code;
}

hc_err hc_store_open(const char *path, enum hc_store_mode mode, hc_store **out, hc_error *err)
{
    hc_store *st = NULL;
    hc_err code = HC_OK;
    bool existed = false, created = false;

    if (out)
        *out = NULL;
    if (!path || !*path || !out)
        return hc_error_set(err, HC_ERR_INVALID, "cannot open a recording: no path given");
    if (mode != HC_STORE_READ && mode != HC_STORE_CREATE && mode != HC_STORE_APPEND &&
        mode != HC_STORE_FORCE)
        return hc_error_set(err, HC_ERR_INVALID, "cannot open '%s': unknown mode %d", path,
                            (int)mode);
    /* Only this file uses SQLite, so the global switch is ours to set; it fails harmlessly once
     * SQLite is initialised. Without it every allocation takes a global mutex (~3% of appends). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    st = calloc(1, sizeof(*st));
    if (!st || !(st->path = strdup(path))) {
        code = hc_error_set(err, HC_ERR_NOMEM, "cannot open '%s': out of memory", path);
        goto out;
    }
    st->writable = mode != HC_STORE_READ;
    st->flush_interval_ns = STORE_DEFAULT_FLUSH_NS;
    st->max_batch_rows = STORE_DEFAULT_BATCH_ROWS;

    code = prepare_file(st, path, mode, &existed, err);
    if (code != HC_OK)
        goto out;
    created = !existed && mode != HC_STORE_READ;
    code = open_connection(st, path, err);
    if (code == HC_OK && !created)
        code = validate_existing(st, err);
    if (code == HC_OK)
        code = st->writable ? setup_writer(st, created, err)
                            : hc__store_exec(st, "PRAGMA query_only = ON", err, "open");
out:
    if (code != HC_OK) {
        hc_store_close(st, NULL);
        /* Leave nothing half-made behind when we created the file ourselves. */
        if (created) {
            remove_if_present(path, "-wal", NULL);
            remove_if_present(path, "-shm", NULL);
            remove_if_present(path, "", NULL);
        }
        return code;
    }
    *out = st;
    return HC_OK;
}

/* The directory part of path ("." when none), new string (free()), or NULL. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

hc_err hc_store_check_writable(const char *path, enum hc_store_mode mode, hc_error *err)
{
    struct stat sb;
    char *dir = NULL;
    hc_err code = HC_OK;
    int64_t file_size;
    bool exists;

    if (!path || !*path)
        return hc_error_set(err, HC_ERR_INVALID, "cannot write a recording: no path given");
    exists = stat(path, &sb) == 0;
    if (!exists && errno != ENOENT)
        return hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (exists && S_ISDIR(sb.st_mode))
        return hc_error_set(err, HC_ERR_INVALID, "cannot write '%s': is a directory", path);
    file_size = exists ? (int64_t)sb.st_size : 0;
    if (exists && mode == HC_STORE_CREATE)
        return hc_error_set(err, HC_ERR_EXISTS, "cannot create '%s': file exists", path);
    dir = dir_of(path);
    if (!dir)
        return hc_error_set(err, HC_ERR_NOMEM, "cannot write '%s': out of memory", path);
    /* the file, or its -wal and -shm, are created in the directory */
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        code = hc_error_set(err, HC_ERR_IO, "cannot write '%s': directory '%s' %s", path, dir,
                            errno == ENOENT || errno == ENOTDIR ? "does not exist"
                                                                : "is not a directory");
    else if (access(dir, W_OK | X_OK) != 0)
        code = hc_error_set(err, HC_ERR_IO, "cannot write '%s': directory '%s': %s", path, dir,
                            strerror(errno));
    else if (exists && mode == HC_STORE_APPEND) {
        hc_store *st = NULL;
        if (access(path, R_OK | W_OK) != 0)
            code = hc_error_set(err, HC_ERR_IO, "cannot append to '%s': %s", path, strerror(errno));
        else if (file_size == 0)
            code = hc_error_set(err, HC_ERR_NOT_RECORDING,
                                "cannot append to '%s': the file is empty, not an hkit recording",
                                path);
        else
            code = hc_store_open(path, HC_STORE_READ, &st, err);
        hc_store_close(st, NULL);
    }
    free(dir);
    return code;
}

hc_err hc_store_close(hc_store *st, hc_error *err)
{
    hc_err code = HC_OK;

    if (!st)
        return HC_OK;
    if (st->db && st->writable && (st->in_batch || (st->acc && st->schema_version >= 2)))
        code = hc__store_finish(st, err);
    sqlite3_finalize(st->insert_message);
    sqlite3_finalize(st->select_topic);
    sqlite3_finalize(st->insert_topic);
    /* close_v2 defers the close while a cursor the caller forgot still holds a statement. */
    sqlite3_close_v2(st->db);
    remove_private_copy(st->private_dir);
    free(st->private_db);
    hc__store_topic_cache_clear(&st->topics);
    hc_summary_free(st->acc);
    free(st->path);
    free(st);
    return code;
}

/* --- checking -------------------------------------------------------------------------------- */

/*
 * What integrity_check cannot know: that rows refer to each other and hold values the writer
 * can produce. Each query yields a description of its first offending row.
 */
static const char *const CONTENT_CHECKS[] = {
    "SELECT 'message ' || seq || ' names session ' || quote(session_id) || ', which does not "
    "exist' FROM message_rows WHERE session_id NOT IN (SELECT id FROM sessions) LIMIT 1",
    "SELECT 'message ' || seq || ' names topic ' || quote(topic_id) || ', which does not exist' "
    "FROM message_rows WHERE topic_id NOT IN (SELECT id FROM topics) LIMIT 1",
    "SELECT 'message ' || seq || ' has an impossible value (qos ' || quote(qos) || ', retain ' || "
    "quote(retain) || ', dup ' || quote(dup) || ', payload of type ' || typeof(payload) || ')' "
    "FROM message_rows WHERE qos NOT IN (0, 1, 2) OR retain NOT IN (0, 1) OR dup NOT IN (0, 1) "
    "OR typeof(payload) NOT IN ('blob', 'text') OR typeof(received_at_ns) <> 'integer' "
    "OR typeof(mono_ns) <> 'integer' LIMIT 1",
    "SELECT 'topic ' || id || ' has no usable name' FROM topics "
    "WHERE typeof(name) <> 'text' OR name = '' LIMIT 1",
    "SELECT 'session ' || id || ' has no usable start time' FROM sessions "
    "WHERE typeof(started_at_ns) <> 'integer' OR typeof(started_mono_ns) <> 'integer' LIMIT 1",
};

/* Runs sql; a first row is the problem it found (one line into err). */
static hc_err check_query(hc_store *st, const char *sql, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    hc_err code = HC_OK;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *what = (const char *)sqlite3_column_text(stmt, 0);
        char line[256];
        one_line(what ? what : "unknown problem", line, sizeof(line));
        if (strcmp(line, "ok") != 0)
            code = hc_error_set(err, HC_ERR_CORRUPT, "'%s' is damaged: %s", st->path, line);
    } else if (rc != SQLITE_DONE) {
        code = hc__store_fail(st, rc, err, "check");
    }
    sqlite3_finalize(stmt);
    return code;
}

hc_err hc_store_check(hc_store *st, hc_error *err)
{
    hc_err code;

    if (!st)
        return hc_error_set(err, HC_ERR_INVALID, "cannot check a recording: no store");
    code = hc__store_commit(st, err);
    if (code == HC_OK)
        code = check_query(st, "PRAGMA integrity_check(1)", err);
    for (size_t i = 0; code == HC_OK && i < sizeof(CONTENT_CHECKS) / sizeof(CONTENT_CHECKS[0]); i++)
        code = check_query(st, CONTENT_CHECKS[i], err);
    return code;
}

/* --- meta ------------------------------------------------------------------------------------ */

hc_err hc_store_meta_set(hc_store *st, const char *key, const char *value, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    hc_err code;
    int rc;

    if (!st || !key || !value)
        return hc_error_set(err, HC_ERR_INVALID, "cannot set meta value: missing argument");
    code = hc__store_require_writable(st, err);
    if (code == HC_OK)
        code = hc__store_commit(st, err);
    if (code != HC_OK)
        return code;
    rc = sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", -1,
                            &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        code = hc__store_fail(st, rc, err, "write to");
    sqlite3_finalize(stmt);
    return code;
}

hc_err hc_store_meta_get(hc_store *st, const char *key, char **value_out, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    hc_err code = HC_OK;
    int rc;

    if (value_out)
        *value_out = NULL;
    if (!st || !key || !value_out)
        return hc_error_set(err, HC_ERR_INVALID, "cannot get meta value: missing argument");
    rc = sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = ?", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *value = (const char *)sqlite3_column_text(stmt, 0);
        *value_out = strdup(value ? value : "");
        if (!*value_out)
            code = hc_error_set(err, HC_ERR_NOMEM, "cannot read '%s': out of memory", st->path);
    } else if (rc != SQLITE_DONE) {
        code = hc__store_fail(st, rc, err, "read");
    }
    sqlite3_finalize(stmt);
    return code;
}

hc_err hc_store_meta_each(hc_store *st, int (*fn)(const char *key, const char *value, void *user),
                          void *user, hc_error *err)
{
    sqlite3_stmt *stmt = NULL;
    hc_err code = HC_OK;
    int rc;

    if (!st || !fn)
        return hc_error_set(err, HC_ERR_INVALID, "cannot list meta values: missing argument");
    rc = sqlite3_prepare_v2(st->db, "SELECT key, value FROM meta ORDER BY key", -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        code = hc__store_fail(st, rc, err, "read");
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(stmt, 0);
        const char *value = (const char *)sqlite3_column_text(stmt, 1);
        if (fn(key ? key : "", value ? value : "", user))
            goto out;
    }
    if (rc != SQLITE_DONE)
        code = hc__store_fail(st, rc, err, "read");
out:
    sqlite3_finalize(stmt);
    return code;
}

/*
 * hcat's work. Every input is a source that yields selected messages in its own arrival order
 * (a store cursor for recordings, a JSON lines reader filtered by tool_select_matches); several
 * sources merge by received_at_ns, holding one message per source, so memory stays constant
 * whatever the sizes. The merged stream goes to one sink: JSON lines, CSV, or a new recording
 * written under a temporary name and renamed into place only when complete. Redaction learns
 * every id in a first pass over the inputs (payloads may mention a device before its topic
 * appears), then rewrites messages and meta in the second.
 */
#include "hcat.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "hcore/decode.h"
#include "hcore/jsonl.h"
#include "hcore/jsonout.h"
#include "hcore/redact.h"
#include "hcore/store.h"
#include "hcore/text.h"
#include "hcore/timefmt.h"

#ifndef HKIT_VERSION
#define HKIT_VERSION "unknown"
#endif

/* --- sources --------------------------------------------------------------------------------- */

struct session_map {
    int64_t source_id;     /* session id in the source (0: none) */
    int64_t started_at_ns; /* CLOCK_REALTIME */
    int64_t started_mono_ns;
    int64_t ended_at_ns; /* 0: open */
    char *end_reason;
    int64_t new_id; /* in the output; 0 until first used */
    int64_t last_received_at_ns;
};

struct source {
    const char *path;
    bool is_db;
    tool_source *in;
    struct hc_msg msg; /* current message, valid while has_msg */
    bool has_msg;
    struct session_map *sessions;
    size_t n_sessions;
};

struct run {
    const struct hcat_opts *o;
    struct hcat_summary *sum;
    struct tool_select sel; /* resolved copy */
    struct source *src;
    size_t n_src;
    hc_redact *redact;
    hc_store *out_st;
    FILE *out;
    struct hcat_sink *sink; /* --format mcap, --report */
    hc_jsonl_writer *jsonl; /* printed JSON lines: its buffers serve every line */
};

static int collect_session(const struct hc_session_row *row, void *user)
{
    struct source *s = user;
    struct session_map *m = realloc(s->sessions, (s->n_sessions + 1) * sizeof(*m));
    if (!m)
        return 1;
    s->sessions = m;
    m = &s->sessions[s->n_sessions];
    memset(m, 0, sizeof(*m));
    m->source_id = row->id;
    m->started_at_ns = row->started_at_ns;
    m->started_mono_ns = row->started_mono_ns;
    m->ended_at_ns = row->ended_at_ns;
    m->end_reason = strdup(row->end_reason);
    if (!m->end_reason)
        return 1;
    s->n_sessions++;
    return 0;
}

static hc_err source_open(struct run *r, struct source *s, const char *path, hc_error *err)
{
    struct tool_source_options opts = {.select = &r->sel, .skip_bad = r->o->skip_bad};
    hc_err rc;

    memset(s, 0, sizeof(*s));
    s->path = path;
    rc = tool_source_open(path, &opts, &s->in, err);
    if (rc != HC_OK)
        return rc;
    s->is_db = tool_source_is_recording(s->in);
    if (s->is_db)
        rc = hc_store_sessions_each(tool_source_store(s->in), collect_session, s, err);
    return rc;
}

static void source_close(struct run *r, struct source *s)
{
    if (s->in)
        r->sum->skipped_bad += tool_source_skipped_bad(s->in);
    tool_source_close(s->in);
    for (size_t i = 0; i < s->n_sessions; i++)
        free(s->sessions[i].end_reason);
    free(s->sessions);
    memset(s, 0, sizeof(*s));
}

/* Moves a source to its next selected message (has_msg false at the end). */
static hc_err source_next(struct source *s, hc_error *err)
{
    hc_err rc = tool_source_next(s->in, &s->msg, err);

    s->has_msg = rc == HC_OK;
    return rc == HC_DONE ? HC_OK : rc;
}

static void close_all(struct run *r)
{
    for (size_t i = 0; i < r->n_src; i++)
        source_close(r, &r->src[i]);
}

static hc_err open_all(struct run *r, hc_error *err)
{
    for (size_t i = 0; i < r->n_src; i++) {
        hc_err rc = source_open(r, &r->src[i], r->o->inputs[i], err);
        if (rc == HC_OK)
            rc = source_next(&r->src[i], err);
        if (rc != HC_OK) {
            close_all(r);
            return rc;
        }
    }
    return HC_OK;
}

/* The source holding the earliest message (ties: the earlier input), or NULL when all done. */
static struct source *earliest(struct run *r)
{
    struct source *best = NULL;
    for (size_t i = 0; i < r->n_src; i++)
        if (r->src[i].has_msg && (!best || r->src[i].msg.received_at_ns < best->msg.received_at_ns))
            best = &r->src[i];
    return best;
}

/* --- resolving --since/--until +DURATION -------------------------------------------------- */

static hc_err resolve_selection(struct run *r, hc_error *err)
{
    tool_select_copy(&r->sel, &r->o->select);
    return tool_select_resolve_inputs(&r->sel, (const char *const *)r->o->inputs, r->o->n_inputs,
                                      r->o->skip_bad, err);
}

/* --- sinks ----------------------------------------------------------------------------------- */

void hcat_csv_field(FILE *out, const char *text, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = text[i] == ',' || text[i] == '"' || text[i] == '\r' || text[i] == '\n';
    if (!quote) {
        fwrite(text, 1, len, out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"')
            fputc('"', out);
        fputc(text[i], out);
    }
    fputc('"', out);
}

static const char CSV_HEADER[] =
    "seq,session,received_at,received_at_ns,topic,qos,retain,dup,payload_encoding,payload";

static hc_err write_csv(FILE *out, const struct hc_msg *m, const cJSON *decoded, hc_error *err)
{
    char when[40];

    hc_time_format_rfc3339(m->received_at_ns, 9, when, sizeof(when));
    fprintf(out, "%" PRId64 ",%" PRId64 ",%s,%" PRId64 ",", m->seq, m->session_id, when,
            m->received_at_ns);
    hcat_csv_field(out, m->topic, strlen(m->topic));
    fprintf(out, ",%d,%d,%d,", m->qos, m->retain ? 1 : 0, m->dup ? 1 : 0);
    if (hc_text_is_json_safe_utf8(m->payload, m->payload_len)) {
        fputs("text,", out);
        hcat_csv_field(out, (const char *)m->payload, m->payload_len);
    } else {
        char *b64 = malloc(hc_base64_encoded_len(m->payload_len) + 1);
        if (!b64)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        hc_base64_encode(m->payload, m->payload_len, b64);
        fprintf(out, "base64,%s", b64);
        free(b64);
    }
    if (decoded) {
        static struct hc_jsonout printed; /* reused: exact numbers, no allocation per row */
        hc_err rc = hc_jsonout_print(&printed, decoded, err);
        if (rc != HC_OK)
            return rc;
        fputc(',', out);
        hcat_csv_field(out, printed.data, printed.len);
    }
    fputs("\r\n", out);
    if (ferror(out))
        return hc_error_set(err, HC_ERR_IO, "cannot write to standard output: %s",
                            strerror(errno ? errno : EIO));
    return HC_OK;
}

static hc_err print_message(struct run *r, const struct hc_msg *m, hc_error *err)
{
    cJSON *decoded = NULL;
    hc_err rc;

    if (r->o->decode) {
        rc = hc_decode_message(m->topic, m->payload, m->payload_len, &decoded, err);
        if (rc != HC_OK)
            return rc;
    }
    if (r->o->format == HCAT_FORMAT_CSV)
        rc = write_csv(r->out, m, decoded, err);
    else if (r->jsonl || (rc = hc_jsonl_writer_new(&r->jsonl, err)) == HC_OK)
        rc = hc_jsonl_writer_write(r->jsonl, r->out, m, decoded, err);
    cJSON_Delete(decoded);
    if (rc == HC_ERR_IO)
        return hc_error_set(err, HC_ERR_IO, "cannot write to standard output: %s",
                            strerror(errno ? errno : EIO));
    return rc;
}

/* The output session for a message of source s, created on first use. */
static hc_err output_session(struct run *r, struct source *s, const struct hc_msg *in,
                             struct hc_msg *m, hc_error *err)
{
    struct session_map *map = NULL;
    int64_t start_ns, start_mono = 0;

    if (s->is_db) {
        for (size_t i = 0; i < s->n_sessions && !map; i++)
            if (s->sessions[i].source_id == in->session_id)
                map = &s->sessions[i];
        if (!map)
            return hc_error_set(err, HC_ERR_CORRUPT,
                                "'%s' is damaged: message %" PRId64 " names session %" PRId64
                                " which does not exist",
                                s->path, in->seq, in->session_id);
        start_ns = map->started_at_ns;
        start_mono = map->started_mono_ns;
    } else {
        /* a JSON line carries its session as (id, start); lines without one share the
         * source's default session, which starts at its first message */
        const struct hc_jsonl_record *rec = tool_source_record(s->in);
        int64_t id = rec->has_session_start ? in->session_id : 0;
        start_ns = rec->has_session_start ? rec->session_started_at_ns : in->received_at_ns;
        for (size_t i = 0; i < s->n_sessions && !map; i++)
            if (s->sessions[i].source_id == id &&
                (id == 0 || s->sessions[i].started_at_ns == start_ns))
                map = &s->sessions[i];
        if (!map) {
            struct session_map *grown = realloc(s->sessions, (s->n_sessions + 1) * sizeof(*grown));
            if (!grown)
                return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
            s->sessions = grown;
            map = &s->sessions[s->n_sessions++];
            memset(map, 0, sizeof(*map));
            map->source_id = id;
            map->started_at_ns = start_ns;
        }
        start_ns = map->started_at_ns;
        if (!rec->has_session_start)
            m->mono_ns = in->received_at_ns - start_ns;
    }
    if (!map->new_id) {
        hc_err rc = hc_store_session_begin(r->out_st, start_ns, start_mono, &map->new_id, err);
        if (rc != HC_OK)
            return rc;
        r->sum->sessions++;
    }
    map->last_received_at_ns = in->received_at_ns;
    m->session_id = map->new_id;
    return HC_OK;
}

static hc_err end_sessions(struct run *r, hc_error *err)
{
    for (size_t i = 0; i < r->n_src; i++) {
        struct source *s = &r->src[i];
        for (size_t k = 0; k < s->n_sessions; k++) {
            struct session_map *m = &s->sessions[k];
            hc_err rc = HC_OK;
            if (!m->new_id)
                continue;
            if (s->is_db && m->ended_at_ns) {
                char *reason = NULL;
                if (r->redact) {
                    rc = hc_redact_text(r->redact, m->end_reason, &reason, err);
                    if (rc != HC_OK)
                        return rc;
                }
                rc = hc_store_session_end(r->out_st, m->new_id, m->ended_at_ns,
                                          reason ? reason : m->end_reason, err);
                free(reason);
            } else if (!s->is_db) {
                rc = hc_store_session_end(r->out_st, m->new_id, m->last_received_at_ns,
                                          "imported from JSON lines", err);
            }
            if (rc != HC_OK)
                return rc;
        }
    }
    return HC_OK;
}

/* --- meta for a written recording ------------------------------------------------------------ */

struct meta_copy {
    struct run *r;
    hc_error *err;
    hc_err rc;
};

/* Teaches the redactor the ids a recording's meta names, so they are replaced everywhere. */
static int meta_learn(const char *key, const char *value, void *user)
{
    struct meta_copy *c = user;
    c->rc = hc_redact_learn_meta(c->r->redact, key, value, c->err);
    return c->rc != HC_OK;
}

static int meta_copy_one(const char *key, const char *value, void *user)
{
    struct meta_copy *c = user;
    char *existing = NULL, *redacted = NULL;

    if (strcmp(key, "schema_version") == 0)
        return 0;
    /* the first input's value wins when merging */
    c->rc = hc_store_meta_get(c->r->out_st, key, &existing, c->err);
    if (c->rc != HC_OK || existing) {
        free(existing);
        return c->rc != HC_OK;
    }
    if (c->r->redact) {
        /* a client id embeds the capturing host's name: nothing a bug report needs */
        if (strcmp(key, "client_id") == 0)
            return 0;
        c->rc = hc_redact_text(c->r->redact, value, &redacted, c->err);
        if (c->rc != HC_OK)
            return 1;
        value = redacted;
    }
    c->rc = hc_store_meta_set(c->r->out_st, key, value, c->err);
    free(redacted);
    return c->rc != HC_OK;
}

static hc_err set_meta(struct run *r, const char *key, const char *value, hc_error *err)
{
    char *redacted = NULL;
    hc_err rc;

    if (r->redact) {
        rc = hc_redact_text(r->redact, value, &redacted, err);
        if (rc != HC_OK)
            return rc;
        value = redacted;
    }
    rc = hc_store_meta_set(r->out_st, key, value, err);
    free(redacted);
    return rc;
}

static hc_err write_meta(struct run *r, hc_error *err)
{
    struct meta_copy c = {r, err, HC_OK};
    cJSON *sources = cJSON_CreateArray();
    char when[40], *text = NULL;
    bool copied = false;
    hc_err rc = HC_OK;

    for (size_t i = 0; i < r->n_src && rc == HC_OK; i++) {
        hc_store *st = NULL;
        if (!r->src[i].is_db)
            continue;
        rc = hc_store_open(r->src[i].path, HC_STORE_READ, &st, err);
        if (rc == HC_OK)
            rc = hc_store_meta_each(st, meta_copy_one, &c, err);
        if (rc == HC_OK)
            rc = c.rc;
        hc_store_close(st, NULL);
        copied = true;
    }
    hc_time_format_rfc3339(hc_time_realtime_ns(), 3, when, sizeof(when));
    if (rc == HC_OK && !copied) {
        rc = hc_store_meta_set(r->out_st, "tool", "hcat", err);
        if (rc == HC_OK)
            rc = hc_store_meta_set(r->out_st, "tool_version", HKIT_VERSION, err);
        if (rc == HC_OK)
            rc = hc_store_meta_set(r->out_st, "created_at", when, err);
    }
    for (size_t i = 0; i < r->n_src && sources; i++)
        cJSON_AddItemToArray(sources, cJSON_CreateString(r->src[i].path));
    if (rc == HC_OK && (!sources || !(text = cJSON_PrintUnformatted(sources))))
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (rc == HC_OK)
        rc = set_meta(r, "cut_sources", text, err);
    if (rc == HC_OK)
        rc = set_meta(r, "cut_selection", r->o->selection_text, err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->out_st, "cut_at", when, err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->out_st, "cut_by", "hcat " HKIT_VERSION, err);
    if (rc == HC_OK && r->o->note)
        rc = set_meta(r, "note", r->o->note, err);
    if (rc == HC_OK && r->sum->interrupted) {
        char what[64];
        snprintf(what, sizeof(what), "after %" PRId64 " messages", r->sum->messages);
        rc = hc_store_meta_set(r->out_st, "cut_interrupted", what, err);
    }
    if (rc == HC_OK && r->redact) {
        char what[512];
        size_t used =
            (size_t)snprintf(what, sizeof(what), "ids replaced by HMAC-SHA256 pseudonyms (%s key)",
                             r->sum->random_key ? "random, discarded" : "from a key file");
        for (size_t i = 0; i < r->o->n_masks && used < sizeof(what); i++)
            used += (size_t)snprintf(what + used, sizeof(what) - used, "%s%s",
                                     i ? ", " : "; masked: ", r->o->masks[i]);
        rc = hc_store_meta_set(r->out_st, "redacted", what, err);
    }
    cJSON_free(text);
    cJSON_Delete(sources);
    return rc;
}

/* --- the run --------------------------------------------------------------------------------- */

static hc_err load_key(const char *path, hc_redact **out, hc_error *err)
{
    unsigned char key[4096];
    size_t n;
    hc_err rc;
    FILE *f = fopen(path, "rb");

    if (!f)
        return hc_error_set(err, HC_ERR_IO, "cannot open redaction key '%s': %s", path,
                            strerror(errno));
    n = fread(key, 1, sizeof(key), f);
    if (ferror(f)) {
        fclose(f);
        return hc_error_set(err, HC_ERR_IO, "cannot read redaction key '%s': %s", path,
                            strerror(errno));
    }
    fclose(f);
    if (n < HC_REDACT_MIN_KEY_LEN)
        return hc_error_set(err, HC_ERR_INVALID,
                            "redaction key '%s' is too short: %zu bytes, at least %d needed "
                            "(e.g. head -c 32 /dev/urandom > %s)",
                            path, n, HC_REDACT_MIN_KEY_LEN, path);
    rc = hc_redact_new(key, n, out, err);
    memset(key, 0, sizeof(key));
    return rc;
}

/* Pass one of redaction: learn every id the selected messages (and meta) mention. */
static hc_err learn_ids(struct run *r, hc_error *err)
{
    hc_err rc;
    bool from_stdin = false;

    for (size_t i = 0; i < r->o->n_inputs; i++)
        from_stdin |= strcmp(r->o->inputs[i], "-") == 0;
    if (from_stdin) {
        tool_warn("standard input is read once: ids are learnt as they appear, so a payload "
                  "mentioning an id before its first topic keeps it");
        return HC_OK;
    }
    rc = open_all(r, err);
    if (rc != HC_OK)
        return rc;
    for (size_t i = 0; i < r->n_src && rc == HC_OK; i++) {
        struct source *s = &r->src[i];
        struct meta_copy c = {r, err, HC_OK};
        if (s->is_db) {
            rc = hc_store_meta_each(tool_source_store(s->in), meta_learn, &c, err);
            if (rc == HC_OK)
                rc = c.rc;
        }
        while (rc == HC_OK && s->has_msg) {
            rc = hc_redact_learn(r->redact, s->msg.topic, s->msg.payload, s->msg.payload_len, err);
            if (rc == HC_OK)
                rc = source_next(s, err);
        }
    }
    close_all(r);
    r->sum->skipped_bad = 0; /* counted again in pass two */
    return rc;
}

static hc_err copy_stream(struct run *r, hc_error *err)
{
    int64_t limit = r->sel.sel.limit;
    struct source *s;
    hc_err rc = HC_OK;

    if (r->o->format == HCAT_FORMAT_CSV && !r->out_st)
        fprintf(r->out, "%s%s\r\n", CSV_HEADER, r->o->decode ? ",decoded" : "");
    while ((s = earliest(r)) != NULL) {
        struct hc_msg m;
        if (tool_stop_requested) {
            r->sum->interrupted = true;
            return HC_OK;
        }
        if (limit && r->sum->messages >= limit)
            break;
        m = s->msg;
        if (r->redact) {
            rc = hc_redact_message(r->redact, &s->msg, &m, err);
            if (rc != HC_OK)
                return rc;
        }
        if (r->sink) {
            rc = r->sink->add(r->sink, &m, err);
        } else if (r->out_st) {
            rc = output_session(r, s, &s->msg, &m, err);
            if (rc == HC_OK)
                rc = hc_store_append(r->out_st, &m, NULL, err);
        } else {
            rc = print_message(r, &m, err);
            if (rc == HC_ERR_IO && tool_output_closed(r->out)) {
                tool_output_discard(r->out);
                r->sum->output_closed = true;
                return HC_OK;
            }
        }
        if (rc != HC_OK)
            return rc;
        r->sum->messages++;
        rc = source_next(s, err);
        if (rc == HC_ERR_INTERRUPTED) {
            r->sum->interrupted = true;
            return HC_OK;
        }
        if (rc != HC_OK)
            return rc;
    }
    return HC_OK;
}

static void unlink_with_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *name = malloc(n);
    if (!name)
        return;
    snprintf(name, n, "%s%s", path, suffix);
    unlink(name);
    free(name);
}

static void remove_store_files(const char *path)
{
    unlink_with_suffix(path, "");
    unlink_with_suffix(path, "-wal");
    unlink_with_suffix(path, "-shm");
}

/* The pid in "<name>.hcat-tmp-<pid>[-wal|-shm|-journal]", or 0 when name is not such a file. */
static long temp_owner(const char *name)
{
    const char *tag = strstr(name, ".hcat-tmp-"), *p;
    long pid = 0;

    if (!tag)
        return 0;
    for (p = tag + strlen(".hcat-tmp-"); *p >= '0' && *p <= '9' && pid < 100000000; p++)
        pid = pid * 10 + (*p - '0');
    if (p == tag + strlen(".hcat-tmp-") ||
        (*p && strcmp(p, "-wal") != 0 && strcmp(p, "-shm") != 0 && strcmp(p, "-journal") != 0))
        return 0;
    return pid;
}

/*
 * A SIGKILL cannot be caught, so an hcat killed while writing leaves its temporary files behind
 * (a recording can only be written through a named file). The next hcat writing into the same
 * directory removes those whose process no longer runs.
 */
static void remove_stale_temps(const char *output)
{
    const char *slash = strrchr(output, '/');
    char *dir = slash ? strndup(output, (size_t)(slash - output) + 1) : strdup(".");
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;

    while (d && (e = readdir(d)) != NULL) {
        long pid = temp_owner(e->d_name);
        char *path;
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        path = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!path)
            break;
        sprintf(path, "%s%s%s", dir, slash ? "" : "/", e->d_name);
        if (unlink(path) == 0)
            tool_info("removed '%s', left by hcat process %ld, which no longer runs", path, pid);
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
}

static hc_err write_recording(struct run *r, hc_error *err)
{
    const char *output = r->o->output;
    size_t tmp_size = strlen(output) + 40;
    char *tmp = malloc(tmp_size);
    struct stat sb;
    hc_error inner = HC_ERROR_INIT;
    hc_err rc;

    if (!tmp)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (!r->o->force && stat(output, &sb) == 0) {
        free(tmp);
        return hc_error_set(err, HC_ERR_EXISTS,
                            "cannot write '%s': file exists (use --force to replace it)", output);
    }
    /* written beside the target and renamed when complete: a failed cut never leaves a
     * half-made recording under the name the user asked for (an interrupted one is complete up
     * to where it stopped, and says so in its meta: cut_interrupted) */
    remove_stale_temps(output);
    snprintf(tmp, tmp_size, "%s.hcat-tmp-%ld", output, (long)getpid());
    rc = hc_store_open(tmp, HC_STORE_FORCE, &r->out_st, &inner);
    if (rc != HC_OK) {
        const char *why = strrchr(inner.message, ':');
        free(tmp);
        return hc_error_set(err, rc, "cannot write '%s'%s", output, why ? why : "");
    }
    hc_store_set_batch_rows(r->out_st, 50000);
    hc_store_set_flush_interval(r->out_st, 10LL * 1000 * 1000 * 1000);
    rc = copy_stream(r, err);
    if (rc == HC_OK)
        rc = end_sessions(r, err);
    if (rc == HC_OK)
        rc = write_meta(r, err);
    /* a redacted file must not keep old bytes in free pages or the WAL */
    if (rc == HC_OK && r->redact)
        rc = hc_store_vacuum(r->out_st, err);
    {
        hc_err closed = hc_store_close(r->out_st, rc == HC_OK ? err : NULL);
        r->out_st = NULL;
        if (rc == HC_OK)
            rc = closed;
    }
    if (rc == HC_OK) {
        /* a stale WAL beside the old file would be replayed into the new one */
        unlink_with_suffix(output, "-wal");
        unlink_with_suffix(output, "-shm");
        if (rename(tmp, output) != 0)
            rc = hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", output, strerror(errno));
    }
    if (rc != HC_OK)
        remove_store_files(tmp);
    free(tmp);
    return rc;
}

static hc_err hcat_info(struct run *r, hc_error *err);

/* --format mcap and --report: the stream goes to a sink that writes one file at the end. */
static hc_err write_sink(struct run *r, hc_error *err)
{
    const char *recordings[HCAT_MAX_INPUTS];
    size_t n = 0;
    hc_err rc = r->o->report ? hcat_report_sink_new(r->o, &r->sink, err)
                             : hcat_mcap_sink_new(r->o, &r->sink, err);

    if (rc == HC_OK && r->sink->add) /* no add: the sink reads the recordings' summaries */
        rc = copy_stream(r, err);
    for (size_t i = 0; i < r->n_src; i++)
        if (r->src[i].is_db)
            recordings[n++] = r->src[i].path;
    if (rc == HC_OK)
        rc = r->sink->finish(r->sink, recordings, n, r->sum->interrupted, err);
    if (rc == HC_OK && !r->sink->add)
        r->sum->messages = r->sink->messages;
    if (r->sink)
        r->sink->free(r->sink);
    r->sink = NULL;
    return rc;
}

/* --check: every input is a recording read completely; "<path>: ok, N messages" for each. */
static hc_err hcat_check(struct run *r, hc_error *err)
{
    for (size_t i = 0; i < r->o->n_inputs; i++) {
        const char *path = r->o->inputs[i];
        struct hc_select all = {0};
        hc_store *st = NULL;
        int64_t n = 0;
        bool is_db;
        hc_err rc = tool_detect_input(path, &is_db, err);

        if (rc == HC_OK && !is_db)
            rc = hc_error_set(err, HC_ERR_NOT_RECORDING,
                              "--check needs a recording: '%s' is not one (JSON lines or empty)",
                              path);
        if (rc == HC_OK)
            rc = hc_store_open(path, HC_STORE_READ, &st, err);
        if (rc == HC_OK)
            rc = hc_store_check(st, err);
        if (rc == HC_OK)
            rc = hc_store_count(st, &all, &n, NULL, err);
        hc_store_close(st, NULL);
        if (rc != HC_OK)
            return rc;
        fprintf(r->out, "%s: ok, %" PRId64 " message%s\n", path, n, n == 1 ? "" : "s");
    }
    return HC_OK;
}

/* --upgrade: each input converted in place; "<path>: ..." says what was done. */
static hc_err hcat_upgrade(struct run *r, hc_error *err)
{
    for (size_t i = 0; i < r->o->n_inputs; i++) {
        const char *path = r->o->inputs[i];
        int from = 0;
        bool is_db;
        hc_err rc = tool_detect_input(path, &is_db, err);

        if (rc == HC_OK && !is_db)
            rc = hc_error_set(err, HC_ERR_NOT_RECORDING,
                              "--upgrade needs a recording: '%s' is not one (JSON lines or empty)",
                              path);
        if (rc == HC_OK)
            rc = hc_store_upgrade(path, &from, err);
        if (rc != HC_OK)
            return rc;
        if (from < HC_STORE_SCHEMA_VERSION)
            fprintf(r->out, "%s: upgraded from schema version %d to %d\n", path, from,
                    HC_STORE_SCHEMA_VERSION);
        else
            fprintf(r->out, "%s: schema version %d, summaries counted again\n", path, from);
    }
    return HC_OK;
}

hc_err hcat_run(const struct hcat_opts *o, FILE *out, struct hcat_summary *sum, hc_error *err)
{
    struct run r = {0};
    hc_err rc;

    memset(sum, 0, sizeof(*sum));
    r.o = o;
    r.sum = sum;
    r.out = out;
    r.n_src = o->n_inputs;
    r.src = calloc(o->n_inputs, sizeof(*r.src));
    if (!r.src)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    rc = resolve_selection(&r, err);
    if (rc == HC_OK && o->info) {
        rc = hcat_info(&r, err);
        goto out;
    }
    if (rc == HC_OK && o->check) {
        rc = hcat_check(&r, err);
        goto out;
    }
    if (rc == HC_OK && o->upgrade) {
        rc = hcat_upgrade(&r, err);
        goto out;
    }
    if (rc == HC_OK && o->redact) {
        if (o->redact_key_file) {
            rc = load_key(o->redact_key_file, &r.redact, err);
        } else {
            rc = hc_redact_new(NULL, 0, &r.redact, err);
            sum->random_key = true;
            if (rc == HC_OK)
                tool_warn("redacting with a random key used for this run only: pseudonyms will "
                          "differ from other runs (use --redact-key FILE to keep them)");
        }
        for (size_t i = 0; i < o->n_masks && rc == HC_OK; i++)
            rc = hc_redact_add_mask(r.redact, o->masks[i], err);
        if (rc == HC_OK)
            rc = learn_ids(&r, err);
    }
    if (rc == HC_OK)
        rc = open_all(&r, err);
    if (rc == HC_ERR_INTERRUPTED) { /* Ctrl-C while waiting for a first line */
        sum->interrupted = true;
        rc = HC_OK;
        goto out;
    }
    if (rc == HC_OK) {
        if (o->report || o->format == HCAT_FORMAT_MCAP)
            rc = write_sink(&r, err);
        else
            rc = o->output ? write_recording(&r, err) : copy_stream(&r, err);
        sum->redacted_ids = hc_redact_id_count(r.redact);
        close_all(&r);
    }
out:
    hc_jsonl_writer_free(r.jsonl);
    hc_redact_free(r.redact);
    free(r.src);
    return rc;
}

/* --- --info ---------------------------------------------------------------------------------- */

struct group {
    char *key;
    int64_t count;
};

struct groups {
    struct group *items;
    size_t n, total;
    long top;
};

static int collect_group(const char *key, int64_t count, int64_t first_ns, int64_t last_ns,
                         void *user)
{
    struct groups *g = user;
    (void)first_ns;
    (void)last_ns;
    g->total++;
    if (g->top && g->n >= (size_t)g->top)
        return 0;
    struct group *items = realloc(g->items, (g->n + 1) * sizeof(*items));
    if (!items)
        return 1;
    g->items = items;
    g->items[g->n].key = strdup(key);
    g->items[g->n].count = count;
    if (!g->items[g->n].key)
        return 1;
    g->n++;
    return 0;
}

static void groups_release(struct groups *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->items[i].key);
    free(g->items);
    memset(g, 0, sizeof(*g));
}

/* later - earlier, saturated: a damaged file's times (any 64-bit value) must not overflow. */
static int64_t span_ns(int64_t earlier, int64_t later)
{
    int64_t d;
    if (__builtin_sub_overflow(later, earlier, &d))
        return later > earlier ? INT64_MAX : INT64_MIN;
    return d;
}

static void format_duration(int64_t ns, char *buf, size_t size)
{
    /* integer arithmetic: any int64 (also a negative span in a damaged file) is in range */
    const char *sign = ns < 0 ? "-" : "";
    uint64_t mag = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    uint64_t s = mag / 1000000000u;

    if (s < 60)
        snprintf(buf, size, "%s%.3f s", sign, (double)mag / 1e9);
    else if (s < 3600)
        snprintf(buf, size, "%s%" PRIu64 "m %02" PRIu64 "s", sign, s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, size, "%s%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", sign, s / 3600,
                 s % 3600 / 60, s % 60);
    else
        snprintf(buf, size, "%s%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m", sign, s / 86400,
                 s % 86400 / 3600, s % 3600 / 60);
}

struct info_sessions {
    FILE *out;
    cJSON *json;
    int64_t prev_end_ns;
};

static int info_session(const struct hc_session_row *row, void *user)
{
    struct info_sessions *is = user;
    char start[40], end[40], dur[40], gap[40];
    int64_t end_ns = row->ended_at_ns ? row->ended_at_ns : row->last_received_at_ns;

    hc_time_format_rfc3339(row->started_at_ns, 3, start, sizeof(start));
    if (end_ns)
        hc_time_format_rfc3339(end_ns, 3, end, sizeof(end));
    else
        snprintf(end, sizeof(end), "?");
    if (is->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)row->id);
        cJSON_AddStringToObject(o, "started_at", start);
        if (row->ended_at_ns)
            cJSON_AddStringToObject(o, "ended_at", end);
        else
            cJSON_AddNullToObject(o, "ended_at");
        cJSON_AddStringToObject(o, "end_reason", row->end_reason);
        cJSON_AddNumberToObject(o, "messages", (double)row->messages);
        if (is->prev_end_ns)
            cJSON_AddNumberToObject(o, "gap_before_s",
                                    (double)span_ns(is->prev_end_ns, row->started_at_ns) / 1e9);
        cJSON_AddItemToArray(is->json, o);
    } else {
        if (is->prev_end_ns) {
            format_duration(span_ns(is->prev_end_ns, row->started_at_ns), gap, sizeof(gap));
            fprintf(is->out, "    gap %s\n", gap);
        }
        format_duration(end_ns > row->started_at_ns ? span_ns(row->started_at_ns, end_ns) : 0, dur,
                        sizeof(dur));
        fprintf(is->out, "  #%-4" PRId64 " %s .. %s  (%s)  %" PRId64 " messages%s%s%s\n", row->id,
                start, row->ended_at_ns ? end : "(not ended)", dur, row->messages,
                row->end_reason[0] ? "  [" : "", row->end_reason, row->end_reason[0] ? "]" : "");
    }
    is->prev_end_ns = end_ns;
    return 0;
}

static int info_meta(const char *key, const char *value, void *user)
{
    void **ctx = user;
    if (ctx[1])
        cJSON_AddStringToObject(ctx[1], key, value);
    else
        fprintf(ctx[0], "  %-20s %s\n", key, value);
    return 0;
}

static void print_groups(FILE *out, const char *title, const struct groups *g, double span_s)
{
    fprintf(out, "%s (%zu):\n", title, g->total);
    for (size_t i = 0; i < g->n; i++) {
        if (span_s > 0)
            fprintf(out, "  %-40s %10" PRId64 "  %10.3f msg/s\n",
                    g->items[i].key[0] ? g->items[i].key : "(none)", g->items[i].count,
                    (double)g->items[i].count / span_s);
        else
            fprintf(out, "  %-40s %10" PRId64 "\n", g->items[i].key[0] ? g->items[i].key : "(none)",
                    g->items[i].count);
    }
    if (g->total > g->n)
        fprintf(out, "  ... and %zu more\n", g->total - g->n);
}

static cJSON *groups_json(const struct groups *g, double span_s)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < g->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", g->items[i].key);
        cJSON_AddNumberToObject(o, "count", (double)g->items[i].count);
        if (span_s > 0)
            cJSON_AddNumberToObject(o, "rate_per_s", (double)g->items[i].count / span_s);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* What --info shows of one recording. */
struct info {
    const char *path;
    hc_store *st;
    struct hc_store_summary sm;
    hc_summary *summary; /* read once: the stored summaries, or one pass over a selection */
    struct groups g[4];  /* kinds, types, devices, decode errors by code */
    double span_s;
    char first[40], last[40], dur[40];
};

static const char *const info_columns[4] = {"kind", "type", "device_id", "decode_error"};

/* --info reads recordings only: JSON lines (or an empty file) say how to get one. */
static hc_err info_open(const char *path, hc_store **st, hc_error *err)
{
    struct stat sb;
    bool is_db;
    hc_err rc = tool_detect_input(path, &is_db, err);

    if (rc == HC_OK && !is_db && strcmp(path, "-") != 0 && stat(path, &sb) == 0 && !sb.st_size)
        return hc_error_set(err, HC_ERR_NOT_RECORDING,
                            "'%s' is empty: not an hkit recording (nothing was ever written to it)",
                            path);
    if (rc == HC_OK && !is_db)
        return hc_error_set(err, HC_ERR_INVALID,
                            "--info needs a recording: '%s' is JSON lines (import it first with "
                            "hcat '%s' -o FILE.db)",
                            path, path);
    return rc == HC_OK ? hc_store_open(path, HC_STORE_READ, st, err) : rc;
}

/* The summary and the groups of the selection, and the times they span. */
static hc_err info_gather(struct run *r, struct info *in, hc_error *err)
{
    int64_t span;
    /* the summaries once (stored, or one pass over a selection), then every table from them */
    hc_err rc =
        hc_store_summary_load(in->st, &r->sel.sel, HC_SUMMARY_NO_MINUTES, &in->summary, err);

    if (rc == HC_OK)
        hc_summary_totals(in->summary, &in->sm);
    for (size_t i = 0; i < 4 && rc == HC_OK; i++) {
        in->g[i].top = r->o->top;
        rc = hc_summary_count_by(in->summary, info_columns[i], collect_group, &in->g[i], err);
    }
    if (rc != HC_OK)
        return rc;
    span = span_ns(in->sm.first_received_at_ns, in->sm.last_received_at_ns);
    in->span_s = (double)span / 1e9;
    hc_time_format_rfc3339(in->sm.first_received_at_ns, 9, in->first, sizeof(in->first));
    hc_time_format_rfc3339(in->sm.last_received_at_ns, 9, in->last, sizeof(in->last));
    format_duration(span, in->dur, sizeof(in->dur));
    return HC_OK;
}

/* --info --json: one object per recording, on one line. */
static hc_err info_print_json(FILE *out, const struct info *in, hc_error *err)
{
    static const char *const names[] = {"kinds", "types", "devices", "decode_errors_by_code"};
    const struct hc_store_summary *sm = &in->sm;
    struct info_sessions is = {out, cJSON_CreateArray(), 0};
    void *ctx[2] = {out, cJSON_CreateObject()};
    cJSON *json = cJSON_CreateObject(), *p;
    char *text;
    hc_err rc;

    cJSON_AddStringToObject(json, "file", in->path);
    cJSON_AddNumberToObject(json, "messages", (double)sm->messages);
    cJSON_AddNumberToObject(json, "payload_bytes", (double)sm->payload_bytes);
    if (sm->messages) {
        cJSON_AddStringToObject(json, "first_received_at", in->first);
        cJSON_AddStringToObject(json, "last_received_at", in->last);
    } else {
        cJSON_AddNullToObject(json, "first_received_at");
        cJSON_AddNullToObject(json, "last_received_at");
    }
    cJSON_AddNumberToObject(json, "duration_s", in->span_s);
    cJSON_AddNumberToObject(json, "rate_per_s",
                            in->span_s > 0 ? (double)sm->messages / in->span_s : 0);
    p = cJSON_AddObjectToObject(json, "payload_size");
    cJSON_AddNumberToObject(p, "min", (double)sm->payload_min);
    cJSON_AddNumberToObject(p, "mean", sm->payload_mean);
    cJSON_AddNumberToObject(p, "p50", (double)sm->payload_p50);
    cJSON_AddNumberToObject(p, "p99", (double)sm->payload_p99);
    cJSON_AddNumberToObject(p, "max", (double)sm->payload_max);
    cJSON_AddNumberToObject(json, "decode_errors", (double)sm->decode_errors);
    for (size_t i = 0; i < 4; i++) {
        char key[40];
        cJSON_AddItemToObject(json, names[i], groups_json(&in->g[i], in->span_s));
        snprintf(key, sizeof(key), "%s_total", names[i]);
        cJSON_AddNumberToObject(json, key, (double)in->g[i].total);
    }
    rc = hc_store_sessions_each(in->st, info_session, &is, err);
    cJSON_AddItemToObject(json, "sessions", is.json);
    if (rc == HC_OK)
        rc = hc_store_meta_each(in->st, info_meta, ctx, err);
    cJSON_AddItemToObject(json, "meta", ctx[1]);
    text = cJSON_PrintUnformatted(json);
    if (text) {
        fprintf(out, "%s\n", text);
        cJSON_free(text);
    } else if (rc == HC_OK) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(json);
    return rc;
}

/* --info: a few aligned lines per recording. */
static hc_err info_print_text(FILE *out, const struct info *in, hc_error *err)
{
    static const char *const titles[] = {"kinds", "types", "devices", "decode errors by code"};
    const struct hc_store_summary *sm = &in->sm;
    struct info_sessions is = {out, NULL, 0};
    void *ctx[2] = {out, NULL};
    hc_err rc;

    fprintf(out, "%s\n", in->path);
    fprintf(out, "messages:   %" PRId64 " (%" PRId64 " payload bytes)\n", sm->messages,
            sm->payload_bytes);
    if (sm->messages) {
        fprintf(out, "time span:  %s .. %s (%s)\n", in->first, in->last, in->dur);
        if (in->span_s > 0)
            fprintf(out, "rate:       %.3f msg/s\n", (double)sm->messages / in->span_s);
        fprintf(out,
                "payload:    min %" PRId64 " B, mean %.1f B, p50 %" PRId64 " B, p99 %" PRId64
                " B, max %" PRId64 " B\n",
                sm->payload_min, sm->payload_mean, sm->payload_p50, sm->payload_p99,
                sm->payload_max);
    }
    fprintf(out, "decode errors: %" PRId64 "\n", sm->decode_errors);
    for (size_t i = 0; i < 4; i++) {
        if (i == 3 && !in->g[i].total)
            continue;
        print_groups(out, titles[i], &in->g[i], i == 3 ? 0 : in->span_s);
    }
    fprintf(out, "sessions (%" PRId64 "):\n", sm->sessions);
    rc = hc_store_sessions_each(in->st, info_session, &is, err);
    if (rc == HC_OK) {
        fprintf(out, "meta:\n");
        rc = hc_store_meta_each(in->st, info_meta, ctx, err);
    }
    return rc;
}

static hc_err info_one(struct run *r, const char *path, hc_error *err)
{
    struct info in;
    hc_err rc;

    memset(&in, 0, sizeof(in));
    in.path = path;
    rc = info_open(path, &in.st, err);
    if (rc == HC_OK)
        rc = info_gather(r, &in, err);
    if (rc == HC_OK)
        rc = r->o->json ? info_print_json(r->out, &in, err) : info_print_text(r->out, &in, err);
    for (size_t i = 0; i < 4; i++)
        groups_release(&in.g[i]);
    hc_summary_free(in.summary);
    hc_store_close(in.st, NULL);
    return rc;
}

static hc_err hcat_info(struct run *r, hc_error *err)
{
    for (size_t i = 0; i < r->o->n_inputs; i++) {
        hc_err rc;
        if (i && !r->o->json)
            fputc('\n', r->out);
        rc = info_one(r, r->o->inputs[i], err);
        if (rc != HC_OK)
            return rc;
    }
    return HC_OK;
}

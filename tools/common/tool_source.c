/*
 * The one message source of the tools: hcat, hreplay and hverify read their inputs here, so
 * they agree on what an input is (decided by content: a recording starts with SQLite's header,
 * JSON lines with '{' after blank space, and a directory holds the segments of a rotated
 * recording), on selection (in SQL for a recording, by
 * tool_select_matches for JSON lines), on --limit, on +DURATION offsets (from the earliest first
 * message of the inputs) and on --skip-bad.
 */
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hcore/jsonl.h"

hc_err tool_detect_input(const char *path, bool *is_db, hc_error *err)
{
    unsigned char head[64];
    struct stat sb;
    size_t n;
    FILE *fp;

    *is_db = false;
    if (strcmp(path, "-") == 0)
        return HC_OK;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        /* a directory of segments (hrecord --rotate-*): the store reads it as one recording */
        *is_db = true;
        return HC_OK;
    }
    fp = fopen(path, "rb");
    if (!fp)
        return hc_error_set(err, HC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    n = fread(head, 1, sizeof(head), fp);
    if (ferror(fp)) {
        hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        fclose(fp);
        return rc;
    }
    fclose(fp);
    if (n >= 16 && memcmp(head, "SQLite format 3", 16) == 0) {
        *is_db = true;
        return HC_OK;
    }
    /* a UTF-8 byte order mark (some Windows editors write one) is skipped, as the reader does */
    for (size_t i = n >= 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; i < n; i++) {
        if (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n')
            continue;
        if (head[i] == '{')
            return HC_OK;
        return hc_error_set(err, HC_ERR_NOT_RECORDING,
                            "'%s' is neither an hkit recording nor JSON lines", path);
    }
    return HC_OK; /* empty or blank: JSON lines with no messages */
}

struct tool_source {
    char *path;
    struct tool_source_options opts;
    hc_store *st; /* a recording */
    hc_cursor *cur;
    hc_jsonl_reader *jr;        /* JSON lines */
    struct hc_jsonl_record rec; /* the last line read */
    void (*wait_hook)(void *ctx);
    void *wait_ctx;
    int64_t taken; /* messages yielded in this pass (--limit) */
    int64_t skipped_bad;
};

static const struct hc_select *selection(const tool_source *s)
{
    static const struct hc_select every = {0};
    return s->opts.select ? &s->opts.select->sel : &every;
}

/* Opens the pass: a cursor over the recording's selection, or the JSON lines from the start. */
static hc_err start_pass(tool_source *s, hc_error *err)
{
    hc_err rc;

    s->taken = 0;
    if (s->st)
        return hc_store_query(s->st, selection(s), &s->cur, err);
    rc = hc_jsonl_reader_open(s->path, &s->jr, err);
    if (rc == HC_OK)
        hc_jsonl_reader_set_wait_hook(s->jr, s->wait_hook, s->wait_ctx);
    return rc;
}

static void end_pass(tool_source *s)
{
    hc_cursor_free(s->cur);
    s->cur = NULL;
    hc_jsonl_reader_close(s->jr);
    s->jr = NULL;
}

hc_err tool_source_open(const char *path, const struct tool_source_options *opts, tool_source **out,
                        hc_error *err)
{
    tool_source *s;
    bool is_db;
    hc_err rc;

    *out = NULL;
    is_db = opts && opts->kind == TOOL_INPUT_RECORDING;
    rc = opts && opts->kind != TOOL_INPUT_DETECT ? HC_OK : tool_detect_input(path, &is_db, err);
    if (rc != HC_OK)
        return rc;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    if (opts)
        s->opts = *opts;
    rc = is_db ? hc_store_open(path, HC_STORE_READ, &s->st, err) : HC_OK;
    if (rc == HC_OK)
        rc = start_pass(s, err);
    if (rc != HC_OK) {
        tool_source_close(s);
        return rc;
    }
    *out = s;
    return HC_OK;
}

hc_err tool_source_next(tool_source *s, struct hc_msg *msg, hc_error *err)
{
    int64_t limit = selection(s)->limit;
    hc_err rc;

    if (limit && s->taken >= limit)
        return HC_DONE; /* the store's query stops there too; a pipe is not read further */
    if (s->cur) {
        rc = hc_cursor_next(s->cur, msg, err);
        s->taken += rc == HC_OK;
        return rc;
    }
    for (;;) {
        rc = hc_jsonl_next(s->jr, &s->rec, err);
        if (rc == HC_ERR_PARSE && s->opts.skip_bad) {
            s->skipped_bad++;
            if (tool_verbosity >= 2)
                tool_warn("%s", err->message);
            continue;
        }
        if (rc == HC_ERR_IO && tool_stop_requested) /* a read of a pipe cut short by Ctrl-C */
            return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted");
        if (rc != HC_OK)
            return rc;
        if (s->opts.select && !tool_select_matches(s->opts.select, &s->rec.msg))
            continue;
        s->taken++;
        *msg = s->rec.msg;
        return HC_OK;
    }
}

hc_err tool_source_rewind(tool_source *s, hc_error *err)
{
    end_pass(s);
    if (!s->st && strcmp(s->path, "-") == 0)
        return hc_error_set(err, HC_ERR_INVALID, "standard input can be read only once");
    return start_pass(s, err);
}

void tool_source_close(tool_source *s)
{
    if (!s)
        return;
    end_pass(s);
    hc_store_close(s->st, NULL);
    free(s->path);
    free(s);
}

bool tool_source_is_recording(const tool_source *s)
{
    return s->st != NULL;
}

hc_store *tool_source_store(const tool_source *s)
{
    return s->st;
}

const struct hc_jsonl_record *tool_source_record(const tool_source *s)
{
    return s->jr ? &s->rec : NULL;
}

const char *tool_source_path(const tool_source *s)
{
    return s->path;
}

int64_t tool_source_skipped_bad(const tool_source *s)
{
    return s->skipped_bad;
}

hc_err tool_source_count(tool_source *s, int64_t *n, hc_error *err)
{
    const struct hc_select *sel = selection(s);
    hc_err rc;

    *n = -1;
    if (!s->st)
        return HC_OK;
    rc = hc_store_count(s->st, sel, n, NULL, err);
    if (rc == HC_OK && sel->limit && *n > sel->limit)
        *n = sel->limit;
    return rc;
}

void tool_source_set_wait_hook(tool_source *s, void (*hook)(void *ctx), void *ctx)
{
    s->wait_hook = hook;
    s->wait_ctx = ctx;
    if (s->jr)
        hc_jsonl_reader_set_wait_hook(s->jr, hook, ctx);
}

/* The first message's received_at_ns of one input; *found false when it holds none. */
static hc_err first_received(const char *path, bool skip_bad, int64_t *first, bool *found,
                             hc_error *err)
{
    struct tool_source_options opts = {.skip_bad = skip_bad};
    tool_source *s;
    struct hc_msg msg;
    hc_err rc;

    *found = false;
    rc = tool_source_open(path, &opts, &s, err);
    if (rc != HC_OK)
        return rc;
    if (s->st) {
        static const struct hc_select every = {0};
        int64_t n = 0;
        rc = hc_store_count(s->st, &every, &n, first, err);
        *found = rc == HC_OK && n > 0;
    } else {
        rc = tool_source_next(s, &msg, err);
        *found = rc == HC_OK;
        if (*found)
            *first = msg.received_at_ns;
        if (rc == HC_DONE)
            rc = HC_OK;
    }
    tool_source_close(s);
    return rc;
}

hc_err tool_select_resolve_inputs(struct tool_select *s, const char *const *paths, size_t n_paths,
                                  bool skip_bad, hc_error *err)
{
    int64_t first = 0;
    bool any = false;

    for (size_t i = 0; i < n_paths && tool_select_is_relative(s); i++) {
        int64_t t = 0;
        bool found;
        hc_err rc;

        if (strcmp(paths[i], "-") == 0)
            return hc_error_set(err, HC_ERR_INVALID,
                                "--since/--until +DURATION need a file: "
                                "standard input can be read only once");
        rc = first_received(paths[i], skip_bad, &t, &found, err);
        if (rc != HC_OK)
            return rc;
        if (found && (!any || t < first)) {
            first = t;
            any = true;
        }
    }
    tool_select_resolve(s, first);
    return HC_OK;
}

/*
 * The decoder stage of a case: its input (input.jsonl or input.db) goes through hkit's built-in
 * decoder in process, or through the user's decoder as a child process (one per case, fed while
 * its output is read, extdec.c), and each output value goes to the comparison (match.c) as it
 * comes.
 */
#include "case_run.h"

#include <stdlib.h>
#include <string.h>

#include "hcore/decode.h"
#include "hcore/jsonl.h"

/* --- input: input.jsonl or input.db ----------------------------------------------------------- */

hc_err hv_input_open(struct hv_input *in, const char *dir, bool fast, hc_error *err)
{
    bool has_jsonl = hv_file_exists(dir, "input.jsonl"),
         has_db = hv_recording_exists(dir, "input.db");
    struct tool_source_options opts = {.kind = has_jsonl ? TOOL_INPUT_JSONL : TOOL_INPUT_RECORDING};

    (void)fast;
    memset(in, 0, sizeof(*in));
    if (has_jsonl && has_db)
        return hc_error_set(err, HC_ERR_INVALID,
                            "both input.jsonl and input.db are present; keep one");
    if (!has_jsonl && !has_db)
        return hc_error_set(err, HC_ERR_IO, "no input.jsonl or input.db");
    in->path = hv_path_join(dir, has_jsonl ? "input.jsonl" : "input.db");
    if (!in->path)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    return tool_source_open(in->path, &opts, &in->src, err);
}

hc_err hv_input_next(struct hv_input *in, struct hc_msg *msg, hc_error *err)
{
    return tool_source_next(in->src, msg, err);
}

void hv_input_close(struct hv_input *in)
{
    tool_source_close(in->src);
    free(in->path);
    memset(in, 0, sizeof(*in));
}

/* --- the built-in decoder --------------------------------------------------------------------- */

bool hv_run_builtin(struct hv_run *r)
{
    struct hc_msg msg;
    hc_err rc;

    while ((rc = hv_input_next(&r->in, &msg, &r->err)) == HC_OK) {
        cJSON *out = NULL;

        r->n_input++;
        if (hc_decode_message(msg.topic, msg.payload, msg.payload_len, &out, &r->err) != HC_OK)
            return false;
        if (!hv_match_value(r, out, NULL, 0, msg.topic))
            return false;
    }
    if (rc != HC_DONE) {
        hc_error_prefix(&r->err, "input message %ld", r->n_input + 1);
        return false;
    }
    r->input_done = true;
    return true;
}

/* --- an external decoder ---------------------------------------------------------------------- */

static bool fifo_push(struct hv_run *r, const char *topic)
{
    if (r->fifo_len == r->fifo_cap) {
        size_t cap = r->fifo_cap ? r->fifo_cap * 2 : 1024;
        char **f = malloc(cap * sizeof(*f));

        if (!f)
            return false;
        for (size_t i = 0; i < r->fifo_len; i++)
            f[i] = r->fifo[(r->fifo_head + i) % r->fifo_cap];
        free(r->fifo);
        r->fifo = f;
        r->fifo_cap = cap;
        r->fifo_head = 0;
    }
    r->fifo[(r->fifo_head + r->fifo_len) % r->fifo_cap] = strdup(topic);
    r->fifo_len++;
    return true;
}

static char *fifo_pop(struct hv_run *r)
{
    char *t;

    if (!r->fifo_len)
        return NULL;
    t = r->fifo[r->fifo_head];
    r->fifo_head = (r->fifo_head + 1) % r->fifo_cap;
    r->fifo_len--;
    return t;
}

static int feed(void *user, char **buf, size_t *len, size_t *cap, hc_error *err)
{
    struct hv_run *r = user;
    struct hc_msg msg;
    hc_err rc = HC_OK;
    off_t used;

    if (r->input_done)
        return 0;
    rewind(r->feed_ms);
    /* About 64 KiB per call: large enough to keep the pipe full, small enough to stream. */
    while (ftello(r->feed_ms) < 65536 && (rc = hv_input_next(&r->in, &msg, err)) == HC_OK) {
        r->n_input++;
        if (!fifo_push(r, msg.topic))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory"), -1;
        if (hc_jsonl_writer_write(r->feed_writer, r->feed_ms, &msg, NULL, err) != HC_OK)
            return -1;
    }
    if (rc == HC_DONE)
        r->input_done = true;
    else if (rc != HC_OK) {
        hc_error_prefix(err, "input message %ld", r->n_input + 1);
        return -1;
    }
    fflush(r->feed_ms);
    used = ftello(r->feed_ms);
    if (used < 0)
        return hc_error_set(err, HC_ERR_IO, "cannot buffer input"), -1;
    if ((size_t)used > *cap) {
        char *nb = realloc(*buf, (size_t)used);

        if (!nb)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory"), -1;
        *buf = nb;
        *cap = (size_t)used;
    }
    if (used > 0) /* an empty case has no buffer at all */
        memcpy(*buf, r->feed_buf, (size_t)used);
    *len = (size_t)used;
    return r->input_done ? 0 : 1;
}

static int on_line(void *user, char *line, size_t len)
{
    struct hv_run *r = user;
    long k = r->n_actual + 1;
    char *topic, *ex;
    const char *end = NULL;
    cJSON *v;
    bool ok;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    topic = fifo_pop(r);
    if (!topic) {
        ex = hv_excerpt_text(line, len);
        hc_error_set(&r->err, HC_ERR_PARSE,
                     "decoder printed more lines than input messages: line %ld (%ld messages "
                     "%s): %s",
                     k, r->n_input, r->input_done ? "in the case" : "sent so far", ex ? ex : "");
        free(ex);
        return 1;
    }
    v = len ? cJSON_ParseWithLengthOpts(line, len, &end, 0) : NULL;
    if (v && end != line + len) {
        cJSON_Delete(v);
        v = NULL;
    }
    if (!v) {
        ex = hv_excerpt_text(line, len);
        hc_error_set(&r->err, HC_ERR_PARSE,
                     "decoder output line %ld (message %ld, topic '%s') is not JSON: %s", k, k,
                     topic, len ? ex : "(empty line)");
        free(ex);
        free(topic);
        return 1;
    }
    ok = hv_match_value(r, v, line, len, topic);
    free(topic);
    return ok ? 0 : 1;
}

bool hv_run_external(struct hv_run *r)
{
    hc_err rc;
    hc_error err = HC_ERROR_INIT;

    r->feed_ms = open_memstream(&r->feed_buf, &r->feed_len);
    if (!r->feed_ms || hc_jsonl_writer_new(&r->feed_writer, &r->err) != HC_OK) {
        hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory");
        return false;
    }
    rc = hv_extdec_run(r->o->decoder, r->dir, r->o->timeout_ns, feed, on_line, r, &err);
    if (rc != HC_OK) {
        if (r->err.code == HC_OK)
            r->err = err;
        if (rc == HC_ERR_TIMEOUT || (r->err.code != HC_OK && rc != HC_ERR_PARSE &&
                                     strstr(err.message, "decoder ") == err.message)) {
            r->err = err;
            hc_error_prefix(&r->err, "after %ld of %ld output lines", r->n_actual, r->n_input);
        }
        return false;
    }
    if (r->n_actual < r->n_input) {
        hc_error_set(&r->err, HC_ERR_PARSE,
                     "decoder printed %ld lines for %ld input messages (missing from message "
                     "%ld on)",
                     r->n_actual, r->n_input, r->n_actual + 1);
        return false;
    }
    return true;
}

void hv_decoder_release(struct hv_run *r)
{
    while (r->fifo_len)
        free(fifo_pop(r));
    free(r->fifo);
    if (r->feed_ms)
        fclose(r->feed_ms);
    hc_jsonl_writer_free(r->feed_writer);
    free(r->feed_buf);
}

/*
 * hverify's work: find the cases under the paths given, run the decoder over each case's input
 * (in-process for the built-in decoder, one child process per case for the user's), compare each
 * output value with the expected one, and report. Strict order streams: neither the input nor
 * the outputs are held in memory, so a million-message case costs what one message does. The
 * other orders (per-device, any) collect the values of the case first.
 *
 * Updates never overwrite a reviewed file silently: --update writes expected.jsonl.pending
 * (lines that still match keep their old text, so only real changes show in a diff), and
 * accepting moves it into place. With CI set, nothing is written unless --force.
 *
 * Finding cases, case.json and accepting pending files live in cases.c; the consumer mode's
 * process and capture in consumer.c; comparison in compare.c; the reports in report.c.
 */
#include "hverify.h"

#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hcore/decode.h"
#include "hcore/jsonl.h"
#include "hcore/jsonout.h"
#include "hcore/proc.h"
#include "hcore/store.h"
#include "hcore/timefmt.h"

#define EXCERPT 120

/* --- small helpers -----------------------------------------------------------------------------
 */

/* Compact JSON of v cut to EXCERPT characters, or NULL for a missing value. Printed exactly, so
 * two numbers that differ in their last digit never look the same in a report. */
static char *excerpt_json(const cJSON *v)
{
    struct hc_jsonout out = HC_JSONOUT_INIT;
    char *s;

    if (!v || hc_jsonout_print(&out, v, NULL) != HC_OK) {
        hc_jsonout_release(&out);
        return NULL;
    }
    if (out.len > EXCERPT)
        memcpy(out.data + EXCERPT - 3, "...", 4);
    s = strdup(out.data);
    hc_jsonout_release(&out);
    return s;
}

static char *excerpt_text(const char *t, size_t n)
{
    char *s = malloc(EXCERPT + 4);

    if (!s)
        return NULL;
    if (n > EXCERPT)
        snprintf(s, EXCERPT + 4, "%.*s...", EXCERPT - 3, t);
    else
        snprintf(s, EXCERPT + 4, "%.*s", (int)n, t);
    for (char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '?';
    return s;
}

/* --- input: input.jsonl or input.db ------------------------------------------------------------
 */

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

/* --- one case's run ----------------------------------------------------------------------------
 */

#define EXPECTED_BUFFER_SIZE ((size_t)1 << 18)

struct item { /* a value kept for the non-strict orders */
    cJSON *value;
    char *topic;
    long index;
};

struct items {
    struct item *v;
    size_t n, cap;
};

struct run {
    const struct hverify_opts *o;
    const char *dir;
    struct hv_cfg cfg;
    enum hv_order order;
    struct hv_case_result *res;
    hc_error err;

    struct hv_input in;
    long n_input;
    bool input_done;

    bool has_exp; /* false when there is no expected.jsonl (update creates it) */
    FILE *exp;
    char *exp_io;  /* exp's stdio buffer */
    char *exp_buf; /* getline's buffer */
    size_t exp_cap;
    char *exp_line;  /* the current value line, in exp_buf */
    long exp_lineno; /* physical line in expected.jsonl */
    long n_expected; /* values read */

    long n_actual;
    FILE *pending; /* expected.jsonl.pending being written, or NULL */
    bool changed;

    struct hc_jsonout print; /* reused for every value: no allocation per message */

    /* topics of messages sent to an external decoder and not yet answered */
    char **fifo;
    size_t fifo_head, fifo_len, fifo_cap;
    FILE *feed_ms;
    hc_jsonl_writer *feed_writer;
    char *feed_buf;
    size_t feed_len;

    struct items exp_items, act_items;

    struct hv_consumer *consumer; /* --consumer mode */
    struct hv_capture cap;
    long *kept; /* output lines compared (not blank, not ignored): kept[ordinal - 1] */
    size_t n_kept;
    struct hv_case_extra extra;
    bool text; /* compare plain lines against expected.txt */
};

static bool items_add(struct items *l, cJSON *value, const char *topic, long index)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct item *v = realloc(l->v, cap * sizeof(*v));

        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].value = value;
    l->v[l->n].topic = hv_xstrdup(topic);
    l->v[l->n].index = index;
    l->n++;
    return true;
}

static void items_free(struct items *l)
{
    for (size_t i = 0; i < l->n; i++) {
        cJSON_Delete(l->v[i].value);
        free(l->v[i].topic);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* "input 4 (co2, device ..., 2026-...)" for the input a line most likely belongs to, or NULL. */
static char *describe_input_of(const struct run *r, const char *line)
{
    long i = hv_capture_attribute(&r->cap, line);
    const struct hv_input_info *in;
    char buf[600];

    if (i < 0)
        return NULL;
    in = &r->cap.inputs[i];
    snprintf(buf, sizeof(buf), "input %ld: %s, device %s, %s", i + 1, in->type ? in->type : "?",
             in->device, in->measured_at);
    return hv_xstrdup(buf);
}

static char *describe_expected(const struct run *r, const cJSON *expected)
{
    char *text = cJSON_IsString(expected) ? hv_xstrdup(expected->valuestring)
                                          : cJSON_PrintUnformatted(expected);
    char *d = describe_input_of(r, text);

    free(text);
    return d;
}

/* --report-html: marks the output line (message: its ordinal among the compared lines) and the
 * input a mismatch concerns, on the case's timeline. The input is the one the text report names
 * ("input K: ..." in topic), else the one the expected value or the output line names. */
static void mark_failing(struct run *r, long message, const char *topic, const struct hv_diff *d)
{
    struct hv_timeline *tl = &r->res->timeline;
    long input = -1, named;

    if (message > 0 && (size_t)message <= r->n_kept &&
        (size_t)r->kept[message - 1] < tl->n_outputs) {
        size_t line = (size_t)r->kept[message - 1];

        tl->output_failing[line] = true;
        input = hv_capture_attribute(&r->cap, r->cap.lines[line]);
    }
    if (d && d->expected) {
        char *text = cJSON_IsString(d->expected) ? hv_xstrdup(d->expected->valuestring)
                                                 : cJSON_PrintUnformatted(d->expected);
        long k = text ? hv_capture_attribute(&r->cap, text) : -1;

        free(text);
        if (k >= 0)
            input = k; /* the input whose expected output went wrong */
    }
    if (topic && sscanf(topic, "input %ld:", &named) == 1 && named >= 1)
        input = named - 1;
    if (input >= 0 && (size_t)input < tl->n_inputs)
        tl->input_failing[input] = true;
}

/* The input a difference belongs to: the one its description names ("input 4: co2, ..."),
 * else the actual value's, else the expected one's; -1. */
static long attribute_diff(const struct run *r, const char *where, const struct hv_diff *d)
{
    long k = -1;

    if (where && sscanf(where, "input %ld:", &k) == 1 && k >= 1 && (size_t)k <= r->cap.n_inputs)
        return k - 1;
    k = -1;

    for (int side = 0; side < 2 && k < 0 && d; side++) {
        const cJSON *v = side == 0 ? d->actual : d->expected;
        char *text;

        if (!v)
            continue;
        text = cJSON_IsString(v) ? hv_xstrdup(v->valuestring) : cJSON_PrintUnformatted(v);
        k = hv_capture_attribute(&r->cap, text);
        free(text);
    }
    return k;
}

/* note, followed by the faults applied to the inputs of the difference's device: the inputs
 * that caused it */
static char *fault_note(const struct run *r, const char *where, const struct hv_diff *d,
                        const char *note)
{
    char faults[700], buf[1200];

    hv_capture_faults_of(&r->cap, attribute_diff(r, where, d), faults, sizeof(faults));
    if (!faults[0])
        return hv_xstrdup(note);
    snprintf(buf, sizeof(buf), "%s%sfaults on this device: %s", note ? note : "", note ? "; " : "",
             faults);
    return hv_xstrdup(buf);
}

static void add_mismatch(struct run *r, long message, const char *topic, const struct hv_diff *d,
                         const char *note)
{
    struct hv_case_result *res = r->res;
    struct hv_mismatch *m;

    res->mismatch_count++;
    r->changed = true;
    if (r->consumer)
        mark_failing(r, message, topic, d);
    if (r->o->max_report > 0 && res->n_mm >= (size_t)r->o->max_report)
        return;
    m = realloc(res->mm, (res->n_mm + 1) * sizeof(*m));
    if (!m)
        return;
    res->mm = m;
    m = &res->mm[res->n_mm++];
    m->message = message;
    m->topic = hv_xstrdup(topic);
    if (!topic && r->consumer && d && d->expected)
        m->topic = describe_expected(r, d->expected);
    m->path = hv_xstrdup(d ? d->path : "$");
    m->expected = d ? excerpt_json(d->expected) : NULL;
    m->actual = d ? excerpt_json(d->actual) : NULL;
    m->note = r->consumer && r->cap.n_faults ? fault_note(r, m->topic, d, note) : hv_xstrdup(note);
}

/* Next value line of expected.jsonl (blank lines skipped). 1 with the text in r->exp_line,
 * 0 at the end, -1 when it cannot be read (r->err set). */
static int expected_next(struct run *r, size_t *len)
{
    ssize_t n;

    if (!r->has_exp)
        return 0;
    while ((n = getline(&r->exp_buf, &r->exp_cap, r->exp)) >= 0) {
        char *line = r->exp_buf;
        size_t k = (size_t)n;

        r->exp_lineno++;
        if (k > 0 && line[k - 1] == '\n')
            k--;
        while (k > 0 && (line[k - 1] == '\r' || line[k - 1] == ' ' || line[k - 1] == '\t'))
            k--;
        line[k] = '\0';
        if (k == 0)
            continue;
        r->exp_line = line;
        r->n_expected++;
        *len = k;
        return 1;
    }
    if (!ferror(r->exp))
        return 0;
    hc_error_set(&r->err, errno == ENOMEM ? HC_ERR_NOMEM : HC_ERR_IO,
                 "'%s/expected.jsonl': cannot read: %s", r->dir, strerror(errno));
    return -1;
}

static cJSON *parse_expected(struct run *r, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(r->exp_line, len, &end, 0);

    if (v && end != r->exp_line + len) {
        cJSON_Delete(v);
        v = NULL;
    }
    if (!v) {
        char *ex = excerpt_text(r->exp_line, len);

        hc_error_set(&r->err, HC_ERR_PARSE, "'%s/expected.jsonl' line %ld is not JSON: %s", r->dir,
                     r->exp_lineno, ex ? ex : "");
        free(ex);
    }
    return v;
}

static bool pending_write(struct run *r, const char *text, size_t len)
{
    if (!r->pending)
        return true;
    if (fwrite(text, 1, len, r->pending) != len || fputc('\n', r->pending) == EOF) {
        hc_error_set(&r->err, HC_ERR_IO, "cannot write '%s/expected.jsonl.pending': %s", r->dir,
                     strerror(errno));
        return false;
    }
    return true;
}

/* Compact print of v in r->print (exact numbers); NULL on out of memory. */
static const char *print_value(struct run *r, const cJSON *v, size_t *len)
{
    if (hc_jsonout_print(&r->print, v, NULL) != HC_OK)
        return NULL;
    *len = r->print.len;
    return r->print.data;
}

/*
 * One actual output value (owned: consumed here). text/len is its line as the decoder printed it
 * (NULL for the built-in decoder). Returns false when the case cannot go on (r->err set).
 */
static bool sink(struct run *r, cJSON *actual, const char *text, size_t len, const char *topic)
{
    long index = ++r->n_actual;
    size_t elen = 0;
    bool ok = true;
    int got;

    if (!text) {
        text = print_value(r, actual, &len);
        if (!text) {
            cJSON_Delete(actual);
            hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory");
            return false;
        }
    }
    if (r->order != HV_ORDER_STRICT) {
        if (!items_add(&r->act_items, actual, topic, index)) {
            cJSON_Delete(actual);
            hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory");
            return false;
        }
        return pending_write(r, text, len);
    }
    got = expected_next(r, &elen);
    if (got < 0) {
        cJSON_Delete(actual);
        return false;
    }
    if (got == 0) {
        struct hv_diff d = {"$", NULL, actual};
        char note[96];

        snprintf(note, sizeof(note), "expected.jsonl has no line for this message");
        add_mismatch(r, index, topic, &d, note);
        ok = pending_write(r, text, len);
    } else if (elen == len && memcmp(r->exp_line, text, len) == 0) {
        /* Same bytes as a value printed before: equal, no need to parse (the fast path). */
        ok = pending_write(r, text, len);
    } else {
        cJSON *expected = parse_expected(r, elen);
        struct hv_diff d;

        if (!expected) {
            if (!r->o->update) {
                cJSON_Delete(actual);
                return false;
            }
            r->err.code = HC_OK;
            d = (struct hv_diff){"$", NULL, actual};
            add_mismatch(r, index, topic, &d, "the expected line is not JSON");
            ok = pending_write(r, text, len);
        } else if (hv_compare(expected, actual, &r->cfg, &d)) {
            ok = pending_write(r, r->exp_line, elen); /* keep the reviewed text */
        } else {
            add_mismatch(r, index, topic, &d, NULL);
            ok = pending_write(r, text, len);
        }
        cJSON_Delete(expected);
    }
    cJSON_Delete(actual);
    return ok;
}

/* Strict order: expected lines left over after the last output. */
static bool finish_strict(struct run *r)
{
    size_t elen;
    int got;

    while ((got = expected_next(r, &elen)) > 0) {
        cJSON *expected = parse_expected(r, elen);
        struct hv_diff d = {"$", expected, NULL};

        if (!expected && !r->o->update)
            return false;
        r->err.code = HC_OK;
        add_mismatch(r, r->n_expected, NULL, &d,
                     "no input message for this expected line (the input has fewer messages)");
        cJSON_Delete(expected);
    }
    return got == 0;
}

static const char *device_key(const cJSON *v)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "device_id");

    return cJSON_IsString(d) ? d->valuestring : "";
}

static int item_device_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    int c = strcmp(device_key(x->value), device_key(y->value));

    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index; /* stable: keeps order per device */
}

static bool finish_unordered(struct run *r)
{
    size_t elen;
    struct items *e = &r->exp_items, *a = &r->act_items;
    int got;

    while ((got = expected_next(r, &elen)) > 0) {
        cJSON *v = parse_expected(r, elen);

        if (!v)
            return false;
        if (!items_add(e, v, NULL, r->n_expected)) {
            cJSON_Delete(v);
            return hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory") == HC_OK;
        }
    }
    if (got < 0)
        return false;
    if (r->order == HV_ORDER_PER_DEVICE) {
        qsort(e->v, e->n, sizeof(*e->v), item_device_cmp);
        qsort(a->v, a->n, sizeof(*a->v), item_device_cmp);
        for (size_t i = 0; i < e->n || i < a->n; i++) {
            struct hv_diff d;
            const cJSON *ev = i < e->n ? e->v[i].value : NULL;
            const cJSON *av = i < a->n ? a->v[i].value : NULL;

            if (!hv_compare(ev, av, &r->cfg, &d))
                add_mismatch(r, av ? a->v[i].index : 0, av ? a->v[i].topic : NULL, &d,
                             !av ? "no actual value for this device's expected value" : NULL);
        }
        return true;
    }
    /* any: each actual value takes the first unused expected value it matches. */
    {
        bool *used = calloc(e->n + 1, sizeof(bool));
        size_t next_unused = 0;

        if (!used)
            return hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory") == HC_OK;
        for (size_t i = 0; i < a->n; i++) {
            bool found = false;

            for (size_t k = 0; k < e->n && !found; k++)
                if (!used[k] && hv_compare(e->v[k].value, a->v[i].value, &r->cfg, NULL))
                    used[k] = found = true;
            if (!found) {
                struct hv_diff d;

                /* Explain against the first expected value nothing matched. */
                while (next_unused < e->n && used[next_unused])
                    next_unused++;
                hv_compare(next_unused < e->n ? e->v[next_unused].value : NULL, a->v[i].value,
                           &r->cfg, &d);
                add_mismatch(r, a->v[i].index, a->v[i].topic, &d,
                             "matches no expected value (order any); difference shown against "
                             "the first unmatched expected value");
            }
        }
        for (size_t k = 0; k < e->n; k++)
            if (!used[k]) {
                struct hv_diff d = {"$", e->v[k].value, NULL};
                char note[96];

                snprintf(note, sizeof(note), "expected.jsonl value %ld matched no output",
                         e->v[k].index);
                /* Only counted once per unmatched pair: skip when an actual was reported. */
                if (r->n_actual < r->n_expected)
                    add_mismatch(r, 0, NULL, &d, note);
            }
        free(used);
    }
    return true;
}

/* --- the built-in decoder ------------------------------------------------------------------------
 */

static bool run_builtin(struct run *r)
{
    struct hc_msg msg;
    hc_err rc;

    while ((rc = hv_input_next(&r->in, &msg, &r->err)) == HC_OK) {
        cJSON *out = NULL;

        r->n_input++;
        if (hc_decode_message(msg.topic, msg.payload, msg.payload_len, &out, &r->err) != HC_OK)
            return false;
        if (!sink(r, out, NULL, 0, msg.topic))
            return false;
    }
    if (rc != HC_DONE) {
        hc_error_prefix(&r->err, "input message %ld", r->n_input + 1);
        return false;
    }
    r->input_done = true;
    return true;
}

/* --- an external decoder ------------------------------------------------------------------------
 */

static bool fifo_push(struct run *r, const char *topic)
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

static char *fifo_pop(struct run *r)
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
    struct run *r = user;
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
    struct run *r = user;
    long k = r->n_actual + 1;
    char *topic, *ex;
    const char *end = NULL;
    cJSON *v;
    bool ok;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    topic = fifo_pop(r);
    if (!topic) {
        ex = excerpt_text(line, len);
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
        ex = excerpt_text(line, len);
        hc_error_set(&r->err, HC_ERR_PARSE,
                     "decoder output line %ld (message %ld, topic '%s') is not JSON: %s", k, k,
                     topic, len ? ex : "(empty line)");
        free(ex);
        free(topic);
        return 1;
    }
    ok = sink(r, v, line, len, topic);
    free(topic);
    return ok ? 0 : 1;
}

static bool run_external(struct run *r)
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

/* --- the consumer mode ------------------------------------------------------------------------ */

static bool line_ignored(const struct run *r, const char *line)
{
    for (size_t i = 0; i < r->extra.n_ign; i++)
        if (regexec(&r->extra.ign[i], line, 0, NULL, 0) == 0)
            return true;
    for (size_t i = 0; i < r->o->n_ignore_line; i++) {
        regex_t re;
        bool hit;

        if (regcomp(&re, r->o->ignore_line[i], REG_EXTENDED | REG_NOSUB) != 0)
            continue; /* checked when parsed */
        hit = regexec(&re, line, 0, NULL, 0) == 0;
        regfree(&re);
        if (hit)
            return true;
    }
    return false;
}

static bool blank(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return !*s;
}

/* Text mode: expected.txt against the output, line by line (blank and ignored lines skipped). */
static bool compare_text(struct run *r, const long *kept, size_t n_kept)
{
    size_t elen, i = 0;
    int got;
    long attributed = -1, attributed_exp = -1;

    while ((got = expected_next(r, &elen)) > 0 || i < n_kept) {
        const char *act = i < n_kept ? r->cap.lines[kept[i]] : NULL;
        cJSON *ev = NULL, *av = NULL;
        struct hv_diff d;
        char *where = NULL;

        if (got < 0)
            return false;
        if (got > 0 && line_ignored(r, r->exp_line))
            continue;
        if (got > 0) {
            long k = hv_capture_attribute(&r->cap, r->exp_line);

            if (k >= 0)
                attributed_exp = k;
        }
        r->n_actual += act != NULL;
        if (act) {
            long k = hv_capture_attribute(&r->cap, act);

            if (k >= 0)
                attributed = k; /* later lines of the same input carry no ids */
        }
        if (act)
            pending_write(r, act, strlen(act));
        if (got > 0 && act && strcmp(act, r->exp_line) == 0) {
            i++;
            continue;
        }
        ev = got > 0 ? cJSON_CreateString(r->exp_line) : NULL;
        av = act ? cJSON_CreateString(act) : NULL;
        d.expected = ev;
        d.actual = av;
        snprintf(d.path, sizeof(d.path), "%s line %ld", got > 0 ? "expected.txt" : "output",
                 got > 0 ? r->exp_lineno : (long)i + 1);
        /* name the input of the expected line: that is what the consumer got wrong */
        if (got > 0 && attributed_exp >= 0)
            attributed = attributed_exp;
        if (attributed >= 0) {
            const struct hv_input_info *in = &r->cap.inputs[attributed];
            char buf[600];

            snprintf(buf, sizeof(buf), "input %ld: %s, device %s, %s", attributed + 1,
                     in->type ? in->type : "?", in->device, in->measured_at);
            where = hv_xstrdup(buf);
        }
        add_mismatch(r, act ? (long)i + 1 : 0, where ? where : "", &d,
                     !act       ? "no output line for this expected line"
                     : got == 0 ? "expected.txt has no line for this output line"
                                : NULL);
        free(where);
        cJSON_Delete(ev);
        cJSON_Delete(av);
        if (got == 0 && !act)
            break;
        i++;
        if (got == 0 && i >= n_kept)
            break;
    }
    return got >= 0;
}

/* Latency through the consumer: each input's publish to the first output line naming it. */
static void latency_figures(struct run *r)
{
    size_t n = r->cap.n_inputs, m = 0;
    double *ms = calloc(n ? n : 1, sizeof(double));
    bool *seen = calloc(n ? n : 1, sizeof(bool));

    if (!ms || !seen || r->o->probe) /* a probe's output comes after the consumer stopped */
        goto out;
    for (size_t i = 0; i < r->cap.n_lines; i++) {
        long k = hv_capture_attribute(&r->cap, r->cap.lines[i]);

        if (k < 0 || seen[k] || !r->cap.inputs[k].sent_ns)
            continue;
        seen[k] = true;
        ms[m++] = (double)(r->cap.line_ns[i] - r->cap.inputs[k].sent_ns) / 1e6;
    }
    for (size_t i = 1; i < m; i++) /* few values: insertion sort */
        for (size_t j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
            double t = ms[j];
            ms[j] = ms[j - 1];
            ms[j - 1] = t;
        }
    r->res->latency_n = (long)m;
    if (m) {
        r->res->latency_p50_ms = ms[(m - 1) / 2];
        r->res->latency_p99_ms = ms[(size_t)((double)(m - 1) * 0.99 + 0.5)];
        r->res->latency_max_ms = ms[m - 1];
    }
out:
    free(ms);
    free(seen);
}

/* The case's timeline, for --report-html; left empty when memory is short (the page says so). */
static void timeline_figures(struct run *r)
{
    struct hv_timeline *tl = &r->res->timeline;
    size_t ni = r->cap.n_inputs, no = r->cap.n_lines;

    tl->input_ns = calloc(ni + 1, sizeof(*tl->input_ns));
    tl->input_failing = calloc(ni + 1, sizeof(*tl->input_failing));
    tl->output_ns = calloc(no + 1, sizeof(*tl->output_ns));
    tl->output_failing = calloc(no + 1, sizeof(*tl->output_failing));
    if (!tl->input_ns || !tl->input_failing || !tl->output_ns || !tl->output_failing)
        return;
    for (size_t i = 0; i < ni; i++)
        tl->input_ns[i] = r->cap.inputs[i].sent_ns;
    if (no)
        memcpy(tl->output_ns, r->cap.line_ns, no * sizeof(*tl->output_ns));
    tl->n_inputs = ni;
    tl->n_outputs = no;
}

static void consumer_figures(struct run *r, hc_err rc)
{
    static const char *const how[] = {"by itself", "after SIGINT", "after SIGTERM",
                                      "killed: it ignored SIGINT and SIGTERM"};
    char what[200], buf[300];

    r->res->consumer = true;
    r->res->inputs_sent = r->cap.sent;
    r->res->outputs = (long)r->cap.n_lines;
    if (r->cap.stop_how == 1 && WIFSIGNALED(r->cap.exit_status) &&
        WTERMSIG(r->cap.exit_status) == SIGINT)
        snprintf(what, sizeof(what), "stopped"); /* sh -c itself dies of the SIGINT */
    else
        hc_proc_describe_status(r->cap.exit_status, what, sizeof(what));
    snprintf(buf, sizeof(buf), "%s %s%s", what,
             how[r->cap.stop_how >= 0 && r->cap.stop_how <= 3 ? r->cap.stop_how : 3],
             r->cap.exited_early && rc == HC_OK ? " before the case ended" : "");
    r->res->consumer_exit = hv_xstrdup(buf);
    if (r->cap.stderr_tail[0])
        r->res->stderr_tail = hv_xstrdup(r->cap.stderr_tail);
    r->res->faults_applied = (long)r->cap.n_faults;
    r->res->broker_restarted = r->cap.broker_restarted;
    latency_figures(r);
    timeline_figures(r);
}

/* The faults of the case: the command line's, else case.json's. Updating a case whose expected
 * output is the clean run's ("expect": "same", or --faults on a case without its own) runs it
 * clean: that is the output to keep. */
static void case_faults(const struct run *r, struct hv_case_settings *cs)
{
    const struct hverify_opts *o = r->o;

    cs->faults = o->faults ? o->faults : r->extra.faults;
    cs->seed = o->seed_given ? o->fault_seed : r->extra.has_seed ? r->extra.seed : 1;
    if (cs->faults && o->update && (r->extra.expect_same || !r->extra.faults))
        cs->faults = NULL;
}

static bool run_consumer(struct run *r)
{
    struct hv_case_settings cs = {r->o->timing ? r->o->timing : r->extra.timing, NULL, 1};
    long *kept = NULL;
    size_t n_kept = 0;
    hc_err rc;
    bool ok = true;

    case_faults(r, &cs);
    r->res->faults = cs.faults ? hv_xstrdup(cs.faults) : NULL;
    rc = hv_consumer_run_case(r->consumer, r->dir, &cs, &r->cap, &r->err);
    consumer_figures(r, rc);
    r->n_input = (long)r->cap.n_inputs;
    if (rc != HC_OK)
        return false;
    kept = calloc(r->cap.n_lines + 1, sizeof(long));
    if (!kept)
        return hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory") == HC_OK;
    for (size_t i = 0; i < r->cap.n_lines; i++)
        if (!blank(r->cap.lines[i]) && !line_ignored(r, r->cap.lines[i]))
            kept[n_kept++] = (long)i;
    r->kept = kept; /* the order-any and per-device comparisons name lines after this returns */
    r->n_kept = n_kept;
    if (r->text) {
        ok = compare_text(r, kept, n_kept);
    } else {
        for (size_t i = 0; i < n_kept && ok; i++) {
            const char *line = r->cap.lines[kept[i]], *end = NULL;
            size_t len = strlen(line);
            cJSON *v = cJSON_ParseWithLengthOpts(line, len, &end, 0);
            char *where = describe_input_of(r, line);

            if (v && end != line + len) {
                cJSON_Delete(v);
                v = NULL;
            }
            if (!v) {
                cJSON *raw = cJSON_CreateString(line);
                struct hv_diff d = {"$", NULL, raw};

                r->n_actual++;
                add_mismatch(r, (long)r->n_actual, where, &d,
                             "the consumer printed a line that is not JSON (--text compares "
                             "plain lines; --ignore-line skips it)");
                cJSON_Delete(raw);
            } else {
                ok = sink(r, v, line, len, where);
            }
            free(where);
        }
    }
    return ok;
}

static void run_release(struct run *r)
{
    free(r->kept);
    hv_input_close(&r->in);
    if (r->exp)
        fclose(r->exp);
    free(r->exp_io);
    free(r->exp_buf);
    hc_jsonout_release(&r->print);
    while (r->fifo_len)
        free(fifo_pop(r));
    free(r->fifo);
    if (r->feed_ms)
        fclose(r->feed_ms);
    hc_jsonl_writer_free(r->feed_writer);
    free(r->feed_buf);
    items_free(&r->exp_items);
    items_free(&r->act_items);
    hv_cfg_release(&r->cfg);
    hv_capture_release(&r->cap);
    free(r->extra.timing);
    free(r->extra.faults);
    for (size_t i = 0; i < r->extra.n_ign; i++)
        regfree(&r->extra.ign[i]);
}

/* Builds the effective settings: command line and case.json together. */
static bool case_settings(struct run *r)
{
    const struct hverify_opts *o = r->o;
    enum hv_order case_order = HV_ORDER_UNSET;
    char why[400];

    r->cfg.abs_tol = 0;
    r->cfg.rel_tol = 0;
    if (!hv_load_case_settings(r->dir, &r->cfg, &case_order, &r->extra, why, sizeof(why))) {
        hc_error_set(&r->err, HC_ERR_PARSE, "%s", why);
        return false;
    }
    if (o->abs_tol > r->cfg.abs_tol)
        r->cfg.abs_tol = o->abs_tol;
    if (o->rel_tol > r->cfg.rel_tol)
        r->cfg.rel_tol = o->rel_tol;
    for (size_t i = 0; i < o->n_ignore; i++)
        if (!hv_add_ignore(&r->cfg, o->ignore[i], why, sizeof(why))) {
            hc_error_set(&r->err, HC_ERR_INVALID, "--ignore: %s", why);
            return false;
        }
    r->order = o->order != HV_ORDER_UNSET     ? o->order
               : case_order != HV_ORDER_UNSET ? case_order
                                              : HV_ORDER_STRICT;
    return true;
}

/* Opens the expected file; missing is fine with --update (the case is new). */
static bool open_expected(struct run *r, const char *exp_path)
{
    int e;

    r->exp = fopen(exp_path, "rbe"); /* close-on-exec: decoders and consumers do not inherit it */
    r->has_exp = r->exp != NULL;
    /* large reads, as the input's reader makes: a case may hold a million lines (glibc ignores
     * the size without a buffer of ours) */
    if (r->exp && (r->exp_io = malloc(EXPECTED_BUFFER_SIZE)) != NULL)
        setvbuf(r->exp, r->exp_io, _IOFBF, EXPECTED_BUFFER_SIZE);
    if (r->exp)
        return true;
    e = errno;
    if (e == ENOENT && r->o->update)
        return true;
    hc_error_set(&r->err, HC_ERR_IO, "cannot open '%s': %s%s", exp_path, strerror(e),
                 e == ENOENT ? " (create it with: hverify --update)" : "");
    return false;
}

/* --update: the pending file the new output goes to (unless CI forbids writing). */
static bool open_pending(struct run *r, const char *pend_path, bool writes_allowed)
{
    if (!r->o->update || !writes_allowed)
        return true;
    r->pending = fopen(pend_path, "wb");
    if (!r->pending)
        hc_error_set(&r->err, HC_ERR_IO, "cannot write '%s': %s", pend_path, strerror(errno));
    return r->pending != NULL;
}

/* Closes the pending file: kept when the output changed, moved into place with --accept,
 * removed otherwise. Returns ok, false when that failed. */
static bool settle_pending(struct run *r, bool ok, const char *exp_path, const char *pend_path)
{
    if (!r->pending)
        return ok;
    if (fclose(r->pending) != 0 && ok) {
        hc_error_set(&r->err, HC_ERR_IO, "cannot write '%s': %s", pend_path, strerror(errno));
        ok = false;
    }
    r->pending = NULL;
    if (!ok || !r->changed) {
        unlink(pend_path);
    } else if (r->o->accept && rename(pend_path, exp_path) != 0) {
        hc_error_set(&r->err, HC_ERR_IO, "cannot rename '%s': %s", pend_path, strerror(errno));
        ok = false;
    }
    return ok;
}

static void set_status(struct run *r, bool ok)
{
    struct hv_case_result *res = r->res;

    if (!ok) {
        res->status = HV_ERROR;
        res->error = hv_xstrdup(r->err.message[0] ? r->err.message : hc_strerror(r->err.code));
        return;
    }
    res->status = res->mismatch_count ? HV_FAILED : HV_PASSED;
    if (!r->has_exp && !res->mismatch_count) {
        res->mismatch_count = 1; /* a new case is a change until accepted */
        res->status = HV_FAILED;
    }
}

/* --update with a changed output: what was written and how to accept it. */
static void announce_update(const struct run *r, bool writes_allowed, const char *exp_path,
                            const char *pend_path)
{
    FILE *out = r->o->json ? stderr : stdout;
    char quoted[4 * 4096 + 3];

    if (!writes_allowed) {
        tool_warn("%s: CI is set: not writing expected.jsonl.pending (use --force)", r->dir);
    } else if (r->o->accept) {
        fprintf(out, "updated %s (%ld messages)\n", exp_path, r->n_input);
    } else {
        tool_shell_quote(quoted, sizeof(quoted), r->dir);
        fprintf(out, "wrote %s (%ld of %ld values changed); review, then: hverify accept %s\n",
                pend_path, r->res->mismatch_count, r->n_input, quoted);
    }
}

/* Runs one case into res. */
static void run_case(const struct hverify_opts *o, struct hv_consumer *consumer, const char *dir,
                     struct hv_case_result *res, bool writes_allowed)
{
    struct run r;
    char *exp_path = hv_path_join(dir, "expected.jsonl");
    char *pend_path = hv_path_join(dir, "expected.jsonl.pending");
    int64_t t0 = hc_time_monotonic_ns();
    bool ok = false;

    memset(&r, 0, sizeof(r));
    r.o = o;
    r.dir = dir;
    r.res = res;
    r.consumer = consumer;
    res->name = hv_xstrdup(dir);
    res->consumer = consumer != NULL;
    if (consumer && (o->text || hv_file_exists(dir, "expected.txt"))) {
        r.text = true;
        free(exp_path);
        free(pend_path);
        exp_path = hv_path_join(dir, "expected.txt");
        pend_path = hv_path_join(dir, "expected.txt.pending");
    }
    if (!exp_path || !pend_path) {
        hc_error_set(&r.err, HC_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!case_settings(&r))
        goto done;
    if (!consumer && hv_input_open(&r.in, dir, o->decoder == NULL, &r.err) != HC_OK)
        goto done;
    if (!open_expected(&r, exp_path) || !open_pending(&r, pend_path, writes_allowed))
        goto done;
    if (!(consumer ? run_consumer(&r) : o->decoder ? run_external(&r) : run_builtin(&r)))
        goto done;
    if (!r.text && !(r.order == HV_ORDER_STRICT ? finish_strict(&r) : finish_unordered(&r)))
        goto done;
    if (!r.has_exp)
        r.changed = true;
    ok = true;
done:
    res->messages = r.n_input;
    res->expected_lines = r.n_expected;
    ok = settle_pending(&r, ok, exp_path, pend_path);
    set_status(&r, ok);
    res->seconds = (double)(hc_time_monotonic_ns() - t0) / 1e9;
    if (ok && o->update && o->accept && writes_allowed)
        res->status = HV_PASSED; /* the fixture now holds this output */
    if (ok && o->update && r.changed)
        announce_update(&r, writes_allowed, exp_path, pend_path);
    run_release(&r);
    free(exp_path);
    free(pend_path);
}

/* --- the run --------------------------------------------------------------------------------- */

void hverify_free_results(struct hv_case_result *r, size_t n);

void hverify_free_results(struct hv_case_result *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < r[i].n_mm; k++) {
            free(r[i].mm[k].topic);
            free(r[i].mm[k].path);
            free(r[i].mm[k].expected);
            free(r[i].mm[k].actual);
            free(r[i].mm[k].note);
        }
        free(r[i].mm);
        free(r[i].name);
        free(r[i].error);
        free(r[i].consumer_exit);
        free(r[i].faults);
        free(r[i].stderr_tail);
        free(r[i].timeline.input_ns);
        free(r[i].timeline.input_failing);
        free(r[i].timeline.output_ns);
        free(r[i].timeline.output_failing);
    }
    free(r);
}

int hverify_run(const struct hverify_opts *o)
{
    struct hv_case_list cases = {NULL, 0, 0};
    struct hv_case_result *results = NULL;
    long passed = 0, failed = 0, errors = 0;
    int code = TOOL_EXIT_OK;
    bool writes_allowed = !hv_ci_mode() || o->force, interrupted = false;
    size_t cases_run;
    struct hv_consumer *consumer = NULL;

    tool_signals_install();   /* Ctrl-C stops the running decoder, then hverify */
    signal(SIGPIPE, SIG_IGN); /* a decoder that stops reading must not kill us */
    if (!hv_collect_cases(o, &cases)) {
        code = TOOL_EXIT_FAILURE;
        goto out;
    }
    if (o->accept && !o->update) {
        code = hv_accept_pending(o, &cases);
        goto out;
    }
    if (o->consumer) {
        hc_error err = HC_ERROR_INIT;

        if (hv_consumer_open(o, &consumer, &err) != HC_OK) {
            tool_error("%s", err.message);
            code = TOOL_EXIT_FAILURE;
            goto out;
        }
    }
    results = calloc(cases.n ? cases.n : 1, sizeof(*results));
    if (!results) {
        tool_error("out of memory");
        code = TOOL_EXIT_FAILURE;
        goto out;
    }
    cases_run = 0;
    for (size_t i = 0; i < cases.n; i++) {
        if (tool_stop_requested) {
            tool_error("interrupted after %zu of %zu cases", i, cases.n);
            interrupted = true;
            break;
        }
        hv_report_leftovers(cases.dirs[i], o->update);
        run_case(o, consumer, cases.dirs[i], &results[i], writes_allowed);
        hv_print_case(o, &results[i]);
        if (results[i].status == HV_PASSED)
            passed++;
        else if (results[i].status == HV_FAILED)
            failed++;
        else
            errors++;
        fflush(stdout);
        cases_run = i + 1;
    }
    if (!o->json)
        printf("%ld passed, %ld failed\n", passed, failed + errors);
    if (errors)
        tool_error("%ld of %ld cases could not run", errors, (long)cases_run);
    if (o->json && !hv_report_json(stdout, results, cases_run))
        code = TOOL_EXIT_FAILURE;
    if (o->junit) {
        hc_error err = HC_ERROR_INIT;

        if (!hv_report_junit(o->junit, results, cases_run, &err)) {
            tool_error("%s", err.message);
            errors++;
        }
    }
    if (o->report_html) {
        hc_error err = HC_ERROR_INIT;

        if (!hv_report_html(o->report_html, o, results, cases_run, &err)) {
            tool_error("%s", err.message);
            errors++;
        }
    }
    if (errors || interrupted) /* an interrupted run verified nothing: never exit 0 */
        code = TOOL_EXIT_FAILURE;
    else if (failed)
        code = TOOL_EXIT_MISMATCH;
out:
    hv_consumer_close(consumer);
    if (results)
        hverify_free_results(results, cases.n);
    for (size_t i = 0; i < cases.n; i++)
        free(cases.dirs[i]);
    free(cases.dirs);
    return code;
}

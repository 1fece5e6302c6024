/*
 * One case's run, shared by its stages: the state of the run (struct hv_run) and what each stage
 * offers the others. case_run.c sets a case up and settles its status; decoder.c (the case's
 * input, the built-in decoder, the user's) or consumer_case.c (--consumer) produces its output;
 * match.c compares each output value with the expected one; fixture.c reads expected.jsonl and
 * writes expected.jsonl.pending; mismatch.c records the differences for the reports.
 *
 * Every stage returns false when the case cannot go on, with the reason in r->err.
 */
#ifndef HVERIFY_CASE_RUN_H
#define HVERIFY_CASE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "hcore/jsonl.h"
#include "hcore/jsonout.h"
#include "hverify.h"

struct hv_item { /* a value kept for the non-strict orders */
    cJSON *value;
    char *topic;
    long index;
};

struct hv_items {
    struct hv_item *v;
    size_t n, cap;
};

struct hv_run {
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

    struct hv_items exp_items, act_items;

    struct hv_consumer *consumer; /* --consumer mode */
    struct hv_capture cap;
    long *kept; /* output lines compared (not blank, not ignored): kept[ordinal - 1] */
    size_t n_kept;
    struct hv_case_extra extra;
    bool text; /* compare plain lines against expected.txt */
};

/* --- running one case (case_run.c) ----------------------------------------------------------- */

/* Runs the case in dir into res (its name, status, figures, mismatches). */
void hv_case_run(const struct hverify_opts *o, struct hv_consumer *consumer, const char *dir,
                 struct hv_case_result *res, bool writes_allowed);

/* --- producing the output: decoder.c, consumer_case.c ---------------------------------------- */

/* The built-in decoder, in process, over the case's input. */
bool hv_run_builtin(struct hv_run *r);
/* --decoder: the user's decoder as a child process, fed the case's input. */
bool hv_run_external(struct hv_run *r);
/* Frees what hv_run_external kept (the topics not yet answered, the input buffer). */
void hv_decoder_release(struct hv_run *r);
/* --consumer: the user's consumer over the case, its output lines compared. */
bool hv_run_consumer(struct hv_run *r);

/* --- comparing values (match.c) -------------------------------------------------------------- */

/* One actual output value (owned: consumed here). text/len is its line as the decoder printed it
 * (NULL for the built-in decoder); topic names its input in reports (may be NULL). */
bool hv_match_value(struct hv_run *r, cJSON *actual, const char *text, size_t len,
                    const char *topic);
/* After the last output: the expected values left over (strict order), or the comparison of
 * the values collected (per-device, any). */
bool hv_match_finish(struct hv_run *r);
/* Frees the values collected for the non-strict orders. */
void hv_match_release(struct hv_run *r);

/* --- the expected and the pending file (fixture.c) ------------------------------------------- */

/* Opens the expected file; missing is fine with --update (the case is new). */
bool hv_expected_open(struct hv_run *r, const char *exp_path);
/* Next value line of the expected file (blank lines skipped). 1 with the text in r->exp_line and
 * its length in *len, 0 at the end, -1 when it cannot be read (r->err set). */
int hv_expected_next(struct hv_run *r, size_t *len);
/* The current expected line (len bytes) as JSON, owned by the caller; NULL with r->err set when
 * it is not JSON. */
cJSON *hv_expected_parse(struct hv_run *r, size_t len);
/* --update: opens the pending file the new output goes to (unless CI forbids writing). */
bool hv_pending_open(struct hv_run *r, const char *pend_path, bool writes_allowed);
/* Writes one output line to the pending file, when there is one. */
bool hv_pending_write(struct hv_run *r, const char *text, size_t len);
/* Closes the pending file: kept when the output changed, moved into place with --accept,
 * removed otherwise. Returns ok, false when that failed. */
bool hv_pending_settle(struct hv_run *r, bool ok, const char *exp_path, const char *pend_path);
/* --update with a changed output: what was written and how to accept it. */
void hv_pending_announce(const struct hv_run *r, bool writes_allowed, const char *exp_path,
                         const char *pend_path);

/* --- recording differences (mismatch.c) ------------------------------------------------------ */

/* Counts a mismatch of output value `message` (1-based; 0 when not tied to one) and keeps its
 * details for the reports (the first --max-report of them). topic and note may be NULL. */
void hv_add_mismatch(struct hv_run *r, long message, const char *topic, const struct hv_diff *d,
                     const char *note);
/* "input 4: co2, device ..., 2026-..." for the input a line most likely belongs to, or NULL;
 * malloc'd. */
char *hv_describe_input_of(const struct hv_run *r, const char *line);
/* t (n bytes) cut to a report excerpt, control characters shown as '?'; malloc'd, NULL when out
 * of memory. */
char *hv_excerpt_text(const char *t, size_t n);

#endif

/*
 * hverify: runs a decoder (hkit's built-in one or the user's program) over fixture cases and
 * compares its output with the expected output, structurally. This header is shared by the
 * tool's files and its unit tests: options, the comparison (compare.c), the external decoder
 * process (extdec.c), reports (report.c) and the run itself (hverify.c).
 */
#ifndef HVERIFY_H
#define HVERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tool.h"

#define HV_MAX_IGNORE 64
#define HV_PATH_MAX 512
#define HV_MAX_LINE_BYTES (64 << 20) /* longest decoder output line (one JSON value) */

/* --- options --------------------------------------------------------------------------------- */

enum hv_order { HV_ORDER_UNSET = 0, HV_ORDER_STRICT, HV_ORDER_PER_DEVICE, HV_ORDER_ANY };

struct hverify_opts {
    const char **paths; /* cases or folders of cases (borrowed from argv) */
    size_t n_paths;
    const char *decoder; /* shell command; NULL: the built-in decoder */
    int64_t timeout_ns;  /* per case, external decoder only */
    double abs_tol, rel_tol;
    const char *ignore[HV_MAX_IGNORE];
    size_t n_ignore;
    enum hv_order order; /* HV_ORDER_UNSET: case.json's, else strict */
    bool update;         /* write expected.jsonl.pending */
    bool accept;         /* move pending files into place (with update: write directly) */
    bool force;          /* write even when CI is set */
    bool json;           /* machine-readable report on stdout */
    const char *junit;   /* JUnit XML file, or NULL */
    long max_report;     /* mismatching messages detailed per case; 0 = all */
    int verbosity;       /* 0 summary only, 1 failures, 2 every case */
};

void hverify_opts_init(struct hverify_opts *o);

/* Parses argv (also "hverify accept PATH..."). OPTS_OK, OPTS_HELP (usage printed) or OPTS_ERROR
 * (message printed). */
enum opts_result hverify_parse(int argc, char **argv, struct hverify_opts *o);

/* Runs every case; returns a TOOL_EXIT_* code. */
int hverify_run(const struct hverify_opts *o);

/* --- paths and comparison (compare.c) ------------------------------------------------------- */

enum hv_seg_kind { HV_SEG_KEY, HV_SEG_INDEX, HV_SEG_ANY_KEY, HV_SEG_ANY_INDEX, HV_SEG_ANY };

struct hv_seg {
    enum hv_seg_kind kind;
    char *key;  /* HV_SEG_KEY */
    long index; /* HV_SEG_INDEX */
};

/* A compiled path pattern: `value.entries`, `measurements[0].value`, `measurements[*].unit`,
 * `*.unit`, `["odd.key"]`. */
struct hv_path {
    struct hv_seg *segs;
    size_t n;
    char *text;
};

/* Compiles text into *out. false with a reason in why (size why_size) when malformed. */
bool hv_path_compile(const char *text, struct hv_path *out, char *why, size_t why_size);
void hv_path_release(struct hv_path *p);

struct hv_tol_rule {
    struct hv_path path; /* applies to numbers at or below this path */
    double abs_tol, rel_tol;
};

/* Comparison settings for one case. Tolerances only ever loosen: a number passes when it is
 * within any tolerance that applies to it. */
struct hv_cfg {
    double abs_tol, rel_tol;
    struct hv_path *ignore;
    size_t n_ignore;
    struct hv_tol_rule *tols;
    size_t n_tols;
};

/* First difference found by hv_compare. Pointers borrow from the compared trees; NULL means the
 * value is missing on that side. */
struct hv_diff {
    char path[HV_PATH_MAX]; /* "$" for the whole value, else `value.entries`, `a[2]` */
    const cJSON *expected;
    const cJSON *actual;
};

/* True when actual matches expected under cfg (may be NULL: exact). On false, *diff (may be
 * NULL) describes the first difference in expected's member order. */
bool hv_compare(const cJSON *expected, const cJSON *actual, const struct hv_cfg *cfg,
                struct hv_diff *diff);

/* Frees the rules of cfg (not cfg itself). */
void hv_cfg_release(struct hv_cfg *cfg);

/* Appends a key to a rendered path (`a.b`, `a["x.y"]`). */
void hv_path_append_key(char *path, size_t size, const char *key);

/* --- the external decoder (extdec.c) --------------------------------------------------------- */

/* Called for each line the decoder prints (without '\n'); return non-zero to stop. */
typedef int (*hv_line_fn)(void *user, char *line, size_t len);
/* Called when the decoder can take more input: append bytes to *buf (grown with realloc);
 * return 1 while more input will come, 0 at the end, -1 on error (reason in err). */
typedef int (*hv_feed_fn)(void *user, char **buf, size_t *len, size_t *cap, hc_error *err);

/* Runs `sh -c command` under a supervisor that leaves no descendant behind, streaming feed()
 * into its stdin and its stdout lines (at most HV_MAX_LINE_BYTES each) into line() concurrently
 * (poll), within timeout_ns (0: none). HC_OK when it exited 0; HC_ERR_INTERRUPTED within ~0.2 s
 * of tool_stop_requested; otherwise an error naming what happened (signal, exit status, timeout,
 * output line) with the decoder's last stderr line. case_dir is exported as HVERIFY_CASE. */
hc_err hv_extdec_run(const char *command, const char *case_dir, int64_t timeout_ns, hv_feed_fn feed,
                     hv_line_fn line, void *user, hc_error *err);

/* --- fast input (lines.c) ------------------------------------------------------------------- */

/* A file read in large blocks; lines are handed out in place. */
struct hv_lines {
    int fd;
    char *buf;
    size_t cap, start, end; /* unread bytes: buf[start, end) */
    bool eof;
    long lineno; /* physical lines handed out */
};

/* Opens path for reading. On HC_OK release with hv_lines_close. */
hc_err hv_lines_open(struct hv_lines *l, const char *path, hc_error *err);
/* Next physical line without its '\n' (a last line may lack one), NUL-terminated in place,
 * valid until the next call. HC_OK, HC_DONE at the end, HC_ERR_IO or HC_ERR_NOMEM. */
hc_err hv_lines_next(struct hv_lines *l, char **line, size_t *len, hc_error *err);
/* Accepts a zeroed or closed l. */
void hv_lines_close(struct hv_lines *l);

/* What the built-in decoder needs of an input line. Pointers borrow from the line. */
struct hv_simple_line {
    const char *topic;            /* NUL-terminated, not empty */
    const unsigned char *payload; /* NUL-terminated; "" when the line has none */
    size_t payload_len;
};

/* Recognises line (len bytes, a NUL after them; modified in place) when it is an hkit JSON line
 * of the common plain shape that hc_jsonl_next accepts with exactly this topic and payload;
 * false (line clobbered) for anything else, which the caller then reads with hc_jsonl_next. */
bool hv_jsonl_simple(char *line, size_t len, struct hv_simple_line *out);

/* --- reports (report.c) ---------------------------------------------------------------------- */

enum hv_status { HV_PASSED, HV_FAILED, HV_ERROR };

struct hv_mismatch {
    long message; /* 1-based input message number; 0 when not tied to one */
    char *topic;  /* may be NULL */
    char *path;
    char *expected; /* compact JSON, or NULL when missing */
    char *actual;
    char *note; /* extra explanation, or NULL */
};

struct hv_case_result {
    char *name; /* the case directory as the user would type it */
    enum hv_status status;
    long messages;
    long expected_lines; /* lines read from expected.jsonl */
    long mismatch_count;
    struct hv_mismatch *mm; /* the first max_report mismatches */
    size_t n_mm;
    char *error; /* HV_ERROR: why */
    double seconds;
};

/* One line on what failed: "2 of 5 messages differ", or, when expected.jsonl has more lines
 * than the input has messages, says that ("expected.jsonl has 1 line, the input 0 messages"). */
void hv_case_summary(const struct hv_case_result *c, char *buf, size_t size);

/* Writes a JUnit XML report; false on I/O error (reason in err). */
bool hv_report_junit(const char *path, const struct hv_case_result *r, size_t n, hc_error *err);
/* Writes the machine-readable report to fp. */
bool hv_report_json(FILE *fp, const struct hv_case_result *r, size_t n);
/* XML-escapes s into a new string (drops characters XML 1.0 cannot hold). */
char *hv_xml_escape(const char *s);

#endif

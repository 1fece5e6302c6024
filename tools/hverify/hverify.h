/*
 * hverify: runs a decoder (hkit's built-in one or the user's program) over fixture cases and
 * compares its output with the expected output, structurally. This header is shared by the
 * tool's files and its unit tests: options, the comparison (compare.c), the external decoder
 * process (extdec.c), the case's input (decoder.c), cases on disk (cases.c), fixtures
 * (fixture.c), the consumer mode (consumer.c), reports (report.c) and the run itself
 * (hverify.c; one case's run and its stages share case_run.h).
 */
#ifndef HVERIFY_H
#define HVERIFY_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "hcore/jsonl.h"
#include "hcore/msg.h"
#include "hcore/store.h"
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
    enum hv_order order;     /* HV_ORDER_UNSET: case.json's, else strict */
    bool update;             /* write expected.jsonl.pending */
    bool accept;             /* move pending files into place (with update: write directly) */
    bool force;              /* write even when CI is set */
    bool json;               /* machine-readable report on stdout */
    const char *junit;       /* JUnit XML file, or NULL */
    const char *report_html; /* --report-html: self-contained HTML page (report_html.c) */
    long max_report;         /* mismatching messages detailed per case; 0 = all */
    int verbosity;           /* 0 summary only, 1 failures, 2 every case */

    /* --consumer mode */
    const char *consumer;     /* shell command of the user's MQTT consumer, or NULL */
    bool broker_plain;        /* --broker plain: the consumer gets plain MQTT */
    const char *ready;        /* --ready REGEX on its output, or NULL: its subscription */
    int64_t ready_timeout_ns; /* default 10 s */
    int64_t settle_ns;        /* default 500 ms */
    int64_t stop_grace_ns;    /* SIGINT -> SIGTERM -> SIGKILL steps, default 2 s */
    const char *timing;       /* max, recorded, speed:X; NULL: case.json's, else max */
    bool text;                /* compare plain lines (also when a case has expected.txt) */
    const char *ignore_line[HV_MAX_IGNORE]; /* regexes of output lines to skip */
    size_t n_ignore_line;
    const char *integration_id, *api_key_id; /* NULL: random per run (--url: as given) */
    /* --url: an existing broker instead of the private one (the shared connection options) */
    struct tool_mqtt mqtt;
    bool use_url;                     /* --url or -h given */
    struct hc_mqtt_options mqtt_opts; /* resolved from mqtt when use_url */
    const char *capture;              /* "mqtt:FILTER" or "file:PATH"; NULL: its stdout */
    const char *probe;                /* shell command whose stdout is the output, or NULL */
    const char *faults;               /* --faults SPEC (hcore/faults.h plus broker-restart) */
    uint64_t fault_seed;              /* --seed */
    bool seed_given;
};

/* Releases what parsing resolved (the token of --url's credentials). */
void hverify_opts_release(struct hverify_opts *o);

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

/* --- a case's input (decoder.c) -------------------------------------------------------------- */

/* A case's input: input.jsonl or input.db (a file, or a directory of segments), read through
 * tool_source (libcore's JSON-lines reader, whose fast path reads hkit's plain lines in one
 * pass). */
struct hv_input {
    tool_source *src;
    char *path;
};

/* Opens the case's input. fast is no longer used: every reader takes libcore's fast path. */
hc_err hv_input_open(struct hv_input *in, const char *dir, bool fast, hc_error *err);
/* Next message, borrowed until the next call: HC_OK, HC_DONE, or an error naming the file. */
hc_err hv_input_next(struct hv_input *in, struct hc_msg *msg, hc_error *err);
void hv_input_close(struct hv_input *in);

/* --- cases on disk (cases.c) ------------------------------------------------------------------ */

char *hv_xstrdup(const char *s);                        /* NULL for NULL or out of memory */
char *hv_path_join(const char *dir, const char *name);  /* "dir/name", malloc'd */
bool hv_file_exists(const char *dir, const char *name); /* a regular file dir/name */
/* input.db may also be a directory of segments (hrecord --rotate-*), read as one recording:
 * true for a regular file or a directory dir/name. */
bool hv_recording_exists(const char *dir, const char *name);

/* Case folders found, in name order. */
struct hv_case_list {
    char **dirs;
    size_t n, cap;
};

/* Adds dir, or the cases below it (depth-first, by name, at most 32 levels), to l. */
void hv_find_cases(const char *dir, int depth, struct hv_case_list *l);
/* Warns about *.pending files left in dir's cases (not while updating, which rewrites them). */
void hv_report_leftovers(const char *dir, bool updating);

/* case.json members of the consumer mode */
struct hv_case_extra {
    char *timing;
    char *faults;  /* "faults": a spec */
    uint64_t seed; /* "seed" */
    bool has_seed;
    bool expect_same; /* "expect": "same": the expected output is the clean run's */
    regex_t ign[HV_MAX_IGNORE];
    size_t n_ign;
};

/* Adds one ignored path to cfg; false with a reason in why. */
bool hv_add_ignore(struct hv_cfg *cfg, const char *text, char *why, size_t size);
/* The cases under every path of o (each must hold one); false after an error message. */
bool hv_collect_cases(const struct hverify_opts *o, struct hv_case_list *cases);
/* Reads dir/case.json (optional) into cfg, *order and extra. false with a reason in why. */
bool hv_load_case_settings(const char *dir, struct hv_cfg *cfg, enum hv_order *order,
                           struct hv_case_extra *extra, char *why, size_t size);

/* --- fixtures: CI and accepting (fixture.c) -------------------------------------------------- */

/* CI set (and not 0 or false): nothing is written or accepted without --force. */
bool hv_ci_mode(void);
/* Moves each case's expected.jsonl.pending into place; returns the exit code. */
int hv_accept_pending(const struct hverify_opts *o, const struct hv_case_list *cases);

/* --- the consumer mode (consumer.c; what it captured: capture.c) ------------------------------ */

/* One input message of a case as the consumer saw it. */
struct hv_input_info {
    char *topic;       /* rewritten to the run's ids */
    char *type;        /* measurement type (topic level 6), or NULL */
    char *device;      /* device id (the last topic level), or NULL */
    char *measured_at; /* from the payload, or NULL */
    int64_t sent_ns;   /* CLOCK_MONOTONIC of its first publish (the engine's sent hook); 0 if
                          never */
};

/* One fault applied to an input of the case (the replay engine's fault hook). */
struct hv_fault_note {
    long input;          /* 0-based input index */
    const char *kind;    /* "dup", "reorder"... (static) */
    long partner;        /* reorder: the input it swapped with; -1 none */
    char time_after[40]; /* stale, future, skew: the first timestamp as sent; "" otherwise */
};

/* What one case produced. */
struct hv_capture {
    char **lines;     /* output lines, without line ends, in arrival order */
    int64_t *line_ns; /* CLOCK_MONOTONIC arrival of each */
    size_t n_lines, cap_lines;
    struct hv_input_info *inputs;
    size_t n_inputs;
    long sent, failed; /* replay figures */
    int exit_status;   /* the consumer's wait status */
    int stop_how;      /* 0 it exited by itself, 1 SIGINT, 2 SIGTERM, 3 killed */
    bool exited_early; /* it exited by itself before it was asked to stop */
    char stderr_tail[1024];
    char timing[32];
    struct hv_fault_note *faults; /* in the order they were applied */
    size_t n_faults, cap_faults;
    bool broker_restarted;
};

/* What one case asks of the run. */
struct hv_case_settings {
    const char *timing; /* "max", "recorded" or "speed:X"; NULL: max */
    const char *faults; /* spec (hcore/faults.h plus broker-restart), or NULL: clean */
    uint64_t seed;
};

/* Checks a fault spec (the replay engine's kinds plus broker-restart[=at:N]): HC_OK or
 * HC_ERR_INVALID naming the item. */
hc_err hv_faults_check(const char *spec, hc_error *err);

/* The faults applied to inputs of the same device as input k (every input when k < 0), those
 * on input k itself first, as "input 17 dup, input 20 reorder (with input 22)"; "" when none. */
void hv_capture_faults_of(const struct hv_capture *cap, long k, char *buf, size_t size);

struct hv_consumer; /* the run: the private broker, ids */

/* Starts the private broker for the run. */
hc_err hv_consumer_open(const struct hverify_opts *o, struct hv_consumer **out, hc_error *err);
/* Runs the consumer over one case: readiness, replay (with cs's faults), completion, stop, the
 * probe. HC_OK with *cap filled (even when the consumer died: see the
 * figures); an error (one line, with its stderr tail) when the case could not run. */
hc_err hv_consumer_run_case(struct hv_consumer *c, const char *dir,
                            const struct hv_case_settings *cs, struct hv_capture *cap,
                            hc_error *err);
/* Which input an output line (or expected line) most likely belongs to: its device id and
 * measured_at (or the timestamp a fault gave it) both appear in it. -1 when none. */
long hv_capture_attribute(const struct hv_capture *cap, const char *line);
void hv_capture_release(struct hv_capture *cap);
void hv_consumer_close(struct hv_consumer *c);

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

/* --consumer mode: when each input went out and each output line came (CLOCK_MONOTONIC), the
 * failing ones marked (a mismatch concerns the line, or names the input), for --report-html. */
struct hv_timeline {
    int64_t *input_ns; /* 0: never sent */
    bool *input_failing;
    size_t n_inputs;
    int64_t *output_ns;
    bool *output_failing;
    size_t n_outputs;
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

    /* --consumer mode figures */
    bool consumer;
    long inputs_sent, outputs;
    long latency_n; /* inputs matched to an output */
    double latency_p50_ms, latency_p99_ms, latency_max_ms;
    char *consumer_exit; /* "exited with status 0 after SIGINT", ... */
    char *faults;        /* the fault spec the case ran with, or NULL */
    long faults_applied;
    bool broker_restarted;
    char *stderr_tail; /* on failure */
    struct hv_timeline timeline;
};

/* One line on what failed: "2 of 5 messages differ", or, when expected.jsonl has more lines
 * than the input has messages, says that ("expected.jsonl has 1 line, the input 0 messages"). */
void hv_case_summary(const struct hv_case_result *c, char *buf, size_t size);

/* The text report of one case (print.c); nothing with --json or --quiet. */
void hv_print_case(const struct hverify_opts *o, const struct hv_case_result *c);

/* Writes a JUnit XML report; false on I/O error (reason in err). */
bool hv_report_junit(const char *path, const struct hv_case_result *r, size_t n, hc_error *err);
/* Writes the machine-readable report to fp. */
bool hv_report_json(FILE *fp, const struct hv_case_result *r, size_t n);
/* --report-html (report_html.c): the cases, each failure with its first differing path, and a
 * timeline per consumer case. false on I/O error (reason in err). */
bool hv_report_html(const char *path, const struct hverify_opts *o, const struct hv_case_result *r,
                    size_t n, hc_error *err);
/* XML-escapes s into a new string (drops characters XML 1.0 cannot hold). */
char *hv_xml_escape(const char *s);

#endif

/*
 * hcat: looks inside recordings and JSON lines: prints messages (JSON lines or CSV), summarises a
 * recording (--info), writes a selection or an import as a new recording (-o), merging several
 * inputs in arrival order, and redacts ids on the way (--redact, --mask). The work is hcat_run
 * so tests can call it; hcat_parse turns argv into options.
 */
#ifndef HCAT_H
#define HCAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"
#include "tool.h"

#define HCAT_MAX_INPUTS 256
#define HCAT_MAX_MASKS 64
#define HCAT_DEFAULT_TOP 10

enum hcat_format { HCAT_FORMAT_JSONL, HCAT_FORMAT_CSV, HCAT_FORMAT_MCAP };

struct hcat_opts {
    const char *inputs[HCAT_MAX_INPUTS];
    size_t n_inputs;
    struct tool_select select;
    char selection_text[2048]; /* the selection options as given, for provenance */
    const char *output;        /* -o: write a recording; NULL: print */
    bool force;
    bool info, json, decode;
    bool check;     /* --check: verify recordings completely */
    bool upgrade;   /* --upgrade: convert recordings to the current schema */
    long top;       /* --top N groups in --info */
    bool top_given; /* --top was on the command line */
    enum hcat_format format;
    bool redact;
    const char *redact_key_file;
    const char *masks[HCAT_MAX_MASKS];
    size_t n_masks;
    bool skip_bad;
    const char *note;   /* --note: replaces the meta note of the output */
    const char *report; /* --report FILE.html: write the report instead of printing */
};

/* Parses argv (prints usage errors, or --help on stdout). */
enum opts_result hcat_parse(int argc, char **argv, struct hcat_opts *o);

struct hcat_summary {
    int64_t messages;    /* written or printed */
    int64_t skipped_bad; /* bad JSON lines skipped (--skip-bad) */
    int64_t sessions;    /* sessions written with -o */
    size_t redacted_ids; /* distinct ids replaced */
    bool random_key;     /* --redact without --redact-key */
    bool interrupted;    /* SIGINT/SIGTERM stopped the copy; what was done is kept */
    bool output_closed;  /* the reader of standard output went away (a normal end) */
};

/*
 * Runs hcat. Data goes to out (stdout in the tool); on failure err holds one line naming the
 * file. HC_ERR_EXISTS for an existing output without --force. A stop signal ends the copy with
 * HC_OK and sum->interrupted (with -o the messages copied so far are written); a pipe on out
 * whose reader went away ends it with HC_OK and sum->output_closed.
 */
hc_err hcat_run(const struct hcat_opts *o, FILE *out, struct hcat_summary *sum, hc_error *err);

/*
 * A sink for the merged message stream other than printing or a recording: MCAP (--format mcap
 * -o) or the HTML report (--report). add takes each selected message in arrival order; finish
 * writes the file (under a temporary name, renamed into place when complete), given the
 * recordings among the inputs for their meta and sessions; free releases it (and removes an
 * unfinished temporary file). Made by hcat_mcap_sink_new / hcat_report_sink_new. A sink whose
 * add is NULL reads no messages: finish takes what it needs from the recordings themselves.
 */
struct hcat_sink {
    hc_err (*add)(struct hcat_sink *s, const struct hc_msg *m, hc_error *err);
    hc_err (*finish)(struct hcat_sink *s, const char *const *recordings, size_t n_recordings,
                     bool interrupted, hc_error *err);
    void (*free)(struct hcat_sink *s);
    int64_t messages; /* without add: the messages finish covered, for the summary line */
};

/* hcat_mcap.c: the MCAP sink for o->output. */
hc_err hcat_mcap_sink_new(const struct hcat_opts *o, struct hcat_sink **out, hc_error *err);

/* hcat_report.c: the HTML report sink for o->report. */
hc_err hcat_report_sink_new(const struct hcat_opts *o, struct hcat_sink **out, hc_error *err);

/*
 * Opens "<path>.hcat-tmp-<pid>" for writing a file that is renamed to path when complete
 * (hcat_output_commit); refuses an existing path without force (HC_ERR_EXISTS).
 */
hc_err hcat_output_begin(const char *path, bool force, char **tmp_out, FILE **f_out, hc_error *err);
/* Closes f (checking the close) and renames tmp to path; on failure removes tmp. Frees tmp. */
hc_err hcat_output_commit(const char *path, char *tmp, FILE *f, hc_error *err);
/* Closes f, removes tmp, frees tmp (after a failure). Accepts NULLs. */
void hcat_output_abandon(char *tmp, FILE *f);

/* Writes one CSV field with RFC 4180 quoting (quoted when it holds , " CR or LF). */
void hcat_csv_field(FILE *out, const char *text, size_t len);

#endif

/*
 * CLI code shared by every hkit tool (target htool, prefix tool_): messages, exit codes, strict
 * value parsing, the shared MQTT connection options, the shared selection options and signals.
 *
 * Checklist for adding a tool (as git's builtin.h keeps one):
 *  1. tools/<tool>/main.c: ~40 lines: tool_init(argv[0]), parse, run, map the result to an exit
 *     code with the table below; finish with tool_finish_stdout().
 *  2. tools/<tool>/<tool>_opts.c: one getopt_long table, usage text that tells the truth,
 *     strict values through tool_parse_*; return OPTS_OK / OPTS_HELP / OPTS_ERROR.
 *  3. tools/<tool>/<tool>.c: the work as a function unit tests can call (<tool>_run).
 *  4. tools/<tool>/CMakeLists.txt: hkit_tool(<tool> <tool>.c <tool>_opts.c).
 *  5. Tests: tests/integration/tNNNN-<tool>-<topic>.sh pinning every argument error's message and
 *     exit status; README section; scripts/demo if it shows what hkit is for.
 */
#ifndef HKIT_TOOL_H
#define HKIT_TOOL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hcore/error.h"
#include "hcore/jsonl.h"
#include "hcore/mqtt.h"
#include "hcore/store.h"

/* One exit-code table for all tools (README "Exit codes", every --help). */
enum tool_exit {
    TOOL_EXIT_OK = 0,       /* success */
    TOOL_EXIT_FAILURE = 1,  /* could not do the job: input, output, broker, decoder failure */
    TOOL_EXIT_USAGE = 2,    /* bad command line */
    TOOL_EXIT_MISMATCH = 3  /* hverify: some outputs differ from the fixtures */
};

#define TOOL_EXIT_CODES_HELP                                                                       \
    "Exit status: 0 success, 1 failure (input, output, broker), 2 usage error,\n"                  \
    "3 verification mismatch (hverify).\n"

/* Result of option parsing; only main maps it to an exit code. */
enum opts_result { OPTS_OK, OPTS_HELP, OPTS_ERROR, OPTS_UNKNOWN };

/* --- messages -------------------------------------------------------------------------------- */

extern const char *tool_name; /* "hrecord" */
extern int tool_verbosity;    /* 0 quiet, 1 normal, 2 verbose */

/* Sets tool_name from argv[0], installs the libcore log callback (stderr, with timestamps). */
void tool_init(const char *argv0);

/* "hrecord: <message>" on stderr. */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only with verbosity >= 1, prefixed with a UTC timestamp. */
void tool_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "<tool>: <message>" and "try '<tool> --help'" on stderr; returns OPTS_ERROR. */
enum opts_result tool_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Flushes stdout and reports a write error (full disk, closed pipe). Returns the exit code. */
int tool_finish_stdout(int code);

/* Maps an hc_err from a run to an exit code. */
int tool_exit_code(hc_err rc);

/* True when stderr is a terminal and verbosity allows live status lines. */
bool tool_status_enabled(void);
/* Rewrites the live status line on stderr (printf-style); tool_status_clear() erases it. */
void tool_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tool_status_clear(void);

/* --- strict values --------------------------------------------------------------------------- */

/* Each returns OPTS_OK or prints "invalid value 'x' for --name: ..." and returns OPTS_ERROR. */
enum opts_result tool_parse_long(const char *option, const char *text, long min, long max,
                                 long *out);
enum opts_result tool_parse_double(const char *option, const char *text, double min, double max,
                                   double *out);
/* Durations: "250ms", "1.5s", "10" (seconds), "5m", "2h", "1d". */
enum opts_result tool_parse_duration_ns(const char *option, const char *text, int64_t *out);

/* --- signals --------------------------------------------------------------------------------- */

extern volatile sig_atomic_t tool_stop_requested; /* set by SIGINT / SIGTERM */
/* Installs SIGINT/SIGTERM handlers that only set the flag; ignores SIGPIPE (write errors are
 * reported by tool_finish_stdout). */
void tool_signals_install(void);

/* --- a reader that went away (tool_pipe.c) -------------------------------------------------- */

/* True when f writes to a pipe or socket whose reading end has been closed. */
bool tool_output_closed(FILE *f);
/* Ends output to f quietly: what is still buffered and every later write go to /dev/null, so
 * tool_finish_stdout reports no error. Use once tool_output_closed(f) said so. */
void tool_output_discard(FILE *f);

/* --- shared MQTT connection options ----------------------------------------------------------- */

struct tool_mqtt {
    const char *url;
    const char *host;
    long port;
    const char *client_id;
    const char *cafile, *capath;
    bool insecure;
    const char *api_key_id;     /* MQTT user name */
    const char *integration_id; /* topic segment, not a credential */
    const char *token_file;
    const char *token_arg; /* --token on the command line (warned about) */
    long keepalive_s;
    /* resolved by tool_mqtt_resolve */
    char *token; /* owned; wiped by tool_mqtt_release */
    char client_id_buf[128];
    char url_buf[300];
};

/* Long-only option ids start here; tools use values >= TOOL_OPT_TOOL_BASE for their own. */
enum {
    TOOL_OPT_URL = 1000,
    TOOL_OPT_CAFILE,
    TOOL_OPT_CAPATH,
    TOOL_OPT_INSECURE,
    TOOL_OPT_API_KEY_ID,
    TOOL_OPT_INTEGRATION_ID,
    TOOL_OPT_TOKEN_FILE,
    TOOL_OPT_TOKEN,
    TOOL_OPT_KEEPALIVE,
    TOOL_OPT_SINCE,
    TOOL_OPT_UNTIL,
    TOOL_OPT_KIND,
    TOOL_OPT_TYPE,
    TOOL_OPT_DEVICE,
    TOOL_OPT_SESSION,
    TOOL_OPT_LIMIT,
    TOOL_OPT_TOOL_BASE = 1100
};

/* getopt_long entries for the shared MQTT options (short: -h host, -p port, -i id, -u user). */
#define TOOL_MQTT_LONG_OPTIONS                                                                     \
    {"url", required_argument, NULL, TOOL_OPT_URL}, {"host", required_argument, NULL, 'h'},        \
        {"port", required_argument, NULL, 'p'}, {"id", required_argument, NULL, 'i'},              \
        {"cafile", required_argument, NULL, TOOL_OPT_CAFILE},                                      \
        {"capath", required_argument, NULL, TOOL_OPT_CAPATH},                                      \
        {"insecure", no_argument, NULL, TOOL_OPT_INSECURE},                                        \
        {"api-key-id", required_argument, NULL, TOOL_OPT_API_KEY_ID},                              \
        {"username", required_argument, NULL, 'u'},                                                \
        {"integration-id", required_argument, NULL, TOOL_OPT_INTEGRATION_ID},                      \
        {"token-file", required_argument, NULL, TOOL_OPT_TOKEN_FILE},                              \
        {"token", required_argument, NULL, TOOL_OPT_TOKEN},                                        \
        {"keepalive", required_argument, NULL, TOOL_OPT_KEEPALIVE}
#define TOOL_MQTT_SHORT_OPTIONS "h:p:i:u:"

/* Usage text for the shared MQTT options (two leading spaces, aligned like the tools'). */
extern const char tool_mqtt_usage[];

/* Handles one shared MQTT option; OPTS_UNKNOWN when opt is not one of them. */
enum opts_result tool_mqtt_option(struct tool_mqtt *m, int opt, const char *arg);

/*
 * Builds connection options: URL from --url or -h/-p (default_url otherwise), credentials from
 * options, then HALTIAN_API_KEY_ID / HALTIAN_API_KEY_TOKEN / HALTIAN_INTEGRATION_ID; a token
 * from --token-file (warns naming the group/other permission bits) or --token (warns: visible to other
 * users); a unique client id "<tool>-<host>-<pid>-<random>" unless -i. Warns on --insecure.
 * Returns OPTS_OK or OPTS_ERROR (message printed).
 */
enum opts_result tool_mqtt_resolve(struct tool_mqtt *m, const char *default_url,
                                   struct hc_mqtt_options *out);

/* Wipes and frees the token. */
void tool_mqtt_release(struct tool_mqtt *m);

/* s as one shell word the user can paste (single-quoted unless plain); a path too long for out
 * becomes '...', never a cut path. */
void tool_shell_quote(char *out, size_t size, const char *s);

/* --- shared selection options (hreplay, hcat) ----------------------------------------------- */

#define TOOL_SELECT_MAX 64

struct tool_select {
    struct hc_select sel;
    const char *since_text, *until_text; /* RFC 3339, or +DURATION from the first message */
    bool since_relative, until_relative;  /* +DURATION: offset from the first message */
    int64_t since_offset_ns, until_offset_ns;
    const char *topics[TOOL_SELECT_MAX];
    const char *kinds[TOOL_SELECT_MAX];
    const char *types[TOOL_SELECT_MAX];
    const char *devices[TOOL_SELECT_MAX];
    int64_t sessions[TOOL_SELECT_MAX];
};

/* getopt_long entries: --since --until -t/--topic --kind --type --device --session --limit. */
#define TOOL_SELECT_LONG_OPTIONS                                                                   \
    {"since", required_argument, NULL, TOOL_OPT_SINCE},                                            \
        {"until", required_argument, NULL, TOOL_OPT_UNTIL},                                        \
        {"topic", required_argument, NULL, 't'}, {"kind", required_argument, NULL, TOOL_OPT_KIND}, \
        {"type", required_argument, NULL, TOOL_OPT_TYPE},                                          \
        {"device", required_argument, NULL, TOOL_OPT_DEVICE},                                      \
        {"session", required_argument, NULL, TOOL_OPT_SESSION},                                    \
        {"limit", required_argument, NULL, TOOL_OPT_LIMIT}
#define TOOL_SELECT_SHORT_OPTIONS "t:"

extern const char tool_select_usage[];

void tool_select_init(struct tool_select *s);

/* Handles one selection option; OPTS_UNKNOWN when opt is not one of them. */
enum opts_result tool_select_option(struct tool_select *s, int opt, const char *arg);

/* dst = src, with dst's list pointers on dst's own arrays (a copy that outlives src). */
void tool_select_copy(struct tool_select *dst, const struct tool_select *src);

/* True when --since or --until is +DURATION, which needs the inputs' first message. */
bool tool_select_is_relative(const struct tool_select *s);

/*
 * The usage check every tool with inputs makes: +DURATION counts from a first message that
 * standard input cannot give twice. Returns OPTS_OK or OPTS_ERROR (usage error printed).
 */
enum opts_result tool_select_check_inputs(const struct tool_select *s, const char *const *paths,
                                          size_t n_paths);

/*
 * Sets --since/--until from their values checked at parse time: an RFC 3339 time as it is, a
 * +DURATION from first_received_at_ns (CLOCK_REALTIME).
 */
void tool_select_resolve(struct tool_select *s, int64_t first_received_at_ns);

/* True when a message read from JSON lines passes the selection (same rules as the store's). */
bool tool_select_matches(const struct tool_select *s, const struct hc_msg *msg);


/* --- one message source for the tools (tool_source.c) ---------------------------------------- */

/*
 * Sets *is_db when path is a recording (SQLite header, or a directory of segments written by
 * hrecord --rotate-*), false for JSON lines (first non-blank
 * byte '{', an empty file, or "-" for standard input). Anything else: HC_ERR_NOT_RECORDING
 * ("'x' is neither an hkit recording nor JSON lines"); unreadable: HC_ERR_IO.
 */
hc_err tool_detect_input(const char *path, bool *is_db, hc_error *err);

/*
 * One input of hcat, hreplay or hverify, recording or JSON lines (a path or "-"), yielding the
 * selected messages in arrival order: a recording selects in SQL (hc_store_query), JSON lines
 * through tool_select_matches, both stopping after --limit messages. A source is read in passes
 * (hreplay --loop): tool_source_rewind starts the next.
 */
typedef struct tool_source tool_source;

enum tool_input_kind {
    TOOL_INPUT_DETECT = 0, /* by content (tool_detect_input) */
    TOOL_INPUT_JSONL,      /* by name: JSON lines whatever the content (hverify's input.jsonl) */
    TOOL_INPUT_RECORDING   /* by name: a recording */
};

struct tool_source_options {
    const struct tool_select *select; /* NULL: every message; borrowed, resolved */
    enum tool_input_kind kind;
    bool skip_bad; /* --skip-bad: JSON lines that are no message are skipped and counted */
};

/* Opens path for its first pass. *out: tool_source_close. */
hc_err tool_source_open(const char *path, const struct tool_source_options *opts,
                        tool_source **out, hc_error *err);

/*
 * Fills *msg (borrowed until the next call) and returns HC_OK; HC_DONE at the end of the pass
 * or after --limit messages; HC_ERR_PARSE for a JSON line that is no message (unless
 * skip_bad: then it is counted and, with -v, shown); HC_ERR_INTERRUPTED when a stop was
 * requested (tool_stop_requested) during a read; another error for an input that fails.
 */
hc_err tool_source_next(tool_source *s, struct hc_msg *msg, hc_error *err);

/* Starts another pass from the first message (a file; standard input cannot be read twice). */
hc_err tool_source_rewind(tool_source *s, hc_error *err);

/* Accepts NULL. */
void tool_source_close(tool_source *s);

bool tool_source_is_recording(const tool_source *s);
/* The recording (meta, sessions), or NULL for JSON lines. Owned by the source. */
hc_store *tool_source_store(const tool_source *s);
/* JSON lines: the record of the message tool_source_next gave last (session start, format);
 * NULL for a recording. Valid until the next call. */
const struct hc_jsonl_record *tool_source_record(const tool_source *s);
const char *tool_source_path(const tool_source *s);
/* JSON lines skipped with skip_bad, on every pass. */
int64_t tool_source_skipped_bad(const tool_source *s);

/* A recording: the number of messages a pass yields. JSON lines: -1 (unknown before reading). */
hc_err tool_source_count(tool_source *s, int64_t *n, hc_error *err);

/* JSON lines: hook(ctx) before a read would block (hc_jsonl_reader_set_wait_hook). */
void tool_source_set_wait_hook(tool_source *s, void (*hook)(void *ctx), void *ctx);

/*
 * Resolves s's --since/--until against the earliest first message of the inputs (a recording's
 * first message, a JSON file's first message, bad lines skipped when skip_bad). Inputs must not
 * include "-" when s is relative (tool_select_check_inputs says so at parse time).
 */
hc_err tool_select_resolve_inputs(struct tool_select *s, const char *const *paths, size_t n_paths,
                                  bool skip_bad, hc_error *err);

#endif

/*
 * hreplay: republishes a recording (.db) or JSON lines to a broker at original, scaled, fixed or
 * maximum speed, with topic rewriting, device fan-out, connection spreading and sharding, and
 * reports how well the schedule was kept.
 */
#ifndef HREPLAY_H
#define HREPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hcore/replay.h"
#include "hcore/sched.h"
#include "tool.h"

#define HREPLAY_MAX_REMAPS 32
#define HREPLAY_DEFAULT_SPIN_NS 50000LL                  /* --spin default: 50 us */
#define HREPLAY_MAX_SPIN_NS 10000000LL                   /* --spin at most 10 ms */
#define HREPLAY_DEFAULT_GIVE_UP_NS (60LL * 1000000000LL) /* --give-up default: 60 s */
#define HREPLAY_DEFAULT_FAULT_SEED 1

/* --observe: where the consumer's outputs are seen. */
enum hreplay_observe {
    HREPLAY_OBSERVE_NONE,
    HREPLAY_OBSERVE_MQTT,
    HREPLAY_OBSERVE_FILE,
    HREPLAY_OBSERVE_STDOUT /* --consumer's stdout lines (its default) */
};

/* --ramp START:STEP:HOLD[:MAX] and what goes with it (hreplay_ramp.c). */
struct hreplay_ramp_opts {
    bool on;
    double start_rate, step_rate; /* msg/s; step_rate > 0 */
    double max_rate;              /* msg/s; 0: until a step fails */
    int64_t hold_ns;              /* each step lasts this long */
    enum hreplay_observe observe;
    const char *observe_target; /* the topic filter or the file path */
    int64_t slo_ns;             /* --slo: p99 latency objective; 0: none */
    const char *report_svg;     /* --report-svg FILE */
    const char *consumer;       /* --consumer CMD: started against a private broker */
    bool broker_plain;          /* --broker plain: that broker offers the consumer plain MQTT */
    int64_t ready_timeout_ns;   /* --ready-timeout: until the consumer has subscribed */
};

struct hreplay_opts {
    const char *input; /* path, "-" for JSON lines on stdin */
    struct tool_mqtt mqtt;
    struct tool_select select;
    struct hc_sched_options sched;
    int qos;           /* -1: as recorded */
    bool retain_never; /* --retain never */
    struct hc_replay_remap remaps[HREPLAY_MAX_REMAPS];
    size_t n_remaps;
    const char *topic_integration_id; /* --integration-id: topic segment 3 */
    const char *topic_api_key_id;     /* --api-key-id: topic segment 4 */
    bool username_given;              /* -u: the MQTT user name is not the api key id */
    bool rebase_time;
    long fanout;      /* K >= 1 */
    long connections; /* N >= 1 */
    long shard_k, shard_n;
    long loops; /* 0: forever */
    long inflight;
    int64_t spin_ns;            /* --spin: busy-wait this long before each due time */
    int64_t give_up_ns;         /* --give-up: stop reconnecting after this long without progress */
    int64_t start_at_ns;        /* --start-at, CLOCK_REALTIME; 0: none */
    const char **merge_reports; /* --merge-reports: the report files (the arguments) */
    size_t n_merge_reports;
    const char *report_json;
    const char *report_html;  /* --report-html FILE: the page of hreplay_html.c */
    const char *lateness_log; /* per-message lateness (ns), one line each */
    /* faults (hcore/faults.h) */
    const char *faults_text;         /* --faults SPEC as given */
    hc_faults *faults;               /* parsed once: hreplay_opts_release frees it */
    uint64_t fault_seed;             /* --seed N (default 1) */
    bool fault_scoped;               /* a --fault-* selection option was given */
    struct tool_select fault_select; /* --fault-type/--fault-device/--fault-kind/--fault-topic */
    const char *fault_log;           /* --fault-log FILE: one JSON line per fault applied */
    bool spin_given;                 /* --spin on the command line (a ramp sleeps unless asked) */
    struct hreplay_ramp_opts ramp;
};

enum opts_result hreplay_parse(int argc, char **argv, struct hreplay_opts *o);
void hreplay_opts_release(struct hreplay_opts *o);

/* Runs the replay; returns an exit code (enum tool_exit). */
int hreplay_run(struct hreplay_opts *o);

/*
 * --ramp: runs the engine (options ro, prepared by hreplay_run) over inner, looped, at each
 * step's rate, watching the consumer; reports per step and the maximum sustainable rate (text on
 * stdout, report_fp as JSON when not NULL: closed here, --report-svg). An exit code.
 */
int hreplay_ramp_run(const struct hreplay_opts *o, struct hc_replay_options *ro,
                     const struct hc_replay_source *inner, FILE *report_fp);

/* --merge-reports: combines shard reports into one (stdout, or --report-json); an exit code. */
int hreplay_merge(const struct hreplay_opts *o);

/* --- --report-html (hreplay_html.c) --------------------------------------------------------- */

#define HREPLAY_HTML_COLUMNS 240

/* Per-time figures of a run, fed from the engine's hooks; fixed size whatever the run. */
struct hreplay_timeline;
hc_err hreplay_timeline_new(struct hreplay_timeline **out, hc_error *err);
/* hooks.handled_at: due_ns 0 under --max; both CLOCK_MONOTONIC. */
void hreplay_timeline_handled(struct hreplay_timeline *tl, int64_t due_ns, int64_t handled_ns);
/* hooks.progress, and once more with the final figures: failures and reconnects since the last
 * call land in now_ns's column. */
void hreplay_timeline_progress(struct hreplay_timeline *tl, const struct hc_replay_stats *s,
                               int64_t now_ns);
void hreplay_timeline_free(struct hreplay_timeline *tl); /* accepts NULL */

/* What the page draws from (all borrowed). A --ramp section adds its steps here. */
struct hreplay_html_page {
    const struct hreplay_opts *o;
    const char *url;  /* the broker */
    const char *mode; /* "original", "speed", "rate", "max" */
    const struct hc_replay_stats *stats;
    bool schedule_kept;
    const struct hreplay_timeline *timeline;
};

/* Writes the whole page to f; false when f reports an error. */
bool hreplay_html_write(FILE *f, const struct hreplay_html_page *p);

#endif

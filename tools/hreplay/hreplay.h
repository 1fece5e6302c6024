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
#define HREPLAY_DEFAULT_SPIN_NS 50000LL /* --spin default: 50 us */
#define HREPLAY_MAX_SPIN_NS 10000000LL  /* --spin at most 10 ms */
#define HREPLAY_DEFAULT_GIVE_UP_NS (60LL * 1000000000LL) /* --give-up default: 60 s */


/* --observe: where the consumer's outputs are seen. */
enum hreplay_observe { HREPLAY_OBSERVE_NONE, HREPLAY_OBSERVE_MQTT, HREPLAY_OBSERVE_FILE };

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
    int64_t spin_ns; /* --spin: busy-wait this long before each due time */
    int64_t give_up_ns; /* --give-up: stop reconnecting after this long without progress */
    int64_t start_at_ns; /* --start-at, CLOCK_REALTIME; 0: none */
    const char **merge_reports; /* --merge-reports: the report files (the arguments) */
    size_t n_merge_reports;
    const char *report_json;
    const char *lateness_log; /* per-message lateness (ns), one line each */
    bool spin_given;          /* --spin on the command line (a ramp sleeps unless asked) */
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

#endif

/*
 * hreplay's command line: one getopt_long table (shared MQTT and selection options included),
 * the usage text, and strict parsing of every value.
 */
#include "hreplay.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/timefmt.h"
#include "hcore/topic.h"

enum {
    OPT_SPEED = TOOL_OPT_TOOL_BASE,
    OPT_RATE,
    OPT_MAX,
    OPT_MAX_GAP,
    OPT_LOOP,
    OPT_INFLIGHT,
    OPT_SPIN,
    OPT_RETAIN,
    OPT_REMAP,
    OPT_REBASE_TIME,
    OPT_FANOUT,
    OPT_CONNECTIONS,
    OPT_SHARD,
    OPT_REPORT_JSON,
    OPT_REPORT_HTML,
    OPT_LATENESS_LOG,
    OPT_GIVE_UP,
    OPT_START_AT,
    OPT_MERGE_REPORTS,
    OPT_FAULTS,
    OPT_SEED,
    OPT_FAULT_LOG,
    OPT_FAULT_TYPE,
    OPT_FAULT_DEVICE,
    OPT_FAULT_KIND,
    OPT_FAULT_TOPIC,
    OPT_RAMP,
    OPT_OBSERVE,
    OPT_SLO,
    OPT_CONSUMER,
    OPT_BROKER,
    OPT_READY_TIMEOUT,
    OPT_REPORT_SVG,
    OPT_QUIET,
    OPT_HELP
};

static const char usage[] =
    "Usage: hreplay [OPTION]... INPUT\n"
    "Republish a recording (.db) or JSON lines (INPUT, '-' for standard input) to an MQTT\n"
    "broker, on the recorded schedule or faster, and report how well the schedule was kept.\n"
    "Payload bytes, QoS and retain flags are sent as recorded; per-device order is kept.\n"
    "\n"
    "Timing (default: the recorded timing):\n"
    "  --speed X             X times faster than recorded (0.5 = half speed)\n"
    "  --rate N              N messages per second, evenly spaced\n"
    "  --max                 as fast as the broker accepts (bounded by --inflight)\n"
    "  --max-gap DURATION    cap every idle gap at DURATION (e.g. 5s), also between sessions\n"
    "  --loop N              replay N times (0 = until interrupted; default 1); each pass\n"
    "                        continues the schedule one mean message interval after the last\n"
    "  --inflight N          unacknowledged QoS 1/2 messages per connection (default 1000)\n"
    "  --spin DURATION       busy-wait the last DURATION before each due time instead of\n"
    "                        sleeping (default 50us: a few us late, at the cost of CPU);\n"
    "                        0 sleeps all the way (typically 50-100 us late)\n"
    "\n"
    "Output:\n"
    "  -q, --qos QOS         publish every message at QOS (0-2) instead of as recorded\n"
    "  --retain keep|never   keep the recorded retain flags (default) or clear them all\n"
    "  --remap FROM=TO       replace the leading topic levels that FROM matches with TO;\n"
    "                        FROM is a topic filter ('+' one level, a final '#' the rest),\n"
    "                        matched on whole levels; a trailing '/' on FROM or TO is\n"
    "                        ignored (repeatable; the first match wins)\n"
    "  --integration-id ID   replace segment 3 of haltian-iot/events/... topics with ID\n"
    "  --api-key-id ID       replace segment 4 of haltian-iot/events/... topics with ID; also\n"
    "                        the MQTT user name unless -u is given\n"
    "  --rebase-time         rewrite \"measured_at\"/\"received_at\" in JSON payloads to the send\n"
    "                        time plus their recorded offset (payload bytes then change)\n"
    "\n"
    "Load:\n"
    "  --fanout K            replay each device as K devices (copy 1 keeps the real id, the\n"
    "                        others get stable derived UUID-shaped ids)\n"
    "  --connections N       spread devices over N connections by device hash (default 1)\n"
    "  --shard K/N           replay only shard K (1..N) of N device shards\n"
    "  --give-up DURATION    stop reconnecting after DURATION without progress (default 60s)\n"
    "  --start-at TIME       start the schedule at TIME (RFC 3339, or +DURATION from now), the\n"
    "                        same instant for every shard; refused when over 1 s in the past\n"
    "  --merge-reports       the arguments are --report-json files of shards: print one report\n"
    "                        with exact totals and percentiles from the merged histograms\n"
    "\n";

/* printed after usage: one string literal would pass the length C99 promises to support */
static const char usage_faults[] =
    "Faults (see docs/faults.md; the same input, spec and seed give the same\n"
    "stream):\n"
    "  --faults SPEC         perturb the stream: comma-separated KIND=P[:key=value]... items:\n"
    "                        drop=P[:burst=B] dup=P[:after=N] redeliver=P\n"
    "                        reorder=P[:window=K][:scope=device] delay=P:by=DURATION\n"
    "                        stale=P:by=DURATION future=P:by=DURATION skew=DURATION\n"
    "                        corrupt=P disconnect=P|every:DURATION retain=P\n"
    "                        backlog=P:hold=DURATION (P: probability per message, 0 to 1)\n"
    "  --seed N              seed of every fault decision (default 1)\n"
    "  --fault-type TYPE     fault only these measurement types (repeatable; likewise\n"
    "  --fault-device ID     --fault-device, --fault-kind and --fault-topic FILTER; the\n"
    "  --fault-kind KIND     rest go out untouched)\n"
    "  --fault-topic FILTER\n"
    "  --fault-log FILE      one JSON line per fault applied: input seq, kind, parameters,\n"
    "                        where the message landed, what changed\n"
    "\n"
    "Load-testing a consumer (see 'Ramps' below):\n"
    "  --ramp START:STEP:HOLD[:MAX]\n"
    "                        send START msg/s for HOLD, then START+STEP, ... up to MAX (or\n"
    "                        until a step fails), looping over INPUT with fresh timestamps\n"
    "  --observe mqtt:FILTER the consumer's outputs: a topic filter on the same broker,\n"
    "  --observe file:PATH   or a file it appends lines to (read as it grows)\n"
    "  --consumer CMD        start the consumer (/bin/sh -c CMD) against a private broker\n"
    "                        (Mosquitto, TLS, the consumer's credentials in HALTIAN_MQTT_HOST,\n"
    "                        HALTIAN_MQTT_PORT, HALTIAN_MQTT_URL, HALTIAN_API_KEY_ID,\n"
    "                        HALTIAN_API_KEY_TOKEN, HALTIAN_INTEGRATION_ID, HKIT_CAFILE and\n"
    "                        the placeholders {host} {port} {url} {cafile} {api_key_id}\n"
    "                        {integration_id} {token_file}); the ramp starts once it has\n"
    "                        subscribed; its stdout lines are its outputs unless --observe\n"
    "  --broker plain        that broker offers the consumer plain MQTT instead of TLS\n"
    "  --ready-timeout DURATION\n"
    "                        how long the consumer may take to subscribe (default 10s)\n"
    "  --slo DURATION        a step also fails when p99 latency through the consumer exceeds\n"
    "                        DURATION (e.g. 50ms)\n"
    "  --report-svg FILE     draw rate in vs rate out, backlog and latency per step\n"
    "\n"
    "Reporting:\n"
    "  --report-json FILE    write the final report as JSON to FILE (created at the start)\n"
    "  --report-html FILE    write a self-contained HTML page to FILE (created at the start):\n"
    "                        the figures, rate achieved vs scheduled and lateness over time,\n"
    "                        failures and reconnects marked\n"
    "  --lateness-log FILE   write each message's lateness in ns, one line per message\n"
    "  -v, --verbose         more diagnostics\n"
    "  --quiet               no progress line, no report on stderr (errors still shown)\n"
    "  --help                show this help\n"
    "\n"
    "Broker connection (default mqtt://localhost:1883; -u is the user name):\n";

static const char usage_tail[] =
    "\n"
    "The report (stderr, and --report-json) gives messages sent and failed, the achieved rate,\n"
    "lateness p50/p99/max in microseconds and whether the schedule was kept (p99 lateness\n"
    "under 1 ms). A lost connection is re-established with backoff; QoS 1/2 messages resume\n"
    "from the first unacknowledged one, QoS 0 losses are counted as possible. After two\n"
    "connections lost without progress, messages are resent one at a time, and the one the\n"
    "broker closes the connection on fails; a broker that takes no message for --give-up\n"
    "(default 60s; also when it stays connected but acknowledges nothing for --keepalive\n"
    "seconds) ends the replay.\n"
    "Messages that cannot be published (an invalid topic) fail one by one. Failed messages are\n"
    "counted and make the exit status 1. Ctrl-C stops within a second and prints the report.\n"
    "\n"
    "Ramps: each step is judged from the consumer's outputs: the rate in (hreplay's own, with\n"
    "its lateness), the rate out, the backlog (inputs delivered - outputs seen) and its slope,\n"
    "latency through the consumer (outputs matched to inputs by device id and measured_at,\n"
    "else by position), and the broker's $SYS dropped and stored counters (Mosquitto updates\n"
    "them every sys_interval seconds: 10 by default; set 1 for short steps). A step kept up,\n"
    "fell behind, dropped, or its rate was not reached (hreplay or the broker, never the\n"
    "consumer, is then blamed). The table goes to stdout, with the maximum sustainable rate\n"
    "and what limited the run: consumer, broker, generator or none.\n" TOOL_EXIT_CODES_HELP;

static void print_usage(void)
{
    fputs(usage, stdout);
    fputs(usage_faults, stdout);
    /* the shared text starts with its own heading line: skip it */
    const char *body = strchr(tool_mqtt_usage, '\n');
    fputs(body ? body + 1 : tool_mqtt_usage, stdout);
    fputs("\n", stdout);
    fputs(tool_select_usage, stdout);
    fputs(usage_tail, stdout);
}

/*
 * --remap FROM=TO: FROM a topic filter (its levels are matched whole), TO empty (drop those
 * levels) or levels of a valid topic name. The option text is split in place.
 */
static enum opts_result parse_remap(char *arg, struct hreplay_opts *o)
{
    char *eq = strchr(arg, '=');
    hc_error err = HC_ERROR_INIT;

    if (!eq || eq == arg)
        return tool_usage_error("invalid value '%s' for --remap: expected FROM=TO with a "
                                "non-empty FROM",
                                arg);
    if (o->n_remaps >= HREPLAY_MAX_REMAPS)
        return tool_usage_error("too many --remap options (at most %d)", HREPLAY_MAX_REMAPS);
    *eq = '\0';
    /* "a/b/" names the levels a and b, as a user means it: a trailing '/' is dropped */
    if (eq - arg > 1 && eq[-1] == '/')
        eq[-1] = '\0';
    if (strlen(eq + 1) > 1 && eq[strlen(eq + 1)] == '/')
        eq[strlen(eq + 1)] = '\0';
    if (hc_topic_filter_validate(arg, &err) != HC_OK) {
        *eq = '=';
        return tool_usage_error("invalid FROM for --remap: %s", err.message);
    }
    if (eq[1] && hc_topic_name_validate(eq + 1, &err) != HC_OK) {
        *eq = '=';
        return tool_usage_error("invalid TO for --remap: %s", err.message);
    }
    o->remaps[o->n_remaps].from = arg;
    o->remaps[o->n_remaps].to = eq + 1;
    o->n_remaps++;
    return OPTS_OK;
}

/* --start-at: an RFC 3339 time or +DURATION from now; a second of slack for slow starts. */
static enum opts_result parse_start_at(const char *arg, struct hreplay_opts *o)
{
    int64_t now = hc_time_realtime_ns(), at;

    if (arg[0] == '+') {
        int64_t d;
        if (tool_parse_duration_ns("--start-at", arg + 1, &d) != OPTS_OK)
            return OPTS_ERROR;
        at = now + d;
    } else if (hc_time_parse_rfc3339(arg, strlen(arg), &at, NULL) != HC_OK) {
        return tool_usage_error("invalid value '%s' for --start-at: expected an RFC 3339 time "
                                "or +DURATION",
                                arg);
    }
    if (at < now - 1000000000LL)
        return tool_usage_error("invalid value '%s' for --start-at: %.1f s in the past", arg,
                                (double)(now - at) / 1e9);
    o->start_at_ns = at;
    return OPTS_OK;
}

static enum opts_result parse_shard(const char *arg, struct hreplay_opts *o)
{
    char *end;
    long k, n;

    k = strtol(arg, &end, 10);
    if (end == arg || *end != '/')
        goto bad;
    n = strtol(end + 1, &end, 10);
    if (*end || n < 1 || n > 65536 || k < 1 || k > n)
        goto bad;
    o->shard_k = k;
    o->shard_n = n;
    return OPTS_OK;
bad:
    return tool_usage_error("invalid value '%s' for --shard: expected K/N with 1 <= K <= N "
                            "(e.g. 2/4)",
                            arg);
}

/* --faults, --seed, --fault-log and the --fault-* selection. */
static enum opts_result parse_fault_option(int opt, const char *arg, struct hreplay_opts *o)
{
    static const struct {
        int opt, select_opt;
        const char *name;
    } scope[] = {{OPT_FAULT_TYPE, TOOL_OPT_TYPE, "--fault-type"},
                 {OPT_FAULT_DEVICE, TOOL_OPT_DEVICE, "--fault-device"},
                 {OPT_FAULT_KIND, TOOL_OPT_KIND, "--fault-kind"},
                 {OPT_FAULT_TOPIC, 't', "--fault-topic"}};
    hc_error err = HC_ERROR_INIT;
    char *end;

    switch (opt) {
    case OPT_FAULTS:
        if (o->faults)
            return tool_usage_error("--faults is given twice (put every item in one spec)");
        if (hc_faults_parse(arg, &o->faults, &err) != HC_OK)
            return tool_usage_error("invalid value for --faults: %s", err.message);
        o->faults_text = arg;
        return OPTS_OK;
    case OPT_SEED:
        errno = 0;
        o->fault_seed = strtoull(arg, &end, 10);
        if (!*arg || *arg < '0' || *arg > '9' || *end || errno)
            return tool_usage_error("invalid value '%s' for --seed: expected a whole number "
                                    "from 0 to 18446744073709551615",
                                    arg);
        return OPTS_OK;
    case OPT_FAULT_LOG:
        o->fault_log = arg;
        return OPTS_OK;
    default:
        break;
    }
    for (size_t i = 0; i < sizeof(scope) / sizeof(scope[0]); i++) {
        if (scope[i].opt != opt)
            continue;
        if (!*arg)
            return tool_usage_error("invalid value '' for %s: must not be empty", scope[i].name);
        o->fault_scoped = true;
        return tool_select_option(&o->fault_select, scope[i].select_opt, arg);
    }
    return OPTS_UNKNOWN;
}

static void set_defaults(struct hreplay_opts *o)
{
    memset(o, 0, sizeof(*o));
    tool_select_init(&o->select);
    tool_select_init(&o->fault_select);
    o->fault_seed = HREPLAY_DEFAULT_FAULT_SEED;
    o->qos = -1;
    o->fanout = 1;
    o->connections = 1;
    o->loops = 1;
    o->inflight = 1000;
    o->give_up_ns = HREPLAY_DEFAULT_GIVE_UP_NS;
    o->spin_ns = HREPLAY_DEFAULT_SPIN_NS;
    o->sched.mode = HC_SCHED_ORIGINAL;
}

/* The shared MQTT and selection options; the ids are also topic levels (checked as such).
 * OPTS_UNKNOWN for hreplay's own options. */
static enum opts_result parse_shared(struct hreplay_opts *o, int opt, const char *arg,
                                     const char **username)
{
    hc_error err = HC_ERROR_INIT;
    enum opts_result r;

    if (opt == 'u')
        *username = arg;
    else if ((opt == TOOL_OPT_API_KEY_ID || opt == TOOL_OPT_INTEGRATION_ID) &&
             hc_topic_level_validate(arg, &err) != HC_OK)
        return tool_usage_error("invalid value for %s: %s",
                                opt == TOOL_OPT_API_KEY_ID ? "--api-key-id" : "--integration-id",
                                err.message);
    else if (opt == TOOL_OPT_API_KEY_ID)
        o->topic_api_key_id = arg;
    else if (opt == TOOL_OPT_INTEGRATION_ID)
        o->topic_integration_id = arg;
    r = tool_mqtt_option(&o->mqtt, opt, arg);
    return r == OPTS_UNKNOWN ? tool_select_option(&o->select, opt, arg) : r;
}

/*
 * --ramp START:STEP:HOLD[:MAX]: rates in msg/s (STEP > 0, MAX >= START), HOLD a duration of at
 * least 500 ms (the backlog needs samples to have a slope).
 */
static enum opts_result parse_ramp(const char *arg, struct hreplay_ramp_opts *r)
{
    char text[200], *field[5], *save = NULL, *p, *end;
    double rates[3] = {0, 0, 0};
    size_t n = 0;

    if (strlen(arg) >= sizeof(text))
        goto bad;
    memcpy(text, arg, strlen(arg) + 1);
    for (p = strtok_r(text, ":", &save); p && n < 5; p = strtok_r(NULL, ":", &save))
        field[n++] = p;
    if ((n != 3 && n != 4) || arg[0] == ':' || strstr(arg, "::") || arg[strlen(arg) - 1] == ':')
        goto bad;
    for (size_t i = 0; i < n; i++) {
        size_t at = i < 2 ? i : 2;
        if (i == 2)
            continue;
        errno = 0;
        rates[at] = strtod(field[i], &end);
        if (errno || end == field[i] || *end || !(rates[at] >= 0) || rates[at] > 1e7)
            goto bad;
    }
    r->start_rate = rates[0];
    r->step_rate = rates[1];
    if (n == 4) {
        errno = 0;
        r->max_rate = strtod(field[3], &end);
        if (errno || end == field[3] || *end || !(r->max_rate > 0) || r->max_rate > 1e7)
            goto bad;
    }
    if (!(r->start_rate > 0))
        return tool_usage_error("invalid value '%s' for --ramp: START must be above 0", arg);
    if (!(r->step_rate > 0))
        return tool_usage_error("invalid value '%s' for --ramp: STEP must be above 0", arg);
    if (n == 4 && r->max_rate < r->start_rate)
        return tool_usage_error("invalid value '%s' for --ramp: MAX is below START", arg);
    if (tool_parse_duration_ns("--ramp", field[2], &r->hold_ns) != OPTS_OK)
        return OPTS_ERROR;
    if (r->hold_ns < 500000000LL)
        return tool_usage_error("invalid value '%s' for --ramp: HOLD must be at least 500ms", arg);
    r->on = true;
    return OPTS_OK;
bad:
    return tool_usage_error("invalid value '%s' for --ramp: expected START:STEP:HOLD[:MAX] "
                            "(msg/s, msg/s, a duration, msg/s; e.g. 100:50:5s:1000)",
                            arg);
}

/* --observe mqtt:FILTER | file:PATH */
static enum opts_result parse_observe(const char *arg, struct hreplay_ramp_opts *r)
{
    hc_error err = HC_ERROR_INIT;

    if (strncmp(arg, "mqtt:", 5) == 0 && arg[5]) {
        if (hc_topic_filter_validate(arg + 5, &err) != HC_OK)
            return tool_usage_error("invalid value '%s' for --observe: %s", arg, err.message);
        r->observe = HREPLAY_OBSERVE_MQTT;
    } else if (strncmp(arg, "file:", 5) == 0 && arg[5]) {
        r->observe = HREPLAY_OBSERVE_FILE;
    } else {
        return tool_usage_error("invalid value '%s' for --observe: expected mqtt:FILTER or "
                                "file:PATH",
                                arg);
    }
    r->observe_target = arg + 5;
    return OPTS_OK;
}

/* What the loop notes beyond the options themselves, for the checks after it. */
struct parse_state {
    const char *username;    /* -u, else --api-key-id is the MQTT user name */
    const char *mode_option; /* --speed, --rate, --max or --ramp: the one schedule chosen */
    bool merge;              /* --merge-reports: the arguments are reports */
    bool loop_given;         /* --loop, even --loop 1 (--ramp refuses it) */
    bool seed_given;         /* --seed (or --faults, which makes the check moot) */
};

/* --speed, --rate and --max pick the schedule; one of them, given any number of times. */
static enum opts_result parse_mode(int opt, const char *arg, struct hreplay_opts *o,
                                   struct parse_state *st)
{
    const char *name = opt == OPT_SPEED ? "--speed" : opt == OPT_RATE ? "--rate" : "--max";

    if (st->mode_option && strcmp(st->mode_option, name) != 0)
        return tool_usage_error("%s and %s cannot be combined", st->mode_option, name);
    st->mode_option = name;
    if (opt == OPT_SPEED) {
        if (tool_parse_double("--speed", arg, 1e-9, 1e9, &o->sched.speed) != OPTS_OK)
            return OPTS_ERROR;
        o->sched.mode = HC_SCHED_SPEED;
    } else if (opt == OPT_RATE) {
        if (tool_parse_double("--rate", arg, 1e-6, 1e9, &o->sched.rate) != OPTS_OK)
            return OPTS_ERROR;
        o->sched.mode = HC_SCHED_RATE;
    } else {
        o->sched.mode = HC_SCHED_MAX;
    }
    return OPTS_OK;
}

/* The "Timing" options of the help; OPTS_UNKNOWN for the others. */
static enum opts_result parse_timing_option(int opt, const char *arg, struct hreplay_opts *o,
                                            struct parse_state *st)
{
    switch (opt) {
    case OPT_SPEED:
    case OPT_RATE:
    case OPT_MAX:
        return parse_mode(opt, arg, o, st);
    case OPT_MAX_GAP:
        if (tool_parse_duration_ns("--max-gap", arg, &o->sched.max_gap_ns) != OPTS_OK)
            return OPTS_ERROR;
        if (o->sched.max_gap_ns <= 0)
            return tool_usage_error("invalid value '%s' for --max-gap: must be above 0", arg);
        return OPTS_OK;
    case OPT_LOOP:
        if (tool_parse_long("--loop", arg, 0, 1000000000L, &o->loops) != OPTS_OK)
            return OPTS_ERROR;
        st->loop_given = true;
        return OPTS_OK;
    case OPT_INFLIGHT:
        return tool_parse_long("--inflight", arg, 1, 65535, &o->inflight);
    case OPT_SPIN:
        if (tool_parse_duration_ns("--spin", arg, &o->spin_ns) != OPTS_OK)
            return OPTS_ERROR;
        if (o->spin_ns > HREPLAY_MAX_SPIN_NS)
            return tool_usage_error("invalid value '%s' for --spin: at most 10ms", arg);
        o->spin_given = true;
        return OPTS_OK;
    default:
        return OPTS_UNKNOWN;
    }
}

/* The "Output" options of the help (-q, --retain, --remap, --rebase-time); OPTS_UNKNOWN else. */
static enum opts_result parse_output_option(int opt, char *arg, struct hreplay_opts *o)
{
    long v;

    switch (opt) {
    case 'q':
        if (tool_parse_long("--qos", arg, 0, 2, &v) != OPTS_OK)
            return OPTS_ERROR;
        o->qos = (int)v;
        return OPTS_OK;
    case OPT_RETAIN:
        if (strcmp(arg, "keep") == 0)
            o->retain_never = false;
        else if (strcmp(arg, "never") == 0)
            o->retain_never = true;
        else
            return tool_usage_error("invalid value '%s' for --retain: expected keep or never", arg);
        return OPTS_OK;
    case OPT_REMAP:
        return parse_remap(arg, o);
    case OPT_REBASE_TIME:
        o->rebase_time = true;
        return OPTS_OK;
    default:
        return OPTS_UNKNOWN;
    }
}

/* The "Load" options of the help; OPTS_UNKNOWN for the others. */
static enum opts_result parse_load_option(int opt, const char *arg, struct hreplay_opts *o,
                                          struct parse_state *st)
{
    switch (opt) {
    case OPT_FANOUT:
        return tool_parse_long("--fanout", arg, 1, 1000000L, &o->fanout);
    case OPT_CONNECTIONS:
        return tool_parse_long("--connections", arg, 1, 256, &o->connections);
    case OPT_SHARD:
        return parse_shard(arg, o);
    case OPT_GIVE_UP:
        if (tool_parse_duration_ns("--give-up", arg, &o->give_up_ns) != OPTS_OK)
            return OPTS_ERROR;
        if (o->give_up_ns < 1000000000LL)
            return tool_usage_error("invalid value '%s' for --give-up: at least 1s", arg);
        return OPTS_OK;
    case OPT_START_AT:
        return parse_start_at(arg, o);
    case OPT_MERGE_REPORTS:
        st->merge = true;
        return OPTS_OK;
    default:
        return OPTS_UNKNOWN;
    }
}

/* The options of a ramp against a consumer; OPTS_UNKNOWN for the others. */
static enum opts_result parse_ramp_option(int opt, const char *arg, struct hreplay_opts *o,
                                          struct parse_state *st)
{
    switch (opt) {
    case OPT_RAMP:
        if (st->mode_option && strcmp(st->mode_option, "--ramp") != 0)
            return tool_usage_error("%s and --ramp cannot be combined", st->mode_option);
        st->mode_option = "--ramp";
        return parse_ramp(arg, &o->ramp);
    case OPT_OBSERVE:
        return parse_observe(arg, &o->ramp);
    case OPT_CONSUMER:
        if (!*arg)
            return tool_usage_error("invalid value '' for --consumer: an empty command");
        o->ramp.consumer = arg;
        return OPTS_OK;
    case OPT_BROKER:
        if (strcmp(arg, "plain") != 0 && strcmp(arg, "tls") != 0)
            return tool_usage_error("invalid value '%s' for --broker: expected plain or tls", arg);
        o->ramp.broker_plain = strcmp(arg, "plain") == 0;
        return OPTS_OK;
    case OPT_READY_TIMEOUT:
        if (tool_parse_duration_ns("--ready-timeout", arg, &o->ramp.ready_timeout_ns) != OPTS_OK)
            return OPTS_ERROR;
        if (o->ramp.ready_timeout_ns <= 0)
            return tool_usage_error("invalid value '%s' for --ready-timeout: must be above 0", arg);
        return OPTS_OK;
    case OPT_SLO:
        if (tool_parse_duration_ns("--slo", arg, &o->ramp.slo_ns) != OPTS_OK)
            return OPTS_ERROR;
        if (o->ramp.slo_ns <= 0)
            return tool_usage_error("invalid value '%s' for --slo: must be above 0", arg);
        return OPTS_OK;
    case OPT_REPORT_SVG:
        o->ramp.report_svg = arg;
        return OPTS_OK;
    default:
        return OPTS_UNKNOWN;
    }
}

/* The "Reporting" options of the help (--help prints the usage); OPTS_UNKNOWN for the others. */
static enum opts_result parse_reporting_option(int opt, const char *arg, struct hreplay_opts *o)
{
    switch (opt) {
    case OPT_REPORT_JSON:
        o->report_json = arg;
        return OPTS_OK;
    case OPT_REPORT_HTML:
        o->report_html = arg;
        return OPTS_OK;
    case OPT_LATENESS_LOG:
        o->lateness_log = arg;
        return OPTS_OK;
    case 'v':
        tool_verbosity = 2;
        return OPTS_OK;
    case OPT_QUIET:
        tool_verbosity = 0;
        return OPTS_OK;
    case OPT_HELP:
        print_usage();
        return OPTS_HELP;
    default:
        return OPTS_UNKNOWN;
    }
}

/*
 * One of hreplay's own options (the shared ones are parse_shared's): its value checked and
 * stored. OPTS_HELP after printing the usage, OPTS_UNKNOWN when opt is none of them.
 */
static enum opts_result parse_one(int opt, char *arg, struct hreplay_opts *o,
                                  struct parse_state *st)
{
    enum opts_result r = parse_timing_option(opt, arg, o, st);

    if (r == OPTS_UNKNOWN)
        r = parse_output_option(opt, arg, o);
    if (r == OPTS_UNKNOWN)
        r = parse_load_option(opt, arg, o, st);
    if (r == OPTS_UNKNOWN) {
        if (opt == OPT_FAULTS || opt == OPT_SEED)
            st->seed_given = true;
        r = parse_fault_option(opt, arg, o);
    }
    if (r == OPTS_UNKNOWN)
        r = parse_ramp_option(opt, arg, o, st);
    if (r == OPTS_UNKNOWN)
        r = parse_reporting_option(opt, arg, o);
    return r;
}

/* --merge-reports: the arguments are the reports; no replay, so nothing else is checked. */
static enum opts_result validate_merge(struct hreplay_opts *o, int argc, char **argv, int first)
{
    if (first >= argc)
        return tool_usage_error("--merge-reports needs the report files to merge");
    if (o->report_html)
        return tool_usage_error("--report-html describes a replay; it cannot be combined "
                                "with --merge-reports");
    o->merge_reports = (const char **)(argv + first);
    o->n_merge_reports = (size_t)(argc - first);
    return OPTS_OK;
}

/* Exactly one input, which --loop must be able to read again. */
static enum opts_result validate_input(struct hreplay_opts *o, int argc, char **argv, int first)
{
    if (first >= argc)
        return tool_usage_error("no input given (a recording .db, JSON lines, or '-')");
    if (first + 1 < argc)
        return tool_usage_error("unexpected argument '%s' (one input at a time)", argv[first + 1]);
    o->input = argv[first];
    if (o->loops != 1 && strcmp(o->input, "-") == 0)
        return tool_usage_error("--loop needs a file: standard input can be read only once");
    return tool_select_check_inputs(&o->select, &o->input, 1);
}

/*
 * What --ramp needs and what it cannot be combined with; without --observe, a consumer's
 * outputs are its stdout lines.
 */
static enum opts_result validate_ramp(struct hreplay_opts *o, bool loop_given)
{
    struct hreplay_ramp_opts *r = &o->ramp;

    if (!r->on) {
        if (r->observe != HREPLAY_OBSERVE_NONE)
            return tool_usage_error("--observe needs --ramp");
        if (r->slo_ns)
            return tool_usage_error("--slo needs --ramp");
        if (r->report_svg)
            return tool_usage_error("--report-svg needs --ramp");
        if (r->consumer || r->broker_plain || r->ready_timeout_ns)
            return tool_usage_error("%s needs --ramp", r->consumer       ? "--consumer"
                                                       : r->broker_plain ? "--broker"
                                                                         : "--ready-timeout");
        return OPTS_OK;
    }
    if (!r->consumer && (r->broker_plain || r->ready_timeout_ns))
        return tool_usage_error("%s needs --consumer",
                                r->broker_plain ? "--broker" : "--ready-timeout");
    if (r->consumer && (o->mqtt.url || o->mqtt.host || o->mqtt.port))
        return tool_usage_error("--consumer starts its own broker: it cannot be combined with "
                                "%s",
                                o->mqtt.url    ? "--url"
                                : o->mqtt.host ? "-h/--host"
                                               : "-p/--port");
    if (!r->consumer && r->observe == HREPLAY_OBSERVE_NONE) /* --consumer: its stdout */
        return tool_usage_error("--ramp needs --observe mqtt:FILTER or --observe file:PATH (where "
                                "the consumer's outputs appear)");
    if (strcmp(o->input, "-") == 0)
        return tool_usage_error("--ramp needs a file: standard input can be read only once");
    if (loop_given)
        return tool_usage_error("--ramp cannot be combined with --loop (the ramp repeats the "
                                "input itself)");
    if (o->sched.max_gap_ns)
        return tool_usage_error("--ramp cannot be combined with --max-gap");
    if (o->shard_n > 1 || o->start_at_ns)
        return tool_usage_error("--ramp cannot be combined with %s",
                                o->shard_n > 1 ? "--shard" : "--start-at");
    if (r->consumer && r->observe == HREPLAY_OBSERVE_NONE) {
        r->observe = HREPLAY_OBSERVE_STDOUT;
        r->observe_target = r->consumer;
    }
    return OPTS_OK;
}

/* --max-gap needs recorded timing; the --fault-* options, --fault-log and --seed need --faults. */
static enum opts_result validate_schedule_and_faults(const struct hreplay_opts *o,
                                                     const struct parse_state *st)
{
    if (o->sched.max_gap_ns && (o->sched.mode == HC_SCHED_RATE || o->sched.mode == HC_SCHED_MAX))
        return tool_usage_error("--max-gap applies to recorded timing; it cannot be combined with "
                                "%s",
                                st->mode_option);
    if (!o->faults && (o->fault_scoped || o->fault_log || st->seed_given))
        return tool_usage_error("%s needs --faults",
                                st->seed_given ? "--seed"
                                : o->fault_log ? "--fault-log"
                                               : "--fault-type/--fault-device/--fault-kind/"
                                                 "--fault-topic");
    return OPTS_OK;
}

enum opts_result hreplay_parse(int argc, char **argv, struct hreplay_opts *o)
{
    static const struct option longopts[] = {
        TOOL_MQTT_LONG_OPTIONS,
        TOOL_SELECT_LONG_OPTIONS,
        {"speed", required_argument, NULL, OPT_SPEED},
        {"rate", required_argument, NULL, OPT_RATE},
        {"max", no_argument, NULL, OPT_MAX},
        {"max-gap", required_argument, NULL, OPT_MAX_GAP},
        {"loop", required_argument, NULL, OPT_LOOP},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"spin", required_argument, NULL, OPT_SPIN},
        {"qos", required_argument, NULL, 'q'},
        {"retain", required_argument, NULL, OPT_RETAIN},
        {"remap", required_argument, NULL, OPT_REMAP},
        {"rebase-time", no_argument, NULL, OPT_REBASE_TIME},
        {"fanout", required_argument, NULL, OPT_FANOUT},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"report-json", required_argument, NULL, OPT_REPORT_JSON},
        {"report-html", required_argument, NULL, OPT_REPORT_HTML},
        {"lateness-log", required_argument, NULL, OPT_LATENESS_LOG},
        {"give-up", required_argument, NULL, OPT_GIVE_UP},
        {"start-at", required_argument, NULL, OPT_START_AT},
        {"merge-reports", no_argument, NULL, OPT_MERGE_REPORTS},
        {"faults", required_argument, NULL, OPT_FAULTS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"fault-log", required_argument, NULL, OPT_FAULT_LOG},
        {"fault-type", required_argument, NULL, OPT_FAULT_TYPE},
        {"fault-device", required_argument, NULL, OPT_FAULT_DEVICE},
        {"fault-kind", required_argument, NULL, OPT_FAULT_KIND},
        {"fault-topic", required_argument, NULL, OPT_FAULT_TOPIC},
        {"ramp", required_argument, NULL, OPT_RAMP},
        {"observe", required_argument, NULL, OPT_OBSERVE},
        {"consumer", required_argument, NULL, OPT_CONSUMER},
        {"broker", required_argument, NULL, OPT_BROKER},
        {"ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT},
        {"slo", required_argument, NULL, OPT_SLO},
        {"report-svg", required_argument, NULL, OPT_REPORT_SVG},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    struct parse_state st = {0};
    int opt;

    set_defaults(o);
    opterr = 0;
    optind = 1;

    while (
        (opt = getopt_long(argc, argv, ":" TOOL_MQTT_SHORT_OPTIONS TOOL_SELECT_SHORT_OPTIONS "q:v",
                           longopts, NULL)) != -1) {
        enum opts_result r = parse_shared(o, opt, optarg, &st.username);

        if (r == OPTS_UNKNOWN)
            r = parse_one(opt, optarg, o, &st);
        if (r == OPTS_UNKNOWN && opt == ':')
            return tool_usage_error("option '%s' needs a value", argv[optind - 1]);
        if (r == OPTS_UNKNOWN)
            return tool_usage_error("unknown option '%s'", argv[optind - 1]);
        if (r != OPTS_OK)
            return r;
    }
    if (st.merge)
        return validate_merge(o, argc, argv, optind);
    if (validate_input(o, argc, argv, optind) != OPTS_OK ||
        validate_ramp(o, st.loop_given) != OPTS_OK ||
        validate_schedule_and_faults(o, &st) != OPTS_OK)
        return OPTS_ERROR;
    /* --api-key-id is the MQTT user name too, unless -u names another */
    o->mqtt.api_key_id = st.username ? st.username : o->topic_api_key_id;
    o->username_given = st.username != NULL;
    return OPTS_OK;
}

void hreplay_opts_release(struct hreplay_opts *o)
{
    hc_faults_free(o->faults);
    o->faults = NULL;
    tool_mqtt_release(&o->mqtt);
}

/*
 * hreplay --ramp: load-tests a consumer by replaying the input, looped, in steps of rising rate,
 * and finds the highest rate it sustains.
 *
 * The engine is driven, not copied: a stepped source loops over the input and gives each message
 * a synthetic timeline (message j of a step at rate R sits j/R after the step's start), so the
 * engine's recorded-timing mode sends at the step's rate; --rebase-time gives payloads fresh
 * timestamps. The engine's published hook says what left and when (for latency matching and the
 * input rate); its lateness hook gives hreplay's own lateness per step.
 *
 * An observer thread watches the consumer: its output topic (a subscriber on the same broker) or
 * its output file (read as it grows), and the broker's $SYS counters. It samples the backlog
 * (inputs delivered - outputs seen) every SAMPLE_EVERY_NS. At the end of each step the source,
 * on the engine's thread, judges the step (hcore/ramp.h) and ends the ramp at the first that
 * failed or at MAX.
 *
 * With --consumer CMD hreplay owns the consumer: libcore's stand-in broker (hc_broker) and
 * process runner (hc_proc), as hverify --consumer uses them. The consumer gets the same
 * environment and placeholders, the ramp starts once the broker's log shows it subscribed to a
 * filter matching the run's topics (a readiness barrier, no sleeps), its stdout lines are its
 * outputs unless --observe says otherwise, and the broker's "Outgoing messages are being dropped
 * for client" lines for it count as drops beside the $SYS counters. It is stopped (SIGINT,
 * SIGTERM, SIGKILL) and reaped with everything under it at the end.
 */
#include "hreplay_ramp.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hcore/broker.h"
#include "hcore/mqtt.h"
#include "hcore/proc.h"
#include "hcore/sched.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"

#define SAMPLE_EVERY_NS 50000000LL /* backlog samples */
#define RECEIVE_WAIT_MS 10         /* the observer's longest wait for a message */
#define MAX_OUTPUT_LINE 65536      /* file outputs: longer lines are skipped and counted */
#define SYS_DROPPED "$SYS/broker/publish/messages/dropped"
#define SYS_STORED "$SYS/broker/store/messages/count"
#define READY_TIMEOUT_NS 10000000000LL           /* --ready-timeout default */
#define CONSUMER_INTERRUPT_GRACE_NS 2000000000LL /* stop: SIGINT, then SIGTERM after this */
#define POSITION_MIN_RATIO                                                                         \
    0.8 /* first step: outputs/inputs at least this for position matching                          \
         */

struct samples {
    double *t, *backlog;
    size_t n, cap;
};

struct ramp {
    const struct hreplay_opts *o;
    const struct hc_replay_source *inner;
    struct hc_replay_hooks chained; /* hreplay's own hooks (lateness log) */
    hc_replay *engine;

    /* engine thread only */
    bool inner_open;
    size_t step;                /* index of the current step */
    double rate;                /* its rate */
    uint64_t in_step, per_step; /* messages handed out in this step, and its total */
    int64_t step_timeline_ns;   /* synthetic timeline of the step's first message */
    int64_t window_start_ns;    /* CLOCK_MONOTONIC: the step's measuring window */
    int64_t sched_run_ns;       /* the thread's schedstat (run + runqueue wait) at the start */
    bool done;
    bool repeating;          /* the current step repeats the one before (it failed) */
    struct hc_hist lateness; /* this step's */
    struct ramp_step *steps;
    size_t n_steps, cap_steps;

    /* shared with the observer: under mu */
    pthread_mutex_t mu;
    hc_ramp_match *match;
    uint64_t delivered, seen;
    uint64_t delivered_at_start, seen_at_start; /* at the current step's start */
    int64_t first_pub_ns, last_pub_ns;          /* this step's first and last publish */
    struct samples samples;
    struct hc_hist latency_key, latency_pos; /* this step's, by each matching */
    uint64_t keyed_outputs, keyed_matched, unkeyed_outputs;
    bool position_impossible; /* more outputs than inputs at some moment */
    bool sys_seen;            /* both counters seen */
    bool dropped_seen, stored_seen;
    int64_t sys_dropped, sys_stored;
    int64_t sys_dropped_at_start, sys_stored_at_start;
    bool sys_known_at_start;
    hc_err observer_rc;
    char observer_error[600];
    uint64_t long_lines;
    uint64_t other_lines; /* stdout lines that are no JSON object */

    /* the observer */
    pthread_t thread;
    bool thread_started;
    volatile sig_atomic_t stop_observer;
    hc_mqtt *sub;
    bool broker_evidence;
    int fd;           /* --observe file: -1 until the file exists */
    off_t file_start; /* bytes already there when the ramp began: not outputs */
    char *line;
    size_t line_len;
    uint64_t file_pos, file_lines; /* bytes read (from file_start), complete lines among them */
    double observer_lag; /* outputs written, not read yet: unread bytes / mean line length */
    bool line_too_long;
    enum ramp_matching matching; /* decided after the first step */
    bool matching_decided;

    /* --consumer: the broker and the consumer (main thread before and after the ramp, the
     * observer thread during it) */
    hc_broker *broker;
    const struct hc_broker_info *info;
    hc_proc *consumer;
    bool consumer_ended;  /* it exited during the ramp */
    int64_t drop_notices; /* the broker's "being dropped" lines for the consumer (under mu) */
    int64_t drop_notices_at_start;
    int64_t next_log_poll_ns;
};

static const char *observe_name(const struct hreplay_opts *o)
{
    return o->ramp.observe == HREPLAY_OBSERVE_MQTT     ? "mqtt"
           : o->ramp.observe == HREPLAY_OBSERVE_STDOUT ? "stdout"
                                                       : "file";
}

static int64_t mono(void)
{
    return hc_time_monotonic_ns();
}

/* This thread's CPU time plus its time waiting for a CPU (ns), or -1 when unknown. */
static int64_t thread_busy_ns(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    unsigned long long run = 0, wait = 0;
    int n;

    if (!f)
        return -1;
    n = fscanf(f, "%llu %llu", &run, &wait);
    fclose(f);
    return n == 2 ? (int64_t)(run + wait) : -1;
}

/* --- parsing what goes by: keys of inputs and outputs ----------------------------------------- */

/* "device|measured_at ns" into buf; false when either is missing. */
static bool make_key(const char *device, size_t device_len, const char *measured_at, char *buf,
                     size_t size, size_t *len)
{
    int64_t ns;
    int n;

    if (!device_len || !measured_at ||
        hc_time_parse_rfc3339(measured_at, strlen(measured_at), &ns, NULL) != HC_OK)
        return false;
    n = snprintf(buf, size, "%.*s|%" PRId64, (int)device_len, device, ns);
    if (n < 0 || (size_t)n >= size)
        return false;
    *len = (size_t)n;
    return true;
}

static const char *string_field(const cJSON *j, const char *const *names)
{
    for (size_t i = 0; names[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, names[i]);
        if (cJSON_IsString(v) && v->valuestring[0])
            return v->valuestring;
    }
    return NULL;
}

static const char *const MEASURED_AT[] = {"measured_at", "measuredAt", NULL};
static const char *const DEVICE_ID[] = {"device_id", "deviceId", "tsmId", "device", NULL};

/* An input: its device is the topic's last level, its time the payload's measured_at. */
static bool input_key(const char *topic, const unsigned char *payload, size_t len, char *buf,
                      size_t size, size_t *key_len)
{
    const char *slash = strrchr(topic, '/');
    const char *device = slash ? slash + 1 : topic;
    cJSON *j;
    bool ok;

    if (!len || (payload[0] != '{' && payload[0] != ' '))
        return false;
    j = cJSON_ParseWithLength((const char *)payload, len);
    ok = j && make_key(device, strlen(device), string_field(j, MEASURED_AT), buf, size, key_len);
    cJSON_Delete(j);
    return ok;
}

/* --- the engine's hooks (engine thread) --------------------------------------------------------
 */

static void on_published(void *ctx, const char *topic, const unsigned char *payload, size_t len,
                         int64_t sent_ns)
{
    struct ramp *rp = ctx;
    char key[300];
    size_t key_len = 0;
    bool keyed = input_key(topic, payload, len, key, sizeof(key), &key_len);

    pthread_mutex_lock(&rp->mu);
    if (hc_ramp_match_input(rp->match, keyed ? key : NULL, key_len, sent_ns, NULL) != HC_OK)
        rp->observer_rc = HC_ERR_NOMEM;
    rp->delivered++;
    if (!rp->first_pub_ns)
        rp->first_pub_ns = sent_ns;
    rp->last_pub_ns = sent_ns;
    pthread_mutex_unlock(&rp->mu);
}

static void on_lateness(void *ctx, int64_t lateness_ns)
{
    struct ramp *rp = ctx;
    hc_hist_add(&rp->lateness, lateness_ns);
    if (rp->chained.lateness)
        rp->chained.lateness(rp->chained.ctx, lateness_ns);
}

static void on_progress(void *ctx, const hc_replay *engine, int64_t now)
{
    struct ramp *rp = ctx;
    uint64_t delivered, seen;

    (void)engine;
    (void)now;
    if (!tool_status_enabled())
        return;
    pthread_mutex_lock(&rp->mu);
    delivered = rp->delivered;
    seen = rp->seen;
    pthread_mutex_unlock(&rp->mu);
    tool_status("ramp step %zu at %.0f msg/s: sent %" PRIu64 ", outputs seen %" PRIu64
                ", backlog %" PRId64,
                rp->step + 1, rp->rate, delivered, seen, (int64_t)(delivered - seen));
}

/* --- the observer thread -----------------------------------------------------------------------
 */

/* One output of the consumer (payload of an MQTT message, or a file line). Under mu. */
static void output_seen(struct ramp *rp, const char *text, size_t len, int64_t now)
{
    cJSON *j = cJSON_ParseWithLength(text, len);
    const char *device = j ? string_field(j, DEVICE_ID) : NULL;
    char key[300];
    size_t key_len;
    int64_t sent;
    uint64_t index = rp->seen++;

    if (rp->seen > rp->delivered)
        rp->position_impossible = true;
    if (device && make_key(device, strlen(device), string_field(j, MEASURED_AT), key, sizeof(key),
                           &key_len)) {
        rp->keyed_outputs++;
        if (hc_ramp_match_by_key(rp->match, key, key_len, &sent)) {
            rp->keyed_matched++;
            hc_hist_add(&rp->latency_key, now - sent);
        }
    } else {
        rp->unkeyed_outputs++;
    }
    if (!rp->position_impossible && hc_ramp_match_by_position(rp->match, index, &sent))
        hc_hist_add(&rp->latency_pos, now - sent);
    cJSON_Delete(j);
}

static void sys_value(struct ramp *rp, const struct hc_msg *msg)
{
    char text[32];
    size_t n = msg->payload_len < sizeof(text) - 1 ? msg->payload_len : sizeof(text) - 1;
    char *end;
    long long v;

    memcpy(text, msg->payload, n);
    text[n] = '\0';
    v = strtoll(text, &end, 10);
    if (end == text)
        return;
    if (strcmp(msg->topic, SYS_DROPPED) == 0) {
        rp->sys_dropped = v;
        rp->dropped_seen = true;
    } else {
        rp->sys_stored = v;
        rp->stored_seen = true;
    }
    rp->sys_seen = rp->dropped_seen && rp->stored_seen;
}

/* Bytes of output (file or stdout): each complete line is an output. Under mu. */
static void take_output(struct ramp *rp, const char *buf, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\r')
            continue; /* a pseudo-terminal's line end */
        if (buf[i] != '\n') {
            if (rp->line_len < MAX_OUTPUT_LINE)
                rp->line[rp->line_len++] = buf[i];
            else
                rp->line_too_long = true;
            continue;
        }
        rp->file_lines++;
        if (rp->line_too_long)
            rp->long_lines++;
        else if (rp->line_len && rp->o->ramp.observe == HREPLAY_OBSERVE_STDOUT &&
                 rp->line[0] != '{')
            rp->other_lines++; /* a consumer's word for people ("subscribed"), not an output */
        else if (rp->line_len)
            output_seen(rp, rp->line, rp->line_len, now);
        rp->line_len = 0;
        rp->line_too_long = false;
    }
}

/* Reads what the output file gained; each complete line is an output. */
static void read_file(struct ramp *rp)
{
    char buf[65536];
    ssize_t n;

    if (rp->fd < 0) {
        rp->fd = open(rp->o->ramp.observe_target, O_RDONLY | O_CLOEXEC);
        if (rp->fd < 0)
            return; /* not there yet: the consumer creates it */
        if (rp->file_start > 0 && lseek(rp->fd, rp->file_start, SEEK_SET) < 0)
            rp->file_start = 0;
    }
    while ((n = read(rp->fd, buf, sizeof(buf))) > 0) {
        int64_t now = mono();
        struct stat sb;
        pthread_mutex_lock(&rp->mu);
        rp->file_pos += (uint64_t)n;
        take_output(rp, buf, (size_t)n, now);
        /* what the consumer wrote that is still to be read: hreplay's own lag */
        if (fstat(rp->fd, &sb) == 0 && rp->file_lines) {
            double unread = (double)sb.st_size - (double)rp->file_start - (double)rp->file_pos;
            rp->observer_lag =
                unread > 0 ? unread * (double)rp->file_lines / (double)rp->file_pos : 0;
        }
        if ((size_t)n < sizeof(buf))
            rp->observer_lag = 0; /* caught up with the writer */
        pthread_mutex_unlock(&rp->mu);
    }
}

/* --consumer: its stdout (outputs unless --observe), its stderr (kept tail), whether it ended. */
static void read_consumer(struct ramp *rp)
{
    char buf[65536];
    long n;
    int status;

    while ((n = hc_proc_read_stdout(rp->consumer, buf, sizeof(buf))) > 0) {
        if (rp->o->ramp.observe != HREPLAY_OBSERVE_STDOUT)
            continue;
        pthread_mutex_lock(&rp->mu);
        take_output(rp, buf, (size_t)n, mono());
        pthread_mutex_unlock(&rp->mu);
    }
    hc_proc_read_stderr(rp->consumer);
    if (!rp->consumer_ended && hc_proc_exited(rp->consumer, &status)) {
        char what[160], tail[600];

        rp->consumer_ended = true;
        hc_proc_describe_status(status, what, sizeof(what));
        hc_proc_stderr_tail(rp->consumer, 3, tail, sizeof(tail));
        pthread_mutex_lock(&rp->mu);
        rp->observer_rc = HC_ERR_IO;
        snprintf(rp->observer_error, sizeof(rp->observer_error),
                 "the consumer %.150s during the ramp%s%.350s", what,
                 tail[0] ? "; its stderr: " : "", tail);
        pthread_mutex_unlock(&rp->mu);
    }
}

/* The stand-in broker's log: drops announced for the consumer's user. Under mu. */
static void on_drop_line(void *ctx, const struct hc_broker_event *ev)
{
    struct ramp *rp = ctx;

    if (ev->kind == HC_BROKER_DROPPING && strcmp(ev->user, rp->info->api_key_id) == 0)
        rp->drop_notices++;
}

static void sample(struct ramp *rp, int64_t now)
{
    struct samples *s = &rp->samples;

    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *t = realloc(s->t, cap * sizeof(*t)), *b;
        if (!t)
            return;
        s->t = t;
        b = realloc(s->backlog, cap * sizeof(*b));
        if (!b)
            return;
        s->backlog = b;
        s->cap = cap;
    }
    s->t[s->n] = (double)now / 1e9;
    /* the consumer's backlog: outputs already written but not yet read by hreplay are done */
    s->backlog[s->n] = (double)rp->delivered - (double)rp->seen - rp->observer_lag;
    s->n++;
}

static void *observe(void *arg)
{
    struct ramp *rp = arg;
    int64_t next_sample = mono();

    while (!rp->stop_observer) {
        struct hc_msg msg;
        hc_error err = HC_ERROR_INIT;
        hc_err rc;
        int64_t now;

        /*
         * A consumer's stdout is waited on, not the subscriber: a pseudo-terminal holds a few
         * KiB, and a consumer that finds it full blocks on its write, so a 10 ms wait on $SYS
         * messages would throttle a fast consumer to what fits in its buffer.
         */
        if (rp->consumer && rp->o->ramp.observe == HREPLAY_OBSERVE_STDOUT &&
            hc_proc_stdout(rp->consumer) >= 0) {
            struct pollfd pfd = {hc_proc_stdout(rp->consumer), POLLIN, 0};
            poll(&pfd, 1, RECEIVE_WAIT_MS);
            read_consumer(rp);
            rc = hc_mqtt_receive(rp->sub, 0, &msg, &err);
        } else {
            rc = hc_mqtt_receive(rp->sub, RECEIVE_WAIT_MS, &msg, &err);
        }
        now = mono();

        if (rc == HC_OK) {
            pthread_mutex_lock(&rp->mu);
            if (strncmp(msg.topic, "$SYS/", 5) == 0)
                sys_value(rp, &msg);
            else if (rp->o->ramp.observe == HREPLAY_OBSERVE_MQTT)
                output_seen(rp, (const char *)msg.payload, msg.payload_len, now);
            pthread_mutex_unlock(&rp->mu);
        } else if (rc != HC_ERR_TIMEOUT) {
            pthread_mutex_lock(&rp->mu);
            rp->observer_rc = rc;
            snprintf(rp->observer_error, sizeof(rp->observer_error), "observer: %.500s",
                     err.message);
            pthread_mutex_unlock(&rp->mu);
            break;
        }
        if (rp->o->ramp.observe == HREPLAY_OBSERVE_FILE)
            read_file(rp);
        if (rp->consumer)
            read_consumer(rp);
        if (rp->consumer_ended)
            break;
        if (now >= next_sample) {
            pthread_mutex_lock(&rp->mu);
            if (rp->broker)
                (void)hc_broker_poll_events(rp->broker, on_drop_line, rp, NULL);
            sample(rp, now);
            pthread_mutex_unlock(&rp->mu);
            next_sample = now + SAMPLE_EVERY_NS;
        }
    }
    return NULL;
}

/* Connects the observer: the output filter (mqtt:) and the broker's $SYS counters. */
static hc_err observer_open(struct ramp *rp, const struct hc_mqtt_options *engine_mo, hc_error *err)
{
    struct hc_mqtt_options mo = *engine_mo;
    char client_id[200];
    const char *sys[] = {SYS_DROPPED, SYS_STORED};
    int qos_sys[] = {0, 0}, granted[2];
    hc_error serr = HC_ERROR_INIT;
    hc_err rc;

    snprintf(client_id, sizeof(client_id), "%.180s-observe", engine_mo->client_id);
    mo.client_id = client_id;
    mo.cancel = &tool_stop_requested;
    rc = hc_mqtt_new(&mo, HC_MQTT_SUBSCRIBER, &rp->sub, err);
    if (rc == HC_OK)
        rc = hc_mqtt_connect(rp->sub, err);
    if (rc != HC_OK)
        return rc;
    if (rp->o->ramp.observe == HREPLAY_OBSERVE_MQTT) {
        const char *filter = rp->o->ramp.observe_target;
        int qos = 1, got;
        rc = hc_mqtt_subscribe(rp->sub, 1, &filter, &qos, &got, err);
        if (rc != HC_OK)
            return rc;
    } else {
        struct stat sb;
        rp->file_start = stat(rp->o->ramp.observe_target, &sb) == 0 ? sb.st_size : 0;
    }
    /* a broker that hides $SYS (or refuses it to this user) leaves the evidence out */
    rp->broker_evidence = hc_mqtt_subscribe(rp->sub, 2, sys, qos_sys, granted, &serr) == HC_OK;
    if (!rp->broker_evidence)
        tool_warn("no broker evidence: %s", serr.message);
    return HC_OK;
}

/*
 * The $SYS counters are retained: they arrive right after subscribing, and the first step needs
 * them as its baseline. Waits up to a second.
 */
static void wait_for_sys(struct ramp *rp)
{
    bool seen = false;

    for (int i = 0; i < 100 && rp->broker_evidence && !seen && !tool_stop_requested; i++) {
        struct timespec ts = {0, 10000000L};
        pthread_mutex_lock(&rp->mu);
        seen = rp->sys_seen;
        pthread_mutex_unlock(&rp->mu);
        if (!seen)
            nanosleep(&ts, NULL);
    }
}

/* --- steps (engine thread) ----------------------------------------------------------------------
 */

static double step_rate(const struct hreplay_ramp_opts *ro, size_t k)
{
    return ro->start_rate + (double)k * ro->step_rate;
}

static uint64_t step_messages(const struct hreplay_ramp_opts *ro, double rate)
{
    double n = rate * (double)ro->hold_ns / 1e9;
    return n < 2 ? 2 : (uint64_t)llround(n);
}

/* Starts step k: its rate, its count, a fresh window. */
static void step_begin(struct ramp *rp, size_t k, int64_t now)
{
    rp->step = k;
    rp->rate = step_rate(&rp->o->ramp, k);
    rp->per_step = step_messages(&rp->o->ramp, rp->rate);
    rp->in_step = 0;
    rp->window_start_ns = now;
    rp->sched_run_ns = thread_busy_ns();
    hc_hist_init(&rp->lateness);
    pthread_mutex_lock(&rp->mu);
    rp->delivered_at_start = rp->delivered;
    rp->seen_at_start = rp->seen;
    rp->first_pub_ns = rp->last_pub_ns = 0;
    rp->samples.n = 0;
    sample(rp, now);
    hc_hist_init(&rp->latency_key);
    hc_hist_init(&rp->latency_pos);
    rp->sys_known_at_start = rp->sys_seen;
    rp->sys_dropped_at_start = rp->sys_dropped;
    rp->sys_stored_at_start = rp->sys_stored;
    rp->drop_notices_at_start = rp->drop_notices;
    pthread_mutex_unlock(&rp->mu);
}

/* After the first step: how outputs will be matched (under mu). */
static void decide_matching(struct ramp *rp, const struct ramp_step *first)
{
    if (rp->keyed_outputs > 0 && rp->keyed_matched * 10 >= rp->keyed_outputs * 9)
        rp->matching = RAMP_MATCH_KEY;
    else if (!rp->position_impossible && rp->keyed_outputs == 0 && first->inputs > 0 &&
             (double)first->outputs >= POSITION_MIN_RATIO * (double)first->inputs)
        rp->matching = RAMP_MATCH_POSITION;
    else
        rp->matching = RAMP_MATCH_NONE;
    rp->matching_decided = true;
}

/* Ends the current step: measures, judges, records. true when the ramp goes on. */
static bool step_end(struct ramp *rp, int64_t now)
{
    const struct hreplay_ramp_opts *ro = &rp->o->ramp;
    struct ramp_step st;
    struct hc_ramp_figures f;
    const struct hc_hist *lat;
    int64_t busy = thread_busy_ns();
    double window = (double)(now - rp->window_start_ns) / 1e9;

    memset(&st, 0, sizeof(st));
    st.target_rate = rp->rate;
    st.duration_s = window;
    st.lateness_p50_ns = hc_hist_quantile(&rp->lateness, 0.5);
    st.lateness_p99_ns = hc_hist_quantile(&rp->lateness, 0.99);
    st.lateness_max_ns = rp->lateness.max;
    st.generator_busy = busy >= 0 && rp->sched_run_ns >= 0 && window > 0
                            ? (double)(busy - rp->sched_run_ns) / 1e9 / window
                            : -1;
    pthread_mutex_lock(&rp->mu);
    sample(rp, now);
    st.inputs = rp->delivered - rp->delivered_at_start;
    st.outputs = rp->seen - rp->seen_at_start;
    st.input_rate =
        st.inputs > 1 && rp->last_pub_ns > rp->first_pub_ns
            ? (double)(st.inputs - 1) * 1e9 / (double)(rp->last_pub_ns - rp->first_pub_ns)
            : 0;
    st.output_rate = window > 0 ? (double)st.outputs / window : 0;
    st.observer_lag = rp->observer_lag;
    st.backlog_end = (double)rp->delivered - (double)rp->seen - rp->observer_lag;
    st.backlog_slope = hc_ramp_slope(rp->samples.t, rp->samples.backlog, rp->samples.n);
    if (!rp->matching_decided)
        decide_matching(rp, &st);
    lat = rp->matching == RAMP_MATCH_KEY        ? &rp->latency_key
          : rp->matching == RAMP_MATCH_POSITION ? &rp->latency_pos
                                                : NULL;
    if (lat && lat->total) {
        st.latency_count = lat->total;
        st.latency_p50_ns = hc_hist_quantile(lat, 0.5);
        st.latency_p99_ns = hc_hist_quantile(lat, 0.99);
        st.latency_max_ns = lat->max;
    }
    st.broker_known = rp->sys_known_at_start && rp->sys_seen;
    st.dropped_delta = rp->sys_dropped - rp->sys_dropped_at_start;
    st.stored_delta = rp->sys_stored - rp->sys_stored_at_start;
    st.drop_notices = rp->drop_notices - rp->drop_notices_at_start;
    if (st.drop_notices > 0) {
        /* the broker's own word that it dropped for the consumer counts even without $SYS */
        st.broker_known = true;
        if (st.dropped_delta < st.drop_notices)
            st.dropped_delta = st.drop_notices;
    }
    pthread_mutex_unlock(&rp->mu);

    memset(&f, 0, sizeof(f));
    f.target_rate = st.target_rate;
    f.input_rate = st.input_rate;
    f.backlog_slope = st.backlog_slope;
    f.backlog_end = st.backlog_end;
    f.latency_known = st.latency_count > 0;
    f.latency_p99_ns = st.latency_p99_ns;
    f.slo_ns = ro->slo_ns;
    f.broker_known = st.broker_known;
    f.dropped_delta = st.dropped_delta;
    f.stored_delta = st.stored_delta;
    f.generator_busy = st.generator_busy;
    f.observer_lag = st.observer_lag;
    st.verdict = hc_ramp_judge(&f, &st.limit, st.why, sizeof(st.why));

    if (rp->n_steps == rp->cap_steps) {
        size_t cap = rp->cap_steps ? 2 * rp->cap_steps : 16;
        struct ramp_step *p = realloc(rp->steps, cap * sizeof(*p));
        if (!p)
            return false;
        rp->steps = p;
        rp->cap_steps = cap;
    }
    st.repeat = rp->repeating;
    if (st.repeat && st.verdict == HC_RAMP_KEPT_UP)
        rp->steps[rp->n_steps - 1].transient = true;
    rp->steps[rp->n_steps++] = st;
    tool_status_clear();
    tool_info("step %zu: %.0f msg/s: %s (%s)", rp->n_steps, st.target_rate,
              hc_ramp_verdict_name(st.verdict), st.why);
    /*
     * A failing step is held once more at the same rate before it ends the ramp: a shared
     * machine's burst of other work (or one garbage collection in the consumer) can make one
     * step look failed; a consumer past its capacity fails the repetition too. Broker drops are
     * evidence enough.
     */
    rp->repeating = st.verdict != HC_RAMP_KEPT_UP && st.verdict != HC_RAMP_DROPPING && !st.repeat;
    if (rp->repeating)
        return true;
    if (st.verdict != HC_RAMP_KEPT_UP)
        return false;
    return ro->max_rate <= 0 || step_rate(ro, rp->step + 1) <= ro->max_rate * (1 + 1e-9);
}

/* --- the stepped source ----------------------------------------------------------------------- */

static hc_err ramp_open(void *ctx, hc_error *err)
{
    struct ramp *rp = ctx;
    hc_err rc = rp->inner->open(rp->inner->ctx, err);

    rp->inner_open = rc == HC_OK;
    return rc;
}

static void ramp_close(void *ctx)
{
    struct ramp *rp = ctx;
    if (rp->inner_open)
        rp->inner->close(rp->inner->ctx);
    rp->inner_open = false;
}

/* The next input message, starting the input again at its end. */
static hc_err inner_next(struct ramp *rp, struct hc_msg *msg, hc_error *err)
{
    hc_err rc = rp->inner->next(rp->inner->ctx, msg, err);
    if (rc != HC_DONE)
        return rc;
    ramp_close(rp);
    rc = ramp_open(rp, err);
    if (rc != HC_OK)
        return rc;
    rc = rp->inner->next(rp->inner->ctx, msg, err);
    if (rc == HC_DONE)
        return hc_error_set(err, HC_ERR_INVALID, "nothing to replay: the selection is empty");
    return rc;
}

static hc_err ramp_next(void *ctx, struct hc_msg *msg, hc_error *err)
{
    struct ramp *rp = ctx;
    hc_err rc;

    if (rp->done)
        return HC_DONE;
    pthread_mutex_lock(&rp->mu);
    rc = rp->observer_rc; /* the observer failed, or the consumer ended: the ramp ends */
    pthread_mutex_unlock(&rp->mu);
    if (rc != HC_OK) {
        rp->done = true;
        return HC_DONE;
    }
    if (rp->in_step == rp->per_step) {
        int64_t next_timeline =
            rp->step_timeline_ns + (int64_t)llround((double)rp->per_step * 1e9 / rp->rate);
        int64_t now = mono();
        if (!step_end(rp, now)) {
            rp->done = true;
            return HC_DONE;
        }
        step_begin(rp, rp->repeating ? rp->step : rp->step + 1, now);
        rp->step_timeline_ns = next_timeline;
    }
    rc = inner_next(rp, msg, err);
    if (rc != HC_OK)
        return rc;
    /* the recorded arrival stays: --rebase-time keeps each measured_at's offset from it */
    if (!msg->received_at_ns)
        msg->received_at_ns = msg->timeline_ns;
    msg->timeline_ns =
        rp->step_timeline_ns + (int64_t)llround((double)rp->in_step * 1e9 / rp->rate);
    rp->in_step++;
    return HC_OK;
}

/* --- --consumer: the broker, the consumer, readiness -------------------------------------------
 */

/* topic with levels 3 and 4 of a haltian-iot/events/ topic set to the run's ids, as the engine
 * rewrites them (other topics as they are). NULL when out of memory. */
static char *run_topic(const struct hc_broker_info *info, const char *topic)
{
    static const char prefix[] = "haltian-iot/events/";
    const char *rest = topic + sizeof(prefix) - 1, *slash;
    char *out;
    size_t size;

    if (strncmp(topic, prefix, sizeof(prefix) - 1) != 0 || !(slash = strchr(rest, '/')) ||
        !(slash = strchr(slash + 1, '/')))
        return strdup(topic);
    size = sizeof(prefix) + strlen(info->integration_id) + strlen(info->api_key_id) +
           strlen(slash) + 1;
    out = malloc(size);
    if (out)
        snprintf(out, size, "%s%s/%s%s", prefix, info->integration_id, info->api_key_id, slash);
    return out;
}

/* The first input's topic as the consumer will receive it: what its subscription must match. */
static hc_err first_topic(struct ramp *rp, char **topic, hc_error *err)
{
    struct hc_msg msg;
    hc_err rc = ramp_open(rp, err);

    *topic = NULL;
    if (rc != HC_OK)
        return rc;
    rc = rp->inner->next(rp->inner->ctx, &msg, err);
    if (rc == HC_DONE)
        rc = hc_error_set(err, HC_ERR_INVALID, "nothing to replay: the selection is empty");
    if (rc == HC_OK && !(*topic = run_topic(rp->info, msg.topic)))
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    ramp_close(rp);
    return rc;
}

struct readiness {
    const struct ramp *rp;
    const char *topic;
    bool connected, matched;
    char nonmatching[400];
};

static void on_ready_event(void *ctx, const struct hc_broker_event *ev)
{
    struct readiness *r = ctx;
    size_t len = strlen(r->nonmatching);

    if (strcmp(ev->user, r->rp->info->api_key_id) != 0)
        return;
    if (ev->kind == HC_BROKER_CONNECTED)
        r->connected = true;
    if (ev->kind != HC_BROKER_SUBSCRIBED)
        return;
    if (hc_topic_matches(ev->filter, r->topic))
        r->matched = true;
    else
        snprintf(r->nonmatching + len, sizeof(r->nonmatching) - len, "%s'%s'", len ? ", " : "",
                 ev->filter);
}

/* Waits until the consumer has subscribed to a filter matching topic (bounded). What it printed
 * meanwhile is no output of the ramp. */
static hc_err wait_ready(struct ramp *rp, const char *topic, hc_error *err)
{
    struct readiness r = {rp, topic, false, false, {0}};
    int64_t timeout =
        rp->o->ramp.ready_timeout_ns ? rp->o->ramp.ready_timeout_ns : READY_TIMEOUT_NS;
    int64_t deadline = mono() + timeout;
    char buf[4096], tail[600], what[160];
    int status;

    for (;;) {
        struct pollfd fds[2];
        nfds_t n = 0;
        hc_err rc = hc_broker_poll_events(rp->broker, on_ready_event, &r, err);

        if (rc != HC_OK)
            return rc;
        if (r.matched)
            return HC_OK;
        while (hc_proc_read_stdout(rp->consumer, buf, sizeof(buf)) > 0)
            ;
        hc_proc_read_stderr(rp->consumer);
        hc_proc_stderr_tail(rp->consumer, 3, tail, sizeof(tail));
        if (hc_proc_exited(rp->consumer, &status)) {
            hc_proc_describe_status(status, what, sizeof(what));
            return hc_error_set(err, HC_ERR_IO, "the consumer %s before it subscribed%s%s", what,
                                tail[0] ? "; its stderr: " : "", tail);
        }
        if (tool_stop_requested)
            return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the consumer");
        if (mono() >= deadline)
            return hc_error_set(
                err, HC_ERR_TIMEOUT, "the consumer was not ready after %.3gs: %s%s%s%s",
                (double)timeout / 1e9,
                r.nonmatching[0] ? "it subscribed only to filters matching none of the "
                                   "input's topics: "
                : r.connected    ? "it connected but never subscribed"
                                 : "it never connected to the broker",
                r.nonmatching, tail[0] ? "; its stderr: " : "", tail);
        if (hc_proc_stdout(rp->consumer) >= 0)
            fds[n++] = (struct pollfd){hc_proc_stdout(rp->consumer), POLLIN, 0};
        if (hc_proc_stderr(rp->consumer) >= 0)
            fds[n++] = (struct pollfd){hc_proc_stderr(rp->consumer), POLLIN, 0};
        poll(fds, n, 10);
    }
}

/*
 * Starts the stand-in broker and the consumer, points the engine (ro) at the broker's publisher
 * listener with the run's ids in the topics, and waits until the consumer has subscribed.
 */
static hc_err consumer_start(struct ramp *rp, struct hc_replay_options *ro, hc_error *err)
{
    const struct hreplay_ramp_opts *o = &rp->o->ramp;
    struct hc_broker_options bo;
    struct hc_proc_options po;
    struct hc_broker_env env;
    char *cmd = NULL, *topic = NULL;
    hc_err rc;

    memset(&bo, 0, sizeof(bo));
    bo.plain = o->broker_plain;
    bo.integration_id = rp->o->topic_integration_id;
    bo.api_key_id = rp->o->topic_api_key_id;
    bo.consumer_write = o->observe == HREPLAY_OBSERVE_MQTT ? o->observe_target : NULL;
    rc = hc_broker_start(&bo, &rp->broker, err);
    if (rc != HC_OK) {
        hc_error_prefix(err, "cannot start the private broker");
        return rc;
    }
    rp->info = hc_broker_get_info(rp->broker);
    ro->mqtt.url = rp->info->publisher_url;
    ro->mqtt.username = rp->info->publisher_user;
    ro->mqtt.password = rp->info->publisher_password;
    ro->mqtt.cafile = NULL;
    ro->mqtt.insecure = false;
    ro->integration_id = rp->info->integration_id;
    ro->api_key_id = rp->info->api_key_id;

    rc = first_topic(rp, &topic, err);
    if (rc != HC_OK)
        goto out;
    hc_broker_env_init(&env, rp->info);
    cmd = hc_broker_expand_command(rp->info, o->consumer);
    if (!cmd) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        goto out;
    }
    memset(&po, 0, sizeof(po));
    po.command = cmd;
    po.env = env.vars;
    po.stdout_pty = true; /* stdio and Python write each line as they print it */
    po.interrupt_grace_ns = CONSUMER_INTERRUPT_GRACE_NS;
    rc = hc_proc_start(&po, &rp->consumer, err);
    if (rc != HC_OK) {
        hc_error_prefix(err, "cannot start the consumer");
        goto out;
    }
    tool_info("consumer started against the private broker (%s, integration %s, api key %s); "
              "waiting for its subscription",
              rp->info->consumer_url, rp->info->integration_id, rp->info->api_key_id);
    rc = wait_ready(rp, topic, err);
out:
    free(cmd);
    free(topic);
    return rc;
}

/* Stops the consumer (SIGINT, SIGTERM, SIGKILL) and reaps everything under it. */
static void consumer_stop(struct ramp *rp)
{
    char what[160];
    int how = 0, status;

    if (!rp->consumer)
        return;
    status = hc_proc_stop(rp->consumer, &how);
    hc_proc_describe_status(status, what, sizeof(what));
    if (!rp->consumer_ended && tool_verbosity >= 2)
        tool_info("consumer %s%s", what,
                  how == 1   ? " on SIGINT"
                  : how == 2 ? " on SIGTERM"
                  : how == 3 ? " (killed)"
                             : "");
    hc_proc_free(rp->consumer);
    rp->consumer = NULL;
}

/* --- the run ------------------------------------------------------------------------------------
 */

static void ramp_release(struct ramp *rp)
{
    if (rp->thread_started) {
        rp->stop_observer = 1;
        pthread_join(rp->thread, NULL);
    }
    hc_replay_free(rp->engine);
    if (rp->sub)
        hc_mqtt_disconnect(rp->sub, 100);
    hc_mqtt_free(rp->sub);
    consumer_stop(rp);
    hc_broker_free(rp->broker);
    if (rp->fd >= 0)
        close(rp->fd);
    hc_ramp_match_free(rp->match);
    free(rp->samples.t);
    free(rp->samples.backlog);
    free(rp->steps);
    free(rp->line);
    pthread_mutex_destroy(&rp->mu);
}

static void fill_result(struct ramp *rp, struct ramp_result *res)
{
    struct hc_replay_stats s;

    memset(res, 0, sizeof(*res));
    res->o = rp->o;
    res->steps = rp->steps;
    res->n_steps = rp->n_steps;
    res->matching = rp->matching;
    res->broker_evidence = rp->broker_evidence;
    res->qos = rp->o->qos;
    res->outputs_total = rp->seen;
    if (rp->engine) {
        hc_replay_get_stats(rp->engine, &s);
        res->sent = s.sent;
        res->failed = s.failed;
        res->interrupted = s.interrupted;
    }
    switch (rp->matching) {
    case RAMP_MATCH_KEY:
        snprintf(res->matching_note, sizeof(res->matching_note),
                 "by device id and measured_at (%" PRIu64 " of %" PRIu64 " outputs matched)",
                 rp->keyed_matched, rp->keyed_outputs);
        break;
    case RAMP_MATCH_POSITION:
        snprintf(res->matching_note, sizeof(res->matching_note),
                 "by position: outputs carry no device id and measured_at, one output per input");
        break;
    default:
        snprintf(res->matching_note, sizeof(res->matching_note),
                 rp->seen == 0 ? "none: no output was seen (check --observe)"
                 : rp->keyed_outputs
                     ? "none: outputs carry device ids and times that match no input: rates only"
                     : "none: outputs carry no device id and measured_at, and are not one per "
                       "input: rates only");
    }
}

int hreplay_ramp_run(const struct hreplay_opts *o, struct hc_replay_options *ro,
                     const struct hc_replay_source *inner, FILE *report_fp)
{
    struct ramp rp;
    struct hc_replay_source source = {ramp_open, ramp_next, ramp_close, &rp};
    struct ramp_result res;
    hc_error err = HC_ERROR_INIT;
    hc_err rc;
    int code = TOOL_EXIT_FAILURE;
    bool ok;

    memset(&rp, 0, sizeof(rp));
    pthread_mutex_init(&rp.mu, NULL);
    rp.o = o;
    rp.inner = inner;
    rp.fd = -1;
    rp.chained = ro->hooks;
    rp.line = malloc(MAX_OUTPUT_LINE);
    rc = rp.line ? hc_ramp_match_new(&rp.match, &err)
                 : hc_error_set(&err, HC_ERR_NOMEM, "out of memory");
    if (rc != HC_OK)
        goto fail;

    /* the engine in recorded timing over the stepped source's synthetic timeline */
    memset(&ro->sched, 0, sizeof(ro->sched));
    ro->sched.mode = HC_SCHED_ORIGINAL;
    ro->loops = 1; /* the stepped source loops over the input itself */
    ro->rebase_time = true;
    if (!o->spin_given)
        ro->spin_ns = 0; /* spinning would count as hreplay being busy */
    ro->hooks.lateness = on_lateness;
    ro->hooks.progress = on_progress;
    ro->hooks.published = on_published;
    ro->hooks.ctx = &rp;

    if (o->ramp.consumer) {
        rc = consumer_start(&rp, ro, &err);
        if (rc != HC_OK)
            goto fail;
    }
    rc = observer_open(&rp, &ro->mqtt, &err);
    if (rc != HC_OK)
        goto fail;
    rc = hc_replay_new(ro, &rp.engine, &err);
    if (rc != HC_OK)
        goto fail;
    if (pthread_create(&rp.thread, NULL, observe, &rp) != 0) {
        rc = hc_error_set(&err, HC_ERR_NOMEM, "cannot start the observer thread");
        goto fail;
    }
    rp.thread_started = true;
    wait_for_sys(&rp);
    tool_info("ramp from %.0f msg/s by %.0f every %.1f s%s, observing %s:%s", o->ramp.start_rate,
              o->ramp.step_rate, (double)o->ramp.hold_ns / 1e9,
              o->ramp.max_rate > 0 ? "" : " until a step fails", observe_name(o),
              o->ramp.observe_target);
    step_begin(&rp, 0, mono());
    rc = hc_replay_run(rp.engine, &source, &err);
    rp.stop_observer = 1;
    pthread_join(rp.thread, NULL);
    rp.thread_started = false;
    consumer_stop(&rp);
    tool_status_clear();
    if (rc != HC_OK)
        tool_error("%s", err.message);
    if (rp.observer_rc != HC_OK) {
        tool_error("%s", rp.observer_error[0] ? rp.observer_error : "out of memory");
        rc = rp.observer_rc;
    }
    if (rp.long_lines)
        tool_warn("%" PRIu64 " output lines over %d bytes were skipped", rp.long_lines,
                  MAX_OUTPUT_LINE);
    if (rp.seen == 0)
        tool_warn("no output of the consumer was seen on %s:%s%s", observe_name(o),
                  o->ramp.observe_target,
                  rp.other_lines ? " (its stdout lines were no JSON objects)" : "");
    fill_result(&rp, &res);
    ok = ramp_report_text(&res, stdout);
    ok = ramp_report_json(&res, report_fp) && ok;
    report_fp = NULL;
    if (o->ramp.report_svg)
        ok = ramp_report_svg(&res, o->ramp.report_svg) && ok;
    code = rc == HC_OK && ok && res.failed == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
    ramp_release(&rp);
    return code;
fail:
    tool_error("%s", err.message);
    if (report_fp)
        fclose(report_fp);
    ramp_release(&rp);
    return code;
}

/*
 * hverify --consumer: runs the user's MQTT consumer against each case. One private broker per
 * run (hc_broker); per case the consumer is started (hc_proc, stdout through a pseudo-terminal),
 * replay waits until it has subscribed to a filter matching the case's topics (seen in the
 * broker's log) or printed a line matching --ready, the case's input goes through the replay
 * engine (hc_replay) in a thread while this thread reads the consumer's output, and once every
 * input is acknowledged and the output has been still for --settle the consumer is stopped as
 * a person would (SIGINT, SIGTERM, SIGKILL), its output up to its exit still counting. The
 * comparison is consumer_case.c's.
 */
#include "hverify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hcore/broker.h"
#include "hcore/faults.h"
#include "hcore/mqtt.h"
#include "hcore/proc.h"
#include "hcore/replay.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"

#define MAX_OUTPUT_LINE (1 << 20)
#define MAX_OUTPUT_LINES 1000000L
#define NONMATCHING_GRACE_NS 1000000000LL /* after a subscription that matches nothing */

enum sink { SINK_STDOUT, SINK_MQTT, SINK_FILE, SINK_PROBE };

struct hv_consumer {
    const struct hverify_opts *o;
    hc_broker *broker; /* NULL with --url */
    const struct hc_broker_info *info;
    struct hc_broker_info url_info; /* --url: what the consumer gets */
    char url_host[256];
    bool rewrite_topics; /* the case's topics go to the run's ids */
    enum sink sink;
    const char *sink_arg; /* the filter or the path */
    regex_t ready_re;
    bool has_ready_re;
    struct hc_broker_env env; /* the consumer's environment (hc_broker_env_init) */
};

/* --url: the existing broker as the consumer sees it */
static hc_err url_info(struct hv_consumer *c, hc_error *err)
{
    const struct hc_mqtt_options *m = &c->o->mqtt_opts;
    struct hc_broker_info *i = &c->url_info;
    struct hc_mqtt_url u;
    hc_err rc = hc_mqtt_parse_url(m->url, &u, err);

    if (rc != HC_OK)
        return rc;
    snprintf(c->url_host, sizeof(c->url_host), "%s", u.host);
    i->host = c->url_host;
    i->consumer_port = u.port;
    i->consumer_url = m->url;
    i->cafile = m->cafile ? m->cafile : "";
    i->integration_id = c->o->integration_id ? c->o->integration_id : "";
    i->api_key_id = m->username ? m->username : "";
    i->token = m->password ? m->password : "";
    i->token_file = c->o->mqtt.token_file ? c->o->mqtt.token_file : "";
    i->publisher_port = u.port;
    i->publisher_url = m->url;
    i->publisher_user = m->username;
    i->publisher_password = m->password;
    c->info = i;
    c->rewrite_topics = c->o->integration_id && m->username;
    return HC_OK;
}

hc_err hv_consumer_open(const struct hverify_opts *o, struct hv_consumer **out, hc_error *err)
{
    struct hv_consumer *c = calloc(1, sizeof(*c));
    struct hc_broker_options bo;
    hc_err rc;

    *out = NULL;
    if (!c)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    c->o = o;
    if (o->ready) {
        if (regcomp(&c->ready_re, o->ready, REG_EXTENDED | REG_NOSUB) != 0) {
            free(c);
            return hc_error_set(err, HC_ERR_INVALID, "invalid --ready regex '%s'", o->ready);
        }
        c->has_ready_re = true;
    }
    c->sink = o->probe                               ? SINK_PROBE
              : !o->capture                          ? SINK_STDOUT
              : strncmp(o->capture, "mqtt:", 5) == 0 ? SINK_MQTT
                                                     : SINK_FILE;
    c->sink_arg = o->capture ? o->capture + 5 : NULL;
    if (o->use_url) {
        rc = url_info(c, err);
        if (rc != HC_OK) {
            hv_consumer_close(c);
            return rc;
        }
    } else {
        memset(&bo, 0, sizeof(bo));
        bo.plain = o->broker_plain;
        bo.integration_id = o->integration_id;
        bo.api_key_id = o->api_key_id;
        bo.consumer_write = c->sink == SINK_MQTT ? c->sink_arg : NULL;
        rc = hc_broker_start(&bo, &c->broker, err);
        if (rc != HC_OK) {
            hc_error_prefix(err, "cannot start the private broker");
            hv_consumer_close(c);
            return rc;
        }
        c->info = hc_broker_get_info(c->broker);
        c->rewrite_topics = true;
    }
    hc_broker_env_init(&c->env, c->info);
    *out = c;
    return HC_OK;
}

void hv_consumer_close(struct hv_consumer *c)
{
    if (!c)
        return;
    hc_broker_free(c->broker);
    if (c->has_ready_re)
        regfree(&c->ready_re);
    free(c);
}

/* --- the command line: placeholders --------------------------------------------------------- */

/* CMD with the placeholders replaced (hc_broker_expand_command); NULL on out of memory. */
static char *expand_command(const struct hv_consumer *c, const char *cmd)
{
    return hc_broker_expand_command(c->info, cmd);
}

/* --- inputs -------------------------------------------------------------------------------- */

struct held_msg {
    struct hc_msg msg;
    char *topic;
    unsigned char *payload;
};

struct source {
    struct held_msg *msgs;
    size_t n, next;
    struct hv_input_info *info;
    /* broker-restart: before input restart_at (0-based) the replay thread waits for the main
     * thread to restart the broker and see the consumer subscribe again */
    long restart_at; /* -1: none */
    atomic_int restart_wanted, restart_done;
    const volatile sig_atomic_t *stop;
    /* faults applied (the engine's fault hook, called from the replay thread) */
    struct hv_capture *cap;
    bool out_of_memory;
};

static void on_sent(void *ctx, uint64_t input_seq, int64_t mono_ns)
{
    struct source *s = ctx;

    if (input_seq >= 1 && input_seq <= s->n && !s->info[input_seq - 1].sent_ns)
        s->info[input_seq - 1].sent_ns = mono_ns;
}

static void on_fault(void *ctx, const struct hc_faults_event *ev)
{
    struct source *s = ctx;
    struct hv_capture *cap = s->cap;

    if (cap->n_faults == cap->cap_faults) {
        size_t nc = cap->cap_faults ? cap->cap_faults * 2 : 32;
        struct hv_fault_note *nf = realloc(cap->faults, nc * sizeof(*nf));

        if (!nf) {
            s->out_of_memory = true;
            return;
        }
        cap->faults = nf;
        cap->cap_faults = nc;
    }
    cap->faults[cap->n_faults] = (struct hv_fault_note){
        (long)ev->out->seq - 1, hc_faults_kind_name(ev->kind),
        ev->kind == HC_FAULT_REORDER && ev->out->partner_seq ? (long)ev->out->partner_seq - 1 : -1,
        ""};
    if (ev->out->times_changed)
        snprintf(cap->faults[cap->n_faults].time_after,
                 sizeof(cap->faults[cap->n_faults].time_after), "%s", ev->out->time_after);
    cap->n_faults++;
}

static hc_err src_open(void *ctx, hc_error *err)
{
    (void)err;
    ((struct source *)ctx)->next = 0;
    return HC_OK;
}

static hc_err src_next(void *ctx, struct hc_msg *msg, hc_error *err)
{
    struct source *s = ctx;

    (void)err;
    if (s->next >= s->n)
        return HC_DONE;
    if ((long)s->next == s->restart_at && !atomic_load(&s->restart_done)) {
        atomic_store(&s->restart_wanted, 1);
        while (!atomic_load(&s->restart_done) && !*s->stop) {
            struct timespec ts = {0, 2000000};

            nanosleep(&ts, NULL);
        }
    }
    *msg = s->msgs[s->next++].msg;
    return HC_OK;
}

static void src_close(void *ctx)
{
    (void)ctx;
}

/* Level k (0-based) of topic, copied; NULL when absent. */
static char *topic_level(const char *topic, int k)
{
    const char *p = topic, *e;

    for (int i = 0; i < k && p; i++) {
        p = strchr(p, '/');
        if (p)
            p++;
    }
    if (!p)
        return NULL;
    e = strchr(p, '/');
    return strndup(p, e ? (size_t)(e - p) : strlen(p));
}

static char *rewrite_topic(const struct hv_consumer *c, const char *topic)
{
    char *out = NULL;

    if (c->rewrite_topics && strncmp(topic, "haltian-iot/events/", 19) == 0) {
        const char *p = strchr(topic + 19, '/');
        const char *q = p ? strchr(p + 1, '/') : NULL;

        if (q) {
            size_t n = 19 + strlen(c->info->integration_id) + 1 + strlen(c->info->api_key_id) +
                       strlen(q) + 1;

            out = malloc(n);
            if (out)
                snprintf(out, n, "haltian-iot/events/%s/%s%s", c->info->integration_id,
                         c->info->api_key_id, q);
            return out;
        }
    }
    return strdup(topic);
}

static void describe_input(struct hv_input_info *in, const struct hc_msg *m)
{
    int levels = 1;
    cJSON *doc;

    for (const char *p = in->topic; *p; p++)
        levels += *p == '/';
    if (strncmp(in->topic, "haltian-iot/events/", 19) == 0 && levels >= 7) {
        in->type = topic_level(in->topic, 5);
        in->device = topic_level(in->topic, levels - 1);
    }
    doc = cJSON_ParseWithLength((const char *)m->payload, m->payload_len);
    if (cJSON_IsObject(doc)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "measured_at");

        if (!cJSON_IsString(t))
            t = cJSON_GetObjectItemCaseSensitive(doc, "received_at");
        if (cJSON_IsString(t))
            in->measured_at = strdup(t->valuestring);
    }
    cJSON_Delete(doc);
}

static hc_err load_inputs(const struct hv_consumer *c, const char *dir, struct source *s,
                          struct hv_capture *cap, hc_error *err)
{
    struct hv_input in;
    struct hc_msg m;
    size_t cap_n = 0;
    hc_err rc = hv_input_open(&in, dir, false, err);

    while (rc == HC_OK && (rc = hv_input_next(&in, &m, err)) == HC_OK) {
        struct held_msg *h;

        if (s->n == cap_n) {
            size_t nc = cap_n ? cap_n * 2 : 64;
            struct held_msg *nm = realloc(s->msgs, nc * sizeof(*nm));
            struct hv_input_info *ni = realloc(cap->inputs, nc * sizeof(*ni));

            if (nm)
                s->msgs = nm;
            if (ni)
                cap->inputs = ni;
            if (!nm || !ni) {
                rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                break;
            }
            cap_n = nc;
        }
        h = &s->msgs[s->n];
        memset(h, 0, sizeof(*h));
        memset(&cap->inputs[s->n], 0, sizeof(cap->inputs[0]));
        h->msg = m;
        h->topic = strdup(m.topic);
        h->payload = malloc(m.payload_len + 1);
        cap->inputs[s->n].topic = rewrite_topic(c, m.topic);
        s->n++;
        cap->n_inputs = s->n;
        if (!h->topic || !h->payload || !cap->inputs[s->n - 1].topic) {
            rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(h->payload, m.payload, m.payload_len);
        h->payload[m.payload_len] = '\0';
        h->msg.topic = h->topic;
        h->msg.payload = h->payload;
        describe_input(&cap->inputs[s->n - 1], &m);
    }
    if (rc == HC_DONE)
        rc = HC_OK;
    hv_input_close(&in);
    s->info = cap->inputs;
    return rc;
}

static void free_source(struct source *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->msgs[i].topic);
        free(s->msgs[i].payload);
    }
    free(s->msgs);
}

/* --- output lines -------------------------------------------------------------------------- */

struct linebuf {
    char *buf;
    size_t len;
};

/* What one case reads: the consumer's stdout and the sink the output comes from. */
struct reader {
    struct linebuf out;  /* the consumer's stdout */
    struct linebuf sink; /* --capture file / mqtt payloads, --probe's stdout */
    int64_t last_ns;     /* last output of any kind (CLOCK_MONOTONIC) */
    bool ready_seen;
    hc_mqtt *sub; /* --capture mqtt: */
    int file_fd;  /* --capture file: (-1 until it exists) */
    off_t file_off;
};

static bool add_line(struct hv_capture *cap, const char *text, size_t len, int64_t now)
{
    if ((long)cap->n_lines >= MAX_OUTPUT_LINES)
        return false;
    if (cap->n_lines == cap->cap_lines) {
        size_t nc = cap->cap_lines ? cap->cap_lines * 2 : 256;
        char **nl = realloc(cap->lines, nc * sizeof(*nl));
        int64_t *nt = nl ? realloc(cap->line_ns, nc * sizeof(*nt)) : NULL;

        if (nl)
            cap->lines = nl;
        if (!nt)
            return false;
        cap->line_ns = nt;
        cap->cap_lines = nc;
    }
    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == '\n'))
        len--;
    cap->lines[cap->n_lines] = strndup(text, len);
    if (!cap->lines[cap->n_lines])
        return false;
    cap->line_ns[cap->n_lines++] = now;
    return true;
}

/*
 * Appends n bytes to lb and hands out its complete lines: to cap when cap is non-NULL, to the
 * --ready regex when ready is non-NULL. at_end: a last line without '\n' counts too. false with
 * err set when a bound is hit.
 */
static bool take_lines(struct hv_consumer *c, struct linebuf *lb, const char *data, size_t n,
                       struct hv_capture *cap, bool *ready, bool at_end, int64_t now, hc_error *err)
{
    size_t start = 0;
    char *nb = realloc(lb->buf, lb->len + n + 1);

    if (!nb)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory") == HC_OK;
    lb->buf = nb;
    memcpy(lb->buf + lb->len, data, n);
    lb->len += n;
    lb->buf[lb->len] = '\0';
    for (size_t i = 0; i <= lb->len; i++) {
        if (i < lb->len ? lb->buf[i] != '\n' : !(at_end && i > start))
            continue;
        lb->buf[i] = '\0';
        if (ready && c->has_ready_re && !*ready &&
            regexec(&c->ready_re, lb->buf + start, 0, NULL, 0) == 0)
            *ready = true;
        if (cap && !add_line(cap, lb->buf + start, i - start, now))
            return hc_error_set(err, HC_ERR_NOMEM,
                                "consumer printed more than %ld lines (or out of memory)",
                                MAX_OUTPUT_LINES) == HC_OK;
        start = i + 1;
    }
    if (start > lb->len)
        start = lb->len;
    memmove(lb->buf, lb->buf + start, lb->len - start);
    lb->len -= start;
    if (lb->len > MAX_OUTPUT_LINE)
        return hc_error_set(err, HC_ERR_PARSE, "consumer output line %zu is longer than %d KiB",
                            cap ? cap->n_lines + 1 : 0, MAX_OUTPUT_LINE >> 10) == HC_OK;
    return true;
}

/* --capture file: what the file gained since the last call */
static bool read_file_sink(struct hv_consumer *c, struct reader *rd, struct hv_capture *cap,
                           bool at_end, int64_t now, hc_error *err)
{
    char chunk[65536];
    ssize_t n;

    if (rd->file_fd < 0)
        rd->file_fd = open(c->sink_arg, O_RDONLY | O_CLOEXEC);
    if (rd->file_fd < 0)
        return true; /* not written yet */
    while ((n = pread(rd->file_fd, chunk, sizeof(chunk), rd->file_off)) > 0) {
        rd->file_off += n;
        rd->last_ns = now;
        if (!take_lines(c, &rd->sink, chunk, (size_t)n, cap, NULL, false, now, err))
            return false;
    }
    if (at_end && rd->sink.len)
        return take_lines(c, &rd->sink, "", 0, cap, NULL, true, now, err);
    return true;
}

/* --capture mqtt: the messages that came, one payload per output line */
static bool read_mqtt_sink(struct hv_consumer *c, struct reader *rd, struct hv_capture *cap,
                           int64_t now, hc_error *err)
{
    struct hc_msg m;
    hc_error tmp = HC_ERROR_INIT;

    while (hc_mqtt_receive(rd->sub, 0, &m, &tmp) == HC_OK) {
        rd->last_ns = now;
        if (!take_lines(c, &rd->sink, (const char *)m.payload, m.payload_len, cap, NULL, true, now,
                        err))
            return false;
    }
    return true;
}

/* Reads what the consumer printed, and the sink; false with err set when a bound is hit. */
static bool read_output(struct hv_consumer *c, hc_proc *p, struct reader *rd,
                        struct hv_capture *cap, bool at_end, hc_error *err)
{
    char chunk[65536];
    long n;
    int64_t now = hc_time_monotonic_ns();
    struct hv_capture *to = c->sink == SINK_STDOUT ? cap : NULL;

    hc_proc_read_stderr(p);
    while ((n = hc_proc_read_stdout(p, chunk, sizeof(chunk))) > 0) {
        rd->last_ns = now;
        if (!take_lines(c, &rd->out, chunk, (size_t)n, to, &rd->ready_seen, false, now, err))
            return false;
    }
    if (at_end && hc_proc_stdout(p) < 0 && rd->out.len && /* a last line without '\n' */
        !take_lines(c, &rd->out, "", 0, to, &rd->ready_seen, true, now, err))
        return false;
    if (c->sink == SINK_FILE)
        return read_file_sink(c, rd, cap, at_end, now, err);
    if (c->sink == SINK_MQTT && rd->sub)
        return read_mqtt_sink(c, rd, cap, now, err);
    return true;
}

static void wait_output(hc_proc *p, int ms)
{
    struct pollfd fds[2];
    nfds_t n = 0;

    if (hc_proc_stdout(p) >= 0)
        fds[n++] = (struct pollfd){hc_proc_stdout(p), POLLIN, 0};
    if (hc_proc_stderr(p) >= 0)
        fds[n++] = (struct pollfd){hc_proc_stderr(p), POLLIN, 0};
    poll(fds, n, ms);
}

/* --- readiness ----------------------------------------------------------------------------- */

struct readiness {
    const struct hv_consumer *c;
    const struct hv_capture *cap;
    bool connected, matched;
    char nonmatching[512];
    int64_t nonmatching_since;
};

static void on_broker_event(void *ctx, const struct hc_broker_event *ev)
{
    struct readiness *r = ctx;

    if (strcmp(ev->user, r->c->info->api_key_id) != 0)
        return;
    if (ev->kind == HC_BROKER_CONNECTED)
        r->connected = true;
    if (ev->kind != HC_BROKER_SUBSCRIBED)
        return;
    if (r->cap->n_inputs == 0)
        r->matched = true;
    for (size_t i = 0; i < r->cap->n_inputs && !r->matched; i++)
        if (hc_topic_matches(ev->filter, r->cap->inputs[i].topic))
            r->matched = true;
    if (!r->matched) {
        size_t len = strlen(r->nonmatching);

        snprintf(r->nonmatching + len, sizeof(r->nonmatching) - len, "%s'%s'", len ? ", " : "",
                 ev->filter);
        if (!r->nonmatching_since)
            r->nonmatching_since = hc_time_monotonic_ns();
    }
}

static hc_err wait_ready(struct hv_consumer *c, hc_proc *p, struct reader *rd,
                         struct hv_capture *cap, hc_error *err)
{
    struct readiness r = {c, cap, false, false, {0}, 0};
    int64_t deadline = hc_time_monotonic_ns() + c->o->ready_timeout_ns;
    char tail[600];

    for (;;) {
        int64_t now;

        if (!read_output(c, p, rd, cap, false, err))
            return err->code;
        if (c->broker && hc_broker_poll_events(c->broker, on_broker_event, &r, err) != HC_OK)
            return err->code;
        if (c->has_ready_re ? rd->ready_seen : r.matched)
            return HC_OK;
        now = hc_time_monotonic_ns();
        hc_proc_stderr_tail(p, 3, tail, sizeof(tail));
        if (!c->has_ready_re && r.nonmatching_since &&
            now - r.nonmatching_since >= NONMATCHING_GRACE_NS)
            return hc_error_set(err, HC_ERR_SUBSCRIBE,
                                "consumer subscribed to %s, which match none of the case's "
                                "topics (haltian-iot/events/%s/%s/...)",
                                r.nonmatching, c->info->integration_id, c->info->api_key_id);
        if (hc_proc_exited(p, &cap->exit_status)) {
            char what[160];

            hc_proc_describe_status(cap->exit_status, what, sizeof(what));
            return hc_error_set(err, HC_ERR_IO, "consumer %s before it %s%s%s", what,
                                c->has_ready_re ? "printed a line matching --ready" : "subscribed",
                                tail[0] ? "; its stderr: " : "", tail);
        }
        if (tool_stop_requested)
            return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the consumer");
        if (now >= deadline)
            return hc_error_set(err, HC_ERR_TIMEOUT, "consumer not ready after %.3gs: %s%s%s",
                                (double)c->o->ready_timeout_ns / 1e9,
                                c->has_ready_re ? "no output line matched --ready"
                                : r.nonmatching[0]
                                    ? "its subscriptions match none of the case's topics"
                                : r.connected ? "it connected but never subscribed"
                                              : "it never connected to the broker",
                                tail[0] ? "; its stderr: " : "", tail);
        wait_output(p, 10);
    }
}

/* --- the replay thread --------------------------------------------------------------------- */

struct replay_job {
    hc_replay *engine;
    struct hc_replay_source src;
    hc_error err;
    hc_err rc;
    atomic_int done;
};

static void *replay_thread(void *arg)
{
    struct replay_job *j = arg;

    j->rc = hc_replay_run(j->engine, &j->src, &j->err);
    atomic_store(&j->done, 1);
    return NULL;
}

static volatile sig_atomic_t replay_stop;

static hc_err parse_timing(const char *timing, struct hc_sched_options *s, hc_error *err)
{
    char *end;

    memset(s, 0, sizeof(*s));
    if (!timing || strcmp(timing, "max") == 0) {
        s->mode = HC_SCHED_MAX;
    } else if (strcmp(timing, "recorded") == 0) {
        s->mode = HC_SCHED_ORIGINAL;
    } else if (strncmp(timing, "speed:", 6) == 0) {
        s->mode = HC_SCHED_SPEED;
        errno = 0;
        s->speed = strtod(timing + 6, &end);
        if (errno || end == timing + 6 || *end || !(s->speed > 0))
            return hc_error_set(err, HC_ERR_INVALID, "invalid timing '%s': speed:X needs X > 0",
                                timing);
    } else {
        return hc_error_set(err, HC_ERR_INVALID,
                            "invalid timing '%s': expected max, recorded or speed:X", timing);
    }
    return HC_OK;
}

/* --- one case ------------------------------------------------------------------------------ */

/* Stops the consumer while still reading what it prints on the way out. */
static void stop_consumer(struct hv_consumer *c, hc_proc *p, struct reader *rd,
                          struct hv_capture *cap, hc_error *err)
{
    int64_t until = hc_time_monotonic_ns() + 3 * c->o->stop_grace_ns + 2000000000LL;
    bool exited = hc_proc_exited(p, NULL);

    cap->exited_early = exited;
    if (!exited)
        hc_proc_request_stop(p);
    while ((hc_proc_stdout(p) >= 0 || !hc_proc_exited(p, NULL)) && hc_time_monotonic_ns() < until) {
        if (!read_output(c, p, rd, cap, true, err))
            break;
        wait_output(p, 10);
    }
    cap->exit_status = hc_proc_stop(p, &cap->stop_how);
    read_output(c, p, rd, cap, true, err);
    hc_proc_read_stderr(p);
    hc_proc_stderr_tail(p, 5, cap->stderr_tail, sizeof(cap->stderr_tail));
}

/*
 * broker-restart, once the replay thread waits at the restart point: lets what was sent reach
 * the consumer (its output still for --settle), kills and restarts the broker on the same
 * ports, and waits (--ready-timeout) until the consumer has subscribed again.
 */
static hc_err restart_broker(struct hv_consumer *c, hc_proc *p, struct reader *rd,
                             struct hv_capture *cap, hc_error *err)
{
    struct readiness r = {c, cap, false, false, {0}, 0};
    int64_t deadline;
    char tail[600];
    hc_err rc;

    while (hc_time_monotonic_ns() - rd->last_ns < c->o->settle_ns) {
        if (!read_output(c, p, rd, cap, false, err))
            return err->code;
        if (tool_stop_requested)
            return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the consumer");
        wait_output(p, 10);
    }
    rc = hc_broker_poll_events(c->broker, on_broker_event,
                               &(struct readiness){c, &(struct hv_capture){0}, 0, 0, {0}, 0}, err);
    if (rc == HC_OK)
        rc = hc_broker_restart(c->broker, 0, err);
    if (rc != HC_OK)
        return hc_error_prefix(err, "broker-restart");
    cap->broker_restarted = true;
    deadline = hc_time_monotonic_ns() + c->o->ready_timeout_ns;
    while (!r.matched) {
        if (!read_output(c, p, rd, cap, false, err))
            return err->code;
        if (hc_broker_poll_events(c->broker, on_broker_event, &r, err) != HC_OK)
            return err->code;
        if (r.matched)
            break;
        if (hc_proc_exited(p, NULL) || hc_time_monotonic_ns() >= deadline) {
            hc_proc_stderr_tail(p, 3, tail, sizeof(tail));
            return hc_error_set(err, HC_ERR_TIMEOUT,
                                "consumer did not subscribe again within %.3gs of the broker "
                                "restart (%s)%s%s",
                                (double)c->o->ready_timeout_ns / 1e9,
                                hc_proc_exited(p, NULL) ? "it exited"
                                : r.connected           ? "it reconnected but did not subscribe"
                                                        : "it did not reconnect",
                                tail[0] ? "; its stderr: " : "", tail);
        }
        if (tool_stop_requested)
            return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the consumer");
        wait_output(p, 10);
    }
    return HC_OK;
}

/* Splits spec into the engine's items (*engine: malloc'd, NULL when none) and broker-restart
 * (*restart_at: -2 none, -1 the middle, N >= 1 before input N). */
static hc_err split_faults(const char *spec, char **engine, long *restart_at, hc_error *err)
{
    char *copy = strdup(spec), *save = NULL, *out = calloc(1, strlen(spec) + 1);
    hc_err rc = HC_OK;

    *engine = NULL;
    *restart_at = -2;
    if (!copy || !out) {
        free(copy);
        free(out);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (strncmp(item, "broker-restart", 14) != 0) {
            if (*out)
                strcat(out, ",");
            strcat(out, item);
            continue;
        }
        if (*restart_at != -2) {
            rc = hc_error_set(err, HC_ERR_INVALID, "'%s': broker-restart is given twice", item);
            break;
        }
        if (strcmp(item, "broker-restart") == 0) {
            *restart_at = -1;
        } else {
            char *end;

            errno = 0;
            *restart_at =
                strncmp(item, "broker-restart=at:", 18) == 0 ? strtol(item + 18, &end, 10) : 0;
            if (*restart_at < 1 || errno || *end) {
                rc = hc_error_set(err, HC_ERR_INVALID,
                                  "'%s': expected broker-restart or broker-restart=at:N "
                                  "(N >= 1, the input before which it restarts)",
                                  item);
                break;
            }
        }
    }
    free(copy);
    if (rc == HC_OK && *out)
        *engine = out;
    else
        free(out);
    return rc;
}

hc_err hv_faults_check(const char *spec, hc_error *err)
{
    char *engine = NULL;
    long restart_at;
    hc_faults *plan = NULL;
    hc_err rc = split_faults(spec, &engine, &restart_at, err);

    if (rc == HC_OK && engine)
        rc = hc_faults_parse(engine, &plan, err);
    if (rc == HC_OK && !engine && restart_at == -2)
        rc = hc_error_set(err, HC_ERR_INVALID, "the spec is empty");
    hc_faults_free(plan);
    free(engine);
    return rc;
}

/* The replay's connection: the private broker's publisher account, or --url's options. */
static void replay_connection(const struct hv_consumer *c, struct hc_replay_options *ro,
                              char *client_id, size_t size)
{
    hc_mqtt_client_id("hverify", client_id, size);
    if (c->broker) {
        ro->mqtt.url = c->info->publisher_url;
        ro->mqtt.username = c->info->publisher_user;
        ro->mqtt.password = c->info->publisher_password;
    } else {
        ro->mqtt = c->o->mqtt_opts;
    }
    ro->mqtt.client_id = client_id;
    ro->mqtt.cancel = &tool_stop_requested;
}

/* The case's timing (ro->sched) and faults: the engine's plan (*plan, NULL when none; the
 * caller frees it, also on error) and where broker-restart happens (s->restart_at). */
static hc_err plan_replay(const struct hv_consumer *c, struct source *s,
                          const struct hv_case_settings *cs, struct hc_replay_options *ro,
                          hc_faults **plan, hc_error *err)
{
    char *engine_spec = NULL;
    long restart_at = -2;
    hc_err rc = parse_timing(cs->timing, &ro->sched, err);

    if (rc == HC_OK && cs->faults)
        rc = split_faults(cs->faults, &engine_spec, &restart_at, err);
    if (rc == HC_OK && engine_spec)
        rc = hc_faults_parse(engine_spec, plan, err);
    free(engine_spec);
    if (rc != HC_OK)
        return rc;
    if (restart_at != -2 && !c->broker)
        return hc_error_set(err, HC_ERR_INVALID,
                            "broker-restart needs hverify's private broker (no --url)");
    s->restart_at = restart_at == -2 ? -1 : restart_at == -1 ? (long)s->n / 2 : restart_at - 1;
    return HC_OK;
}

/* The rest of the engine's settings: its hooks into s, the run's ids, one connection, one pass,
 * each message's own QoS. */
static void replay_settings(const struct hv_consumer *c, struct source *s, struct hv_capture *cap,
                            const struct hv_case_settings *cs, hc_faults *plan,
                            struct hc_replay_options *ro)
{
    s->stop = &replay_stop;
    s->cap = cap;
    ro->faults = plan;
    ro->fault_seed = cs->seed;
    ro->hooks.sent = on_sent;
    ro->hooks.fault = on_fault;
    ro->hooks.ctx = s;
    replay_stop = 0;
    ro->stop = &replay_stop;
    ro->qos = -1;
    ro->integration_id = c->info->integration_id;
    ro->api_key_id = c->info->api_key_id;
    ro->fanout = 1;
    ro->connections = 1;
    ro->shard_k = ro->shard_n = 1;
    ro->loops = 1;
}

/* Reads the consumer's output while the replay runs, then until the output has been still for
 * --settle (or the consumer is gone), restarting the broker when the replay thread asks; an
 * interruption or deadline_ns (CLOCK_MONOTONIC) ends the case with an error. */
static hc_err follow_replay(struct hv_consumer *c, struct source *s, hc_proc *p, struct reader *rd,
                            struct hv_capture *cap, struct replay_job *job, int64_t deadline_ns,
                            hc_error *err)
{
    int64_t done_ns = 0;
    hc_err rc = HC_OK;

    for (;;) {
        int64_t now;

        if (!read_output(c, p, rd, cap, false, err)) {
            rc = err->code;
            break;
        }
        if (atomic_load(&s->restart_wanted) && !atomic_load(&s->restart_done)) {
            rc = restart_broker(c, p, rd, cap, err);
            atomic_store(&s->restart_done, 1);
            if (rc != HC_OK)
                break;
        }
        now = hc_time_monotonic_ns();
        if (!done_ns && atomic_load(&job->done))
            done_ns = now;
        if (done_ns && now - done_ns >= c->o->settle_ns && now - rd->last_ns >= c->o->settle_ns)
            break;
        if (done_ns && hc_proc_exited(p, NULL) && hc_proc_stdout(p) < 0)
            break;
        if (tool_stop_requested) {
            rc = hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the consumer");
            break;
        }
        if (now >= deadline_ns) {
            rc = hc_error_set(err, HC_ERR_TIMEOUT,
                              "case timed out after %.3gs (%s); raise --timeout",
                              (double)c->o->timeout_ns / 1e9,
                              done_ns ? "the consumer's output never stayed still for --settle"
                                      : "the replay had not finished");
            break;
        }
        wait_output(p, 10);
    }
    return rc;
}

/* Stops the replay thread and takes its figures; rc (the reading's outcome) unless the replay
 * itself failed. */
static hc_err end_replay(struct source *s, struct hv_capture *cap, struct replay_job *job,
                         pthread_t th, hc_err rc, hc_error *err)
{
    struct hc_replay_stats st;

    replay_stop = 1;
    pthread_join(th, NULL);
    hc_replay_get_stats(job->engine, &st);
    cap->sent = (long)st.sent;
    cap->failed = (long)st.failed;
    if (rc == HC_OK && job->rc != HC_OK) {
        *err = job->err;
        rc = hc_error_prefix(err, "replay");
    }
    if (rc == HC_OK && s->out_of_memory)
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    return rc;
}

static hc_err run_replay(struct hv_consumer *c, struct source *s, hc_proc *p, struct reader *rd,
                         struct hv_capture *cap, const struct hv_case_settings *cs, hc_error *err)
{
    hc_faults *plan = NULL;
    struct hc_replay_options ro;
    struct replay_job job;
    pthread_t th;
    char client_id[128];
    int64_t deadline = hc_time_monotonic_ns() + c->o->timeout_ns;
    hc_err rc;

    memset(&ro, 0, sizeof(ro));
    memset(&job, 0, sizeof(job));
    replay_connection(c, &ro, client_id, sizeof(client_id));
    rc = plan_replay(c, s, cs, &ro, &plan, err);
    if (rc != HC_OK) {
        hc_faults_free(plan);
        return rc;
    }
    replay_settings(c, s, cap, cs, plan, &ro);
    rc = hc_replay_new(&ro, &job.engine, err);
    if (rc != HC_OK) {
        hc_faults_free(plan);
        return hc_error_prefix(err, c->broker ? "cannot replay into the private broker"
                                              : "cannot replay into the broker");
    }
    job.src = (struct hc_replay_source){src_open, src_next, src_close, s};
    job.err = (hc_error)HC_ERROR_INIT;
    if (pthread_create(&th, NULL, replay_thread, &job) != 0) {
        hc_replay_free(job.engine);
        hc_faults_free(plan);
        return hc_error_set(err, HC_ERR_IO, "cannot start the replay thread");
    }
    rc = follow_replay(c, s, p, rd, cap, &job, deadline, err);
    rc = end_replay(s, cap, &job, th, rc, err);
    hc_replay_free(job.engine);
    hc_faults_free(plan);
    return rc;
}

/* --capture: a fresh file, or hverify's own subscription before the consumer starts */
static hc_err open_sink(struct hv_consumer *c, struct reader *rd, hc_error *err)
{
    rd->file_fd = -1;
    if (c->sink == SINK_FILE && unlink(c->sink_arg) != 0 && errno != ENOENT)
        return hc_error_set(err, HC_ERR_IO, "cannot remove the capture file '%s': %s", c->sink_arg,
                            strerror(errno));
    if (c->sink == SINK_MQTT) {
        struct hc_mqtt_options mo;
        char client_id[128];
        const char *filters[1] = {c->sink_arg};
        int qos[1] = {1}, granted[1];
        hc_err rc;

        if (c->broker) {
            memset(&mo, 0, sizeof(mo));
            mo.url = c->info->publisher_url;
            mo.username = c->info->publisher_user;
            mo.password = c->info->publisher_password;
        } else {
            mo = c->o->mqtt_opts;
        }
        hc_mqtt_client_id("hverify-capture", client_id, sizeof(client_id));
        mo.client_id = client_id;
        mo.cancel = &tool_stop_requested;
        rc = hc_mqtt_new(&mo, HC_MQTT_SUBSCRIBER, &rd->sub, err);
        if (rc == HC_OK)
            rc = hc_mqtt_connect(rd->sub, err);
        if (rc == HC_OK)
            rc = hc_mqtt_subscribe(rd->sub, 1, filters, qos, granted, err);
        if (rc != HC_OK)
            return hc_error_prefix(err, "--capture mqtt:%s", c->sink_arg);
    }
    return HC_OK;
}

static void close_sink(struct reader *rd)
{
    hc_mqtt_free(rd->sub);
    if (rd->file_fd >= 0)
        close(rd->file_fd);
    free(rd->out.buf);
    free(rd->sink.buf);
}

/* --probe: its stdout, read to its end within --timeout, is the case's output */
static hc_err run_probe(struct hv_consumer *c, const char *const *env, struct hv_capture *cap,
                        hc_error *err)
{
    struct hc_proc_options po;
    struct linebuf lb = {NULL, 0};
    char *cmd = expand_command(c, c->o->probe), chunk[65536], tail[600], what[160];
    int64_t deadline = hc_time_monotonic_ns() + c->o->timeout_ns;
    hc_proc *p = NULL;
    int status = 0;
    hc_err rc;

    if (!cmd)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    memset(&po, 0, sizeof(po));
    po.command = cmd;
    po.env = env;
    po.interrupt_grace_ns = c->o->stop_grace_ns;
    po.terminate_grace_ns = c->o->stop_grace_ns;
    rc = hc_proc_start(&po, &p, err);
    while (rc == HC_OK && (hc_proc_stdout(p) >= 0 || !hc_proc_exited(p, &status))) {
        long n;

        hc_proc_read_stderr(p);
        while ((n = hc_proc_read_stdout(p, chunk, sizeof(chunk))) > 0)
            if (!take_lines(c, &lb, chunk, (size_t)n, cap, NULL, false, hc_time_monotonic_ns(),
                            err))
                rc = err->code;
        if (rc == HC_OK && tool_stop_requested)
            rc = hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the probe");
        if (rc == HC_OK && hc_time_monotonic_ns() >= deadline)
            rc = hc_error_set(err, HC_ERR_TIMEOUT, "--probe did not finish within --timeout");
        if (rc == HC_OK)
            wait_output(p, 10);
    }
    if (rc == HC_OK && lb.len &&
        !take_lines(c, &lb, "", 0, cap, NULL, true, hc_time_monotonic_ns(), err))
        rc = err->code;
    if (p) {
        status = hc_proc_stop(p, NULL);
        hc_proc_read_stderr(p);
        hc_proc_stderr_tail(p, 3, tail, sizeof(tail));
        if (rc == HC_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            hc_proc_describe_status(status, what, sizeof(what));
            rc = hc_error_set(err, HC_ERR_IO, "--probe %s%s%s", what,
                              tail[0] ? "; its stderr: " : "", tail);
        }
    }
    hc_proc_free(p);
    free(lb.buf);
    free(cmd);
    return rc;
}

hc_err hv_consumer_run_case(struct hv_consumer *c, const char *dir,
                            const struct hv_case_settings *cs, struct hv_capture *cap,
                            hc_error *err)
{
    struct source s;
    struct reader rd;
    struct hc_proc_options po;
    const char *env[9];
    char *cmd = NULL, case_env[700];
    hc_proc *p = NULL;
    hc_err rc;

    memset(&s, 0, sizeof(s));
    memset(&rd, 0, sizeof(rd));
    rd.file_fd = -1;
    memset(cap, 0, sizeof(*cap));
    snprintf(cap->timing, sizeof(cap->timing), "%s", cs->timing ? cs->timing : "max");
    rc = load_inputs(c, dir, &s, cap, err);
    if (rc != HC_OK)
        goto out;
    /* forget what earlier cases' clients did */
    if (c->broker)
        rc = hc_broker_poll_events(c->broker, on_broker_event,
                                   &(struct readiness){c, &(struct hv_capture){0}, 0, 0, {0}, 0},
                                   err);
    if (rc == HC_OK)
        rc = open_sink(c, &rd, err);
    if (rc != HC_OK)
        goto out;
    cmd = expand_command(c, c->o->consumer);
    if (!cmd) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < 7; i++)
        env[i] = c->env.vars[i];
    snprintf(case_env, sizeof(case_env), "HVERIFY_CASE=%s", dir);
    env[7] = case_env;
    env[8] = NULL;
    memset(&po, 0, sizeof(po));
    po.command = cmd;
    po.env = env;
    po.stdout_pty = true;
    po.interrupt_grace_ns = c->o->stop_grace_ns;
    po.terminate_grace_ns = c->o->stop_grace_ns;
    rc = hc_proc_start(&po, &p, err);
    if (rc != HC_OK)
        goto out;
    rd.last_ns = hc_time_monotonic_ns();
    rc = wait_ready(c, p, &rd, cap, err);
    if (rc == HC_OK)
        rc = run_replay(c, &s, p, &rd, cap, cs, err);
    if (rc != HC_OK) {
        hc_error tmp = HC_ERROR_INIT;

        stop_consumer(c, p, &rd, cap, &tmp);
        goto out;
    }
    stop_consumer(c, p, &rd, cap, err);
    rc = err->code == HC_OK ? HC_OK : err->code;
    if (rc == HC_OK && c->sink == SINK_PROBE)
        rc = run_probe(c, env, cap, err);
out:
    hc_proc_free(p);
    free(cmd);
    close_sink(&rd);
    free_source(&s);
    return rc;
}

/*
 * hverify --consumer: runs the user's MQTT consumer against each case. One private broker per
 * run (hc_broker); per case the consumer is started (hc_proc, stdout through a pseudo-terminal),
 * replay waits until it has subscribed to a filter matching the case's topics (seen in the
 * broker's log) or printed a line matching --ready, the case's input goes through the replay
 * engine (hc_replay) in a thread while this thread reads the consumer's output, and once every
 * input is acknowledged and the output has been still for --settle the consumer is stopped as
 * a person would (SIGINT, SIGTERM, SIGKILL), its output up to its exit still counting. The
 * comparison is hverify.c's.
 */
#include "hverify.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "hcore/broker.h"
#include "hcore/proc.h"
#include "hcore/replay.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"

#define MAX_OUTPUT_LINE (1 << 20)
#define MAX_OUTPUT_LINES 1000000L
#define NONMATCHING_GRACE_NS 1000000000LL /* after a subscription that matches nothing */

struct hv_consumer {
    const struct hverify_opts *o;
    hc_broker *broker;
    const struct hc_broker_info *info;
    regex_t ready_re;
    bool has_ready_re;
    char env[7][700];
};

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
    memset(&bo, 0, sizeof(bo));
    bo.plain = o->broker_plain;
    bo.integration_id = o->integration_id;
    bo.api_key_id = o->api_key_id;
    rc = hc_broker_start(&bo, &c->broker, err);
    if (rc != HC_OK) {
        hc_error_prefix(err, "cannot start the private broker");
        hv_consumer_close(c);
        return rc;
    }
    c->info = hc_broker_get_info(c->broker);
    snprintf(c->env[0], sizeof(c->env[0]), "HALTIAN_MQTT_HOST=%s", c->info->host);
    snprintf(c->env[1], sizeof(c->env[1]), "HALTIAN_MQTT_PORT=%d", c->info->consumer_port);
    snprintf(c->env[2], sizeof(c->env[2]), "HALTIAN_MQTT_URL=%s", c->info->consumer_url);
    snprintf(c->env[3], sizeof(c->env[3]), "HALTIAN_API_KEY_ID=%s", c->info->api_key_id);
    snprintf(c->env[4], sizeof(c->env[4]), "HALTIAN_API_KEY_TOKEN=%s", c->info->token);
    snprintf(c->env[5], sizeof(c->env[5]), "HALTIAN_INTEGRATION_ID=%s", c->info->integration_id);
    snprintf(c->env[6], sizeof(c->env[6]), "HKIT_CAFILE=%s", c->info->cafile);
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

/* CMD with {host} {port} {url} {cafile} {api_key_id} {integration_id} {token_file} replaced
 * (values shell-quoted); NULL on out of memory. Unknown {words} stay as they are. */
static char *expand_command(const struct hv_consumer *c, const char *cmd)
{
    char port[16], *out = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&out, &len);
    const struct {
        const char *name, *value;
    } vars[] = {{"host", c->info->host},
                {"port", port},
                {"url", c->info->consumer_url},
                {"cafile", c->info->cafile},
                {"api_key_id", c->info->api_key_id},
                {"integration_id", c->info->integration_id},
                {"token_file", c->info->token_file}};

    if (!ms)
        return NULL;
    snprintf(port, sizeof(port), "%d", c->info->consumer_port);
    for (const char *p = cmd; *p; p++) {
        bool done = false;

        if (*p == '{') {
            for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]) && !done; i++) {
                size_t n = strlen(vars[i].name);

                if (strncmp(p + 1, vars[i].name, n) == 0 && p[1 + n] == '}') {
                    char q[2048];

                    tool_shell_quote(q, sizeof(q), vars[i].value);
                    fputs(q, ms);
                    p += n + 1;
                    done = true;
                }
            }
        }
        if (!done)
            fputc(*p, ms);
    }
    if (fclose(ms) != 0) {
        free(out);
        return NULL;
    }
    return out;
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
};

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
    s->info[s->next].sent_ns = hc_time_monotonic_ns();
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

    if (strncmp(topic, "haltian-iot/events/", 19) == 0) {
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

struct reader {
    char *buf;
    size_t len;
    int64_t last_ns; /* last output (CLOCK_MONOTONIC) */
    bool ready_seen;
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

/* Reads what the consumer printed; false with err set when a bound is hit. */
static bool read_output(struct hv_consumer *c, hc_proc *p, struct reader *rd,
                        struct hv_capture *cap, bool at_end, hc_error *err)
{
    char chunk[65536];
    long n;
    int64_t now = hc_time_monotonic_ns();

    hc_proc_read_stderr(p);
    while ((n = hc_proc_read_stdout(p, chunk, sizeof(chunk))) > 0) {
        char *nb = realloc(rd->buf, rd->len + (size_t)n + 1);
        size_t start = 0;

        if (!nb)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory") == HC_OK;
        rd->buf = nb;
        memcpy(rd->buf + rd->len, chunk, (size_t)n);
        rd->len += (size_t)n;
        rd->last_ns = now;
        for (size_t i = 0; i < rd->len; i++) {
            if (rd->buf[i] != '\n')
                continue;
            rd->buf[i] = '\0';
            if (c->has_ready_re && !rd->ready_seen &&
                regexec(&c->ready_re, rd->buf + start, 0, NULL, 0) == 0)
                rd->ready_seen = true;
            if (!add_line(cap, rd->buf + start, i - start, now))
                return hc_error_set(err, HC_ERR_NOMEM,
                                    "consumer printed more than %ld lines (or out of memory)",
                                    MAX_OUTPUT_LINES) == HC_OK;
            start = i + 1;
        }
        memmove(rd->buf, rd->buf + start, rd->len - start);
        rd->len -= start;
        if (rd->len > MAX_OUTPUT_LINE)
            return hc_error_set(err, HC_ERR_PARSE, "consumer output line %zu is longer than %d KiB",
                                cap->n_lines + 1, MAX_OUTPUT_LINE >> 10) == HC_OK;
    }
    if (at_end && hc_proc_stdout(p) < 0 && rd->len) { /* a last line without '\n' */
        if (!add_line(cap, rd->buf, rd->len, now))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory") == HC_OK;
        rd->len = 0;
    }
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
        if (hc_broker_poll_events(c->broker, on_broker_event, &r, err) != HC_OK)
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

static hc_err run_replay(struct hv_consumer *c, struct source *s, hc_proc *p, struct reader *rd,
                         struct hv_capture *cap, const char *timing, hc_error *err)
{
    struct hc_replay_options ro;
    struct replay_job job;
    struct hc_replay_stats st;
    pthread_t th;
    char client_id[128];
    int64_t deadline = hc_time_monotonic_ns() + c->o->timeout_ns, done_ns = 0;
    hc_err rc;

    memset(&ro, 0, sizeof(ro));
    memset(&job, 0, sizeof(job));
    hc_mqtt_client_id("hverify", client_id, sizeof(client_id));
    ro.mqtt.url = c->info->publisher_url;
    ro.mqtt.client_id = client_id;
    ro.mqtt.username = c->info->publisher_user;
    ro.mqtt.password = c->info->publisher_password;
    ro.mqtt.cancel = &tool_stop_requested;
    rc = parse_timing(timing, &ro.sched, err);
    if (rc != HC_OK)
        return rc;
    replay_stop = 0;
    ro.stop = &replay_stop;
    ro.qos = -1;
    ro.integration_id = c->info->integration_id;
    ro.api_key_id = c->info->api_key_id;
    ro.fanout = 1;
    ro.connections = 1;
    ro.shard_k = ro.shard_n = 1;
    ro.loops = 1;
    rc = hc_replay_new(&ro, &job.engine, err);
    if (rc != HC_OK)
        return hc_error_prefix(err, "cannot replay into the private broker");
    job.src = (struct hc_replay_source){src_open, src_next, src_close, s};
    job.err = (hc_error)HC_ERROR_INIT;
    if (pthread_create(&th, NULL, replay_thread, &job) != 0) {
        hc_replay_free(job.engine);
        return hc_error_set(err, HC_ERR_IO, "cannot start the replay thread");
    }
    /* Read while the replay runs; then until the output has been still for --settle. */
    for (;;) {
        int64_t now;

        if (!read_output(c, p, rd, cap, false, err)) {
            rc = err->code;
            break;
        }
        now = hc_time_monotonic_ns();
        if (!done_ns && atomic_load(&job.done))
            done_ns = now;
        if (done_ns && now - done_ns >= c->o->settle_ns && now - rd->last_ns >= c->o->settle_ns)
            break;
        if (done_ns && hc_proc_exited(p, NULL) && hc_proc_stdout(p) < 0)
            break;
        if (tool_stop_requested) {
            rc = hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the consumer");
            break;
        }
        if (now >= deadline) {
            rc = hc_error_set(err, HC_ERR_TIMEOUT,
                              "case timed out after %.3gs (%s); raise --timeout",
                              (double)c->o->timeout_ns / 1e9,
                              done_ns ? "the consumer's output never stayed still for --settle"
                                      : "the replay had not finished");
            break;
        }
        wait_output(p, 10);
    }
    replay_stop = 1;
    pthread_join(th, NULL);
    hc_replay_get_stats(job.engine, &st);
    cap->sent = (long)st.sent;
    cap->failed = (long)st.failed;
    if (rc == HC_OK && job.rc != HC_OK) {
        *err = job.err;
        rc = hc_error_prefix(err, "replay");
    }
    hc_replay_free(job.engine);
    return rc;
}

hc_err hv_consumer_run_case(struct hv_consumer *c, const char *dir, const char *timing,
                            struct hv_capture *cap, hc_error *err)
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
    memset(cap, 0, sizeof(*cap));
    snprintf(cap->timing, sizeof(cap->timing), "%s", timing ? timing : "max");
    rc = load_inputs(c, dir, &s, cap, err);
    if (rc != HC_OK)
        goto out;
    /* forget what earlier cases' clients did */
    rc = hc_broker_poll_events(c->broker, on_broker_event,
                               &(struct readiness){c, &(struct hv_capture){0}, 0, 0, {0}, 0}, err);
    if (rc != HC_OK)
        goto out;
    cmd = expand_command(c, c->o->consumer);
    if (!cmd) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < 7; i++)
        env[i] = c->env[i];
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
        rc = run_replay(c, &s, p, &rd, cap, timing, err);
    if (rc != HC_OK) {
        hc_error tmp = HC_ERROR_INIT;

        stop_consumer(c, p, &rd, cap, &tmp);
        goto out;
    }
    stop_consumer(c, p, &rd, cap, err);
    rc = err->code == HC_OK ? HC_OK : err->code;
out:
    hc_proc_free(p);
    free(cmd);
    free(rd.buf);
    free_source(&s);
    return rc;
}

long hv_capture_attribute(const struct hv_capture *cap, const char *line)
{
    long best = -1;

    if (!line)
        return -1;
    for (size_t i = 0; i < cap->n_inputs; i++) {
        const struct hv_input_info *in = &cap->inputs[i];

        if (!in->device || !in->measured_at || !strstr(line, in->device) ||
            !strstr(line, in->measured_at))
            continue;
        if (in->type && strstr(line, in->type))
            return (long)i; /* the type named too: no better match */
        if (best < 0)
            best = (long)i;
    }
    return best;
}

void hv_capture_release(struct hv_capture *cap)
{
    for (size_t i = 0; i < cap->n_lines; i++)
        free(cap->lines[i]);
    free(cap->lines);
    free(cap->line_ns);
    for (size_t i = 0; i < cap->n_inputs; i++) {
        free(cap->inputs[i].topic);
        free(cap->inputs[i].type);
        free(cap->inputs[i].device);
        free(cap->inputs[i].measured_at);
    }
    free(cap->inputs);
    memset(cap, 0, sizeof(*cap));
}

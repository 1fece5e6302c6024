/*
 * hgen's work: pull messages from libcore's generator and write them into a recording (as if
 * hrecord had captured them: one session, received_at = measured_at + delivery latency, QoS 1),
 * as JSON lines on standard output, or publish them to a broker on an absolute schedule
 * (CLOCK_MONOTONIC, TIMER_ABSTIME: sleeping per-message deltas would let errors accumulate).
 *
 * For a recording or JSON lines, the generator runs in a thread of its own, a few blocks of
 * messages ahead of the writer: SQLite's inserts are the bottleneck, and on two cores the
 * generating then costs nothing on that path. The order and bytes are those of a single thread.
 */
#include "hgen.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hcore/jsonl.h"
#include "hcore/store.h"
#include "hcore/timefmt.h"

static void count_message(struct hgen_summary *sum, const struct hc_gen_msg *m)
{
    int i;

    if (sum->messages == 0)
        sum->first_measured_ns = m->measured_at_ns;
    sum->last_measured_ns = m->measured_at_ns;
    sum->messages++;
    sum->per_kind[m->kind]++;
    /* type names are the generator's static strings: a pointer match is the rule */
    for (i = 0; i < sum->n_types; i++)
        if (sum->type_names[i] == m->type)
            break;
    if (i == sum->n_types)
        for (i = 0; i < sum->n_types; i++)
            if (strcmp(sum->type_names[i], m->type) == 0)
                break;
    if (i == sum->n_types) {
        if (sum->n_types == (int)(sizeof(sum->type_names) / sizeof(sum->type_names[0])))
            return;
        sum->type_names[sum->n_types++] = m->type;
    }
    sum->per_type[i]++;
}

static bool limit_reached(const struct hgen_opts *o, const struct hgen_summary *sum)
{
    return o->count > 0 && sum->messages >= o->count;
}

/* ---- the generator, a thread ahead of the writer ----------------------------------------- */

enum { PIPE_BLOCKS = 4, BLOCK_MSGS = 1024, BLOCK_BYTES = 512 * 1024 };
/* the generator's own buffers: topic[512], payload[1024], each NUL-terminated here */
#define MSG_BYTES_MAX (512 + 1024 + 2)

struct pipe_block {
    struct hc_gen_msg msgs[BLOCK_MSGS];
    size_t n;
    char *bytes; /* BLOCK_BYTES: the messages' topics and payloads */
};

/*
 * Blocks go round the ring: the generator fills blocks[filled % PIPE_BLOCKS] while fewer than
 * PIPE_BLOCKS are unread, the writer reads blocks[taken % PIPE_BLOCKS]. Without a thread (it
 * could not be started), next() calls the generator directly.
 */
struct source {
    hc_gen *g;
    int64_t limit; /* messages to generate; 0: all */
    bool threaded;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct pipe_block blocks[PIPE_BLOCKS];
    uint64_t filled, taken; /* blocks, under lock */
    bool gen_done;          /* no block after `filled`, under lock */
    bool quit;              /* the writer stopped reading, under lock */
    struct pipe_block *cur; /* the writer's block (it owns it until the next one) */
    size_t cur_i;
    int64_t produced; /* generator thread only */
};

static bool fill_block(struct source *src, struct pipe_block *b)
{
    size_t used = 0;

    b->n = 0;
    while (b->n < BLOCK_MSGS && used + MSG_BYTES_MAX <= BLOCK_BYTES) {
        struct hc_gen_msg *m = &b->msgs[b->n];
        size_t topic_len;

        if ((src->limit > 0 && src->produced >= src->limit) || tool_stop_requested ||
            hc_gen_next(src->g, m) != HC_OK)
            return false;
        /* the generator's buffers are reused by its next call: copy the bytes out */
        topic_len = strlen(m->topic) + 1;
        memcpy(b->bytes + used, m->topic, topic_len);
        m->topic = b->bytes + used;
        used += topic_len;
        memcpy(b->bytes + used, m->payload, m->payload_len);
        b->bytes[used + m->payload_len] = '\0';
        m->payload = b->bytes + used;
        used += m->payload_len + 1;
        b->n++;
        src->produced++;
    }
    return true;
}

static void *generate_thread(void *arg)
{
    struct source *src = arg;
    bool more = true;

    while (more) {
        struct pipe_block *b;
        pthread_mutex_lock(&src->lock);
        while (src->filled - src->taken >= PIPE_BLOCKS && !src->quit)
            pthread_cond_wait(&src->changed, &src->lock);
        if (src->quit) {
            pthread_mutex_unlock(&src->lock);
            break;
        }
        b = &src->blocks[src->filled % PIPE_BLOCKS];
        pthread_mutex_unlock(&src->lock);

        more = fill_block(src, b);

        pthread_mutex_lock(&src->lock);
        if (b->n > 0)
            src->filled++;
        src->gen_done = !more;
        pthread_cond_broadcast(&src->changed);
        pthread_mutex_unlock(&src->lock);
    }
    return NULL;
}

static void source_start(struct source *src, hc_gen *g, int64_t limit)
{
    sigset_t block, old;
    int i;

    memset(src, 0, sizeof(*src));
    src->g = g;
    src->limit = limit;
    for (i = 0; i < PIPE_BLOCKS; i++)
        if (!(src->blocks[i].bytes = malloc(BLOCK_BYTES)))
            goto direct;
    if (pthread_mutex_init(&src->lock, NULL) != 0)
        goto direct;
    if (pthread_cond_init(&src->changed, NULL) != 0) {
        pthread_mutex_destroy(&src->lock);
        goto direct;
    }
    /* signals are for the writer (it may be waiting in a system call); the thread only polls */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    src->threaded = pthread_create(&src->thread, NULL, generate_thread, src) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (src->threaded)
        return;
    pthread_cond_destroy(&src->changed);
    pthread_mutex_destroy(&src->lock);
direct:
    for (i = 0; i < PIPE_BLOCKS; i++) {
        free(src->blocks[i].bytes);
        src->blocks[i].bytes = NULL;
    }
}

/* The next message in generation order: HC_OK or HC_DONE. */
static hc_err source_next(struct source *src, struct hc_gen_msg *m)
{
    if (!src->threaded) {
        if (src->limit > 0 && src->produced >= src->limit)
            return HC_DONE;
        if (hc_gen_next(src->g, m) != HC_OK)
            return HC_DONE;
        src->produced++;
        return HC_OK;
    }
    if (!src->cur || src->cur_i == src->cur->n) {
        pthread_mutex_lock(&src->lock);
        if (src->cur) { /* hand the block back */
            src->taken++;
            src->cur = NULL;
            pthread_cond_broadcast(&src->changed);
        }
        while (src->filled == src->taken && !src->gen_done)
            pthread_cond_wait(&src->changed, &src->lock);
        if (src->filled > src->taken) {
            src->cur = &src->blocks[src->taken % PIPE_BLOCKS];
            src->cur_i = 0;
        }
        pthread_mutex_unlock(&src->lock);
        if (!src->cur)
            return HC_DONE;
    }
    *m = src->cur->msgs[src->cur_i++];
    return HC_OK;
}

static void source_stop(struct source *src)
{
    int i;

    if (!src->threaded)
        return;
    pthread_mutex_lock(&src->lock);
    src->quit = true;
    pthread_cond_broadcast(&src->changed);
    pthread_mutex_unlock(&src->lock);
    pthread_join(src->thread, NULL);
    pthread_cond_destroy(&src->changed);
    pthread_mutex_destroy(&src->lock);
    for (i = 0; i < PIPE_BLOCKS; i++)
        free(src->blocks[i].bytes);
    src->threaded = false;
}

static char *describe(const struct hgen_opts *o, char *buf, size_t size)
{
    char start[40];
    size_t n;
    int k;

    hc_time_format_rfc3339(o->gen.start_ns, 3, start, sizeof(start));
    n = (size_t)snprintf(buf, size, "seed=%llu start=%s duration_ms=%lld shapes=%s%s devices=",
                         (unsigned long long)o->gen.seed, start,
                         (long long)(o->gen.duration_ns / 1000000),
                         o->gen.shapes == HC_GEN_SHAPES_MIXED ? "mixed" : "canonical",
                         o->gen.thingsee ? " thingsee" : "");
    for (k = 0; k < HC_GEN_KIND__COUNT && n < size; k++)
        if (o->gen.devices[k])
            n += (size_t)snprintf(buf + n, size - n, "%s%s=%ld", buf[n - 1] == '=' ? "" : ",",
                                  hc_gen_kind_name((enum hc_gen_kind)k), o->gen.devices[k]);
    return buf;
}

static hc_err write_meta(hc_store *st, const struct hgen_opts *o, hc_error *err)
{
    char text[512], when[40];
    hc_err rc;

    hc_time_format_rfc3339(hc_time_realtime_ns(), 3, when, sizeof(when));
    rc = hc_store_meta_set(st, "created_at", when, err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(st, "tool", "hgen", err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(st, "tool_version", HKIT_VERSION, err);
    if (rc == HC_OK && !o->gen.thingsee)
        rc = hc_store_meta_set(
            st, "integration_id",
            o->gen.integration_id ? o->gen.integration_id : HC_GEN_DEFAULT_INTEGRATION_ID, err);
    if (rc == HC_OK && !o->gen.thingsee)
        rc = hc_store_meta_set(st, "api_key_id",
                               o->gen.api_key_id ? o->gen.api_key_id : HC_GEN_DEFAULT_API_KEY_ID,
                               err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(st, "generator", describe(o, text, sizeof(text)), err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(st, "note", "synthetic traffic generated by hgen", err);
    return rc;
}

static void fill_msg(struct hc_msg *msg, const struct hc_gen_msg *m, int64_t session_start_ns)
{
    memset(msg, 0, sizeof(*msg));
    msg->received_at_ns = m->received_at_ns;
    msg->mono_ns = m->received_at_ns - session_start_ns;
    msg->timeline_ns = m->received_at_ns;
    msg->topic = m->topic;
    msg->payload = (const unsigned char *)m->payload;
    msg->payload_len = m->payload_len;
    msg->qos = 1;
}

static hc_err run_db(const struct hgen_opts *o, hc_gen *g, struct hgen_summary *sum, hc_error *err)
{
    hc_store *st = NULL;
    struct source src;
    struct hc_gen_msg m = {0};
    struct hc_msg msg;
    int64_t session = 0, session_start = o->gen.start_ns;
    hc_err rc, close_rc;

    rc = hc_store_open(o->output_path, o->force ? HC_STORE_FORCE : HC_STORE_CREATE, &st, err);
    if (rc != HC_OK) {
        if (rc == HC_ERR_EXISTS)
            hc_error_set(err, rc, "'%s' already exists (use --force to replace it)",
                         o->output_path);
        return rc;
    }
    /* nothing waits for these rows: large batches, committed at the end or when full */
    hc_store_set_flush_interval(st, 5000000000LL);
    hc_store_set_batch_rows(st, 50000);
    rc = write_meta(st, o, err);
    if (rc == HC_OK)
        rc = hc_store_session_begin(st, session_start, 0, &session, err);
    if (rc == HC_OK) {
        /* constant for the run: set once, the fields that vary are set per message */
        fill_msg(&msg, &m, session_start);
        msg.session_id = session;
        source_start(&src, g, o->count);
        while (rc == HC_OK && !tool_stop_requested && source_next(&src, &m) == HC_OK) {
            msg.received_at_ns = m.received_at_ns;
            msg.mono_ns = m.received_at_ns - session_start;
            msg.timeline_ns = m.received_at_ns;
            msg.topic = m.topic;
            msg.payload = (const unsigned char *)m.payload;
            msg.payload_len = m.payload_len;
            rc = hc_store_append(st, &msg, NULL, err);
            if (rc == HC_OK)
                count_message(sum, &m);
        }
        source_stop(&src);
    }
    if (rc == HC_OK && session)
        rc = hc_store_session_end(st, session,
                                  sum->messages ? m.received_at_ns + 1000000
                                                : o->gen.start_ns + o->gen.duration_ns,
                                  tool_stop_requested ? "interrupted" : "clean exit", err);
    sum->interrupted = tool_stop_requested != 0;
    close_rc = hc_store_close(st, rc == HC_OK ? err : NULL);
    return rc != HC_OK ? rc : close_rc;
}

static hc_err run_jsonl(const struct hgen_opts *o, hc_gen *g, struct hgen_summary *sum,
                        hc_error *err)
{
    static char buf[1 << 20];
    struct source src;
    struct hc_gen_msg m;
    struct hc_msg msg;
    hc_err rc = HC_OK;

    setvbuf(stdout, buf, _IOFBF, sizeof(buf));
    source_start(&src, g, o->count);
    while (!tool_stop_requested && source_next(&src, &m) == HC_OK) {
        fill_msg(&msg, &m, o->gen.start_ns);
        msg.session_id = 1;
        msg.seq = sum->messages + 1;
        rc = hc_jsonl_write(stdout, &msg, NULL, err);
        if (rc != HC_OK)
            break;
        count_message(sum, &m);
    }
    source_stop(&src);
    sum->interrupted = tool_stop_requested != 0;
    if (rc == HC_OK && fflush(stdout) != 0)
        rc = hc_error_set(err, HC_ERR_IO, "cannot write to standard output: %s",
                          strerror(errno ? errno : EIO));
    if (rc != HC_OK && tool_output_closed(stdout))
        rc = HC_OK; /* the reader went away (hgen --jsonl | head): a normal end, see hgen_report */
    return rc;
}

/* Sleeps until the CLOCK_MONOTONIC instant due_ns, in slices so a signal is noticed soon. */
static void sleep_until(int64_t due_ns)
{
    for (;;) {
        int64_t now = hc_time_monotonic_ns(), until = due_ns;
        struct timespec ts;
        if (now >= due_ns || tool_stop_requested)
            return;
        if (until - now > 200000000)
            until = now + 200000000;
        ts.tv_sec = (time_t)(until / 1000000000);
        ts.tv_nsec = (long)(until % 1000000000);
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

static hc_err run_mqtt(const struct hgen_opts *o, hc_gen *g, struct hgen_summary *sum,
                       hc_error *err)
{
    hc_mqtt *mq = NULL;
    struct hc_gen_msg m;
    struct hc_mqtt_options mo = o->conn;
    int64_t t0;
    hc_err rc;

    mo.cancel = &tool_stop_requested; /* Ctrl-C ends every wait within ~100 ms */
    rc = hc_mqtt_new(&mo, HC_MQTT_PUBLISHER, &mq, err);
    if (rc == HC_OK)
        rc = hc_mqtt_connect(mq, err);
    if (rc != HC_OK) {
        hc_mqtt_free(mq);
        return rc;
    }
    tool_info("connected to %s; publishing", o->conn.url);
    t0 = hc_time_monotonic_ns();
    while (!limit_reached(o, sum) && !tool_stop_requested) {
        if (hc_gen_next(g, &m) != HC_OK)
            break;
        if (o->pace == HGEN_PACE_SPEED)
            sleep_until(t0 + (int64_t)((double)(m.measured_at_ns - o->gen.start_ns) / o->speed));
        else if (o->pace == HGEN_PACE_RATE)
            sleep_until(t0 + (int64_t)((double)sum->messages * 1e9 / o->rate));
        if (tool_stop_requested)
            break;
        rc = hc_mqtt_publish(mq, m.topic, m.payload, m.payload_len, (int)o->qos, false, NULL, err);
        if (rc != HC_OK)
            break;
        count_message(sum, &m);
        if (tool_status_enabled() && sum->messages % 1000 == 0)
            tool_status("%lld messages published", (long long)sum->messages);
    }
    tool_status_clear();
    sum->interrupted = tool_stop_requested != 0;
    if (rc == HC_OK) {
        /*
         * Every acknowledgement, and (plain TCP) proof that the broker read the QoS 0 messages
         * too; after Ctrl-C only a short grace.
         */
        if (tool_stop_requested)
            hc_mqtt_set_cancel(mq, NULL);
        rc = hc_mqtt_wait_all(mq, tool_stop_requested ? HC_MQTT_STOP_GRACE_MS : 30000, err);
        if (rc != HC_OK)
            hc_error_prefix(err, "delivery of the last messages not confirmed (%zu of %lld "
                                 "unacknowledged)",
                            hc_mqtt_inflight(mq), (long long)sum->messages);
    }
    /* what was to be confirmed has been waited for (or given up on) above */
    hc_mqtt_disconnect(mq, 0);
    hc_mqtt_free(mq);
    return rc;
}

hc_err hgen_run(struct hgen_opts *o, struct hgen_summary *sum, hc_error *err)
{
    hc_gen *g = NULL;
    int64_t t_start;
    hc_err rc;

    memset(sum, 0, sizeof(*sum));
    rc = hc_gen_new(&o->gen, &g, err);
    if (rc != HC_OK)
        return rc;
    t_start = hc_time_monotonic_ns();
    switch (o->output) {
    case HGEN_OUT_DB:
        rc = run_db(o, g, sum, err);
        break;
    case HGEN_OUT_JSONL:
        rc = run_jsonl(o, g, sum, err);
        break;
    case HGEN_OUT_MQTT:
        rc = run_mqtt(o, g, sum, err);
        break;
    case HGEN_OUT_NONE:
    default:
        rc = hc_error_set(err, HC_ERR_INVALID, "no output");
        break;
    }
    sum->elapsed_s = (double)(hc_time_monotonic_ns() - t_start) / 1e9;
    hc_gen_free(g);
    return rc;
}

void hgen_report(const struct hgen_opts *o, const struct hgen_summary *sum)
{
    char first[40], last[40], line[1024];
    size_t n;
    int k, i;

    if (o->output == HGEN_OUT_JSONL && tool_output_closed(stdout)) {
        /* quiet, as yes is: counts of what was generated would claim it was read */
        tool_output_discard(stdout);
        return;
    }
    if (o->quiet)
        return;
    hc_time_format_rfc3339(sum->first_measured_ns, 3, first, sizeof(first));
    hc_time_format_rfc3339(sum->last_measured_ns, 3, last, sizeof(last));
    fprintf(stderr, "%s: %lld messages%s, measured_at %s .. %s, seed %llu, %.2f s (%.0f msg/s)\n",
            tool_name, (long long)sum->messages, sum->interrupted ? " (interrupted)" : "",
            sum->messages ? first : "-", sum->messages ? last : "-",
            (unsigned long long)o->gen.seed, sum->elapsed_s,
            sum->elapsed_s > 0 ? (double)sum->messages / sum->elapsed_s : 0.0);
    n = 0;
    for (k = 0; k < HC_GEN_KIND__COUNT && n < sizeof(line); k++)
        if (o->gen.devices[k])
            n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%lld (%ld devices)",
                                  hc_gen_kind_name((enum hc_gen_kind)k),
                                  (long long)sum->per_kind[k], o->gen.devices[k]);
    fprintf(stderr, "%s: per kind:%s\n", tool_name, line);
    n = 0;
    line[0] = '\0';
    for (i = 0; i < sum->n_types && n < sizeof(line); i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%lld", sum->type_names[i],
                              (long long)sum->per_type[i]);
    fprintf(stderr, "%s: per type:%s\n", tool_name, line);
}

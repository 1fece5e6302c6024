/*
 * The replay engine (see hcore/replay.h): schedule, rewriting, connections, resuming and the
 * figures of a run.
 *
 * Resuming at QoS 1/2: each connection keeps a copy of its last messages in a ring indexed by
 * ticket (4 x the in-flight window). A slot is reused only once its ticket is acknowledged, so
 * after a lost connection every unacknowledged message is still there to resend in order.
 */
#include "hcore/replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hcore/log.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"
#include "internal.h"

#define PROGRESS_EVERY_NS 250000000LL
#define BACKOFF_MIN_NS 100000000LL    /* first wait before reconnecting after a fruitless loss */
#define BACKOFF_MAX_NS 5000000000LL   /* backoff doubles up to this */
#define PROGRESS_AGE_NS 10000000000LL /* a connection that lived this long made progress */
#define INTERRUPT_DRAIN_MS 1000       /* after a stop, acknowledgements are awaited this long */
#define MAX_FAILURES_SHOWN 10         /* failed messages named one by one, then only counted */
#define DEFAULT_GIVE_UP_NS (60LL * 1000000000LL)
#define SAFE_QOS2_WINDOW 20 /* QoS 2 window when the broker does not state its limit */

/* --- small helpers ---------------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static bool buf_put(struct buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static int64_t mono_now(void)
{
    return hc_time_monotonic_ns();
}

/*
 * The replay clock: the real one, except that the last spin_ns before a due time are spent
 * polling the clock instead of sleeping (--spin). clock_nanosleep wakes ~40 µs late even with a
 * 1 ns timer slack (p99 ~110 µs); sleeping to spin_ns early and then spinning puts the median
 * within a few µs, at the cost of up to spin_ns of CPU per message.
 */
struct spin_clock {
    const struct hc_clock *real;
    int64_t spin_ns;
};

static void spin_sleep_until(void *ctx, int64_t deadline_ns)
{
    const struct spin_clock *sc = ctx;
    const struct hc_clock *real = sc->real;
    int64_t now = real->now_ns(real->ctx);

    if (deadline_ns - now > sc->spin_ns) {
        real->sleep_until_ns(real->ctx, deadline_ns - sc->spin_ns);
        return; /* hc_sched_wait asks again: what is left is spun */
    }
    while (now < deadline_ns)
        now = real->now_ns(real->ctx);
}

static int64_t spin_now(void *ctx)
{
    const struct spin_clock *sc = ctx;
    return sc->real->now_ns(sc->real->ctx);
}

static void nap_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    nanosleep(&ts, NULL);
}

uint64_t hc_replay_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    /* splitmix64's finaliser spreads FNV's weak low bits over the whole word */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static uint64_t mix64(uint64_t h)
{
    h += 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

void hc_replay_fanout_id(const char *device, size_t len, long k, char *buf)
{
    uint64_t a = mix64(hc_replay_hash(device, len) ^ ((uint64_t)k * 0xd6e8feb86659fd93ULL));
    uint64_t b = mix64(a ^ 0x5851f42d4c957f2dULL);

    snprintf(buf, 37, "%08" PRIx32 "-%04" PRIx32 "-8%03" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
             (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffffu, (uint32_t)a & 0xfffu,
             (uint32_t)(0x8000u | ((b >> 48) & 0x3fffu)), (uint64_t)(b & 0xffffffffffffULL));
}

/* --- connections ----------------------------------------------------------------------------- */

struct entry {
    uint64_t ticket; /* 0: empty */
    char *topic;
    size_t topic_cap;
    unsigned char *payload;
    size_t payload_cap, len;
    int qos;
    bool retain;
};

struct conn {
    hc_mqtt *m;
    char client_id[200];
    struct entry *ring;
    size_t ring_cap;
    uint64_t last_ticket;
    uint64_t oldest_known; /* a lower bound of the oldest unacknowledged ticket */
    uint64_t qos0_since_connect; /* QoS 0 messages the broker has not been seen to read */
    /* reconnecting: a loss without progress since the last connect is a strike */
    int64_t connected_at;     /* CLOCK_MONOTONIC */
    uint64_t acked_at_connect;
    int strikes;
    int64_t trouble_since; /* CLOCK_MONOTONIC: the first loss of the current fruitless series */
    int64_t backoff_ns;
};

struct hc_replay {
    struct hc_replay_options o; /* strings and remaps borrowed from the caller */
    struct hc_mqtt_options mo;
    struct hc_mqtt_url url;
    struct spin_clock spin;
    struct hc_clock spin_clock;
    struct conn *conns;
    size_t n_conns;
    hc_sched *sched;
    struct buf remapped, topic, payload;
    int64_t start_real;
    int64_t rebase_first;
    bool have_rebase_first;
    bool fatal; /* a connection could not be restored */
    int64_t last_progress;
    volatile sig_atomic_t never; /* the stop flag when the caller gives none */
    struct hc_replay_stats st;
    hc_faults_stream *faults; /* faults: NULL without a plan */
    bool publish_dup;         /* faults: publish() sets the DUP flag (redeliver) */
};

static bool stopped(const struct hc_replay *r)
{
    return *r->o.stop != 0;
}

static hc_err ring_reserve(struct entry *e, const char *topic, const void *payload, size_t len)
{
    size_t tlen = strlen(topic) + 1;
    if (tlen > e->topic_cap) {
        char *p = realloc(e->topic, tlen);
        if (!p)
            return HC_ERR_NOMEM;
        e->topic = p;
        e->topic_cap = tlen;
    }
    if (len > e->payload_cap) {
        unsigned char *p = realloc(e->payload, len);
        if (!p)
            return HC_ERR_NOMEM;
        e->payload = p;
        e->payload_cap = len;
    }
    memcpy(e->topic, topic, tlen);
    if (len)
        memcpy(e->payload, payload, len);
    e->len = len;
    return HC_OK;
}

/* Waits until the ring slot the next ticket will use holds an acknowledged message. */
static hc_err ring_make_room(struct conn *c)
{
    uint64_t next = c->last_ticket + 1;
    uint64_t victim;

    if (next <= c->ring_cap)
        return HC_OK;
    victim = next - c->ring_cap;
    if (victim < c->oldest_known)
        return HC_OK;
    for (;;) {
        c->oldest_known = hc_mqtt_oldest_unacked(c->m);
        if (victim < c->oldest_known)
            return HC_OK;
        if (!hc_mqtt_is_connected(c->m))
            return HC_ERR_CONNECTION_LOST;
        nap_ns(200000);
    }
}

static hc_err connect_initial(struct hc_replay *r, struct conn *c, hc_error *err)
{
    struct hc_mqtt_options mo = r->mo;
    hc_err rc;

    mo.client_id = c->client_id;
    rc = hc_mqtt_new(&mo, HC_MQTT_PUBLISHER, &c->m, err);
    if (rc != HC_OK)
        return rc;
    rc = hc_mqtt_connect(c->m, err);
    if (rc != HC_OK)
        return rc;
    /*
     * Many messages per write, far fewer system calls: --max flushes when the buffer fills,
     * timed replays before every sleep (see replay).
     */
    hc_mqtt_set_batching(c->m, true);
    c->oldest_known = hc_mqtt_oldest_unacked(c->m);
    c->connected_at = mono_now();
    c->backoff_ns = BACKOFF_MIN_NS;
    return HC_OK;
}

static hc_err publish(struct hc_replay *r, struct conn *c, const char *topic, const void *payload,
                      size_t len, int qos, bool retain, hc_error *err);

/* Names a failed message on stderr, the first MAX_FAILURES_SHOWN of them. */
static void message_failed(struct hc_replay *r, const char *topic, const char *why)
{
    char shown[200];
    hc_error tmp = HC_ERROR_INIT;

    r->st.failed++;
    if (r->st.failed > MAX_FAILURES_SHOWN)
        return;
    /* the topic may be anything a recording holds: show it the way validation errors do */
    if (hc_topic_name_validate(topic, &tmp) == HC_OK)
        snprintf(shown, sizeof(shown), "'%.150s'", topic);
    else
        snprintf(shown, sizeof(shown), "with an invalid topic");
    hc_log(HC_LOG_ERROR, "message %s failed: %s", shown, why);
    if (r->st.failed == MAX_FAILURES_SHOWN)
        hc_log(HC_LOG_ERROR, "further failed messages are counted, not shown");
}

/* Sleeps ns, waking early on Ctrl-C. */
static void nap_interruptible(const struct hc_replay *r, int64_t ns)
{
    for (int64_t slept = 0; slept < ns && !stopped(r); slept += 50000000LL)
        nap_ns(ns - slept < 50000000LL ? ns - slept : 50000000LL);
}

/*
 * Bookkeeping for a lost connection: was it a strike (no progress since it was made)? Returns
 * true when the replay should give up: --give-up has passed since this fruitless series began.
 */
static bool count_loss(struct hc_replay *r, struct conn *c, int64_t now, bool *progress_out)
{
    bool progress = hc_mqtt_acked_total(c->m) > c->acked_at_connect ||
                    now - c->connected_at >= PROGRESS_AGE_NS;

    *progress_out = progress;
    if (progress) {
        c->strikes = 1;
        c->trouble_since = now;
        c->backoff_ns = BACKOFF_MIN_NS;
    } else {
        c->strikes++;
        if (!c->trouble_since)
            c->trouble_since = now;
    }
    return now - c->trouble_since > r->o.give_up_ns;
}

/*
 * After a lost connection: reconnect with backoff, then resend what was not acknowledged. A
 * connection lost twice in a row without progress fails the oldest unacknowledged message (the
 * broker is likely refusing it: a topic it does not allow, a packet over its maximum size).
 * Everything that cannot be resent is counted as failed; QoS 0 messages the broker was not seen
 * to read count as possibly lost.
 */
static hc_err recover(struct hc_replay *r, struct conn *c, hc_error *err)
{
    uint64_t oldest = hc_mqtt_oldest_unacked(c->m);
    uint64_t last = c->last_ticket;
    struct entry *pending = NULL;
    size_t n_pending = 0, first = 0, resent = 0;
    const char *why = hc_mqtt_lost_reason(c->m);
    char reason[200];
    bool give_up, progress, wait = false, careful;
    hc_err rc = HC_OK;

    snprintf(reason, sizeof(reason), "%s", why && *why ? why : "");
    r->st.reconnects++;
    give_up = count_loss(r, c, mono_now(), &progress);
    wait = !progress; /* a fruitless connection: back off before the next one */
    if (last >= oldest) {
        pending = calloc((size_t)(last - oldest + 1), sizeof(*pending));
        if (!pending) {
            r->fatal = true;
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        }
        for (uint64_t t = oldest; t <= last; t++) {
            struct entry *e = &c->ring[t % c->ring_cap];
            if (e->ticket != t)
                continue;
            if (ring_reserve(&pending[n_pending], e->topic, e->payload, e->len) != HC_OK) {
                rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                goto out;
            }
            pending[n_pending].qos = e->qos;
            pending[n_pending].retain = e->retain;
            n_pending++;
        }
    }
    r->st.qos0_maybe_lost += c->qos0_since_connect;
    c->qos0_since_connect = 0;
    hc_mqtt_reset_inflight(c->m);
    hc_log(HC_LOG_WARNING, "connection to '%s:%d' lost%s%s; reconnecting (%zu unacknowledged messages to "
              "resend)",
              r->url.host, r->url.port, reason[0] ? ": " : "", reason, n_pending);
    if (give_up) {
        rc = hc_error_set(err, HC_ERR_CONNECTION_LOST,
                          "gave up: no progress on the connection to '%s:%d' for %.0f s",
                          r->url.host, r->url.port, (double)r->o.give_up_ns / 1e9);
        goto out;
    }

reconnect:
    for (;;) {
        hc_error cerr = HC_ERROR_INIT;
        if (stopped(r)) {
            /* Ctrl-C is a clean stop, not a failure to reconnect */
            r->st.interrupted = true;
            rc = hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted while reconnecting");
            goto out;
        }
        if (wait) {
            nap_interruptible(r, c->backoff_ns);
            if (c->backoff_ns < BACKOFF_MAX_NS)
                c->backoff_ns *= 2;
            if (stopped(r))
                continue;
        }
        wait = true;
        hc_mqtt_disconnect(c->m, 0);
        rc = hc_mqtt_connect(c->m, &cerr);
        if (rc == HC_OK)
            break;
        if (rc == HC_ERR_INTERRUPTED)
            continue;
        if (mono_now() - c->trouble_since > r->o.give_up_ns || rc != HC_ERR_CONNECT) {
            rc = hc_error_set(err, rc, "%s (gave up reconnecting)", cerr.message);
            goto out;
        }
    }
    c->connected_at = mono_now();
    c->acked_at_connect = hc_mqtt_acked_total(c->m);
    hc_log(HC_LOG_INFO, "reconnected to '%s:%d'", r->url.host, r->url.port);
    c->oldest_known = hc_mqtt_oldest_unacked(c->m);
    /*
     * Twice lost without progress: resend one message at a time, each acknowledged before the
     * next, until one is the only message in flight when the connection dies: that one the
     * broker refuses (a topic it does not allow, a packet over its maximum size), and it fails.
     * Guessing "the oldest unacknowledged" instead is wrong when the broker's close resets the
     * connection: the acknowledgements it sent last are then lost with it.
     */
    careful = c->strikes >= 2;
    for (size_t i = first; i < n_pending; i++) {
        if (careful) {
            hc_error perr = HC_ERROR_INIT;
            rc = hc_mqtt_publish(c->m, pending[i].topic, pending[i].payload, pending[i].len,
                                 pending[i].qos, pending[i].retain, NULL, &perr);
            if (rc == HC_OK)
                rc = hc_mqtt_wait_all(c->m, r->o.give_up_ns > 0
                                                ? (int)(r->o.give_up_ns / 1000000)
                                                : 60000,
                                      &perr);
            if (rc == HC_ERR_CONNECTION_LOST) {
                message_failed(r, pending[i].topic,
                               "the broker closed the connection on it, alone in flight, after "
                               "two lost connections (does the broker refuse it?)");
                first = i + 1;
                resent = 0; /* those before it are counted in r->st.resent */
                c->strikes = 0;
                r->st.reconnects++;
                hc_mqtt_reset_inflight(c->m);
                if (count_loss(r, c, mono_now(), &progress))
                    goto give_up;
                wait = !progress;
                goto reconnect;
            }
            if (rc != HC_OK) {
                hc_error_set(err, rc, "%s", perr.message);
                goto out;
            }
        } else {
            rc = publish(r, c, pending[i].topic, pending[i].payload, pending[i].len,
                         pending[i].qos, pending[i].retain, err);
            if (rc != HC_OK)
                goto out;
        }
        resent++;
        r->st.resent++;
    }
    if (careful)
        c->strikes = 0;
    goto out;
give_up:
    rc = hc_error_set(err, HC_ERR_CONNECTION_LOST,
                      "gave up: no progress on the connection to '%s:%d' for %.0f s", r->url.host,
                      r->url.port, (double)r->o.give_up_ns / 1e9);
out:
    if (rc != HC_OK) {
        /* what could not be resent was never confirmed: it failed */
        r->st.failed += n_pending - first - resent;
        if (rc != HC_ERR_INTERRUPTED)
            r->fatal = true;
    }
    for (size_t i = 0; i < n_pending; i++) {
        free(pending[i].topic);
        free(pending[i].payload);
    }
    free(pending);
    return rc;
}

/*
 * Publishes one message, reconnecting as needed. HC_OK when sent; r->fatal is set when the
 * connection could not be restored; other errors concern this message only.
 */
static hc_err publish(struct hc_replay *r, struct conn *c, const char *topic, const void *payload,
                      size_t len, int qos, bool retain, hc_error *err)
{
    uint64_t ticket = 0;
    hc_err rc;

    for (;;) {
        rc = qos > 0 ? ring_make_room(c) : HC_OK;
        if (rc == HC_OK)
            rc = (r->publish_dup ? hc_mqtt_publish_dup : hc_mqtt_publish)(
                c->m, topic, payload, len, qos, retain, &ticket, err);
        if (rc == HC_OK)
            break;
        if (rc == HC_ERR_INTERRUPTED) {
            r->st.interrupted = true;
            return rc;
        }
        if (rc != HC_ERR_CONNECTION_LOST)
            return rc;
        rc = recover(r, c, err);
        if (rc != HC_OK)
            return rc;
    }
    if (qos > 0) {
        struct entry *e = &c->ring[ticket % c->ring_cap];
        if (ring_reserve(e, topic, payload, len) != HC_OK) {
            r->fatal = true;
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        }
        e->ticket = ticket;
        e->qos = qos;
        e->retain = retain;
        c->last_ticket = ticket;
    } else {
        c->qos0_since_connect++;
    }
    return HC_OK;
}

/*
 * Waits for every acknowledgement, resending after a lost connection. On success the broker
 * has also read every QoS 0 message (hc_mqtt_wait_all's ping), so none of them counts as
 * possibly lost; otherwise every unconfirmed message is counted.
 */
static void drain(struct hc_replay *r, struct conn *c, int timeout_ms)
{
    for (;;) {
        hc_error err = HC_ERROR_INIT;
        hc_err rc = hc_mqtt_wait_all(c->m, timeout_ms, &err);
        if (rc == HC_OK) {
            c->qos0_since_connect = 0;
            return;
        }
        if (rc == HC_ERR_CONNECTION_LOST && !r->fatal && !stopped(r)) {
            if (recover(r, c, &err) == HC_OK)
                continue;
        }
        hc_log(HC_LOG_ERROR, "%s", err.message);
        if (rc == HC_ERR_INTERRUPTED)
            r->st.interrupted = true;
        r->st.failed += hc_mqtt_inflight(c->m);
        r->st.qos0_maybe_lost += c->qos0_since_connect;
        c->qos0_since_connect = 0;
        hc_mqtt_reset_inflight(c->m);
        return;
    }
}

/* --- rewriting ------------------------------------------------------------------------------- */

/* Number of levels of a topic, and whether it has one of the shapes that name a device last. */
static bool names_device(const char *topic)
{
    size_t levels = 1;
    for (const char *p = topic; *p; p++)
        levels += *p == '/';
    if (levels != 7)
        return false;
    return strncmp(topic, "haltian-iot/events/", 19) == 0 ||
           strncmp(topic, "cloudext/json/", 14) == 0;
}

/*
 * Builds the topic to publish for copy k (0 = the device itself) into r->topic, and points
 * *key and *key_len at what decides the connection and shard: the (derived) device id, or the
 * whole topic when it names no device. Order: --remap on the recorded topic; then, on
 * haltian-iot/events/ topics, --integration-id and --api-key-id replace levels 3 and 4; then for
 * k > 0 the last level (the device id of a recorded Haltian or Thingsee topic) is replaced.
 */
static bool build_topic(struct hc_replay *r, const char *topic, long k, const char **key, size_t *key_len,
                        bool *has_device)
{
    const struct hc_replay_options *o = &r->o;
    const char *src = topic, *p, *last;
    char derived[37];
    size_t level = 0, off;

    *has_device = names_device(topic);
    for (size_t i = 0; i < o->n_remaps; i++) {
        size_t matched;
        const char *rest, *to = o->remaps[i].to;

        if (!hc_topic_prefix_match(o->remaps[i].from, topic, &matched))
            continue;
        /* TO replaces the matched levels; the levels after them are kept */
        rest = topic + matched + (topic[matched] == '/');
        r->remapped.len = 0;
        if (!buf_put(&r->remapped, to, strlen(to)) ||
            (*to && *rest && !buf_put(&r->remapped, "/", 1)) ||
            !buf_put(&r->remapped, rest, strlen(rest)))
            return false;
        src = r->remapped.p;
        break;
    }
    r->topic.len = 0;
    if ((o->integration_id || o->api_key_id) &&
        strncmp(src, "haltian-iot/events/", 19) == 0) {
        for (p = src;; level++) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            const char *s = p;
            if (level == 2 && o->integration_id) {
                s = o->integration_id;
                len = strlen(s);
            } else if (level == 3 && o->api_key_id) {
                s = o->api_key_id;
                len = strlen(s);
            }
            if ((level && !buf_put(&r->topic, "/", 1)) || !buf_put(&r->topic, s, len))
                return false;
            if (!slash)
                break;
            p = slash + 1;
        }
    } else if (!buf_put(&r->topic, src, strlen(src))) {
        return false;
    }
    if (!*has_device) {
        *key = r->topic.p;
        *key_len = r->topic.len;
        return true;
    }
    last = strrchr(r->topic.p, '/');
    off = last ? (size_t)(last + 1 - r->topic.p) : 0;
    if (k > 0) {
        hc_replay_fanout_id(r->topic.p + off, r->topic.len - off, k, derived);
        r->topic.len = off;
        if (!buf_put(&r->topic, derived, 36))
            return false;
    }
    *key = r->topic.p + off; /* after buf_put: it may have moved the buffer */
    *key_len = r->topic.len - off;
    return true;
}

/*
 * Rewrites the "measured_at"/"received_at" string values of a JSON payload to the send time plus
 * their recorded offset from the message's arrival; every other byte is copied as it was.
 * Returns the payload to send (r->payload or the original).
 */
static const unsigned char *rebase_payload(struct hc_replay *r, const struct hc_msg *msg, size_t *len)
{
    const unsigned char *p = msg->payload;
    size_t n = msg->payload_len, pos = 0, start, end, copied = 0;
    int64_t base = msg->received_at_ns ? msg->received_at_ns : msg->timeline_ns;
    int64_t now_real = hc_time_realtime_ns(), ts, fresh;

    *len = n;
    r->payload.len = 0;
    while (hc__json_next_time(p, n, &pos, &start, &end, &ts, NULL)) {
        char text[48];

        if (base) {
            fresh = now_real + (ts - base);
        } else {
            /* no arrival time: keep the offsets between messages, starting at the replay */
            if (!r->have_rebase_first) {
                r->rebase_first = ts;
                r->have_rebase_first = true;
            }
            fresh = r->start_real + (ts - r->rebase_first);
        }
        hc_time_format_rfc3339(fresh,
                               hc__time_fraction_digits((const char *)p + start, end - start),
                               text, sizeof(text));
        buf_put(&r->payload, p + copied, start - copied);
        buf_put(&r->payload, text, strlen(text));
        copied = end;
    }
    if (!copied)
        return p;
    buf_put(&r->payload, p + copied, n - copied);
    *len = r->payload.len;
    return (const unsigned char *)r->payload.p;
}

/* --- faults (hcore/faults.h): what needs the connections ------------------------------------ */

/*
 * A connection broken on purpose: everything sent so far is confirmed first (so the stream
 * stays the same on every run: nothing is lost or resent by accident), then the connection is
 * dropped without DISCONNECT and made again.
 */
static hc_err break_connection(struct hc_replay *r, struct conn *c, hc_error *err)
{
    int keepalive = r->mo.keepalive_s > 0 ? r->mo.keepalive_s : 60;
    hc_err rc;

    for (;;) {
        hc_error werr = HC_ERROR_INIT;
        rc = hc_mqtt_wait_all(c->m, 1000 * keepalive, &werr);
        if (rc == HC_OK)
            break;
        if (rc == HC_ERR_INTERRUPTED) {
            r->st.interrupted = true;
            return hc_error_set(err, rc, "%s", werr.message);
        }
        if (rc != HC_ERR_CONNECTION_LOST)
            return hc_error_set(err, rc, "%s", werr.message);
        rc = recover(r, c, err);
        if (rc != HC_OK)
            return rc;
    }
    c->qos0_since_connect = 0;
    hc_mqtt_break(c->m);
    hc_mqtt_reset_inflight(c->m);
    r->st.faults.reconnects++;
    rc = hc_mqtt_connect(c->m, err);
    if (rc == HC_ERR_CONNECT)
        rc = recover(r, c, err); /* with its backoff and give-up */
    if (rc != HC_OK) {
        if (rc != HC_ERR_INTERRUPTED)
            r->fatal = true;
        return rc;
    }
    c->connected_at = mono_now();
    c->acked_at_connect = hc_mqtt_acked_total(c->m);
    c->oldest_known = hc_mqtt_oldest_unacked(c->m);
    return HC_OK;
}

static void fault_event(struct hc_replay *r, const struct hc_faults_out *fo, enum hc_fault_kind k,
                        const char *topic, uint64_t position, uint64_t position2, bool lost)
{
    struct hc_faults_event ev = {fo, k, topic, position, position2, lost};
    r->st.faults.applied[k]++;
    if (r->o.hooks.fault)
        r->o.hooks.fault(r->o.hooks.ctx, &ev);
}

/*
 * Publishes one faulted message (the first fan-out copy): breaks the connection first for
 * disconnect (a QoS 0 message is then lost: HC_DONE), sends it again with the DUP flag after a
 * broken connection for redeliver, and reports each fault. HC_OK counts as one send for the
 * caller; a redelivery's second send is counted here.
 */
static hc_err faults_publish(struct hc_replay *r, struct conn *c, const char *topic,
                             const void *payload, size_t len, int qos, bool retain,
                             const struct hc_faults_out *fo, hc_error *err)
{
    uint64_t position = r->st.sent + 1, position2 = 0;
    bool lost = false;
    hc_err rc;

    if (fo->applied & HC_FAULT_BIT(HC_FAULT_DISCONNECT)) {
        rc = break_connection(r, c, err);
        if (rc != HC_OK)
            return rc;
        lost = qos == 0;
    }
    if (!lost) {
        rc = publish(r, c, topic, payload, len, qos, retain, err);
        if (rc != HC_OK)
            return rc;
        if ((fo->applied & HC_FAULT_BIT(HC_FAULT_REDELIVER)) && qos > 0) {
            rc = break_connection(r, c, err);
            if (rc == HC_OK) {
                r->publish_dup = true;
                rc = publish(r, c, topic, payload, len, qos, retain, err);
                r->publish_dup = false;
            }
            if (rc != HC_OK)
                return rc;
            r->st.sent++;
            r->st.faults.duplicates++;
            position2 = position + 1;
        }
    }
    if (fo->copy)
        r->st.faults.duplicates++;
    if (lost)
        r->st.faults.lost++;
    for (int k = 0; k < HC_FAULT__COUNT; k++)
        if (fo->applied & HC_FAULT_BIT(k))
            fault_event(r, fo, (enum hc_fault_kind)k, lost ? NULL : topic,
                        lost ? 0 : position, position2, lost);
    return lost ? HC_DONE : HC_OK;
}

/* --- the replay loop ------------------------------------------------------------------------- */

/* fo: the faults applied to msg (NULL without faults) */
static hc_err replay_message(struct hc_replay *r, const struct hc_msg *msg,
                             const struct hc_faults_out *fo, hc_error *err)
{
    const struct hc_replay_options *o = &r->o;
    int qos = o->qos >= 0 ? o->qos : msg->qos;
    bool retain = o->retain_never ? false : msg->retain;

    if (fo && (fo->applied & HC_FAULT_BIT(HC_FAULT_RETAIN)))
        retain = true; /* faults: retain wins over --retain never */

    for (long k = 0; k < o->fanout; k++) {
        const char *key;
        size_t key_len;
        bool has_device;
        const unsigned char *payload = msg->payload;
        size_t len = msg->payload_len;
        uint64_t h;
        hc_err rc;

        hc_error terr = HC_ERROR_INIT;

        if (!build_topic(r, msg->topic, k, &key, &key_len, &has_device))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        if (k > 0 && !has_device)
            break; /* no device to derive copies from: the message goes out once */
        if (hc_topic_name_validate(r->topic.p, &terr) != HC_OK) {
            /* a broker closes the connection on an invalid topic: never send one */
            r->st.invalid_topics++;
            r->st.failed++;
            if (r->st.failed <= MAX_FAILURES_SHOWN) {
                hc_log(HC_LOG_ERROR, "message %" PRIu64 " not sent: %s", r->st.scheduled, terr.message);
                if (r->st.failed == MAX_FAILURES_SHOWN)
                    hc_log(HC_LOG_ERROR, "further failed messages are counted, not shown");
            }
            continue;
        }
        h = hc_replay_hash(key, key_len);
        if (o->shard_n > 1 &&
            hc_replay_shard_of(h, (unsigned)o->shard_n) != (unsigned)o->shard_k - 1) {
            r->st.other_shards++;
            continue;
        }
        if (o->rebase_time)
            payload = rebase_payload(r, msg, &len);
        if (fo && k == 0 && fo->applied)
            rc = faults_publish(r, &r->conns[hc_replay_connection_of(h, (unsigned)r->n_conns)],
                                r->topic.p, payload, len, qos, retain, fo, err);
        else
            rc = publish(r, &r->conns[hc_replay_connection_of(h, (unsigned)r->n_conns)],
                         r->topic.p, payload, len, qos, retain, err);
        if (rc == HC_OK) {
            r->st.sent++;
            if (o->hooks.published)
                o->hooks.published(o->hooks.ctx, r->topic.p, payload, len, mono_now());
            if (k == 0 && o->hooks.sent && !(fo && fo->copy))
                o->hooks.sent(o->hooks.ctx, fo ? fo->seq : r->st.scheduled, mono_now());
        } else if (rc == HC_DONE) {
            /* faults: lost at a disconnect, on purpose */
        } else if (r->fatal) {
            r->st.failed++; /* this message was never sent */
            return rc;
        } else if (rc == HC_ERR_INTERRUPTED) {
            return rc;
        } else {
            message_failed(r, r->topic.p, err->message);
        }
    }
    return HC_OK;
}

static void flush_all(struct hc_replay *r)
{
    /* a failure shows again, and is handled, at the connection's next publish */
    for (size_t i = 0; i < r->n_conns; i++)
        hc_mqtt_flush(r->conns[i].m);
}

static hc_err start_at(struct hc_replay *r, hc_error *err);

/*
 * The replay stopped early (a connection could not be restored): the rest of the pass was never
 * sent, and counts as failed, once for every copy this shard would have sent.
 */
static void count_unsent(struct hc_replay *r, const struct hc_replay_source *src)
{
    const struct hc_replay_options *o = &r->o;
    struct hc_msg msg;
    hc_error ignored = HC_ERROR_INIT;
    hc_err rc;

    while ((rc = src->next(src->ctx, &msg, &ignored)) == HC_OK || rc == HC_ERR_PARSE) {
        if (rc == HC_ERR_PARSE) {
            r->st.failed++;
            continue;
        }
        for (long k = 0; k < o->fanout; k++) {
            const char *key;
            size_t key_len;
            bool has_device;

            if (!build_topic(r, msg.topic, k, &key, &key_len, &has_device))
                break;
            if (k > 0 && !has_device)
                break;
            if (o->shard_n > 1 && hc_replay_shard_of(hc_replay_hash(key, key_len),
                                                     (unsigned)o->shard_n) !=
                                      (unsigned)o->shard_k - 1)
                continue;
            r->st.failed++;
        }
    }
}

/*
 * Waits for msg's due time (timed modes) and sends it; fo: its faults (NULL without). *now:
 * the clock after waking (0 under --max). HC_ERR_INTERRUPTED with st.interrupted set.
 */
static hc_err send_one(struct hc_replay *r, const struct hc_msg *msg,
                       const struct hc_faults_out *fo, int64_t *now, hc_error *err)
{
    const struct hc_replay_options *o = &r->o;
    int64_t due = hc_sched_due(r->sched, msg->timeline_ns);
    uint64_t handled;
    hc_err rc;

    if (o->sched.mode != HC_SCHED_MAX) {
        /*
         * Messages already due go out together in one write (catching up after a stall costs
         * far less); what is buffered leaves before we sleep.
         */
        if (due > mono_now())
            flush_all(r);
        if (!hc_sched_wait(r->sched, due, r->o.stop, now)) {
            r->st.interrupted = true;
            return HC_ERR_INTERRUPTED;
        }
    }
    handled = r->st.sent + r->st.failed;
    rc = replay_message(r, msg, fo, err);
    if (o->sched.mode != HC_SCHED_MAX && *now && r->st.sent + r->st.failed > handled) {
        /* this shard's messages only: another shard measures its own */
        r->st.last_lateness_ns = *now - due;
        hc_sched_record(r->sched, *now - due);
        if (o->hooks.lateness)
            o->hooks.lateness(o->hooks.ctx, *now - due);
    }
    if (o->hooks.handled_at && r->st.sent + r->st.failed > handled)
        o->hooks.handled_at(o->hooks.ctx, o->sched.mode != HC_SCHED_MAX ? due : 0,
                            o->sched.mode != HC_SCHED_MAX && *now ? *now : mono_now());
    return rc;
}

/* faults: sends what the stream made ready; a dropped message is only reported */
static hc_err faults_drain(struct hc_replay *r, int64_t *now, hc_error *err)
{
    struct hc_faults_out fo;

    while (hc_faults_pop(r->faults, &fo)) {
        hc_err rc;
        if (fo.applied & HC_FAULT_BIT(HC_FAULT_DROP)) {
            r->st.faults.dropped++;
            fault_event(r, &fo, HC_FAULT_DROP, NULL, 0, 0, false);
            continue;
        }
        rc = send_one(r, &fo.msg, &fo, now, err);
        if (rc != HC_OK)
            return rc;
    }
    return HC_OK;
}

/* faults: one input message into the stream, and out what it made ready */
static hc_err faults_feed(struct hc_replay *r, const struct hc_msg *msg, int64_t *now,
                          hc_error *err)
{
    hc_err rc = hc_faults_push(r->faults, msg, err);
    return rc == HC_OK ? faults_drain(r, now, err) : rc;
}

static hc_err replay(struct hc_replay *r, const struct hc_replay_source *src, hc_error *err)
{
    const struct hc_replay_options *o = &r->o;
    bool timed = o->sched.mode != HC_SCHED_MAX;
    struct hc_msg msg;
    hc_err rc = HC_OK;
    int64_t end_now = 0;

    r->st.start_mono_ns = mono_now();
    r->start_real = hc_time_realtime_ns();
    if (o->start_at_ns) {
        rc = start_at(r, err);
        if (rc != HC_OK)
            return rc;
    }
    r->last_progress = r->st.start_mono_ns;
    /*
     * The schedule starts when the first message is in hand (hc_sched_due's default), not
     * before the input is opened: otherwise the first messages start out late and, at high
     * speeds, hundreds of them are late while the replay catches up.
     */
    for (uint64_t pass = 0; o->loops == 0 || pass < (uint64_t)o->loops; pass++) {
        uint64_t before = r->st.scheduled;

        rc = src->open(src->ctx, err);
        if (rc != HC_OK)
            return rc;
        for (;;) {
            int64_t now = 0;

            if (stopped(r)) {
                r->st.interrupted = true;
                break;
            }
            rc = src->next(src->ctx, &msg, err);
            if (rc == HC_DONE)
                break;
            if (rc == HC_ERR_PARSE) {
                /* an input that is no message (e.g. a topic MQTT forbids): it fails alone */
                r->st.failed++;
                r->st.invalid_input++;
                if (r->st.failed <= MAX_FAILURES_SHOWN)
                    hc_log(HC_LOG_ERROR, "%s", err->message);
                continue;
            }
            if (rc != HC_OK)
                goto out;
            r->st.scheduled++;
            rc = r->faults ? faults_feed(r, &msg, &now, err) : send_one(r, &msg, NULL, &now, err);
            if (rc == HC_ERR_INTERRUPTED)
                break; /* r->st.interrupted is set */
            if (rc != HC_OK)
                goto out;
            if ((r->st.scheduled & 255) == 0 || timed) {
                if (!now)
                    now = mono_now();
                if (now - r->last_progress >= PROGRESS_EVERY_NS && o->hooks.progress) {
                    r->last_progress = now;
                    o->hooks.progress(o->hooks.ctx, r, now);
                }
            }
        }
        if (r->faults && !r->st.interrupted) {
            /* faults: what the stream still holds goes out at the end of the pass */
            rc = hc_faults_finish(r->faults, err);
            if (rc == HC_OK)
                rc = faults_drain(r, &end_now, err);
            if (rc != HC_OK && rc != HC_ERR_INTERRUPTED)
                goto out;
        }
        src->close(src->ctx);
        if (r->st.interrupted)
            break;
        if (r->st.scheduled == before) {
            /* nothing to repeat: an empty selection must not spin */
            hc_log(HC_LOG_WARNING, "nothing to replay: the selection is empty");
            break;
        }
        r->st.passes++;
        hc_sched_next_pass(r->sched);
    }
    rc = HC_OK;
out:
    if (r->fatal)
        count_unsent(r, src);
    src->close(src->ctx);
    return rc;
}

/* --- the public face ---------------------------------------------------------------------------- */

static hc_err check_options(const struct hc_replay_options *o, hc_error *err)
{
    hc_error tmp = HC_ERROR_INIT;

    if (o->fanout < 1 || o->connections < 1 || o->connections > 256 || o->loops < 0)
        return hc_error_set(err, HC_ERR_INVALID, "fanout and connections must be at least 1");
    if (o->shard_n > 1 && (o->shard_k < 1 || o->shard_k > o->shard_n))
        return hc_error_set(err, HC_ERR_INVALID, "shard %ld of %ld does not exist", o->shard_k,
                            o->shard_n);
    if (o->qos < -1 || o->qos > 2)
        return hc_error_set(err, HC_ERR_INVALID, "qos must be 0, 1 or 2");
    for (size_t i = 0; i < o->n_remaps; i++) {
        if (hc_topic_filter_validate(o->remaps[i].from, &tmp) != HC_OK ||
            (o->remaps[i].to[0] && hc_topic_name_validate(o->remaps[i].to, &tmp) != HC_OK))
            return hc_error_set(err, HC_ERR_INVALID, "invalid remap: %s", tmp.message);
    }
    if ((o->integration_id && hc_topic_level_validate(o->integration_id, &tmp) != HC_OK) ||
        (o->api_key_id && hc_topic_level_validate(o->api_key_id, &tmp) != HC_OK))
        return hc_error_set(err, HC_ERR_INVALID, "invalid topic id: %s", tmp.message);
    if (hc_faults_has(o->faults, HC_FAULT_REDELIVER) && o->mqtt.url &&
        strncmp(o->mqtt.url, "mqtts:", 6) == 0)
        return hc_error_set(err, HC_ERR_INVALID,
                            "redeliver needs a plain mqtt:// url: over tls, paho sets the dup "
                            "flag only on its own retries");
    return HC_OK;
}

hc_err hc_replay_new(const struct hc_replay_options *opts, hc_replay **out, hc_error *err)
{
    hc_replay *r;
    hc_err rc;
    bool qos2_limit_stated = false;

    *out = NULL;
    rc = check_options(opts, err);
    if (rc != HC_OK)
        return rc;
    r = calloc(1, sizeof(*r));
    if (!r)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    r->o = *opts;
    if (!r->o.stop)
        r->o.stop = &r->never;
    if (!r->o.give_up_ns)
        r->o.give_up_ns = DEFAULT_GIVE_UP_NS;
    r->mo = opts->mqtt;
    r->mo.cancel = r->o.stop;
    if (r->mo.max_inflight <= 0)
        r->mo.max_inflight = 1000;
    rc = hc_mqtt_parse_url(r->mo.url, &r->url, err);
    if (rc != HC_OK)
        goto fail;
    r->spin.real = opts->clock ? opts->clock : hc_clock_real();
    r->spin.spin_ns = opts->spin_ns;
    r->spin_clock.now_ns = spin_now;
    r->spin_clock.sleep_until_ns = spin_sleep_until;
    r->spin_clock.ctx = &r->spin;
    rc = hc_sched_new(&r->o.sched, &r->spin_clock, &r->sched, err);
    if (rc != HC_OK)
        goto fail;
    if ((r->o.qos == 2 || r->o.qos < 0) && r->mo.max_inflight_qos2 <= 0) {
        /*
         * QoS 2 beyond the broker's in-flight limit is acknowledged and dropped by Mosquitto:
         * ask the broker for its limit once, before the schedule starts (libcore would ask at
         * the first QoS 2 message otherwise, making that one late).
         */
        int limit = hc_mqtt_probe_receive_maximum(&r->mo);
        r->mo.max_inflight_qos2 = limit > 0 ? limit : SAFE_QOS2_WINDOW;
        qos2_limit_stated = limit > 0;
    }
    r->n_conns = (size_t)r->o.connections;
    r->conns = calloc(r->n_conns, sizeof(*r->conns));
    if (!r->conns) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < r->n_conns; i++) {
        struct conn *c = &r->conns[i];
        if (r->n_conns == 1)
            snprintf(c->client_id, sizeof(c->client_id), "%s", r->mo.client_id);
        else
            snprintf(c->client_id, sizeof(c->client_id), "%.160s-c%u", r->mo.client_id,
                     (unsigned)(i + 1));
        c->ring_cap = 4 * (size_t)r->mo.max_inflight;
        c->ring = calloc(c->ring_cap, sizeof(*c->ring));
        if (!c->ring) {
            rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
            goto fail;
        }
        rc = connect_initial(r, c, err);
        if (rc != HC_OK)
            goto fail;
    }
    if (opts->faults) {
        /* faults: the stream of this replay */
        struct hc_faults_stream_options fso = {opts->faults, opts->fault_seed, opts->qos,
                                               opts->fault_in_scope, opts->fault_scope_ctx};
        rc = hc_faults_stream_new(&fso, &r->faults, err);
        if (rc != HC_OK)
            goto fail;
    }
    if (r->mo.max_inflight_qos2 > 0 && r->mo.max_inflight_qos2 < r->mo.max_inflight)
        hc_log(HC_LOG_DEBUG, "at most %d QoS 2 messages in flight per connection (%s)",
               r->mo.max_inflight_qos2,
               qos2_limit_stated ? "the broker's Receive Maximum"
                                 : "the broker does not state its limit");
    *out = r;
    return HC_OK;
fail:
    hc_replay_free(r);
    return rc;
}

hc_err hc_replay_run(hc_replay *r, const struct hc_replay_source *src, hc_error *err)
{
    hc_err rc = replay(r, src, err);

    for (size_t i = 0; i < r->n_conns; i++) {
        struct conn *c = &r->conns[i];
        if (r->fatal) {
            /* nothing more is confirmed on any connection */
            r->st.failed += hc_mqtt_inflight(c->m);
            r->st.qos0_maybe_lost += c->qos0_since_connect;
            continue;
        }
        if (r->st.interrupted || stopped(r)) {
            /* after a stop: a short grace for acknowledgements already on their way */
            r->st.interrupted = true;
            hc_mqtt_set_cancel(c->m, NULL);
            drain(r, c, INTERRUPT_DRAIN_MS);
        } else {
            /* a broker that stops acknowledging is noticed after the keepalive and then given
             * up on after give_up_ns: this bound is only a backstop */
            int keepalive = r->mo.keepalive_s > 0 ? r->mo.keepalive_s : 60;
            drain(r, c, (int)(r->o.give_up_ns / 1000000) + 1000 * keepalive);
        }
    }
    r->st.end_mono_ns = mono_now();
    r->st.gave_up = r->fatal;
    if (rc == HC_ERR_INTERRUPTED)
        rc = HC_OK;
    return rc;
}

void hc_replay_get_stats(const hc_replay *r, struct hc_replay_stats *out)
{
    *out = r->st;
    hc_sched_stats(r->sched, &out->lateness);
}

const struct hc_hist *hc_replay_lateness(const hc_replay *r)
{
    return hc_sched_lateness(r->sched);
}

/*
 * --start-at: waits until the common start instant and makes it the schedule's zero. The wait is
 * on CLOCK_MONOTONIC (the realtime instant converted once), so a clock step while waiting does
 * not move it.
 */
static hc_err start_at(struct hc_replay *r, hc_error *err)
{
    int64_t now_real = hc_time_realtime_ns(), now_mono = mono_now();
    int64_t ahead = r->o.start_at_ns - now_real, start_mono = now_mono + ahead, now = 0;

    if (ahead < -1000000000LL)
        return hc_error_set(err, HC_ERR_INVALID, "the start time is %.1f s in the past",
                            (double)-ahead / 1e9);
    if (!hc_sched_wait(r->sched, start_mono, r->o.stop, &now)) {
        r->st.interrupted = true;
        return HC_ERR_INTERRUPTED;
    }
    hc_sched_start(r->sched, start_mono);
    r->st.start_mono_ns = start_mono;
    r->start_real = r->o.start_at_ns;
    return HC_OK;
}

void hc_replay_flush(hc_replay *r)
{
    flush_all(r);
}

void hc_replay_free(hc_replay *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->conns && i < r->n_conns; i++) {
        struct conn *c = &r->conns[i];
        if (c->m)
            hc_mqtt_disconnect(c->m, 1000);
        hc_mqtt_free(c->m);
        for (size_t e = 0; c->ring && e < c->ring_cap; e++) {
            free(c->ring[e].topic);
            free(c->ring[e].payload);
        }
        free(c->ring);
    }
    free(r->conns);
    hc_faults_stream_free(r->faults);
    hc_sched_free(r->sched);
    free(r->remapped.p);
    free(r->topic.p);
    free(r->payload.p);
    free(r);
}

/*
 * The replay engine's connections (see replay_internal.h): publishing within the in-flight
 * window, resuming after a lost connection, and the faults that need a connection.
 *
 * Resuming at QoS 1/2: each connection keeps a copy of its last messages in a ring indexed by
 * ticket (4 x the in-flight window). A slot is reused only once its ticket is acknowledged, so
 * after a lost connection every unacknowledged message is still there to resend in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hcore/log.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"
#include "replay_internal.h"

#define BACKOFF_MIN_NS 100000000LL    /* first wait before reconnecting after a fruitless loss */
#define BACKOFF_MAX_NS 5000000000LL   /* backoff doubles up to this */
#define PROGRESS_AGE_NS 10000000000LL /* a connection that lived this long made progress */

static void nap_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    nanosleep(&ts, NULL);
}

/* Sleeps ns, waking early on Ctrl-C. */
static void nap_interruptible(const struct hc_replay *r, int64_t ns)
{
    for (int64_t slept = 0; slept < ns && !hc__replay_stopped(r); slept += 50000000LL)
        nap_ns(ns - slept < 50000000LL ? ns - slept : 50000000LL);
}

/* --- the ring of sent messages --------------------------------------------------------------- */

static hc_err ring_reserve(struct replay_entry *e, const char *topic, const void *payload,
                           size_t len)
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
static hc_err ring_make_room(struct replay_conn *c)
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

/* --- opening and closing --------------------------------------------------------------------- */

static hc_err connect_initial(struct hc_replay *r, struct replay_conn *c, hc_error *err)
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
    c->connected_at = hc_time_monotonic_ns();
    c->backoff_ns = BACKOFF_MIN_NS;
    return HC_OK;
}

hc_err hc__replay_conn_open(struct hc_replay *r, size_t i, hc_error *err)
{
    struct replay_conn *c = &r->conns[i];

    if (r->n_conns == 1)
        snprintf(c->client_id, sizeof(c->client_id), "%s", r->mo.client_id);
    else
        snprintf(c->client_id, sizeof(c->client_id), "%.160s-c%u", r->mo.client_id,
                 (unsigned)(i + 1));
    c->ring_cap = 4 * (size_t)r->mo.max_inflight;
    c->ring = calloc(c->ring_cap, sizeof(*c->ring));
    if (!c->ring)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    return connect_initial(r, c, err);
}

void hc__replay_conn_close(struct replay_conn *c)
{
    if (c->m)
        hc_mqtt_disconnect(c->m, 1000);
    hc_mqtt_free(c->m);
    for (size_t e = 0; c->ring && e < c->ring_cap; e++) {
        free(c->ring[e].topic);
        free(c->ring[e].payload);
    }
    free(c->ring);
}

/* A connection (re)made: a loss from now on is judged against this moment. */
static void note_connected(struct replay_conn *c)
{
    c->connected_at = hc_time_monotonic_ns();
    c->acked_at_connect = hc_mqtt_acked_total(c->m);
    c->oldest_known = hc_mqtt_oldest_unacked(c->m);
}

void hc__replay_message_failed(struct hc_replay *r, const char *topic, const char *why)
{
    char shown[200];
    hc_error tmp = HC_ERROR_INIT;

    r->st.failed++;
    if (r->st.failed > REPLAY_MAX_FAILURES_SHOWN)
        return;
    /* the topic may be anything a recording holds: show it the way validation errors do */
    if (hc_topic_name_validate(topic, &tmp) == HC_OK)
        snprintf(shown, sizeof(shown), "'%.150s'", topic);
    else
        snprintf(shown, sizeof(shown), "with an invalid topic");
    hc_log(HC_LOG_ERROR, "message %s failed: %s", shown, why);
    if (r->st.failed == REPLAY_MAX_FAILURES_SHOWN)
        hc_log(HC_LOG_ERROR, "further failed messages are counted, not shown");
}

/* --- recovering from a lost connection ------------------------------------------------------- */

/*
 * The unacknowledged messages of a lost connection, copied out of its ring. pending[first + resent]
 * is the next to send: those before first failed or were resent on an earlier connection, resent
 * counts those resent on the current one.
 */
struct resend {
    struct replay_entry *pending;
    size_t n_pending, first, resent;
};

/*
 * Bookkeeping for a lost connection: was it a strike (no progress since it was made)? Returns
 * true when the replay should give up: --give-up has passed since this fruitless series began.
 */
static bool count_loss(struct hc_replay *r, struct replay_conn *c, int64_t now, bool *progress_out)
{
    bool progress =
        hc_mqtt_acked_total(c->m) > c->acked_at_connect || now - c->connected_at >= PROGRESS_AGE_NS;

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

static hc_err give_up_error(const struct hc_replay *r, hc_error *err)
{
    return hc_error_set(err, HC_ERR_CONNECTION_LOST,
                        "gave up: no progress on the connection to '%s:%d' for %.0f s", r->url.host,
                        r->url.port, (double)r->o.give_up_ns / 1e9);
}

/* Copies tickets oldest..last still in the ring (unacknowledged, so not yet reused) into rs. */
static hc_err collect_pending(const struct replay_conn *c, uint64_t oldest, struct resend *rs,
                              hc_error *err)
{
    uint64_t last = c->last_ticket;

    if (last < oldest)
        return HC_OK;
    rs->pending = calloc((size_t)(last - oldest + 1), sizeof(*rs->pending));
    if (!rs->pending)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    for (uint64_t t = oldest; t <= last; t++) {
        const struct replay_entry *e = &c->ring[t % c->ring_cap];
        struct replay_entry *copy = &rs->pending[rs->n_pending];
        if (e->ticket != t)
            continue;
        if (ring_reserve(copy, e->topic, e->payload, e->len) != HC_OK) {
            free(copy->topic); /* not counted in n_pending, so not freed with the others */
            free(copy->payload);
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        }
        copy->qos = e->qos;
        copy->retain = e->retain;
        rs->n_pending++;
    }
    return HC_OK;
}

/*
 * Makes the connection again until it holds: backoff between tries (and before the first when
 * wait), HC_ERR_INTERRUPTED on Ctrl-C, failure once --give-up has passed or for an error
 * retrying cannot fix.
 */
static hc_err reconnect(struct hc_replay *r, struct replay_conn *c, bool wait, hc_error *err)
{
    for (;;) {
        hc_error cerr = HC_ERROR_INIT;
        hc_err rc;
        if (hc__replay_stopped(r)) {
            /* Ctrl-C is a clean stop, not a failure to reconnect */
            r->st.interrupted = true;
            return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted while reconnecting");
        }
        if (wait) {
            nap_interruptible(r, c->backoff_ns);
            if (c->backoff_ns < BACKOFF_MAX_NS)
                c->backoff_ns *= 2;
            if (hc__replay_stopped(r))
                continue;
        }
        wait = true;
        hc_mqtt_disconnect(c->m, 0);
        rc = hc_mqtt_connect(c->m, &cerr);
        if (rc == HC_OK)
            break;
        if (rc == HC_ERR_INTERRUPTED)
            continue;
        if (hc_time_monotonic_ns() - c->trouble_since > r->o.give_up_ns || rc != HC_ERR_CONNECT)
            return hc_error_set(err, rc, "%s (gave up reconnecting)", cerr.message);
    }
    c->connected_at = hc_time_monotonic_ns();
    c->acked_at_connect = hc_mqtt_acked_total(c->m);
    hc_log(HC_LOG_INFO, "reconnected to '%s:%d'", r->url.host, r->url.port);
    c->oldest_known = hc_mqtt_oldest_unacked(c->m);
    return HC_OK;
}

/* Resends what is left of rs through hc__replay_publish, which recovers again if need be. */
static hc_err resend_all(struct hc_replay *r, struct replay_conn *c, struct resend *rs,
                         hc_error *err)
{
    while (rs->first + rs->resent < rs->n_pending) {
        const struct replay_entry *e = &rs->pending[rs->first + rs->resent];
        hc_err rc = hc__replay_publish(r, c, e->topic, e->payload, e->len, e->qos, e->retain, err);
        if (rc != HC_OK)
            return rc;
        rs->resent++;
        r->st.resent++;
    }
    return HC_OK;
}

/*
 * Twice lost without progress: resend one message at a time, each acknowledged before the next,
 * until one is the only message in flight when the connection dies: that one the broker refuses
 * (a topic it does not allow, a packet over its maximum size), and it fails (*refused; the rest
 * wait for the next connection). Guessing "the oldest unacknowledged" instead is wrong when the
 * broker's close resets the connection: the acknowledgements it sent last are then lost with it.
 */
static hc_err resend_carefully(struct hc_replay *r, struct replay_conn *c, struct resend *rs,
                               bool *refused, hc_error *err)
{
    int timeout_ms = r->o.give_up_ns > 0 ? (int)(r->o.give_up_ns / 1000000) : 60000;

    *refused = false;
    while (rs->first + rs->resent < rs->n_pending) {
        const struct replay_entry *e = &rs->pending[rs->first + rs->resent];
        hc_error perr = HC_ERROR_INIT;
        hc_err rc =
            hc_mqtt_publish(c->m, e->topic, e->payload, e->len, e->qos, e->retain, NULL, &perr);
        if (rc == HC_OK)
            rc = hc_mqtt_wait_all(c->m, timeout_ms, &perr);
        if (rc == HC_ERR_CONNECTION_LOST) {
            hc__replay_message_failed(r, e->topic,
                                      "the broker closed the connection on it, alone in flight, "
                                      "after two lost connections (does the broker refuse it?)");
            rs->first += rs->resent + 1;
            rs->resent = 0; /* those before it are counted in r->st.resent */
            *refused = true;
            return HC_OK;
        }
        if (rc != HC_OK)
            return hc_error_set(err, rc, "%s", perr.message);
        rs->resent++;
        r->st.resent++;
    }
    c->strikes = 0;
    return HC_OK;
}

/* Reconnects and resends rs, again after each message the broker refused. */
static hc_err reconnect_and_resend(struct hc_replay *r, struct replay_conn *c, struct resend *rs,
                                   bool wait, hc_error *err)
{
    for (;;) {
        bool refused, progress;
        hc_err rc = reconnect(r, c, wait, err);
        if (rc != HC_OK)
            return rc;
        if (c->strikes < 2)
            return resend_all(r, c, rs, err);
        rc = resend_carefully(r, c, rs, &refused, err);
        if (rc != HC_OK || !refused)
            return rc;
        /* the refused message is gone: a new series of losses starts */
        c->strikes = 0;
        r->st.reconnects++;
        hc_mqtt_reset_inflight(c->m);
        if (count_loss(r, c, hc_time_monotonic_ns(), &progress))
            return give_up_error(r, err);
        wait = !progress;
    }
}

/*
 * After a lost connection: reconnect with backoff, then resend what was not acknowledged. A
 * connection lost twice in a row without progress fails the oldest unacknowledged message (the
 * broker is likely refusing it: a topic it does not allow, a packet over its maximum size).
 * Everything that cannot be resent is counted as failed; QoS 0 messages the broker was not seen
 * to read count as possibly lost.
 */
static hc_err recover(struct hc_replay *r, struct replay_conn *c, hc_error *err)
{
    uint64_t oldest = hc_mqtt_oldest_unacked(c->m);
    const char *why = hc_mqtt_lost_reason(c->m);
    struct resend rs = {NULL, 0, 0, 0};
    char reason[200];
    bool give_up, progress;
    hc_err rc;

    snprintf(reason, sizeof(reason), "%s", why && *why ? why : "");
    r->st.reconnects++;
    give_up = count_loss(r, c, hc_time_monotonic_ns(), &progress);
    rc = collect_pending(c, oldest, &rs, err);
    if (rc == HC_OK) {
        r->st.qos0_maybe_lost += c->qos0_since_connect;
        c->qos0_since_connect = 0;
        hc_mqtt_reset_inflight(c->m);
        hc_log(HC_LOG_WARNING,
               "connection to '%s:%d' lost%s%s; reconnecting (%zu unacknowledged messages to "
               "resend)",
               r->url.host, r->url.port, reason[0] ? ": " : "", reason, rs.n_pending);
        /* a fruitless connection: back off before the next one */
        rc = give_up ? give_up_error(r, err) : reconnect_and_resend(r, c, &rs, !progress, err);
    }
    if (rc != HC_OK) {
        /* what could not be resent was never confirmed: it failed */
        r->st.failed += rs.n_pending - rs.first - rs.resent;
        if (rc != HC_ERR_INTERRUPTED)
            r->fatal = true;
    }
    for (size_t i = 0; i < rs.n_pending; i++) {
        free(rs.pending[i].topic);
        free(rs.pending[i].payload);
    }
    free(rs.pending);
    return rc;
}

/* --- publishing ------------------------------------------------------------------------------ */

hc_err hc__replay_publish(struct hc_replay *r, struct replay_conn *c, const char *topic,
                          const void *payload, size_t len, int qos, bool retain, hc_error *err)
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
        struct replay_entry *e = &c->ring[ticket % c->ring_cap];
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

void hc__replay_drain(struct hc_replay *r, struct replay_conn *c, int timeout_ms)
{
    for (;;) {
        hc_error err = HC_ERROR_INIT;
        hc_err rc = hc_mqtt_wait_all(c->m, timeout_ms, &err);
        if (rc == HC_OK) {
            c->qos0_since_connect = 0;
            return;
        }
        if (rc == HC_ERR_CONNECTION_LOST && !r->fatal && !hc__replay_stopped(r)) {
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

/* --- faults (hcore/faults.h): what needs the connections ------------------------------------ */

/*
 * A connection broken on purpose: everything sent so far is confirmed first (so the stream
 * stays the same on every run: nothing is lost or resent by accident), then the connection is
 * dropped without DISCONNECT and made again.
 */
static hc_err break_connection(struct hc_replay *r, struct replay_conn *c, hc_error *err)
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
    note_connected(c);
    return HC_OK;
}

void hc__replay_fault_event(struct hc_replay *r, const struct hc_faults_out *fo,
                            enum hc_fault_kind k, const char *topic, uint64_t position,
                            uint64_t position2, bool lost)
{
    struct hc_faults_event ev = {fo, k, topic, position, position2, lost};
    r->st.faults.applied[k]++;
    if (r->o.hooks.fault)
        r->o.hooks.fault(r->o.hooks.ctx, &ev);
}

hc_err hc__replay_faults_publish(struct hc_replay *r, struct replay_conn *c, const char *topic,
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
        rc = hc__replay_publish(r, c, topic, payload, len, qos, retain, err);
        if (rc != HC_OK)
            return rc;
        if ((fo->applied & HC_FAULT_BIT(HC_FAULT_REDELIVER)) && qos > 0) {
            rc = break_connection(r, c, err);
            if (rc == HC_OK) {
                r->publish_dup = true;
                rc = hc__replay_publish(r, c, topic, payload, len, qos, retain, err);
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
            hc__replay_fault_event(r, fo, (enum hc_fault_kind)k, lost ? NULL : topic,
                                   lost ? 0 : position, position2, lost);
    return lost ? HC_DONE : HC_OK;
}

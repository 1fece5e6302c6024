/*
 * What the replay engine's source files share (hc__replay_ prefix): the engine's handle, its
 * connections and the calls between the two halves. replay.c runs the schedule over a source,
 * rewrites topics and payloads and keeps the public face; replay_conn.c owns the connections:
 * the in-flight window, resending after a lost connection, and the faults that need a
 * connection. Internal to libcore; not part of the public API.
 */
#ifndef HCORE_REPLAY_INTERNAL_H
#define HCORE_REPLAY_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/replay.h"
#include "internal.h"

#define REPLAY_MAX_FAILURES_SHOWN 10 /* failed messages named one by one, then only counted */

/*
 * The replay clock: the real one, except that the last spin_ns before a due time are spent
 * polling the clock instead of sleeping (--spin). clock_nanosleep wakes ~40 µs late even with a
 * 1 ns timer slack (p99 ~110 µs); sleeping to spin_ns early and then spinning puts the median
 * within a few µs, at the cost of up to spin_ns of CPU per message.
 */
struct replay_spin_clock {
    const struct hc_clock *real;
    int64_t spin_ns;
};

/* One sent message kept for resending: a slot of a connection's ring. */
struct replay_entry {
    uint64_t ticket; /* 0: empty */
    char *topic;
    size_t topic_cap;
    unsigned char *payload;
    size_t payload_cap, len;
    int qos;
    bool retain;
};

struct replay_conn {
    hc_mqtt *m;
    char client_id[200];
    struct replay_entry *ring;
    size_t ring_cap;
    uint64_t last_ticket;
    uint64_t oldest_known;       /* a lower bound of the oldest unacknowledged ticket */
    uint64_t qos0_since_connect; /* QoS 0 messages the broker has not been seen to read */
    /* reconnecting: a loss without progress since the last connect is a strike */
    int64_t connected_at; /* CLOCK_MONOTONIC */
    uint64_t acked_at_connect;
    int strikes;
    int64_t trouble_since; /* CLOCK_MONOTONIC: the first loss of the current fruitless series */
    int64_t backoff_ns;
};

struct hc_replay {
    struct hc_replay_options o; /* strings and remaps borrowed from the caller */
    struct hc_mqtt_options mo;
    struct hc_mqtt_url url;
    struct replay_spin_clock spin;
    struct hc_clock spin_clock;
    struct replay_conn *conns;
    size_t n_conns;
    hc_sched *sched;
    struct hc__buf remapped, topic, payload;
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

static inline bool hc__replay_stopped(const struct hc_replay *r)
{
    return *r->o.stop != 0;
}

/* --- replay_conn.c --------------------------------------------------------------------------- */

/*
 * Sets up connection i of r->conns (client id, ring sized from r->mo.max_inflight) and connects
 * it. On failure what was made stays for hc__replay_conn_close.
 */
hc_err hc__replay_conn_open(struct hc_replay *r, size_t i, hc_error *err);
/* Disconnects and frees what the connection holds; accepts one never opened (all zero). */
void hc__replay_conn_close(struct replay_conn *c);

/*
 * Publishes one message, reconnecting as needed. HC_OK when sent; r->fatal is set when the
 * connection could not be restored; other errors concern this message only.
 */
hc_err hc__replay_publish(struct hc_replay *r, struct replay_conn *c, const char *topic,
                          const void *payload, size_t len, int qos, bool retain, hc_error *err);

/*
 * Publishes one faulted message (the first fan-out copy): breaks the connection first for
 * disconnect (a QoS 0 message is then lost: HC_DONE), sends it again with the DUP flag after a
 * broken connection for redeliver, and reports each fault. HC_OK counts as one send for the
 * caller; a redelivery's second send is counted here.
 */
hc_err hc__replay_faults_publish(struct hc_replay *r, struct replay_conn *c, const char *topic,
                                 const void *payload, size_t len, int qos, bool retain,
                                 const struct hc_faults_out *fo, hc_error *err);

/* Counts one applied fault and reports it to the fault hook. */
void hc__replay_fault_event(struct hc_replay *r, const struct hc_faults_out *fo,
                            enum hc_fault_kind k, const char *topic, uint64_t position,
                            uint64_t position2, bool lost);

/*
 * Waits for every acknowledgement, resending after a lost connection. On success the broker
 * has also read every QoS 0 message (hc_mqtt_wait_all's ping), so none of them counts as
 * possibly lost; otherwise every unconfirmed message is counted.
 */
void hc__replay_drain(struct hc_replay *r, struct replay_conn *c, int timeout_ms);

/* Counts a failed message and names it in the log, the first REPLAY_MAX_FAILURES_SHOWN. */
void hc__replay_message_failed(struct hc_replay *r, const char *topic, const char *why);

#endif

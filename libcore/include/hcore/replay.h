/*
 * The replay engine: republishes a stream of recorded messages to an MQTT broker on a schedule,
 * rewriting topics and payloads as asked, spreading devices over connections and shards, and
 * accounting for every message: sent (and, at QoS 1/2, acknowledged), failed, or at QoS 0
 * possibly lost.
 *
 * The caller supplies the messages (struct hc_replay_source: a recording cursor, JSON lines,
 * a generator), the options, and hooks for what it wants to show; the engine owns the schedule
 * (hc_sched), the connections (hc_mqtt), resuming after a lost connection, and the figures.
 *
 * One thread publishes to every connection in turn: per-device order then holds trivially (a
 * device always hashes to the same connection and messages leave in input order), and each
 * connection's own thread takes the acknowledgements.
 *
 * The device hash, the shard and connection choice and the derived fan-out ids are a
 * compatibility promise across runs and machines: tests pin their values.
 */
#ifndef HCORE_REPLAY_H
#define HCORE_REPLAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"
#include "hcore/faults.h"
#include "hcore/mqtt.h"
#include "hcore/msg.h"
#include "hcore/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hc_replay hc_replay;

/*
 * Where messages come from. open starts a pass (called once per pass, --loop); next fills *msg
 * (borrowed until the next call) and returns HC_OK, HC_DONE at the end of the pass, HC_ERR_PARSE
 * for one input that is no message (it fails alone and the replay goes on: err names it), or
 * another error that ends the replay; close ends the pass.
 */
struct hc_replay_source {
    hc_err (*open)(void *ctx, hc_error *err);
    hc_err (*next)(void *ctx, struct hc_msg *msg, hc_error *err);
    void (*close)(void *ctx);
    void *ctx;
};

/* --remap FROM=TO: FROM a topic filter matched on whole leading levels, TO their replacement. */
struct hc_replay_remap {
    const char *from, *to;
};

/* What the caller wants to see while the replay runs; every member may be NULL. */
struct hc_replay_hooks {
    /* each message's lateness (ns after its due time) in timed modes, in send order */
    void (*lateness)(void *ctx, int64_t lateness_ns);
    /* about every PROGRESS interval (250 ms) while messages flow; now is CLOCK_MONOTONIC */
    void (*progress)(void *ctx, const hc_replay *r, int64_t now_ns);
    /* faults: each fault applied, once the message it concerns went out (or was dropped) */
    void (*fault)(void *ctx, const struct hc_faults_event *ev);
    /*
     * Per-time figures (hreplay --report-html): each message that went out, or failed on the
     * way, in send order, with its due time (CLOCK_MONOTONIC; 0 under --max: no schedule) and
     * when it was handed to the connection (CLOCK_MONOTONIC, read only when this hook is set).
     * Kept apart from lateness, which other callers log per message, so each stays one line.
     */
    void (*handled_at)(void *ctx, int64_t due_ns, int64_t handled_ns);
    /*
     * each message as published (after rewriting, once per fan-out copy), topic and payload
     * borrowed for the call; sent_ns is CLOCK_MONOTONIC when the publish call returned. For
     * callers that match what a consumer emits to what was sent (hreplay --ramp).
     */
    void (*published)(void *ctx, const char *topic, const unsigned char *payload, size_t len,
                      int64_t sent_ns);
    /*
     * each input's first send, once the publish call returned (QoS 1/2: handed to the
     * connection, not yet acknowledged): input_seq is its 1-based position in the source over
     * every pass (with faults, hc_faults_out.seq), mono_ns CLOCK_MONOTONIC. Called from the
     * publishing thread; fan-out copies, dup copies and redeliveries are not reported again.
     * For latency measured from the publish rather than from taking the input.
     */
    void (*sent)(void *ctx, uint64_t input_seq, int64_t mono_ns);
    void *ctx;
};

struct hc_replay_options {
    /*
     * The broker and the per-connection settings: url, client_id (connection i of N > 1 gets
     * "<client_id>-c<i>"), credentials, TLS, keepalive (also the acknowledgement timeout),
     * max_inflight. max_inflight_qos2 0: asked of the broker (hc_mqtt_probe_receive_maximum;
     * 20 when it does not say). The cancel member is ignored: see stop.
     */
    struct hc_mqtt_options mqtt;
    struct hc_sched_options sched;
    const struct hc_clock *clock; /* NULL: the real clock */
    int64_t spin_ns;              /* busy-wait this long before each due time (0: sleep) */
    const volatile sig_atomic_t *stop; /* non-NULL: a clean stop once it becomes non-zero */

    int qos;           /* -1: as recorded */
    bool retain_never; /* clear every retain flag */
    const struct hc_replay_remap *remaps;
    size_t n_remaps;
    const char *integration_id; /* NULL, or replaces level 3 of haltian-iot/events/ topics */
    const char *api_key_id;     /* NULL, or replaces level 4 */
    bool rebase_time;           /* rewrite "measured_at"/"received_at" to send time + offset */

    long fanout;            /* >= 1: each device as this many devices */
    long connections;       /* >= 1 */
    long shard_k, shard_n;  /* shard_n > 1: only shard shard_k (1-based) of shard_n */
    long loops;             /* passes; 0: until stopped */
    /*
     * CLOCK_REALTIME ns; 0: the schedule starts when the first message is in hand. Otherwise
     * the schedule's zero is that instant (the engine sleeps until then), so shards started on
     * several machines with one start time send each message at the same due time. A start
     * more than a second in the past is HC_ERR_INVALID.
     */
    int64_t start_at_ns;
    int64_t give_up_ns;     /* stop reconnecting after this long without progress; 0: 60 s */
    struct hc_replay_hooks hooks;

    /*
     * Faults (hcore/faults.h): NULL, or a parsed plan (borrowed; must outlive the replay) that
     * perturbs the input stream with fault_seed. fault_in_scope (NULL: every message) limits
     * which messages may be faulted. Payload faults and retain apply to every fan-out copy;
     * disconnect and redeliver to the first copy's connection. redeliver needs a plain
     * mqtt:// url (HC_ERR_INVALID otherwise).
     */
    const hc_faults *faults;
    uint64_t fault_seed;
    bool (*fault_in_scope)(void *ctx, const struct hc_msg *msg);
    void *fault_scope_ctx;
};

/* Every figure of a run; totals count fan-out copies as messages. */
struct hc_replay_stats {
    uint64_t scheduled;       /* input messages taken from the source */
    uint64_t sent;            /* published (QoS 1/2: and acknowledged unless counted failed);
                                 with faults, every send: faults.duplicates of them are copies */
    uint64_t failed;          /* not delivered, or not confirmed: each counts once */
    uint64_t resent;          /* sent again after a lost connection */
    uint64_t reconnects;
    uint64_t qos0_maybe_lost; /* upper bound of QoS 0 messages the broker was not seen to read */
    uint64_t invalid_topics;  /* failed before sending: a topic MQTT forbids */
    uint64_t invalid_input;   /* failed before sending: an input that is no message */
    uint64_t other_shards;    /* left to other shards */
    uint64_t passes;          /* passes completed */
    bool interrupted;         /* stopped by *stop */
    bool gave_up;             /* a connection could not be restored: the replay ended early */
    int64_t start_mono_ns, end_mono_ns; /* CLOCK_MONOTONIC; end is 0 while running */
    int64_t last_lateness_ns;
    struct hc_sched_stats lateness; /* timed modes only */
    struct hc_faults_counts faults; /* with faults: what they did (dropped and lost: not sent) */
};

/*
 * Validates the options, asks the broker for its QoS 2 limit when QoS 2 may be sent, and
 * connects every connection. *out: hc_replay_free. Errors: HC_ERR_INVALID (options), the
 * connection errors of hc_mqtt_connect, HC_ERR_INTERRUPTED.
 */
hc_err hc_replay_new(const struct hc_replay_options *opts, hc_replay **out, hc_error *err);

/*
 * Replays every pass of src, then waits for the acknowledgements (after a stop, for at most a
 * second). HC_OK when the run ended normally or was stopped, whatever failed (see the stats);
 * an error when the source failed or a connection could not be restored (stats say gave_up).
 */
hc_err hc_replay_run(hc_replay *r, const struct hc_replay_source *src, hc_error *err);

/* The figures so far (during hooks) or of the finished run. */
void hc_replay_get_stats(const hc_replay *r, struct hc_replay_stats *out);

/* The lateness histogram of the run (timed modes), for reports that several shards merge. */
const struct hc_hist *hc_replay_lateness(const hc_replay *r);

/* Sends what connections hold back in batches (for a source about to block on input). */
void hc_replay_flush(hc_replay *r);

/* Disconnects and frees. Accepts NULL. */
void hc_replay_free(hc_replay *r);

/* --- the pinned hashes ------------------------------------------------------------------------ */

/* Stable 64-bit hash of a device id (FNV-1a, then splitmix64's finaliser). */
uint64_t hc_replay_hash(const char *s, size_t len);

/* Connection (low 32 bits) and shard (high 32 bits) of a device hash: independent choices. */
static inline unsigned hc_replay_connection_of(uint64_t h, unsigned n)
{
    return (unsigned)((h & 0xffffffffu) % n);
}
static inline unsigned hc_replay_shard_of(uint64_t h, unsigned n)
{
    return (unsigned)((h >> 32) % n);
}

/*
 * The k-th derived id of a device (k >= 1): UUID-shaped (version 8, RFC 9562 variant), the same
 * on every run. buf needs 37 bytes.
 */
void hc_replay_fanout_id(const char *device, size_t len, long k, char *buf);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Fault injection at the message level: a spec ("drop=0.1:burst=3,dup=0.05:after=2") parsed once
 * into a plan (hc_faults), and a stream (hc_faults_stream) that turns the input messages, in
 * order, into the perturbed output: messages dropped, copied, swapped, held back, their payload
 * timestamps moved or their bytes broken, flags set, connections to be broken.
 *
 * Determinism. Every decision is a pure function of (seed, kind, input position, draw number):
 * a counter-based generator (splitmix64's finaliser over those four), never rand() and never the
 * clock. The same input, plan and seed give the same output, byte for byte and in the same
 * order, on any machine; adding one kind to a spec leaves the others' decisions as they were.
 * The one sequential state is the drop kind's Gilbert-Elliott chain, itself driven by draws.
 *
 * Cost. hc_faults_push draws one number per enabled kind and compares it: O(1) per message. When
 * no fault fires and nothing is held, the message is passed through without a copy.
 *
 * Time. "Later" means the message's timeline_ns (recording time), so holds (delay, backlog) end
 * at the same place in the stream whatever the replay speed; the due time of an output
 * (out.msg.timeline_ns) never goes backwards.
 *
 * The plan is immutable and may be shared; a stream belongs to one thread. Neither prints.
 */
#ifndef HCORE_FAULTS_H
#define HCORE_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"
#include "hcore/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, "spec name"): the kinds, in the order the spec documents them. */
#define HC_FAULTS_KIND_MAP(X)                                                                      \
    X(DROP, "drop")                                                                                \
    X(DUP, "dup")                                                                                  \
    X(REDELIVER, "redeliver")                                                                      \
    X(REORDER, "reorder")                                                                          \
    X(DELAY, "delay")                                                                              \
    X(STALE, "stale")                                                                              \
    X(FUTURE, "future")                                                                            \
    X(SKEW, "skew")                                                                                \
    X(CORRUPT, "corrupt")                                                                          \
    X(DISCONNECT, "disconnect")                                                                    \
    X(RETAIN, "retain")                                                                            \
    X(BACKLOG, "backlog")

enum hc_fault_kind {
#define HC__FAULT_ENUM(name, text) HC_FAULT_##name,
    HC_FAULTS_KIND_MAP(HC__FAULT_ENUM)
#undef HC__FAULT_ENUM
        HC_FAULT__COUNT
};

#define HC_FAULT_BIT(kind) (1u << (kind))

/* The spec name of a kind ("drop"); "?" out of range. */
const char *hc_faults_kind_name(enum hc_fault_kind kind);

/* The ways corrupt breaks a payload (X(NAME, "log name")); the seed picks one per message. */
#define HC_FAULTS_CORRUPTION_MAP(X)                                                                \
    X(TRUNCATED, "truncated")                                                                      \
    X(MEMBER_REMOVED, "member-removed")                                                            \
    X(WRONG_TYPE, "wrong-type")                                                                    \
    X(INVALID_UTF8, "invalid-utf8")                                                                \
    X(NOT_JSON, "not-json")

enum hc_faults_corruption {
#define HC__CORRUPTION_ENUM(name, text) HC_CORRUPT_##name,
    HC_FAULTS_CORRUPTION_MAP(HC__CORRUPTION_ENUM)
#undef HC__CORRUPTION_ENUM
        HC_CORRUPT__COUNT
};

const char *hc_faults_corruption_name(enum hc_faults_corruption how);

/* --- the plan ----------------------------------------------------------------------------------
 */

typedef struct hc_faults hc_faults;

/*
 * Parses a spec: comma-separated items KIND=VALUE[:key=value]..., each kind at most once.
 *   drop=P[:burst=B]          P per message; B >= 1 the mean burst length (Gilbert-Elliott)
 *   dup=P[:after=N]           a copy after N further messages (default 0: right after)
 *   redeliver=P               QoS >= 1 only: again with the DUP flag after a reconnect
 *   reorder=P[:window=K][:scope=device]   swap with one of the next K (default 1)
 *   delay=P:by=DURATION       held back by DURATION of recording time
 *   stale=P:by=DURATION       payload "measured_at"/"received_at" moved back
 *   future=P:by=DURATION      ... moved ahead
 *   skew=DURATION             per device constant offset, uniform in [-DURATION, +DURATION]
 *   corrupt=P                 payload broken one of HC_FAULTS_CORRUPTION_MAP's ways
 *   disconnect=P | disconnect=every:DURATION   connection broken at the message
 *   retain=P                  sent retained
 *   backlog=P:hold=DURATION   the device's messages held for DURATION, then all at once
 * P is a decimal in [0, 1]. *out: hc_faults_free. HC_ERR_INVALID with a one-line reason naming
 * the item ("'drop=2': probability must be between 0 and 1").
 */
hc_err hc_faults_parse(const char *spec, hc_faults **out, hc_error *err);

/* Accepts NULL. */
void hc_faults_free(hc_faults *plan);

/* True when the plan has this kind. */
bool hc_faults_has(const hc_faults *plan, enum hc_fault_kind kind);

/* The plan in canonical form ("drop=0.1:burst=3,dup=0.05"), for reports. Owned by the plan. */
const char *hc_faults_spec(const hc_faults *plan);

/* --- the stream --------------------------------------------------------------------------------
 */

typedef struct hc_faults_stream hc_faults_stream;

struct hc_faults_stream_options {
    const hc_faults *plan; /* borrowed; must outlive the stream */
    uint64_t seed;
    int qos; /* the QoS messages go out at (decides redeliver and disconnect); -1: as recorded */
    /* NULL: every message may be faulted; otherwise only those it accepts (the rest pass
     * through, though they still count as positions, partners and overtaken messages) */
    bool (*in_scope)(void *ctx, const struct hc_msg *msg);
    void *scope_ctx;
};

/* One output message and what was done to it. */
struct hc_faults_out {
    /*
     * What to send: topic, payload and flags as perturbed, qos and retain as recorded (the
     * caller applies its own overrides, then HC_FAULT_RETAIN). timeline_ns is when it is due
     * (recording time; never before the previous output's). Borrowed until the next call on the
     * stream.
     */
    struct hc_msg msg;
    uint64_t seq;     /* the input's position, 1-based over the stream's life (all passes) */
    unsigned applied; /* HC_FAULT_BIT(kind) for every fault applied to this output */
    /*
     * What the caller does: DROP: send nothing. DISCONNECT: confirm what was sent, break the
     * connection, reconnect; then a QoS 0 message is lost, a QoS 1/2 one is sent. REDELIVER:
     * send, confirm, break the connection, reconnect, send again with the DUP flag.
     */
    bool copy;             /* the copy made by dup (applied holds only HC_FAULT_DUP) */
    long dup_after;        /* dup: the copy follows N further messages */
    bool in_burst;         /* drop: the previous in-scope message was dropped too */
    uint64_t partner_seq;  /* reorder: the input it swapped with (0: none came, it went last) */
    long window;           /* reorder: K */
    int64_t delay_ns;      /* delay */
    int64_t hold_ns;       /* backlog */
    uint64_t backlog_from; /* backlog: the input that started the device's silence */
    int64_t stale_ns, future_ns, skew_ns; /* the timestamp shifts applied (skew may be 0) */
    int times_changed;                    /* timestamps rewritten in the payload */
    char time_field[12]; /* the first rewritten one: "measured_at" or "received_at" */
    char time_before[40], time_after[40];
    enum hc_faults_corruption corruption;
    size_t original_len; /* the payload's length before any change */
};

/* A stream over plan. *out: hc_faults_stream_free. HC_ERR_INVALID (no plan), HC_ERR_NOMEM. */
hc_err hc_faults_stream_new(const struct hc_faults_stream_options *opts, hc_faults_stream **out,
                            hc_error *err);

/* Accepts NULL. */
void hc_faults_stream_free(hc_faults_stream *s);

/*
 * Takes the next input message (borrowed for the call, and until the next call when it is
 * passed through). Outputs it makes ready come from hc_faults_pop; call that until it returns
 * false before the next push. HC_ERR_NOMEM only.
 */
hc_err hc_faults_push(hc_faults_stream *s, const struct hc_msg *msg, hc_error *err);

/*
 * Ends a pass: everything held is made ready (delayed and held-back messages at their release
 * times, an unfinished swap with the chosen message last, pending copies), and the time-based
 * state (disconnect=every) starts over. Positions keep counting. HC_ERR_NOMEM only.
 */
hc_err hc_faults_finish(hc_faults_stream *s, hc_error *err);

/* The next ready output, valid until the next call on s; false when none is ready. */
bool hc_faults_pop(hc_faults_stream *s, struct hc_faults_out *out);

/* Messages held inside the stream (not yet ready). */
size_t hc_faults_held(const hc_faults_stream *s);

/* --- accounting --------------------------------------------------------------------------------
 */

/* What a run did, for reports. */
struct hc_faults_counts {
    uint64_t applied[HC_FAULT__COUNT]; /* faults applied, per kind */
    uint64_t dropped;                  /* inputs not sent: drop */
    uint64_t lost;                     /* inputs not sent: QoS 0 at a disconnect */
    uint64_t duplicates;               /* extra sends: dup copies and redeliveries */
    uint64_t reconnects;               /* connections broken on purpose */
};

/* One applied fault, as the log records it. */
struct hc_faults_event {
    const struct hc_faults_out *out;
    enum hc_fault_kind kind;
    const char *topic;  /* as sent (NULL when nothing was sent) */
    uint64_t position;  /* 1-based place among every message sent; 0: not sent */
    uint64_t position2; /* redeliver: the second send's place */
    bool lost;          /* disconnect: the message was lost (QoS 0) */
};

/*
 * The event as one JSON object without a newline: {"seq":..,"kind":..,"topic":..,<parameters>,
 * "position":..,<what changed>}. Payload changes (and dup's copies) give "payload_hex" (the
 * bytes sent) and "length_before"; timestamp shifts the first one's "field", "before" and
 * "after" and how many "changed". Returns a malloc'd string (free), NULL when
 * out of memory.
 */
char *hc_faults_event_json(const struct hc_faults_event *ev);

#ifdef __cplusplus
}
#endif
#endif

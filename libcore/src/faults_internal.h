/*
 * What the fault injector's files share (hc__faults_ prefix): the parsed plan, the stream's
 * storage, and the payload rewrites. faults.c parses the plan; faults_stream.c decides per
 * message and holds messages back; faults_payload.c rewrites payloads (timestamps moved, bytes
 * corrupted). faults_log.c, the log line of an event, needs only the public header. Internal to
 * libcore; not part of the public API.
 */
#ifndef HCORE_FAULTS_INTERNAL_H
#define HCORE_FAULTS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/faults.h"

/* --- the plan (faults.c) ---------------------------------------------------------------------- */

struct rule {
    bool on;
    double p;          /* probability per message */
    int64_t by_ns;     /* delay, stale, future; skew: the bound */
    long window;       /* reorder */
    bool device_scope; /* reorder */
    long after;        /* dup */
    double burst;      /* drop: mean burst length, 0 when losses are independent */
    double ge_enter;   /* drop with burst: P(good -> bad) */
    int64_t every_ns;  /* disconnect every */
    int64_t hold_ns;   /* backlog */
    char *text;        /* the item as written */
};

struct hc_faults {
    struct rule r[HC_FAULT__COUNT];
    unsigned kinds; /* HC_FAULT_BIT of each kind on */
    char *spec;     /* canonical: the items in kind order */
};

/* --- the stream's storage (faults_stream.c) --------------------------------------------------- */

struct item {
    struct hc_faults_out o; /* o.msg.topic/payload point into the buffers below */
    char *topic;
    size_t topic_cap;
    unsigned char *payload;
    size_t payload_cap;
    int64_t key;         /* heap: release time (recording time) */
    uint64_t release_at; /* dup copies: after this many originals have gone */
    struct item *next;
};

struct list {
    struct item *head, *tail;
    size_t n;
};

/* Per-device state, in an open-addressing table keyed by a hash of the device id. */
struct dev {
    uint64_t key; /* 0: empty slot */
    int64_t hold_until;
    uint64_t hold_from; /* 0: not holding */
    struct list win;    /* reorder with scope=device: the open window */
    long need;
};

struct hc_faults_stream {
    struct hc_faults_stream_options o;
    const hc_faults *f;
    uint64_t seq;       /* inputs taken */
    uint64_t originals; /* originals made ready (dup's :after counts these) */
    struct list ready, spare;
    struct item *popped; /* handed out by the last pop: recycled at the next call */
    bool pass;           /* the current input goes out as it is, after what is ready */
    struct hc_msg pass_msg;
    uint64_t pass_seq;
    struct item **heap; /* delay and backlog, by (key, seq) */
    size_t heap_n, heap_cap;
    struct list win; /* reorder, scope all */
    long win_need;
    struct list dups; /* copies waiting for :after (release_at is non-decreasing) */
    struct dev *devs;
    size_t dev_cap, dev_n, dev_windows, dev_holds;
    bool ge_bad;
    bool dropped_last;
    int64_t last_due;
    bool have_due;
    int64_t next_disconnect;
    bool have_disconnect;
    size_t held;
    unsigned char *scratch;
    size_t scratch_cap;
};

/* The mixing function of the draws (one step of splitmix64): the same on every run and machine. */
static inline uint64_t hc__faults_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* --- payload rewrites (faults_payload.c) ------------------------------------------------------ */

/*
 * Moves every "measured_at"/"received_at" RFC 3339 string value in the payload of it by delta_ns
 * (UTC out, the same fractional precision rounded up to 0, 3, 6 or 9 digits); every other byte
 * stays. Records the first change in it->o (time_field, time_before, time_after) and counts
 * them in it->o.times_changed. False when out of memory.
 */
bool hc__faults_shift_times(hc_faults_stream *s, struct item *it, int64_t delta_ns);

/*
 * Breaks the payload of it the way the draw r picks and sets it->o.corruption; a way that does not
 * apply to this payload (no members to remove, too short to cut) passes to the next. False when
 * out of memory.
 */
bool hc__faults_corrupt(hc_faults_stream *s, struct item *it, uint64_t r);

#endif

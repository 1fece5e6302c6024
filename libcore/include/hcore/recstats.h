/*
 * Aggregates of a message stream for pictures of a recording (hcat --report): counts over
 * time per event type and per device, delivery latency (received_at minus measured_at) as a
 * histogram and over time, and the marks worth seeing on a timeline: decode errors, duplicates
 * and measured_at going backwards. One pass, memory independent of the number of messages
 * (it grows with devices, types and topics), the time axis fixed at HC_RECSTATS_BUCKETS columns
 * whatever the span: the column width starts at one second and doubles (merging neighbours)
 * whenever a message falls beyond the last column.
 *
 * The struct is the contract between computing and drawing: hc_recstats_add fills it from
 * messages; hc_recstats_add_summary fills the same fields from a store's summary tables (counts
 * per time slot x type, per device...) without reading every message, and the renderer does not
 * change. See hc_recstats_add_summary for what a summary can and cannot give.
 *
 * Definitions (per topic, in arrival order):
 *   duplicate   the payload equals, byte for byte, the previous payload on the same topic
 *               (a redelivery, or a device sending the same reading twice), or the MQTT DUP flag
 *   backwards   measured_at is earlier than the previous measured_at on the same topic
 *   latency     received_at - measured_at (ms); negative when the device clock runs ahead
 */
#ifndef HCORE_RECSTATS_H
#define HCORE_RECSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"
#include "hcore/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HC_RECSTATS_BUCKETS 240
#define HC_RECSTATS_LATENCY_BINS 16

/*
 * Latency bins: bin 0 holds negative latencies, bin i (1..14) [edge[i-2], edge[i-1]) ms with
 * edge[-1] = 0, bin 15 everything from the last edge (one hour) on.
 */
extern const int64_t hc_recstats_latency_edges_ms[HC_RECSTATS_LATENCY_BINS - 2];

/* Counts per time column for one event type. */
struct hc_recstats_type {
    char name[64]; /* canonical type, else "(kind)" or "(unknown)" */
    int64_t messages;
    int64_t per_bucket[HC_RECSTATS_BUCKETS];
};

struct hc_recstats_device {
    char id[128];
    char first_type[64]; /* the first type seen, a hint of what the device is */
    int64_t messages;
    int64_t first_ns, last_ns;  /* received_at, CLOCK_REALTIME ns */
    int64_t longest_silence_ns; /* largest gap between its consecutive messages */
    int64_t decode_errors, duplicates, backwards;
    int64_t latency_n, latency_sum_ms, latency_max_ms;
    uint32_t per_bucket[HC_RECSTATS_BUCKETS];
};

/* One anomaly, kept for listing (the first HC_RECSTATS_MAX_EVENTS). */
enum hc_recstats_event_kind { HC_EVENT_DECODE_ERROR, HC_EVENT_DUPLICATE, HC_EVENT_BACKWARDS };
#define HC_RECSTATS_MAX_EVENTS 50
struct hc_recstats_event {
    enum hc_recstats_event_kind kind;
    int64_t received_at_ns;
    char topic[256];
};

struct hc_recstats {
    int64_t messages, payload_bytes;
    int64_t first_ns, last_ns; /* received_at span; 0 when empty */
    int64_t origin_ns;         /* start of column 0 */
    int64_t bucket_ns;         /* column width: 1 s doubled as needed; set it before the first
                                * add to start wider, e.g. at a summary's slot, so that every
                                * slot lies inside one column (widths stay multiples of it) */
    int64_t per_bucket[HC_RECSTATS_BUCKETS];

    struct hc_recstats_type *types; /* in order of first appearance */
    size_t n_types;
    struct hc_recstats_device *devices; /* in order of first appearance */
    size_t n_devices;
    int64_t without_device; /* messages whose topic names no device */

    int64_t latency_bins[HC_RECSTATS_LATENCY_BINS];
    int64_t latency_bins_per_bucket[HC_RECSTATS_BUCKETS][HC_RECSTATS_LATENCY_BINS];
    int64_t latency_max_per_bucket[HC_RECSTATS_BUCKETS]; /* ms; INT64_MIN when none */
    int64_t without_measured_at;

    int64_t decode_errors, duplicates, backwards;
    int64_t decode_errors_per_bucket[HC_RECSTATS_BUCKETS];
    int64_t duplicates_per_bucket[HC_RECSTATS_BUCKETS];
    int64_t backwards_per_bucket[HC_RECSTATS_BUCKETS];
    struct hc_recstats_event events[HC_RECSTATS_MAX_EVENTS];
    size_t n_events;

    struct hc_recstats_private *priv; /* lookup maps and per-topic state */
};

/* *out: a new, empty aggregate (hc_recstats_free). HC_ERR_NOMEM. */
hc_err hc_recstats_new(struct hc_recstats **out, hc_error *err);

/* Adds one message (decoded here with hc_decode_index). HC_ERR_NOMEM. */
hc_err hc_recstats_add(struct hc_recstats *s, const struct hc_msg *m, hc_error *err);

/*
 * One row of a store's summary tables: `messages` messages received in the time slot
 * [slot_start_ns, slot_start_ns + slot_ns) (CLOCK_REALTIME), of one type or of one device.
 *
 * The seam for recordings too large to read message by message (issue 17: a 20M-message
 * report in 2 s). A store that keeps, say, per-minute x type counts and per-device counts per
 * minute feeds them here instead of calling hc_recstats_add per message:
 *   - type rows (device NULL) carry the totals: messages, bytes, the per-column rate per type,
 *     decode errors, duplicates, backwards and latency bins; every message in exactly one;
 *   - device rows (type NULL; device_type its first type) fill only the per-device figures
 *     (messages, per-column counts, first/last seen, anomalies), so nothing counts twice;
 *   - first_ns/last_ns, when known (non-zero), are the exact first and last received_at of the
 *     row, else the slot's bounds stand in.
 * A slot lands whole in the column of its start: a message-by-message pass may put some of its
 * messages one column later (columns are 2^k s wide, slots need not align), so a per-minute
 * summary draws a recording of over 4 hours (columns of a minute or more) as the full pass
 * does, within one column; shorter ones coarser. What summaries do not hold stays empty: the
 * event list (no topics), silences within a slot, messages naming no device, latency maxima
 * per column unless latency_max_ms is given. Give the earliest slot first (the store's ORDER
 * BY slot); a later row before the origin lands in column 0, as an out-of-order message does.
 * HC_ERR_INVALID (slot_ns <= 0, no type and no device, negative counts), HC_ERR_NOMEM.
 */
struct hc_recstats_summary_row {
    int64_t slot_start_ns, slot_ns;
    int64_t first_ns, last_ns; /* CLOCK_REALTIME; 0: unknown, the slot's bounds */
    const char *type;          /* canonical type or "(kind)"; NULL for a device row */
    const char *device;        /* device id; NULL for a type row */
    const char *device_type;   /* device rows: its first type, or NULL */
    int64_t messages, payload_bytes;
    int64_t decode_errors, duplicates, backwards;
    int64_t without_measured_at;
    const int64_t *latency_bins; /* HC_RECSTATS_LATENCY_BINS counts, or NULL */
    int64_t latency_max_ms;      /* valid when latency_bins is given */
    /* device rows: the messages lie somewhere in [first_ns, last_ns] (a per-topic summary that
     * has no time slots): messages, first and last seen are filled, per-column counts and
     * silences are not */
    bool span_only;
};
hc_err hc_recstats_add_summary(struct hc_recstats *s, const struct hc_recstats_summary_row *row,
                               hc_error *err);

/* Columns in use: 0 when empty, else 1 + the column of the last message. */
int hc_recstats_columns(const struct hc_recstats *s);

/*
 * Latency (ms) below which fraction q (0..1) of the counted messages fall, from bins, taking
 * the upper edge of the bin where q is reached (the last edge for the open bin, 0 for the
 * negative one). 0 when bins hold nothing.
 */
int64_t hc_recstats_latency_quantile_ms(const int64_t bins[HC_RECSTATS_LATENCY_BINS], double q);

/* Accepts NULL. */
void hc_recstats_free(struct hc_recstats *s);

#ifdef __cplusplus
}
#endif
#endif

/*
 * The generator's state, shared by gen.c (the model and the schedule) and gen_format.c (the
 * messages on the wire). Internal to libcore (hc__ prefix); not part of the public API.
 */
#ifndef HCORE_GEN_INTERNAL_H
#define HCORE_GEN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/gen.h"
#include "measurements.h"

/* ---- model state -------------------------------------------------------------------------- */

/* The sampled value(s) of one report. */
struct gval {
    double v[4];
    bool b;
    int tsm_ev;
};

struct device {
    uint64_t rng;
    enum hc_gen_kind kind;
    uint32_t index;
    uint32_t first_stream; /* the device's streams are streams[first_stream, + n_streams) */
    uint32_t n_streams;
    uint32_t pending;   /* stream of the report waiting in the heap */
    struct gval report; /* its value(s), as sampled */
    char id[40];        /* UUID or tuid */
    /* --shapes mixed style, fixed per device (all zero in canonical mode) */
    uint8_t ts_style;    /* 0: .123Z, 1: .123000+00:00, 2: no fraction */
    uint8_t alias_style; /* 1: alias spelling of the type in the topic */
    uint8_t named_style; /* 1: named fields instead of "value" where documented */
    uint8_t pos_style;   /* 0: position_local/global, 1: GeoJSON value, 2: +floor, 3: local */
    bool occupied, door, door_open, moving, present;
    uint8_t zone, floor;
    double temp, temp_base, hum, hum_base, press, light, light_base;
    double co2, tvoc, batt, conf, res, res_base, x, y, dist, dist_far, dist_near, traffic;
    double vib_total, ox, oy, echo;
    int64_t leak_until_ms;
    uint32_t total_in, total_out, door_changes, hall_total, move_count;
    /* device groups: people inside (at most capacity), entries and exits not yet reported,
     * occupied seconds of the hour so far */
    uint32_t occupants, capacity, group_in, group_out, occupied_s;
};

struct hc_gen {
    struct hc_gen_options opts;
    uint64_t latency_rng;
    int64_t start_ms, end_ms;
    struct device *devices;
    size_t n_devices;
    size_t kind_first[HC_GEN_KIND__COUNT]; /* index of the first device of each kind */
    struct stream *streams;                /* defined in gen.c */
    size_t n_streams;
    uint64_t *heap; /* (pending report's ms - start ms) << KEY_SHIFT | device index */
    size_t heap_len;
    int64_t last_received_ns;
    char prefix[320]; /* "haltian-iot/events/<integration>/<key>/measurements/" */
    size_t prefix_len;
    char gateway_tuid[18];
    char gateway_uuid[37];
    char space_id[37];
    char building_id[37];
    char zone_ids[4][37];
    int64_t day_cached;
    char day_text[12]; /* "YYYY-MM-DDT" */
    char topic[512];
    char payload[1024];
    struct gval val;
};

/* v rounded half away from zero. */
static inline int64_t hc__gen_round(double v)
{
    return (int64_t)(v < 0 ? v - 0.5 : v + 0.5);
}

/*
 * Writes the message of device d's report of type t at ms (ms since the epoch) into g->topic and
 * g->payload, from the sampled value(s) in g->val and d's state; returns the payload length.
 */
size_t hc__gen_format_haltian(hc_gen *g, const struct device *d, enum hc__mtype t, int64_t ms);
/* The same as a legacy Thingsee message (cloudext/json/... topic, tsm* payload). */
size_t hc__gen_format_thingsee(hc_gen *g, const struct device *d, enum hc__mtype t, int64_t ms);

#endif

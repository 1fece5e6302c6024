/*
 * The traffic generator: a deterministic model of a Haltian installation (environment, presence,
 * air quality, beam, people counting, asset tags, radar and leakage devices) that yields MQTT
 * messages in measured_at order, with the types, ranges, units, cadences and event-driven
 * behaviour Haltian documents (threshold events, hourly heartbeats, battery every 6 h, occupancy
 * on change, a day/night and weekday activity curve). Each device carries its own random state,
 * so the same seed and options always give the same bytes, and a device's traffic does not
 * depend on which other devices are in the mix. Each device's next reported sample waits in a
 * min-heap: per message O(log devices) plus the device's unreported samples before it (cheap: no
 * heap work), constant memory per device.
 */
#ifndef HCORE_GEN_H
#define HCORE_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hc_gen hc_gen;

/* Device kinds (names as in --devices: "environment", "presence", ...). */
enum hc_gen_kind {
    HC_GEN_ENVIRONMENT,
    HC_GEN_PRESENCE,
    HC_GEN_AIR,
    HC_GEN_BEAM,
    HC_GEN_COUNT,
    HC_GEN_TAG,
    HC_GEN_RADAR,
    HC_GEN_LEAKAGE,
    HC_GEN_GROUP, /* a device group: occupants, occupancy, entries/exits, occupied seconds */
    HC_GEN_KIND__COUNT
};

enum hc_gen_shapes {
    HC_GEN_SHAPES_CANONICAL, /* {"measured_at":"...123Z","value":...}, camelCase types */
    HC_GEN_SHAPES_MIXED      /* also named fields, snake_case / upper-case types, 0 or 6
                                fractional digits with +00:00, the other position layouts */
};

/* Default identities: fixed demo UUIDs (not anyone's real ids). */
#define HC_GEN_DEFAULT_INTEGRATION_ID "6f1c2e7a-4d0b-4e8f-9a3c-1b2d3e4f5a60"
#define HC_GEN_DEFAULT_API_KEY_ID "0c9e8d7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
/* Default start for reproducible output: a Monday, 00:00 UTC. */
#define HC_GEN_DEFAULT_START_NS 1769990400000000000LL /* 2026-02-02T00:00:00Z */

struct hc_gen_options {
    uint64_t seed;
    int64_t start_ns;    /* first instant (ns since the epoch, UTC); events are ms-aligned */
    int64_t duration_ns; /* events have start <= measured_at < start + duration */
    long devices[HC_GEN_KIND__COUNT]; /* devices per kind */
    const char *integration_id;       /* NULL: HC_GEN_DEFAULT_INTEGRATION_ID */
    const char *api_key_id;           /* NULL: HC_GEN_DEFAULT_API_KEY_ID */
    enum hc_gen_shapes shapes;
    bool thingsee; /* legacy Thingsee messages (cloudext/json/... topics) instead */
};

/* One generated message. Pointers are owned by the generator, valid until the next call. */
struct hc_gen_msg {
    int64_t measured_at_ns; /* the instant in the payload (ms resolution) */
    int64_t received_at_ns; /* measured_at + a delivery latency; never decreases */
    const char *topic;
    const char *payload;
    size_t payload_len;
    const char *type; /* canonical type name ("ambientTemperature") */
    enum hc_gen_kind kind;
    uint32_t device; /* index of the device within its kind */
};

/* Fills opts with the defaults: seed 1, HC_GEN_DEFAULT_START_NS, 1 h, the default mix. */
void hc_gen_options_init(struct hc_gen_options *opts);

/* "environment" ...; NULL for an out-of-range kind. */
const char *hc_gen_kind_name(enum hc_gen_kind kind);

/*
 * Parses a device mix "environment=50,presence=100,..." into counts (kinds not named get 0).
 * HC_ERR_INVALID naming the problem (unknown kind, bad count, kind given twice, no devices).
 */
hc_err hc_gen_parse_devices(const char *spec, long counts[HC_GEN_KIND__COUNT], hc_error *err);

/* Creates a generator. *out: hc_gen_free. HC_ERR_INVALID for impossible options. */
hc_err hc_gen_new(const struct hc_gen_options *opts, hc_gen **out, hc_error *err);

/* Next message in measured_at order (ties in a fixed order): HC_OK or HC_DONE at the end. */
hc_err hc_gen_next(hc_gen *g, struct hc_gen_msg *msg);

/* Device id (UUID, or the 17-character Thingsee tuid) of a device; borrowed. */
const char *hc_gen_device_id(const hc_gen *g, enum hc_gen_kind kind, uint32_t device);

/* Accepts NULL. */
void hc_gen_free(hc_gen *g);

#ifdef __cplusplus
}
#endif
#endif

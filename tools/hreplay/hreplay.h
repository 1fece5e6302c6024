/*
 * hreplay: republishes a recording (.db) or JSON lines to a broker at original, scaled, fixed or
 * maximum speed, with topic rewriting, device fan-out, connection spreading and sharding, and
 * reports how well the schedule was kept.
 */
#ifndef HREPLAY_H
#define HREPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/sched.h"
#include "tool.h"

#define HREPLAY_MAX_REMAPS 32
#define HREPLAY_DEFAULT_SPIN_NS 50000LL /* --spin default: 50 us */
#define HREPLAY_MAX_SPIN_NS 10000000LL  /* --spin at most 10 ms */
/* QoS 2 window when the broker does not state its limit: Mosquitto's default limit */
#define HREPLAY_SAFE_QOS2_WINDOW 20
#define HREPLAY_DEFAULT_GIVE_UP_NS (60LL * 1000000000LL) /* --give-up default: 60 s */

/* --remap FROM=TO: FROM is a topic filter matched on whole leading levels (hc_topic_prefix_match) */
struct hreplay_remap {
    const char *from, *to;
};

struct hreplay_opts {
    const char *input; /* path, "-" for JSON lines on stdin */
    struct tool_mqtt mqtt;
    struct tool_select select;
    struct hc_sched_options sched;
    int qos;           /* -1: as recorded */
    bool retain_never; /* --retain never */
    struct hreplay_remap remaps[HREPLAY_MAX_REMAPS];
    size_t n_remaps;
    const char *topic_integration_id; /* --integration-id: topic segment 3 */
    const char *topic_api_key_id;     /* --api-key-id: topic segment 4 */
    bool username_given;              /* -u: the MQTT user name is not the api key id */
    bool rebase_time;
    long fanout;      /* K >= 1 */
    long connections; /* N >= 1 */
    long shard_k, shard_n;
    long loops; /* 0: forever */
    long inflight;
    int64_t spin_ns; /* --spin: busy-wait this long before each due time */
    int64_t give_up_ns; /* --give-up: stop reconnecting after this long without progress */
    const char *report_json;
    const char *lateness_log; /* per-message lateness (ns), one line each */
};

enum opts_result hreplay_parse(int argc, char **argv, struct hreplay_opts *o);
void hreplay_opts_release(struct hreplay_opts *o);

/* Runs the replay; returns an exit code (enum tool_exit). */
int hreplay_run(struct hreplay_opts *o);

/* --- pieces unit tests and scripts rely on --------------------------------------------------- */

/* Stable 64-bit hash of a device id (FNV-1a then a 64-bit finaliser). */
uint64_t hreplay_hash(const char *s, size_t len);

/* Connection (low 32 bits) and shard (high 32 bits) of a device hash: independent choices. */
static inline unsigned hreplay_connection_of(uint64_t h, unsigned n)
{
    return (unsigned)((h & 0xffffffffu) % n);
}
static inline unsigned hreplay_shard_of(uint64_t h, unsigned n)
{
    return (unsigned)((h >> 32) % n);
}

/*
 * The k-th derived id of a device (k >= 1): UUID-shaped (version 8, RFC 9562 variant), the same
 * on every run. buf needs 37 bytes.
 */
void hreplay_fanout_id(const char *device, size_t len, long k, char *buf);

#endif

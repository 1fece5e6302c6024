/*
 * hrecord: captures a live MQTT stream (Haltian's by default) into a recording, byte for byte,
 * with arrival times, one session per connection, and reconnection with backoff. The work is
 * hrecord_run so unit tests can call it; hrecord_parse turns argv into options.
 */
#ifndef HRECORD_H
#define HRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"
#include "hcore/mqtt.h"
#include "tool.h"

#define HRECORD_DEFAULT_URL "mqtts://haltian-iot-mqtt.eu.haltian.io:18883"
#define HRECORD_MAX_ARGS 64 /* per repeatable option */
#define HRECORD_MAX_SUBSCRIPTIONS 1000

struct hrecord_opts {
    struct tool_mqtt mqtt;
    const char *topics[HRECORD_MAX_ARGS]; /* -t, verbatim */
    size_t n_topics;
    const char *kinds[HRECORD_MAX_ARGS];
    size_t n_kinds;
    const char *types[HRECORD_MAX_ARGS];
    size_t n_types;
    const char *devices[HRECORD_MAX_ARGS];
    size_t n_devices;
    long qos;
    const char *output; /* NULL until resolved; then -o or output_buf */
    char output_buf[64];
    bool output_is_default; /* no -o: another name is taken when this one exists */
    bool append, force;
    const char *note;
    int64_t duration_ns; /* 0: none */
    long count;          /* 0: none */
    long flush_ms;
    int64_t reconnect_min_ns, reconnect_max_ns;
    bool retry_connect; /* also retry when the first connection fails */
    bool json_summary;
    /* rotation: -o DIR/ with --rotate-size and/or --rotate-time */
    bool output_is_dir;
    int64_t rotate_size; /* bytes of a segment (file and -wal) before the next; 0: none */
    int64_t rotate_ns;   /* period of the wall-clock-aligned cuts; 0: none */
    long keep;           /* segments kept (the oldest are removed); 0: all */

    /* resolved by hrecord_parse */
    struct hc_mqtt_options conn;
    char **filters; /* owned: the subscriptions actually made */
    size_t n_filters;
};

/* Parses argv (prints usage errors, or --help on stdout). Release with hrecord_opts_release. */
enum opts_result hrecord_parse(int argc, char **argv, struct hrecord_opts *o);
void hrecord_opts_release(struct hrecord_opts *o);

/*
 * Builds the Haltian filters for kinds x types x devices under
 * haltian-iot/events/{integration}/{key}/: "+" for an unspecified middle level, "#" for an
 * unspecified device (also matching 6-level topics such as notifications/deviceOffline). Each
 * type is subscribed under its canonical camelCase name and, when different, as given.
 * *out is a new array of new strings (free each, then the array). HC_ERR_INVALID when a
 * segment is empty or contains '/', '+' or '#', or there would be more than max filters.
 */
hc_err hrecord_build_filters(const char *integration_id, const char *api_key_id,
                             const char *const *kinds, size_t n_kinds, const char *const *types,
                             size_t n_types, const char *const *devices, size_t n_devices,
                             size_t max, char ***out, size_t *n_out, hc_error *err);

/* Delay before reconnect attempt `attempt` (0-based): min doubling to max, then scaled by a
 * jitter factor in [0.5, 1.0] taken from jitter01 in [0, 1]. */
int64_t hrecord_backoff_ns(int64_t min_ns, int64_t max_ns, unsigned attempt, double jitter01);

/*
 * The default output name for the attempt-th try (1-based): "hkit-<time>.db", then
 * "hkit-<time>-2.db", "-3"..., so hrecords started in the same second do not collide.
 */
void hrecord_output_variant(const char *base, unsigned attempt, char *buf, size_t size);

/* How long (ms, 1..50) to wait for the next message when the store's open batch is due in
 * due_in_ns (INT64_MAX: no open batch): never past the batch's deadline. */
int hrecord_receive_timeout_ms(int64_t due_in_ns);

struct hrecord_summary {
    bool opened; /* a recording was opened (path is meaningful) */
    char path[4096];
    int64_t messages;     /* recorded in this run */
    int64_t bytes;        /* payload bytes recorded in this run */
    int64_t sessions;     /* sessions begun in this run */
    int64_t disconnects;  /* connections lost (each a gap between sessions) */
    int64_t duration_ns;  /* wall time of the run (CLOCK_MONOTONIC) */
    char stop_reason[64]; /* "interrupted", "count reached", "duration reached", "error" */
};

/* Runs the capture until a stop condition, a signal or a fatal error. */
hc_err hrecord_run(const struct hrecord_opts *o, struct hrecord_summary *sum, hc_error *err);

/* The summary on stderr (unless quiet) and, with --json-summary, as JSON on stdout. */
void hrecord_report(const struct hrecord_opts *o, const struct hrecord_summary *sum,
                    const hc_error *failure);

#endif

/*
 * The MQTT client's parts, shared by its three files (hc__mqtt_, hc__wire_, hc__paho_):
 *  - mqtt.c, the facade: options, the window of unacknowledged messages and its tickets, waits
 *    that honour a cancel flag and an acknowledgement timeout, and the dispatch to a transport;
 *  - mqtt_wire.c, hkit's own MQTT 3.1.1 publisher over plain TCP and its reader thread;
 *  - mqtt_paho.c, the only file that includes paho: subscribers, TLS publishers, the TLS probe.
 * mqtt_wire.c encodes and decodes packets through mqtt_codec.c (mqtt_codec.h, hc__codec_): pure
 * functions without sockets or state, unit-tested and fuzzed on their own.
 * Not part of the public API.
 */
#ifndef HCORE_MQTT_INTERNAL_H
#define HCORE_MQTT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hcore/mqtt.h"

#define SLOT_COUNT 65536  /* MQTT packet identifiers are 16-bit */
#define WAIT_SLICE_MS 100 /* waits look at the cancel flag and the acknowledgement clock this often */
/*
 * QoS 2 window when the broker does not state its limit: Mosquitto's default
 * max_inflight_messages. Beyond its limit Mosquitto answers QoS 2 with PUBREC and PUBCOMP and
 * drops the message (measured with 2.0.11: 100 sent, 100 PUBCOMP, 20 delivered).
 */
#define SAFE_QOS2_WINDOW 20

enum slot_state { SLOT_FREE, SLOT_PENDING, SLOT_ACKED_EARLY };

/* One packet identifier's state in a publisher's window. */
struct slot {
    uint64_t ticket;
    unsigned char state;
    unsigned char qos;
};

struct hc_mqtt {
    void *client; /* paho's MQTTClient; NULL for the plain-TCP publisher */
    enum hc_mqtt_mode mode;
    struct hc_mqtt_url url;
    char *server_uri, *client_id, *username, *password, *cafile, *capath;
    bool insecure;
    int keepalive_s, connect_timeout_s, max_inflight, max_inflight_qos2, ack_timeout_s;
    bool qos2_window_known; /* max_inflight_qos2 was given or probed */
    bool qos2_refused;      /* the broker answered QoS 2 with PUBACK (under lock) */
    const volatile sig_atomic_t *cancel;
    char tls_error[512];

    /* publisher state, guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct slot *slots;
    size_t inflight, inflight_qos2;
    uint64_t next_ticket;
    uint64_t acked_total;
    int64_t progress_ns;   /* CLOCK_MONOTONIC: last acknowledgement, or the window's first entry */
    uint64_t pings_sent;   /* PINGREQs queued (under lock, then ctl_lock), in the order they leave */
    uint64_t pongs_seen;   /* PINGRESPs received (under lock) */
    uint64_t qos0_unproven; /* QoS 0 messages written since a ping answer last proved the broker
                               read everything (raw; publisher thread only) */
    char lost_reason[160]; /* under lock */
    atomic_bool lost; /* written under lock (waiters use the condvar), read without it */

    /* our own plain-TCP publisher (raw): socket, reader thread, output buffer under wlock */
    bool raw;
    int fd;
    pthread_t reader;
    bool reader_running;
    atomic_bool reader_stop;
    atomic_bool awaiting; /* someone waits for acknowledgements */
    pthread_mutex_t wlock;
    unsigned char *out; /* whole packets, except that the front one may be partly written */
    size_t out_len, out_cap;
    bool out_urgent; /* out holds control packets or a partly written packet: write it now */
    bool batching;
    _Atomic int64_t last_write_ns; /* CLOCK_MONOTONIC; when the socket last took bytes */
    int64_t ping_sent_ns;          /* reader only; 0: no PINGREQ outstanding */
    uint16_t next_id;              /* under lock */

    /* control packets (PUBREL, PINGREQ) the reader queued for whoever writes next */
    pthread_mutex_t ctl_lock;
    unsigned char *ctl;
    size_t ctl_len, ctl_cap; /* under ctl_lock */
    atomic_bool ctl_waiting; /* ctl_len > 0; read without the lock */

    /* subscriber's current message (paho's) */
    char *rx_topic;
    void *rx_msg;
};

/* --- mqtt.c ---------------------------------------------------------------------------------- */

int64_t hc__mqtt_now_ns(void); /* CLOCK_MONOTONIC */
bool hc__mqtt_cancelled(const hc_mqtt *m);
/* The window (lock held): a message enters it, or leaves it acknowledged. */
void hc__mqtt_window_enter_locked(hc_mqtt *m, struct slot *s, uint64_t ticket, int qos);
void hc__mqtt_window_release_locked(hc_mqtt *m, struct slot *s);
/* Messages in flight and none acknowledged for ack_timeout_s: sets lost_reason; lock held. */
bool hc__mqtt_ack_stalled_locked(hc_mqtt *m, int64_t now);
/*
 * Waits (lock held) for room in the window for a message at qos: HC_OK, HC_ERR_CONNECTION_LOST
 * (the connection is then closed), HC_ERR_INTERRUPTED. hc__mqtt_window_error names the result.
 */
hc_err hc__mqtt_window_wait_locked(hc_mqtt *m, int qos);
hc_err hc__mqtt_window_error(hc_mqtt *m, hc_err rc, hc_error *err);
/* HC_ERR_CONNECTION_LOST naming the broker and, when known, why; lock not held. */
hc_err hc__mqtt_lost_error(hc_mqtt *m, hc_error *err);
/* A refusal in CONNACK (return codes 1-5), named with its likely fix. */
hc_err hc__mqtt_connack_error(hc_mqtt *m, int rc, hc_error *err);

/* --- mqtt_wire.c ------------------------------------------------------------------------------ */

hc_err hc__wire_connect(hc_mqtt *m, hc_error *err);
/* Sends what is buffered, waits up to timeout_ms for acknowledgements, sends DISCONNECT. */
void hc__wire_disconnect(hc_mqtt *m, int timeout_ms);
void hc__wire_close(hc_mqtt *m);
/* dup: the PUBLISH's DUP flag (QoS 1/2 only; the caller checks) */
hc_err hc__wire_publish(hc_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                        bool retain, bool dup, uint64_t *ticket_out, hc_error *err);
/* Closes the socket and marks the connection lost (reason may be NULL). */
void hc__wire_fail(hc_mqtt *m, const char *reason);
/* Queues a PINGREQ; *number (may be NULL) receives its place among the pings sent. */
bool hc__wire_queue_ping(hc_mqtt *m, uint64_t *number);
/* Makes the kernel acknowledge received data at once (see the comment in mqtt_wire.c). */
void hc__wire_quick_ack(int fd);
/* The broker's Receive Maximum over a short MQTT 5 connection; 0 when it does not say. */
int hc__wire_probe_v5(hc_mqtt *m);

/* --- mqtt_paho.c ------------------------------------------------------------------------------ */

hc_err hc__paho_create(hc_mqtt *m, hc_error *err);
void hc__paho_destroy(hc_mqtt *m);
hc_err hc__paho_connect(hc_mqtt *m, hc_error *err);
void hc__paho_disconnect(hc_mqtt *m, int timeout_ms);
bool hc__paho_is_connected(hc_mqtt *m);
hc_err hc__paho_publish(hc_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                        bool retain, uint64_t *ticket_out, hc_error *err);
int hc__paho_probe_v5(hc_mqtt *m);

#endif

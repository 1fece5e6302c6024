/*
 * The MQTT 3.1.1 session wrapper (the only code that talks to paho). A subscriber receives
 * synchronously on the caller's thread; a publisher keeps a bounded window of unacknowledged
 * QoS 1/2 messages so a replay never queues a whole recording inside the MQTT library.
 * Connection failures are classified (bad credentials, not authorised, TLS, unreachable) so
 * tools can tell users the cause and the fix. Passwords are never logged or copied into errors.
 */
#ifndef HCORE_MQTT_H
#define HCORE_MQTT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"
#include "hcore/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hc_mqtt hc_mqtt;

/* A broker address parsed from mqtt://host[:port] or mqtts://host[:port] ([v6] hosts too). */
struct hc_mqtt_url {
    bool tls;
    char host[256];
    int port; /* default 1883 (mqtt) or 8883 (mqtts) */
};

/* HC_OK or HC_ERR_INVALID naming what is wrong with the URL. */
hc_err hc_mqtt_parse_url(const char *url, struct hc_mqtt_url *out, hc_error *err);

struct hc_mqtt_options {
    const char *url;       /* mqtt://host:port or mqtts://host:port */
    const char *client_id; /* must be unique per connection: see hc_mqtt_client_id */
    const char *username;  /* NULL: none */
    const char *password;  /* NULL: none; never logged */
    const char *cafile;    /* NULL: the system CA bundle */
    const char *capath;
    bool insecure;         /* skip certificate and host name verification (explicit opt-out) */
    int keepalive_s;       /* 0: 60 */
    int connect_timeout_s; /* 0: 10 */
    int max_inflight;      /* publisher window for QoS 1/2; 0: 1000 */
    /*
     * Publisher: of that window, at most this many QoS 2 messages; 0: max_inflight. A broker's
     * own limit must not be exceeded at QoS 2: Mosquitto acknowledges QoS 2 messages beyond its
     * max_inflight_messages (PUBREC, then PUBCOMP) and drops them (see
     * hc_mqtt_probe_receive_maximum).
     */
    int max_inflight_qos2;
    /*
     * Publisher: while messages are in flight, a broker that acknowledges none of them for this
     * long is treated as a lost connection (it may still answer pings); 0: keepalive_s.
     */
    int ack_timeout_s;
    /* Non-NULL: every wait (connect, full window, hc_mqtt_wait_all) ends with HC_ERR_INTERRUPTED
     * within ~100 ms of *cancel becoming non-zero (a tool's SIGINT flag). */
    const volatile sig_atomic_t *cancel;
};

enum hc_mqtt_mode { HC_MQTT_SUBSCRIBER, HC_MQTT_PUBLISHER };

/* Creates a client (not yet connected). *out: hc_mqtt_free. Options are copied. */
hc_err hc_mqtt_new(const struct hc_mqtt_options *opts, enum hc_mqtt_mode mode, hc_mqtt **out,
                   hc_error *err);

/*
 * Asks the broker, on a short separate MQTT 5 connection (client id "<client_id>-probe", same
 * credentials and TLS settings), how many QoS 1/2 messages it accepts in flight (CONNACK
 * property Receive Maximum; absent means 65535). Returns that number, or 0 when the broker did
 * not say: it refused MQTT 5, or could not be reached (hc_mqtt_connect then reports why).
 */
int hc_mqtt_probe_receive_maximum(const struct hc_mqtt_options *opts);

/* Disconnects if needed and frees. Accepts NULL. */
void hc_mqtt_free(hc_mqtt *m);

/*
 * Connects (clean session). Errors: HC_ERR_AUTH (CONNACK 4), HC_ERR_NOT_AUTHORIZED (5),
 * HC_ERR_TLS (handshake or verification failed; the message carries OpenSSL's reason),
 * HC_ERR_CONNECT (refused, unreachable, CONNACK 1-3). Only HC_ERR_CONNECT is worth retrying.
 */
hc_err hc_mqtt_connect(hc_mqtt *m, hc_error *err);

/* Sends DISCONNECT, waiting up to timeout_ms for in-flight messages. */
void hc_mqtt_disconnect(hc_mqtt *m, int timeout_ms);

bool hc_mqtt_is_connected(hc_mqtt *m);

/*
 * Subscribes to n filters at the requested QoS; granted[i] receives the granted QoS (0-2, or
 * 128 for a refused filter). Any refusal is HC_ERR_SUBSCRIBE naming the filter.
 */
hc_err hc_mqtt_subscribe(hc_mqtt *m, size_t n, const char *const *filters, const int *qos,
                         int *granted, hc_error *err);

/*
 * Subscriber: waits up to timeout_ms for one message. HC_OK fills *msg (topic, payload, qos,
 * retain, dup; times are left 0 for the caller) valid until the next call; HC_ERR_TIMEOUT when
 * nothing came; HC_ERR_CONNECTION_LOST when the connection dropped.
 */
hc_err hc_mqtt_receive(hc_mqtt *m, int timeout_ms, struct hc_msg *msg, hc_error *err);

/*
 * Publisher: sends one message. QoS 0 returns once written to the socket (or, with batching,
 * to the client's buffer). QoS 1/2 waits while the window is full (or, at QoS 2, while
 * max_inflight_qos2 are in flight), then returns with the message in flight; *ticket_out (may
 * be NULL) receives its ticket, numbered 1, 2, 3... in publish order over the client's life.
 * HC_ERR_CONNECTION_LOST when the connection is gone (also when the broker acknowledged nothing
 * for ack_timeout_s), HC_ERR_INTERRUPTED when *cancel was set while waiting.
 */
hc_err hc_mqtt_publish(hc_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                       bool retain, uint64_t *ticket_out, hc_error *err);

/*
 * Publisher: as hc_mqtt_publish, with the PUBLISH's DUP flag set: a message sent again, as a
 * client resends after losing its connection (MQTT 3.1.1, 3.3.1.1). HC_ERR_INVALID at QoS 0
 * (the flag must then be 0) and on a TLS connection (paho sets the flag only on its own
 * retries).
 */
hc_err hc_mqtt_publish_dup(hc_mqtt *m, const char *topic, const void *payload, size_t len,
                           int qos, bool retain, uint64_t *ticket_out, hc_error *err);

/*
 * Publisher: drops the connection without DISCONNECT, as a network failure would (what is not
 * yet written is lost; over TLS paho sends DISCONNECT regardless). hc_mqtt_connect connects
 * again. Accepts NULL.
 */
void hc_mqtt_break(hc_mqtt *m);

/*
 * Publisher: with batching on, hc_mqtt_publish may keep messages in the client's buffer and
 * send many in one write (far fewer system calls: for --max style publishing). Buffered
 * messages go out once ~32 KB are waiting, on hc_mqtt_flush, hc_mqtt_wait_all and
 * hc_mqtt_disconnect, when the QoS 1/2 window is full, ahead of a QoS 2 release (PUBREL) or
 * keepalive ping the client owes the broker, and at the latest ~100 ms later. Off by default:
 * every publish is then written before it returns. Only plain-TCP publishers batch; for others
 * both calls do nothing.
 */
void hc_mqtt_set_batching(hc_mqtt *m, bool on);

/*
 * After a stop (Ctrl-C), how long a publisher waits for acknowledgements already on their way
 * (hc_mqtt_wait_all with the cancel flag cleared) before counting the rest as failed.
 */
#define HC_MQTT_STOP_GRACE_MS 500

/* Replaces the cancel flag given in the options (NULL: waits are not cancelled). */
void hc_mqtt_set_cancel(hc_mqtt *m, const volatile sig_atomic_t *cancel);

/* Sends what batching holds back. false when the connection is gone. */
bool hc_mqtt_flush(hc_mqtt *m);

/*
 * Waits until every QoS 1/2 message is acknowledged. A plain-TCP publisher that wrote QoS 0
 * messages since the last such proof then also waits for the answer to a PINGREQ sent behind
 * everything written so far: a broker answers packets in order, so HC_OK means it read every
 * message of this connection, QoS 0 included, without closing it. HC_ERR_TIMEOUT,
 * HC_ERR_CONNECTION_LOST or HC_ERR_INTERRUPTED otherwise.
 */
hc_err hc_mqtt_wait_all(hc_mqtt *m, int timeout_ms, hc_error *err);

/*
 * The lowest ticket not yet acknowledged (after a lost connection: where to resume), or the
 * next ticket to be issued when all are acknowledged.
 */
uint64_t hc_mqtt_oldest_unacked(hc_mqtt *m);

/* QoS 1/2 messages currently in flight. */
size_t hc_mqtt_inflight(hc_mqtt *m);

/* Acknowledgements completed over the client's life (QoS 1 PUBACK, QoS 2 PUBCOMP). */
uint64_t hc_mqtt_acked_total(hc_mqtt *m);

/* Why the last connection was lost, when the client knows ("" otherwise); valid until the next
 * call on m. */
const char *hc_mqtt_lost_reason(hc_mqtt *m);

/* Forgets in-flight state, and QoS 0 messages not yet proven read (after a lost connection,
 * before resuming from oldest_unacked; or once the caller counted them as failed). */
void hc_mqtt_reset_inflight(hc_mqtt *m);

/* Writes "<prefix>-<hostname>-<pid>-<8 random hex>" (unique per run) into buf. */
void hc_mqtt_client_id(const char *prefix, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif

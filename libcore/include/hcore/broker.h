/*
 * A private stand-in for Haltian's broker: one Mosquitto (from PATH) on free loopback ports,
 * set up the way Haltian's Stream API looks to an integration. The consumer listener speaks TLS
 * with a CA and server certificate made here through OpenSSL's API (the CA is written to a file
 * the consumer can trust), takes a password (user = an API key id, password = a JWT-shaped
 * token), and an ACL lets that user read only haltian-iot/events/{integration-id}/{api-key-id}/#.
 * A second, plain listener is for hkit's own publisher (a user of its own with full access).
 *
 * Mosquitto runs in its own process group with default signal dispositions, dies with the thread
 * that started it (PR_SET_PDEATHSIG), and is reaped by hc_broker_free. Readiness is observed:
 * hc_broker_start returns once Mosquitto's log says it runs and both listeners accept.
 *
 * What clients do is read from Mosquitto's log (connections with their user names, and
 * subscriptions), so a caller can wait for a consumer to subscribe without sleeping.
 */
#ifndef HCORE_BROKER_H
#define HCORE_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hc_broker hc_broker;

struct hc_broker_options {
    const char *mosquitto;      /* program to run; NULL: "mosquitto" from PATH */
    const char *tmpdir;         /* parent of the run's directory; NULL: $TMPDIR or /tmp */
    bool plain;                 /* the consumer listener without TLS */
    const char *integration_id; /* NULL: a random UUID */
    const char *api_key_id;     /* NULL: a random UUID */
    /* NULL, or a topic filter the consumer user may also publish to (its output) */
    const char *consumer_write;
    int64_t start_timeout_ns; /* 0: 10 s */
};

/* What a client needs; strings owned by the broker handle, valid until hc_broker_free. */
struct hc_broker_info {
    const char *host;         /* "127.0.0.1" */
    int consumer_port;        /* TLS unless plain */
    const char *consumer_url; /* mqtts://127.0.0.1:PORT (mqtt:// when plain) */
    const char *cafile;       /* the run's CA certificate (PEM); written even when plain */
    const char *integration_id;
    const char *api_key_id; /* the consumer's user name */
    const char *token;      /* the consumer's password (JWT-shaped, never a real token) */
    const char *token_file; /* the token alone in a file of mode 0600 */
    int publisher_port;
    const char *publisher_url; /* mqtt://127.0.0.1:PORT */
    const char *publisher_user;
    const char *publisher_password;
    const char *dir;      /* the run's directory (configuration, certificates, log) */
    const char *log_path; /* Mosquitto's log */
};

/*
 * Makes the run's directory, certificates, password file and ACL, starts Mosquitto and waits
 * (bounded by start_timeout_ns) until it runs and both listeners accept; a listener port another
 * process took in the meantime is retried on other ports. *out: hc_broker_free. Errors:
 * HC_ERR_INVALID (an id that is no topic level), HC_ERR_IO (files, or Mosquitto failed: the
 * message carries its last log line), HC_ERR_TIMEOUT, HC_ERR_NOMEM.
 */
hc_err hc_broker_start(const struct hc_broker_options *opts, hc_broker **out, hc_error *err);

const struct hc_broker_info *hc_broker_get_info(const hc_broker *b);

/* True while Mosquitto runs (reaps it when it has exited). */
bool hc_broker_alive(hc_broker *b);

/*
 * Kills Mosquitto (SIGKILL to its group, as a crash would: sessions and messages in flight are
 * lost, persistence is off) and starts it again with the same configuration on the same ports,
 * waiting (bounded by timeout_ns, 0: 10 s) until both listeners accept. Clients must reconnect.
 * The log continues where it was: hc_broker_poll_events then reports the reconnections.
 * HC_ERR_IO (it could not start again: its last output line), HC_ERR_TIMEOUT.
 */
hc_err hc_broker_restart(hc_broker *b, int64_t timeout_ns, hc_error *err);

enum hc_broker_event_kind {
    HC_BROKER_CONNECTED,
    HC_BROKER_SUBSCRIBED,
    HC_BROKER_DISCONNECTED,
    /* "Outgoing messages are being dropped for client ...": its queue is full (logged once each
     * time the client starts losing messages, not once per message) */
    HC_BROKER_DROPPING
};

/* One thing Mosquitto logged. Strings borrowed for the duration of the callback. */
struct hc_broker_event {
    enum hc_broker_event_kind kind;
    const char *client_id;
    const char *user;   /* the client's user name as seen when it connected; "" when none/unknown */
    const char *filter; /* HC_BROKER_SUBSCRIBED: the topic filter */
    int qos;            /* HC_BROKER_SUBSCRIBED: the requested QoS */
};

typedef void (*hc_broker_event_fn)(void *ctx, const struct hc_broker_event *ev);

/*
 * Reads what Mosquitto logged since the last call (from its start on the first) and hands each
 * connection, subscription and disconnection to fn in order. Non-blocking. HC_OK or HC_ERR_IO.
 */
hc_err hc_broker_poll_events(hc_broker *b, hc_broker_event_fn fn, void *ctx, hc_error *err);

/* The consumer's environment: HALTIAN_MQTT_HOST, HALTIAN_MQTT_PORT, HALTIAN_MQTT_URL,
 * HALTIAN_API_KEY_ID, HALTIAN_API_KEY_TOKEN, HALTIAN_INTEGRATION_ID and HKIT_CAFILE. */
#define HC_BROKER_ENV_COUNT 7

/* Caller-owned storage for that environment; vars is NULL-terminated "NAME=value" strings, as
 * struct hc_proc_options.env takes them (a caller may copy them into a longer list). */
struct hc_broker_env {
    char text[HC_BROKER_ENV_COUNT][700];
    const char *vars[HC_BROKER_ENV_COUNT + 1];
};

/* Fills env from info (any broker: the stand-in's, or one a caller describes itself). */
void hc_broker_env_init(struct hc_broker_env *env, const struct hc_broker_info *info);

/*
 * CMD with {host} {port} {url} {cafile} {api_key_id} {integration_id} {token_file} replaced by
 * info's values, each shell-quoted when it needs it; unknown {words} stay as they are. The token
 * itself has no placeholder: it never goes into argv. Returns a string the caller frees, or
 * NULL when out of memory.
 */
char *hc_broker_expand_command(const struct hc_broker_info *info, const char *cmd);

/*
 * Writes the Mosquitto password file line "user:$7$iterations$salt$hash" (PBKDF2-HMAC-SHA512,
 * 101 iterations, a 12-byte random salt, base64) for user and password into buf (size >= 256).
 * HC_OK, HC_ERR_INVALID (too small, or a user with ':'), HC_ERR_IO (OpenSSL failed).
 */
hc_err hc_broker_password_line(const char *user, const char *password, char *buf, size_t size,
                               hc_error *err);

/* Stops Mosquitto (SIGTERM to its group, SIGKILL after 2 s), reaps it, removes the run's
 * directory and frees. Accepts NULL. */
void hc_broker_free(hc_broker *b);

#ifdef __cplusplus
}
#endif
#endif

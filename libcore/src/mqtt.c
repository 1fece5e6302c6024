/*
 * MQTT sessions: the facade over two transports (see mqtt_internal.h for the parts).
 *
 * Subscribers use paho's synchronous client (mqtt_paho.c). Publishers over TLS use paho's
 * synchronous client with callbacks; publishers over plain TCP use hkit's own MQTT 3.1.1 writer
 * (mqtt_wire.c), because paho's publish path was measured to be the replay's bottleneck.
 *
 * This file owns what both publishers share: a window bounded by max_inflight (and, at QoS 2, by
 * the broker's own in-flight limit, asked on a probe connection) so memory stays flat and no
 * broker silently drops what it acknowledged; tickets that number messages so a caller can
 * resume after a lost connection; and waits that end within WAIT_SLICE_MS of a cancel request,
 * and treat a broker that acknowledges nothing for ack_timeout_s as a lost connection.
 */
#include "hcore/mqtt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "hcore/log.h"
#include "internal.h"
#include "mqtt_internal.h"

static void qos2_window_probe(hc_mqtt *m);

hc_err hc_mqtt_parse_url(const char *url, struct hc_mqtt_url *out, hc_error *err)
{
    const char *p, *host_end, *port_start = NULL;
    size_t host_len;

    memset(out, 0, sizeof(*out));
    if (!url)
        return hc_error_set(err, HC_ERR_INVALID, "no broker url");
    if (strncmp(url, "mqtt://", 7) == 0) {
        p = url + 7;
        out->port = 1883;
    } else if (strncmp(url, "mqtts://", 8) == 0) {
        p = url + 8;
        out->tls = true;
        out->port = 8883;
    } else {
        return hc_error_set(err, HC_ERR_INVALID,
                            "invalid url '%s': expected mqtt://host[:port] or mqtts://host[:port]",
                            url);
    }
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (!host_end)
            return hc_error_set(err, HC_ERR_INVALID, "invalid url '%s': missing ']'", url);
        host_len = (size_t)(host_end - p) + 1;
        if (host_end[1] == ':')
            port_start = host_end + 2;
        else if (host_end[1] != '\0' && strcmp(host_end + 1, "/") != 0)
            return hc_error_set(err, HC_ERR_INVALID, "invalid url '%s'", url);
    } else {
        host_end = p + strcspn(p, ":/");
        host_len = (size_t)(host_end - p);
        if (*host_end == ':')
            port_start = host_end + 1;
        else if (*host_end == '/' && host_end[1] != '\0')
            return hc_error_set(err, HC_ERR_INVALID, "invalid url '%s': paths are not supported",
                                url);
    }
    if (host_len == 0 || host_len >= sizeof(out->host))
        return hc_error_set(err, HC_ERR_INVALID, "invalid url '%s': bad host", url);
    memcpy(out->host, p, host_len);
    out->host[host_len] = '\0';
    if (port_start) {
        char *end;
        long port;
        errno = 0;
        port = strtol(port_start, &end, 10);
        if (errno || end == port_start || (*end && strcmp(end, "/") != 0) || port < 1 ||
            port > 65535)
            return hc_error_set(err, HC_ERR_INVALID, "invalid url '%s': bad port", url);
        out->port = (int)port;
    }
    return HC_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (s) {
        /* volatile so the compiler keeps the wipe of the password */
        volatile char *v = s;
        while (*v)
            *v++ = '\0';
        free(s);
    }
}

int64_t hc__mqtt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool hc__mqtt_cancelled(const hc_mqtt *m)
{
    return m->cancel && *m->cancel;
}

/* A message left the window (acknowledged); lock held. */
void hc__mqtt_window_release_locked(hc_mqtt *m, struct slot *s)
{
    s->state = SLOT_FREE;
    m->inflight--;
    if (s->qos == 2)
        m->inflight_qos2--;
    m->acked_total++;
    m->progress_ns = hc__mqtt_now_ns();
}

/* A message entered the window; lock held. */
void hc__mqtt_window_enter_locked(hc_mqtt *m, struct slot *s, uint64_t ticket, int qos)
{
    if (m->inflight == 0)
        m->progress_ns = hc__mqtt_now_ns(); /* the acknowledgement clock starts with the first message */
    s->state = SLOT_PENDING;
    s->ticket = ticket;
    s->qos = (unsigned char)qos;
    m->inflight++;
    if (qos == 2)
        m->inflight_qos2++;
}

/* True when the window has room for a message at qos; lock held. */
static bool window_has_room_locked(const hc_mqtt *m, int qos)
{
    return m->inflight < (size_t)m->max_inflight &&
           (qos < 2 || m->inflight_qos2 < (size_t)m->max_inflight_qos2);
}

/*
 * True when messages are in flight and the broker acknowledged none of them for ack_timeout_s:
 * it may still answer pings, but it is not taking our messages. Sets lost_reason; lock held.
 */
bool hc__mqtt_ack_stalled_locked(hc_mqtt *m, int64_t now)
{
    if (m->inflight == 0 || now - m->progress_ns < (int64_t)m->ack_timeout_s * 1000000000LL)
        return false;
    snprintf(m->lost_reason, sizeof(m->lost_reason),
             "the broker acknowledged none of %zu messages in flight for %d s", m->inflight,
             m->ack_timeout_s);
    return true;
}

/* Waits on the condition variable for at most WAIT_SLICE_MS; lock held. */
static void wait_slice_locked(hc_mqtt *m)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += WAIT_SLICE_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&m->changed, &m->lock, &until);
}

hc_err hc__mqtt_lost_error(hc_mqtt *m, hc_error *err)
{
    char reason[sizeof(m->lost_reason)];

    pthread_mutex_lock(&m->lock);
    memcpy(reason, m->lost_reason, sizeof(reason));
    pthread_mutex_unlock(&m->lock);
    return hc_error_set(err, HC_ERR_CONNECTION_LOST, "connection to '%s:%d' lost%s%s", m->url.host,
                        m->url.port, reason[0] ? ": " : "", reason);
}

/*
 * A broker that stopped acknowledging (ack_stalled_locked wrote why): the connection counts as
 * lost and is closed, so a resend goes over a new one. Lock held, and held again on return.
 */
static void close_stalled_locked(hc_mqtt *m)
{
    m->lost = true;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    if (m->raw && m->fd >= 0)
        shutdown(m->fd, SHUT_RDWR);
    else if (m->client)
        hc__paho_disconnect(m, 0);
    pthread_mutex_lock(&m->lock);
}

/*
 * Waits, lock held, until the window has room for a message at qos: HC_OK;
 * HC_ERR_CONNECTION_LOST when the connection is gone or the broker stopped acknowledging (the
 * connection is then closed); HC_ERR_INTERRUPTED when the cancel flag was set.
 */
hc_err hc__mqtt_window_wait_locked(hc_mqtt *m, int qos)
{
    bool flushed = false, stalled = false;
    hc_err rc = HC_OK;

    while (!window_has_room_locked(m, qos) && !m->lost) {
        if (m->raw && !flushed) {
            /* the acknowledgements we wait for may be in our own unsent batch */
            pthread_mutex_unlock(&m->lock);
            hc_mqtt_flush(m);
            pthread_mutex_lock(&m->lock);
            m->awaiting = true;
            hc__wire_quick_ack(m->fd);
            flushed = true;
            continue;
        }
        if (hc__mqtt_cancelled(m)) {
            rc = HC_ERR_INTERRUPTED;
            break;
        }
        if (hc__mqtt_ack_stalled_locked(m, hc__mqtt_now_ns())) {
            stalled = true;
            break;
        }
        wait_slice_locked(m);
    }
    m->awaiting = false;
    if (stalled)
        close_stalled_locked(m);
    if (rc == HC_OK && m->lost)
        rc = HC_ERR_CONNECTION_LOST;
    return rc;
}

/* The error for hc__mqtt_window_wait_locked's result; lock not held. */
hc_err hc__mqtt_window_error(hc_mqtt *m, hc_err rc, hc_error *err)
{
    if (rc == HC_ERR_INTERRUPTED)
        return hc_error_set(err, rc, "interrupted while waiting for acknowledgements");
    return hc__mqtt_lost_error(m, err);
}

void hc_mqtt_set_cancel(hc_mqtt *m, const volatile sig_atomic_t *cancel)
{
    m->cancel = cancel;
}

hc_err hc_mqtt_new(const struct hc_mqtt_options *o, enum hc_mqtt_mode mode, hc_mqtt **out,
                   hc_error *err)
{
    hc_mqtt *m;
    hc_err rc;
    size_t uri_len;

    *out = NULL;
    if (!o || !o->client_id || !*o->client_id)
        return hc_error_set(err, HC_ERR_INVALID, "a client id is required");
    m = calloc(1, sizeof(*m));
    if (!m)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->changed, NULL);
    pthread_mutex_init(&m->wlock, NULL);
    pthread_mutex_init(&m->ctl_lock, NULL);
    m->fd = -1;
    m->mode = mode;
    m->next_ticket = 1;
    rc = hc_mqtt_parse_url(o->url, &m->url, err);
    if (rc != HC_OK)
        goto fail;
    uri_len = strlen(m->url.host) + 16;
    m->server_uri = malloc(uri_len);
    m->client_id = strdup(o->client_id);
    m->username = dup_or_null(o->username);
    m->password = dup_or_null(o->password);
    m->cafile = dup_or_null(o->cafile);
    m->capath = dup_or_null(o->capath);
    m->slots = mode == HC_MQTT_PUBLISHER ? calloc(SLOT_COUNT, sizeof(struct slot)) : NULL;
    if (!m->server_uri || !m->client_id || (o->username && !m->username) ||
        (o->password && !m->password) || (o->cafile && !m->cafile) || (o->capath && !m->capath) ||
        (mode == HC_MQTT_PUBLISHER && !m->slots)) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(m->server_uri, uri_len, "%s://%s:%d", m->url.tls ? "ssl" : "tcp", m->url.host,
             m->url.port);
    m->insecure = o->insecure;
    m->keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : 60;
    m->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;
    m->max_inflight = o->max_inflight > 0 ? o->max_inflight : 1000;
    if (m->max_inflight > 65535)
        m->max_inflight = 65535;
    m->qos2_window_known = o->max_inflight_qos2 > 0;
    m->max_inflight_qos2 = m->qos2_window_known && o->max_inflight_qos2 < m->max_inflight
                               ? o->max_inflight_qos2
                               : m->max_inflight;
    m->ack_timeout_s = o->ack_timeout_s > 0 ? o->ack_timeout_s : m->keepalive_s;
    m->cancel = o->cancel;
    m->raw = mode == HC_MQTT_PUBLISHER && !m->url.tls;
    if (m->raw) {
        *out = m;
        return HC_OK;
    }

    rc = hc__paho_create(m, err);
    if (rc != HC_OK)
        goto fail;
    *out = m;
    return HC_OK;
fail:
    hc_mqtt_free(m);
    return rc;
}

void hc_mqtt_free(hc_mqtt *m)
{
    if (!m)
        return;
    if (m->raw && m->fd >= 0 && !m->lost)
        hc_mqtt_disconnect(m, 1000);
    hc__wire_close(m);
    free(m->out);
    free(m->ctl);
    pthread_mutex_destroy(&m->wlock);
    pthread_mutex_destroy(&m->ctl_lock);
    hc__paho_destroy(m);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->changed);
    free(m->slots);
    free(m->server_uri);
    free(m->client_id);
    free(m->username);
    free_secret(m->password);
    free(m->cafile);
    free(m->capath);
    free(m);
}

/* A refusal in CONNACK (return codes 1-5), named with its likely fix. */
hc_err hc__mqtt_connack_error(hc_mqtt *m, int rc, hc_error *err)
{
    const char *where = m->url.host;
    int port = m->url.port;

    switch (rc) {
    case 1:
        return hc_error_set(err, HC_ERR_CONNECT,
                            "broker '%s:%d' refused the connection: unacceptable protocol version "
                            "(hkit speaks MQTT 3.1.1)",
                            where, port);
    case 2:
        return hc_error_set(err, HC_ERR_CONNECT,
                            "broker '%s:%d' rejected client id '%s'; choose another with -i", where,
                            port, m->client_id);
    case 3:
        return hc_error_set(err, HC_ERR_CONNECT, "broker '%s:%d' is unavailable (CONNACK 3)", where,
                            port);
    case 4:
        return hc_error_set(err, HC_ERR_AUTH,
                            "broker '%s:%d' rejected the credentials: bad user name or password "
                            "(check the API key id and token)",
                            where, port);
    case 5:
        return hc_error_set(err, HC_ERR_NOT_AUTHORIZED,
                            "broker '%s:%d' refused the connection: not authorised (check the "
                            "API key id and token, and that the key is still valid)",
                            where, port);
    default:
        return hc_error_set(err, HC_ERR_CONNECT,
                            "broker '%s:%d' refused the connection (CONNACK %d)", where, port, rc);
    }
}

hc_err hc_mqtt_connect(hc_mqtt *m, hc_error *err)
{
    return m->raw ? hc__wire_connect(m, err) : hc__paho_connect(m, err);
}

void hc_mqtt_disconnect(hc_mqtt *m, int timeout_ms)
{
    if (m && m->raw)
        hc__wire_disconnect(m, timeout_ms);
    else if (m && m->client)
        hc__paho_disconnect(m, timeout_ms);
}

bool hc_mqtt_is_connected(hc_mqtt *m)
{
    bool lost;
    if (m && m->raw)
        return m->fd >= 0 && !m->lost;
    if (!m || !m->client)
        return false;
    pthread_mutex_lock(&m->lock);
    lost = m->lost;
    pthread_mutex_unlock(&m->lock);
    return !lost && hc__paho_is_connected(m);
}

/* What both publish calls check first; HC_OK to go on. */
static hc_err publish_checks(hc_mqtt *m, size_t len, int qos, hc_error *err)
{
    if (len > 268435455)
        return hc_error_set(err, HC_ERR_INVALID, "payload of %zu bytes exceeds mqtt's limit", len);
    if (qos == 2 && m->qos2_refused)
        return hc_error_set(err, HC_ERR_MQTT,
                            "broker '%s:%d' does not support publishing at QoS 2 (it answered "
                            "with PUBACK); use -q 1",
                            m->url.host, m->url.port);
    if (qos == 2 && !m->qos2_window_known)
        qos2_window_probe(m);
    return HC_OK;
}

hc_err hc_mqtt_publish(hc_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                       bool retain, uint64_t *ticket_out, hc_error *err)
{
    hc_err rc = publish_checks(m, len, qos, err);

    if (rc != HC_OK)
        return rc;
    if (m->raw)
        return hc__wire_publish(m, topic, payload, len, qos, retain, false, ticket_out, err);
    return hc__paho_publish(m, topic, payload, len, qos, retain, ticket_out, err);
}

hc_err hc_mqtt_publish_dup(hc_mqtt *m, const char *topic, const void *payload, size_t len,
                           int qos, bool retain, uint64_t *ticket_out, hc_error *err)
{
    hc_err rc;

    if (qos < 1)
        return hc_error_set(err, HC_ERR_INVALID, "the dup flag needs qos 1 or 2");
    if (!m->raw)
        return hc_error_set(err, HC_ERR_INVALID,
                            "cannot set the dup flag on '%s:%d': over tls, paho sets it only on "
                            "its own retries (use a plain mqtt:// url)",
                            m->url.host, m->url.port);
    rc = publish_checks(m, len, qos, err);
    if (rc != HC_OK)
        return rc;
    return hc__wire_publish(m, topic, payload, len, qos, retain, true, ticket_out, err);
}

void hc_mqtt_break(hc_mqtt *m)
{
    if (m && m->raw)
        hc__wire_close(m); /* no DISCONNECT: the broker sees the connection drop */
    else if (m && m->client)
        hc__paho_disconnect(m, 0);
}

hc_err hc_mqtt_wait_all(hc_mqtt *m, int timeout_ms, hc_error *err)
{
    int64_t deadline = hc__mqtt_now_ns() + (int64_t)timeout_ms * 1000000LL;
    uint64_t ping = 0;
    bool stalled = false;
    hc_err rc = HC_OK;

    if (m->raw && !m->lost && hc_mqtt_flush(m)) {
        m->awaiting = true;
        hc__wire_quick_ack(m->fd);
    }
    pthread_mutex_lock(&m->lock);
    for (;;) {
        if (m->lost) {
            rc = HC_ERR_CONNECTION_LOST;
            break;
        }
        if (m->inflight == 0) {
            /* only QoS 0 messages need the ping: the others were each acknowledged */
            if (!m->raw || m->qos0_unproven == 0)
                break;
            if (ping && m->pongs_seen >= ping) {
                m->qos0_unproven = 0;
                break;
            }
            if (!ping) {
                /* behind everything we wrote: its answer proves the broker read all of it */
                pthread_mutex_unlock(&m->lock);
                if (!hc__wire_queue_ping(m, &ping) || !hc_mqtt_flush(m))
                    hc__wire_fail(m, NULL);
                pthread_mutex_lock(&m->lock);
                m->progress_ns = hc__mqtt_now_ns();
                continue;
            }
            if (hc__mqtt_now_ns() - m->progress_ns > (int64_t)m->ack_timeout_s * 1000000000LL) {
                snprintf(m->lost_reason, sizeof(m->lost_reason),
                         "the broker did not answer a ping for %d s", m->ack_timeout_s);
                stalled = true;
                break;
            }
        } else if (hc__mqtt_ack_stalled_locked(m, hc__mqtt_now_ns())) {
            stalled = true;
            break;
        }
        if (hc__mqtt_cancelled(m)) {
            rc = hc_error_set(err, HC_ERR_INTERRUPTED,
                              "interrupted with %zu messages unacknowledged", m->inflight);
            break;
        }
        if (hc__mqtt_now_ns() >= deadline) {
            if (m->inflight)
                rc = hc_error_set(err, HC_ERR_TIMEOUT,
                                  "%zu messages still unacknowledged after %d ms", m->inflight,
                                  timeout_ms);
            else
                rc = hc_error_set(err, HC_ERR_TIMEOUT,
                                  "the broker did not answer a ping within %d ms, so %llu QoS 0 "
                                  "messages are not known to have been read",
                                  timeout_ms, (unsigned long long)m->qos0_unproven);
            break;
        }
        wait_slice_locked(m);
    }
    m->awaiting = false;
    if (stalled) {
        close_stalled_locked(m);
        rc = HC_ERR_CONNECTION_LOST;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == HC_ERR_CONNECTION_LOST) {
        size_t left = hc_mqtt_inflight(m);
        hc__mqtt_lost_error(m, err);
        if (err && left)
            hc_error_prefix(err, "%zu messages unacknowledged", left);
    }
    return rc;
}

uint64_t hc_mqtt_oldest_unacked(hc_mqtt *m)
{
    uint64_t oldest;

    pthread_mutex_lock(&m->lock);
    oldest = m->next_ticket;
    if (m->slots && m->inflight > 0) {
        for (size_t i = 1; i < SLOT_COUNT; i++)
            if (m->slots[i].state == SLOT_PENDING && m->slots[i].ticket < oldest)
                oldest = m->slots[i].ticket;
    }
    pthread_mutex_unlock(&m->lock);
    return oldest;
}

size_t hc_mqtt_inflight(hc_mqtt *m)
{
    size_t n;
    pthread_mutex_lock(&m->lock);
    n = m->inflight;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void hc_mqtt_reset_inflight(hc_mqtt *m)
{
    pthread_mutex_lock(&m->lock);
    if (m->slots)
        memset(m->slots, 0, SLOT_COUNT * sizeof(struct slot));
    m->inflight = m->inflight_qos2 = 0;
    m->qos0_unproven = 0; /* the caller counted them as possibly lost */
    pthread_mutex_unlock(&m->lock);
}

static int probe_receive_maximum(hc_mqtt *m)
{
    return m->url.tls ? hc__paho_probe_v5(m) : hc__wire_probe_v5(m);
}

/* Sets the QoS 2 window from the broker's stated limit, once per client. */
static void qos2_window_probe(hc_mqtt *m)
{
    int limit = probe_receive_maximum(m);

    m->qos2_window_known = true;
    if (limit <= 0) {
        limit = SAFE_QOS2_WINDOW;
        hc_log(HC_LOG_INFO,
               "mqtt: broker '%s:%d' does not state its in-flight limit (MQTT 5 Receive "
               "Maximum); at most %d QoS 2 messages in flight",
               m->url.host, m->url.port, limit);
    }
    if (limit < m->max_inflight) {
        pthread_mutex_lock(&m->lock);
        m->max_inflight_qos2 = limit;
        pthread_mutex_unlock(&m->lock);
    }
}

int hc_mqtt_probe_receive_maximum(const struct hc_mqtt_options *opts)
{
    hc_mqtt *m;
    int limit;

    if (hc_mqtt_new(opts, HC_MQTT_PUBLISHER, &m, NULL) != HC_OK)
        return 0;
    limit = probe_receive_maximum(m);
    hc_mqtt_free(m);
    return limit;
}

uint64_t hc_mqtt_acked_total(hc_mqtt *m)
{
    uint64_t n;
    pthread_mutex_lock(&m->lock);
    n = m->acked_total;
    pthread_mutex_unlock(&m->lock);
    return n;
}

const char *hc_mqtt_lost_reason(hc_mqtt *m)
{
    return m->lost_reason;
}

void hc_mqtt_client_id(const char *prefix, char *buf, size_t size)
{
    char host[64] = "host";
    unsigned char rnd[4] = {0};

    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        memcpy(rnd, &ts.tv_nsec, sizeof(rnd));
    }
    /* MQTT 3.1.1 brokers must accept 23 bytes; most accept more. Keep it short anyway. */
    snprintf(buf, size, "%s-%.16s-%ld-%02x%02x%02x%02x", prefix, host, (long)getpid(), rnd[0],
             rnd[1], rnd[2], rnd[3]);
}

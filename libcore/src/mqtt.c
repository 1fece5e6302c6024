/*
 * MQTT sessions over paho's synchronous client (MQTTClient). The only file that includes paho.
 *
 * Subscribers set no callbacks and pull messages with MQTTClient_receive on the caller's thread:
 * one thread, no queue in between, and the recording loop decides when to commit. Publishers
 * set callbacks so acknowledgements arrive on paho's thread; a window bounded by max_inflight
 * keeps memory flat (unbounded publishing was measured to grow to ~900 MB for 1M messages).
 */
#include "hcore/mqtt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>
#include <openssl/rand.h>

#include "hcore/log.h"

#define SLOT_COUNT 65536 /* MQTT packet identifiers are 16-bit */

enum slot_state { SLOT_FREE, SLOT_PENDING, SLOT_ACKED_EARLY };

struct slot {
    uint64_t ticket;
    unsigned char state;
};

struct hc_mqtt {
    MQTTClient client;
    enum hc_mqtt_mode mode;
    struct hc_mqtt_url url;
    char *server_uri, *client_id, *username, *password, *cafile, *capath;
    bool insecure;
    int keepalive_s, connect_timeout_s, max_inflight;
    char tls_error[512];

    /* publisher state, guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct slot *slots;
    size_t inflight;
    uint64_t next_ticket;
    bool lost;

    /* subscriber's current message */
    char *rx_topic;
    MQTTClient_message *rx_msg;
};

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

/* --- publisher callbacks (paho's thread) ---------------------------------------------------- */

static int on_message(void *ctx, char *topic, int topic_len, MQTTClient_message *msg)
{
    (void)ctx;
    (void)topic_len;
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    return 1;
}

static void on_delivered(void *ctx, MQTTClient_deliveryToken token)
{
    hc_mqtt *m = ctx;
    struct slot *s;

    if (token <= 0 || token >= SLOT_COUNT)
        return;
    pthread_mutex_lock(&m->lock);
    s = &m->slots[token];
    if (s->state == SLOT_PENDING) {
        s->state = SLOT_FREE;
        m->inflight--;
    } else {
        /* the acknowledgement beat hc_mqtt_publish to recording the token */
        s->state = SLOT_ACKED_EARLY;
    }
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
}

static void on_lost(void *ctx, char *cause)
{
    hc_mqtt *m = ctx;
    (void)cause;
    pthread_mutex_lock(&m->lock);
    m->lost = true;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
}

static int on_tls_error(const char *str, size_t len, void *ctx)
{
    hc_mqtt *m = ctx;
    /*
     * OpenSSL prints "tid:error:code:library:function:reason:file:line:data"; keep the reason of
     * the first error (the most specific one), or the whole line if it has another shape.
     */
    if (!m->tls_error[0]) {
        char line[512];
        const char *reason = line;
        char *p;
        size_t n = len < sizeof(line) - 1 ? len : sizeof(line) - 1;

        memcpy(line, str, n);
        line[n] = '\0';
        p = strstr(line, ":error:");
        if (p) {
            p += 1;
            for (int i = 0; i < 4 && p; i++) {
                p = strchr(p, ':');
                if (p)
                    p++;
            }
            if (p && *p) {
                reason = p;
                p[strcspn(p, ":\n")] = '\0';
            }
        }
        line[strcspn(line, "\n")] = '\0';
        snprintf(m->tls_error, sizeof(m->tls_error), "%s", reason);
    }
    return 1;
}

hc_err hc_mqtt_new(const struct hc_mqtt_options *o, enum hc_mqtt_mode mode, hc_mqtt **out,
                   hc_error *err)
{
    hc_mqtt *m;
    hc_err rc;
    int prc;
    size_t uri_len;

    *out = NULL;
    if (!o || !o->client_id || !*o->client_id)
        return hc_error_set(err, HC_ERR_INVALID, "a client id is required");
    m = calloc(1, sizeof(*m));
    if (!m)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->changed, NULL);
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
        (o->password && !m->password) || (o->cafile && !m->cafile) ||
        (o->capath && !m->capath) || (mode == HC_MQTT_PUBLISHER && !m->slots)) {
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

    prc = MQTTClient_create(&m->client, m->server_uri, m->client_id, MQTTCLIENT_PERSISTENCE_NONE,
                            NULL);
    if (prc != MQTTCLIENT_SUCCESS) {
        rc = hc_error_set(err, HC_ERR_MQTT, "cannot create mqtt client for '%s:%d': %s",
                          m->url.host, m->url.port, MQTTClient_strerror(prc));
        m->client = NULL;
        goto fail;
    }
    if (mode == HC_MQTT_PUBLISHER) {
        prc = MQTTClient_setCallbacks(m->client, m, on_lost, on_message, on_delivered);
        if (prc != MQTTCLIENT_SUCCESS) {
            rc = hc_error_set(err, HC_ERR_MQTT, "cannot set mqtt callbacks: %s",
                              MQTTClient_strerror(prc));
            goto fail;
        }
    }
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
    if (m->client) {
        if (MQTTClient_isConnected(m->client))
            MQTTClient_disconnect(m->client, 1000);
        MQTTClient_destroy(&m->client);
    }
    if (m->rx_msg)
        MQTTClient_freeMessage(&m->rx_msg);
    if (m->rx_topic)
        MQTTClient_free(m->rx_topic);
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

hc_err hc_mqtt_connect(hc_mqtt *m, hc_error *err)
{
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    const char *where = m->url.host;
    int port = m->url.port;
    int rc;

    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.keepAliveInterval = m->keepalive_s;
    co.cleansession = 1;
    co.connectTimeout = m->connect_timeout_s;
    co.username = m->username;
    co.password = m->password;
    co.maxInflightMessages = m->max_inflight;
    co.reliable = 0; /* allow a window of in-flight messages, not one at a time */
    if (m->url.tls) {
        ssl.enableServerCertAuth = m->insecure ? 0 : 1;
        ssl.verify = m->insecure ? 0 : 1; /* host name check */
        ssl.trustStore = m->cafile;
        ssl.CApath = m->capath;
        ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
        ssl.ssl_error_cb = on_tls_error;
        ssl.ssl_error_context = m;
        co.ssl = &ssl;
    }
    m->tls_error[0] = '\0';
    pthread_mutex_lock(&m->lock);
    m->lost = false;
    pthread_mutex_unlock(&m->lock);

    rc = MQTTClient_connect(m->client, &co);
    switch (rc) {
    case MQTTCLIENT_SUCCESS:
        return HC_OK;
    case 1:
        return hc_error_set(err, HC_ERR_CONNECT,
                            "broker '%s:%d' refused the connection: unacceptable protocol version "
                            "(hkit speaks MQTT 3.1.1)",
                            where, port);
    case 2:
        return hc_error_set(err, HC_ERR_CONNECT,
                            "broker '%s:%d' rejected client id '%s'; choose another with -i",
                            where, port, m->client_id);
    case 3:
        return hc_error_set(err, HC_ERR_CONNECT, "broker '%s:%d' is unavailable (CONNACK 3)",
                            where, port);
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
        if (m->tls_error[0])
            return hc_error_set(err, HC_ERR_TLS,
                                "tls handshake with '%s:%d' failed: %s%s", where, port,
                                m->tls_error,
                                strstr(m->tls_error, "certificate verify failed")
                                    ? " (use --cafile to trust the broker's CA, or --insecure)"
                                    : "");
        return hc_error_set(err, HC_ERR_CONNECT,
                            "cannot connect to '%s:%d': %s (is the broker running and reachable?)",
                            where, port,
                            rc == MQTTCLIENT_FAILURE ? "connection refused or timed out"
                                                     : MQTTClient_strerror(rc));
    }
}

void hc_mqtt_disconnect(hc_mqtt *m, int timeout_ms)
{
    if (m && m->client && MQTTClient_isConnected(m->client))
        MQTTClient_disconnect(m->client, timeout_ms);
}

bool hc_mqtt_is_connected(hc_mqtt *m)
{
    bool lost;
    if (!m || !m->client)
        return false;
    pthread_mutex_lock(&m->lock);
    lost = m->lost;
    pthread_mutex_unlock(&m->lock);
    return !lost && MQTTClient_isConnected(m->client);
}

hc_err hc_mqtt_subscribe(hc_mqtt *m, size_t n, const char *const *filters, const int *qos,
                         int *granted, hc_error *err)
{
    int rc;

    if (n == 0 || n > 1000)
        return hc_error_set(err, HC_ERR_INVALID, "between 1 and 1000 subscriptions are allowed");
    for (size_t i = 0; i < n; i++)
        granted[i] = qos[i];
    /* paho takes non-const arrays; it writes the granted QoS back into the qos array. */
    rc = MQTTClient_subscribeMany(m->client, (int)n, (char *const *)filters, granted);
    if (rc != MQTTCLIENT_SUCCESS) {
        /* with one filter paho reports the refusal (0x80) as a failure code */
        if (n == 1 && granted[0] == 0x80)
            return hc_error_set(err, HC_ERR_SUBSCRIBE,
                                "broker refused subscription '%s' (not authorised for this "
                                "topic filter?)",
                                filters[0]);
        return hc_error_set(err, HC_ERR_SUBSCRIBE, "cannot subscribe: %s",
                            MQTTClient_strerror(rc));
    }
    for (size_t i = 0; i < n; i++) {
        if (granted[i] == 0x80 || granted[i] < 0 || granted[i] > 2)
            return hc_error_set(err, HC_ERR_SUBSCRIBE,
                                "broker refused subscription '%s' (not authorised for this "
                                "topic filter?)",
                                filters[i]);
    }
    return HC_OK;
}

hc_err hc_mqtt_receive(hc_mqtt *m, int timeout_ms, struct hc_msg *msg, hc_error *err)
{
    int topic_len = 0;
    int rc;

    if (m->rx_msg)
        MQTTClient_freeMessage(&m->rx_msg);
    if (m->rx_topic) {
        MQTTClient_free(m->rx_topic);
        m->rx_topic = NULL;
    }
    rc = MQTTClient_receive(m->client, &m->rx_topic, &topic_len, &m->rx_msg,
                            (unsigned long)(timeout_ms > 0 ? timeout_ms : 0));
    if ((rc == MQTTCLIENT_SUCCESS || rc == MQTTCLIENT_TOPICNAME_TRUNCATED) && m->rx_msg) {
        memset(msg, 0, sizeof(*msg));
        msg->topic = m->rx_topic;
        msg->payload = m->rx_msg->payload;
        msg->payload_len = (size_t)(m->rx_msg->payloadlen > 0 ? m->rx_msg->payloadlen : 0);
        msg->qos = m->rx_msg->qos;
        msg->retain = m->rx_msg->retained != 0;
        msg->dup = m->rx_msg->dup != 0;
        return HC_OK;
    }
    if (rc == MQTTCLIENT_SUCCESS && MQTTClient_isConnected(m->client))
        return HC_ERR_TIMEOUT;
    return hc_error_set(err, HC_ERR_CONNECTION_LOST, "connection to '%s:%d' lost", m->url.host,
                        m->url.port);
}

hc_err hc_mqtt_publish(hc_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                       bool retain, uint64_t *ticket_out, hc_error *err)
{
    MQTTClient_deliveryToken token = 0;
    uint64_t ticket;
    int rc;

    if (len > 268435455)
        return hc_error_set(err, HC_ERR_INVALID, "payload of %zu bytes exceeds mqtt's limit", len);
    pthread_mutex_lock(&m->lock);
    while (qos > 0 && m->inflight >= (size_t)m->max_inflight && !m->lost) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&m->changed, &m->lock, &until);
    }
    if (m->lost) {
        pthread_mutex_unlock(&m->lock);
        return hc_error_set(err, HC_ERR_CONNECTION_LOST, "connection to '%s:%d' lost",
                            m->url.host, m->url.port);
    }
    ticket = m->next_ticket++;
    pthread_mutex_unlock(&m->lock);

    rc = MQTTClient_publish(m->client, topic, (int)len, payload, qos, retain ? 1 : 0, &token);
    if (rc != MQTTCLIENT_SUCCESS) {
        pthread_mutex_lock(&m->lock);
        m->next_ticket--; /* not sent: the caller resends it under the same ticket */
        if (rc == MQTTCLIENT_DISCONNECTED || !MQTTClient_isConnected(m->client))
            m->lost = true;
        pthread_mutex_unlock(&m->lock);
        if (rc == MQTTCLIENT_DISCONNECTED || !MQTTClient_isConnected(m->client))
            return hc_error_set(err, HC_ERR_CONNECTION_LOST, "connection to '%s:%d' lost",
                                m->url.host, m->url.port);
        return hc_error_set(err, HC_ERR_MQTT, "cannot publish to '%s': %s", topic,
                            MQTTClient_strerror(rc));
    }
    if (qos > 0 && token > 0 && token < SLOT_COUNT) {
        pthread_mutex_lock(&m->lock);
        struct slot *s = &m->slots[token];
        if (s->state == SLOT_ACKED_EARLY) {
            s->state = SLOT_FREE;
        } else {
            s->state = SLOT_PENDING;
            s->ticket = ticket;
            m->inflight++;
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (ticket_out)
        *ticket_out = ticket;
    return HC_OK;
}

hc_err hc_mqtt_wait_all(hc_mqtt *m, int timeout_ms, hc_error *err)
{
    struct timespec until;
    hc_err rc = HC_OK;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->lock);
    while (m->inflight > 0 && !m->lost) {
        if (pthread_cond_timedwait(&m->changed, &m->lock, &until) == ETIMEDOUT) {
            rc = hc_error_set(err, HC_ERR_TIMEOUT,
                              "%zu messages still unacknowledged after %d ms", m->inflight,
                              timeout_ms);
            break;
        }
    }
    if (rc == HC_OK && m->inflight > 0)
        rc = hc_error_set(err, HC_ERR_CONNECTION_LOST,
                          "connection to '%s:%d' lost with %zu messages unacknowledged",
                          m->url.host, m->url.port, m->inflight);
    pthread_mutex_unlock(&m->lock);
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
    m->inflight = 0;
    pthread_mutex_unlock(&m->lock);
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

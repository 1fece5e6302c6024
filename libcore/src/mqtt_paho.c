/*
 * paho's side of the MQTT client: the only file that includes paho. Subscribers (hrecord) pull
 * messages synchronously on the caller's thread; TLS publishers get acknowledgements through
 * paho's callbacks on paho's thread; and a short MQTT 5 connection asks a TLS broker for its
 * in-flight limit.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "hcore/log.h"
#include "internal.h"
#include "mqtt_internal.h"

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
        hc__mqtt_window_release_locked(m, s);
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
    pthread_mutex_lock(&m->lock);
    if (cause && !m->lost_reason[0])
        snprintf(m->lost_reason, sizeof(m->lost_reason), "%s", cause);
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

/* paho's TLS settings for m: verification as asked, and hkit's floor (see HC__TLS_CIPHERS). */
static void paho_ssl_options(const hc_mqtt *m, MQTTClient_SSLOptions *ssl)
{
    ssl->enableServerCertAuth = m->insecure ? 0 : 1;
    ssl->verify = m->insecure ? 0 : 1; /* host name check */
    ssl->trustStore = m->cafile;
    ssl->CApath = m->capath;
    ssl->sslVersion = MQTT_SSL_VERSION_TLS_1_2;
    ssl->enabledCipherSuites = HC__TLS_CIPHERS;
}

/*
 * paho never sets TCP_NODELAY, so Nagle holds a small publish while an earlier one is
 * unacknowledged, and the broker's kernel delays that acknowledgement ~40 ms when it has nothing
 * to send back (after QoS 0, and for QoS 2's PUBREL): timed replays were late on the wire by
 * ~40 ms. paho has no hook for socket options, so after connecting we find our sockets to the
 * broker's port and set it there (other connections of this process to the same broker want it
 * too).
 */
static void paho_set_nodelay(hc_mqtt *m)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd, type = 0, one = 1, port = -1;
        socklen_t tl = sizeof(type);

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        fd = atoi(e->d_name);
        if (fd == dirfd(d) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
            type != SOCK_STREAM || getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
            continue;
        if (peer.ss_family == AF_INET)
            port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
        else if (peer.ss_family == AF_INET6)
            port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
        if (port == m->url.port)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    closedir(d);
}

hc_err hc_mqtt_subscribe(hc_mqtt *m, size_t n, const char *const *filters, const int *qos,
                         int *granted, hc_error *err)
{
    int rc;

    if (m->raw)
        return hc_error_set(err, HC_ERR_INVALID, "a publisher cannot subscribe");
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
        return hc_error_set(err, HC_ERR_SUBSCRIBE, "cannot subscribe: %s", MQTTClient_strerror(rc));
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
    MQTTClient_message *rx = m->rx_msg;
    int topic_len = 0;
    int rc;

    if (m->raw)
        return hc_error_set(err, HC_ERR_INVALID, "a publisher cannot receive");
    if (rx)
        MQTTClient_freeMessage(&rx);
    m->rx_msg = NULL;
    if (m->rx_topic) {
        MQTTClient_free(m->rx_topic);
        m->rx_topic = NULL;
    }
    rc = MQTTClient_receive(m->client, &m->rx_topic, &topic_len, &rx,
                            (unsigned long)(timeout_ms > 0 ? timeout_ms : 0));
    m->rx_msg = rx;
    if ((rc == MQTTCLIENT_SUCCESS || rc == MQTTCLIENT_TOPICNAME_TRUNCATED) && rx) {
        memset(msg, 0, sizeof(*msg));
        msg->topic = m->rx_topic;
        msg->payload = rx->payload;
        msg->payload_len = (size_t)(rx->payloadlen > 0 ? rx->payloadlen : 0);
        msg->qos = rx->qos;
        msg->retain = rx->retained != 0;
        msg->dup = rx->dup != 0;
        return HC_OK;
    }
    if (rc == MQTTCLIENT_SUCCESS && MQTTClient_isConnected(m->client))
        return HC_ERR_TIMEOUT;
    return hc_error_set(err, HC_ERR_CONNECTION_LOST, "connection to '%s:%d' lost", m->url.host,
                        m->url.port);
}

/* The MQTT 5 probe over TLS, through paho: see hc_mqtt_probe_receive_maximum. */
int hc__paho_probe_v5(hc_mqtt *m)
{
    MQTTClient c = NULL;
    MQTTClient_createOptions cro = MQTTClient_createOptions_initializer;
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer5;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    MQTTResponse resp;
    char cid[300];
    int result = 0;

    {
        /* the credentials go only where hc_mqtt_connect would send them */
        struct hc__tls_target t = {m->url.host, m->url.port, m->cafile, m->capath, m->insecure,
                                   m->connect_timeout_s * 1000};
        if (hc__tls_probe(&t, NULL) != HC_OK)
            return 0;
    }
    snprintf(cid, sizeof(cid), "%.200s-probe", m->client_id);
    cro.MQTTVersion = MQTTVERSION_5;
    if (MQTTClient_createWithOptions(&c, m->server_uri, cid, MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                     &cro) != MQTTCLIENT_SUCCESS)
        return 0;
    co.keepAliveInterval = 10;
    co.cleanstart = 1;
    co.connectTimeout = m->connect_timeout_s;
    co.username = m->username;
    co.password = m->password;
    paho_ssl_options(m, &ssl);
    co.ssl = &ssl;
    resp = MQTTClient_connect5(c, &co, NULL, NULL);
    if (resp.reasonCode == MQTTREASONCODE_SUCCESS) {
        result = 65535;
        if (resp.properties &&
            MQTTProperties_hasProperty(resp.properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM))
            result = MQTTProperties_getNumericValue(resp.properties,
                                                    MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
        MQTTClient_disconnect5(c, 1000, MQTTREASONCODE_SUCCESS, NULL);
    }
    MQTTResponse_free(resp);
    MQTTClient_destroy(&c);
    return result > 0 ? result : 0;
}

hc_err hc__paho_create(hc_mqtt *m, hc_error *err)
{
    int prc = MQTTClient_create(&m->client, m->server_uri, m->client_id,
                                MQTTCLIENT_PERSISTENCE_NONE, NULL);

    if (prc != MQTTCLIENT_SUCCESS) {
        m->client = NULL;
        return hc_error_set(err, HC_ERR_MQTT, "cannot create mqtt client for '%s:%d': %s",
                            m->url.host, m->url.port, MQTTClient_strerror(prc));
    }
    if (m->mode == HC_MQTT_PUBLISHER) {
        prc = MQTTClient_setCallbacks(m->client, m, on_lost, on_message, on_delivered);
        if (prc != MQTTCLIENT_SUCCESS)
            return hc_error_set(err, HC_ERR_MQTT, "cannot set mqtt callbacks: %s",
                                MQTTClient_strerror(prc));
    }
    return HC_OK;
}

void hc__paho_destroy(hc_mqtt *m)
{
    if (m->client) {
        if (MQTTClient_isConnected(m->client))
            MQTTClient_disconnect(m->client, 1000);
        MQTTClient_destroy(&m->client);
    }
    if (m->rx_msg) {
        MQTTClient_message *msg = m->rx_msg;
        MQTTClient_freeMessage(&msg);
        m->rx_msg = NULL;
    }
    if (m->rx_topic)
        MQTTClient_free(m->rx_topic);
    m->rx_topic = NULL;
}

hc_err hc__paho_connect(hc_mqtt *m, hc_error *err)
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
        /* hkit's floor and a classified reason first: paho would send the password at level 1 */
        struct hc__tls_target t = {m->url.host, m->url.port, m->cafile, m->capath, m->insecure,
                                   m->connect_timeout_s * 1000};
        hc_err prc = hc__tls_probe(&t, err);

        if (prc != HC_OK)
            return prc;
        paho_ssl_options(m, &ssl);
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
        if (m->mode == HC_MQTT_PUBLISHER)
            paho_set_nodelay(m);
        return HC_OK;
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
        return hc__mqtt_connack_error(m, rc, err);
    default:
        if (m->url.tls && !m->tls_error[0]) {
            /* paho names no reason (e.g. a failed host check): ask the probe what changed */
            struct hc__tls_target t = {m->url.host, m->url.port, m->cafile, m->capath,
                                       m->insecure, m->connect_timeout_s * 1000};
            hc_err prc = hc__tls_probe(&t, err);

            if (prc != HC_OK)
                return prc;
        } else if (!m->url.tls && rc == MQTTCLIENT_FAILURE) {
            /* paho says only "failure": name the cause (unresolvable, refused, no answer) */
            int fd;
            hc_err prc = hc__net_connect(m->url.host, m->url.port, m->connect_timeout_s * 1000,
                                         &fd, err);

            if (prc != HC_OK)
                return prc;
            close(fd);
        }
        if (m->tls_error[0])
            return hc_error_set(err, HC_ERR_TLS, "tls handshake with '%s:%d' failed: %s%s", where,
                                port, m->tls_error,
                                strstr(m->tls_error, "certificate verify failed")
                                    ? " (use --cafile to trust the broker's CA, or --insecure)"
                                    : "");
        return hc_error_set(
            err, HC_ERR_CONNECT,
            "cannot connect to '%s:%d': %s (is the broker running and reachable?)", where, port,
            rc == MQTTCLIENT_FAILURE ? "connection refused or timed out" : MQTTClient_strerror(rc));
    }
}

void hc__paho_disconnect(hc_mqtt *m, int timeout_ms)
{
    if (MQTTClient_isConnected(m->client))
        MQTTClient_disconnect(m->client, timeout_ms);
}

bool hc__paho_is_connected(hc_mqtt *m)
{
    return MQTTClient_isConnected(m->client) != 0;
}

hc_err hc__paho_publish(hc_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                        bool retain, uint64_t *ticket_out, hc_error *err)
{
    MQTTClient_deliveryToken token = 0;
    uint64_t ticket;
    int rc;

    pthread_mutex_lock(&m->lock);
    rc = qos > 0 ? hc__mqtt_window_wait_locked(m, qos) : m->lost ? HC_ERR_CONNECTION_LOST : HC_OK;
    if (rc != HC_OK) {
        pthread_mutex_unlock(&m->lock);
        return hc__mqtt_window_error(m, (hc_err)rc, err);
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
            m->acked_total++;
            m->progress_ns = hc__mqtt_now_ns();
        } else {
            hc__mqtt_window_enter_locked(m, s, ticket, qos);
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (ticket_out)
        *ticket_out = ticket;
    return HC_OK;
}

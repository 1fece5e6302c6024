/*
 * MQTT sessions. The only file that includes paho.
 *
 * Subscribers use paho's synchronous client (MQTTClient) without callbacks and pull messages
 * with MQTTClient_receive on the caller's thread: one thread, no queue in between, and the
 * recording loop decides when to commit.
 *
 * Publishers over TLS use paho's synchronous client with callbacks, so acknowledgements arrive
 * on paho's thread. Publishers over plain TCP use a small MQTT 3.1.1 writer of our own, because
 * paho's publish path was measured to be the replay's bottleneck: one writev per message, a
 * malloc/copy of topic and payload per message, and, whenever the socket's send buffer is full,
 * a fixed 100 ms sleep in MQTTClient_publish (the background thread only finishes partial writes
 * on its next 100 ms cycle). Our writer encodes packets into one buffer, writes it with a
 * blocking send (the kernel, not a timer, paces us), can batch many messages per send
 * (hc_mqtt_set_batching), and reads acknowledgements on its own thread. That reader never waits
 * to write: the control packets it owes (QoS 2 PUBREL, PINGREQ) go into a small queue, which it
 * writes itself without blocking when the output buffer is free, or which the publisher takes
 * along on its next write. A reader that waited behind a publisher blocked in send would stop
 * reading acknowledgements, and a broker that stops reading until we read would deadlock us.
 *
 * Both publishers keep a window bounded by max_inflight so memory stays flat (unbounded
 * publishing was measured to grow to ~900 MB for 1M messages), and number messages with tickets
 * so a caller can resume after a lost connection.
 */
#define _GNU_SOURCE /* ppoll */
#include "hcore/mqtt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>
#include <openssl/rand.h>

#include "hcore/log.h"
#include "internal.h"

#define SLOT_COUNT 65536   /* MQTT packet identifiers are 16-bit */
#define RAW_FLUSH_AT 32768 /* batching: send once this many bytes are waiting */
#define RAW_RX_SIZE 4096   /* a publisher only receives acknowledgements */
#define RAW_TICK_MS 100    /* reader: how often it flushes stale batches and checks keepalive */
/*
 * While someone waits for acknowledgements, our ACK of the broker's PUBACKs goes out at most this
 * long after the data arrived (see quick_ack): acknowledging every segment at once made Mosquitto
 * send each PUBACK on its own (Nagle releases its queue on every ACK); 1 ms lets them gather and
 * was measured to give ~9% more QoS 1 throughput at --max, with less broker CPU per message.
 */
#define RAW_ACK_DEFER_NS 1000000LL
#define WAIT_SLICE_MS 100 /* waits look at the cancel flag and the acknowledgement clock this often */
/*
 * QoS 2 window when the broker does not state its limit: Mosquitto's default
 * max_inflight_messages. Beyond its limit Mosquitto answers QoS 2 with PUBREC and PUBCOMP and
 * drops the message (measured with 2.0.11: 100 sent, 100 PUBCOMP, 20 delivered).
 */
#define SAFE_QOS2_WINDOW 20

enum slot_state { SLOT_FREE, SLOT_PENDING, SLOT_ACKED_EARLY };

struct slot {
    uint64_t ticket;
    unsigned char state;
    unsigned char qos;
};

struct hc_mqtt {
    MQTTClient client;
    enum hc_mqtt_mode mode;
    struct hc_mqtt_url url;
    char *server_uri, *client_id, *username, *password, *cafile, *capath;
    bool insecure;
    int keepalive_s, connect_timeout_s, max_inflight, max_inflight_qos2, ack_timeout_s;
    bool qos2_window_known; /* max_inflight_qos2 was given or probed */
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
    uint64_t pings_sent;   /* PINGREQs queued (under ctl_lock), in the order they leave */
    uint64_t pongs_seen;   /* PINGRESPs received (under lock) */
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

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool cancelled(const hc_mqtt *m)
{
    return m->cancel && *m->cancel;
}

/* A message left the window (acknowledged); lock held. */
static void window_release_locked(hc_mqtt *m, struct slot *s)
{
    s->state = SLOT_FREE;
    m->inflight--;
    if (s->qos == 2)
        m->inflight_qos2--;
    m->acked_total++;
    m->progress_ns = mono_ns();
}

/* A message entered the window; lock held. */
static void window_enter_locked(hc_mqtt *m, struct slot *s, uint64_t ticket, int qos)
{
    if (m->inflight == 0)
        m->progress_ns = mono_ns(); /* the acknowledgement clock starts with the first message */
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
static bool ack_stalled_locked(hc_mqtt *m, int64_t now)
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
        window_release_locked(m, s);
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

/* --- our own plain-TCP publisher ------------------------------------------------------------ */

/*
 * Two threads write one byte stream. The publisher thread appends PUBLISH packets to the output
 * buffer under wlock and writes it with blocking sends. The reader thread owes the broker PUBRELs
 * and PINGREQs; it appends them to the control queue (ctl_lock), then only tries wlock: with it, it
 * moves the queue behind the buffered packets and writes what the socket takes at once, polling
 * for POLLOUT to finish the rest; without it, the holder writes the queue before or right after
 * letting go (raw_unlock). Packets are appended whole behind a partly written front, so no packet
 * is ever cut by another.
 */

static void mark_lost(hc_mqtt *m, const char *reason)
{
    pthread_mutex_lock(&m->lock);
    if (reason && !m->lost_reason[0])
        snprintf(m->lost_reason, sizeof(m->lost_reason), "%s", reason);
    m->lost = true;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
}

/* Sends all of buf on the blocking socket. false: the connection is gone. */
static bool send_all(hc_mqtt *m, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(m->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        buf += n;
        len -= (size_t)n;
        /* progress, for keepalive: a long write to a slow broker is not a silent link */
        atomic_store_explicit(&m->last_write_ns, mono_ns(), memory_order_relaxed);
    }
    return true;
}

static bool raw_reserve_locked(hc_mqtt *m, size_t more)
{
    if (m->out_len + more > m->out_cap) {
        size_t cap = m->out_cap ? m->out_cap : 2 * RAW_FLUSH_AT;
        unsigned char *p;
        while (cap < m->out_len + more)
            cap *= 2;
        p = realloc(m->out, cap);
        if (!p)
            return false;
        m->out = p;
        m->out_cap = cap;
    }
    return true;
}

/* Reader: queues control packets (all PUBRELs of one read at once) for whoever writes next. */
static bool raw_queue_control(hc_mqtt *m, const unsigned char *pkt, size_t len)
{
    bool ok = true;

    pthread_mutex_lock(&m->ctl_lock);
    if (m->ctl_len + len > m->ctl_cap) {
        size_t cap = m->ctl_cap ? m->ctl_cap : RAW_RX_SIZE;
        unsigned char *p;
        while (cap < m->ctl_len + len)
            cap *= 2;
        p = realloc(m->ctl, cap);
        if (p) {
            m->ctl = p;
            m->ctl_cap = cap;
        }
        ok = p != NULL;
    }
    if (ok) {
        memcpy(m->ctl + m->ctl_len, pkt, len);
        m->ctl_len += len;
        atomic_store(&m->ctl_waiting, true);
    }
    pthread_mutex_unlock(&m->ctl_lock);
    return ok;
}

/*
 * Moves queued control packets behind the whole packets already in the output buffer, which then
 * must leave promptly; wlock held.
 */
static bool raw_take_control_locked(hc_mqtt *m)
{
    bool ok = true;

    if (!atomic_load(&m->ctl_waiting))
        return true;
    pthread_mutex_lock(&m->ctl_lock);
    if (m->ctl_len) {
        ok = raw_reserve_locked(m, m->ctl_len);
        if (ok) {
            memcpy(m->out + m->out_len, m->ctl, m->ctl_len);
            m->out_len += m->ctl_len;
            m->ctl_len = 0;
            m->out_urgent = true;
        }
    }
    if (ok)
        atomic_store(&m->ctl_waiting, false);
    pthread_mutex_unlock(&m->ctl_lock);
    return ok;
}

/* Writes the output buffer and the queued control packets, waiting for the socket; wlock held. */
static bool raw_flush_locked(hc_mqtt *m)
{
    bool ok = raw_take_control_locked(m);

    if (ok && m->out_len)
        ok = m->fd >= 0 && send_all(m, m->out, m->out_len);
    m->out_len = 0;
    m->out_urgent = false;
    return ok;
}

/*
 * Writes what the socket takes now, never waiting; the rest stays at the front of the output
 * buffer (whole packets are only ever appended behind it, so the stream stays intact) and is
 * urgent. wlock held. false: the connection is gone.
 */
static bool raw_write_some_locked(hc_mqtt *m)
{
    size_t done = 0;

    if (m->fd < 0 || !raw_take_control_locked(m))
        return false;
    while (done < m->out_len) {
        ssize_t n = send(m->fd, m->out + done, m->out_len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return false;
        }
        done += (size_t)n;
    }
    if (done) {
        memmove(m->out, m->out + done, m->out_len - done);
        m->out_len -= done;
        atomic_store_explicit(&m->last_write_ns, mono_ns(), memory_order_relaxed);
    }
    m->out_urgent = m->out_len > 0;
    return true;
}

static void raw_fail(hc_mqtt *m, const char *reason)
{
    if (m->fd >= 0)
        shutdown(m->fd, SHUT_RDWR);
    mark_lost(m, reason);
}

/*
 * The publisher thread's way out of wlock. What must leave promptly (control packets, the rest of
 * a packet the reader began) is written first, blocking. Then, after the lock is gone, control
 * packets the reader queued while it failed to get the lock are picked up: the reader appends
 * before it tries the lock, we look after we let go, so one of us always sees them (the fences
 * order the flag against the lock word). Returns ok, false once a write failed.
 */
static bool raw_unlock(hc_mqtt *m, bool ok)
{
    for (;;) {
        if (ok && (m->out_urgent || atomic_load(&m->ctl_waiting)))
            ok = raw_flush_locked(m);
        pthread_mutex_unlock(&m->wlock);
        atomic_thread_fence(memory_order_seq_cst);
        if (!ok || !atomic_load(&m->ctl_waiting) || pthread_mutex_trylock(&m->wlock) != 0)
            return ok;
    }
}

/*
 * The reader thread's writing: it never waits for wlock or for the socket, so it always goes
 * back to reading acknowledgements (a broker that stops reading until we read its PUBRECs would
 * otherwise deadlock with a publisher blocked in send). If someone holds wlock, that holder
 * writes the queue on its way out (raw_unlock). With stale, a batch nobody flushed goes too.
 * true: bytes are left that the socket did not take; continue when it is writable.
 */
static bool raw_reader_write(hc_mqtt *m, bool stale)
{
    bool ok = true, left = false;

    for (;;) {
        atomic_thread_fence(memory_order_seq_cst);
        if (pthread_mutex_trylock(&m->wlock) != 0)
            return false;
        if (stale && m->out_len)
            m->out_urgent = true;
        if (m->out_urgent || atomic_load(&m->ctl_waiting))
            ok = raw_write_some_locked(m);
        left = m->out_urgent;
        pthread_mutex_unlock(&m->wlock);
        if (!ok) {
            raw_fail(m, NULL);
            return false;
        }
        atomic_thread_fence(memory_order_seq_cst);
        if (!atomic_load(&m->ctl_waiting))
            return left;
    }
}

/*
 * A full window is waited out until it is down to this (hc_mqtt_wait_all waits for 0): waking
 * the publisher for every single acknowledgement cost a context switch per message.
 */
static size_t raw_low_water(const hc_mqtt *m)
{
    size_t max = (size_t)m->max_inflight;
    return max > 1 ? max - (max + 3) / 4 : 0;
}

/* Wakes a waiting publisher only when the window has drained to its low water (or empty). */
static size_t raw_low_water_qos2(const hc_mqtt *m)
{
    size_t max = (size_t)m->max_inflight_qos2;
    return max > 1 ? max - (max + 3) / 4 : 0;
}

/* One acknowledgement packet from the broker: its type (high nibble) and packet identifier. */
struct raw_ack {
    unsigned char type;
    uint16_t id;
};

/*
 * Applies the acknowledgements one read brought, under one lock: PUBACK (QoS 1) and PUBCOMP
 * (QoS 2) complete a message, PUBREC (QoS 2) asks for a PUBREL, appended to rel. An
 * acknowledgement for a packet id that is not in flight at that QoS is a broker fault: false,
 * with the reason in why (a connection we cannot account for must not count as delivered).
 */
static bool raw_acked(hc_mqtt *m, const struct raw_ack *acks, size_t n, unsigned char *rel,
                      size_t *n_rel, char *why, size_t why_size)
{
    size_t low = raw_low_water(m), low2 = raw_low_water_qos2(m);
    bool wake = false, ok = true;

    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < n && ok; i++) {
        struct slot *sl = &m->slots[acks[i].id];
        unsigned want_qos = acks[i].type == 0x40 ? 1 : 2;

        if (acks[i].id == 0 || sl->state != SLOT_PENDING || sl->qos != want_qos) {
            snprintf(why, why_size, "the broker acknowledged packet id %u, which is not in flight",
                     (unsigned)acks[i].id);
            ok = false;
            break;
        }
        if (acks[i].type == 0x50) {
            /* QoS 2, step 2: release it; PUBCOMP completes it */
            rel[(*n_rel)++] = 0x62;
            rel[(*n_rel)++] = 0x02;
            rel[(*n_rel)++] = (unsigned char)(acks[i].id >> 8);
            rel[(*n_rel)++] = (unsigned char)acks[i].id;
            continue;
        }
        window_release_locked(m, sl);
        wake |= m->inflight == low || m->inflight == 0 ||
                (sl->qos == 2 && (m->inflight_qos2 == low2 || m->inflight_qos2 == 0));
    }
    if (wake)
        pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/* Queues a PINGREQ and counts it, under one lock so pings are counted in the order they leave. */
static bool raw_queue_ping(hc_mqtt *m, uint64_t *number)
{
    static const unsigned char ping[2] = {0xc0, 0x00};
    bool ok;

    /* lock order: m->lock, then ctl_lock (inside raw_queue_control) */
    pthread_mutex_lock(&m->lock);
    ok = raw_queue_control(m, ping, sizeof(ping));
    if (ok && number)
        *number = ++m->pings_sent;
    else if (ok)
        ++m->pings_sent;
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/*
 * Brokers that leave Nagle on (Mosquitto's default) hold each small PUBACK until the previous
 * one is acknowledged; while we wait for the window we have nothing to send, so our kernel delays
 * that acknowledgement by up to 40 ms, and QoS 1 ran at half the rate. While someone waits for
 * acknowledgements, acknowledge within RAW_ACK_DEFER_NS (setting the flag also sends a pending
 * ACK; the kernel clears it again, so the reader sets it after reads, not always: it costs a
 * system call).
 */
static void quick_ack(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

/*
 * Reader, every tick: writes a batch nobody flushed for a tick, keeps the connection alive with
 * PINGREQ, and declares the link dead when a ping goes unanswered or the broker stopped
 * acknowledging. Returns raw_reader_write's.
 */
static bool raw_tick(hc_mqtt *m, int64_t now)
{
    int64_t keepalive = (int64_t)m->keepalive_s * 1000000000LL;
    int64_t last_write = atomic_load_explicit(&m->last_write_ns, memory_order_relaxed);
    bool stalled;
    char why[96];

    if (!m->ping_sent_ns && now - last_write >= keepalive / 2) {
        m->ping_sent_ns = now;
        if (!raw_queue_ping(m, NULL)) {
            raw_fail(m, "out of memory");
            return false;
        }
    }
    if (m->ping_sent_ns && now - m->ping_sent_ns > keepalive) {
        /* the broker answers every ping: silence this long means the link is dead */
        snprintf(why, sizeof(why), "no answer to a keepalive ping for %d s", m->keepalive_s);
        raw_fail(m, why);
        return false;
    }
    pthread_mutex_lock(&m->lock);
    stalled = ack_stalled_locked(m, now);
    pthread_mutex_unlock(&m->lock);
    if (stalled) {
        raw_fail(m, NULL); /* ack_stalled_locked wrote the reason */
        return false;
    }
    return raw_reader_write(m, true);
}

/*
 * Splits what one read brought into packets: acknowledgements into acks, PINGRESPs counted in
 * *pongs. Returns the bytes consumed (a partial packet stays), or (size_t)-1 with the reason in
 * why for anything a publisher must never receive.
 */
static size_t raw_parse(const unsigned char *rx, size_t have, struct raw_ack *acks, size_t *n_acks,
                        size_t *pongs, char *why, size_t why_size)
{
    size_t off = 0;

    for (;;) {
        size_t len = 0, hdr = 1;
        unsigned shift = 0;
        unsigned char type, flags;
        bool complete = false;

        while (off + hdr < have && hdr <= 4) {
            unsigned char b = rx[off + hdr++];
            len |= (size_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80)) {
                complete = true;
                break;
            }
        }
        if (!complete && hdr > 4) {
            snprintf(why, why_size, "the broker sent a malformed packet length");
            return (size_t)-1;
        }
        if (!complete)
            return off; /* the rest comes with the next read */
        type = rx[off] & 0xf0;
        flags = rx[off] & 0x0f;
        if (!((type == 0x40 || type == 0x50 || type == 0x70) && len == 2 && flags == 0) &&
            !(type == 0xd0 && len == 0 && flags == 0)) {
            /* we never subscribe: a publisher receives acknowledgements and PINGRESP only */
            snprintf(why, why_size, "the broker sent an unexpected packet (type %u, %zu bytes)",
                     (unsigned)(type >> 4), len);
            return (size_t)-1;
        }
        if (off + hdr + len > have)
            return off;
        if (type == 0xd0) {
            (*pongs)++;
        } else {
            acks[*n_acks].type = type;
            acks[*n_acks].id = (uint16_t)(rx[off + hdr] << 8 | rx[off + hdr + 1]);
            (*n_acks)++;
        }
        off += hdr + len;
    }
}

/* Acknowledgements, PINGRESP, and the end of the connection; our control packets go out here. */
static void *raw_reader(void *arg)
{
    hc_mqtt *m = arg;
    unsigned char rx[RAW_RX_SIZE], rel[RAW_RX_SIZE];
    struct raw_ack acks[RAW_RX_SIZE / 4];
    size_t have = 0;
    int64_t last_tick = mono_ns();
    bool unsent = false; /* our non-blocking write left bytes: wait for POLLOUT too */
    int64_t ack_due = 0; /* when the deferred quick ACK goes out; 0: none pending */
    char why[160] = "";

    m->ping_sent_ns = 0;
    while (!m->reader_stop && !m->lost) {
        struct pollfd pfd = {.fd = m->fd, .events = (short)(POLLIN | (unsent ? POLLOUT : 0))};
        int64_t now;
        ssize_t n;
        size_t used, n_acks = 0, n_rel = 0, pongs = 0;
        struct timespec ts = {0, RAW_TICK_MS * 1000000L};
        int prc;

        if (ack_due) {
            int64_t left = ack_due - mono_ns();
            ts.tv_nsec = left > 0 ? (long)left : 0;
        }
        prc = ppoll(&pfd, 1, &ts, NULL);
        now = mono_ns();
        if (ack_due && now >= ack_due) {
            quick_ack(m->fd);
            ack_due = 0;
        }
        if (now - last_tick >= RAW_TICK_MS * 1000000LL) {
            last_tick = now;
            unsent = raw_tick(m, now);
        }
        if (prc < 0 && errno != EINTR)
            break;
        if (prc <= 0)
            continue;
        if (pfd.revents & POLLOUT)
            unsent = raw_reader_write(m, false);
        if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = recv(m->fd, rx + have, sizeof(rx) - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, sizeof(why), "%s", n == 0 ? "the broker closed the connection"
                                                    : strerror(errno));
            break;
        }
        if (m->awaiting && !ack_due)
            ack_due = now + RAW_ACK_DEFER_NS;
        have += (size_t)n;
        used = raw_parse(rx, have, acks, &n_acks, &pongs, why, sizeof(why));
        if (used == (size_t)-1)
            goto protocol_error;
        if (n_acks && !raw_acked(m, acks, n_acks, rel, &n_rel, why, sizeof(why)))
            goto protocol_error;
        if (pongs) {
            /* only an answer to our ping proves the broker reads us: other bytes do not */
            bool unasked, answered;

            pthread_mutex_lock(&m->lock);
            m->pongs_seen += pongs;
            unasked = m->pongs_seen > m->pings_sent;
            answered = m->pongs_seen == m->pings_sent;
            pthread_cond_broadcast(&m->changed);
            pthread_mutex_unlock(&m->lock);
            if (unasked) {
                snprintf(why, sizeof(why), "the broker sent a PINGRESP nobody asked for");
                goto protocol_error;
            }
            if (answered)
                m->ping_sent_ns = 0;
        }
        if (n_rel) {
            /* every PUBREL of this read in one write, queued if the publisher is writing */
            if (!raw_queue_control(m, rel, n_rel)) {
                raw_fail(m, "out of memory");
                break;
            }
            unsent = raw_reader_write(m, false);
        }
        memmove(rx, rx + used, have - used);
        have -= used;
    }
    if (!m->reader_stop)
        mark_lost(m, why[0] ? why : NULL);
    return NULL;
protocol_error:
    hc_log(HC_LOG_WARNING, "mqtt: %s", why);
    raw_fail(m, why);
    return NULL;
}

static void raw_close(hc_mqtt *m)
{
    if (m->fd < 0)
        return;
    shutdown(m->fd, SHUT_RDWR);
    if (m->reader_running) {
        m->reader_stop = true;
        pthread_join(m->reader, NULL);
        m->reader_running = false;
    }
    close(m->fd);
    m->fd = -1;
    m->out_len = 0;
    m->out_urgent = false;
    pthread_mutex_lock(&m->ctl_lock);
    m->ctl_len = 0;
    atomic_store(&m->ctl_waiting, false);
    pthread_mutex_unlock(&m->ctl_lock);
}

static size_t put_str(unsigned char *p, const char *s, size_t len)
{
    p[0] = (unsigned char)(len >> 8);
    p[1] = (unsigned char)len;
    memcpy(p + 2, s, len);
    return 2 + len;
}

static size_t put_remaining(unsigned char *p, size_t len)
{
    size_t n = 0;
    do {
        unsigned char b = (unsigned char)(len & 0x7f);
        len >>= 7;
        p[n++] = (unsigned char)(b | (len ? 0x80 : 0));
    } while (len);
    return n;
}

/*
 * poll() until fd is ready, the deadline (CLOCK_MONOTONIC) passes or the cancel flag is set,
 * looking at the flag every WAIT_SLICE_MS. 1: ready, 0: timed out, -1: cancelled.
 */
static int poll_until(hc_mqtt *m, struct pollfd *pfd, int64_t deadline)
{
    for (;;) {
        int64_t left_ms = (deadline - mono_ns()) / 1000000;
        int rc;

        if (cancelled(m))
            return -1;
        if (left_ms <= 0)
            return 0;
        rc = poll(pfd, 1, (int)(left_ms < WAIT_SLICE_MS ? left_ms : WAIT_SLICE_MS));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 0;
    }
}

/* TCP connect with a timeout. Returns the blocking socket, or -1 with *why set. */
static int raw_dial(hc_mqtt *m, const char **why)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    char host[256], port[16];
    size_t hlen = strlen(m->url.host);
    int fd = -1, grc;

    /* [v6] hosts keep their brackets in the parsed url */
    if (hlen >= 2 && m->url.host[0] == '[') {
        memcpy(host, m->url.host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    } else {
        memcpy(host, m->url.host, hlen + 1);
    }
    snprintf(port, sizeof(port), "%d", m->url.port);
    grc = getaddrinfo(host, port, &hints, &res);
    if (grc != 0) {
        *why = gai_strerror(grc);
        return -1;
    }
    *why = "connection refused or timed out";
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd pfd;
        int soerr = 0, one = 1, flags, prc;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        flags = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            if (errno != EINPROGRESS)
                goto next;
            pfd.fd = fd;
            pfd.events = POLLOUT;
            prc = poll_until(m, &pfd, mono_ns() + (int64_t)m->connect_timeout_s * 1000000000LL);
            if (prc < 0) {
                *why = "interrupted";
                close(fd);
                fd = -1;
                break;
            }
            if (prc == 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
                goto next;
        }
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        /* we decide how messages are batched; never let Nagle hold a timed message back */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        break;
    next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static hc_err connack_error(hc_mqtt *m, int rc, hc_error *err);

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
static void qos2_window_probe(hc_mqtt *m);

/* Reads an MQTT variable byte integer at p (up to end): its value, or -1 when malformed. */
static long get_varint(const unsigned char *p, const unsigned char *end, size_t *used)
{
    long v = 0;
    for (size_t i = 0; i < 4 && p + i < end; i++) {
        v |= (long)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *used = i + 1;
            return v;
        }
    }
    return -1;
}

/*
 * Receive Maximum from an MQTT 5 CONNACK's properties (p..end): the value, 65535 when absent
 * (MQTT 5, 3.2.2.3.3), 0 when the properties cannot be read.
 */
static int connack5_receive_maximum(const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        unsigned char id = *p++;
        size_t skip;

        switch (id) {
        case 0x24: case 0x25: case 0x28: case 0x29: case 0x2a:
            skip = 1; /* byte properties */
            break;
        case 0x13: case 0x21: case 0x22:
            if (end - p < 2)
                return 0;
            if (id == 0x21)
                return p[0] << 8 | p[1];
            skip = 2;
            break;
        case 0x11: case 0x27:
            skip = 4;
            break;
        case 0x12: case 0x15: case 0x16: case 0x1a: case 0x1c: case 0x1f:
            if (end - p < 2)
                return 0;
            skip = 2 + (size_t)(p[0] << 8 | p[1]); /* string or binary */
            break;
        case 0x26:
            if (end - p < 2 || (size_t)(end - p) < 4 + (size_t)(p[0] << 8 | p[1]))
                return 0;
            skip = 2 + (size_t)(p[0] << 8 | p[1]);
            skip += 2 + (size_t)(p[skip] << 8 | p[skip + 1]); /* user property: a pair */
            break;
        default:
            return 0;
        }
        if ((size_t)(end - p) < skip)
            return 0;
        p += skip;
    }
    return 65535;
}

/* The MQTT 5 probe over plain TCP: see hc_mqtt_probe_receive_maximum. */
static int raw_probe_v5(hc_mqtt *m)
{
    char cid[300];
    size_t cl, user = m->username ? strlen(m->username) : 0,
               pass = m->password ? strlen(m->password) : 0, rem, n = 0, got = 0, used = 0;
    unsigned char *pkt, in[512];
    const char *why;
    int64_t deadline;
    long len = -1;
    int fd, result = 0;

    snprintf(cid, sizeof(cid), "%.200s-probe", m->client_id);
    cl = strlen(cid);
    if (user > 65535 || pass > 65535)
        return 0;
    fd = raw_dial(m, &why);
    if (fd < 0)
        return 0;
    rem = 10 + 1 + 2 + cl + (m->username ? 2 + user : 0) + (m->password ? 2 + pass : 0);
    pkt = malloc(rem + 5);
    if (!pkt)
        goto out;
    pkt[n++] = 0x10;
    n += put_remaining(pkt + n, rem);
    n += put_str(pkt + n, "MQTT", 4);
    pkt[n++] = 5;
    pkt[n++] = (unsigned char)(0x02 | (m->username ? 0x80 : 0) | (m->password ? 0x40 : 0));
    pkt[n++] = 0;
    pkt[n++] = 10; /* keepalive: the probe lives for one round trip */
    pkt[n++] = 0;  /* no properties */
    n += put_str(pkt + n, cid, cl);
    if (m->username)
        n += put_str(pkt + n, m->username, user);
    if (m->password)
        n += put_str(pkt + n, m->password, pass);
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, pkt + off, n - off, MSG_NOSIGNAL);
        if (w <= 0 && !(w < 0 && errno == EINTR))
            break;
        if (w > 0)
            off += (size_t)w;
    }
    memset(pkt, 0, n); /* it held the password */
    free(pkt);
    deadline = mono_ns() + (int64_t)m->connect_timeout_s * 1000000000LL;
    while (got < sizeof(in)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t r;

        if (got >= 2 && (len = get_varint(in + 1, in + got, &used)) >= 0 &&
            got >= 1 + used + (size_t)len)
            break;
        if (poll_until(m, &pfd, deadline) != 1)
            goto out;
        r = recv(fd, in + got, sizeof(in) - got, 0);
        if (r <= 0)
            goto out; /* a 3.1.1-only broker may simply close */
        got += (size_t)r;
    }
    if (len >= 3 && in[0] == 0x20 && in[1 + used + 1] == 0) {
        /* flags, reason code 0 (success), then the properties */
        const unsigned char *props = in + 1 + used + 2, *end = in + 1 + used + len;
        size_t plen_used = 0;
        long plen = get_varint(props, end, &plen_used);
        if (plen >= 0 && props + plen_used + plen <= end)
            result = connack5_receive_maximum(props + plen_used, props + plen_used + plen);
        (void)!send(fd, "\xe0\x00", 2, MSG_NOSIGNAL);
    }
out:
    close(fd);
    return result;
}

static hc_err raw_connect(hc_mqtt *m, hc_error *err)
{
    size_t cid = strlen(m->client_id), user = m->username ? strlen(m->username) : 0,
           pass = m->password ? strlen(m->password) : 0;
    size_t rem = 10 + 2 + cid + (m->username ? 2 + user : 0) + (m->password ? 2 + pass : 0);
    unsigned char *pkt, ack[4];
    size_t n = 0, got = 0;
    const char *why = NULL;
    int64_t deadline;
    hc_err rc = HC_OK;

    raw_close(m);
    if (cid > 65535 || user > 65535 || pass > 65535)
        return hc_error_set(err, HC_ERR_INVALID, "client id, user name or password too long");
    m->fd = raw_dial(m, &why);
    if (m->fd < 0 && cancelled(m))
        return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted while connecting");
    if (m->fd < 0)
        return hc_error_set(err, HC_ERR_CONNECT,
                            "cannot connect to '%s:%d': %s (is the broker running and reachable?)",
                            m->url.host, m->url.port, why);
    pkt = malloc(rem + 5);
    if (!pkt) {
        raw_close(m);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    pkt[n++] = 0x10;
    n += put_remaining(pkt + n, rem);
    n += put_str(pkt + n, "MQTT", 4);
    pkt[n++] = 4; /* MQTT 3.1.1 */
    pkt[n++] = (unsigned char)(0x02 | (m->username ? 0x80 : 0) | (m->password ? 0x40 : 0));
    pkt[n++] = (unsigned char)(m->keepalive_s >> 8);
    pkt[n++] = (unsigned char)m->keepalive_s;
    n += put_str(pkt + n, m->client_id, cid);
    if (m->username)
        n += put_str(pkt + n, m->username, user);
    if (m->password)
        n += put_str(pkt + n, m->password, pass);
    if (!send_all(m, pkt, n))
        got = (size_t)-1;
    memset(pkt, 0, n); /* it held the password */
    free(pkt);

    deadline = mono_ns() + (int64_t)m->connect_timeout_s * 1000000000LL;
    while (got < sizeof(ack)) {
        struct pollfd pfd = {.fd = m->fd, .events = POLLIN};
        ssize_t r;
        int prc;

        if (got == (size_t)-1)
            break;
        prc = poll_until(m, &pfd, deadline);
        if (prc < 0) {
            raw_close(m);
            return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted while connecting");
        }
        if (prc == 0)
            break;
        r = recv(m->fd, ack + got, sizeof(ack) - got, 0);
        if (r <= 0 && !(r < 0 && errno == EINTR))
            break;
        if (r > 0)
            got += (size_t)r;
    }
    if (got != sizeof(ack) || ack[0] != 0x20 || ack[1] != 0x02) {
        raw_close(m);
        return hc_error_set(err, HC_ERR_CONNECT,
                            "cannot connect to '%s:%d': no CONNACK from the broker (is it an "
                            "MQTT broker?)",
                            m->url.host, m->url.port);
    }
    if (ack[3] != 0) {
        raw_close(m);
        return connack_error(m, ack[3], err);
    }
    pthread_mutex_lock(&m->lock);
    m->lost = false;
    m->lost_reason[0] = '\0';
    m->pings_sent = m->pongs_seen = 0;
    pthread_mutex_unlock(&m->lock);
    atomic_store(&m->last_write_ns, mono_ns());
    m->reader_stop = false;
    if (pthread_create(&m->reader, NULL, raw_reader, m) != 0) {
        raw_close(m);
        return hc_error_set(err, HC_ERR_NOMEM, "cannot start the mqtt reader thread");
    }
    m->reader_running = true;
    return rc;
}

static hc_err lost_error(hc_mqtt *m, hc_error *err)
{
    char reason[sizeof(m->lost_reason)];

    pthread_mutex_lock(&m->lock);
    memcpy(reason, m->lost_reason, sizeof(reason));
    pthread_mutex_unlock(&m->lock);
    return hc_error_set(err, HC_ERR_CONNECTION_LOST, "connection to '%s:%d' lost%s%s", m->url.host,
                        m->url.port, reason[0] ? ": " : "", reason);
}

/*
 * Waits, lock held, until the window has room for a message at qos: HC_OK;
 * HC_ERR_CONNECTION_LOST when the connection is gone or the broker stopped acknowledging (the
 * connection is then closed); HC_ERR_INTERRUPTED when the cancel flag was set.
 */
static hc_err window_wait_locked(hc_mqtt *m, int qos)
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
            quick_ack(m->fd);
            flushed = true;
            continue;
        }
        if (cancelled(m)) {
            rc = HC_ERR_INTERRUPTED;
            break;
        }
        if (ack_stalled_locked(m, mono_ns())) {
            stalled = true;
            break;
        }
        wait_slice_locked(m);
    }
    m->awaiting = false;
    if (stalled) {
        m->lost = true;
        pthread_cond_broadcast(&m->changed);
        pthread_mutex_unlock(&m->lock);
        if (m->raw && m->fd >= 0)
            shutdown(m->fd, SHUT_RDWR);
        else if (m->client)
            MQTTClient_disconnect(m->client, 0);
        pthread_mutex_lock(&m->lock);
    }
    if (rc == HC_OK && m->lost)
        rc = HC_ERR_CONNECTION_LOST;
    return rc;
}

/* The error for window_wait_locked's result; lock not held. */
static hc_err window_error(hc_mqtt *m, hc_err rc, hc_error *err)
{
    if (rc == HC_ERR_INTERRUPTED)
        return hc_error_set(err, rc, "interrupted while waiting for acknowledgements");
    return lost_error(m, err);
}

/* Takes a free packet identifier for ticket; lock held, a free one exists (window < 65535). */
static unsigned raw_take_id(hc_mqtt *m, uint64_t ticket, int qos)
{
    unsigned id = m->next_id;

    for (;;) {
        if (id == 0 || id >= SLOT_COUNT)
            id = 1;
        if (m->slots[id].state == SLOT_FREE)
            break;
        id++;
    }
    window_enter_locked(m, &m->slots[id], ticket, qos);
    m->next_id = (uint16_t)(id + 1);
    return id;
}

static hc_err raw_publish(hc_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                          bool retain, uint64_t *ticket_out, hc_error *err)
{
    size_t tlen = strlen(topic), rem, n;
    unsigned id = 0;
    uint64_t ticket;
    unsigned char *p;
    bool ok;

    if (tlen == 0 || tlen > 65535)
        return hc_error_set(err, HC_ERR_INVALID, "cannot publish: topic of %zu bytes", tlen);
    rem = 2 + tlen + (qos > 0 ? 2 : 0) + len;
    if (rem > 268435455)
        return hc_error_set(err, HC_ERR_INVALID, "payload of %zu bytes exceeds mqtt's limit", len);
    if (qos > 0) {
        hc_err wrc;

        pthread_mutex_lock(&m->lock);
        wrc = window_wait_locked(m, qos);
        if (wrc != HC_OK) {
            pthread_mutex_unlock(&m->lock);
            return window_error(m, wrc, err);
        }
        ticket = m->next_ticket++;
        id = raw_take_id(m, ticket, qos);
        pthread_mutex_unlock(&m->lock);
    } else {
        if (m->lost)
            return lost_error(m, err);
        ticket = m->next_ticket++;
    }

    pthread_mutex_lock(&m->wlock);
    /* queued control packets first: they answer acknowledgements that came before */
    ok = m->fd >= 0 && raw_take_control_locked(m) && raw_reserve_locked(m, rem + 5);
    if (ok) {
        p = m->out + m->out_len;
        n = 0;
        p[n++] = (unsigned char)(0x30 | (qos << 1) | (retain ? 1 : 0));
        n += put_remaining(p + n, rem);
        n += put_str(p + n, topic, tlen);
        if (qos > 0) {
            p[n++] = (unsigned char)(id >> 8);
            p[n++] = (unsigned char)id;
        }
        if (len)
            memcpy(p + n, payload, len);
        m->out_len += n + len;
        if (!m->batching || m->out_len >= RAW_FLUSH_AT)
            ok = raw_flush_locked(m);
    }
    ok = raw_unlock(m, ok);
    if (!ok) {
        /* not sent: the caller resends it under the same ticket after reconnecting */
        pthread_mutex_lock(&m->lock);
        if (qos > 0 && m->slots[id].state == SLOT_PENDING && m->slots[id].ticket == ticket) {
            m->slots[id].state = SLOT_FREE;
            m->inflight--;
            if (qos == 2)
                m->inflight_qos2--;
        }
        m->next_ticket--;
        m->lost = true;
        pthread_cond_broadcast(&m->changed);
        pthread_mutex_unlock(&m->lock);
        if (m->fd >= 0)
            shutdown(m->fd, SHUT_RDWR);
        return lost_error(m, err);
    }
    if (ticket_out)
        *ticket_out = ticket;
    return HC_OK;
}

void hc_mqtt_set_batching(hc_mqtt *m, bool on)
{
    if (!m->raw)
        return;
    pthread_mutex_lock(&m->wlock);
    m->batching = on;
    if (!raw_unlock(m, true))
        raw_fail(m, NULL);
    if (!on)
        hc_mqtt_flush(m);
}

void hc_mqtt_set_cancel(hc_mqtt *m, const volatile sig_atomic_t *cancel)
{
    m->cancel = cancel;
}

bool hc_mqtt_flush(hc_mqtt *m)
{
    bool ok;

    if (!m->raw)
        return true;
    pthread_mutex_lock(&m->wlock);
    ok = raw_unlock(m, raw_flush_locked(m));
    if (!ok)
        raw_fail(m, NULL);
    return ok;
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
    if (m->raw && m->fd >= 0 && !m->lost)
        hc_mqtt_disconnect(m, 1000);
    raw_close(m);
    free(m->out);
    free(m->ctl);
    pthread_mutex_destroy(&m->wlock);
    pthread_mutex_destroy(&m->ctl_lock);
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

/* A refusal in CONNACK (return codes 1-5), named with its likely fix. */
static hc_err connack_error(hc_mqtt *m, int rc, hc_error *err)
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
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    const char *where = m->url.host;
    int port = m->url.port;
    int rc;

    if (m->raw)
        return raw_connect(m, err);
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
        return connack_error(m, rc, err);
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

void hc_mqtt_disconnect(hc_mqtt *m, int timeout_ms)
{
    static const unsigned char bye[2] = {0xe0, 0x00};

    if (m && m->raw) {
        if (m->fd < 0)
            return;
        if (!m->lost && hc_mqtt_flush(m) && timeout_ms > 0)
            hc_mqtt_wait_all(m, timeout_ms, NULL);
        if (!m->lost) {
            /* behind anything the reader queued, so no packet is cut */
            pthread_mutex_lock(&m->wlock);
            if (raw_take_control_locked(m) && raw_reserve_locked(m, sizeof(bye))) {
                memcpy(m->out + m->out_len, bye, sizeof(bye));
                m->out_len += sizeof(bye);
                raw_flush_locked(m);
            }
            pthread_mutex_unlock(&m->wlock);
        }
        raw_close(m);
        return;
    }
    if (m && m->client && MQTTClient_isConnected(m->client))
        MQTTClient_disconnect(m->client, timeout_ms);
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
    return !lost && MQTTClient_isConnected(m->client);
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
    int topic_len = 0;
    int rc;

    if (m->raw)
        return hc_error_set(err, HC_ERR_INVALID, "a publisher cannot receive");
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

    if (m->raw) {
        if (qos == 2 && !m->qos2_window_known)
            qos2_window_probe(m);
        return raw_publish(m, topic, payload, len, qos, retain, ticket_out, err);
    }
    if (len > 268435455)
        return hc_error_set(err, HC_ERR_INVALID, "payload of %zu bytes exceeds mqtt's limit", len);
    if (qos == 2 && !m->qos2_window_known)
        qos2_window_probe(m);
    pthread_mutex_lock(&m->lock);
    rc = qos > 0 ? window_wait_locked(m, qos) : m->lost ? HC_ERR_CONNECTION_LOST : HC_OK;
    if (rc != HC_OK) {
        pthread_mutex_unlock(&m->lock);
        return window_error(m, (hc_err)rc, err);
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
            m->progress_ns = mono_ns();
        } else {
            window_enter_locked(m, s, ticket, qos);
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (ticket_out)
        *ticket_out = ticket;
    return HC_OK;
}

hc_err hc_mqtt_wait_all(hc_mqtt *m, int timeout_ms, hc_error *err)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000LL;
    uint64_t ping = 0;
    bool stalled = false;
    hc_err rc = HC_OK;

    if (m->raw && !m->lost && hc_mqtt_flush(m)) {
        m->awaiting = true;
        quick_ack(m->fd);
    }
    pthread_mutex_lock(&m->lock);
    for (;;) {
        if (m->lost) {
            rc = HC_ERR_CONNECTION_LOST;
            break;
        }
        if (m->inflight == 0) {
            if (!m->raw || (ping && m->pongs_seen >= ping))
                break;
            if (!ping) {
                /* behind everything we wrote: its answer proves the broker read all of it */
                pthread_mutex_unlock(&m->lock);
                if (!raw_queue_ping(m, &ping) || !hc_mqtt_flush(m))
                    raw_fail(m, NULL);
                pthread_mutex_lock(&m->lock);
                m->progress_ns = mono_ns();
                continue;
            }
            if (mono_ns() - m->progress_ns > (int64_t)m->ack_timeout_s * 1000000000LL) {
                snprintf(m->lost_reason, sizeof(m->lost_reason),
                         "the broker did not answer a ping for %d s", m->ack_timeout_s);
                stalled = true;
                break;
            }
        } else if (ack_stalled_locked(m, mono_ns())) {
            stalled = true;
            break;
        }
        if (cancelled(m)) {
            rc = hc_error_set(err, HC_ERR_INTERRUPTED,
                              "interrupted with %zu messages unacknowledged", m->inflight);
            break;
        }
        if (mono_ns() >= deadline) {
            rc = hc_error_set(err, HC_ERR_TIMEOUT, "%zu messages still unacknowledged after %d ms",
                              m->inflight, timeout_ms);
            break;
        }
        wait_slice_locked(m);
    }
    m->awaiting = false;
    if (stalled) {
        m->lost = true;
        pthread_cond_broadcast(&m->changed);
        rc = HC_ERR_CONNECTION_LOST;
    }
    pthread_mutex_unlock(&m->lock);
    if (stalled) {
        if (m->raw && m->fd >= 0)
            shutdown(m->fd, SHUT_RDWR);
        else if (m->client)
            MQTTClient_disconnect(m->client, 0);
    }
    if (rc == HC_ERR_CONNECTION_LOST) {
        size_t left = hc_mqtt_inflight(m);
        lost_error(m, err);
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
    pthread_mutex_unlock(&m->lock);
}

/* The MQTT 5 probe over TLS, through paho: see hc_mqtt_probe_receive_maximum. */
static int paho_probe_v5(hc_mqtt *m)
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

static int probe_receive_maximum(hc_mqtt *m)
{
    return m->url.tls ? paho_probe_v5(m) : raw_probe_v5(m);
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

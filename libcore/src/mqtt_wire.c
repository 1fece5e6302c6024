/*
 * hkit's own MQTT 3.1.1 publisher over plain TCP, and its reader thread.
 *
 * paho's publish path was measured to be the replay's bottleneck: one writev per message, a
 * malloc/copy of topic and payload per message, and, whenever the socket's send buffer is full,
 * a fixed 100 ms sleep in MQTTClient_publish. This writer encodes packets into one buffer, writes
 * it with a blocking send (the kernel, not a timer, paces us), can batch many messages per send
 * (hc_mqtt_set_batching), and reads acknowledgements on its own thread. That reader never waits
 * to write: the control packets it owes (QoS 2 PUBREL, PINGREQ) go into a small queue, which it
 * writes itself without blocking when the output buffer is free, or which the publisher takes
 * along on its next write. A reader that waited behind a publisher blocked in send would stop
 * reading acknowledgements, and a broker that stops reading until we read would deadlock us.
 *
 * The reader trusts nothing: only acknowledgements of packet ids in flight and PINGRESPs to our
 * pings are accepted; only a PINGRESP proves the link alive; anything else closes the connection
 * with the reason.
 *
 * The packets' bytes are written and read by mqtt_codec.c; this file owns the socket, the threads
 * and the window.
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "hcore/log.h"
#include "internal.h"
#include "mqtt_codec.h"
#include "mqtt_internal.h"

#define RAW_FLUSH_AT 32768 /* batching: send once this many bytes are waiting */

#define RAW_RX_SIZE 4096 /* a publisher only receives acknowledgements */

#define RAW_TICK_MS 100 /* reader: how often it flushes stale batches and checks keepalive */

/*
 * While someone waits for acknowledgements, our ACK of the broker's PUBACKs goes out at most this
 * long after the data arrived (see hc__wire_quick_ack): acknowledging every segment at once made
 * Mosquitto send each PUBACK on its own (Nagle releases its queue on every ACK); 1 ms lets them
 * gather and was measured to give ~9% more QoS 1 throughput at --max, with less broker CPU per
 * message.
 */
#define RAW_ACK_DEFER_NS 1000000LL

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
        atomic_store_explicit(&m->last_write_ns, hc__mqtt_now_ns(), memory_order_relaxed);
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
        atomic_store_explicit(&m->last_write_ns, hc__mqtt_now_ns(), memory_order_relaxed);
    }
    m->out_urgent = m->out_len > 0;
    return true;
}

void hc__wire_fail(hc_mqtt *m, const char *reason)
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
            hc__wire_fail(m, NULL);
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

/*
 * Applies the acknowledgements one read brought, under one lock: PUBACK (QoS 1) and PUBCOMP
 * (QoS 2) complete a message, PUBREC (QoS 2) asks for a PUBREL, appended to rel. An
 * acknowledgement for a packet id that is not in flight at that QoS is a broker fault: false,
 * with the reason in why (a connection we cannot account for must not count as delivered).
 */
static bool raw_acked(hc_mqtt *m, const struct hc__codec_ack *acks, size_t n, unsigned char *rel,
                      size_t *n_rel, char *why, size_t why_size)
{
    size_t low = raw_low_water(m), low2 = raw_low_water_qos2(m);
    bool wake = false, ok = true;

    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < n && ok; i++) {
        struct slot *sl = &m->slots[acks[i].id];
        unsigned want_qos = acks[i].type == HC__CODEC_PUBACK ? 1 : 2;

        if (acks[i].id != 0 && sl->state == SLOT_PENDING && sl->qos == 2 && want_qos == 1) {
            /* RabbitMQ 3.x does this: it takes QoS 2 as QoS 1 */
            m->qos2_refused = true;
            snprintf(why, why_size,
                     "the broker answered a QoS 2 message with PUBACK (QoS 1): it does not "
                     "support publishing at QoS 2 (use -q 1)");
            ok = false;
            break;
        }
        if (acks[i].id == 0 || sl->state != SLOT_PENDING || sl->qos != want_qos) {
            snprintf(why, why_size, "the broker acknowledged packet id %u, which is not in flight",
                     (unsigned)acks[i].id);
            ok = false;
            break;
        }
        if (acks[i].type == HC__CODEC_PUBREC) {
            /* QoS 2, step 2: release it; PUBCOMP completes it */
            *n_rel += hc__codec_put_pubrel(rel + *n_rel, acks[i].id);
            continue;
        }
        hc__mqtt_window_release_locked(m, sl);
        wake |= m->inflight == low || m->inflight == 0 ||
                (sl->qos == 2 && (m->inflight_qos2 == low2 || m->inflight_qos2 == 0));
    }
    if (wake)
        pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/* Queues a PINGREQ and counts it, under one lock so pings are counted in the order they leave. */
bool hc__wire_queue_ping(hc_mqtt *m, uint64_t *number)
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
void hc__wire_quick_ack(int fd)
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
        if (!hc__wire_queue_ping(m, NULL)) {
            hc__wire_fail(m, "out of memory");
            return false;
        }
    }
    if (m->ping_sent_ns && now - m->ping_sent_ns > keepalive) {
        /* the broker answers every ping: silence this long means the link is dead */
        snprintf(why, sizeof(why), "no answer to a keepalive ping for %d s", m->keepalive_s);
        hc__wire_fail(m, why);
        return false;
    }
    pthread_mutex_lock(&m->lock);
    stalled = hc__mqtt_ack_stalled_locked(m, now);
    pthread_mutex_unlock(&m->lock);
    if (stalled) {
        hc__wire_fail(m, NULL); /* hc__mqtt_ack_stalled_locked wrote the reason */
        return false;
    }
    return raw_reader_write(m, true);
}

/* Acknowledgements, PINGRESP, and the end of the connection; our control packets go out here. */
static void *raw_reader(void *arg)
{
    hc_mqtt *m = arg;
    unsigned char rx[RAW_RX_SIZE], rel[RAW_RX_SIZE];
    struct hc__codec_ack acks[RAW_RX_SIZE / 4]; /* 4 bytes each */
    size_t have = 0;
    int64_t last_tick = hc__mqtt_now_ns();
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
            int64_t left = ack_due - hc__mqtt_now_ns();
            ts.tv_nsec = left > 0 ? (long)left : 0;
        }
        prc = ppoll(&pfd, 1, &ts, NULL);
        now = hc__mqtt_now_ns();
        if (ack_due && now >= ack_due) {
            hc__wire_quick_ack(m->fd);
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
            snprintf(why, sizeof(why), "%s",
                     n == 0 ? "the broker closed the connection" : strerror(errno));
            break;
        }
        if (m->awaiting && !ack_due)
            ack_due = now + RAW_ACK_DEFER_NS;
        have += (size_t)n;
        used = hc__codec_parse_acks(rx, have, acks, &n_acks, &pongs, why, sizeof(why));
        if (used == HC__CODEC_PARSE_ERROR)
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
                hc__wire_fail(m, "out of memory");
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
    hc__wire_fail(m, why);
    return NULL;
}

void hc__wire_close(hc_mqtt *m)
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

/*
 * poll() until fd is ready, the deadline (CLOCK_MONOTONIC) passes or the cancel flag is set,
 * looking at the flag every WAIT_SLICE_MS. 1: ready, 0: timed out, -1: hc__mqtt_cancelled.
 */
static int poll_until(hc_mqtt *m, struct pollfd *pfd, int64_t deadline)
{
    for (;;) {
        int64_t left_ms = (deadline - hc__mqtt_now_ns()) / 1000000;
        int rc;

        if (hc__mqtt_cancelled(m))
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
            prc = poll_until(m, &pfd,
                             hc__mqtt_now_ns() + (int64_t)m->connect_timeout_s * 1000000000LL);
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

/* The MQTT 5 probe over plain TCP: see hc_mqtt_probe_receive_maximum. */
int hc__wire_probe_v5(hc_mqtt *m)
{
    char cid[300];
    size_t user = m->username ? strlen(m->username) : 0,
           pass = m->password ? strlen(m->password) : 0, n, got = 0, used = 0;
    struct hc__codec_connect c = {.protocol_level = 5,
                                  .keepalive_s = 10, /* the probe lives for one round trip */
                                  .client_id = cid,
                                  .username = m->username,
                                  .password = m->password,
                                  .username_len = user,
                                  .password_len = pass};
    unsigned char *pkt, in[512];
    const char *why;
    int64_t deadline;
    long len = -1;
    int fd, result = 0;

    snprintf(cid, sizeof(cid), "%.200s-probe", m->client_id);
    c.client_id_len = strlen(cid);
    if (user > 65535 || pass > 65535)
        return 0;
    fd = raw_dial(m, &why);
    if (fd < 0)
        return 0;
    pkt = malloc(hc__codec_connect_remaining(&c) + 5);
    if (!pkt)
        goto out;
    n = hc__codec_put_connect(pkt, &c);
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, pkt + off, n - off, MSG_NOSIGNAL);
        if (w <= 0 && !(w < 0 && errno == EINTR))
            break;
        if (w > 0)
            off += (size_t)w;
    }
    memset(pkt, 0, n); /* it held the password */
    free(pkt);
    deadline = hc__mqtt_now_ns() + (int64_t)m->connect_timeout_s * 1000000000LL;
    while (got < sizeof(in)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t r;

        if (got >= 2 && (len = hc__codec_get_varint(in + 1, in + got, &used)) >= 0 &&
            got >= 1 + used + (size_t)len)
            break;
        if (poll_until(m, &pfd, deadline) != 1)
            goto out;
        r = recv(fd, in + got, sizeof(in) - got, 0);
        if (r <= 0)
            goto out; /* a 3.1.1-only broker may simply close */
        got += (size_t)r;
    }
    /* only a whole CONNACK is read: one longer than the buffer says nothing (and would be read
     * past its end) */
    if (len >= 3 && got >= 1 + used + (size_t)len && in[0] == 0x20 && in[1 + used + 1] == 0) {
        /* flags, reason code 0 (success), then the properties */
        const unsigned char *props = in + 1 + used + 2, *end = in + 1 + used + len;
        size_t plen_used = 0;
        long plen = hc__codec_get_varint(props, end, &plen_used);
        if (plen >= 0 && props + plen_used + plen <= end)
            result =
                hc__codec_connack5_receive_maximum(props + plen_used, props + plen_used + plen);
        (void)!send(fd, "\xe0\x00", 2, MSG_NOSIGNAL);
    }
out:
    close(fd);
    return result;
}

hc_err hc__wire_connect(hc_mqtt *m, hc_error *err)
{
    size_t cid = strlen(m->client_id), user = m->username ? strlen(m->username) : 0,
           pass = m->password ? strlen(m->password) : 0;
    struct hc__codec_connect c = {.protocol_level = 4, /* MQTT 3.1.1 */
                                  .keepalive_s = m->keepalive_s,
                                  .client_id = m->client_id,
                                  .username = m->username,
                                  .password = m->password,
                                  .client_id_len = cid,
                                  .username_len = user,
                                  .password_len = pass};
    unsigned char *pkt, ack[4];
    size_t n, got = 0;
    const char *why = NULL;
    int64_t deadline;
    hc_err rc = HC_OK;

    hc__wire_close(m);
    if (cid > 65535 || user > 65535 || pass > 65535)
        return hc_error_set(err, HC_ERR_INVALID, "client id, user name or password too long");
    m->fd = raw_dial(m, &why);
    if (m->fd < 0 && hc__mqtt_cancelled(m))
        return hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted while connecting");
    if (m->fd < 0)
        return hc_error_set(err, HC_ERR_CONNECT,
                            "cannot connect to '%s:%d': %s (is the broker running and reachable?)",
                            m->url.host, m->url.port, why);
    pkt = malloc(hc__codec_connect_remaining(&c) + 5);
    if (!pkt) {
        hc__wire_close(m);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    n = hc__codec_put_connect(pkt, &c);
    if (!send_all(m, pkt, n))
        got = (size_t)-1;
    memset(pkt, 0, n); /* it held the password */
    free(pkt);

    deadline = hc__mqtt_now_ns() + (int64_t)m->connect_timeout_s * 1000000000LL;
    while (got < sizeof(ack)) {
        struct pollfd pfd = {.fd = m->fd, .events = POLLIN};
        ssize_t r;
        int prc;

        if (got == (size_t)-1)
            break;
        prc = poll_until(m, &pfd, deadline);
        if (prc < 0) {
            hc__wire_close(m);
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
        hc__wire_close(m);
        return hc_error_set(err, HC_ERR_CONNECT,
                            "cannot connect to '%s:%d': no CONNACK from the broker (is it an "
                            "MQTT broker?)",
                            m->url.host, m->url.port);
    }
    if (ack[3] != 0) {
        hc__wire_close(m);
        return hc__mqtt_connack_error(m, ack[3], err);
    }
    pthread_mutex_lock(&m->lock);
    m->lost = false;
    m->lost_reason[0] = '\0';
    m->pings_sent = m->pongs_seen = 0;
    m->qos0_unproven = 0;
    pthread_mutex_unlock(&m->lock);
    atomic_store(&m->last_write_ns, hc__mqtt_now_ns());
    m->reader_stop = false;
    if (pthread_create(&m->reader, NULL, raw_reader, m) != 0) {
        hc__wire_close(m);
        return hc_error_set(err, HC_ERR_NOMEM, "cannot start the mqtt reader thread");
    }
    m->reader_running = true;
    return rc;
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
    hc__mqtt_window_enter_locked(m, &m->slots[id], ticket, qos);
    m->next_id = (uint16_t)(id + 1);
    return id;
}

hc_err hc__wire_publish(hc_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                        bool retain, bool dup, uint64_t *ticket_out, hc_error *err)
{
    size_t tlen = strlen(topic), rem, n;
    unsigned id = 0;
    uint64_t ticket;
    unsigned char *p;
    bool ok;

    if (tlen == 0 || tlen > 65535)
        return hc_error_set(err, HC_ERR_INVALID, "cannot publish: topic of %zu bytes", tlen);
    rem = hc__codec_publish_remaining(tlen, qos, len);
    if (rem > HC__CODEC_MAX_REMAINING)
        return hc_error_set(err, HC_ERR_INVALID, "payload of %zu bytes exceeds mqtt's limit", len);
    if (qos > 0) {
        hc_err wrc;

        pthread_mutex_lock(&m->lock);
        wrc = hc__mqtt_window_wait_locked(m, qos);
        if (wrc != HC_OK) {
            pthread_mutex_unlock(&m->lock);
            return hc__mqtt_window_error(m, wrc, err);
        }
        ticket = m->next_ticket++;
        id = raw_take_id(m, ticket, qos);
        pthread_mutex_unlock(&m->lock);
    } else {
        if (m->lost)
            return hc__mqtt_lost_error(m, err);
        ticket = m->next_ticket++;
    }

    pthread_mutex_lock(&m->wlock);
    /* queued control packets first: they answer acknowledgements that came before */
    ok = m->fd >= 0 && raw_take_control_locked(m) && raw_reserve_locked(m, rem + 5);
    if (ok) {
        p = m->out + m->out_len;
        n = hc__codec_put_publish_header(p, topic, tlen, qos, retain, dup, (uint16_t)id, len);
        if (len)
            memcpy(p + n, payload, len);
        m->out_len += n + len;
        if (!m->batching || m->out_len >= RAW_FLUSH_AT)
            ok = raw_flush_locked(m);
    }
    ok = raw_unlock(m, ok);
    if (ok && qos == 0)
        m->qos0_unproven++;
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
        return hc__mqtt_lost_error(m, err);
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
        hc__wire_fail(m, NULL);
    if (!on)
        hc_mqtt_flush(m);
}

bool hc_mqtt_flush(hc_mqtt *m)
{
    bool ok;

    if (!m->raw)
        return true;
    pthread_mutex_lock(&m->wlock);
    ok = raw_unlock(m, raw_flush_locked(m));
    if (!ok)
        hc__wire_fail(m, NULL);
    return ok;
}

void hc__wire_disconnect(hc_mqtt *m, int timeout_ms)
{
    static const unsigned char bye[2] = {0xe0, 0x00};

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
    hc__wire_close(m);
}

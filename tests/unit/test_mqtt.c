/*
 * Tests of the plain-TCP publisher's QoS 2 flow against a stand-in broker on the loopback: a
 * thread with a listening socket that speaks just enough MQTT 3.1.1 (CONNACK, PUBREC per QoS 2
 * PUBLISH, PUBCOMP per PUBREL, PINGRESP) and checks the byte stream it receives: packets whole,
 * publishes in order, exactly one PUBREL per PUBREC. Its buffers are tiny and it stops reading
 * while it writes, as a broker applying back-pressure does; the first test then needs a publisher
 * whose reader keeps reading acknowledgements while the publisher is blocked in send.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hcore/mqtt.h"

struct broker {
    /* behaviour */
    size_t hold;  /* keep the PUBRECs of the first `hold` publishes, then write them at once */
    int pause_ms; /* before that write, neither reading nor writing */
    /* set up by broker_start */
    int listen_fd, port;
    pthread_t thread;
    /* results, read after broker_join */
    size_t publishes, pubrels;
    bool disconnected;
    char error[256];
    /* the broker thread's own */
    unsigned char state[65536]; /* per packet id: 0 free, 1 PUBREC sent and not yet released */
    uint32_t next_seq;
    unsigned char *held, *reply;
    size_t held_len, reply_len, reply_cap, held_cap;
};

static void put(unsigned char **buf, size_t *len, size_t *cap, const unsigned char *p, size_t n)
{
    if (*len + n > *cap) {
        *cap = (*len + n) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

static bool write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* One packet: false with b->error set when the stream is not what a correct client sends. */
static bool broker_packet(struct broker *b, unsigned char first, const unsigned char *p, size_t len)
{
    unsigned char out[4];
    size_t id;

    switch (first & 0xf0) {
    case 0x10: /* CONNECT */
        out[0] = 0x20, out[1] = 0x02, out[2] = 0, out[3] = 0;
        put(&b->reply, &b->reply_len, &b->reply_cap, out, 4);
        return true;
    case 0x30: { /* PUBLISH: topic, id, 4-byte big-endian sequence number, filler */
        size_t tlen = len >= 2 ? (size_t)p[0] << 8 | p[1] : 0;
        uint32_t seq;

        if (((first >> 1) & 3) != 2 || len < 2 + tlen + 6)
            break;
        id = (size_t)p[2 + tlen] << 8 | p[3 + tlen];
        seq = (uint32_t)p[4 + tlen] << 24 | (uint32_t)p[5 + tlen] << 16 |
              (uint32_t)p[6 + tlen] << 8 | p[7 + tlen];
        if (seq != b->next_seq++ || id == 0 || b->state[id]) {
            snprintf(b->error, sizeof(b->error), "publish %u (id %zu) out of order or in use", seq,
                     id);
            return false;
        }
        b->state[id] = 1;
        b->publishes++;
        out[0] = 0x50, out[1] = 0x02, out[2] = (unsigned char)(id >> 8), out[3] = (unsigned char)id;
        if (b->publishes <= b->hold)
            put(&b->held, &b->held_len, &b->held_cap, out, 4);
        else
            put(&b->reply, &b->reply_len, &b->reply_cap, out, 4);
        return true;
    }
    case 0x60: /* PUBREL */
        if (first != 0x62 || len != 2)
            break;
        id = (size_t)p[0] << 8 | p[1];
        if (b->state[id] != 1) {
            snprintf(b->error, sizeof(b->error), "PUBREL for id %zu that has no PUBREC", id);
            return false;
        }
        b->state[id] = 0;
        b->pubrels++;
        out[0] = 0x70, out[1] = 0x02, out[2] = p[0], out[3] = p[1];
        put(&b->reply, &b->reply_len, &b->reply_cap, out, 4);
        return true;
    case 0xc0: /* PINGREQ */
        out[0] = 0xd0, out[1] = 0;
        put(&b->reply, &b->reply_len, &b->reply_cap, out, 2);
        return true;
    case 0xe0:
        b->disconnected = true;
        return true;
    default:
        break;
    }
    snprintf(b->error, sizeof(b->error), "unexpected packet 0x%02x of %zu bytes", first, len);
    return false;
}

static void *broker_main(void *arg)
{
    struct broker *b = arg;
    size_t cap = 1 << 20, have = 0;
    unsigned char *rx = malloc(cap);
    struct pollfd pfd = {.fd = b->listen_fd, .events = POLLIN};
    bool released = b->hold == 0;
    int fd;

    if (!rx || poll(&pfd, 1, 20000) != 1 || (fd = accept(b->listen_fd, NULL, NULL)) < 0) {
        snprintf(b->error, sizeof(b->error), "no client");
        free(rx);
        return NULL;
    }
    while (!b->disconnected && !b->error[0]) {
        size_t off = 0;
        ssize_t n = recv(fd, rx + have, cap - have, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        for (;;) {
            size_t len = 0, hdr = 1;
            unsigned shift = 0;
            bool whole = false;

            while (off + hdr < have && hdr <= 4) {
                unsigned char c = rx[off + hdr++];
                len |= (size_t)(c & 0x7f) << shift;
                shift += 7;
                if (!(c & 0x80)) {
                    whole = true;
                    break;
                }
            }
            if (!whole || off + hdr + len > have)
                break;
            if (!broker_packet(b, rx[off], rx + off + hdr, len))
                break;
            off += hdr + len;
        }
        memmove(rx, rx + off, have - off);
        have -= off;
        if (!released && b->publishes >= b->hold) {
            /* the client is blocked in send by now; then one write larger than its buffers */
            struct timespec ts = {b->pause_ms / 1000, (long)(b->pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            released = true;
            if (!write_all(fd, b->held, b->held_len))
                break;
        }
        if (b->reply_len && !write_all(fd, b->reply, b->reply_len))
            break;
        b->reply_len = 0;
    }
    close(fd);
    free(rx);
    free(b->held);
    free(b->reply);
    return NULL;
}

static void broker_start(struct broker *b)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int small = 4096, one = 1;

    b->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(b->listen_fd, 0);
    setsockopt(b->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* set before listen so the accepted socket has them from the handshake on */
    setsockopt(b->listen_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(b->listen_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    cr_assert_eq(bind(b->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(b->listen_fd, 1), 0);
    cr_assert_eq(getsockname(b->listen_fd, (struct sockaddr *)&a, &alen), 0);
    b->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&b->thread, NULL, broker_main, b), 0);
}

static void broker_join(struct broker *b)
{
    pthread_join(b->thread, NULL);
    close(b->listen_fd);
}

static hc_mqtt *connect_to(const struct broker *b, int max_inflight)
{
    char url[64];
    struct hc_mqtt_options o = {.url = url, .client_id = "test-mqtt", .max_inflight = max_inflight,
                              .max_inflight_qos2 = max_inflight};
    hc_mqtt *m = NULL;
    hc_error err = {0};

    snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", b->port);
    cr_assert_eq(hc_mqtt_new(&o, HC_MQTT_PUBLISHER, &m, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_mqtt_connect(m, &err), HC_OK, "%s", err.message);
    return m;
}

static void publish_seq(hc_mqtt *m, uint32_t seq, size_t size)
{
    static unsigned char payload[16384];
    hc_error err = {0};

    cr_assert_leq(size, sizeof(payload));
    cr_assert_geq(size, 4);
    payload[0] = (unsigned char)(seq >> 24);
    payload[1] = (unsigned char)(seq >> 16);
    payload[2] = (unsigned char)(seq >> 8);
    payload[3] = (unsigned char)seq;
    cr_assert_eq(hc_mqtt_publish(m, "t/q2", payload, size, 2, false, NULL, &err), HC_OK,
                 "publish %u: %s", seq, err.message);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish(hc_mqtt *m, struct broker *b, size_t expected)
{
    hc_mqtt_disconnect(m, 1000);
    hc_mqtt_free(m);
    broker_join(b);
    cr_assert_str_eq(b->error, "");
    cr_assert(b->disconnected, "the broker saw no DISCONNECT");
    cr_assert_eq(b->publishes, expected);
    cr_assert_eq(b->pubrels, expected);
}

/*
 * The broker reads 60000 small publishes, stops reading while the publisher sends 24 MB more (so
 * it blocks in send), then writes 240 KB of PUBRECs in one blocking write: far more than both
 * socket buffers hold. Only a client that keeps reading while its publisher is blocked lets that
 * write finish; a reader that waited for the publisher's lock to send a PUBREL hung here.
 */
Test(mqtt, qos2_reader_keeps_reading_while_the_publisher_is_blocked_by_a_broker_that_is_writing,
     .timeout = 30)
{
    struct broker b = {.hold = 60000, .pause_ms = 200};
    hc_error err = {0};
    hc_mqtt *m;
    uint32_t seq = 0;

    broker_start(&b);
    m = connect_to(&b, 65535);
    hc_mqtt_set_batching(m, true);
    for (size_t i = 0; i < 60000; i++)
        publish_seq(m, seq++, 8);
    for (size_t i = 0; i < 1500; i++)
        publish_seq(m, seq++, 16384);
    cr_assert_eq(hc_mqtt_wait_all(m, 30000, &err), HC_OK, "%s", err.message);
    cr_assert_eq(hc_mqtt_inflight(m), 0);
    cr_assert_eq(hc_mqtt_oldest_unacked(m), (uint64_t)seq + 1);
    finish(m, &b, seq);
}

/*
 * A publisher waiting for its window or in hc_mqtt_wait_all writes nothing, so its PUBRELs must
 * leave without a further publish and without waiting for the reader's 100 ms tick: 4000
 * messages through a window of 100 and 40 single messages each waited out take well under a
 * second when they do, seconds when each wait takes a tick.
 */
Test(mqtt, qos2_releases_leave_while_the_publisher_waits, .timeout = 60)
{
    struct broker b = {0};
    hc_error err = {0};
    hc_mqtt *m;
    uint32_t seq = 0;
    double t0, window_s, single_s;

    broker_start(&b);
    m = connect_to(&b, 100);
    hc_mqtt_set_batching(m, true);
    t0 = now_s();
    for (size_t i = 0; i < 4000; i++)
        publish_seq(m, seq++, 64);
    cr_assert_eq(hc_mqtt_wait_all(m, 10000, &err), HC_OK, "%s", err.message);
    window_s = now_s() - t0;
    t0 = now_s();
    for (size_t i = 0; i < 40; i++) {
        publish_seq(m, seq++, 64);
        cr_assert_eq(hc_mqtt_wait_all(m, 10000, &err), HC_OK, "%s", err.message);
    }
    single_s = now_s() - t0;
    cr_assert_lt(window_s, 1.0, "4000 messages through a window of 100 took %.3f s", window_s);
    cr_assert_lt(single_s, 1.0, "40 messages waited out one by one took %.3f s", single_s);
    finish(m, &b, seq);
}

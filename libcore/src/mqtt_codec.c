/*
 * MQTT 3.1.1 packet encoding and decoding for hkit's own publisher (mqtt_wire.c): string fields,
 * remaining lengths, CONNECT, PUBLISH and PUBREL out; variable byte integers, MQTT 5 CONNACK
 * properties (the probe's Receive Maximum) and the acknowledgements a publisher receives in.
 * Pure functions over caller-owned buffers, so tests and fuzz/fuzz_mqtt_codec.c can call them.
 */
#include <stdio.h>
#include <string.h>

#include "mqtt_codec.h"

size_t hc__codec_put_str(unsigned char *p, const char *s, size_t len)
{
    p[0] = (unsigned char)(len >> 8);
    p[1] = (unsigned char)len;
    memcpy(p + 2, s, len);
    return 2 + len;
}

size_t hc__codec_put_remaining(unsigned char *p, size_t len)
{
    size_t n = 0;
    do {
        unsigned char b = (unsigned char)(len & 0x7f);
        len >>= 7;
        p[n++] = (unsigned char)(b | (len ? 0x80 : 0));
    } while (len);
    return n;
}

long hc__codec_get_varint(const unsigned char *p, const unsigned char *end, size_t *used)
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

int hc__codec_connack5_receive_maximum(const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        unsigned char id = *p++;
        size_t skip;

        switch (id) {
        case 0x24:
        case 0x25:
        case 0x28:
        case 0x29:
        case 0x2a:
            skip = 1; /* byte properties */
            break;
        case 0x13:
        case 0x21:
        case 0x22:
            if (end - p < 2)
                return 0;
            if (id == 0x21)
                return p[0] << 8 | p[1];
            skip = 2;
            break;
        case 0x11:
        case 0x27:
            skip = 4;
            break;
        case 0x12:
        case 0x15:
        case 0x16:
        case 0x1a:
        case 0x1c:
        case 0x1f:
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

size_t hc__codec_connect_remaining(const struct hc__codec_connect *c)
{
    /* "MQTT", level, flags, keepalive; MQTT 5 adds an empty property list */
    return 10 + (c->protocol_level == 5 ? 1 : 0) + 2 + c->client_id_len +
           (c->username ? 2 + c->username_len : 0) + (c->password ? 2 + c->password_len : 0);
}

size_t hc__codec_put_connect(unsigned char *p, const struct hc__codec_connect *c)
{
    size_t n = 0;

    p[n++] = HC__CODEC_CONNECT;
    n += hc__codec_put_remaining(p + n, hc__codec_connect_remaining(c));
    n += hc__codec_put_str(p + n, "MQTT", 4);
    p[n++] = c->protocol_level;
    p[n++] = (unsigned char)(0x02 | (c->username ? 0x80 : 0) | (c->password ? 0x40 : 0));
    p[n++] = (unsigned char)(c->keepalive_s >> 8);
    p[n++] = (unsigned char)c->keepalive_s;
    if (c->protocol_level == 5)
        p[n++] = 0; /* no properties */
    n += hc__codec_put_str(p + n, c->client_id, c->client_id_len);
    if (c->username)
        n += hc__codec_put_str(p + n, c->username, c->username_len);
    if (c->password)
        n += hc__codec_put_str(p + n, c->password, c->password_len);
    return n;
}

size_t hc__codec_publish_remaining(size_t topic_len, int qos, size_t payload_len)
{
    return 2 + topic_len + (qos > 0 ? 2 : 0) + payload_len;
}

size_t hc__codec_put_publish_header(unsigned char *p, const char *topic, size_t topic_len, int qos,
                                    bool retain, bool dup, uint16_t id, size_t payload_len)
{
    size_t n = 0;

    p[n++] = (unsigned char)(HC__CODEC_PUBLISH | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0));
    n += hc__codec_put_remaining(p + n, hc__codec_publish_remaining(topic_len, qos, payload_len));
    n += hc__codec_put_str(p + n, topic, topic_len);
    if (qos > 0) {
        p[n++] = (unsigned char)(id >> 8);
        p[n++] = (unsigned char)id;
    }
    return n;
}

size_t hc__codec_put_pubrel(unsigned char *p, uint16_t id)
{
    p[0] = HC__CODEC_PUBREL | 0x02; /* PUBREL's fixed header flags are 0010 */
    p[1] = 0x02;
    p[2] = (unsigned char)(id >> 8);
    p[3] = (unsigned char)id;
    return 4;
}

size_t hc__codec_parse_acks(const unsigned char *rx, size_t have, struct hc__codec_ack *acks,
                            size_t *n_acks, size_t *pongs, char *why, size_t why_size)
{
    size_t off = 0;

    for (;;) {
        size_t len, hdr, used = 0;
        unsigned char type, flags;
        long v;

        if (have - off < 2)
            return off; /* the rest comes with the next read */
        v = hc__codec_get_varint(rx + off + 1, rx + have, &used);
        if (v < 0 && have - off - 1 >= 4) {
            snprintf(why, why_size, "the broker sent a malformed packet length");
            return HC__CODEC_PARSE_ERROR;
        }
        if (v < 0)
            return off;
        len = (size_t)v;
        hdr = 1 + used;
        type = rx[off] & 0xf0;
        flags = rx[off] & 0x0f;
        if (!((type == HC__CODEC_PUBACK || type == HC__CODEC_PUBREC || type == HC__CODEC_PUBCOMP) &&
              len == 2 && flags == 0) &&
            !(type == HC__CODEC_PINGRESP && len == 0 && flags == 0)) {
            /* we never subscribe: a publisher receives acknowledgements and PINGRESP only */
            snprintf(why, why_size, "the broker sent an unexpected packet (type %u, %zu bytes)",
                     (unsigned)(type >> 4), len);
            return HC__CODEC_PARSE_ERROR;
        }
        if (off + hdr + len > have)
            return off;
        if (type == HC__CODEC_PINGRESP) {
            (*pongs)++;
        } else {
            acks[*n_acks].type = type;
            acks[*n_acks].id = (uint16_t)(rx[off + hdr] << 8 | rx[off + hdr + 1]);
            (*n_acks)++;
        }
        off += hdr + len;
    }
}

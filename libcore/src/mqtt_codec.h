/*
 * MQTT packet encoding and decoding for hkit's own publisher (mqtt_wire.c), as pure functions:
 * bytes in, bytes or values out; no socket, no lock, no connection state. Kept apart so unit
 * tests and a fuzz target can reach every byte the broker may send us. Internal to libcore
 * (hc__ prefix); not part of the public API.
 *
 * Encoders write into a buffer the caller sized (the sizes are stated beside each); nothing here
 * allocates.
 */
#ifndef HCORE_MQTT_CODEC_H
#define HCORE_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Control packet types, as the high nibble of the first byte (MQTT 3.1.1, 2.2.1). */
enum hc__codec_type {
    HC__CODEC_CONNECT = 0x10,
    HC__CODEC_CONNACK = 0x20,
    HC__CODEC_PUBLISH = 0x30,
    HC__CODEC_PUBACK = 0x40,
    HC__CODEC_PUBREC = 0x50,
    HC__CODEC_PUBREL = 0x60,
    HC__CODEC_PUBCOMP = 0x70,
    HC__CODEC_PINGREQ = 0xc0,
    HC__CODEC_PINGRESP = 0xd0,
    HC__CODEC_DISCONNECT = 0xe0,
};

/* The largest remaining length MQTT can express (4 bytes of 7 bits). */
#define HC__CODEC_MAX_REMAINING 268435455

/* hc__codec_parse_acks: what was received is nothing a publisher may accept. */
#define HC__CODEC_PARSE_ERROR ((size_t)-1)

/* One acknowledgement packet from the broker: its type (high nibble) and packet identifier. */
struct hc__codec_ack {
    unsigned char type; /* HC__CODEC_PUBACK, HC__CODEC_PUBREC or HC__CODEC_PUBCOMP */
    uint16_t id;
};

/* What a CONNECT carries. A NULL username or password leaves the field (and its flag) out. */
struct hc__codec_connect {
    unsigned char protocol_level; /* 4: MQTT 3.1.1; 5: MQTT 5, sent with no properties */
    int keepalive_s;              /* written as its low 16 bits */
    const char *client_id, *username, *password;
    size_t client_id_len, username_len, password_len; /* each at most 65535 (caller checks) */
};

/* Writes a UTF-8 string field: 2-byte big-endian len, then s's len bytes. Returns 2 + len. */
size_t hc__codec_put_str(unsigned char *p, const char *s, size_t len);

/*
 * Writes len as a remaining length (variable byte integer, 7 bits per byte, least significant
 * first). len <= HC__CODEC_MAX_REMAINING takes 1 to 4 bytes; returns how many were written.
 */
size_t hc__codec_put_remaining(unsigned char *p, size_t len);

/*
 * Reads a variable byte integer at p, reading no further than end: its value, with the bytes it
 * took in *used; -1 (and *used untouched) when its bytes run past end or past 4.
 */
long hc__codec_get_varint(const unsigned char *p, const unsigned char *end, size_t *used);

/*
 * Receive Maximum from an MQTT 5 CONNACK's properties (p..end, after the property length):
 * the value, 65535 when absent (MQTT 5, 3.2.2.3.3), 0 when the properties cannot be read
 * (truncated, or a property id we do not know).
 */
int hc__codec_connack5_receive_maximum(const unsigned char *p, const unsigned char *end);

/* The remaining length of c's CONNECT; the whole packet takes at most this + 5 bytes. */
size_t hc__codec_connect_remaining(const struct hc__codec_connect *c);

/* Writes c's CONNECT (clean session) at p. Returns its size in bytes. */
size_t hc__codec_put_connect(unsigned char *p, const struct hc__codec_connect *c);

/* The remaining length of a PUBLISH: topic, packet identifier (qos > 0) and payload. */
size_t hc__codec_publish_remaining(size_t topic_len, int qos, size_t payload_len);

/*
 * Writes a PUBLISH up to its payload at p (fixed header, topic, packet identifier when qos > 0);
 * the caller appends the payload_len bytes of payload right behind. The remaining length must be
 * at most HC__CODEC_MAX_REMAINING. Returns the bytes written, at most 5 + 2 + topic_len + 2.
 */
size_t hc__codec_put_publish_header(unsigned char *p, const char *topic, size_t topic_len, int qos,
                                    bool retain, bool dup, uint16_t id, size_t payload_len);

/* Writes the PUBREL for packet identifier id (QoS 2, step 3) at p. Returns 4. */
size_t hc__codec_put_pubrel(unsigned char *p, uint16_t id);

/*
 * Splits received bytes (rx, have bytes, starting at a packet boundary) into packets: PUBACK,
 * PUBREC and PUBCOMP are appended to acks (n_acks counts them; acks needs room for have / 4 more,
 * an acknowledgement takes 4 bytes), PINGRESPs are counted in *pongs. Returns the bytes consumed:
 * a trailing partial packet is left for the next call, with the bytes that follow it. Returns
 * HC__CODEC_PARSE_ERROR, with the reason in why, for a malformed remaining length or any packet a
 * publisher must never receive; the acknowledgements before it are appended all the same.
 */
size_t hc__codec_parse_acks(const unsigned char *rx, size_t have, struct hc__codec_ack *acks,
                            size_t *n_acks, size_t *pongs, char *why, size_t why_size);

#endif

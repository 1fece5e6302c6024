/*
 * The decoder's index split in two, for a writer that sees the same few thousand topics millions
 * of times: what the decoder takes from the topic alone (format, kind, type, device, topic
 * errors) is worked out once per topic by hc__decode_topic and kept by the caller; each message
 * then only needs its payload pass, hc__decode_payload. hc_decode_index itself runs exactly these
 * two steps, so a caller using them agrees with it, and through it with hc_decode_message.
 * Internal to libcore (hc__ prefix); not part of the public API.
 */
#ifndef HCORE_DECODE_SPLIT_H
#define HCORE_DECODE_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/decode.h"

/* A part of the topic, as an offset so that it stays valid for any copy of the same topic. */
struct hc__topic_part {
    size_t off, n;
    bool set;
};

/* What the decoder knows after reading the topic alone. Plain data: copy it freely. */
struct hc__decoded_topic {
    int format;
    const char *err_code; /* the topic's error (static string), NULL when the topic is fine */
    const char *kind_str; /* static kind ("thingsee"), or NULL: the kind part of the topic */
    const char *type_str; /* static canonical type, or NULL */
    const void *tdef;     /* the decoder's type entry, or NULL */
    unsigned alias_flags;
    struct hc__topic_part kind, type_received, device;
};

/* The per-message part of the index. */
struct hc__decoded_payload {
    int64_t measured_at_ms;
    bool has_measured_at;
    bool has_error;
    bool type_from_payload; /* legacy Thingsee: the type comes from the payload, in type */
    char type[sizeof(((struct hc_decode_index *)0)->type)];
};

/* Runs the topic half of the decoding pass. topic must not be NULL. */
void hc__decode_topic(const char *topic, struct hc__decoded_topic *dt);

/*
 * Fills kind, type and device_id of idx as the topic alone determines them (the type of a legacy
 * Thingsee message comes from its payload: "" here), and has_error when the topic is in error.
 * Zeroes the other fields.
 */
void hc__decode_topic_index(const char *topic, const struct hc__decoded_topic *dt,
                            struct hc_decode_index *idx);

/*
 * Runs the payload half of the decoding pass for a topic whose first half gave dt (topic is the
 * same text dt was made from). payload may be NULL when payload_len is 0.
 */
void hc__decode_payload(const char *topic, const struct hc__decoded_topic *dt,
                        const unsigned char *payload, size_t payload_len,
                        struct hc__decoded_payload *out);

#endif

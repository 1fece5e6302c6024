/*
 * The MQTT codec (libcore/src/mqtt_codec.c): remaining lengths at every size boundary, the
 * acknowledgement stream the publisher's reader parses (whole, split, truncated, malformed), MQTT 5
 * CONNACK properties, and the bytes of the packets we send.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "mqtt_codec.h"

/* What one parse reported, so two parses can be compared as a whole. */
struct parsed {
    struct hc__codec_ack acks[64];
    size_t n_acks, pongs, used;
    char why[160];
};

static void parse(struct parsed *r, const unsigned char *rx, size_t have)
{
    memset(r, 0, sizeof(*r));
    r->used =
        hc__codec_parse_acks(rx, have, r->acks, &r->n_acks, &r->pongs, r->why, sizeof(r->why));
}

/*
 * Feeds rx as the reader does when a read ends at each cut: what a parse leaves stays in front
 * of the next read's bytes. Returns the bytes consumed in all, or HC__CODEC_PARSE_ERROR.
 */
static size_t parse_in_reads(struct parsed *r, const unsigned char *rx, size_t have,
                             const size_t *cuts, size_t n_cuts)
{
    unsigned char buf[256];
    size_t held = 0, fed = 0, consumed = 0;

    cr_assert_leq(have, sizeof(buf));
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t until = i < n_cuts ? cuts[i] : have, used;

        memcpy(buf + held, rx + fed, until - fed);
        held += until - fed;
        fed = until;
        used =
            hc__codec_parse_acks(buf, held, r->acks, &r->n_acks, &r->pongs, r->why, sizeof(r->why));
        if (used == HC__CODEC_PARSE_ERROR)
            return HC__CODEC_PARSE_ERROR;
        memmove(buf, buf + used, held - used);
        held -= used;
        consumed += used;
    }
    return consumed;
}

static const size_t boundaries[] = {0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455};
static const size_t boundary_sizes[] = {1, 1, 2, 2, 3, 3, 4, 4};

Test(mqtt_codec, remaining_length_takes_one_more_byte_past_each_boundary)
{
    static const unsigned char want[][4] = {
        {0x00},
        {0x7f},
        {0x80, 0x01},
        {0xff, 0x7f},
        {0x80, 0x80, 0x01},
        {0xff, 0xff, 0x7f},
        {0x80, 0x80, 0x80, 0x01},
        {0xff, 0xff, 0xff, 0x7f},
    };

    for (size_t i = 0; i < sizeof(boundaries) / sizeof(boundaries[0]); i++) {
        unsigned char buf[8] = {0};
        size_t n = hc__codec_put_remaining(buf, boundaries[i]);

        cr_assert_eq(n, boundary_sizes[i], "%zu took %zu bytes", boundaries[i], n);
        cr_assert_eq(memcmp(buf, want[i], n), 0, "bytes of %zu", boundaries[i]);
    }
}

Test(mqtt_codec, remaining_length_decodes_back_to_the_value_and_its_size)
{
    for (size_t i = 0; i < sizeof(boundaries) / sizeof(boundaries[0]); i++) {
        unsigned char buf[8] = {0};
        size_t n = hc__codec_put_remaining(buf, boundaries[i]), used = 99;
        long v = hc__codec_get_varint(buf, buf + n, &used);

        cr_assert_eq(v, (long)boundaries[i]);
        cr_assert_eq(used, n);
    }
}

Test(mqtt_codec, varint_cut_short_or_of_five_bytes_is_malformed)
{
    static const unsigned char five[] = {0xff, 0xff, 0xff, 0xff, 0x7f};
    size_t used = 99;

    cr_assert_eq(hc__codec_get_varint(five, five + sizeof(five), &used), -1);
    cr_assert_eq(hc__codec_get_varint(five, five + 3, &used), -1);
    cr_assert_eq(hc__codec_get_varint(five, five, &used), -1);
    cr_assert_eq(used, 99, "used is untouched on failure");
}

/* PUBACK 1, PUBREC 0x0102, PINGRESP, PUBCOMP 0xfffe, PUBACK 7 */
static const unsigned char ack_stream[] = {0x40, 0x02, 0x00, 0x01, 0x50, 0x02, 0x01, 0x02, 0xd0,
                                           0x00, 0x70, 0x02, 0xff, 0xfe, 0x40, 0x02, 0x00, 0x07};

static void assert_ack_stream(const struct parsed *r)
{
    static const struct hc__codec_ack want[] = {
        {HC__CODEC_PUBACK, 1},
        {HC__CODEC_PUBREC, 0x0102},
        {HC__CODEC_PUBCOMP, 0xfffe},
        {HC__CODEC_PUBACK, 7},
    };

    cr_assert_eq(r->n_acks, 4);
    cr_assert_eq(r->pongs, 1);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(r->acks[i].type, want[i].type, "ack %zu", i);
        cr_assert_eq(r->acks[i].id, want[i].id, "ack %zu", i);
    }
}

Test(mqtt_codec, acknowledgements_and_pingresp_parse_whole)
{
    struct parsed r;

    parse(&r, ack_stream, sizeof(ack_stream));
    cr_assert_eq(r.used, sizeof(ack_stream));
    assert_ack_stream(&r);
}

Test(mqtt_codec, a_stream_cut_at_any_byte_parses_as_the_whole)
{
    for (size_t cut = 0; cut <= sizeof(ack_stream); cut++) {
        struct parsed r;
        size_t used = parse_in_reads(&r, ack_stream, sizeof(ack_stream), &cut, 1);

        cr_assert_eq(used, sizeof(ack_stream), "cut at %zu", cut);
        assert_ack_stream(&r);
    }
}

Test(mqtt_codec, a_stream_in_one_byte_reads_parses_as_the_whole)
{
    size_t cuts[sizeof(ack_stream)];
    struct parsed r;

    for (size_t i = 0; i < sizeof(ack_stream); i++)
        cuts[i] = i;
    cr_assert_eq(parse_in_reads(&r, ack_stream, sizeof(ack_stream), cuts, sizeof(ack_stream)),
                 sizeof(ack_stream));
    assert_ack_stream(&r);
}

Test(mqtt_codec, a_truncated_packet_is_left_for_the_next_read)
{
    struct parsed r;

    /* a whole PUBACK, then a PUBACK without the low byte of its id */
    parse(&r, ack_stream, 7);
    cr_assert_eq(r.used, 4);
    cr_assert_eq(r.n_acks, 1);
    cr_assert_eq(r.acks[0].id, 1);
    /* only a first byte; then a first byte and a length still continued */
    parse(&r, (const unsigned char[]){0x40}, 1);
    cr_assert_eq(r.used, 0);
    parse(&r, (const unsigned char[]){0x40, 0x82, 0x80, 0x80}, 4);
    cr_assert_eq(r.used, 0);
    cr_assert_eq(r.n_acks, 0);
    cr_assert_str_eq(r.why, "", "a partial packet is no error");
    parse(&r, ack_stream, 0);
    cr_assert_eq(r.used, 0);
}

Test(mqtt_codec, a_remaining_length_of_five_bytes_is_malformed)
{
    static const unsigned char rx[] = {0x40, 0x02, 0x00, 0x09, 0x40, 0xff, 0xff, 0xff, 0xff, 0x7f};
    struct parsed r;

    parse(&r, rx, sizeof(rx));
    cr_assert_eq(r.used, HC__CODEC_PARSE_ERROR);
    cr_assert_str_eq(r.why, "the broker sent a malformed packet length");
    cr_assert_eq(r.n_acks, 1, "the PUBACK before it is reported");
    cr_assert_eq(r.acks[0].id, 9);
    /* four continued length bytes are enough to know */
    parse(&r, rx + 4, 5);
    cr_assert_eq(r.used, HC__CODEC_PARSE_ERROR);
    cr_assert_str_eq(r.why, "the broker sent a malformed packet length");
}

Test(mqtt_codec, a_one_byte_puback_is_an_unexpected_packet)
{
    struct parsed r;

    parse(&r, (const unsigned char[]){0x40, 0x01, 0x00}, 3);
    cr_assert_eq(r.used, HC__CODEC_PARSE_ERROR);
    cr_assert_str_eq(r.why, "the broker sent an unexpected packet (type 4, 1 bytes)");
    cr_assert_eq(r.n_acks, 0);
}

Test(mqtt_codec, a_packet_type_a_publisher_never_receives_is_refused_once_its_length_is_read)
{
    struct parsed r;

    /* PUBLISH: refused before its body arrived */
    parse(&r, (const unsigned char[]){0x30, 0x85, 0x01}, 3);
    cr_assert_eq(r.used, HC__CODEC_PARSE_ERROR);
    cr_assert_str_eq(r.why, "the broker sent an unexpected packet (type 3, 133 bytes)");
    /* PUBREL (we send those, never receive them) */
    parse(&r, (const unsigned char[]){0x62, 0x02, 0x00, 0x01}, 4);
    cr_assert_eq(r.used, HC__CODEC_PARSE_ERROR);
    cr_assert_str_eq(r.why, "the broker sent an unexpected packet (type 6, 2 bytes)");
    /* reserved type 0, and a PUBACK with flags set */
    parse(&r, (const unsigned char[]){0x00, 0x00}, 2);
    cr_assert_str_eq(r.why, "the broker sent an unexpected packet (type 0, 0 bytes)");
    parse(&r, (const unsigned char[]){0x41, 0x02, 0x00, 0x01}, 4);
    cr_assert_eq(r.used, HC__CODEC_PARSE_ERROR);
    cr_assert_str_eq(r.why, "the broker sent an unexpected packet (type 4, 2 bytes)");
    /* a PINGRESP with a body */
    parse(&r, (const unsigned char[]){0xd0, 0x01, 0x00}, 3);
    cr_assert_str_eq(r.why, "the broker sent an unexpected packet (type 13, 1 bytes)");
    cr_assert_eq(r.pongs, 0);
}

Test(mqtt_codec, receive_maximum_is_found_among_other_properties)
{
    static const unsigned char props[] = {
        0x24, 0x01,                                   /* maximum QoS */
        0x27, 0x00, 0x10, 0x00, 0x00,                 /* maximum packet size */
        0x12, 0x00, 0x03, 'a',  'b',  'c',            /* assigned client identifier */
        0x26, 0x00, 0x01, 'k',  0x00, 0x02, 'v', 'w', /* user property */
        0x22, 0x00, 0x0a,                             /* topic alias maximum */
        0x21, 0x01, 0x2c,                             /* receive maximum: 300 */
        0x25, 0x01,                                   /* retain available */
    };

    cr_assert_eq(hc__codec_connack5_receive_maximum(props, props + sizeof(props)), 300);
}

Test(mqtt_codec, receive_maximum_absent_is_65535)
{
    static const unsigned char props[] = {0x24, 0x01, 0x22, 0x00, 0x0a, 0x11, 0, 0, 0, 60};

    cr_assert_eq(hc__codec_connack5_receive_maximum(props, props + sizeof(props)), 65535);
    cr_assert_eq(hc__codec_connack5_receive_maximum(props, props), 65535, "no properties");
}

Test(mqtt_codec, receive_maximum_in_truncated_or_unknown_properties_is_0)
{
    static const unsigned char cut_value[] = {0x21, 0x00};
    static const unsigned char cut_string[] = {0x12, 0x00, 0x06, 'a', 'b', 0x21, 0x00, 0x05};
    static const unsigned char cut_pair[] = {0x26, 0x00, 0x01, 'k', 0x00, 0x09, 'v'};
    static const unsigned char cut_int[] = {0x11, 0x00, 0x00};
    static const unsigned char unknown[] = {0x01, 0x00, 0x21, 0x00, 0x05};

    cr_assert_eq(hc__codec_connack5_receive_maximum(cut_value, cut_value + sizeof(cut_value)), 0);
    cr_assert_eq(hc__codec_connack5_receive_maximum(cut_string, cut_string + sizeof(cut_string)),
                 0);
    cr_assert_eq(hc__codec_connack5_receive_maximum(cut_pair, cut_pair + sizeof(cut_pair)), 0);
    cr_assert_eq(hc__codec_connack5_receive_maximum(cut_int, cut_int + sizeof(cut_int)), 0);
    cr_assert_eq(hc__codec_connack5_receive_maximum(unknown, unknown + sizeof(unknown)), 0);
}

Test(mqtt_codec, connect_3_1_1_with_credentials_has_the_standard_bytes)
{
    static const unsigned char want[] = {
        0x10, 0x19, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04, 0xc2, 0x01, 0x2c, 0x00, 0x03,
        'c',  'i',  'd',  0x00, 0x04, 'u', 's', 'e', 'r',  0x00, 0x02, 'p',  'w',
    };
    struct hc__codec_connect c = {.protocol_level = 4,
                                  .keepalive_s = 300,
                                  .client_id = "cid",
                                  .client_id_len = 3,
                                  .username = "user",
                                  .username_len = 4,
                                  .password = "pw",
                                  .password_len = 2};
    unsigned char buf[64];

    cr_assert_eq(hc__codec_connect_remaining(&c), sizeof(want) - 2);
    cr_assert_eq(hc__codec_put_connect(buf, &c), sizeof(want));
    cr_assert_eq(memcmp(buf, want, sizeof(want)), 0);
}

Test(mqtt_codec, connect_5_without_credentials_carries_an_empty_property_list)
{
    static const unsigned char want[] = {0x10, 0x0f, 0x00, 0x04, 'M',  'Q',  'T', 'T', 0x05,
                                         0x02, 0x00, 0x0a, 0x00, 0x00, 0x02, 'i', 'd'};
    struct hc__codec_connect c = {
        .protocol_level = 5, .keepalive_s = 10, .client_id = "id", .client_id_len = 2};
    unsigned char buf[64];

    cr_assert_eq(hc__codec_put_connect(buf, &c), sizeof(want));
    cr_assert_eq(memcmp(buf, want, sizeof(want)), 0);
}

Test(mqtt_codec, publish_header_carries_flags_topic_and_packet_id)
{
    static const unsigned char want_qos1[] = {0x3b, 0x0a, 0x00, 0x03, 'a', '/', 'b', 0x12, 0x34};
    static const unsigned char want_qos0[] = {0x30, 0x80, 0x01, 0x00, 0x01, 't'};
    unsigned char buf[32];

    /* QoS 1, dup and retain, 3 bytes of payload to follow */
    cr_assert_eq(hc__codec_publish_remaining(3, 1, 3), 10);
    cr_assert_eq(hc__codec_put_publish_header(buf, "a/b", 3, 1, true, true, 0x1234, 3),
                 sizeof(want_qos1));
    cr_assert_eq(memcmp(buf, want_qos1, sizeof(want_qos1)), 0);
    /* QoS 0 has no packet id; 125 bytes of payload make the remaining length 2 bytes */
    cr_assert_eq(hc__codec_put_publish_header(buf, "t", 1, 0, false, false, 0x1234, 125),
                 sizeof(want_qos0));
    cr_assert_eq(memcmp(buf, want_qos0, sizeof(want_qos0)), 0);
}

Test(mqtt_codec, pubrel_has_the_reserved_flags_and_the_id)
{
    static const unsigned char want[] = {0x62, 0x02, 0xab, 0xcd};
    unsigned char buf[4];

    cr_assert_eq(hc__codec_put_pubrel(buf, 0xabcd), 4);
    cr_assert_eq(memcmp(buf, want, sizeof(want)), 0);
}

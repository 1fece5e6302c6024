/*
 * libFuzzer target for the MQTT codec (libcore/src/mqtt_codec.c). Input: the bytes a broker sends
 * our publisher. Checks, besides ASan/UBSan cleanliness, that parsing them in one read and in two
 * reads (cut at a point the input's first byte picks, with what the first parse left carried
 * over, as the reader does) gives the same acknowledgements, pings, consumption and error; that
 * the input's first 4 bytes, taken as a remaining length, encode and decode back to themselves;
 * and that CONNACK property parsing stays in bounds. Any disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_codec.h"

struct parsed {
    struct hc__codec_ack *acks;
    size_t n_acks, pongs, used; /* used: bytes consumed in all, or HC__CODEC_PARSE_ERROR */
    char why[160];
};

static void check(int cond)
{
    if (!cond)
        abort();
}

/* Parses data in reads ending at cut and at size, carrying what a parse leaves into the next. */
static void parse_reads(struct parsed *r, unsigned char *buf, const uint8_t *data, size_t size,
                        size_t cut)
{
    size_t ends[2] = {cut, size}, held = 0, fed = 0;

    r->n_acks = r->pongs = r->used = 0;
    r->why[0] = '\0';
    for (size_t i = 0; i < 2; i++) {
        size_t used;

        memcpy(buf + held, data + fed, ends[i] - fed);
        held += ends[i] - fed;
        fed = ends[i];
        used =
            hc__codec_parse_acks(buf, held, r->acks, &r->n_acks, &r->pongs, r->why, sizeof(r->why));
        if (used == HC__CODEC_PARSE_ERROR) {
            r->used = HC__CODEC_PARSE_ERROR;
            return;
        }
        check(used <= held);
        memmove(buf, buf + used, held - used);
        held -= used;
        r->used += used;
    }
}

static void parse_whole_and_split(const uint8_t *data, size_t size)
{
    size_t cut = size ? data[0] % (size + 1) : 0;
    struct parsed whole, split;
    unsigned char *buf = malloc(size + 1);

    /* an acknowledgement takes 4 bytes: size / 4 entries are enough for any reads */
    whole.acks = malloc((size / 4 + 1) * sizeof(*whole.acks));
    split.acks = malloc((size / 4 + 1) * sizeof(*split.acks));
    if (!buf || !whole.acks || !split.acks)
        goto out;
    parse_reads(&whole, buf, data, size, size);
    parse_reads(&split, buf, data, size, cut);
    check(whole.used == split.used);
    check(whole.n_acks == split.n_acks && whole.pongs == split.pongs);
    check(whole.n_acks <= size / 4);
    check(strcmp(whole.why, split.why) == 0);
    check((whole.used == HC__CODEC_PARSE_ERROR) == (whole.why[0] != '\0'));
    for (size_t i = 0; i < whole.n_acks; i++) {
        check(whole.acks[i].type == split.acks[i].type && whole.acks[i].id == split.acks[i].id);
        check(whole.acks[i].type == HC__CODEC_PUBACK || whole.acks[i].type == HC__CODEC_PUBREC ||
              whole.acks[i].type == HC__CODEC_PUBCOMP);
    }
    /* consumed bytes are whole packets: 2 + 2 to 5 + 2 per acknowledgement, 2 to 5 per PINGRESP
       (a remaining length need not be written in its fewest bytes) */
    check(whole.used == HC__CODEC_PARSE_ERROR ||
          (whole.used >= 4 * whole.n_acks + 2 * whole.pongs &&
           whole.used <= 7 * whole.n_acks + 5 * whole.pongs));
out:
    free(buf);
    free(whole.acks);
    free(split.acks);
}

static void remaining_length_round_trip(const uint8_t *data, size_t size)
{
    unsigned char enc[4];
    size_t value = 0, n, used = 0;

    for (size_t i = 0; i < 4 && i < size; i++)
        value = value << 8 | data[i];
    value %= (size_t)HC__CODEC_MAX_REMAINING + 1;
    n = hc__codec_put_remaining(enc, value);
    check(n == (value < 128 ? 1u : value < 16384 ? 2u : value < 2097152 ? 3u : 4u));
    check(hc__codec_get_varint(enc, enc + n, &used) == (long)value && used == n);
    /* one byte short is never a value */
    check(hc__codec_get_varint(enc, enc + n - 1, &used) == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_whole_and_split(data, size);
    remaining_length_round_trip(data, size);
    if (size) {
        /* exact-size copy, so ASan sees any read past the properties */
        unsigned char *props = malloc(size);
        int rm;

        if (props) {
            memcpy(props, data, size);
            rm = hc__codec_connack5_receive_maximum(props, props + size);
            check(rm >= 0 && rm <= 65535);
            free(props);
        }
    }
    return 0;
}

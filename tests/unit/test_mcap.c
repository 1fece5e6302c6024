/*
 * Tests of the MCAP writer, read back with a small reader written here from the specification
 * (independent of the writer's code): the magic at both ends, every record's length walking to
 * the Footer, the CRCs (chunk records, data section, summary), the Footer and Summary Offsets
 * pointing at the groups they name, Chunk Index and Message Index entries pointing at the
 * Message records they describe, Statistics counts, and payload bytes kept exactly. The
 * integration test t0320 reads the same files with an independent MCAP library.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/mcap.h"

static uint64_t u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* The bytes written to a tmpfile. */
static unsigned char *slurp(FILE *f, size_t *len)
{
    long n;
    unsigned char *data;
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert_gt(n, 0);
    rewind(f);
    data = malloc((size_t)n);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)n, f), (size_t)n);
    *len = (size_t)n;
    return data;
}

struct message {
    uint16_t channel;
    uint32_t sequence;
    uint64_t log_time, publish_time;
    const unsigned char *data;
    size_t len;
};

struct parsed {
    unsigned char *file;
    size_t len;
    struct message messages[4096];
    size_t n_messages;
    size_t n_chunks, n_chunk_indexes, n_message_indexes, n_indexed, n_channels_summary;
    uint64_t stats_messages;
    uint32_t stats_channels, stats_chunks, stats_metadata;
    size_t n_metadata;
};

static const unsigned char MAGIC[8] = {0x89, 'M', 'C', 'A', 'P', '0', '\r', '\n'};

/* Messages inside one chunk's records. */
static void parse_chunk_records(struct parsed *p, const unsigned char *r, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        unsigned op = r[pos];
        uint64_t len = u64(r + pos + 1);
        const unsigned char *c = r + pos + 9;
        cr_assert_leq(pos + 9 + len, n, "record overruns its chunk");
        if (op == 0x05) {
            struct message *m = &p->messages[p->n_messages++];
            m->channel = u16(c);
            m->sequence = u32(c + 2);
            m->log_time = u64(c + 6);
            m->publish_time = u64(c + 14);
            m->data = c + 22;
            m->len = (size_t)len - 22;
        } else {
            cr_assert_eq(op, 0x04, "unexpected record 0x%02x in a chunk", op);
        }
        pos += 9 + (size_t)len;
    }
}

/* Walks the file record by record and checks every structural rule this writer promises. */
static void parse(struct parsed *p, FILE *f)
{
    size_t pos = 8, data_end_at = 0;
    uint64_t summary_start, offsets_start;
    const unsigned char *b;

    memset(p, 0, sizeof(*p));
    p->file = slurp(f, &p->len);
    b = p->file;
    cr_assert_geq(p->len, 8 + 9 + 8 + 29);
    cr_assert_eq(memcmp(b, MAGIC, 8), 0);
    cr_assert_eq(memcmp(b + p->len - 8, MAGIC, 8), 0);
    cr_assert_eq(b[8], 0x01, "the header comes first");
    for (;;) {
        unsigned op = b[pos];
        uint64_t len = u64(b + pos + 1);
        const unsigned char *c = b + pos + 9;
        cr_assert_leq(pos + 9 + len, p->len - 8);
        if (op == 0x06) {
            uint64_t records_len = u64(c + 28 + 4);
            cr_assert_eq(u32(c + 28), 0, "no compression");
            cr_assert_eq(u64(c + 16), records_len);
            cr_assert_eq(u32(c + 24), hc_mcap_crc32(0, c + 40, (size_t)records_len), "chunk crc");
            parse_chunk_records(p, c + 40, (size_t)records_len);
            p->n_chunks++;
        } else if (op == 0x07) {
            p->n_message_indexes++;
        } else if (op == 0x0C) {
            p->n_metadata++;
        } else if (op == 0x0F) {
            cr_assert_eq(u32(c), hc_mcap_crc32(0, b, pos), "data section crc");
            data_end_at = pos;
        } else if (op == 0x02) {
            cr_assert_eq(len, 20);
            cr_assert_eq(pos + 9 + 20, p->len - 8, "the footer is last");
            break;
        }
        pos += 9 + (size_t)len;
    }
    cr_assert_neq(data_end_at, 0, "a Data End record");
    summary_start = u64(b + pos + 9);
    offsets_start = u64(b + pos + 17);
    cr_assert_eq(summary_start, data_end_at + 9 + 4, "the summary follows Data End");
    cr_assert_eq(u32(b + pos + 25),
                 hc_mcap_crc32(0, b + summary_start, pos + 25 - (size_t)summary_start),
                 "summary crc");
    /* summary records, grouped; each Summary Offset names its group exactly */
    for (size_t s = (size_t)offsets_start; s < pos;) {
        uint64_t len = u64(b + s + 1);
        unsigned group = b[s + 9];
        uint64_t start = u64(b + s + 10), length = u64(b + s + 18);
        cr_assert_eq(b[s], 0x0E);
        for (uint64_t q = start; q < start + length; q += 9 + u64(b + q + 1))
            cr_assert_eq(b[q], group, "a group holds one kind of record");
        s += 9 + (size_t)len;
    }
    for (size_t s = (size_t)summary_start; s < offsets_start;) {
        uint64_t len = u64(b + s + 1);
        const unsigned char *c = b + s + 9;
        if (b[s] == 0x04) {
            p->n_channels_summary++;
        } else if (b[s] == 0x0B) {
            p->stats_messages = u64(c);
            p->stats_channels = u32(c + 10);
            p->stats_metadata = u32(c + 18);
            p->stats_chunks = u32(c + 22);
        } else if (b[s] == 0x08) {
            /* every message index entry points at a Message record of its channel and time */
            uint64_t chunk_at = u64(c + 16), map_len = u32(c + 32);
            const unsigned char *records = b + chunk_at + 9 + 40;
            cr_assert_eq(b[chunk_at], 0x06);
            cr_assert_eq(u64(c + 24), 9 + u64(b + chunk_at + 1), "chunk length");
            for (uint64_t k = 0; k < map_len; k += 10) {
                uint16_t channel = u16(c + 36 + k);
                uint64_t index_at = u64(c + 36 + k + 2);
                const unsigned char *mi = b + index_at;
                uint64_t n = u32(mi + 9 + 2);
                uint64_t prev = 0;
                cr_assert_eq(mi[0], 0x07);
                cr_assert_eq(u16(mi + 9), channel);
                for (uint64_t e = 0; e < n; e += 16) {
                    uint64_t t = u64(mi + 15 + e), off = u64(mi + 15 + e + 8);
                    const unsigned char *m = records + off;
                    cr_assert_eq(m[0], 0x05);
                    cr_assert_eq(u16(m + 9), channel);
                    cr_assert_eq(u64(m + 9 + 6), t);
                    cr_assert_geq(t, prev, "index entries in log time order");
                    prev = t;
                    p->n_indexed++;
                }
            }
            p->n_chunk_indexes++;
        }
        s += 9 + (size_t)len;
    }
}

static hc_mcap_writer *open_writer(FILE *f, size_t chunk_size)
{
    struct hc_mcap_options o = {.library = "hkit test", .chunk_size = chunk_size};
    hc_mcap_writer *w = NULL;
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_mcap_writer_open(f, &o, &w, &err), HC_OK, "%s", err.message);
    return w;
}

Test(mcap, empty_file_has_header_data_end_summary_and_footer)
{
    FILE *f = tmpfile();
    struct parsed *p = malloc(sizeof(*p));
    hc_error err = HC_ERROR_INIT;

    cr_assert_eq(hc_mcap_writer_close(open_writer(f, 0), &err), HC_OK, "%s", err.message);
    parse(p, f);
    cr_assert_eq(p->n_messages, 0);
    cr_assert_eq(p->stats_messages, 0);
    cr_assert_eq(p->n_chunk_indexes, 0);
    free(p->file);
    free(p);
    fclose(f);
}

Test(mcap, messages_read_back_with_channel_times_and_exact_bytes_across_chunks)
{
    FILE *f = tmpfile();
    struct parsed *p = malloc(sizeof(*p));
    hc_mcap_writer *w = open_writer(f, 512); /* small chunks: many of them */
    hc_error err = HC_ERROR_INIT;
    uint16_t a, b, again;
    const unsigned char binary[] = {0, 1, 2, 0xff, 0xfe, 0, 'x'};
    const char *keys[] = {"payload"}, *values[] = {"json"};
    const char *mkeys[] = {"tool", "note"}, *mvalues[] = {"hcat", "ünïcode"};

    cr_assert_eq(hc_mcap_channel(w, "a/b", "json", keys, values, 1, &a, &err), HC_OK);
    cr_assert_eq(hc_mcap_channel(w, "a/c", "x-hkit-bytes", NULL, NULL, 0, &b, &err), HC_OK);
    cr_assert_eq(hc_mcap_channel(w, "a/b", "json", NULL, NULL, 0, &again, &err), HC_OK);
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 2);
    cr_assert_eq(again, a);
    cr_assert_eq(hc_mcap_write_metadata(w, "hkit", mkeys, mvalues, 2, &err), HC_OK);
    for (uint32_t i = 0; i < 1000; i++) {
        char text[64];
        int n = snprintf(text, sizeof(text), "{\"i\":%u}", i);
        /* log times mostly rising, one step back every 7th message */
        uint64_t t = 1770000000000000000ULL + i * 1000000ULL - (i % 7 == 0 ? 500000ULL : 0);
        if (i % 3 == 0)
            cr_assert_eq(hc_mcap_write_message(w, b, i, t, t - 5, binary, sizeof(binary), &err),
                         HC_OK);
        else
            cr_assert_eq(hc_mcap_write_message(w, a, i, t, t - 7, text, (size_t)n, &err), HC_OK,
                         "%s", err.message);
    }
    cr_assert_eq(hc_mcap_write_message(w, a, 0, 1, 1, NULL, 0, &err), HC_OK, "an empty payload");
    cr_assert_eq(hc_mcap_write_message(w, 9, 0, 1, 1, "x", 1, &err), HC_ERR_INVALID);
    cr_assert_eq(hc_mcap_writer_close(w, &err), HC_OK, "%s", err.message);
    parse(p, f);
    cr_assert_eq(p->n_messages, 1001);
    cr_assert_eq(p->stats_messages, 1001);
    cr_assert_eq(p->n_indexed, 1001, "every message is indexed");
    cr_assert_gt(p->n_chunks, 10);
    cr_assert_eq(p->stats_chunks, p->n_chunks);
    cr_assert_eq(p->n_chunk_indexes, p->n_chunks);
    cr_assert_eq(p->stats_channels, 2);
    cr_assert_eq(p->n_channels_summary, 2);
    cr_assert_eq(p->n_metadata, 1);
    cr_assert_eq(p->stats_metadata, 1);
    for (uint32_t i = 0; i < 1000; i++) {
        const struct message *m = &p->messages[i];
        uint64_t t = 1770000000000000000ULL + i * 1000000ULL - (i % 7 == 0 ? 500000ULL : 0);
        cr_assert_eq(m->sequence, i);
        cr_assert_eq(m->log_time, t);
        if (i % 3 == 0) {
            cr_assert_eq(m->channel, b);
            cr_assert_eq(m->publish_time, t - 5);
            cr_assert_eq(m->len, sizeof(binary));
            cr_assert_eq(memcmp(m->data, binary, sizeof(binary)), 0);
        } else {
            char text[64];
            int n = snprintf(text, sizeof(text), "{\"i\":%u}", i);
            cr_assert_eq(m->channel, a);
            cr_assert_eq(m->publish_time, t - 7);
            cr_assert_eq(m->len, (size_t)n);
            cr_assert_eq(memcmp(m->data, text, (size_t)n), 0);
        }
    }
    cr_assert_eq(p->messages[1000].len, 0);
    free(p->file);
    free(p);
    fclose(f);
}

Test(mcap, invalid_utf8_topic_is_refused)
{
    FILE *f = tmpfile();
    hc_mcap_writer *w = open_writer(f, 0);
    hc_error err = HC_ERROR_INIT;
    uint16_t id;

    cr_assert_eq(hc_mcap_channel(w, "bad\xff", "json", NULL, NULL, 0, &id, &err), HC_ERR_INVALID);
    hc_mcap_writer_free(w);
    fclose(f);
}

Test(mcap, crc32_matches_the_standard_check_value)
{
    cr_assert_eq(hc_mcap_crc32(0, "123456789", 9), 0xCBF43926u);
    cr_assert_eq(hc_mcap_crc32(hc_mcap_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

Test(mcap, a_full_disk_is_reported)
{
    FILE *f = fopen("/dev/full", "wb");
    hc_mcap_writer *w = NULL;
    hc_error err = HC_ERROR_INIT;
    uint16_t id;
    hc_err rc;

    cr_assert_not_null(f);
    setvbuf(f, NULL, _IONBF, 0);
    rc = hc_mcap_writer_open(f, NULL, &w, &err);
    if (rc == HC_OK) {
        cr_assert_eq(hc_mcap_channel(w, "t", "json", NULL, NULL, 0, &id, &err), HC_OK);
        rc = hc_mcap_write_message(w, id, 1, 1, 1, "{}", 2, &err);
        if (rc == HC_OK)
            rc = hc_mcap_writer_close(w, &err);
        else
            hc_mcap_writer_free(w);
    }
    cr_assert_eq(rc, HC_ERR_FULL, "%s", err.message);
    cr_assert(strstr(err.message, "cannot write mcap") != NULL);
    fclose(f);
}

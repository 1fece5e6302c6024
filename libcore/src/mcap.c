/*
 * The MCAP writer (see hcore/mcap.h). Records are built in memory with little-endian helpers
 * and written through one function that counts the file offset and keeps the running CRC32s:
 * the data section's (from the first byte to Data End) and the summary's (from the summary to
 * the Footer's summary_offset_start). The current chunk's records and, per channel, its index
 * entries are held until the chunk is written; Chunk Index and Metadata Index records are
 * serialised as they are made, so the summary is assembled from ready bytes at close.
 */
#include "hcore/mcap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/text.h"
#include "internal.h"

enum {
    OP_HEADER = 0x01,
    OP_FOOTER = 0x02,
    OP_CHANNEL = 0x04,
    OP_MESSAGE = 0x05,
    OP_CHUNK = 0x06,
    OP_MESSAGE_INDEX = 0x07,
    OP_CHUNK_INDEX = 0x08,
    OP_STATISTICS = 0x0B,
    OP_METADATA = 0x0C,
    OP_METADATA_INDEX = 0x0D,
    OP_SUMMARY_OFFSET = 0x0E,
    OP_DATA_END = 0x0F
};

static const unsigned char MAGIC[8] = {0x89, 'M', 'C', 'A', 'P', '0', '\r', '\n'};

struct index_entry {
    uint64_t log_time_ns;
    uint64_t offset; /* of the Message record in the chunk's records */
};

struct channel {
    struct hc__buf record; /* the whole Channel record: opcode, length, content */
    uint64_t messages;
    bool written;                /* its record is in the data section already */
    struct index_entry *entries; /* in the current chunk */
    size_t n_entries, cap_entries;
};

struct hc_mcap_writer {
    FILE *out;
    size_t chunk_size;
    uint64_t offset;          /* bytes written to out */
    uint32_t crc;             /* running CRC32 of the current section (data, then summary) */
    struct channel *channels; /* channel id = index + 1 */
    size_t n_channels, cap_channels;
    struct hc__strmap channel_ids; /* "encoding\0topic" -> index */
    /* the open chunk */
    struct hc__buf chunk;
    uint64_t chunk_start_ns, chunk_end_ns; /* log times, valid when chunk_messages */
    uint64_t chunk_messages;
    uint16_t *chunk_channels; /* ids with entries in the open chunk */
    size_t n_chunk_channels;
    /* summary material */
    struct hc__buf chunk_indexes;    /* Chunk Index records, ready */
    struct hc__buf metadata_indexes; /* Metadata Index records, ready */
    uint64_t messages, start_ns, end_ns;
    uint32_t chunks, metadata;
    struct hc__buf scratch;
};

static const uint32_t CRC_TABLE[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u,
    0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu,
    0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu, 0x1adad47du,
    0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
    0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu,
    0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
    0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu,
    0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau,
    0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu,
    0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
    0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u,
    0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u,
    0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u, 0x8708a3d2u, 0x1e01f268u,
    0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u,
    0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u,
    0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u, 0xcc0c7795u, 0xbb0b4703u,
    0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
    0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu,
    0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u, 0x88085ae6u,
    0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
    0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du,
    0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u,
    0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t hc_mcap_crc32(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = CRC_TABLE[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* --- serialisation --------------------------------------------------------------------------- */

static void put_u8(struct hc__buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    hc__buf_add(b, &c, 1);
}

static void put_u16(struct hc__buf *b, uint16_t v)
{
    unsigned char c[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    hc__buf_add(b, c, 2);
}

static void put_u32(struct hc__buf *b, uint32_t v)
{
    unsigned char c[4];
    for (int i = 0; i < 4; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    hc__buf_add(b, c, 4);
}

static void put_u64(struct hc__buf *b, uint64_t v)
{
    unsigned char c[8];
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    hc__buf_add(b, c, 8);
}

static void put_str(struct hc__buf *b, const char *s)
{
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    hc__buf_add(b, s, n);
}

/* Overwrites 4 or 8 bytes at pos (for lengths known only after the content). */
static void patch_u32(struct hc__buf *b, size_t pos, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->data[pos + (size_t)i] = (unsigned char)(v >> (8 * i));
}

static void patch_u64(struct hc__buf *b, size_t pos, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b->data[pos + (size_t)i] = (unsigned char)(v >> (8 * i));
}

/* Starts a record in b; returns where its length goes (for end_record). */
static size_t begin_record(struct hc__buf *b, unsigned opcode)
{
    size_t at;
    put_u8(b, opcode);
    at = b->len;
    put_u64(b, 0);
    return at;
}

static void end_record(struct hc__buf *b, size_t length_at)
{
    if (!b->failed)
        patch_u64(b, length_at, b->len - length_at - 8);
}

/* A Map<string,string> or Array<Tuple<string,string>> of n pairs. */
static void put_string_map(struct hc__buf *b, const char *const *keys, const char *const *values,
                           size_t n)
{
    size_t at = b->len;
    put_u32(b, 0);
    for (size_t i = 0; i < n; i++) {
        put_str(b, keys[i]);
        put_str(b, values[i]);
    }
    if (!b->failed)
        patch_u32(b, at, (uint32_t)(b->len - at - 4));
}

/* --- output ---------------------------------------------------------------------------------- */

static hc_err emit(hc_mcap_writer *w, const void *data, size_t len, hc_error *err)
{
    if (len && fwrite(data, 1, len, w->out) != len)
        return hc_error_set(err, errno == ENOSPC ? HC_ERR_FULL : HC_ERR_IO, "cannot write mcap: %s",
                            strerror(errno ? errno : EIO));
    w->crc = hc_mcap_crc32(w->crc, data, len);
    w->offset += len;
    return HC_OK;
}

static hc_err emit_buf(hc_mcap_writer *w, struct hc__buf *b, hc_error *err)
{
    if (b->failed)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    return emit(w, b->data, b->len, err);
}

static bool valid_text(const char *s)
{
    return s && hc_text_is_json_safe_utf8((const unsigned char *)s, strlen(s));
}

/* --- lifecycle ------------------------------------------------------------------------------- */

hc_err hc_mcap_writer_open(FILE *out, const struct hc_mcap_options *opts, hc_mcap_writer **w_out,
                           hc_error *err)
{
    hc_mcap_writer *w;
    const char *profile = opts && opts->profile ? opts->profile : "";
    const char *library = opts && opts->library ? opts->library : "hkit";
    size_t at;
    hc_err rc;

    *w_out = NULL;
    if (!out || !valid_text(profile) || !valid_text(library))
        return hc_error_set(err, HC_ERR_INVALID, "mcap: invalid output, profile or library");
    w = calloc(1, sizeof(*w));
    if (!w)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    w->out = out;
    w->chunk_size = opts && opts->chunk_size ? opts->chunk_size : HC_MCAP_DEFAULT_CHUNK_SIZE;
    hc__strmap_init(&w->channel_ids);
    hc__buf_init(&w->chunk);
    hc__buf_init(&w->chunk_indexes);
    hc__buf_init(&w->metadata_indexes);
    hc__buf_init(&w->scratch);
    hc__buf_add(&w->scratch, MAGIC, sizeof(MAGIC));
    at = begin_record(&w->scratch, OP_HEADER);
    put_str(&w->scratch, profile);
    put_str(&w->scratch, library);
    end_record(&w->scratch, at);
    rc = emit_buf(w, &w->scratch, err);
    hc__buf_reset(&w->scratch);
    if (rc != HC_OK) {
        hc_mcap_writer_free(w);
        return rc;
    }
    *w_out = w;
    return HC_OK;
}

void hc_mcap_writer_free(hc_mcap_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_channels; i++) {
        hc__buf_release(&w->channels[i].record);
        free(w->channels[i].entries);
    }
    free(w->channels);
    free(w->chunk_channels);
    hc__strmap_release(&w->channel_ids);
    hc__buf_release(&w->chunk);
    hc__buf_release(&w->chunk_indexes);
    hc__buf_release(&w->metadata_indexes);
    hc__buf_release(&w->scratch);
    free(w);
}

void hc_mcap_writer_stats(const hc_mcap_writer *w, struct hc_mcap_stats *out)
{
    out->messages = w->messages;
    out->channels = (uint32_t)w->n_channels;
    out->chunks = w->chunks;
    out->bytes = w->offset;
}

/* --- channels -------------------------------------------------------------------------------- */

hc_err hc_mcap_channel(hc_mcap_writer *w, const char *topic, const char *message_encoding,
                       const char *const *metadata_keys, const char *const *metadata_values,
                       size_t n_metadata, uint16_t *channel_id_out, hc_error *err)
{
    struct hc__buf key;
    struct channel *c;
    size_t index, at;
    hc_err rc;

    if (!valid_text(topic) || !valid_text(message_encoding))
        return hc_error_set(err, HC_ERR_INVALID, "mcap: a topic or message encoding is not UTF-8");
    for (size_t i = 0; i < n_metadata; i++)
        if (!valid_text(metadata_keys[i]) || !valid_text(metadata_values[i]))
            return hc_error_set(err, HC_ERR_INVALID, "mcap: channel metadata is not UTF-8");
    hc__buf_init(&key);
    hc__buf_addstr(&key, message_encoding);
    hc__buf_add(&key, "", 1);
    hc__buf_addstr(&key, topic);
    if (key.failed) {
        hc__buf_release(&key);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    if (hc__strmap_get(&w->channel_ids, (const char *)key.data, key.len, &index)) {
        hc__buf_release(&key);
        *channel_id_out = (uint16_t)(index + 1);
        return HC_OK;
    }
    if (w->n_channels >= UINT16_MAX) {
        hc__buf_release(&key);
        return hc_error_set(err, HC_ERR_FULL,
                            "mcap: more than %d channels (topics), the format's limit", UINT16_MAX);
    }
    if (w->n_channels == w->cap_channels) {
        size_t cap = w->cap_channels ? w->cap_channels * 2 : 64;
        struct channel *grown = realloc(w->channels, cap * sizeof(*grown));
        uint16_t *ids = realloc(w->chunk_channels, cap * sizeof(*ids));
        if (grown)
            w->channels = grown;
        if (ids)
            w->chunk_channels = ids;
        if (!grown || !ids) {
            hc__buf_release(&key);
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        }
        w->cap_channels = cap;
    }
    index = w->n_channels;
    rc = hc__strmap_put(&w->channel_ids, (const char *)key.data, key.len, index);
    hc__buf_release(&key);
    if (rc != HC_OK)
        return hc_error_set(err, rc, "out of memory");
    c = &w->channels[index];
    memset(c, 0, sizeof(*c));
    hc__buf_init(&c->record);
    at = begin_record(&c->record, OP_CHANNEL);
    put_u16(&c->record, (uint16_t)(index + 1));
    put_u16(&c->record, 0); /* schemaless */
    put_str(&c->record, topic);
    put_str(&c->record, message_encoding);
    put_string_map(&c->record, metadata_keys, metadata_values, n_metadata);
    end_record(&c->record, at);
    w->n_channels++;
    if (c->record.failed)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    *channel_id_out = (uint16_t)(index + 1);
    return HC_OK;
}

/* --- chunks ---------------------------------------------------------------------------------- */

static int compare_entries(const void *a, const void *b)
{
    const struct index_entry *x = a, *y = b;
    if (x->log_time_ns != y->log_time_ns)
        return x->log_time_ns < y->log_time_ns ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int compare_ids(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return (x > y) - (x < y);
}

/* Writes the open chunk, its Message Index records, and serialises its Chunk Index. */
static hc_err flush_chunk(hc_mcap_writer *w, hc_error *err)
{
    struct hc__buf *s = &w->scratch;
    uint64_t chunk_start = w->offset, chunk_length, index_start, index_length;
    uint64_t *index_offsets = NULL;
    size_t at, map_at;
    hc_err rc;

    if (!w->chunk.len)
        return HC_OK;
    if (w->chunk.failed)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    /* the Chunk record: header fields, then the records as they are (no compression) */
    hc__buf_reset(s);
    put_u8(s, OP_CHUNK);
    put_u64(s, 8 + 8 + 8 + 4 + 4 + 8 + (uint64_t)w->chunk.len);
    put_u64(s, w->chunk_start_ns);
    put_u64(s, w->chunk_end_ns);
    put_u64(s, w->chunk.len);
    put_u32(s, hc_mcap_crc32(0, w->chunk.data, w->chunk.len));
    put_str(s, "");
    put_u64(s, w->chunk.len);
    rc = emit_buf(w, s, err);
    if (rc == HC_OK)
        rc = emit(w, w->chunk.data, w->chunk.len, err);
    if (rc != HC_OK)
        return rc;
    chunk_length = w->offset - chunk_start;

    /* one Message Index per channel in the chunk, by channel id, entries by log time */
    index_start = w->offset;
    index_offsets =
        malloc((w->n_chunk_channels ? w->n_chunk_channels : 1) * sizeof(*index_offsets));
    if (!index_offsets)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    qsort(w->chunk_channels, w->n_chunk_channels, sizeof(*w->chunk_channels), compare_ids);
    for (size_t i = 0; i < w->n_chunk_channels && rc == HC_OK; i++) {
        struct channel *c = &w->channels[w->chunk_channels[i] - 1];
        qsort(c->entries, c->n_entries, sizeof(*c->entries), compare_entries);
        index_offsets[i] = w->offset;
        hc__buf_reset(s);
        at = begin_record(s, OP_MESSAGE_INDEX);
        put_u16(s, w->chunk_channels[i]);
        put_u32(s, (uint32_t)(c->n_entries * 16));
        for (size_t k = 0; k < c->n_entries; k++) {
            put_u64(s, c->entries[k].log_time_ns);
            put_u64(s, c->entries[k].offset);
        }
        end_record(s, at);
        rc = emit_buf(w, s, err);
    }
    index_length = w->offset - index_start;

    /* its Chunk Index, kept for the summary */
    at = begin_record(&w->chunk_indexes, OP_CHUNK_INDEX);
    put_u64(&w->chunk_indexes, w->chunk_start_ns);
    put_u64(&w->chunk_indexes, w->chunk_end_ns);
    put_u64(&w->chunk_indexes, chunk_start);
    put_u64(&w->chunk_indexes, chunk_length);
    map_at = w->chunk_indexes.len;
    put_u32(&w->chunk_indexes, 0);
    for (size_t i = 0; i < w->n_chunk_channels; i++) {
        put_u16(&w->chunk_indexes, w->chunk_channels[i]);
        put_u64(&w->chunk_indexes, index_offsets[i]);
    }
    if (!w->chunk_indexes.failed)
        patch_u32(&w->chunk_indexes, map_at, (uint32_t)(w->n_chunk_channels * 10));
    put_u64(&w->chunk_indexes, index_length);
    put_str(&w->chunk_indexes, "");
    put_u64(&w->chunk_indexes, w->chunk.len);
    put_u64(&w->chunk_indexes, w->chunk.len);
    end_record(&w->chunk_indexes, at);
    free(index_offsets);
    if (rc == HC_OK && w->chunk_indexes.failed)
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");

    for (size_t i = 0; i < w->n_chunk_channels; i++)
        w->channels[w->chunk_channels[i] - 1].n_entries = 0;
    w->n_chunk_channels = 0;
    hc__buf_reset(&w->chunk);
    w->chunk_messages = 0;
    w->chunks++;
    return rc;
}

hc_err hc_mcap_write_message(hc_mcap_writer *w, uint16_t channel_id, uint32_t sequence,
                             uint64_t log_time_ns, uint64_t publish_time_ns, const void *data,
                             size_t len, hc_error *err)
{
    struct channel *c;
    size_t at;

    if (channel_id == 0 || channel_id > w->n_channels || (len && !data))
        return hc_error_set(err, HC_ERR_INVALID, "mcap: unknown channel %u", channel_id);
    c = &w->channels[channel_id - 1];
    if (!c->written) {
        hc__buf_add(&w->chunk, c->record.data, c->record.len);
        c->written = true;
    }
    if (c->n_entries == c->cap_entries) {
        size_t cap = c->cap_entries ? c->cap_entries * 2 : 16;
        struct index_entry *grown = realloc(c->entries, cap * sizeof(*grown));
        if (!grown)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        c->entries = grown;
        c->cap_entries = cap;
    }
    if (!c->n_entries)
        w->chunk_channels[w->n_chunk_channels++] = channel_id;
    c->entries[c->n_entries].log_time_ns = log_time_ns;
    c->entries[c->n_entries].offset = w->chunk.len;
    c->n_entries++;
    at = begin_record(&w->chunk, OP_MESSAGE);
    put_u16(&w->chunk, channel_id);
    put_u32(&w->chunk, sequence);
    put_u64(&w->chunk, log_time_ns);
    put_u64(&w->chunk, publish_time_ns);
    hc__buf_add(&w->chunk, data, len);
    end_record(&w->chunk, at);
    if (w->chunk.failed)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (!w->chunk_messages++) {
        w->chunk_start_ns = w->chunk_end_ns = log_time_ns;
    } else {
        if (log_time_ns < w->chunk_start_ns)
            w->chunk_start_ns = log_time_ns;
        if (log_time_ns > w->chunk_end_ns)
            w->chunk_end_ns = log_time_ns;
    }
    if (!w->messages || log_time_ns < w->start_ns)
        w->start_ns = log_time_ns;
    if (!w->messages || log_time_ns > w->end_ns)
        w->end_ns = log_time_ns;
    w->messages++;
    c->messages++;
    if (w->chunk.len >= w->chunk_size)
        return flush_chunk(w, err);
    return HC_OK;
}

/* --- metadata -------------------------------------------------------------------------------- */

hc_err hc_mcap_write_metadata(hc_mcap_writer *w, const char *name, const char *const *keys,
                              const char *const *values, size_t n, hc_error *err)
{
    struct hc__buf *s = &w->scratch;
    uint64_t start;
    size_t at;
    hc_err rc;

    if (!valid_text(name))
        return hc_error_set(err, HC_ERR_INVALID, "mcap: metadata name is not UTF-8");
    for (size_t i = 0; i < n; i++)
        if (!valid_text(keys[i]) || !valid_text(values[i]))
            return hc_error_set(err, HC_ERR_INVALID, "mcap: metadata '%s' is not UTF-8", name);
    rc = flush_chunk(w, err); /* Metadata records live outside chunks */
    if (rc != HC_OK)
        return rc;
    start = w->offset;
    hc__buf_reset(s);
    at = begin_record(s, OP_METADATA);
    put_str(s, name);
    put_string_map(s, keys, values, n);
    end_record(s, at);
    rc = emit_buf(w, s, err);
    if (rc != HC_OK)
        return rc;
    at = begin_record(&w->metadata_indexes, OP_METADATA_INDEX);
    put_u64(&w->metadata_indexes, start);
    put_u64(&w->metadata_indexes, w->offset - start);
    put_str(&w->metadata_indexes, name);
    end_record(&w->metadata_indexes, at);
    w->metadata++;
    if (w->metadata_indexes.failed)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    return HC_OK;
}

/* --- closing --------------------------------------------------------------------------------- */

/* Appends a Summary Offset record for the group [start, start + length) when it is not empty. */
static void put_summary_offset(struct hc__buf *b, unsigned opcode, uint64_t start, uint64_t length)
{
    size_t at;
    if (!length)
        return;
    at = begin_record(b, OP_SUMMARY_OFFSET);
    put_u8(b, opcode);
    put_u64(b, start);
    put_u64(b, length);
    end_record(b, at);
}

static hc_err write_summary(hc_mcap_writer *w, hc_error *err)
{
    struct hc__buf *s = &w->scratch;
    uint64_t summary_start, channels_start, stats_start, chunks_start, meta_start, offsets_start;
    size_t at, map_at;
    hc_err rc = HC_OK;

    /* Data End closes the data section with the CRC of everything before it */
    hc__buf_reset(s);
    at = begin_record(s, OP_DATA_END);
    put_u32(s, w->crc);
    end_record(s, at);
    rc = emit_buf(w, s, err);
    if (rc != HC_OK)
        return rc;

    w->crc = 0;
    summary_start = channels_start = w->offset;
    for (size_t i = 0; i < w->n_channels && rc == HC_OK; i++)
        rc = emit_buf(w, &w->channels[i].record, err);
    stats_start = w->offset;
    hc__buf_reset(s);
    at = begin_record(s, OP_STATISTICS);
    put_u64(s, w->messages);
    put_u16(s, 0); /* schemas */
    put_u32(s, (uint32_t)w->n_channels);
    put_u32(s, 0); /* attachments */
    put_u32(s, w->metadata);
    put_u32(s, w->chunks);
    put_u64(s, w->messages ? w->start_ns : 0);
    put_u64(s, w->messages ? w->end_ns : 0);
    map_at = s->len;
    put_u32(s, 0);
    for (size_t i = 0; i < w->n_channels; i++) {
        put_u16(s, (uint16_t)(i + 1));
        put_u64(s, w->channels[i].messages);
    }
    if (!s->failed)
        patch_u32(s, map_at, (uint32_t)(w->n_channels * 10));
    end_record(s, at);
    if (rc == HC_OK)
        rc = emit_buf(w, s, err);
    chunks_start = w->offset;
    if (rc == HC_OK)
        rc = emit_buf(w, &w->chunk_indexes, err);
    meta_start = w->offset;
    if (rc == HC_OK)
        rc = emit_buf(w, &w->metadata_indexes, err);
    offsets_start = w->offset;
    if (rc != HC_OK)
        return rc;

    hc__buf_reset(s);
    put_summary_offset(s, OP_CHANNEL, channels_start, stats_start - channels_start);
    put_summary_offset(s, OP_STATISTICS, stats_start, chunks_start - stats_start);
    put_summary_offset(s, OP_CHUNK_INDEX, chunks_start, meta_start - chunks_start);
    put_summary_offset(s, OP_METADATA_INDEX, meta_start, offsets_start - meta_start);
    /* the Footer: its CRC covers the summary up to and including summary_offset_start */
    put_u8(s, OP_FOOTER);
    put_u64(s, 8 + 8 + 4);
    put_u64(s, summary_start);
    put_u64(s, offsets_start);
    if (s->failed)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    put_u32(s, hc_mcap_crc32(w->crc, s->data, s->len));
    hc__buf_add(s, MAGIC, sizeof(MAGIC));
    return emit_buf(w, s, err);
}

hc_err hc_mcap_writer_close(hc_mcap_writer *w, hc_error *err)
{
    hc_err rc;

    if (!w)
        return HC_OK;
    rc = flush_chunk(w, err);
    if (rc == HC_OK)
        rc = write_summary(w, err);
    if (rc == HC_OK && fflush(w->out) != 0)
        rc = hc_error_set(err, errno == ENOSPC ? HC_ERR_FULL : HC_ERR_IO, "cannot write mcap: %s",
                          strerror(errno ? errno : EIO));
    hc_mcap_writer_free(w);
    return rc;
}

/*
 * An MCAP writer (MCAP format version 0, mcap.dev/spec), so recordings open in Foxglove Studio,
 * PlotJuggler and anything else that reads MCAP. Schemaless: every channel has schema_id 0 and a
 * message encoding the caller names ("json" for JSON payloads). Messages go into uncompressed
 * chunks, each followed by one Message Index record per channel it holds; closing writes the
 * Data End record, a summary section (Channel records, one Statistics record, Chunk Index and
 * Metadata Index records, each group contiguous), Summary Offset records and the Footer, with
 * every CRC32 the format has (chunk records, data section, summary). Payload bytes are written
 * exactly as given.
 *
 * The writer streams: memory holds one chunk, the channels, one Chunk Index per chunk written
 * so far and the metadata, whatever the number of messages. Times are uint64 nanoseconds since
 * the Unix epoch, as the caller gives them.
 */
#ifndef HCORE_MCAP_H
#define HCORE_MCAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hc_mcap_writer hc_mcap_writer;

/* Default uncompressed size at which a chunk is closed and a new one started. */
#define HC_MCAP_DEFAULT_CHUNK_SIZE (1024 * 1024)

struct hc_mcap_options {
    const char *profile; /* Header profile; NULL: "" (no well-known profile) */
    const char *library; /* Header library, e.g. "hkit 0.1.0"; NULL: "hkit" */
    size_t chunk_size;   /* target uncompressed chunk size in bytes; 0: the default */
};

/*
 * Starts an MCAP file on out (opened for binary writing by the caller, positioned at its start;
 * the writer never seeks, so a pipe works). Writes the magic and the Header. *w_out is owned by
 * the caller: hc_mcap_writer_close, or hc_mcap_writer_free to abandon it. opts may be NULL.
 * The caller keeps out open until then and closes it itself.
 * Returns HC_OK, HC_ERR_NOMEM, HC_ERR_IO.
 */
hc_err hc_mcap_writer_open(FILE *out, const struct hc_mcap_options *opts, hc_mcap_writer **w_out,
                           hc_error *err);

/*
 * The id of the channel (topic, message_encoding), created on first use: its Channel record is
 * written into the current chunk, ahead of the first message on it, and again in the summary.
 * Channel metadata is a list of n_metadata key/value pairs (copied; may be 0). Asking again for
 * an existing (topic, encoding) returns its id and ignores the metadata. Ids count from 1.
 * HC_ERR_INVALID for a NULL or invalid UTF-8 topic or encoding, HC_ERR_FULL after 65535
 * channels (the format's limit), HC_ERR_NOMEM.
 */
hc_err hc_mcap_channel(hc_mcap_writer *w, const char *topic, const char *message_encoding,
                       const char *const *metadata_keys, const char *const *metadata_values,
                       size_t n_metadata, uint16_t *channel_id_out, hc_error *err);

/*
 * Appends one Message record to the current chunk; writes the chunk (and its Message Index
 * records) out when it reaches the chunk size. log_time_ns: when it was recorded (our arrival
 * time); publish_time_ns: when it was published (set it to log_time_ns when unknown); sequence:
 * a per-channel counter (0 when none). data may be NULL when len is 0.
 * Returns HC_OK, HC_ERR_INVALID (unknown channel), HC_ERR_NOMEM, HC_ERR_IO.
 */
hc_err hc_mcap_write_message(hc_mcap_writer *w, uint16_t channel_id, uint32_t sequence,
                             uint64_t log_time_ns, uint64_t publish_time_ns, const void *data,
                             size_t len, hc_error *err);

/*
 * Writes one Metadata record (name, n key/value pairs, all valid UTF-8) in the data section
 * (between chunks) and indexes it in the summary. Returns HC_OK, HC_ERR_INVALID, HC_ERR_NOMEM,
 * HC_ERR_IO.
 */
hc_err hc_mcap_write_metadata(hc_mcap_writer *w, const char *name, const char *const *keys,
                              const char *const *values, size_t n, hc_error *err);

/* Counts so far (closed or not). */
struct hc_mcap_stats {
    uint64_t messages;
    uint32_t channels;
    uint32_t chunks; /* chunks written out so far */
    uint64_t bytes;  /* bytes written to out so far */
};
void hc_mcap_writer_stats(const hc_mcap_writer *w, struct hc_mcap_stats *out);

/*
 * Writes the last chunk, Data End, the summary, the Summary Offset records, the Footer and the
 * closing magic; flushes out; frees w (also on failure). Accepts NULL. Returns HC_OK or
 * HC_ERR_IO / HC_ERR_NOMEM (the file is then incomplete).
 */
hc_err hc_mcap_writer_close(hc_mcap_writer *w, hc_error *err);

/* Frees w without finishing the file (after an error). Accepts NULL. */
void hc_mcap_writer_free(hc_mcap_writer *w);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of len bytes, continuing from crc (0 to start). */
uint32_t hc_mcap_crc32(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif

/*
 * JSON lines: hkit's text form of messages (what hcat exports, hreplay and hverify read, and
 * fixtures are written in), plus import of `mosquitto_sub -F '%j'` captures.
 *
 * One object per line:
 *   {"seq":1,"session":1,"received_at":"2026-02-05T10:30:45.123456789Z",
 *    "session_started_at_ns":1770287400000000000,"mono_ns":45123456789,
 *    "topic":"haltian-iot/events/...","qos":1,"retain":false,"dup":false,
 *    "payload":"{\"measured_at\":...}"}
 * "payload" is the payload as a JSON string when it is valid UTF-8 without NUL bytes; otherwise
 * "payload_b64" holds it in base64. Both round-trip byte for byte. On input, "payload" may also
 * be any other JSON value (handy in hand-written fixtures): its compact form, taken from the
 * line's own text with every token as written, becomes the payload; "\u0000" in a payload
 * string is kept. Only "topic" is required: a non-empty string, valid UTF-8 without U+0000 (as
 * MQTT requires); one that is not is written as "topic_b64", and refused on input. A missing
 * payload is empty. A line nests at most 1000 deep and holds no raw NUL byte; a UTF-8 byte
 * order mark before the first line is skipped.
 */
#ifndef HCORE_JSONL_H
#define HCORE_JSONL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "hcore/error.h"
#include "hcore/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hc_jsonl_reader hc_jsonl_reader;

enum hc_jsonl_format {
    HC_JSONL_HKIT,     /* hkit's own lines */
    HC_JSONL_MOSQUITTO /* mosquitto_sub -F '%j' (or '%J') lines: "tst", "payloadlen" */
};

/* One line read back. msg pointers stay valid until the next hc_jsonl_next call. */
struct hc_jsonl_record {
    struct hc_msg msg;
    bool has_received_at;          /* "received_at" (hkit) or "tst" (mosquitto) was present */
    bool has_session_start;        /* "session_started_at_ns" and "mono_ns" were present */
    int64_t session_started_at_ns; /* CLOCK_REALTIME; valid when has_session_start */
    const cJSON *decoded;          /* the line's "decoded" member, NULL when absent (borrowed) */
    enum hc_jsonl_format format;
    size_t line; /* 1-based line number in the input */
};

/* Opens path ("-" for standard input). *out: hc_jsonl_reader_close. */
hc_err hc_jsonl_reader_open(const char *path, hc_jsonl_reader **out, hc_error *err);

/*
 * Reads the next non-empty line. Returns HC_OK, HC_DONE at the end, or HC_ERR_PARSE with
 * "'<path>' line N: <reason>" for a bad line; the reader stays usable, so the caller decides
 * whether to skip it. A mosquitto line whose payload was cut at a NUL byte by mosquitto_sub
 * (payloadlen larger than the text) is an error: the bytes are gone.
 */
hc_err hc_jsonl_next(hc_jsonl_reader *r, struct hc_jsonl_record *rec, hc_error *err);

/*
 * Sets hook(ctx) to be called each time the reader is about to block for more input: it holds no
 * complete line and poll() says nothing is ready on the descriptor (a pipe or terminal that
 * trickles). A regular file never blocks, so the hook is never called for one. Lets a caller
 * flush work it batched (hreplay's pending publishes) instead of holding it while input waits.
 * The hook must not call the reader. NULL removes it.
 */
void hc_jsonl_reader_set_wait_hook(hc_jsonl_reader *r, void (*hook)(void *ctx), void *ctx);

/*
 * Turns the fast path on (the default) or off. On, hkit's own lines are read in one pass with no
 * tree; any line outside that strict shape (mosquitto lines, "decoded", "payload_b64", unusual
 * escapes or numbers, unknown keys...) is parsed by cJSON as when it is off. Both give the same
 * records and errors; off exists so tests and fuzzers can compare them.
 */
void hc_jsonl_reader_set_fast_path(hc_jsonl_reader *r, bool on);

/* Accepts NULL. */
void hc_jsonl_reader_close(hc_jsonl_reader *r);

/*
 * Writes msg as one line (with '\n') to fp. Fields that are 0 (seq, session) are omitted; when
 * msg->session_id is set, session_started_at_ns = timeline_ns - mono_ns is written so replay
 * timing survives. decoded (may be NULL) is added as "decoded". HC_ERR_IO when fp fails,
 * HC_ERR_NOMEM. Builds the line in buffers of its own, freed before it returns: a caller
 * writing many lines keeps them in an hc_jsonl_writer instead.
 */
hc_err hc_jsonl_write(FILE *fp, const struct hc_msg *msg, const cJSON *decoded, hc_error *err);

/* Buffers reused from line to line (no allocation per line once warm). One per thread. */
typedef struct hc_jsonl_writer hc_jsonl_writer;

/* *out: hc_jsonl_writer_free. HC_ERR_NOMEM. */
hc_err hc_jsonl_writer_new(hc_jsonl_writer **out, hc_error *err);
/* As hc_jsonl_write, with w's buffers. */
hc_err hc_jsonl_writer_write(hc_jsonl_writer *w, FILE *fp, const struct hc_msg *msg,
                             const cJSON *decoded, hc_error *err);
/* Accepts NULL. */
void hc_jsonl_writer_free(hc_jsonl_writer *w);

#ifdef __cplusplus
}
#endif
#endif

/*
 * libFuzzer target for the JSON lines reader. The input is written to a temporary file (the
 * reader takes a path) and read twice, with the fast path on and off: line by line the two
 * readers must agree exactly (return code, error message, every field of the record), since the
 * fast path may only ever decline a line, never read it differently. Every line that reads back
 * is also written again with hc_jsonl_write and read a second time, which must give the same
 * topic, payload bytes, times and flags: whatever hkit accepts, it can export without loss.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcore/jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char in_path[64], out_path[64];

static void check(int cond)
{
    if (!cond)
        __builtin_trap();
}

static void make_paths(void)
{
    int fd;
    if (in_path[0])
        return;
    snprintf(in_path, sizeof(in_path), "/tmp/fuzz-jsonl-in-XXXXXX");
    snprintf(out_path, sizeof(out_path), "/tmp/fuzz-jsonl-out-XXXXXX");
    fd = mkstemp(in_path);
    check(fd >= 0);
    close(fd);
    fd = mkstemp(out_path);
    check(fd >= 0);
    close(fd);
}

static void rewrite_and_compare(const struct hc_jsonl_record *rec)
{
    struct hc_jsonl_record back;
    hc_jsonl_reader *r = NULL;
    FILE *f = fopen(out_path, "wb");

    check(f != NULL);
    check(hc_jsonl_write(f, &rec->msg, NULL, NULL) == HC_OK);
    fclose(f);
    check(hc_jsonl_reader_open(out_path, &r, NULL) == HC_OK);
    check(hc_jsonl_next(r, &back, NULL) == HC_OK);
    check(strcmp(back.msg.topic, rec->msg.topic) == 0);
    check(back.msg.payload_len == rec->msg.payload_len);
    check(rec->msg.payload_len == 0 ||
          memcmp(back.msg.payload, rec->msg.payload, rec->msg.payload_len) == 0);
    check(back.msg.qos == rec->msg.qos);
    check(back.msg.retain == rec->msg.retain && back.msg.dup == rec->msg.dup);
    /* 0 means "no time" and is not written; every positive int64 ns is before year 2263 */
    if (rec->msg.received_at_ns > 0)
        check(back.msg.received_at_ns == rec->msg.received_at_ns);
    if (rec->msg.session_id > 0 && rec->has_session_start) {
        check(back.msg.session_id == rec->msg.session_id);
        check(back.msg.mono_ns == rec->msg.mono_ns);
        check(back.msg.timeline_ns == rec->msg.timeline_ns);
    }
    hc_jsonl_reader_close(r);
}

/* The fast path's record against the cJSON path's, field by field. */
static void compare_records(const struct hc_jsonl_record *a, const struct hc_jsonl_record *b)
{
    check(strcmp(a->msg.topic, b->msg.topic) == 0);
    check(a->msg.payload_len == b->msg.payload_len);
    check(a->msg.payload_len == 0 ||
          memcmp(a->msg.payload, b->msg.payload, a->msg.payload_len) == 0);
    check(a->msg.qos == b->msg.qos);
    check(a->msg.retain == b->msg.retain && a->msg.dup == b->msg.dup);
    check(a->msg.seq == b->msg.seq && a->msg.session_id == b->msg.session_id);
    check(a->msg.received_at_ns == b->msg.received_at_ns);
    check(a->msg.mono_ns == b->msg.mono_ns && a->msg.timeline_ns == b->msg.timeline_ns);
    check(a->has_received_at == b->has_received_at);
    check(a->has_session_start == b->has_session_start);
    check(a->session_started_at_ns == b->session_started_at_ns);
    check((a->decoded == NULL) == (b->decoded == NULL));
    check(a->format == b->format && a->line == b->line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hc_jsonl_record fast_rec, slow_rec;
    hc_jsonl_reader *fast = NULL, *slow = NULL;
    hc_error fast_err = HC_ERROR_INIT, slow_err = HC_ERROR_INIT;
    hc_err rc, slow_rc;
    FILE *f;
    int lines = 0;

    make_paths();
    f = fopen(in_path, "wb");
    check(f != NULL);
    if (size)
        check(fwrite(data, 1, size, f) == size);
    fclose(f);
    check(hc_jsonl_reader_open(in_path, &fast, NULL) == HC_OK);
    check(hc_jsonl_reader_open(in_path, &slow, NULL) == HC_OK);
    hc_jsonl_reader_set_fast_path(slow, false);
    while ((rc = hc_jsonl_next(fast, &fast_rec, &fast_err)) != HC_DONE && lines++ < 1000) {
        slow_rc = hc_jsonl_next(slow, &slow_rec, &slow_err);
        check(rc == slow_rc);
        check(rc == HC_OK || rc == HC_ERR_PARSE || rc == HC_ERR_NOMEM);
        if (rc == HC_OK) {
            compare_records(&fast_rec, &slow_rec);
            rewrite_and_compare(&fast_rec);
        } else {
            check(strcmp(fast_err.message, slow_err.message) == 0);
        }
    }
    if (rc == HC_DONE)
        check(hc_jsonl_next(slow, &slow_rec, &slow_err) == HC_DONE);
    hc_jsonl_reader_close(fast);
    hc_jsonl_reader_close(slow);
    return 0;
}

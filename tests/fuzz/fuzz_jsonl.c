/*
 * libFuzzer target for the JSON lines reader. The input is written to a temporary file (the
 * reader takes a path) and read line by line; every line that reads back is written again with
 * hc_jsonl_write and read a second time, which must give the same topic, payload bytes, times
 * and flags. Besides ASan/UBSan cleanliness this checks that whatever hkit accepts, it can also
 * export without loss.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hc_jsonl_record rec;
    hc_jsonl_reader *r = NULL;
    hc_err rc;
    FILE *f;
    int lines = 0;

    make_paths();
    f = fopen(in_path, "wb");
    check(f != NULL);
    if (size)
        check(fwrite(data, 1, size, f) == size);
    fclose(f);
    check(hc_jsonl_reader_open(in_path, &r, NULL) == HC_OK);
    while ((rc = hc_jsonl_next(r, &rec, NULL)) != HC_DONE && lines++ < 1000) {
        check(rc == HC_OK || rc == HC_ERR_PARSE || rc == HC_ERR_NOMEM);
        if (rc == HC_OK)
            rewrite_and_compare(&rec);
    }
    hc_jsonl_reader_close(r);
    return 0;
}

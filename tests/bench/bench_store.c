/*
 * Benchmark of the recording store: appends N Haltian-sized messages (161-byte topics from 1000
 * devices times 4 measurement types, 59-byte JSON payloads) through hc_store_append, decoded
 * index columns included, and reports messages per second (wall clock, and per CPU second, which
 * moves less with a busy neighbour), the file size per message, the rate of a full read through
 * hc_store_query + hc_cursor_next, and how long hc_store_index takes afterwards. Topics and
 * payloads are made before the clock starts (a recorder gets them from the network). The
 * decoder's full index pass (hc_decode_index) is timed on its own for comparison: the store runs
 * only its payload half per message, the topic half once per topic.
 *
 * usage: bench_store [-n messages] [-o file.db] [-b batch_rows] [-i] [-k] [-w]
 *   -i  build the secondary indexes before writing, so appends maintain them
 *   -k  keep the file
 *   -w  writes only (no decoder pass, read or index build): for profiling the append path
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hcore/decode.h"
#include "hcore/store.h"

#define N_DEVICES 1000
#define N_TYPES 4
#define N_PAYLOADS 1000

static const char *const types[N_TYPES] = {"ambientTemperature", "humidity", "co2",
                                           "barometricPressure"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process (user and system): on a shared machine it moves far less with the
 * neighbours' load than the wall clock does. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int parse_long(const char *opt, const char *s, long min, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        fprintf(stderr, "bench_store: invalid value for %s: '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* The device part is padded so that the ambientTemperature topics are 161 bytes, as measured. */
static void make_topic(char *buf, size_t size, long i)
{
    snprintf(buf, size,
             "haltian-iot/events/4c0a2f8e-1d2b-4b7a-9c51-3e2f7a9d0b11/"
             "a61f0c3d-77e4-4f0e-8a2b-59d1c6e4f203/measurements/%s/"
             "0d9e5b7c-2a41-4c8f-b6e3-%012ld",
             types[(i / N_DEVICES) % N_TYPES], i % N_DEVICES);
}

static void make_payload(char *buf, size_t size, long i)
{
    /* 59 bytes: {"measured_at":"2026-02-05T10:30:45.123Z","value":1013.250} */
    snprintf(buf, size, "{\"measured_at\":\"2026-02-05T10:%02ld:%02ld.%03ldZ\",\"value\":%8.3f}",
             (i / 60000) % 60, (i / 1000) % 60, i % 1000, 900.0 + (double)(i % 1000) * 0.125);
}

/* Reads every message back in arrival order, touching each byte as a consumer would. */
static int scan_all(const char *path, long expect, double *seconds, hc_error *err)
{
    hc_store *st = NULL;
    hc_cursor *cur = NULL;
    struct hc_msg m;
    struct hc_select all = {0};
    unsigned long sum = 0;
    long rows = 0;
    double t0 = now_s();
    hc_err code;

    if ((code = hc_store_open(path, HC_STORE_READ, &st, err)) != HC_OK ||
        (code = hc_store_query(st, &all, &cur, err)) != HC_OK)
        goto out;
    while ((code = hc_cursor_next(cur, &m, err)) == HC_OK) {
        sum += (unsigned long)m.topic[0] + m.payload_len + (unsigned long)m.seq;
        rows++;
    }
    if (code == HC_DONE)
        code = HC_OK;
    *seconds = now_s() - t0;
    if (code == HC_OK && rows != expect) {
        fprintf(stderr, "bench_store: read %ld messages, expected %ld\n", rows, expect);
        code = HC_ERR_CORRUPT;
    }
out:
    hc_cursor_free(cur);
    hc_store_close(st, NULL);
    return code == HC_OK && sum ? 0 : -1;
}

int main(int argc, char **argv)
{
    long n = 1000000, batch_rows = 0;
    const char *path = NULL;
    char default_path[512];
    static char topics[N_TYPES * N_DEVICES][192], payloads[N_PAYLOADS][80];
    static size_t payload_lens[N_PAYLOADS];
    int keep = 0, indexed = 0, writes_only = 0, opt, status = 1;
    hc_error err = HC_ERROR_INIT;
    hc_store *st = NULL;
    struct hc_decode_index idx;
    struct hc_msg m = {0};
    struct stat sb;
    off_t size_before_index;
    int64_t session = 0, mono0;
    double t0, c0, t_decode = 0, t_store, c_store, t_scan = 0, t_index = 0;
    volatile int sink = 0;

    while ((opt = getopt(argc, argv, "n:o:b:ikw")) != -1) {
        switch (opt) {
        case 'n':
            if (parse_long("-n", optarg, 1, &n))
                return 2;
            break;
        case 'o':
            path = optarg;
            break;
        case 'b':
            if (parse_long("-b", optarg, 1, &batch_rows))
                return 2;
            break;
        case 'i':
            indexed = 1;
            break;
        case 'k':
            keep = 1;
            break;
        case 'w':
            writes_only = 1;
            break;
        default:
            fprintf(stderr, "usage: bench_store [-n messages] [-o file.db] [-b batch_rows] [-i] "
                            "[-k] [-w]\n");
            return 2;
        }
    }
    if (!path) {
        const char *tmp = getenv("TMPDIR");
        snprintf(default_path, sizeof(default_path), "%s/bench_store-%ld.db",
                 tmp && *tmp ? tmp : "/tmp", (long)getpid());
        path = default_path;
    }
    for (long i = 0; i < N_TYPES * N_DEVICES; i++)
        make_topic(topics[i], sizeof(topics[i]), i);
    for (long i = 0; i < N_PAYLOADS; i++) {
        make_payload(payloads[i], sizeof(payloads[i]), i * 7919);
        payload_lens[i] = strlen(payloads[i]);
    }
    printf("messages: %ld, topic %zu bytes, payload %zu bytes, %d devices x %d types\n", n,
           strlen(topics[0]), payload_lens[0], N_DEVICES, N_TYPES);

    if (!writes_only) {
        t0 = now_s();
        for (long i = 0; i < n; i++) {
            const char *p = payloads[i % N_PAYLOADS];
            hc_decode_index(topics[i % (N_TYPES * N_DEVICES)], (const unsigned char *)p,
                            payload_lens[i % N_PAYLOADS], &idx);
            sink += idx.has_error;
        }
        t_decode = now_s() - t0;
    }

    if (hc_store_open(path, HC_STORE_FORCE, &st, &err) != HC_OK ||
        (batch_rows && (hc_store_set_batch_rows(st, batch_rows), 0)) ||
        (indexed && hc_store_index(st, &err) != HC_OK) ||
        hc_store_session_begin(st, realtime_ns(), 0, &session, &err) != HC_OK) {
        fprintf(stderr, "bench_store: %s\n", err.message);
        goto out;
    }
    mono0 = realtime_ns();
    t0 = now_s();
    c0 = cpu_s();
    for (long i = 0; i < n; i++) {
        m.session_id = session;
        m.received_at_ns = mono0 + i * 1000;
        m.mono_ns = i * 1000;
        m.topic = topics[i % (N_TYPES * N_DEVICES)];
        m.payload = (const unsigned char *)payloads[i % N_PAYLOADS];
        m.payload_len = payload_lens[i % N_PAYLOADS];
        if (hc_store_append(st, &m, NULL, &err) != HC_OK) {
            fprintf(stderr, "bench_store: %s\n", err.message);
            goto out;
        }
    }
    if (hc_store_close(st, &err) != HC_OK) {
        st = NULL;
        fprintf(stderr, "bench_store: %s\n", err.message);
        goto out;
    }
    st = NULL;
    t_store = now_s() - t0;
    c_store = cpu_s() - c0;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "bench_store: cannot stat '%s': %s\n", path, strerror(errno));
        goto out;
    }
    size_before_index = sb.st_size;
    if (!writes_only && scan_all(path, n, &t_scan, &err) != 0) {
        fprintf(stderr, "bench_store: full read failed: %s\n", err.message);
        goto out;
    }
    if (!indexed && !writes_only) {
        t0 = now_s();
        if (hc_store_open(path, HC_STORE_APPEND, &st, &err) != HC_OK ||
            hc_store_index(st, &err) != HC_OK || hc_store_close(st, &err) != HC_OK) {
            fprintf(stderr, "bench_store: %s\n", err.message);
            goto out;
        }
        st = NULL;
        t_index = now_s() - t0;
        if (stat(path, &sb) != 0) {
            fprintf(stderr, "bench_store: cannot stat '%s': %s\n", path, strerror(errno));
            goto out;
        }
    }
    if (!writes_only)
        printf(
            "decoder full pass:   %10.0f msg/s (%.3f s, hc_decode_index alone, for comparison)\n",
            (double)n / t_decode, t_decode);
    printf("store append+close:  %10.0f msg/s (%.3f s, decoded columns included, %s)\n",
           (double)n / t_store, t_store,
           indexed ? "secondary indexes maintained" : "no secondary indexes");
    printf("store append CPU:    %10.0f msg/s (%.3f s of CPU time, user and system)\n",
           (double)n / c_store, c_store);
    printf("file size:           %10.1f MiB (%.1f bytes/message)\n",
           (double)size_before_index / (1024.0 * 1024.0), (double)size_before_index / (double)n);
    if (!writes_only)
        printf("full read:           %10.0f msg/s (%.3f s, hc_store_query + hc_cursor_next)\n",
               (double)n / t_scan, t_scan);
    if (!indexed && !writes_only)
        printf("hc_store_index:      %10.3f s afterwards, file then %.1f MiB\n", t_index,
               (double)sb.st_size / (1024.0 * 1024.0));
    status = 0;
out:
    hc_store_close(st, NULL);
    if (!keep) {
        char side[600];
        unlink(path);
        snprintf(side, sizeof(side), "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", path);
        unlink(side);
    }
    (void)sink;
    return status;
}

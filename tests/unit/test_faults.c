/*
 * Unit tests for hcore/faults.h: the spec parser's errors, each kind's effect on a stream of
 * messages, determinism (same seed, same output; another seed, another), and the log line.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/faults.h"

#define SEC 1000000000LL

static void parse_fails(const char *spec, const char *message)
{
    hc_faults *f = NULL;
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_faults_parse(spec, &f, &err), HC_ERR_INVALID, "%s", spec);
    cr_assert_null(f);
    cr_assert_str_eq(err.message, message);
}

Test(faults, parser_names_the_item_and_the_reason)
{
    parse_fails("", "empty fault spec (e.g. 'drop=0.01,dup=0.02')");
    parse_fails("drop=2", "'drop=2': probability must be between 0 and 1, got '2'");
    parse_fails("drop=-0.1", "'drop=-0.1': probability must be between 0 and 1, got '-0.1'");
    parse_fails("drop=nan", "'drop=nan': probability must be between 0 and 1, got 'nan'");
    parse_fails("lose=0.1", "'lose=0.1': unknown kind 'lose' (drop, dup, redeliver, reorder, "
                            "delay, stale, future, skew, corrupt, disconnect, retain, backlog)");
    parse_fails("drop", "'drop': expected KIND=VALUE");
    parse_fails("drop=0.1,drop=0.2", "'drop=0.2': drop is given twice");
    parse_fails("drop=0.1,", "empty item (two commas, or a comma at an end)");
    parse_fails("delay=0.1", "'delay=0.1': missing :by=DURATION");
    parse_fails("delay=0.1:by=5", "'delay=0.1:by=5': invalid duration '5' for by: missing unit "
                                  "(use us, ms, s, m, h or d)");
    parse_fails("reorder=0.1:window=0", "'reorder=0.1:window=0': window must be a count from 1 "
                                        "to 1000000");
    parse_fails("reorder=0.1:scope=room", "'reorder=0.1:scope=room': scope must be device or all");
    parse_fails("dup=0.1:by=1s", "'dup=0.1:by=1s': unknown key 'by' for dup");
    parse_fails("drop=0.1:burst=0.5", "'drop=0.1:burst=0.5': burst must be a mean length of at "
                                      "least 1");
    parse_fails("disconnect=every", "'disconnect=every': expected every:DURATION");
    parse_fails("skew=0.1", "'skew=0.1': invalid duration '0.1' for skew: missing unit (use us, "
                            "ms, s, m, h or d)");
    parse_fails("backlog=0.1:hold=0", "'backlog=0.1:hold=0': hold must be above 0");
    parse_fails("dup=0.1:after", "'dup=0.1:after': expected key=value after ':', got 'after'");
}

Test(faults, parser_accepts_every_kind_and_gives_the_canonical_spec)
{
    hc_faults *f = NULL;
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_faults_parse("backlog=0.01:hold=10s,drop=0.1:burst=3,dup=0.05:after=2,"
                                 "redeliver=0.1,reorder=0.2:window=3:scope=device,delay=0.1:by=2s,"
                                 "stale=0.1:by=1h,future=0.1:by=1d,skew=5m,corrupt=0.01,"
                                 "disconnect=every:30s,retain=0.01",
                                 &f, &err),
                 HC_OK, "%s", err.message);
    for (int k = 0; k < HC_FAULT__COUNT; k++)
        cr_assert(hc_faults_has(f, (enum hc_fault_kind)k));
    cr_assert_str_eq(hc_faults_spec(f),
                     "drop=0.1:burst=3,dup=0.05:after=2,redeliver=0.1,reorder=0.2:window=3:scope="
                     "device,delay=0.1:by=2s,stale=0.1:by=1h,future=0.1:by=1d,skew=5m,corrupt=0.01,"
                     "disconnect=every:30s,retain=0.01,backlog=0.01:hold=10s");
    hc_faults_free(f);
}

/* --- streams -----------------------------------------------------------------------------------
 */

#define N_DEV 4
static char topics[N_DEV][96];
static char payloads[1000][96];

static struct hc_msg make_msg(int i, int qos)
{
    struct hc_msg m;
    memset(&m, 0, sizeof(m));
    snprintf(topics[i % N_DEV], sizeof(topics[0]), "haltian-iot/events/i/k/measurements/co2/dev-%d",
             i % N_DEV);
    snprintf(payloads[i], sizeof(payloads[0]),
             "{\"measured_at\":\"2026-02-05T10:%02d:%02d.000Z\",\"value\":%d}", i / 60, i % 60, i);
    m.topic = topics[i % N_DEV];
    m.payload = (const unsigned char *)payloads[i];
    m.payload_len = strlen(payloads[i]);
    m.timeline_ns = (int64_t)i * SEC;
    m.qos = qos;
    return m;
}

/* One output as text: "seq kind-bits copy payload". */
struct run {
    char lines[4000][200];
    int n;
};

static void run_stream(const char *spec, uint64_t seed, int n, struct run *out)
{
    hc_faults *f = NULL;
    hc_faults_stream *s = NULL;
    hc_error err = HC_ERROR_INIT;
    struct hc_faults_out o;

    cr_assert_eq(hc_faults_parse(spec, &f, &err), HC_OK, "%s", err.message);
    struct hc_faults_stream_options so = {f, seed, -1, NULL, NULL};
    cr_assert_eq(hc_faults_stream_new(&so, &s, &err), HC_OK);
    out->n = 0;
    for (int i = 0; i <= n; i++) {
        struct hc_msg m;
        if (i < n) {
            m = make_msg(i, 1);
            cr_assert_eq(hc_faults_push(s, &m, &err), HC_OK);
        } else {
            cr_assert_eq(hc_faults_finish(s, &err), HC_OK);
        }
        while (hc_faults_pop(s, &o)) {
            cr_assert_lt(out->n, 4000);
            snprintf(out->lines[out->n++], sizeof(out->lines[0]), "%llu %x %d %s %.*s",
                     (unsigned long long)o.seq, o.applied, o.copy, o.msg.topic + 40,
                     (int)o.msg.payload_len, (const char *)o.msg.payload);
        }
    }
    cr_assert_eq(hc_faults_held(s), 0);
    hc_faults_stream_free(s);
    hc_faults_free(f);
}

static struct run a, b;

static int count_kind(const struct run *r, enum hc_fault_kind k)
{
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        unsigned bits;
        sscanf(r->lines[i], "%*s %x", &bits);
        n += (bits & HC_FAULT_BIT(k)) != 0;
    }
    return n;
}

Test(faults, same_seed_same_stream_other_seed_other_stream)
{
    const char *spec = "drop=0.1:burst=2,dup=0.1:after=3,reorder=0.1:window=4,delay=0.05:by=3s,"
                       "stale=0.1:by=1h,corrupt=0.1,retain=0.1,backlog=0.02:hold=5s";
    bool differ = false;
    run_stream(spec, 42, 1000, &a);
    run_stream(spec, 42, 1000, &b);
    cr_assert_eq(a.n, b.n);
    for (int i = 0; i < a.n; i++)
        cr_assert_str_eq(a.lines[i], b.lines[i]);
    run_stream(spec, 43, 1000, &b);
    for (int i = 0; i < a.n && i < b.n && !differ; i++)
        differ = strcmp(a.lines[i], b.lines[i]) != 0;
    cr_assert(differ || a.n != b.n);
}

Test(faults, a_spec_that_never_fires_passes_every_message_through_in_order)
{
    run_stream("drop=0,dup=0,reorder=0:window=3,delay=0:by=1s,corrupt=0", 1, 100, &a);
    cr_assert_eq(a.n, 100);
    for (int i = 0; i < 100; i++) {
        unsigned long long seq;
        unsigned bits;
        sscanf(a.lines[i], "%llu %x", &seq, &bits);
        cr_assert_eq(seq, (unsigned long long)i + 1);
        cr_assert_eq(bits, 0);
    }
}

Test(faults, drop_rate_and_bursts_follow_the_parameters)
{
    int dropped, bursts = 0, prev = 0;
    run_stream("drop=0.2:burst=4", 9, 1000, &a);
    dropped = count_kind(&a, HC_FAULT_DROP);
    cr_assert(dropped > 120 && dropped < 280, "dropped %d of 1000", dropped);
    for (int i = 0; i < a.n; i++) {
        unsigned bits;
        sscanf(a.lines[i], "%*s %x", &bits);
        int d = (bits & HC_FAULT_BIT(HC_FAULT_DROP)) != 0;
        bursts += d && !prev;
        prev = d;
    }
    /* mean burst length near 4 */
    cr_assert(dropped / bursts >= 2 && dropped / bursts <= 8, "%d drops in %d bursts", dropped,
              bursts);
}

Test(faults, dup_copy_follows_after_n_further_messages)
{
    run_stream("dup=1:after=2", 1, 4, &a);
    /* originals 1 2 3 4, each copy two originals later (the last ones at the end) */
    const char *want[] = {"1 ", "2 ", "3 ", "1 ", "4 ", "2 ", "3 ", "4 "};
    cr_assert_eq(a.n, 8);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(strncmp(a.lines[i], want[i], 2), 0, "%d: %s", i, a.lines[i]);
    cr_assert_eq(count_kind(&a, HC_FAULT_DUP), 4);
}

Test(faults, reorder_swaps_within_the_window)
{
    unsigned long long seq[200];
    run_stream("reorder=0.1:window=3", 5, 200, &a);
    cr_assert_eq(a.n, 200);
    for (int i = 0; i < 200; i++)
        sscanf(a.lines[i], "%llu", &seq[i]);
    for (int i = 0; i < 200; i++) {
        unsigned bits;
        sscanf(a.lines[i], "%*s %x", &bits);
        if (bits & HC_FAULT_BIT(HC_FAULT_REORDER)) {
            /* the chosen message lands where its partner was, at most 3 later */
            cr_assert(seq[i] < (unsigned long long)i + 1 &&
                      (unsigned long long)i + 1 - seq[i] <= 3);
        }
    }
    cr_assert_gt(count_kind(&a, HC_FAULT_REORDER), 5);
}

Test(faults, reorder_scope_device_keeps_other_devices_in_order)
{
    run_stream("reorder=0.2:window=2:scope=device", 3, 400, &a);
    cr_assert_eq(a.n, 400);
    cr_assert_gt(count_kind(&a, HC_FAULT_REORDER), 10);
    /* a swap within one device: every device still gets all of its messages */
    for (int d = 0; d < N_DEV; d++) {
        int n = 0;
        char dev[16];
        snprintf(dev, sizeof(dev), "dev-%d ", d);
        for (int i = 0; i < a.n; i++)
            n += strstr(a.lines[i], dev) != NULL;
        cr_assert_eq(n, 100);
    }
}

Test(faults, stale_moves_measured_at_back_by_the_duration)
{
    run_stream("stale=1:by=1h", 1, 1, &a);
    cr_assert_str_eq(a.lines[0], "1 20 0 dev-0 {\"measured_at\":\"2026-02-05T09:00:00.000Z\","
                                 "\"value\":0}");
    run_stream("future=1:by=2d", 1, 1, &a);
    cr_assert_str_eq(a.lines[0], "1 40 0 dev-0 {\"measured_at\":\"2026-02-07T10:00:00.000Z\","
                                 "\"value\":0}");
}

Test(faults, skew_gives_each_device_one_offset_within_the_bound)
{
    long offset[N_DEV];
    bool some_nonzero = false;
    run_stream("skew=10m", 4, 40, &a);
    cr_assert_eq(a.n, 40);
    for (int i = 0; i < a.n; i++) {
        int h, mi, se, ms;
        const char *p = strstr(a.lines[i], "T");
        cr_assert_not_null(p);
        cr_assert_eq(sscanf(p, "T%d:%d:%d.%dZ", &h, &mi, &se, &ms), 4);
        long off = ((long)((h - 10) * 3600 + mi * 60 + se)) * 1000 + ms - (long)i * 1000;
        cr_assert(off >= -600000 && off <= 600000, "offset %ld", off);
        if (i < N_DEV)
            offset[i] = off;
        else
            cr_assert_eq(off, offset[i % N_DEV], "device %d keeps its offset", i % N_DEV);
        some_nonzero |= off != 0;
    }
    cr_assert(some_nonzero);
}

Test(faults, corrupt_breaks_each_payload_in_a_way_the_seed_picks)
{
    bool seen[HC_CORRUPT__COUNT] = {0};
    hc_faults *f = NULL;
    hc_faults_stream *s = NULL;
    hc_error err = HC_ERROR_INIT;
    struct hc_faults_out o;

    cr_assert_eq(hc_faults_parse("corrupt=1", &f, &err), HC_OK);
    struct hc_faults_stream_options so = {f, 11, -1, NULL, NULL};
    cr_assert_eq(hc_faults_stream_new(&so, &s, &err), HC_OK);
    for (int i = 0; i < 100; i++) {
        struct hc_msg m = make_msg(i, 0);
        cr_assert_eq(hc_faults_push(s, &m, &err), HC_OK);
        cr_assert(hc_faults_pop(s, &o));
        cr_assert(o.applied & HC_FAULT_BIT(HC_FAULT_CORRUPT));
        cr_assert(o.msg.payload_len != m.payload_len ||
                  memcmp(o.msg.payload, m.payload, m.payload_len) != 0);
        seen[o.corruption] = true;
    }
    for (int k = 0; k < HC_CORRUPT__COUNT; k++)
        cr_assert(seen[k], "%s never chosen",
                  hc_faults_corruption_name((enum hc_faults_corruption)k));
    hc_faults_stream_free(s);
    hc_faults_free(f);
}

Test(faults, delay_lets_later_messages_overtake)
{
    run_stream("delay=1:by=2500ms", 1, 4, &a);
    /* every message held 2.5 s: each leaves before the input 3 s after it */
    cr_assert_eq(a.n, 4);
    for (int i = 0; i < 4; i++) {
        unsigned long long seq;
        sscanf(a.lines[i], "%llu", &seq);
        cr_assert_eq(seq, (unsigned long long)i + 1);
    }
}

Test(faults, backlog_holds_a_device_then_releases_all_at_once_in_order)
{
    hc_faults *f = NULL;
    hc_faults_stream *s = NULL;
    hc_error err = HC_ERROR_INIT;
    struct hc_faults_out o;
    uint64_t order[64];
    int n = 0;

    cr_assert_eq(hc_faults_parse("backlog=1:hold=6s", &f, &err), HC_OK);
    struct hc_faults_stream_options so = {f, 1, -1, NULL, NULL};
    cr_assert_eq(hc_faults_stream_new(&so, &s, &err), HC_OK);
    for (int i = 0; i < 12; i++) {
        struct hc_msg m = make_msg(i, 0);
        cr_assert_eq(hc_faults_push(s, &m, &err), HC_OK);
        while (hc_faults_pop(s, &o))
            order[n++] = o.seq;
    }
    cr_assert_eq(hc_faults_finish(s, &err), HC_OK);
    while (hc_faults_pop(s, &o))
        order[n++] = o.seq;
    cr_assert_eq(n, 12);
    /* dev-0 (inputs 1 and 5, t = 0 s and 4 s) is silent until 6 s: both go out together when
     * input 7 (t = 6 s) comes, first of all */
    cr_assert_eq(order[0], 1);
    cr_assert_eq(order[1], 5);
    /* every input once, and each device's messages in input order */
    for (int d = 0; d < N_DEV; d++) {
        uint64_t last = 0;
        for (int i = 0; i < n; i++)
            if ((order[i] - 1) % N_DEV == (uint64_t)d) {
                cr_assert_gt(order[i], last);
                last = order[i];
            }
    }
    hc_faults_stream_free(s);
    hc_faults_free(f);
}

Test(faults, redeliver_only_fires_at_qos_1_or_2)
{
    hc_faults *f = NULL;
    hc_faults_stream *s = NULL;
    hc_error err = HC_ERROR_INIT;
    struct hc_faults_out o;

    cr_assert_eq(hc_faults_parse("redeliver=1", &f, &err), HC_OK);
    struct hc_faults_stream_options so = {f, 1, 0, NULL, NULL}; /* sent at QoS 0 */
    cr_assert_eq(hc_faults_stream_new(&so, &s, &err), HC_OK);
    struct hc_msg m = make_msg(0, 1);
    cr_assert_eq(hc_faults_push(s, &m, &err), HC_OK);
    cr_assert(hc_faults_pop(s, &o));
    cr_assert_eq(o.applied, 0);
    hc_faults_stream_free(s);
    so.qos = -1;
    cr_assert_eq(hc_faults_stream_new(&so, &s, &err), HC_OK);
    cr_assert_eq(hc_faults_push(s, &m, &err), HC_OK);
    cr_assert(hc_faults_pop(s, &o));
    cr_assert_eq(o.applied, HC_FAULT_BIT(HC_FAULT_REDELIVER));
    hc_faults_stream_free(s);
    hc_faults_free(f);
}

Test(faults, event_json_names_seq_kind_position_and_bytes)
{
    hc_faults *f = NULL;
    hc_faults_stream *s = NULL;
    hc_error err = HC_ERROR_INIT;
    struct hc_faults_out o;
    char *line;

    cr_assert_eq(hc_faults_parse("stale=1:by=1s", &f, &err), HC_OK);
    struct hc_faults_stream_options so = {f, 1, -1, NULL, NULL};
    cr_assert_eq(hc_faults_stream_new(&so, &s, &err), HC_OK);
    struct hc_msg m = make_msg(0, 0);
    m.payload = (const unsigned char *)"{\"measured_at\":\"2026-02-05T10:00:00Z\"}";
    m.payload_len = strlen((const char *)m.payload);
    cr_assert_eq(hc_faults_push(s, &m, &err), HC_OK);
    cr_assert(hc_faults_pop(s, &o));
    struct hc_faults_event ev = {&o, HC_FAULT_STALE, "t/x", 7, 0, false};
    line = hc_faults_event_json(&ev);
    cr_assert_str_eq(
        line, "{\"seq\":1,\"kind\":\"stale\",\"topic\":\"t/x\",\"by_ns\":1000000000,"
              "\"position\":7,\"field\":\"measured_at\",\"before\":\"2026-02-05T10:00:00Z\","
              "\"after\":\"2026-02-05T09:59:59Z\",\"changed\":1,\"length_before\":38,"
              "\"payload_hex\":\"7b226d656173757265645f6174223a22323032362d30322d30355430393a"
              "35393a35395a227d\"}");
    free(line);
    hc_faults_stream_free(s);
    hc_faults_free(f);
}

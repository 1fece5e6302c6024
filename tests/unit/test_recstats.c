/*
 * Tests of the report's aggregates: counts survive the column width doubling (totals per
 * column, per type and per device add up to the messages), the definitions of duplicates and
 * measured_at going backwards, latency bins and their quantiles, messages without a device.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "hcore/recstats.h"

#define T "haltian-iot/events/i/k/measurements/"

static void add(struct hc_recstats *s, int64_t received_ns, const char *topic, const char *payload)
{
    struct hc_msg m = {0};
    hc_error err = HC_ERROR_INIT;
    m.received_at_ns = received_ns;
    m.topic = topic;
    m.payload = (const unsigned char *)payload;
    m.payload_len = strlen(payload);
    cr_assert_eq(hc_recstats_add(s, &m, &err), HC_OK, "%s", err.message);
}

Test(recstats, columns_widen_and_keep_every_count)
{
    struct hc_recstats *s = NULL;
    const int64_t t0 = 1770000000LL * 1000000000LL;
    int64_t sum = 0, sum_types = 0, sum_devices = 0;

    cr_assert_eq(hc_recstats_new(&s, NULL), HC_OK);
    for (int i = 0; i < 5000; i++) { /* one a minute: about 3.5 days */
        char topic[128], payload[128];
        snprintf(topic, sizeof(topic), T "%s/dev-%d", i % 2 ? "humidity" : "co2", i % 7);
        snprintf(payload, sizeof(payload), "{\"measured_at\":%d,\"value\":%d}", 0, i);
        add(s, t0 + (int64_t)i * 60000000000LL, topic, payload);
    }
    cr_assert_eq(s->messages, 5000);
    cr_assert_leq(hc_recstats_columns(s), HC_RECSTATS_BUCKETS);
    cr_assert_gt(hc_recstats_columns(s), HC_RECSTATS_BUCKETS / 2, "the span fills the axis");
    cr_assert_leq(s->origin_ns, t0);
    for (int c = 0; c < HC_RECSTATS_BUCKETS; c++) {
        sum += s->per_bucket[c];
        for (size_t t = 0; t < s->n_types; t++)
            sum_types += s->types[t].per_bucket[c];
        for (size_t d = 0; d < s->n_devices; d++)
            sum_devices += s->devices[d].per_bucket[c];
    }
    cr_assert_eq(sum, 5000);
    cr_assert_eq(sum_types, 5000);
    cr_assert_eq(sum_devices, 5000);
    cr_assert_eq(s->n_types, 2);
    cr_assert_eq(s->n_devices, 7);
    /* the message at minute 4999 sits in the column that covers its time */
    {
        int64_t last = t0 + 4999LL * 60000000000LL;
        int c = (int)((last - s->origin_ns) / s->bucket_ns);
        cr_assert_eq(c, hc_recstats_columns(s) - 1);
        cr_assert_gt(s->per_bucket[c], 0);
    }
    hc_recstats_free(s);
}

Test(recstats, duplicates_backwards_and_latency_follow_their_definitions)
{
    struct hc_recstats *s = NULL;
    const int64_t t0 = 1770000000LL * 1000000000LL; /* 2026-02-02T02:40:00Z */
    const char *a = T "ambientTemperature/dev-1", *b = T "ambientTemperature/dev-2";

    cr_assert_eq(hc_recstats_new(&s, NULL), HC_OK);
    add(s, t0 + 100000000, a, "{\"measured_at\":\"2026-02-02T02:40:00.000Z\",\"value\":1}");
    add(s, t0 + 200000000, a, "{\"measured_at\":\"2026-02-02T02:40:00.000Z\",\"value\":1}");
    add(s, t0 + 300000000, b, "{\"measured_at\":\"2026-02-02T02:40:00.000Z\",\"value\":1}");
    add(s, t0 + 400000000, a, "{\"measured_at\":\"2026-02-02T02:39:00.000Z\",\"value\":2}");
    add(s, t0 + 500000000, a, "not json");
    add(s, t0 + 600000000, "x/no/device", "{}");
    cr_assert_eq(s->duplicates, 1, "only the repeat on the same topic");
    cr_assert_eq(s->backwards, 1);
    cr_assert_eq(s->decode_errors, 2, "not JSON, and a topic that is not Haltian's");
    cr_assert_eq(s->n_events, 4);
    cr_assert_eq(s->without_device, 1);
    cr_assert_eq(s->without_measured_at, 2);
    /* latencies 100, 200, 300 ms and 60.4 s */
    cr_assert_eq(s->latency_bins[4], 1, "100 ms is in [100, 200)");
    cr_assert_eq(s->latency_bins[5], 2, "200 and 300 ms are in [200, 500)");
    cr_assert_eq(s->latency_bins[12], 1, "60.4 s is in [60 s, 5 min)");
    cr_assert_eq(hc_recstats_latency_quantile_ms(s->latency_bins, 0.5), 500);
    cr_assert_eq(hc_recstats_latency_quantile_ms(s->latency_bins, 1.0), 300000);
    cr_assert_eq(s->devices[0].duplicates, 1);
    cr_assert_eq(s->devices[0].latency_max_ms, 60400);
    hc_recstats_free(s);
}

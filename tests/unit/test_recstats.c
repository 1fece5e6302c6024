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

/* The seam for a store's summary tables: per-minute rows per type and per device, fed instead
 * of the messages, give the same counts, columns and devices as the message-by-message pass
 * (messages at slot starts, so both put them in the same column). */
Test(recstats, summary_rows_fill_the_same_figures_as_the_messages)
{
    struct hc_recstats *full = NULL, *sum = NULL;
    const int64_t t0 = 1770000000LL * 1000000000LL, minute = 60000000000LL;
    static const char *const types[] = {"co2", "humidity"};
    hc_error err = HC_ERROR_INIT;

    cr_assert_eq(hc_recstats_new(&full, NULL), HC_OK);
    cr_assert_eq(hc_recstats_new(&sum, NULL), HC_OK);
    for (int m = 0; m < 600; m++) { /* 10 hours, a minute a slot; device 3 silent for 2 hours */
        for (int t = 0; t < 2; t++) {
            int64_t count = 0;
            for (int d = 0; d < 4; d++) {
                char topic[128];
                if (d == 3 && m >= 100 && m < 220)
                    continue;
                snprintf(topic, sizeof(topic), T "%s/dev-%d", types[t], d);
                add(full, t0 + m * minute, topic, "{\"value\":1}");
                count++;
            }
            struct hc_recstats_summary_row row = {.slot_start_ns = t0 + m * minute,
                                                  .slot_ns = minute,
                                                  .first_ns = t0 + m * minute,
                                                  .last_ns = t0 + m * minute,
                                                  .type = types[t],
                                                  .messages = count,
                                                  .payload_bytes = count * 11,
                                                  .without_measured_at = count};
            cr_assert_eq(hc_recstats_add_summary(sum, &row, &err), HC_OK, "%s", err.message);
        }
        for (int d = 0; d < 4; d++) {
            char id[16];
            if (d == 3 && m >= 100 && m < 220)
                continue;
            snprintf(id, sizeof(id), "dev-%d", d);
            struct hc_recstats_summary_row row = {.slot_start_ns = t0 + m * minute,
                                                  .slot_ns = minute,
                                                  .first_ns = t0 + m * minute,
                                                  .last_ns = t0 + m * minute,
                                                  .device = id,
                                                  .device_type = "co2",
                                                  .messages = 2};
            cr_assert_eq(hc_recstats_add_summary(sum, &row, &err), HC_OK, "%s", err.message);
        }
    }
    cr_assert_eq(sum->messages, full->messages);
    cr_assert_eq(sum->payload_bytes, full->payload_bytes);
    cr_assert_eq(sum->first_ns, full->first_ns);
    cr_assert_eq(sum->last_ns, full->last_ns);
    cr_assert_eq(sum->origin_ns, full->origin_ns);
    cr_assert_eq(sum->bucket_ns, full->bucket_ns);
    cr_assert_eq(hc_recstats_columns(sum), hc_recstats_columns(full));
    cr_assert_eq(sum->n_types, full->n_types);
    cr_assert_eq(sum->n_devices, full->n_devices);
    cr_assert_eq(sum->without_measured_at, full->without_measured_at);
    for (int c = 0; c < HC_RECSTATS_BUCKETS; c++) {
        cr_assert_eq(sum->per_bucket[c], full->per_bucket[c], "column %d", c);
        for (size_t t = 0; t < sum->n_types; t++)
            cr_assert_eq(sum->types[t].per_bucket[c], full->types[t].per_bucket[c]);
        for (size_t d = 0; d < sum->n_devices; d++)
            cr_assert_eq(sum->devices[d].per_bucket[c], full->devices[d].per_bucket[c]);
    }
    for (size_t d = 0; d < sum->n_devices; d++) {
        cr_assert_str_eq(sum->devices[d].id, full->devices[d].id);
        cr_assert_eq(sum->devices[d].messages, full->devices[d].messages);
        cr_assert_eq(sum->devices[d].longest_silence_ns, full->devices[d].longest_silence_ns, "%s",
                     sum->devices[d].id);
    }
    cr_assert_eq(sum->devices[3].longest_silence_ns, 121 * minute);
    {
        struct hc_recstats_summary_row bad = {.slot_ns = minute, .messages = 1};
        cr_assert_eq(hc_recstats_add_summary(sum, &bad, &err), HC_ERR_INVALID);
    }
    hc_recstats_free(full);
    hc_recstats_free(sum);
}

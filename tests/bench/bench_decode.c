/*
 * Decoder throughput on Haltian-sized messages (161-byte topics, ~59-byte JSON payloads, a mix
 * of types, aliases and named-field payloads as a real stream has). Prints msg/s, median of
 * three runs, for: hc_decode_message + a printer (cJSON_PrintUnformatted, or hc_jsonout_print
 * into a reused buffer: what hcat --decode and hverify do per message), each printer alone on
 * already decoded messages, hc_decode_index (what the recorder does per message), and
 * cJSON_Parse alone as the floor any cJSON-based decoder pays. Before timing, both printers must
 * give the same bytes for every sample.
 *
 *   bench_decode [messages]     (default 1000000; build with -DCMAKE_BUILD_TYPE=Release)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/decode.h"
#include "hcore/jsonout.h"
#include "hcore/timefmt.h"

#define DISTINCT 4096
#define RUNS 3

struct sample {
    char topic[256];
    char payload[160];
    size_t len;
};

static struct sample samples[DISTINCT];
static cJSON *decoded[DISTINCT]; /* for the print-only modes */
static struct hc_jsonout printer = HC_JSONOUT_INIT;

/* Deterministic so runs compare. */
static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void uuid(unsigned *s, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < 36; i++)
        out[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : hex[next_rand(s) % 16];
    out[36] = '\0';
}

static void make_samples(void)
{
    /* Weighted like a building's stream: environment and presence dominate. */
    static const char *const kinds[] = {
        "ambientTemperature",
        "ambientTemperature",
        "humidity",
        "humidity",
        "co2",
        "barometricPressure",
        "ambientLight",
        "movementDetections",
        "movementDetections",
        "occupancyStatus",
        "batteryPercentage",
        "directionalMovement",
        "tvoc",
        "ambient_temperature",
        "CO2",
        "distance",
    };
    char integration[37], key[37];
    unsigned s = 42;

    uuid(&s, integration);
    uuid(&s, key);
    for (int i = 0; i < DISTINCT; i++) {
        struct sample *m = &samples[i];
        const char *type = kinds[next_rand(&s) % (sizeof(kinds) / sizeof(kinds[0]))];
        char dev[37], ts[40];
        int64_t ns =
            1770287445123000000LL + (int64_t)i * 60000000000LL + next_rand(&s) % 1000 * 1000000LL;

        uuid(&s, dev);
        snprintf(m->topic, sizeof(m->topic), "haltian-iot/events/%s/%s/measurements/%s/%s",
                 integration, key, type, dev);
        hc_time_format_rfc3339(ns, 3, ts, sizeof(ts));
        if (strcmp(type, "occupancyStatus") == 0)
            snprintf(m->payload, sizeof(m->payload), "{\"measured_at\":\"%s\",\"isOccupied\":%s}",
                     ts, next_rand(&s) % 2 ? "true" : "false");
        else if (strcmp(type, "directionalMovement") == 0)
            snprintf(m->payload, sizeof(m->payload),
                     "{\"measured_at\":\"%s\",\"entries\":%u,\"exits\":%u}", ts, next_rand(&s) % 20,
                     next_rand(&s) % 20);
        else
            snprintf(m->payload, sizeof(m->payload), "{\"measured_at\":\"%s\",\"value\":%u.%u}", ts,
                     next_rand(&s) % 1000, next_rand(&s) % 10);
        m->len = strlen(m->payload);
    }
}

static size_t output_bytes;

/* Decodes every sample once and insists that both printers agree byte for byte. */
static int check_printers(void)
{
    for (int i = 0; i < DISTINCT; i++) {
        const struct sample *m = &samples[i];
        char *text;
        int same;

        if (hc_decode_message(m->topic, (const unsigned char *)m->payload, m->len, &decoded[i],
                              NULL) != HC_OK ||
            hc_jsonout_print(&printer, decoded[i], NULL) != HC_OK)
            return -1;
        text = cJSON_PrintUnformatted(decoded[i]);
        same = text && strcmp(text, printer.data) == 0;
        output_bytes += printer.len;
        free(text);
        if (!same) {
            fprintf(stderr, "bench_decode: printers differ on sample %d\n", i);
            return -1;
        }
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

enum mode {
    MODE_DECODE_PRINT,
    MODE_DECODE_JSONOUT,
    MODE_PRINT_ONLY,
    MODE_JSONOUT_ONLY,
    MODE_INDEX,
    MODE_PARSE,
    MODE__COUNT
};

static double run(enum mode mode, long n, size_t *sink)
{
    int64_t t0 = hc_time_monotonic_ns();

    for (long i = 0; i < n; i++) {
        const struct sample *m = &samples[i % DISTINCT];

        if (mode == MODE_DECODE_PRINT) {
            cJSON *o = NULL;
            char *text;

            if (hc_decode_message(m->topic, (const unsigned char *)m->payload, m->len, &o, NULL) !=
                HC_OK)
                return -1;
            text = cJSON_PrintUnformatted(o);
            *sink += text ? strlen(text) : 0;
            free(text);
            cJSON_Delete(o);
        } else if (mode == MODE_DECODE_JSONOUT) {
            cJSON *o = NULL;

            if (hc_decode_message(m->topic, (const unsigned char *)m->payload, m->len, &o, NULL) !=
                    HC_OK ||
                hc_jsonout_print(&printer, o, NULL) != HC_OK)
                return -1;
            *sink += printer.len;
            cJSON_Delete(o);
        } else if (mode == MODE_PRINT_ONLY) {
            char *text = cJSON_PrintUnformatted(decoded[i % DISTINCT]);

            *sink += text ? strlen(text) : 0;
            free(text);
        } else if (mode == MODE_JSONOUT_ONLY) {
            if (hc_jsonout_print(&printer, decoded[i % DISTINCT], NULL) != HC_OK)
                return -1;
            *sink += printer.len;
        } else if (mode == MODE_INDEX) {
            struct hc_decode_index idx;

            hc_decode_index(m->topic, (const unsigned char *)m->payload, m->len, &idx);
            *sink += (size_t)idx.has_error + (size_t)idx.measured_at_ms;
        } else {
            cJSON *o = cJSON_ParseWithLength(m->payload, m->len);

            *sink += o != NULL;
            cJSON_Delete(o);
        }
    }
    return (double)n * 1e9 / (double)(hc_time_monotonic_ns() - t0);
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"hc_decode_message + cJSON_PrintUnformatted",
                                        "hc_decode_message + hc_jsonout_print",
                                        "cJSON_PrintUnformatted only (decoded)",
                                        "hc_jsonout_print only (decoded)",
                                        "hc_decode_index",
                                        "cJSON_Parse of the payload only"};
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    size_t topic_bytes = 0, payload_bytes = 0, sink = 0;

    if (n <= 0) {
        fprintf(stderr, "usage: bench_decode [messages]\n");
        return 2;
    }
    make_samples();
    for (int i = 0; i < DISTINCT; i++) {
        topic_bytes += strlen(samples[i].topic);
        payload_bytes += samples[i].len;
    }
    if (check_printers() != 0)
        return 1;
    printf("bench_decode: %ld messages, mean topic %zu bytes, mean payload %zu bytes, "
           "mean output %zu bytes\n",
           n, topic_bytes / DISTINCT, payload_bytes / DISTINCT, output_bytes / DISTINCT);
    for (int mode = 0; mode < MODE__COUNT; mode++) {
        double rates[RUNS];

        for (int r = 0; r < RUNS; r++)
            rates[r] = run((enum mode)mode, n, &sink);
        qsort(rates, RUNS, sizeof(rates[0]), cmp_double);
        printf("%-45s %10.0f msg/s (median of %d; min %.0f, max %.0f)\n", names[mode],
               rates[RUNS / 2], RUNS, rates[0], rates[RUNS - 1]);
    }
    for (int i = 0; i < DISTINCT; i++)
        cJSON_Delete(decoded[i]);
    hc_jsonout_release(&printer);
    if (fflush(stdout) != 0 || ferror(stdout))
        return 1;
    return sink == 0; /* keeps the work from being optimised away */
}

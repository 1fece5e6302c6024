/*
 * hreplay --merge-reports: several shards' --report-json files into one report. Totals are sums,
 * exact; the span runs from the earliest start to the latest end; lateness percentiles come from
 * the merged histograms (percentiles cannot be averaged), so they are as exact as one run's:
 * within one bucket (1%) of the true value, with the exact count, mean and max.
 */
#include "hreplay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hcore/sched.h"
#include "hcore/timefmt.h"

#define MAX_REPORT_BYTES (64L * 1024 * 1024)

/* The totals that add up across shards, in the order they are printed. */
static const char *const summed[] = {"sent",       "failed",         "resent",
                                     "reconnects", "qos0_maybe_lost", "invalid_topics",
                                     "invalid_input"};
#define N_SUMMED (sizeof(summed) / sizeof(summed[0]))

struct merged {
    double totals[N_SUMMED];
    struct hc_hist hist;
    long double sum_ns;
    int64_t max_ns;
    int64_t first_start, last_end; /* CLOCK_REALTIME ns; 0: none yet */
    bool interrupted, timed, untimed;
    size_t shards;
};

static cJSON *read_report(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *text = NULL;
    long size;
    cJSON *j = NULL;

    if (!fp) {
        tool_error("cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) == 0 && (size = ftell(fp)) >= 0 && size <= MAX_REPORT_BYTES &&
        fseek(fp, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1)) &&
        fread(text, 1, (size_t)size, fp) == (size_t)size) {
        text[size] = '\0';
        j = cJSON_Parse(text);
        if (!j || !cJSON_IsObject(j))
            tool_error("'%s' is not a report: not a JSON object", path);
    } else {
        tool_error("cannot read '%s': %s", path, text ? "read error" : "too large or unreadable");
    }
    free(text);
    fclose(fp);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

static bool number_of(const cJSON *j, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v))
        return false;
    *out = v->valuedouble;
    return true;
}

static bool time_of(const cJSON *j, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) &&
           hc_time_parse_rfc3339(v->valuestring, strlen(v->valuestring), out, NULL) == HC_OK;
}

/* Adds one report; false (with a message naming the file) when it is not an hreplay report. */
static bool add_report(struct merged *m, const char *path, const cJSON *j)
{
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(j, "lateness_hist");
    const cJSON *buckets = cJSON_GetObjectItemCaseSensitive(hist, "buckets");
    const cJSON *pair;
    int64_t start, end;
    double v, sum = 0, max = 0;

    for (size_t i = 0; i < N_SUMMED; i++) {
        if (!number_of(j, summed[i], &v)) {
            tool_error("'%s' is not an hreplay report: no \"%s\"", path, summed[i]);
            return false;
        }
        m->totals[i] += v;
    }
    if (!time_of(j, "started_at", &start) || !time_of(j, "ended_at", &end) ||
        !cJSON_IsArray(buckets) || !number_of(hist, "sum_ns", &sum) ||
        !number_of(hist, "max_ns", &max)) {
        tool_error("'%s' has no lateness histogram or times: written by an older hreplay?", path);
        return false;
    }
    if (!m->first_start || start < m->first_start)
        m->first_start = start;
    if (end > m->last_end)
        m->last_end = end;
    cJSON_ArrayForEach(pair, buckets)
    {
        const cJSON *edge = cJSON_GetArrayItem(pair, 0), *count = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsNumber(edge) || !cJSON_IsNumber(count) || edge->valuedouble < 0 ||
            count->valuedouble < 0) {
            tool_error("'%s': a histogram bucket is not [edge, count]", path);
            return false;
        }
        hc_hist_add_n(&m->hist, (int64_t)edge->valuedouble, (uint64_t)count->valuedouble);
    }
    m->sum_ns += (long double)sum;
    if ((int64_t)max > m->max_ns)
        m->max_ns = (int64_t)max;
    m->interrupted |= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "interrupted"));
    if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "lateness_us")))
        m->untimed = true;
    else
        m->timed = true;
    m->shards++;
    return true;
}

static cJSON *merged_report(const struct merged *m)
{
    cJSON *j = cJSON_CreateObject(), *lat;
    double duration = (double)(m->last_end - m->first_start) / 1e9;
    struct hc_hist h = m->hist;
    char text[48];

    cJSON_AddNumberToObject(j, "shards", (double)m->shards);
    for (size_t i = 0; i < N_SUMMED; i++)
        cJSON_AddNumberToObject(j, summed[i], m->totals[i]);
    cJSON_AddBoolToObject(j, "interrupted", m->interrupted);
    hc_time_format_rfc3339(m->first_start, 6, text, sizeof(text));
    cJSON_AddStringToObject(j, "started_at", text);
    hc_time_format_rfc3339(m->last_end, 6, text, sizeof(text));
    cJSON_AddStringToObject(j, "ended_at", text);
    cJSON_AddNumberToObject(j, "duration_s", duration);
    cJSON_AddNumberToObject(j, "rate_msg_s", duration > 0 ? m->totals[0] / duration : 0);
    /* the bucket edges overstate sum and max: the shards' exact figures replace them */
    h.sum = m->sum_ns;
    h.max = m->max_ns;
    if (m->timed && !m->untimed && h.total > 0) {
        lat = cJSON_AddObjectToObject(j, "lateness_us");
        cJSON_AddNumberToObject(lat, "count", (double)h.total);
        cJSON_AddNumberToObject(lat, "p50", (double)hc_hist_quantile(&h, 0.50) / 1000.0);
        cJSON_AddNumberToObject(lat, "p90", (double)hc_hist_quantile(&h, 0.90) / 1000.0);
        cJSON_AddNumberToObject(lat, "p99", (double)hc_hist_quantile(&h, 0.99) / 1000.0);
        cJSON_AddNumberToObject(lat, "p999", (double)hc_hist_quantile(&h, 0.999) / 1000.0);
        cJSON_AddNumberToObject(lat, "max", (double)h.max / 1000.0);
        cJSON_AddNumberToObject(lat, "mean", (double)(h.sum / (long double)h.total) / 1000.0);
        cJSON_AddBoolToObject(j, "schedule_kept", hc_hist_quantile(&h, 0.99) < 1000000);
    } else {
        cJSON_AddNullToObject(j, "lateness_us");
        cJSON_AddNullToObject(j, "schedule_kept");
    }
    return j;
}

int hreplay_merge(const struct hreplay_opts *o)
{
    struct merged *m = calloc(1, sizeof(*m));
    cJSON *out = NULL;
    char *text = NULL;
    int code = TOOL_EXIT_FAILURE;

    if (!m) {
        tool_error("out of memory");
        return TOOL_EXIT_FAILURE;
    }
    hc_hist_init(&m->hist);
    for (size_t i = 0; i < o->n_merge_reports; i++) {
        cJSON *j = read_report(o->merge_reports[i]);
        bool ok = j && add_report(m, o->merge_reports[i], j);
        cJSON_Delete(j);
        if (!ok)
            goto out;
    }
    out = merged_report(m);
    text = out ? cJSON_Print(out) : NULL;
    if (!text) {
        tool_error("out of memory");
        goto out;
    }
    if (o->report_json) {
        FILE *fp = fopen(o->report_json, "w");
        if (!fp || fprintf(fp, "%s\n", text) < 0 || fclose(fp) != 0) {
            tool_error("cannot write '%s': %s", o->report_json, strerror(errno));
            goto out;
        }
    } else {
        printf("%s\n", text);
    }
    if (tool_verbosity >= 1)
        fprintf(stderr, "%s: %zu reports merged: sent %.0f messages, %.0f failed\n", tool_name,
                m->shards, m->totals[0], m->totals[1]);
    code = m->totals[1] > 0 ? TOOL_EXIT_FAILURE : TOOL_EXIT_OK;
out:
    free(text);
    cJSON_Delete(out);
    free(m);
    return code;
}

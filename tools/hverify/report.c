/*
 * hverify's machine-readable reports: JUnit XML for CI dashboards (one testcase per fixture
 * case; a mismatch is a <failure>, a case that could not run an <error>) and a JSON document
 * with every case and its mismatches.
 */
#include "hverify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/text.h"

char *hv_xml_escape(const char *s)
{
    size_t n = 0, o = 0;
    char *out;

    if (!s)
        s = "";
    for (const char *c = s; *c; c++)
        n += 6;
    out = malloc(n + 1);
    if (!out)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '&':
            memcpy(out + o, "&amp;", 5), o += 5;
            break;
        case '<':
            memcpy(out + o, "&lt;", 4), o += 4;
            break;
        case '>':
            memcpy(out + o, "&gt;", 4), o += 4;
            break;
        case '"':
            memcpy(out + o, "&quot;", 6), o += 6;
            break;
        case '\'':
            memcpy(out + o, "&apos;", 6), o += 6;
            break;
        default:
            /* XML 1.0 has no place for other control characters, even escaped. */
            out[o++] = (*c < 0x20 && *c != '\n' && *c != '\t') ? '?' : (char)*c;
        }
    }
    out[o] = '\0';
    /* Invalid UTF-8 would make the whole file unreadable: replace such bytes. */
    if (!hc_text_is_json_safe_utf8((const unsigned char *)out, o))
        for (size_t i = 0; i < o; i++)
            if ((unsigned char)out[i] >= 0x80)
                out[i] = '?';
    return out;
}

static void mismatch_text(FILE *fp, const struct hv_mismatch *m)
{
    if (m->message)
        fprintf(fp, "message %ld", m->message);
    else
        fprintf(fp, "expected.jsonl");
    if (m->topic)
        fprintf(fp, " (%s)", m->topic);
    fprintf(fp, ": at %s: expected %s, got %s", m->path, m->expected ? m->expected : "(missing)",
            m->actual ? m->actual : "(missing)");
    if (m->note)
        fprintf(fp, " [%s]", m->note);
}

static void put_escaped(FILE *fp, const char *s)
{
    char *e = hv_xml_escape(s);

    fputs(e ? e : "", fp);
    free(e);
}

void hv_case_summary(const struct hv_case_result *c, char *buf, size_t size)
{
    long extra = c->expected_lines - c->messages;
    long differ = c->mismatch_count - (extra > 0 ? extra : 0);

    if (c->consumer) { /* outputs are not one per input */
        snprintf(buf, size, "%ld output line%s differ%s (%ld inputs, %ld expected lines)",
                 c->mismatch_count, c->mismatch_count == 1 ? "" : "s",
                 c->mismatch_count == 1 ? "s" : "", c->messages, c->expected_lines);
        return;
    }
    if (extra <= 0) {
        snprintf(buf, size, "%ld of %ld messages differ", c->mismatch_count, c->messages);
        return;
    }
    snprintf(buf, size, "expected.jsonl has %ld line%s, the input %ld message%s", c->expected_lines,
             c->expected_lines == 1 ? "" : "s", c->messages, c->messages == 1 ? "" : "s");
    if (differ > 0) {
        size_t used = strlen(buf);

        snprintf(buf + used, size - used, "; %ld of %ld messages differ", differ, c->messages);
    }
}

bool hv_report_junit(const char *path, const struct hv_case_result *r, size_t n, hc_error *err)
{
    FILE *fp = fopen(path, "w");
    long failures = 0, errors = 0;
    double total = 0;

    if (!fp) {
        hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        failures += r[i].status == HV_FAILED;
        errors += r[i].status == HV_ERROR;
        total += r[i].seconds;
    }
    fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(fp,
            "<testsuites name=\"hverify\" tests=\"%zu\" failures=\"%ld\" errors=\"%ld\" "
            "time=\"%.3f\">\n",
            n, failures, errors, total);
    fprintf(fp,
            "  <testsuite name=\"hverify\" tests=\"%zu\" failures=\"%ld\" errors=\"%ld\" "
            "skipped=\"0\" time=\"%.3f\">\n",
            n, failures, errors, total);
    for (size_t i = 0; i < n; i++) {
        const struct hv_case_result *c = &r[i];

        fprintf(fp, "    <testcase classname=\"hverify\" name=\"");
        put_escaped(fp, c->name);
        fprintf(fp, "\" time=\"%.3f\"", c->seconds);
        if (c->status == HV_PASSED) {
            fprintf(fp, "/>\n");
            continue;
        }
        fprintf(fp, ">\n");
        if (c->status == HV_ERROR) {
            fprintf(fp, "      <error message=\"");
            put_escaped(fp, c->error);
            fprintf(fp, "\" type=\"could-not-run\"/>\n");
        } else {
            char msg[200];

            hv_case_summary(c, msg, sizeof(msg));
            fprintf(fp, "      <failure message=\"%s\" type=\"mismatch\">", msg);
            for (size_t k = 0; k < c->n_mm; k++) {
                char *text = NULL;
                size_t len = 0;
                FILE *ms = open_memstream(&text, &len);

                if (ms) {
                    mismatch_text(ms, &c->mm[k]);
                    fclose(ms);
                    put_escaped(fp, text);
                    fputc('\n', fp);
                }
                free(text);
            }
            fprintf(fp, "</failure>\n");
        }
        fprintf(fp, "    </testcase>\n");
    }
    fprintf(fp, "  </testsuite>\n</testsuites>\n");
    if (ferror(fp) | (fclose(fp) != 0)) {
        hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}

static cJSON *raw_or_null(const char *json)
{
    cJSON *v = json ? cJSON_Parse(json) : NULL;

    /* Excerpts cut with "..." are no longer JSON: keep them as strings. */
    if (!v && json)
        v = cJSON_CreateString(json);
    return v ? v : cJSON_CreateNull();
}

bool hv_report_json(FILE *fp, const struct hv_case_result *r, size_t n)
{
    cJSON *doc = cJSON_CreateObject(), *cases = cJSON_AddArrayToObject(doc, "cases");
    long passed = 0, failed = 0, errors = 0;
    char *text;
    bool ok;

    for (size_t i = 0; i < n; i++) {
        const struct hv_case_result *c = &r[i];
        cJSON *jc = cJSON_CreateObject(), *mms;
        static const char *const names[] = {"passed", "failed", "error"};

        cJSON_AddStringToObject(jc, "case", c->name);
        cJSON_AddStringToObject(jc, "status", names[c->status]);
        cJSON_AddNumberToObject(jc, "messages", (double)c->messages);
        cJSON_AddNumberToObject(jc, "mismatch_count", (double)c->mismatch_count);
        cJSON_AddNumberToObject(jc, "seconds", c->seconds);
        if (c->consumer) {
            cJSON *f = cJSON_AddObjectToObject(jc, "consumer");

            cJSON_AddNumberToObject(f, "inputs_sent", (double)c->inputs_sent);
            cJSON_AddNumberToObject(f, "outputs", (double)c->outputs);
            cJSON_AddNumberToObject(f, "latency_matched", (double)c->latency_n);
            if (c->faults) {
                cJSON_AddStringToObject(f, "faults", c->faults);
                cJSON_AddNumberToObject(f, "faults_applied", (double)c->faults_applied);
                cJSON_AddBoolToObject(f, "broker_restarted", c->broker_restarted);
            }
            if (c->latency_n) {
                cJSON_AddNumberToObject(f, "latency_p50_ms", c->latency_p50_ms);
                cJSON_AddNumberToObject(f, "latency_p99_ms", c->latency_p99_ms);
                cJSON_AddNumberToObject(f, "latency_max_ms", c->latency_max_ms);
            }
            if (c->consumer_exit)
                cJSON_AddStringToObject(f, "exit", c->consumer_exit);
            if (c->stderr_tail)
                cJSON_AddStringToObject(f, "stderr_tail", c->stderr_tail);
        }
        if (c->error)
            cJSON_AddStringToObject(jc, "error", c->error);
        mms = cJSON_AddArrayToObject(jc, "mismatches");
        for (size_t k = 0; k < c->n_mm; k++) {
            const struct hv_mismatch *m = &c->mm[k];
            cJSON *jm = cJSON_CreateObject();

            if (m->message)
                cJSON_AddNumberToObject(jm, "message", (double)m->message);
            else
                cJSON_AddNullToObject(jm, "message");
            if (m->topic)
                cJSON_AddStringToObject(jm, "topic", m->topic);
            else
                cJSON_AddNullToObject(jm, "topic");
            cJSON_AddStringToObject(jm, "path", m->path);
            cJSON_AddBoolToObject(jm, "expected_missing", m->expected == NULL);
            cJSON_AddItemToObject(jm, "expected", raw_or_null(m->expected));
            cJSON_AddBoolToObject(jm, "actual_missing", m->actual == NULL);
            cJSON_AddItemToObject(jm, "actual", raw_or_null(m->actual));
            if (m->note)
                cJSON_AddStringToObject(jm, "note", m->note);
            cJSON_AddItemToArray(mms, jm);
        }
        cJSON_AddItemToArray(cases, jc);
        passed += c->status == HV_PASSED;
        failed += c->status == HV_FAILED;
        errors += c->status == HV_ERROR;
    }
    cJSON_AddNumberToObject(doc, "passed", (double)passed);
    cJSON_AddNumberToObject(doc, "failed", (double)(failed + errors));
    cJSON_AddNumberToObject(doc, "errors", (double)errors);
    text = cJSON_Print(doc);
    ok = text && fprintf(fp, "%s\n", text) >= 0;
    cJSON_free(text);
    cJSON_Delete(doc);
    return ok;
}

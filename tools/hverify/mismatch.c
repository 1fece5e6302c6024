/*
 * Recording a case's differences for the reports: each mismatch with excerpts of both values
 * (printed exactly, cut to a length a terminal shows), the input it most likely concerns and, in
 * the consumer mode, the faults applied to that input's device and its marks on the timeline.
 */
#include "case_run.h"

#include <stdlib.h>
#include <string.h>

#include "hcore/jsonout.h"

#define EXCERPT 120

/* --- excerpts --------------------------------------------------------------------------------- */

/* Compact JSON of v cut to EXCERPT characters, or NULL for a missing value. Printed exactly, so
 * two numbers that differ in their last digit never look the same in a report. */
static char *excerpt_json(const cJSON *v)
{
    struct hc_jsonout out = HC_JSONOUT_INIT;
    char *s;

    if (!v || hc_jsonout_print(&out, v, NULL) != HC_OK) {
        hc_jsonout_release(&out);
        return NULL;
    }
    if (out.len > EXCERPT)
        memcpy(out.data + EXCERPT - 3, "...", 4);
    s = strdup(out.data);
    hc_jsonout_release(&out);
    return s;
}

char *hv_excerpt_text(const char *t, size_t n)
{
    char *s = malloc(EXCERPT + 4);

    if (!s)
        return NULL;
    if (n > EXCERPT)
        snprintf(s, EXCERPT + 4, "%.*s...", EXCERPT - 3, t);
    else
        snprintf(s, EXCERPT + 4, "%.*s", (int)n, t);
    for (char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '?';
    return s;
}

/* --- which input ------------------------------------------------------------------------------ */

/* "input 4 (co2, device ..., 2026-...)" for the input a line most likely belongs to, or NULL. */
char *hv_describe_input_of(const struct hv_run *r, const char *line)
{
    long i = hv_capture_attribute(&r->cap, line);
    const struct hv_input_info *in;
    char buf[600];

    if (i < 0)
        return NULL;
    in = &r->cap.inputs[i];
    snprintf(buf, sizeof(buf), "input %ld: %s, device %s, %s", i + 1, in->type ? in->type : "?",
             in->device, in->measured_at);
    return hv_xstrdup(buf);
}

static char *describe_expected(const struct hv_run *r, const cJSON *expected)
{
    char *text = cJSON_IsString(expected) ? hv_xstrdup(expected->valuestring)
                                          : cJSON_PrintUnformatted(expected);
    char *d = hv_describe_input_of(r, text);

    free(text);
    return d;
}

/* --report-html: marks the output line (message: its ordinal among the compared lines) and the
 * input a mismatch concerns, on the case's timeline. The input is the one the text report names
 * ("input K: ..." in topic), else the one the expected value or the output line names. */
static void mark_failing(struct hv_run *r, long message, const char *topic, const struct hv_diff *d)
{
    struct hv_timeline *tl = &r->res->timeline;
    long input = -1, named;

    if (message > 0 && (size_t)message <= r->n_kept &&
        (size_t)r->kept[message - 1] < tl->n_outputs) {
        size_t line = (size_t)r->kept[message - 1];

        tl->output_failing[line] = true;
        input = hv_capture_attribute(&r->cap, r->cap.lines[line]);
    }
    if (d && d->expected) {
        char *text = cJSON_IsString(d->expected) ? hv_xstrdup(d->expected->valuestring)
                                                 : cJSON_PrintUnformatted(d->expected);
        long k = text ? hv_capture_attribute(&r->cap, text) : -1;

        free(text);
        if (k >= 0)
            input = k; /* the input whose expected output went wrong */
    }
    if (topic && sscanf(topic, "input %ld:", &named) == 1 && named >= 1)
        input = named - 1;
    if (input >= 0 && (size_t)input < tl->n_inputs)
        tl->input_failing[input] = true;
}

/* The input a difference belongs to: the one its description names ("input 4: co2, ..."),
 * else the actual value's, else the expected one's; -1. */
static long attribute_diff(const struct hv_run *r, const char *where, const struct hv_diff *d)
{
    long k = -1;

    if (where && sscanf(where, "input %ld:", &k) == 1 && k >= 1 && (size_t)k <= r->cap.n_inputs)
        return k - 1;
    k = -1;

    for (int side = 0; side < 2 && k < 0 && d; side++) {
        const cJSON *v = side == 0 ? d->actual : d->expected;
        char *text;

        if (!v)
            continue;
        text = cJSON_IsString(v) ? hv_xstrdup(v->valuestring) : cJSON_PrintUnformatted(v);
        k = hv_capture_attribute(&r->cap, text);
        free(text);
    }
    return k;
}

/* note, followed by the faults applied to the inputs of the difference's device: the inputs
 * that caused it */
static char *fault_note(const struct hv_run *r, const char *where, const struct hv_diff *d,
                        const char *note)
{
    char faults[700], buf[1200];

    hv_capture_faults_of(&r->cap, attribute_diff(r, where, d), faults, sizeof(faults));
    if (!faults[0])
        return hv_xstrdup(note);
    snprintf(buf, sizeof(buf), "%s%sfaults on this device: %s", note ? note : "", note ? "; " : "",
             faults);
    return hv_xstrdup(buf);
}

void hv_add_mismatch(struct hv_run *r, long message, const char *topic, const struct hv_diff *d,
                     const char *note)
{
    struct hv_case_result *res = r->res;
    struct hv_mismatch *m;

    res->mismatch_count++;
    r->changed = true;
    if (r->consumer)
        mark_failing(r, message, topic, d);
    if (r->o->max_report > 0 && res->n_mm >= (size_t)r->o->max_report)
        return;
    m = realloc(res->mm, (res->n_mm + 1) * sizeof(*m));
    if (!m)
        return;
    res->mm = m;
    m = &res->mm[res->n_mm++];
    m->message = message;
    m->topic = hv_xstrdup(topic);
    if (!topic && r->consumer && d && d->expected)
        m->topic = describe_expected(r, d->expected);
    m->path = hv_xstrdup(d ? d->path : "$");
    m->expected = d ? excerpt_json(d->expected) : NULL;
    m->actual = d ? excerpt_json(d->actual) : NULL;
    m->note = r->consumer && r->cap.n_faults ? fault_note(r, m->topic, d, note) : hv_xstrdup(note);
}

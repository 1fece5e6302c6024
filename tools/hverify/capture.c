/*
 * What a --consumer case captured (struct hv_capture, filled by consumer.c), read by the
 * comparison and the reports: which input an output line belongs to, the faults applied to an
 * input's device, and releasing it all.
 */
#include "hverify.h"

#include <stdlib.h>
#include <string.h>

/* Appends the faults of k's device to buf: pass 0 those on input k (or swapped with it), pass
 * 1 the others. */
void hv_capture_faults_of(const struct hv_capture *cap, long k, char *buf, size_t size)
{
    const char *device = k >= 0 && (size_t)k < cap->n_inputs ? cap->inputs[k].device : NULL;
    size_t len = 0, shown = 0, more = 0;

    buf[0] = '\0';
    for (int pass = device ? 0 : 1; pass < 2; pass++) {
        for (size_t i = 0; i < cap->n_faults; i++) {
            const struct hv_fault_note *f = &cap->faults[i];
            const char *d = f->input >= 0 && (size_t)f->input < cap->n_inputs
                                ? cap->inputs[f->input].device
                                : NULL;
            bool own = f->input == k || f->partner == k;
            int n;

            if ((device && (!d || strcmp(d, device) != 0)) || (device && own != (pass == 0)))
                continue;
            if (shown == 4) {
                more++;
                continue;
            }
            if (f->partner >= 0)
                n = snprintf(buf + len, size - len, "%sinput %ld %s (with input %ld)",
                             shown ? ", " : "", f->input + 1, f->kind, f->partner + 1);
            else
                n = snprintf(buf + len, size - len, "%sinput %ld %s", shown ? ", " : "",
                             f->input + 1, f->kind);
            if (n < 0 || (size_t)n >= size - len)
                return;
            len += (size_t)n;
            shown++;
        }
    }
    if (more && len < size)
        snprintf(buf + len, size - len, " and %zu more", more);
}

long hv_capture_attribute(const struct hv_capture *cap, const char *line)
{
    long best = -1;

    if (!line)
        return -1;
    for (size_t i = 0; i < cap->n_inputs; i++) {
        const struct hv_input_info *in = &cap->inputs[i];

        if (!in->device || !in->measured_at || !strstr(line, in->device) ||
            !strstr(line, in->measured_at))
            continue;
        if (in->type && strstr(line, in->type))
            return (long)i; /* the type named too: no better match */
        if (best < 0)
            best = (long)i;
    }
    for (size_t i = 0; i < cap->n_faults && best < 0; i++) { /* a timestamp a fault moved */
        const struct hv_fault_note *f = &cap->faults[i];
        const struct hv_input_info *in = &cap->inputs[f->input];

        if (f->time_after[0] && in->device && strstr(line, f->time_after) &&
            strstr(line, in->device))
            best = f->input;
    }
    return best;
}

void hv_capture_release(struct hv_capture *cap)
{
    for (size_t i = 0; i < cap->n_lines; i++)
        free(cap->lines[i]);
    free(cap->lines);
    free(cap->line_ns);
    for (size_t i = 0; i < cap->n_inputs; i++) {
        free(cap->inputs[i].topic);
        free(cap->inputs[i].type);
        free(cap->inputs[i].device);
        free(cap->inputs[i].measured_at);
    }
    free(cap->inputs);
    free(cap->faults);
    memset(cap, 0, sizeof(*cap));
}

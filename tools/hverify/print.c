/*
 * hverify's text report on stdout: one line per case that failed or could not run (all cases
 * with -v), its mismatches, the consumer's figures, and the command that accepts the new output.
 */
#include "hverify.h"

#include <stdio.h>

static void accept_command(const struct hverify_opts *o, const char *dir, char *out, size_t size)
{
    char qdir[4 * 1024 + 3], qdec[4 * 1024 + 3];

    tool_shell_quote(qdir, sizeof(qdir), dir);
    if (o->decoder || o->consumer) {
        tool_shell_quote(qdec, sizeof(qdec), o->decoder ? o->decoder : o->consumer);
        snprintf(out, size, "hverify --update --accept %s %s %s",
                 o->decoder ? "--decoder" : "--consumer", qdec, qdir);
    } else {
        snprintf(out, size, "hverify --update --accept %s", qdir);
    }
}

static void print_figures(FILE *fp, const struct hv_case_result *c)
{
    if (!c->consumer)
        return;
    fprintf(fp, "  %ld inputs sent, %ld output lines", c->inputs_sent, c->outputs);
    if (c->latency_n)
        fprintf(fp, ", latency p50 %.1f ms, p99 %.1f ms, max %.1f ms (%ld inputs matched)",
                c->latency_p50_ms, c->latency_p99_ms, c->latency_max_ms, c->latency_n);
    if (c->consumer_exit)
        fprintf(fp, "; consumer %s", c->consumer_exit);
    if (c->faults)
        fprintf(fp, "; faults '%s': %ld applied%s", c->faults, c->faults_applied,
                c->broker_restarted ? ", broker restarted" : "");
    fputc('\n', fp);
    if (c->status != HV_PASSED && c->stderr_tail)
        fprintf(fp, "  its stderr: %s\n", c->stderr_tail);
}

void hv_print_case(const struct hverify_opts *o, const struct hv_case_result *c)
{
    FILE *fp = stdout;
    char cmd[2 * (4 * 1024 + 3) + 64], summary[200];

    if (o->json || o->verbosity < 1)
        return;
    if (c->status == HV_PASSED) {
        if (o->verbosity >= 2) {
            fprintf(fp, "ok    %s (%ld messages)\n", c->name, c->messages);
            print_figures(fp, c);
        }
        return;
    }
    if (c->status == HV_ERROR) {
        fprintf(fp, "ERROR %s: %s\n", c->name, c->error);
        print_figures(fp, c);
        return;
    }
    hv_case_summary(c, summary, sizeof(summary));
    fprintf(fp, "FAIL  %s: %s\n", c->name, summary);
    for (size_t i = 0; i < c->n_mm; i++) {
        const struct hv_mismatch *m = &c->mm[i];

        if (m->message)
            fprintf(fp, c->consumer ? "  output line %ld" : "  message %ld", m->message);
        else
            fprintf(fp, c->consumer ? "  missing output" : "  expected.jsonl");
        if (m->topic && *m->topic)
            fprintf(fp, " (%s)", m->topic);
        fprintf(fp, ": at %s: expected %s, got %s\n", m->path,
                m->expected ? m->expected : "(missing)", m->actual ? m->actual : "(missing)");
        if (m->note)
            fprintf(fp, "    %s\n", m->note);
    }
    if ((long)c->n_mm < c->mismatch_count)
        fprintf(fp, "  ... and %ld more (--max-report 0 shows all)\n",
                c->mismatch_count - (long)c->n_mm);
    print_figures(fp, c);
    accept_command(o, c->name, cmd, sizeof(cmd));
    fprintf(fp, "  accept the new output: %s\n", cmd);
}

/*
 * hverify's work: find the cases under the paths given, run each (the decoder over its input,
 * in-process for the built-in decoder, one child process per case for the user's, or the user's
 * consumer with --consumer), print each case's outcome as it ends, then the summary and the
 * reports, and choose the exit code.
 *
 * Where the stages live: finding cases and case.json in cases.c; one case's run in case_run.c
 * (decoder.c, consumer_case.c, match.c, mismatch.c); the expected and pending files, CI and
 * accepting in fixture.c; the consumer mode's process and capture in consumer.c; comparison in
 * compare.c; the reports in print.c, report.c and report_html.c.
 */
#include "hverify.h"

#include <signal.h>
#include <stdlib.h>

#include "case_run.h"

/* How the cases of a run ended. */
struct tally {
    long passed, failed, errors;
    size_t cases_run; /* cases run before the end or an interruption */
    bool interrupted;
};

void hverify_free_results(struct hv_case_result *r, size_t n);

void hverify_free_results(struct hv_case_result *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < r[i].n_mm; k++) {
            free(r[i].mm[k].topic);
            free(r[i].mm[k].path);
            free(r[i].mm[k].expected);
            free(r[i].mm[k].actual);
            free(r[i].mm[k].note);
        }
        free(r[i].mm);
        free(r[i].name);
        free(r[i].error);
        free(r[i].consumer_exit);
        free(r[i].faults);
        free(r[i].stderr_tail);
        free(r[i].timeline.input_ns);
        free(r[i].timeline.input_failing);
        free(r[i].timeline.output_ns);
        free(r[i].timeline.output_failing);
    }
    free(r);
}

/* Runs the cases in order, each printed as it ends, until the last or an interruption. */
static void run_cases(const struct hverify_opts *o, struct hv_consumer *consumer,
                      const struct hv_case_list *cases, struct hv_case_result *results,
                      bool writes_allowed, struct tally *t)
{
    for (size_t i = 0; i < cases->n; i++) {
        if (tool_stop_requested) {
            tool_error("interrupted after %zu of %zu cases", i, cases->n);
            t->interrupted = true;
            break;
        }
        hv_report_leftovers(cases->dirs[i], o->update);
        hv_case_run(o, consumer, cases->dirs[i], &results[i], writes_allowed);
        hv_print_case(o, &results[i]);
        if (results[i].status == HV_PASSED)
            t->passed++;
        else if (results[i].status == HV_FAILED)
            t->failed++;
        else
            t->errors++;
        fflush(stdout);
        t->cases_run = i + 1;
    }
}

/* --junit and --report-html; a report that cannot be written counts as an error. */
static void write_report_files(const struct hverify_opts *o, const struct hv_case_result *results,
                               struct tally *t)
{
    if (o->junit) {
        hc_error err = HC_ERROR_INIT;

        if (!hv_report_junit(o->junit, results, t->cases_run, &err)) {
            tool_error("%s", err.message);
            t->errors++;
        }
    }
    if (o->report_html) {
        hc_error err = HC_ERROR_INIT;

        if (!hv_report_html(o->report_html, o, results, t->cases_run, &err)) {
            tool_error("%s", err.message);
            t->errors++;
        }
    }
}

int hverify_run(const struct hverify_opts *o)
{
    struct hv_case_list cases = {NULL, 0, 0};
    struct hv_case_result *results = NULL;
    struct tally t = {0, 0, 0, 0, false};
    int code = TOOL_EXIT_OK;
    bool writes_allowed = !hv_ci_mode() || o->force;
    struct hv_consumer *consumer = NULL;
    hc_error err = HC_ERROR_INIT;

    tool_signals_install();   /* Ctrl-C stops the running decoder, then hverify */
    signal(SIGPIPE, SIG_IGN); /* a decoder that stops reading must not kill us */
    if (!hv_collect_cases(o, &cases)) {
        code = TOOL_EXIT_FAILURE;
        goto out;
    }
    if (o->accept && !o->update) {
        code = hv_accept_pending(o, &cases);
        goto out;
    }
    if (o->consumer && hv_consumer_open(o, &consumer, &err) != HC_OK) {
        tool_error("%s", err.message);
        code = TOOL_EXIT_FAILURE;
        goto out;
    }
    results = calloc(cases.n ? cases.n : 1, sizeof(*results));
    if (!results) {
        tool_error("out of memory");
        code = TOOL_EXIT_FAILURE;
        goto out;
    }
    run_cases(o, consumer, &cases, results, writes_allowed, &t);
    if (!o->json)
        printf("%ld passed, %ld failed\n", t.passed, t.failed + t.errors);
    if (t.errors)
        tool_error("%ld of %ld cases could not run", t.errors, (long)t.cases_run);
    if (o->json && !hv_report_json(stdout, results, t.cases_run))
        code = TOOL_EXIT_FAILURE;
    write_report_files(o, results, &t);
    if (t.errors || t.interrupted) /* an interrupted run verified nothing: never exit 0 */
        code = TOOL_EXIT_FAILURE;
    else if (t.failed)
        code = TOOL_EXIT_MISMATCH;
out:
    hv_consumer_close(consumer);
    if (results)
        hverify_free_results(results, cases.n);
    for (size_t i = 0; i < cases.n; i++)
        free(cases.dirs[i]);
    free(cases.dirs);
    return code;
}

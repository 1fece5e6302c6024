/*
 * The consumer stage of a case (--consumer): runs the user's consumer over the case
 * (consumer.c), keeps the output lines that count (not blank, not ignored) and compares them,
 * as JSON values (match.c) or as plain lines against expected.txt. Also the case's figures for
 * the reports: how the consumer exited, the faults applied, latency and the timeline.
 */
#include "case_run.h"

#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "hcore/proc.h"

static bool line_ignored(const struct hv_run *r, const char *line)
{
    for (size_t i = 0; i < r->extra.n_ign; i++)
        if (regexec(&r->extra.ign[i], line, 0, NULL, 0) == 0)
            return true;
    for (size_t i = 0; i < r->o->n_ignore_line; i++) {
        regex_t re;
        bool hit;

        if (regcomp(&re, r->o->ignore_line[i], REG_EXTENDED | REG_NOSUB) != 0)
            continue; /* checked when parsed */
        hit = regexec(&re, line, 0, NULL, 0) == 0;
        regfree(&re);
        if (hit)
            return true;
    }
    return false;
}

static bool blank(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return !*s;
}

/* Text mode: expected.txt against the output, line by line (blank and ignored lines skipped). */
static bool compare_text(struct hv_run *r, const long *kept, size_t n_kept)
{
    size_t elen, i = 0;
    int got;
    long attributed = -1, attributed_exp = -1;

    while ((got = hv_expected_next(r, &elen)) > 0 || i < n_kept) {
        const char *act = i < n_kept ? r->cap.lines[kept[i]] : NULL;
        cJSON *ev = NULL, *av = NULL;
        struct hv_diff d;
        char *where = NULL;

        if (got < 0)
            return false;
        if (got > 0 && line_ignored(r, r->exp_line))
            continue;
        if (got > 0) {
            long k = hv_capture_attribute(&r->cap, r->exp_line);

            if (k >= 0)
                attributed_exp = k;
        }
        r->n_actual += act != NULL;
        if (act) {
            long k = hv_capture_attribute(&r->cap, act);

            if (k >= 0)
                attributed = k; /* later lines of the same input carry no ids */
        }
        if (act)
            hv_pending_write(r, act, strlen(act));
        if (got > 0 && act && strcmp(act, r->exp_line) == 0) {
            i++;
            continue;
        }
        ev = got > 0 ? cJSON_CreateString(r->exp_line) : NULL;
        av = act ? cJSON_CreateString(act) : NULL;
        d.expected = ev;
        d.actual = av;
        snprintf(d.path, sizeof(d.path), "%s line %ld", got > 0 ? "expected.txt" : "output",
                 got > 0 ? r->exp_lineno : (long)i + 1);
        /* name the input of the expected line: that is what the consumer got wrong */
        if (got > 0 && attributed_exp >= 0)
            attributed = attributed_exp;
        if (attributed >= 0) {
            const struct hv_input_info *in = &r->cap.inputs[attributed];
            char buf[600];

            snprintf(buf, sizeof(buf), "input %ld: %s, device %s, %s", attributed + 1,
                     in->type ? in->type : "?", in->device, in->measured_at);
            where = hv_xstrdup(buf);
        }
        hv_add_mismatch(r, act ? (long)i + 1 : 0, where ? where : "", &d,
                        !act       ? "no output line for this expected line"
                        : got == 0 ? "expected.txt has no line for this output line"
                                   : NULL);
        free(where);
        cJSON_Delete(ev);
        cJSON_Delete(av);
        if (got == 0 && !act)
            break;
        i++;
        if (got == 0 && i >= n_kept)
            break;
    }
    return got >= 0;
}

/* Latency through the consumer: each input's publish to the first output line naming it. */
static void latency_figures(struct hv_run *r)
{
    size_t n = r->cap.n_inputs, m = 0;
    double *ms = calloc(n ? n : 1, sizeof(double));
    bool *seen = calloc(n ? n : 1, sizeof(bool));

    if (!ms || !seen || r->o->probe) /* a probe's output comes after the consumer stopped */
        goto out;
    for (size_t i = 0; i < r->cap.n_lines; i++) {
        long k = hv_capture_attribute(&r->cap, r->cap.lines[i]);

        if (k < 0 || seen[k] || !r->cap.inputs[k].sent_ns)
            continue;
        seen[k] = true;
        ms[m++] = (double)(r->cap.line_ns[i] - r->cap.inputs[k].sent_ns) / 1e6;
    }
    for (size_t i = 1; i < m; i++) /* few values: insertion sort */
        for (size_t j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
            double t = ms[j];
            ms[j] = ms[j - 1];
            ms[j - 1] = t;
        }
    r->res->latency_n = (long)m;
    if (m) {
        r->res->latency_p50_ms = ms[(m - 1) / 2];
        r->res->latency_p99_ms = ms[(size_t)((double)(m - 1) * 0.99 + 0.5)];
        r->res->latency_max_ms = ms[m - 1];
    }
out:
    free(ms);
    free(seen);
}

/* The case's timeline, for --report-html; left empty when memory is short (the page says so). */
static void timeline_figures(struct hv_run *r)
{
    struct hv_timeline *tl = &r->res->timeline;
    size_t ni = r->cap.n_inputs, no = r->cap.n_lines;

    tl->input_ns = calloc(ni + 1, sizeof(*tl->input_ns));
    tl->input_failing = calloc(ni + 1, sizeof(*tl->input_failing));
    tl->output_ns = calloc(no + 1, sizeof(*tl->output_ns));
    tl->output_failing = calloc(no + 1, sizeof(*tl->output_failing));
    if (!tl->input_ns || !tl->input_failing || !tl->output_ns || !tl->output_failing)
        return;
    for (size_t i = 0; i < ni; i++)
        tl->input_ns[i] = r->cap.inputs[i].sent_ns;
    if (no)
        memcpy(tl->output_ns, r->cap.line_ns, no * sizeof(*tl->output_ns));
    tl->n_inputs = ni;
    tl->n_outputs = no;
}

static void consumer_figures(struct hv_run *r, hc_err rc)
{
    static const char *const how[] = {"by itself", "after SIGINT", "after SIGTERM",
                                      "killed: it ignored SIGINT and SIGTERM"};
    char what[200], buf[300];

    r->res->consumer = true;
    r->res->inputs_sent = r->cap.sent;
    r->res->outputs = (long)r->cap.n_lines;
    if (r->cap.stop_how == 1 && WIFSIGNALED(r->cap.exit_status) &&
        WTERMSIG(r->cap.exit_status) == SIGINT)
        snprintf(what, sizeof(what), "stopped"); /* sh -c itself dies of the SIGINT */
    else
        hc_proc_describe_status(r->cap.exit_status, what, sizeof(what));
    snprintf(buf, sizeof(buf), "%s %s%s", what,
             how[r->cap.stop_how >= 0 && r->cap.stop_how <= 3 ? r->cap.stop_how : 3],
             r->cap.exited_early && rc == HC_OK ? " before the case ended" : "");
    r->res->consumer_exit = hv_xstrdup(buf);
    if (r->cap.stderr_tail[0])
        r->res->stderr_tail = hv_xstrdup(r->cap.stderr_tail);
    r->res->faults_applied = (long)r->cap.n_faults;
    r->res->broker_restarted = r->cap.broker_restarted;
    latency_figures(r);
    timeline_figures(r);
}

/* The faults of the case: the command line's, else case.json's. Updating a case whose expected
 * output is the clean run's ("expect": "same", or --faults on a case without its own) runs it
 * clean: that is the output to keep. */
static void case_faults(const struct hv_run *r, struct hv_case_settings *cs)
{
    const struct hverify_opts *o = r->o;

    cs->faults = o->faults ? o->faults : r->extra.faults;
    cs->seed = o->seed_given ? o->fault_seed : r->extra.has_seed ? r->extra.seed : 1;
    if (cs->faults && o->update && (r->extra.expect_same || !r->extra.faults))
        cs->faults = NULL;
}

/* JSON mode: each kept output line is a value compared with the next expected one. */
static bool compare_json_lines(struct hv_run *r, const long *kept, size_t n_kept)
{
    bool ok = true;

    for (size_t i = 0; i < n_kept && ok; i++) {
        const char *line = r->cap.lines[kept[i]], *end = NULL;
        size_t len = strlen(line);
        cJSON *v = cJSON_ParseWithLengthOpts(line, len, &end, 0);
        char *where = hv_describe_input_of(r, line);

        if (v && end != line + len) {
            cJSON_Delete(v);
            v = NULL;
        }
        if (!v) {
            cJSON *raw = cJSON_CreateString(line);
            struct hv_diff d = {"$", NULL, raw};

            r->n_actual++;
            hv_add_mismatch(r, (long)r->n_actual, where, &d,
                            "the consumer printed a line that is not JSON (--text compares "
                            "plain lines; --ignore-line skips it)");
            cJSON_Delete(raw);
        } else {
            ok = hv_match_value(r, v, line, len, where);
        }
        free(where);
    }
    return ok;
}

bool hv_run_consumer(struct hv_run *r)
{
    struct hv_case_settings cs = {r->o->timing ? r->o->timing : r->extra.timing, NULL, 1};
    long *kept = NULL;
    size_t n_kept = 0;
    hc_err rc;

    case_faults(r, &cs);
    r->res->faults = cs.faults ? hv_xstrdup(cs.faults) : NULL;
    rc = hv_consumer_run_case(r->consumer, r->dir, &cs, &r->cap, &r->err);
    consumer_figures(r, rc);
    r->n_input = (long)r->cap.n_inputs;
    if (rc != HC_OK)
        return false;
    kept = calloc(r->cap.n_lines + 1, sizeof(long));
    if (!kept)
        return hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory") == HC_OK;
    for (size_t i = 0; i < r->cap.n_lines; i++)
        if (!blank(r->cap.lines[i]) && !line_ignored(r, r->cap.lines[i]))
            kept[n_kept++] = (long)i;
    r->kept = kept; /* the order-any and per-device comparisons name lines after this returns */
    r->n_kept = n_kept;
    return r->text ? compare_text(r, kept, n_kept) : compare_json_lines(r, kept, n_kept);
}

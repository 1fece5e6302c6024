/*
 * Running one case: its settings (the command line's and case.json's together), the stages in
 * order (the input, the expected file, the pending file with --update, the decoder or the
 * consumer, the comparison's end), then its status, figures and the update it leaves behind.
 */
#include "case_run.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/jsonout.h"
#include "hcore/timefmt.h"

static void run_release(struct hv_run *r)
{
    free(r->kept);
    hv_input_close(&r->in);
    if (r->exp)
        fclose(r->exp);
    free(r->exp_io);
    free(r->exp_buf);
    hc_jsonout_release(&r->print);
    hv_decoder_release(r);
    hv_match_release(r);
    hv_cfg_release(&r->cfg);
    hv_capture_release(&r->cap);
    free(r->extra.timing);
    free(r->extra.faults);
    for (size_t i = 0; i < r->extra.n_ign; i++)
        regfree(&r->extra.ign[i]);
}

/* Builds the effective settings: command line and case.json together. */
static bool case_settings(struct hv_run *r)
{
    const struct hverify_opts *o = r->o;
    enum hv_order case_order = HV_ORDER_UNSET;
    char why[400];

    r->cfg.abs_tol = 0;
    r->cfg.rel_tol = 0;
    if (!hv_load_case_settings(r->dir, &r->cfg, &case_order, &r->extra, why, sizeof(why))) {
        hc_error_set(&r->err, HC_ERR_PARSE, "%s", why);
        return false;
    }
    if (o->abs_tol > r->cfg.abs_tol)
        r->cfg.abs_tol = o->abs_tol;
    if (o->rel_tol > r->cfg.rel_tol)
        r->cfg.rel_tol = o->rel_tol;
    for (size_t i = 0; i < o->n_ignore; i++)
        if (!hv_add_ignore(&r->cfg, o->ignore[i], why, sizeof(why))) {
            hc_error_set(&r->err, HC_ERR_INVALID, "--ignore: %s", why);
            return false;
        }
    r->order = o->order != HV_ORDER_UNSET     ? o->order
               : case_order != HV_ORDER_UNSET ? case_order
                                              : HV_ORDER_STRICT;
    return true;
}

static void set_status(struct hv_run *r, bool ok)
{
    struct hv_case_result *res = r->res;

    if (!ok) {
        res->status = HV_ERROR;
        res->error = hv_xstrdup(r->err.message[0] ? r->err.message : hc_strerror(r->err.code));
        return;
    }
    res->status = res->mismatch_count ? HV_FAILED : HV_PASSED;
    if (!r->has_exp && !res->mismatch_count) {
        res->mismatch_count = 1; /* a new case is a change until accepted */
        res->status = HV_FAILED;
    }
}

/* The stages of the case, in order; false at the first that fails (r->err set). */
static bool run_stages(struct hv_run *r, const char *exp_path, const char *pend_path,
                       bool writes_allowed)
{
    const struct hverify_opts *o = r->o;

    if (!case_settings(r))
        return false;
    if (!r->consumer && hv_input_open(&r->in, r->dir, o->decoder == NULL, &r->err) != HC_OK)
        return false;
    if (!hv_expected_open(r, exp_path) || !hv_pending_open(r, pend_path, writes_allowed))
        return false;
    if (!(r->consumer ? hv_run_consumer(r) : o->decoder ? hv_run_external(r) : hv_run_builtin(r)))
        return false;
    if (!r->text && !hv_match_finish(r))
        return false;
    if (!r->has_exp)
        r->changed = true;
    return true;
}

void hv_case_run(const struct hverify_opts *o, struct hv_consumer *consumer, const char *dir,
                 struct hv_case_result *res, bool writes_allowed)
{
    struct hv_run r;
    char *exp_path = hv_path_join(dir, "expected.jsonl");
    char *pend_path = hv_path_join(dir, "expected.jsonl.pending");
    int64_t t0 = hc_time_monotonic_ns();
    bool ok = false;

    memset(&r, 0, sizeof(r));
    r.o = o;
    r.dir = dir;
    r.res = res;
    r.consumer = consumer;
    res->name = hv_xstrdup(dir);
    res->consumer = consumer != NULL;
    if (consumer && (o->text || hv_file_exists(dir, "expected.txt"))) {
        r.text = true;
        free(exp_path);
        free(pend_path);
        exp_path = hv_path_join(dir, "expected.txt");
        pend_path = hv_path_join(dir, "expected.txt.pending");
    }
    if (!exp_path || !pend_path)
        hc_error_set(&r.err, HC_ERR_NOMEM, "out of memory");
    else
        ok = run_stages(&r, exp_path, pend_path, writes_allowed);
    res->messages = r.n_input;
    res->expected_lines = r.n_expected;
    ok = hv_pending_settle(&r, ok, exp_path, pend_path);
    set_status(&r, ok);
    res->seconds = (double)(hc_time_monotonic_ns() - t0) / 1e9;
    if (ok && o->update && o->accept && writes_allowed)
        res->status = HV_PASSED; /* the fixture now holds this output */
    if (ok && o->update && r.changed)
        hv_pending_announce(&r, writes_allowed, exp_path, pend_path);
    run_release(&r);
    free(exp_path);
    free(pend_path);
}

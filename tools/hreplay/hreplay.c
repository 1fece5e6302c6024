/*
 * hreplay's work: open the selection (tool_source: a recording or JSON lines, selected and
 * limited as hcat does) as a message source, hand it to libcore's replay
 * engine (hcore/replay.h) with the options, show progress, and report what was sent and how
 * late, on stderr and as JSON.
 */
#include "hreplay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hcore/replay.h"
#include "hcore/timefmt.h"

#define KEPT_P99_LIMIT_NS 1000000LL /* the schedule counts as kept when p99 lateness < 1 ms */

/* --- input: tool_source, one pass per --loop, fed to the engine ------------------------------ */

struct source {
    tool_source *in;
    bool first_pass; /* opened by source_prepare: the engine's first open takes it as it is */
};

static hc_err source_open(void *ctx, hc_error *err)
{
    struct source *src = ctx;

    if (src->first_pass) {
        src->first_pass = false;
        return HC_OK;
    }
    return tool_source_rewind(src->in, err);
}

static void source_close(void *ctx)
{
    (void)ctx; /* the pass ends with the next rewind, the source in hreplay_run */
}

static hc_err source_next(void *ctx, struct hc_msg *msg, hc_error *err)
{
    struct source *src = ctx;
    hc_err rc = tool_source_next(src->in, msg, err);

    /* Ctrl-C while standard input waited: the engine sees tool_stop_requested and stops */
    return rc == HC_ERR_INTERRUPTED ? HC_DONE : rc;
}

/* Resolves --since/--until offsets against the first message, opens the input, counts it. */
static hc_err source_prepare(struct source *src, struct hreplay_opts *o, int64_t *total,
                             hc_error *err)
{
    struct tool_source_options opts = {.select = &o->select};
    hc_err rc;

    *total = -1;
    rc = tool_select_resolve_inputs(&o->select, &o->input, 1, false, err);
    if (rc == HC_OK)
        rc = tool_source_open(o->input, &opts, &src->in, err);
    if (rc == HC_OK)
        rc = tool_source_count(src->in, total, err);
    src->first_pass = rc == HC_OK;
    return rc;
}

/* --- progress and report --------------------------------------------------------------------- */

struct tool_run {
    const struct hreplay_opts *o;
    hc_replay *engine;
    int64_t total; /* selected messages per pass, -1 when unknown */
    FILE *lateness_log, *report_fp;
    FILE *fault_log;
    bool fault_log_failed;             /* out of memory formatting a line */
    const char *url;                   /* the broker, for the reports */
    FILE *html_fp;                     /* --report-html, opened at the start */
    struct hreplay_timeline *timeline; /* --report-html: per-time figures */
};

static const char *mode_name(enum hc_sched_mode m)
{
    switch (m) {
    case HC_SCHED_SPEED:
        return "speed";
    case HC_SCHED_RATE:
        return "rate";
    case HC_SCHED_MAX:
        return "max";
    default:
        return "original";
    }
}

static void on_progress(void *ctx, const hc_replay *engine, int64_t now)
{
    const struct tool_run *t = ctx;
    struct hc_replay_stats s;
    double elapsed, rate;
    int64_t total = -1;
    char eta[48] = "", late[48] = "";

    if (!tool_status_enabled() && !t->timeline)
        return;
    hc_replay_get_stats(engine, &s);
    if (t->timeline)
        hreplay_timeline_progress(t->timeline, &s, now);
    if (!tool_status_enabled())
        return;
    elapsed = (double)(now - s.start_mono_ns) / 1e9;
    rate = elapsed > 0 ? (double)s.sent / elapsed : 0;
    if (t->total >= 0 && t->o->loops > 0)
        total = t->total * t->o->loops;
    if (total > 0 && s.scheduled > 0 && elapsed > 0) {
        double left = (double)(total - (int64_t)s.scheduled) * elapsed / (double)s.scheduled;
        snprintf(eta, sizeof(eta), ", ETA %.0fs", left > 0 ? left : 0);
    }
    if (t->o->sched.mode != HC_SCHED_MAX)
        snprintf(late, sizeof(late), ", lateness %" PRId64 " us", s.last_lateness_ns / 1000);
    if (total >= 0)
        tool_status("sent %" PRIu64 ", message %" PRIu64 "/%" PRId64 " (%.0f%%), %.0f msg/s%s%s",
                    s.sent, s.scheduled, total,
                    total ? 100.0 * (double)s.scheduled / (double)total : 100.0, rate, eta, late);
    else
        tool_status("sent %" PRIu64 ", %.0f msg/s%s", s.sent, rate, late);
}

static void on_lateness(void *ctx, int64_t lateness_ns)
{
    const struct tool_run *t = ctx;
    if (t->lateness_log)
        fprintf(t->lateness_log, "%" PRId64 "\n", lateness_ns);
}

/* --report-html: each message's due and hand-off time */
static void on_handled_at(void *ctx, int64_t due_ns, int64_t handled_ns)
{
    struct tool_run *t = ctx;
    hreplay_timeline_handled(t->timeline, due_ns, handled_ns);
}

/* --fault-log: one JSON line per fault applied */
static void on_fault(void *ctx, const struct hc_faults_event *ev)
{
    struct tool_run *t = ctx;
    char *line;

    if (!t->fault_log)
        return;
    line = hc_faults_event_json(ev);
    if (!line) {
        t->fault_log_failed = true;
        return;
    }
    fprintf(t->fault_log, "%s\n", line);
    free(line);
}

/* --fault-type and the other --fault-* options: the fault scope */
static bool fault_in_scope(void *ctx, const struct hc_msg *msg)
{
    const struct hreplay_opts *o = ctx;
    return tool_select_matches(&o->fault_select, msg);
}

/* The faults' line on stderr: what was applied, per kind, and what it did to the figures. */
static void report_faults(const struct hreplay_opts *o, const struct hc_faults_counts *f)
{
    char line[600];
    size_t n = 0;

    for (int k = 0; k < HC_FAULT__COUNT; k++)
        if (f->applied[k] && n < sizeof(line))
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s %" PRIu64, n ? ", " : "",
                                  hc_faults_kind_name((enum hc_fault_kind)k), f->applied[k]);
    fprintf(stderr,
            "%s: faults (seed %" PRIu64 "): %s; %" PRIu64 " dropped, %" PRIu64
            " lost at disconnects, %" PRIu64 " duplicates sent, %" PRIu64 " connections broken\n",
            tool_name, o->fault_seed, n ? line : "none applied", f->dropped, f->lost, f->duplicates,
            f->reconnects);
}

static void report_faults_json(const struct hreplay_opts *o, const struct hc_faults_counts *f,
                               cJSON *j)
{
    cJSON *fj = cJSON_AddObjectToObject(j, "faults");
    cJSON *applied = cJSON_AddObjectToObject(fj, "applied");
    char seed[24];

    cJSON_AddStringToObject(fj, "spec", hc_faults_spec(o->faults));
    /* raw: a double would round seeds above 2^53 */
    snprintf(seed, sizeof(seed), "%" PRIu64, o->fault_seed);
    cJSON_AddRawToObject(fj, "seed", seed);
    for (int k = 0; k < HC_FAULT__COUNT; k++)
        if (hc_faults_has(o->faults, (enum hc_fault_kind)k))
            cJSON_AddNumberToObject(applied, hc_faults_kind_name((enum hc_fault_kind)k),
                                    (double)f->applied[k]);
    cJSON_AddNumberToObject(fj, "dropped", (double)f->dropped);
    cJSON_AddNumberToObject(fj, "lost", (double)f->lost);
    cJSON_AddNumberToObject(fj, "duplicates", (double)f->duplicates);
    cJSON_AddNumberToObject(fj, "reconnects", (double)f->reconnects);
}

static double us(int64_t ns)
{
    return (double)ns / 1000.0;
}

/*
 * What --merge-reports needs beyond the totals: when the run started and ended (CLOCK_REALTIME,
 * RFC 3339) and the lateness histogram, sparse, as [bucket upper edge ns, count] pairs, with its
 * exact count, sum and max.
 */
static void add_times_and_histogram(cJSON *j, const struct hc_replay_stats *s,
                                    const struct hc_hist *h)
{
    int64_t ended = hc_time_realtime_ns();
    int64_t started = ended - (s->end_mono_ns - s->start_mono_ns);
    char text[48];
    cJSON *hist, *buckets;

    hc_time_format_rfc3339(started, 6, text, sizeof(text));
    cJSON_AddStringToObject(j, "started_at", text);
    hc_time_format_rfc3339(ended, 6, text, sizeof(text));
    cJSON_AddStringToObject(j, "ended_at", text);
    hist = cJSON_AddObjectToObject(j, "lateness_hist");
    cJSON_AddStringToObject(hist, "scheme", "log-linear: 128 buckets per power of two of ns");
    cJSON_AddNumberToObject(hist, "count", (double)h->total);
    cJSON_AddNumberToObject(hist, "sum_ns", (double)h->sum);
    cJSON_AddNumberToObject(hist, "max_ns", (double)h->max);
    buckets = cJSON_AddArrayToObject(hist, "buckets");
    for (size_t i = 0; i < HC_HIST_BUCKETS; i++) {
        if (h->counts[i]) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)hc_hist_bucket_upper(i)));
            cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)h->counts[i]));
            cJSON_AddItemToArray(buckets, pair);
        }
    }
}

/* --report-html: the page, from the final figures and the timeline. */
static bool report_html(struct tool_run *t, const struct hc_replay_stats *s, bool kept)
{
    struct hreplay_html_page page = {.o = t->o,
                                     .url = t->url,
                                     .mode = mode_name(t->o->sched.mode),
                                     .stats = s,
                                     .schedule_kept = kept,
                                     .timeline = t->timeline};
    FILE *fp = t->html_fp;
    bool ok;

    t->html_fp = NULL;
    /* failures and reconnects noticed after the last progress call: at the end */
    hreplay_timeline_progress(t->timeline, s, s->end_mono_ns);
    ok = hreplay_html_write(fp, &page);
    if (fclose(fp) != 0)
        ok = false;
    if (!ok)
        tool_error("cannot write report '%s': %s", t->o->report_html, strerror(errno));
    return ok;
}

/* The final figures both reports share. */
struct report_figures {
    struct hc_replay_stats stats;
    double duration_s; /* end_mono_ns - start_mono_ns of the stats, in s */
    double rate_msg_s; /* sent / duration_s */
    bool timed;        /* a schedule to be late for: not --max */
    bool kept;         /* timed, something sent, p99 lateness under KEPT_P99_LIMIT_NS */
};

/* The summary on stderr (not with --quiet). */
static void report_text(const struct hreplay_opts *o, const struct report_figures *f)
{
    const struct hc_replay_stats *s = &f->stats;
    const struct hc_sched_stats *st = &s->lateness;

    fprintf(stderr,
            "%s: sent %" PRIu64 " messages, %" PRIu64 " failed, in %.3f s: %.0f msg/s "
            "(%s timing%s)\n",
            tool_name, s->sent, s->failed, f->duration_s, f->rate_msg_s, mode_name(o->sched.mode),
            s->interrupted ? ", interrupted" : "");
    if (s->invalid_topics)
        fprintf(stderr, "%s: %" PRIu64 " message%s not sent: invalid topic\n", tool_name,
                s->invalid_topics, s->invalid_topics == 1 ? "" : "s");
    if (s->invalid_input)
        fprintf(stderr, "%s: %" PRIu64 " input line%s not sent: not a valid message\n",
                tool_name, s->invalid_input, s->invalid_input == 1 ? "" : "s");
    if (f->timed && st->count)
        fprintf(stderr,
                "%s: lateness p50 %.0f us, p99 %.0f us, max %.0f us over %" PRIu64
                " messages; schedule kept: %s (p99 under 1000 us)\n",
                tool_name, us(st->p50_ns), us(st->p99_ns), us(st->max_ns), st->count,
                f->kept ? "yes" : "no");
    else if (!f->timed)
        fprintf(stderr, "%s: lateness not measured (--max has no schedule)\n", tool_name);
    if (s->other_shards)
        fprintf(stderr, "%s: %" PRIu64 " messages belong to other shards\n", tool_name,
                s->other_shards);
    if (o->faults)
        report_faults(o, &s->faults);
    if (s->reconnects)
        fprintf(stderr,
                "%s: connection lost %" PRIu64 " times: %" PRIu64 " messages resent, up to %" PRIu64
                " QoS 0 messages may have been lost\n",
                tool_name, s->reconnects, s->resent, s->qos0_maybe_lost);
}

/* The --report-json object: totals, lateness, what --merge-reports needs, faults. */
static cJSON *report_json_object(const struct tool_run *t, const struct report_figures *f)
{
    const struct hreplay_opts *o = t->o;
    const struct hc_replay_stats *s = &f->stats;
    const struct hc_sched_stats *st = &s->lateness;
    cJSON *j = cJSON_CreateObject();
    cJSON *lat;

    cJSON_AddStringToObject(j, "input", o->input);
    cJSON_AddStringToObject(j, "mode", mode_name(o->sched.mode));
    if (o->sched.mode == HC_SCHED_SPEED)
        cJSON_AddNumberToObject(j, "speed", o->sched.speed);
    if (o->sched.mode == HC_SCHED_RATE)
        cJSON_AddNumberToObject(j, "rate", o->sched.rate);
    cJSON_AddNumberToObject(j, "sent", (double)s->sent);
    cJSON_AddNumberToObject(j, "failed", (double)s->failed);
    cJSON_AddNumberToObject(j, "resent", (double)s->resent);
    cJSON_AddNumberToObject(j, "reconnects", (double)s->reconnects);
    cJSON_AddNumberToObject(j, "qos0_maybe_lost", (double)s->qos0_maybe_lost);
    cJSON_AddNumberToObject(j, "invalid_topics", (double)s->invalid_topics);
    cJSON_AddNumberToObject(j, "invalid_input", (double)s->invalid_input);
    cJSON_AddNumberToObject(j, "other_shards", (double)s->other_shards);
    cJSON_AddNumberToObject(j, "passes", (double)s->passes);
    cJSON_AddBoolToObject(j, "interrupted", s->interrupted);
    cJSON_AddNumberToObject(j, "duration_s", f->duration_s);
    cJSON_AddNumberToObject(j, "rate_msg_s", f->rate_msg_s);
    if (f->timed && st->count > 0) {
        lat = cJSON_AddObjectToObject(j, "lateness_us");
        cJSON_AddNumberToObject(lat, "count", (double)st->count);
        cJSON_AddNumberToObject(lat, "p50", us(st->p50_ns));
        cJSON_AddNumberToObject(lat, "p90", us(st->p90_ns));
        cJSON_AddNumberToObject(lat, "p99", us(st->p99_ns));
        cJSON_AddNumberToObject(lat, "p999", us(st->p999_ns));
        cJSON_AddNumberToObject(lat, "max", us(st->max_ns));
        cJSON_AddNumberToObject(lat, "mean", st->mean_ns / 1000.0);
        cJSON_AddBoolToObject(j, "schedule_kept", f->kept);
    } else {
        /* --max has no schedule, and nothing sent has no lateness: unknown, not "0" */
        cJSON_AddNullToObject(j, "lateness_us");
        cJSON_AddNullToObject(j, "schedule_kept");
    }
    cJSON_AddStringToObject(j, "schedule_kept_rule", "p99 lateness under 1000 us");
    add_times_and_histogram(j, s, hc_replay_lateness(t->engine));
    if (o->faults)
        report_faults_json(o, &s->faults, j);
    return j;
}

/* --report-json: the object into the file opened at the start, which is closed here. */
static bool report_json(struct tool_run *t, const struct report_figures *f)
{
    cJSON *j = report_json_object(t, f);
    char *text = cJSON_Print(j);
    FILE *fp = t->report_fp;
    bool ok = true;

    t->report_fp = NULL;
    if (!fp || !text || fprintf(fp, "%s\n", text) < 0 || fclose(fp) != 0) {
        tool_error("cannot write report '%s': %s", t->o->report_json, strerror(errno));
        ok = false;
    }
    free(text);
    cJSON_Delete(j);
    return ok;
}

/* The reports the options ask for: stderr, --report-html, --report-json. */
static bool report(struct tool_run *t)
{
    const struct hreplay_opts *o = t->o;
    struct report_figures f;
    bool ok = true;

    hc_replay_get_stats(t->engine, &f.stats);
    f.duration_s = (double)(f.stats.end_mono_ns - f.stats.start_mono_ns) / 1e9;
    f.rate_msg_s = f.duration_s > 0 ? (double)f.stats.sent / f.duration_s : 0;
    f.timed = o->sched.mode != HC_SCHED_MAX;
    f.kept = f.timed && f.stats.lateness.count > 0 && f.stats.lateness.p99_ns < KEPT_P99_LIMIT_NS;
    tool_status_clear();
    if (tool_verbosity >= 1)
        report_text(o, &f);
    if (t->html_fp && !report_html(t, &f.stats, f.kept))
        ok = false;
    if (o->report_json && !report_json(t, &f))
        ok = false;
    return ok;
}

/* Input that trickles (a pipe): what is batched leaves now, not when the batch fills. */
static void flush_on_wait(void *ctx)
{
    struct tool_run *t = ctx;
    if (t->engine)
        hc_replay_flush(t->engine);
}

/* The engine's options from the command line's. */
static void engine_options(struct hreplay_opts *o, struct tool_run *t,
                           const struct hc_mqtt_options *mo, struct hc_replay_options *ro)
{
    memset(ro, 0, sizeof(*ro));
    ro->mqtt = *mo;
    ro->mqtt.max_inflight = (int)o->inflight;
    ro->sched = o->sched;
    ro->spin_ns = o->spin_ns;
    ro->stop = &tool_stop_requested;
    ro->qos = o->qos;
    ro->retain_never = o->retain_never;
    ro->remaps = o->remaps;
    ro->n_remaps = o->n_remaps;
    ro->integration_id = o->topic_integration_id;
    ro->api_key_id = o->topic_api_key_id;
    ro->rebase_time = o->rebase_time;
    ro->fanout = o->fanout;
    ro->connections = o->connections;
    ro->shard_k = o->shard_k;
    ro->shard_n = o->shard_n;
    ro->loops = o->loops;
    ro->give_up_ns = o->give_up_ns;
    ro->start_at_ns = o->start_at_ns;
    ro->hooks.lateness = on_lateness;
    ro->hooks.progress = on_progress;
    ro->hooks.fault = on_fault;
    if (t->timeline)
        ro->hooks.handled_at = on_handled_at;
    ro->hooks.ctx = t;
    ro->faults = o->faults;
    ro->fault_seed = o->fault_seed;
    if (o->fault_scoped) {
        ro->fault_in_scope = fault_in_scope;
        ro->fault_scope_ctx = o;
    }
}

/* Opens an output file named on the command line now, not after the whole replay. */
static bool open_output(const char *path, FILE **fp)
{
    *fp = fopen(path, "w");
    if (!*fp)
        tool_error("cannot write '%s': %s", path, strerror(errno));
    return *fp != NULL;
}

/* --report-json and --report-html (with its timeline), before the input is read. */
static bool open_reports(struct tool_run *t)
{
    const struct hreplay_opts *o = t->o;
    hc_error err = HC_ERROR_INIT;

    if (o->report_json && !open_output(o->report_json, &t->report_fp))
        return false;
    if (o->report_html) {
        if (!open_output(o->report_html, &t->html_fp))
            return false;
        if (hreplay_timeline_new(&t->timeline, &err) != HC_OK) {
            tool_error("%s", err.message);
            return false;
        }
    }
    return true;
}

/* --lateness-log and --fault-log, once the input is open. */
static bool open_logs(struct tool_run *t)
{
    const struct hreplay_opts *o = t->o;

    if (o->lateness_log && !open_output(o->lateness_log, &t->lateness_log))
        return false;
    if (o->fault_log && !open_output(o->fault_log, &t->fault_log))
        return false;
    return true;
}

/* Flushes the logs written during the replay; HC_ERR_IO (message printed) when one failed. */
static hc_err flush_logs(struct tool_run *t)
{
    const struct hreplay_opts *o = t->o;
    hc_err rc = HC_OK;

    if (t->lateness_log && fflush(t->lateness_log) != 0) {
        tool_error("cannot write '%s': %s", o->lateness_log, strerror(errno));
        rc = HC_ERR_IO;
    }
    if (t->fault_log &&
        (fflush(t->fault_log) != 0 || ferror(t->fault_log) || t->fault_log_failed)) {
        tool_error("cannot write '%s': %s", o->fault_log,
                   t->fault_log_failed ? "out of memory" : strerror(errno));
        rc = HC_ERR_IO;
    }
    return rc;
}

/* A replay on the schedule (not a ramp): run it, report it; the exit code. */
static int replay(struct tool_run *t, const struct hc_replay_source *source,
                  const struct hc_replay_options *ro)
{
    const struct hreplay_opts *o = t->o;
    struct hc_replay_stats s;
    hc_error err = HC_ERROR_INIT;
    hc_err rc;

    rc = hc_replay_new(ro, &t->engine, &err);
    if (rc != HC_OK) {
        tool_error("%s", err.message);
        return TOOL_EXIT_FAILURE;
    }
    tool_info("replaying '%s' to %s (%s timing, %ld connection%s)", o->input, t->url,
              mode_name(o->sched.mode), o->connections, o->connections == 1 ? "" : "s");
    rc = hc_replay_run(t->engine, source, &err);
    if (rc != HC_OK) {
        tool_status_clear();
        tool_error("%s", err.message);
    }
    if (flush_logs(t) != HC_OK)
        rc = HC_ERR_IO;
    if (!report(t))
        rc = HC_ERR_IO;
    hc_replay_get_stats(t->engine, &s);
    return rc == HC_OK && !s.gave_up && s.failed == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}

/* Closes what hreplay_run opened, on every path; accepts what was never opened. */
static void run_release(struct tool_run *t, struct source *src)
{
    hc_replay_free(t->engine);
    if (t->lateness_log)
        fclose(t->lateness_log);
    if (t->fault_log)
        fclose(t->fault_log);
    if (t->report_fp)
        fclose(t->report_fp);
    if (t->html_fp)
        fclose(t->html_fp);
    hreplay_timeline_free(t->timeline);
    tool_source_close(src->in);
}

int hreplay_run(struct hreplay_opts *o)
{
    struct source src = {0};
    struct tool_run t = {.o = o, .total = -1};
    struct hc_replay_source source = {source_open, source_next, source_close, &src};
    struct hc_replay_options ro;
    struct hc_mqtt_options mo;
    hc_error err = HC_ERROR_INIT;
    int code = TOOL_EXIT_FAILURE;

    if (o->n_merge_reports)
        return hreplay_merge(o);
    if (tool_mqtt_resolve(&o->mqtt, "mqtt://localhost:1883", &mo) != OPTS_OK)
        return TOOL_EXIT_USAGE;
    if (!open_reports(&t))
        goto out;
    t.url = mo.url;
    if (source_prepare(&src, o, &t.total, &err) != HC_OK) {
        tool_error("%s", err.message);
        goto out;
    }
    tool_source_set_wait_hook(src.in, flush_on_wait, &t);
    if (!open_logs(&t))
        goto out;
    engine_options(o, &t, &mo, &ro);
    if (o->ramp.on) {
        code = hreplay_ramp_run(o, &ro, &source, t.report_fp);
        t.report_fp = NULL; /* closed by the ramp */
    } else {
        code = replay(&t, &source, &ro);
    }
out:
    run_release(&t, &src);
    return code;
}

/*
 * The user's decoder as a child process, fed the case's input on stdin while its stdout is read,
 * both through one poll() loop so neither side can block on a full pipe however large the case.
 *
 * hkit owns what it starts: the decoder runs under libcore's process runner (hcore/proc.h), the
 * same supervisor as hverify --consumer and hreplay --consumer use. It is a subreaper, so every
 * descendant of the decoder, even one that left with setsid, stays its descendant; it dies with
 * hverify (PR_SET_PDEATHSIG), and when the decoder exits, when hverify stops it, or when hverify
 * dies, it kills every process left under it and reaps them. The decoder starts with default
 * signal dispositions and an empty signal mask. Output lines are bounded (HV_MAX_LINE_BYTES);
 * the last line the decoder wrote on stderr is kept for error messages.
 */
#include "hverify.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hcore/proc.h"
#include "hcore/timefmt.h"

/* The last line the decoder wrote on stderr into buf, or NULL when it wrote none. */
static const char *last_stderr_line(hc_proc *p, char *buf, size_t size)
{
    hc_proc_read_stderr(p);
    hc_proc_stderr_tail(p, 1, buf, size);
    return buf[0] ? buf : NULL;
}

/* Waits for the decoder to finish (everything under it reaped). With a deadline, or on
 * tool_stop_requested, stops it instead. Returns its wait status, or -1 when it was stopped. */
static int reap(hc_proc *p, int64_t deadline_ns, bool *timed_out)
{
    int status = 0;

    while (!hc_proc_exited(p, &status)) {
        struct timespec ts = {0, 2000000};

        hc_proc_read_stderr(p);
        if ((deadline_ns && hc_time_monotonic_ns() >= deadline_ns) || tool_stop_requested) {
            *timed_out = !tool_stop_requested;
            hc_proc_stop(p, NULL);
            return -1;
        }
        nanosleep(&ts, NULL);
    }
    return status;
}

/* One decoder's run: the process, its input (fed in chunks) and its output (split in lines). */
struct extdec {
    hc_proc *p;
    hv_feed_fn feed;
    hv_line_fn line;
    void *user;
    hc_error *err;
    int64_t timeout_ns, deadline_ns; /* deadline: CLOCK_MONOTONIC, 0 none */

    char *wbuf; /* input not yet written: wbuf[woff..wlen) */
    size_t wlen, wcap, woff;
    bool more_input; /* feed has more to give */

    char *rbuf; /* output not yet split into lines: rbuf[0..rlen) */
    size_t rlen, rcap;
    long lines_seen;

    bool timed_out; /* the deadline passed */
    bool stopped;   /* the line callback asked to stop (it filled err) */
};

/* The poll slots of the decoder's pipes still open; -1 for a closed one. */
struct slots {
    struct pollfd fds[3];
    nfds_t n;
    int in, out, err;
};

/* Starts `sh -c command` with HVERIFY_CASE exported and a pipe on its stdin. */
static hc_err start_decoder(const char *command, const char *case_dir, hc_proc **p, hc_error *err)
{
    struct hc_proc_options po;
    char case_env[1100];
    const char *env[2] = {case_env, NULL};

    snprintf(case_env, sizeof(case_env), "HVERIFY_CASE=%s", case_dir);
    memset(&po, 0, sizeof(po));
    po.command = command;
    po.env = env;
    po.stdin_pipe = true;
    po.interrupt_grace_ns = 0; /* a decoder is killed at once, with everything it started */
    return hc_proc_start(&po, p, err);
}

/* Keeps the write buffer topped up (bounded: feed adds roughly one chunk), and closes the
 * decoder's stdin once everything is written: EOF tells it the case is complete. false when
 * feed failed (*rc set). */
static bool top_up_input(struct extdec *x, hc_err *rc)
{
    if (hc_proc_stdin(x->p) >= 0 && x->woff == x->wlen && x->more_input) {
        int f;

        x->wlen = x->woff = 0;
        f = x->feed(x->user, &x->wbuf, &x->wlen, &x->wcap, x->err);
        if (f < 0) {
            *rc = x->err ? x->err->code : HC_ERR_IO;
            return false;
        }
        x->more_input = f > 0;
    }
    if (hc_proc_stdin(x->p) >= 0 && x->woff == x->wlen && !x->more_input)
        hc_proc_close_stdin(x->p);
    return true;
}

static void poll_slots(const struct extdec *x, struct slots *s)
{
    s->n = 0;
    s->in = s->out = s->err = -1;
    if (hc_proc_stdin(x->p) >= 0) {
        s->fds[s->n] = (struct pollfd){hc_proc_stdin(x->p), POLLOUT, 0};
        s->in = (int)s->n++;
    }
    if (hc_proc_stdout(x->p) >= 0) {
        s->fds[s->n] = (struct pollfd){hc_proc_stdout(x->p), POLLIN, 0};
        s->out = (int)s->n++;
    }
    if (hc_proc_stderr(x->p) >= 0) {
        s->fds[s->n] = (struct pollfd){hc_proc_stderr(x->p), POLLIN, 0};
        s->err = (int)s->n++;
    }
}

/* How long poll may wait, in ms; false when the run must end now: interrupted (*rc set) or past
 * the deadline (x->timed_out). */
static bool poll_wait_ms(struct extdec *x, int *wait_ms, hc_err *rc)
{
    *wait_ms = -1;
    if (tool_stop_requested) {
        *rc = hc_error_set(x->err, HC_ERR_INTERRUPTED, "interrupted; stopped the decoder");
        return false;
    }
    if (x->deadline_ns) {
        int64_t left = x->deadline_ns - hc_time_monotonic_ns();

        if (left <= 0) {
            x->timed_out = true;
            return false;
        }
        *wait_ms = (int)(left / 1000000 + 1);
    }
    /* a signal interrupts poll (no SA_RESTART); the cap covers one arriving just before it */
    if (*wait_ms < 0 || *wait_ms > 200)
        *wait_ms = 200;
    return true;
}

static void write_input(struct extdec *x)
{
    ssize_t k = write(hc_proc_stdin(x->p), x->wbuf + x->woff, x->wlen - x->woff);

    if (k > 0) {
        x->woff += (size_t)k;
    } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
        /* EPIPE: the decoder stopped reading; what it printed decides the outcome. */
        hc_proc_close_stdin(x->p);
        x->more_input = false;
    }
}

/* Room for at least 64 KiB more output; false when a line is too long or memory is short. */
static bool make_room(struct extdec *x, hc_err *rc)
{
    char *nb;

    if (x->rlen > HV_MAX_LINE_BYTES) {
        *rc = hc_error_set(x->err, HC_ERR_PARSE,
                           "decoder output line %ld is longer than %d MiB (does the "
                           "decoder end each value with a newline?)",
                           x->lines_seen + 1, HV_MAX_LINE_BYTES >> 20);
        return false;
    }
    if (x->rcap - x->rlen >= 65536)
        return true;
    nb = realloc(x->rbuf, x->rcap ? x->rcap * 2 : 131072);
    if (!nb) {
        *rc = hc_error_set(x->err, HC_ERR_NOMEM, "out of memory");
        return false;
    }
    x->rbuf = nb;
    x->rcap = x->rcap ? x->rcap * 2 : 131072;
    return true;
}

/* Hands the complete lines among the k bytes just read to the line callback; false when it
 * asked to stop (x->stopped). */
static bool deliver_lines(struct extdec *x, size_t k)
{
    size_t start = 0;

    x->rlen += k;
    for (size_t i = x->rlen - k; i < x->rlen; i++) {
        if (x->rbuf[i] != '\n')
            continue;
        x->rbuf[i] = '\0';
        x->lines_seen++;
        if (x->line(x->user, x->rbuf + start, i - start)) {
            x->stopped = true;
            return false;
        }
        start = i + 1;
    }
    if (start) { /* never move a long partial line again and again */
        memmove(x->rbuf, x->rbuf + start, x->rlen - start);
        x->rlen -= start;
    }
    return true;
}

/* At the end of the output: a last line without '\n'. false when memory is short (*rc set) or
 * the line callback asked to stop (x->stopped). */
static bool deliver_last_line(struct extdec *x, hc_err *rc)
{
    if (!x->rlen)
        return true;
    if (x->rlen == x->rcap) {
        char *nb = realloc(x->rbuf, x->rcap + 1);
        if (!nb) {
            *rc = hc_error_set(x->err, HC_ERR_NOMEM, "out of memory");
            return false;
        }
        x->rbuf = nb;
        x->rcap++;
    }
    x->rbuf[x->rlen] = '\0';
    if (x->line(x->user, x->rbuf, x->rlen)) {
        x->stopped = true;
        return false;
    }
    x->rlen = 0;
    return true;
}

/* Reads what the decoder printed and passes on its lines; false when the run must end. */
static bool read_output(struct extdec *x, hc_err *rc)
{
    long k;

    if (!make_room(x, rc))
        return false;
    k = hc_proc_read_stdout(x->p, x->rbuf + x->rlen, x->rcap - x->rlen);
    if (k > 0)
        return deliver_lines(x, (size_t)k);
    if (k == 0) /* hc_proc_read_stdout closed it */
        return deliver_last_line(x, rc);
    if (errno != EAGAIN && errno != EINTR) {
        *rc = hc_error_set(x->err, HC_ERR_IO, "cannot read decoder output: %s", strerror(errno));
        return false;
    }
    return true;
}

/* Feeds the input and reads the output, concurrently, until the decoder closes its output.
 * true then; false when the decoder must be stopped (*rc, x->timed_out or x->stopped says
 * why). */
static bool pump(struct extdec *x, hc_err *rc)
{
    while (hc_proc_stdout(x->p) >= 0 || hc_proc_stderr(x->p) >= 0) {
        struct slots s;
        int wait_ms;

        if (!top_up_input(x, rc))
            return false;
        poll_slots(x, &s);
        if (!poll_wait_ms(x, &wait_ms, rc))
            return false;
        if (poll(s.fds, s.n, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            *rc = hc_error_set(x->err, HC_ERR_IO, "poll: %s", strerror(errno));
            return false;
        }
        if (s.in >= 0 && s.fds[s.in].revents)
            write_input(x);
        if (s.err >= 0 && s.fds[s.err].revents)
            hc_proc_read_stderr(x->p);
        if (s.out >= 0 && s.fds[s.out].revents && !read_output(x, rc))
            return false;
    }
    return true;
}

static hc_err timeout_error(struct extdec *x)
{
    char tail[300];
    const char *last = last_stderr_line(x->p, tail, sizeof(tail));

    return hc_error_set(
        x->err, HC_ERR_TIMEOUT, "decoder timed out after %.3gs (killed it and its children)%s%s",
        (double)x->timeout_ns / 1e9, last ? "; its stderr: " : "", last ? last : "");
}

/* The output is closed: waits for the decoder to exit (it may still be finishing) and judges
 * how it ended. */
static hc_err collect_exit(struct extdec *x)
{
    char tail[300], what[160];
    const char *last;
    int status;

    hc_proc_close_stdin(x->p);
    status = reap(x->p, x->deadline_ns, &x->timed_out);
    if (x->timed_out)
        return timeout_error(x);
    if (status == -1 && tool_stop_requested)
        return hc_error_set(x->err, HC_ERR_INTERRUPTED, "interrupted; stopped the decoder");
    if (status == 0)
        return HC_OK;
    last = last_stderr_line(x->p, tail, sizeof(tail));
    hc_proc_describe_status(status, what, sizeof(what));
    return hc_error_set(x->err, HC_ERR_IO, "decoder %s%s%s", what, last ? "; its stderr: " : "",
                        last ? last : "");
}

/* Stops the decoder (and everything under it) before its end; rc is why, unless the line
 * callback stopped it or the deadline passed. */
static hc_err kill_decoder(struct extdec *x, hc_err rc)
{
    hc_proc_stop(x->p, NULL);
    if (x->stopped) /* the line callback filled err */
        rc = x->err && x->err->code != HC_OK ? x->err->code : HC_ERR_PARSE;
    if (x->timed_out)
        rc = timeout_error(x);
    return rc;
}

hc_err hv_extdec_run(const char *command, const char *case_dir, int64_t timeout_ns, hv_feed_fn feed,
                     hv_line_fn line, void *user, hc_error *err)
{
    struct extdec x;
    hc_err rc;

    memset(&x, 0, sizeof(x));
    x.feed = feed;
    x.line = line;
    x.user = user;
    x.err = err;
    x.timeout_ns = timeout_ns;
    x.deadline_ns = timeout_ns > 0 ? hc_time_monotonic_ns() + timeout_ns : 0;
    x.more_input = true;
    rc = start_decoder(command, case_dir, &x.p, err);
    if (rc == HC_OK) {
        if (pump(&x, &rc))
            rc = collect_exit(&x);
        else
            rc = kill_decoder(&x, rc);
    }
    hc_proc_free(x.p);
    free(x.wbuf);
    free(x.rbuf);
    return rc;
}

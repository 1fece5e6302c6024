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

hc_err hv_extdec_run(const char *command, const char *case_dir, int64_t timeout_ns, hv_feed_fn feed,
                     hv_line_fn line, void *user, hc_error *err)
{
    struct hc_proc_options po;
    hc_proc *p = NULL;
    char case_env[1100];
    const char *env[2] = {case_env, NULL};
    char *wbuf = NULL, *rbuf = NULL;
    size_t wlen = 0, wcap = 0, woff = 0, rlen = 0, rcap = 0;
    int64_t deadline = timeout_ns > 0 ? hc_time_monotonic_ns() + timeout_ns : 0;
    bool more_input = true, timed_out = false, stopped = false;
    hc_err rc = HC_OK;
    char tail[300];
    int status;
    long lines_seen = 0;

    snprintf(case_env, sizeof(case_env), "HVERIFY_CASE=%s", case_dir);
    memset(&po, 0, sizeof(po));
    po.command = command;
    po.env = env;
    po.stdin_pipe = true;
    po.interrupt_grace_ns = 0; /* a decoder is killed at once, with everything it started */
    rc = hc_proc_start(&po, &p, err);
    if (rc != HC_OK)
        goto out;
    while (hc_proc_stdout(p) >= 0 || hc_proc_stderr(p) >= 0) {
        struct pollfd fds[3];
        nfds_t n = 0;
        int wait_ms = -1, in_slot = -1, out_slot = -1, err_slot = -1;

        /* Keep the write buffer topped up (bounded: feed adds roughly one chunk). */
        if (hc_proc_stdin(p) >= 0 && woff == wlen && more_input) {
            int f;

            wlen = woff = 0;
            f = feed(user, &wbuf, &wlen, &wcap, err);
            if (f < 0) {
                rc = err ? err->code : HC_ERR_IO;
                goto kill_out;
            }
            more_input = f > 0;
        }
        if (hc_proc_stdin(p) >= 0 && woff == wlen && !more_input)
            hc_proc_close_stdin(p); /* EOF tells the decoder the case is complete */
        if (hc_proc_stdin(p) >= 0) {
            fds[n] = (struct pollfd){hc_proc_stdin(p), POLLOUT, 0};
            in_slot = (int)n++;
        }
        if (hc_proc_stdout(p) >= 0) {
            fds[n] = (struct pollfd){hc_proc_stdout(p), POLLIN, 0};
            out_slot = (int)n++;
        }
        if (hc_proc_stderr(p) >= 0) {
            fds[n] = (struct pollfd){hc_proc_stderr(p), POLLIN, 0};
            err_slot = (int)n++;
        }
        if (tool_stop_requested) {
            rc = hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the decoder");
            goto kill_out;
        }
        if (deadline) {
            int64_t left = deadline - hc_time_monotonic_ns();

            if (left <= 0) {
                timed_out = true;
                goto kill_out;
            }
            wait_ms = (int)(left / 1000000 + 1);
        }
        /* a signal interrupts poll (no SA_RESTART); the cap covers one arriving just before it */
        if (wait_ms < 0 || wait_ms > 200)
            wait_ms = 200;
        if (poll(fds, n, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            rc = hc_error_set(err, HC_ERR_IO, "poll: %s", strerror(errno));
            goto kill_out;
        }
        if (in_slot >= 0 && fds[in_slot].revents) {
            ssize_t k = write(hc_proc_stdin(p), wbuf + woff, wlen - woff);

            if (k > 0) {
                woff += (size_t)k;
            } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                /* EPIPE: the decoder stopped reading; what it printed decides the outcome. */
                hc_proc_close_stdin(p);
                more_input = false;
            }
        }
        if (err_slot >= 0 && fds[err_slot].revents)
            hc_proc_read_stderr(p);
        if (out_slot >= 0 && fds[out_slot].revents) {
            long k;

            if (rlen > HV_MAX_LINE_BYTES) {
                rc = hc_error_set(err, HC_ERR_PARSE,
                                  "decoder output line %ld is longer than %d MiB (does the "
                                  "decoder end each value with a newline?)",
                                  lines_seen + 1, HV_MAX_LINE_BYTES >> 20);
                goto kill_out;
            }
            if (rcap - rlen < 65536) {
                char *nb = realloc(rbuf, rcap ? rcap * 2 : 131072);

                if (!nb) {
                    rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                    goto kill_out;
                }
                rbuf = nb;
                rcap = rcap ? rcap * 2 : 131072;
            }
            k = hc_proc_read_stdout(p, rbuf + rlen, rcap - rlen);
            if (k > 0) {
                size_t start = 0;

                rlen += (size_t)k;
                for (size_t i = rlen - (size_t)k; i < rlen; i++) {
                    if (rbuf[i] != '\n')
                        continue;
                    rbuf[i] = '\0';
                    lines_seen++;
                    if (line(user, rbuf + start, i - start)) {
                        stopped = true;
                        goto kill_out;
                    }
                    start = i + 1;
                }
                if (start) { /* never move a long partial line again and again */
                    memmove(rbuf, rbuf + start, rlen - start);
                    rlen -= start;
                }
            } else if (k == 0) { /* hc_proc_read_stdout closed it */
                if (rlen) {      /* a last line without '\n' */
                    if (rlen == rcap) {
                        char *nb = realloc(rbuf, rcap + 1);
                        if (!nb) {
                            rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                            goto kill_out;
                        }
                        rbuf = nb;
                        rcap++;
                    }
                    rbuf[rlen] = '\0';
                    if (line(user, rbuf, rlen)) {
                        stopped = true;
                        goto kill_out;
                    }
                    rlen = 0;
                }
            } else if (errno != EAGAIN && errno != EINTR) {
                rc =
                    hc_error_set(err, HC_ERR_IO, "cannot read decoder output: %s", strerror(errno));
                goto kill_out;
            }
        }
    }
    /* Output is closed: the decoder should exit now (it may still be finishing). */
    hc_proc_close_stdin(p);
    status = reap(p, deadline, &timed_out);
    if (timed_out)
        goto timeout;
    if (status == -1 && tool_stop_requested) {
        rc = hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the decoder");
        goto out;
    }
    if (status != 0) {
        char what[160];
        const char *last = last_stderr_line(p, tail, sizeof(tail));

        hc_proc_describe_status(status, what, sizeof(what));
        rc = hc_error_set(err, HC_ERR_IO, "decoder %s%s%s", what, last ? "; its stderr: " : "",
                          last ? last : "");
    }
    goto out;

kill_out:
    hc_proc_stop(p, NULL);
    if (stopped) /* the line callback filled err */
        rc = err && err->code != HC_OK ? err->code : HC_ERR_PARSE;
timeout:
    if (timed_out) {
        const char *last = last_stderr_line(p, tail, sizeof(tail));

        rc = hc_error_set(err, HC_ERR_TIMEOUT,
                          "decoder timed out after %.3gs (killed it and its children)%s%s",
                          (double)timeout_ns / 1e9, last ? "; its stderr: " : "", last ? last : "");
    }
out:
    hc_proc_free(p);
    free(wbuf);
    free(rbuf);
    return rc;
}

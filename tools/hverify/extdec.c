/*
 * The user's decoder as a child process: `sh -c COMMAND` in its own process group, fed the
 * case's input on stdin while its stdout is read, both through one poll() loop so neither side
 * can block on a full pipe however large the case. A hang is ended by killing the whole group
 * (a shell pipeline leaves no orphans behind); the last line the decoder wrote on stderr is kept
 * for the error message.
 */
#include "hverify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hcore/timefmt.h"

#define STDERR_KEEP 4096

struct proc {
    pid_t pid;
    int in_fd, out_fd, err_fd;
    char errbuf[STDERR_KEEP];
    size_t errlen;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static hc_err spawn(struct proc *p, const char *command, const char *case_dir, hc_error *err)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};

    if (pipe(in) < 0 || pipe(out) < 0 || pipe(er) < 0) {
        hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot create pipes: %s", strerror(errno));

        close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]);
        close_fd(&er[0]), close_fd(&er[1]);
        return rc;
    }
    p->pid = fork();
    if (p->pid < 0) {
        hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot start decoder: %s", strerror(errno));

        close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]);
        close_fd(&er[0]), close_fd(&er[1]);
        return rc;
    }
    if (p->pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(er[1], 2);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]), close(er[0]), close(er[1]);
        if (case_dir)
            setenv("HVERIFY_CASE", case_dir, 1);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    /* Also from the parent, so a kill right after fork already reaches the group. */
    setpgid(p->pid, p->pid);
    close(in[0]), close(out[1]), close(er[1]);
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->err_fd = er[0];
    if (set_flags(p->in_fd) < 0 || set_flags(p->out_fd) < 0 || set_flags(p->err_fd) < 0)
        return hc_error_set(err, HC_ERR_IO, "cannot set up pipes: %s", strerror(errno));
    return HC_OK;
}

/* The decoder's last non-empty stderr line, for error messages. */
static const char *last_stderr_line(struct proc *p, char *buf, size_t size)
{
    size_t end = p->errlen, start;

    while (end > 0 && (p->errbuf[end - 1] == '\n' || p->errbuf[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && p->errbuf[start - 1] != '\n')
        start--;
    if (end == start)
        return NULL;
    snprintf(buf, size, "%.*s", (int)(end - start), p->errbuf + start);
    return buf;
}

static void read_stderr(struct proc *p)
{
    char chunk[4096];
    ssize_t n;

    while ((n = read(p->err_fd, chunk, sizeof(chunk))) > 0) {
        size_t k = (size_t)n;

        if (k >= STDERR_KEEP) {
            memcpy(p->errbuf, chunk + k - STDERR_KEEP, STDERR_KEEP);
            p->errlen = STDERR_KEEP;
        } else {
            if (p->errlen + k > STDERR_KEEP) {
                size_t drop = p->errlen + k - STDERR_KEEP;

                memmove(p->errbuf, p->errbuf + drop, p->errlen - drop);
                p->errlen -= drop;
            }
            memcpy(p->errbuf + p->errlen, chunk, k);
            p->errlen += k;
        }
    }
    if (n == 0)
        close_fd(&p->err_fd);
}

static void kill_group(struct proc *p)
{
    if (p->pid > 0)
        kill(-p->pid, SIGKILL);
}

/* Waits for the child; with a deadline, kills the group when it passes. Returns the status or
 * -1 on timeout (the group killed and reaped). */
static int reap(struct proc *p, int64_t deadline_ns, bool *timed_out)
{
    int status = 0;

    for (;;) {
        pid_t r = waitpid(p->pid, &status, deadline_ns ? WNOHANG : 0);

        if (r == p->pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (deadline_ns && hc_time_monotonic_ns() >= deadline_ns) {
            *timed_out = true;
            kill_group(p);
            while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        if (r == 0) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
    }
    p->pid = 0;
    return status;
}

static void describe_status(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        snprintf(buf, size, "exited with status 127 (command not found?)");
    else if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(buf, size, "ended abnormally (status %d)", status);
}

hc_err hv_extdec_run(const char *command, const char *case_dir, int64_t timeout_ns, hv_feed_fn feed,
                     hv_line_fn line, void *user, hc_error *err)
{
    struct proc p = {0, -1, -1, -1, {0}, 0};
    char *wbuf = NULL, *rbuf = NULL;
    size_t wlen = 0, wcap = 0, woff = 0, rlen = 0, rcap = 0;
    int64_t deadline = timeout_ns > 0 ? hc_time_monotonic_ns() + timeout_ns : 0;
    bool more_input = true, timed_out = false, stopped = false;
    hc_err rc = HC_OK;
    char tail[300];
    int status;

    rc = spawn(&p, command, case_dir, err);
    if (rc != HC_OK)
        goto out;
    while (p.out_fd >= 0 || p.err_fd >= 0) {
        struct pollfd fds[3];
        nfds_t n = 0;
        int wait_ms = -1, in_slot = -1, out_slot = -1, err_slot = -1;

        /* Keep the write buffer topped up (bounded: feed adds roughly one chunk). */
        if (p.in_fd >= 0 && woff == wlen && more_input) {
            int f;

            wlen = woff = 0;
            f = feed(user, &wbuf, &wlen, &wcap, err);
            if (f < 0) {
                rc = err ? err->code : HC_ERR_IO;
                goto kill_out;
            }
            more_input = f > 0;
        }
        if (p.in_fd >= 0 && woff == wlen && !more_input)
            close_fd(&p.in_fd); /* EOF tells the decoder the case is complete */
        if (p.in_fd >= 0) {
            fds[n] = (struct pollfd){p.in_fd, POLLOUT, 0};
            in_slot = (int)n++;
        }
        if (p.out_fd >= 0) {
            fds[n] = (struct pollfd){p.out_fd, POLLIN, 0};
            out_slot = (int)n++;
        }
        if (p.err_fd >= 0) {
            fds[n] = (struct pollfd){p.err_fd, POLLIN, 0};
            err_slot = (int)n++;
        }
        if (deadline) {
            int64_t left = deadline - hc_time_monotonic_ns();

            if (left <= 0) {
                timed_out = true;
                goto kill_out;
            }
            wait_ms = (int)(left / 1000000 + 1);
        }
        if (poll(fds, n, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            rc = hc_error_set(err, HC_ERR_IO, "poll: %s", strerror(errno));
            goto kill_out;
        }
        if (in_slot >= 0 && fds[in_slot].revents) {
            ssize_t k = write(p.in_fd, wbuf + woff, wlen - woff);

            if (k > 0) {
                woff += (size_t)k;
            } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                /* EPIPE: the decoder stopped reading; what it printed decides the outcome. */
                close_fd(&p.in_fd);
                more_input = false;
            }
        }
        if (err_slot >= 0 && fds[err_slot].revents)
            read_stderr(&p);
        if (out_slot >= 0 && fds[out_slot].revents) {
            ssize_t k;

            if (rcap - rlen < 65536) {
                char *nb = realloc(rbuf, rcap ? rcap * 2 : 131072);

                if (!nb) {
                    rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                    goto kill_out;
                }
                rbuf = nb;
                rcap = rcap ? rcap * 2 : 131072;
            }
            k = read(p.out_fd, rbuf + rlen, rcap - rlen);
            if (k > 0) {
                size_t start = 0;

                rlen += (size_t)k;
                for (size_t i = rlen - (size_t)k; i < rlen; i++) {
                    if (rbuf[i] != '\n')
                        continue;
                    rbuf[i] = '\0';
                    if (line(user, rbuf + start, i - start)) {
                        stopped = true;
                        goto kill_out;
                    }
                    start = i + 1;
                }
                memmove(rbuf, rbuf + start, rlen - start);
                rlen -= start;
            } else if (k == 0) {
                close_fd(&p.out_fd);
                if (rlen) { /* a last line without '\n' */
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
    close_fd(&p.in_fd);
    status = reap(&p, deadline, &timed_out);
    if (timed_out)
        goto timeout;
    if (status != 0) {
        char what[160];
        const char *last = last_stderr_line(&p, tail, sizeof(tail));

        describe_status(status, what, sizeof(what));
        rc = hc_error_set(err, HC_ERR_IO, "decoder %s%s%s", what, last ? "; its stderr: " : "",
                          last ? last : "");
    }
    goto out;

kill_out:
    kill_group(&p);
    if (p.pid > 0) {
        while (waitpid(p.pid, &status, 0) < 0 && errno == EINTR)
            ;
        p.pid = 0;
    }
    if (stopped) /* the line callback filled err */
        rc = err && err->code != HC_OK ? err->code : HC_ERR_PARSE;
timeout:
    if (timed_out) {
        const char *last = last_stderr_line(&p, tail, sizeof(tail));

        rc = hc_error_set(err, HC_ERR_TIMEOUT,
                          "decoder timed out after %.3gs (killed its process group)%s%s",
                          (double)timeout_ns / 1e9, last ? "; its stderr: " : "", last ? last : "");
    }
out:
    close_fd(&p.in_fd);
    close_fd(&p.out_fd);
    close_fd(&p.err_fd);
    free(wbuf);
    free(rbuf);
    return rc;
}

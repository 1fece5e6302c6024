/*
 * The user's decoder as a child process, fed the case's input on stdin while its stdout is read,
 * both through one poll() loop so neither side can block on a full pipe however large the case.
 *
 * hkit owns what it starts. Between hverify and `sh -c COMMAND` sits a small supervisor process
 * (a fork of hverify, no exec): it is a subreaper, so every descendant of the decoder, even one
 * that left with setsid, stays its descendant; it dies with hverify (PR_SET_PDEATHSIG), and when
 * the decoder exits, when hverify stops it, or when hverify dies, it kills every process left
 * under it and reaps them before it exits with the decoder's status. The decoder starts with
 * default signal dispositions and an empty signal mask. Output lines are bounded
 * (HV_MAX_LINE_BYTES); the last line the decoder wrote on stderr is kept for error messages.
 */
#include "hverify.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hcore/timefmt.h"

#define STDERR_KEEP 4096
#ifndef NSIG
#define NSIG 65 /* Linux: 64 signals, numbered from 1 */
#endif
#define STOP_GRACE_NS 2000000000LL /* the supervisor's time to clean up before SIGKILL */

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

/* --- the supervisor (runs in the forked child; hverify is single-threaded) ------------------ */

static volatile sig_atomic_t supervisor_stop;

static void on_supervisor_signal(int sig)
{
    (void)sig;
    supervisor_stop = 1;
}

static void default_signals(void)
{
    struct sigaction sa;
    sigset_t none;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &sa, NULL); /* SIGKILL, SIGSTOP and unused numbers just fail */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* SIGKILLs every child of this process (its orphaned descendants come to it: subreaper). */
static int kill_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t self = getpid();
    int n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char path[300], buf[512], *p;
        long ppid;
        FILE *fp;

        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        fp = fopen(path, "r");
        if (!fp)
            continue;
        p = fgets(buf, sizeof(buf), fp) ? strrchr(buf, ')') : NULL;
        fclose(fp);
        /* "pid (comm) state ppid ...": comm may hold anything, so parse after the last ')' */
        if (p && sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == self) {
            kill((pid_t)atol(e->d_name), SIGKILL);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Kills and reaps everything below the supervisor: children first; their orphans come next. */
static void sweep(void)
{
    int status;

    for (int round = 0; round < 1000; round++) {
        pid_t r;

        kill_children();
        while ((r = waitpid(-1, &status, WNOHANG)) > 0)
            ;
        if (r < 0 && errno == ECHILD)
            return;
        {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

static void supervise(const char *command, const char *case_dir, pid_t hverify)
{
    struct sigaction sa;
    pid_t decoder;
    int status = 0;
    bool have_status = false;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_supervisor_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != hverify) /* hverify died before the line above */
        _exit(125);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    decoder = fork();
    if (decoder < 0)
        _exit(126);
    if (decoder == 0) {
        default_signals();
        if (case_dir)
            setenv("HVERIFY_CASE", case_dir, 1);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    /* the pipes stay with the decoder alone: their ends close when it and its children are gone */
    close(0), close(1), close(2);
    while (!supervisor_stop) {
        pid_t r = waitpid(-1, &status, 0);

        if (r == decoder) {
            have_status = true;
            break;
        }
        if (r < 0 && errno == ECHILD)
            break;
    }
    sweep();
    if (!have_status)
        _exit(124);
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        struct rlimit none = {0, 0};

        setrlimit(RLIMIT_CORE, &none);
        default_signals();
        kill(getpid(), WTERMSIG(status));
    }
    _exit(125);
}

static hc_err spawn(struct proc *p, const char *command, const char *case_dir, hc_error *err)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};
    pid_t hverify = getpid();

    if (pipe(in) < 0 || pipe(out) < 0 || pipe(er) < 0) {
        hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot create pipes: %s", strerror(errno));

        close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]);
        close_fd(&er[0]), close_fd(&er[1]);
        return rc;
    }
    fflush(NULL); /* nothing buffered is written twice by the fork */
    p->pid = fork();
    if (p->pid < 0) {
        hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot start decoder: %s", strerror(errno));

        close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]);
        close_fd(&er[0]), close_fd(&er[1]);
        return rc;
    }
    if (p->pid == 0) {
        setpgid(0, 0);
        default_signals();
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(er[1], 2);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]), close(er[0]), close(er[1]);
        supervise(command, case_dir, hverify);
        _exit(125);
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

/*
 * Stops the decoder and everything it started, and reaps the supervisor: SIGTERM lets the
 * supervisor sweep its subtree; SIGKILL to its group if it has not finished within a grace
 * period. Returns the supervisor's wait status.
 */
static int stop_and_reap(struct proc *p)
{
    int64_t until = hc_time_monotonic_ns() + STOP_GRACE_NS;
    int status = 0;

    if (p->pid <= 0)
        return 0;
    kill(p->pid, SIGTERM);
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);

        if (r == p->pid || (r < 0 && errno != EINTR))
            break;
        if (hc_time_monotonic_ns() >= until) {
            kill(-p->pid, SIGKILL);
            while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    p->pid = 0;
    return status;
}

/* Waits for the child; with a deadline, kills the group when it passes. Returns the status or
 * -1 on timeout (the group killed and reaped). */
static int reap(struct proc *p, int64_t deadline_ns, bool *timed_out)
{
    int status = 0;

    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);

        if (r == p->pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if ((deadline_ns && hc_time_monotonic_ns() >= deadline_ns) || tool_stop_requested) {
            *timed_out = !tool_stop_requested;
            return stop_and_reap(p), -1;
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
    long lines_seen = 0;

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
            k = read(p.out_fd, rbuf + rlen, rcap - rlen);
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
    if (status == -1 && tool_stop_requested) {
        rc = hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted; stopped the decoder");
        goto out;
    }
    if (status != 0) {
        char what[160];
        const char *last = last_stderr_line(&p, tail, sizeof(tail));

        describe_status(status, what, sizeof(what));
        rc = hc_error_set(err, HC_ERR_IO, "decoder %s%s%s", what, last ? "; its stderr: " : "",
                          last ? last : "");
    }
    goto out;

kill_out:
    stop_and_reap(&p);
    if (stopped) /* the line callback filled err */
        rc = err && err->code != HC_OK ? err->code : HC_ERR_PARSE;
timeout:
    if (timed_out) {
        const char *last = last_stderr_line(&p, tail, sizeof(tail));

        rc = hc_error_set(err, HC_ERR_TIMEOUT,
                          "decoder timed out after %.3gs (killed it and its children)%s%s",
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

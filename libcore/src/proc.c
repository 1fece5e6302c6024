/*
 * Child commands hkit owns (see proc.h): the supervisor, the pseudo-terminal, stopping with
 * grace periods, and the kept tail of stderr.
 */
#define _GNU_SOURCE /* ptsname_r */
#include "hcore/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hcore/timefmt.h"
#include "internal.h"

#define STDERR_KEEP 4096
#ifndef NSIG
#define NSIG 65 /* Linux: 64 signals, numbered from 1 */
#endif
#define DEFAULT_TERM_GRACE_NS 2000000000LL
#define SUPERVISOR_SLACK_NS 2000000000LL /* its own clean-up, before the caller kills it */

struct hc_proc {
    pid_t pid; /* the supervisor; 0 once reaped */
    int in_fd, out_fd, err_fd, how_fd;
    bool exited;
    int status, how;
    int64_t interrupt_grace_ns, terminate_grace_ns;
    char errbuf[STDERR_KEEP];
    size_t errlen;
};

void hc__proc_default_signals(void)
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

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_from(int first)
{
    long max;

    /* one system call where the kernel has it (Linux 5.9): a loop over a high descriptor limit
     * costs milliseconds per child, which a decoder started once per case pays every time */
    if (close_range((unsigned)first, ~0U, 0) == 0)
        return;
    max = sysconf(_SC_OPEN_MAX);

    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = first; fd < max; fd++)
        close(fd);
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* --- the supervisor (runs in the forked child) -------------------------------------------- */

static volatile sig_atomic_t supervisor_stop, supervisor_kill;

static void on_stop(int sig)
{
    (void)sig;
    supervisor_stop = 1;
}

static void on_kill(int sig)
{
    (void)sig;
    supervisor_kill = 1;
}

/* SIGKILLs every child of this process (its orphaned descendants come to it: subreaper). */
static void kill_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t self = getpid();

    if (!d)
        return;
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
        if (p && sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == self)
            kill((pid_t)atol(e->d_name), SIGKILL);
    }
    closedir(d);
}

/* Kills and reaps everything below the supervisor: children first; their orphans come next.
 * When cmd is reaped here, its status goes to *cmd_status and *have becomes true. */
static void sweep(pid_t cmd, int *cmd_status, bool *have)
{
    for (int round = 0; round < 1000; round++) {
        int status;
        pid_t r;

        kill_children();
        while ((r = waitpid(-1, &status, WNOHANG)) > 0)
            if (r == cmd && !*have) {
                *cmd_status = status;
                *have = true;
            }
        if (r < 0 && errno == ECHILD)
            return;
        pause_ms(1);
    }
}

static void run_command(const struct hc_proc_options *o)
{
    setpgid(0, 0);
    hc__proc_default_signals();
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    for (const char *const *e = o->env; e && *e; e++)
        putenv((char *)*e);
    execl("/bin/sh", "sh", "-c", o->command, (char *)NULL);
    _exit(127);
}

/* Exits with the command's status after writing how it ended (one byte) to how_fd. */
static void supervise(const struct hc_proc_options *o, pid_t parent, int how_fd)
{
    struct sigaction sa;
    int64_t int_grace = o->interrupt_grace_ns;
    int64_t term_grace = o->terminate_grace_ns > 0 ? o->terminate_grace_ns : DEFAULT_TERM_GRACE_NS;
    int64_t next_step = 0;
    pid_t cmd;
    int status = 0, phase = 0;
    bool have_status = false;
    char how;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_kill;
    sigaction(SIGHUP, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGHUP, 0, 0, 0);
    if (getppid() != parent) /* the caller died before the line above */
        _exit(125);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    cmd = fork();
    if (cmd < 0)
        _exit(126);
    if (cmd == 0) {
        close(how_fd);
        run_command(o);
    }
    setpgid(cmd, cmd);
    /* the command's descriptors stay with it alone: they close when it and its children go */
    close(0), close(1), close(2);
    while (!have_status) {
        pid_t r = waitpid(cmd, &status, WNOHANG);

        if (r == cmd) {
            have_status = true;
            break;
        }
        if (r < 0 && errno == ECHILD)
            break;
        if (supervisor_kill)
            break;
        if (supervisor_stop && phase == 0) {
            if (int_grace <= 0) {
                phase = 3;
                break;
            }
            phase = 1;
            kill(-cmd, SIGINT);
            next_step = hc_time_monotonic_ns() + int_grace;
        } else if (phase == 1 && hc_time_monotonic_ns() >= next_step) {
            phase = 2;
            kill(-cmd, SIGTERM);
            next_step = hc_time_monotonic_ns() + term_grace;
        } else if (phase == 2 && hc_time_monotonic_ns() >= next_step) {
            phase = 3;
            break;
        }
        pause_ms(1); /* the command's end is noticed within 1 ms: cases run one after another */
    }
    sweep(cmd, &status, &have_status);
    if (!have_status) /* cannot happen: sweep reaps every child */
        status = SIGKILL;
    how = (char)('0' + phase);
    if (write(how_fd, &how, 1) < 0) {
        /* the caller is gone: nobody to tell */
    }
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        struct rlimit none = {0, 0};

        setrlimit(RLIMIT_CORE, &none);
        hc__proc_default_signals();
        kill(getpid(), WTERMSIG(status));
    }
    _exit(125);
}

/* --- starting ----------------------------------------------------------------------------- */

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* A pseudo-terminal pair with output processing off: *master for us, *slave for the child. */
static hc_err open_pty(int *master, int *slave, hc_error *err)
{
    char name[128];
    struct termios t;

    *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*master < 0 || grantpt(*master) != 0 || unlockpt(*master) != 0 ||
        ptsname_r(*master, name, sizeof(name)) != 0)
        goto fail;
    *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*slave < 0)
        goto fail;
    if (tcgetattr(*slave, &t) == 0) {
        t.c_oflag &= (tcflag_t)~OPOST;
        t.c_lflag &= (tcflag_t) ~(ECHO | ICANON | ISIG | IEXTEN);
        tcsetattr(*slave, TCSANOW, &t);
    }
    return HC_OK;
fail:
    close_fd(master);
    return hc_error_set(err, HC_ERR_IO, "cannot open a pseudo-terminal: %s", strerror(errno));
}

hc_err hc_proc_start(const struct hc_proc_options *o, hc_proc **out, hc_error *err)
{
    int in[2] = {-1, -1}, outp[2] = {-1, -1}, er[2] = {-1, -1}, how[2] = {-1, -1};
    hc_proc *p = calloc(1, sizeof(*p));
    pid_t parent = getpid();
    hc_err rc = HC_OK;

    *out = NULL;
    if (!p)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    p->in_fd = p->out_fd = p->err_fd = p->how_fd = -1;
    p->interrupt_grace_ns = o->interrupt_grace_ns;
    p->terminate_grace_ns =
        o->terminate_grace_ns > 0 ? o->terminate_grace_ns : DEFAULT_TERM_GRACE_NS;
    if ((o->stdin_pipe && pipe2(in, O_CLOEXEC) < 0) || pipe2(er, O_CLOEXEC) < 0 ||
        pipe2(how, O_CLOEXEC) < 0) {
        rc = hc_error_set(err, HC_ERR_IO, "cannot create pipes: %s", strerror(errno));
        goto fail;
    }
    if (o->stdout_pty)
        rc = open_pty(&outp[0], &outp[1], err);
    else if (pipe2(outp, O_CLOEXEC) < 0)
        rc = hc_error_set(err, HC_ERR_IO, "cannot create pipes: %s", strerror(errno));
    if (rc != HC_OK)
        goto fail;
    fflush(NULL); /* nothing buffered is written twice by the fork */
    p->pid = fork();
    if (p->pid < 0) {
        p->pid = 0;
        rc = hc_error_set(err, HC_ERR_IO, "cannot start '%s': %s", o->command, strerror(errno));
        goto fail;
    }
    if (p->pid == 0) {
        int null = o->stdin_pipe ? -1 : open("/dev/null", O_RDONLY);

        setpgid(0, 0);
        hc__proc_default_signals();
        dup2(o->stdin_pipe ? in[0] : null, 0);
        dup2(outp[1], 1);
        dup2(er[1], 2);
        if (how[1] != 3)
            dup2(how[1], 3);
        close_from(4); /* everything else of the caller's: sockets, logs, other children */
        supervise(o, parent, 3);
        _exit(125);
    }
    setpgid(p->pid, p->pid); /* also here, so a kill right after fork reaches the group */
    close_fd(&in[0]), close_fd(&outp[1]), close_fd(&er[1]), close_fd(&how[1]);
    p->in_fd = in[1];
    p->out_fd = outp[0];
    p->err_fd = er[0];
    p->how_fd = how[0];
    if ((p->in_fd >= 0 && set_nonblock_cloexec(p->in_fd) < 0) ||
        set_nonblock_cloexec(p->out_fd) < 0 || set_nonblock_cloexec(p->err_fd) < 0) {
        rc = hc_error_set(err, HC_ERR_IO, "cannot set up pipes: %s", strerror(errno));
        hc_proc_free(p);
        return rc;
    }
    *out = p;
    return HC_OK;
fail:
    close_fd(&in[0]), close_fd(&in[1]), close_fd(&outp[0]), close_fd(&outp[1]);
    close_fd(&er[0]), close_fd(&er[1]), close_fd(&how[0]), close_fd(&how[1]);
    free(p);
    return rc;
}

/* --- descriptors -------------------------------------------------------------------------- */

int hc_proc_stdin(const hc_proc *p)
{
    return p->in_fd;
}

int hc_proc_stdout(const hc_proc *p)
{
    return p->out_fd;
}

int hc_proc_stderr(const hc_proc *p)
{
    return p->err_fd;
}

void hc_proc_close_stdin(hc_proc *p)
{
    close_fd(&p->in_fd);
}

long hc_proc_read_stdout(hc_proc *p, char *buf, size_t size)
{
    ssize_t n;

    if (p->out_fd < 0)
        return 0;
    do
        n = read(p->out_fd, buf, size);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno == EIO)) { /* EIO: a pseudo-terminal nobody holds any more */
        close_fd(&p->out_fd);
        return 0;
    }
    return (long)n;
}

void hc_proc_read_stderr(hc_proc *p)
{
    char chunk[4096];
    ssize_t n;

    if (p->err_fd < 0)
        return;
    while ((n = read(p->err_fd, chunk, sizeof(chunk))) > 0) {
        size_t k = (size_t)n;

        if (k >= STDERR_KEEP) {
            memcpy(p->errbuf, chunk + k - STDERR_KEEP, STDERR_KEEP);
            p->errlen = STDERR_KEEP;
            continue;
        }
        if (p->errlen + k > STDERR_KEEP) {
            size_t drop = p->errlen + k - STDERR_KEEP;

            memmove(p->errbuf, p->errbuf + drop, p->errlen - drop);
            p->errlen -= drop;
        }
        memcpy(p->errbuf + p->errlen, chunk, k);
        p->errlen += k;
    }
    if (n == 0)
        close_fd(&p->err_fd);
}

void hc_proc_stderr_tail(const hc_proc *p, int max_lines, char *buf, size_t size)
{
    size_t end = p->errlen, start = end, o = 0;
    int lines = 0;

    buf[0] = '\0';
    /* find where the last max_lines non-empty lines start */
    while (start > 0 && lines < max_lines) {
        size_t e = start, s;

        while (e > 0 && (p->errbuf[e - 1] == '\n' || p->errbuf[e - 1] == '\r'))
            e--;
        s = e;
        while (s > 0 && p->errbuf[s - 1] != '\n')
            s--;
        if (e == s) {
            start = s;
            break;
        }
        start = s;
        lines++;
    }
    for (size_t i = start; i < end && o + 4 < size; i++) {
        char c = p->errbuf[i];

        if (c == '\r')
            continue;
        if (c == '\n') {
            size_t j = i;

            while (j < end && (p->errbuf[j] == '\n' || p->errbuf[j] == '\r'))
                j++;
            if (j < end && o > 0) {
                buf[o++] = ' ', buf[o++] = '|', buf[o++] = ' ';
            }
            i = j - 1;
            continue;
        }
        buf[o++] = (c == '\t' || (unsigned char)c >= 0x20) ? c : '?';
    }
    buf[o] = '\0';
}

/* --- ending ------------------------------------------------------------------------------- */

static void note_exit(hc_proc *p, int status)
{
    char how = '0';

    p->exited = true;
    p->status = status;
    p->pid = 0;
    if (p->how_fd >= 0 && read(p->how_fd, &how, 1) == 1 && how >= '0' && how <= '3')
        p->how = how - '0';
    else
        p->how = 3; /* the supervisor itself was killed */
    close_fd(&p->how_fd);
}

bool hc_proc_exited(hc_proc *p, int *status)
{
    int st;

    if (!p->exited && p->pid > 0) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);

        if (r == p->pid)
            note_exit(p, st);
    }
    if (p->exited && status)
        *status = p->status;
    return p->exited;
}

void hc_proc_request_stop(hc_proc *p)
{
    if (!hc_proc_exited(p, NULL) && p->pid > 0)
        kill(p->pid, SIGTERM);
}

int hc_proc_stop(hc_proc *p, int *how)
{
    int64_t until;
    int st = 0;

    if (!hc_proc_exited(p, NULL) && p->pid > 0) {
        until = hc_time_monotonic_ns() + p->interrupt_grace_ns + p->terminate_grace_ns +
                SUPERVISOR_SLACK_NS;
        kill(p->pid, SIGTERM);
        for (;;) {
            pid_t r = waitpid(p->pid, &st, WNOHANG);

            if (r == p->pid) {
                note_exit(p, st);
                break;
            }
            if (r < 0 && errno != EINTR) {
                note_exit(p, 0);
                break;
            }
            if (hc_time_monotonic_ns() >= until) {
                kill(-p->pid, SIGKILL);
                while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
                    ;
                note_exit(p, st);
                break;
            }
            pause_ms(2);
        }
    }
    if (how)
        *how = p->how;
    return p->status;
}

void hc_proc_describe_status(int status, char *buf, size_t size)
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

void hc_proc_free(hc_proc *p)
{
    if (!p)
        return;
    if (p->pid > 0)
        hc_proc_stop(p, NULL);
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    close_fd(&p->how_fd);
    free(p);
}

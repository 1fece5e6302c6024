/*
 * A child command that hkit owns: `/bin/sh -c COMMAND` under a small supervisor process (a fork
 * of the caller, no exec) that leaves nothing behind. The supervisor is a subreaper, so every
 * descendant of the command, even one that left with setsid, stays its descendant; it dies with
 * the thread that started it (PR_SET_PDEATHSIG) and then kills everything under it; when the
 * command exits it kills whatever the command left running (a child still holding stdout) and
 * exits with the command's wait status.
 *
 * The command runs in a process group of its own with default signal dispositions and an empty
 * signal mask (a background job of a script starts with SIGINT ignored: its children would
 * inherit that), hkit's other descriptors closed, and the caller's extra environment. Stopping
 * it is what a person would do: SIGINT to its group, SIGTERM after a grace period, then SIGKILL
 * to everything under the supervisor.
 *
 * stdout may go through a pseudo-terminal, so programs that block-buffer a pipe (C stdio,
 * Python) write each line as they print it, unchanged. Output processing is off on it: bytes
 * arrive as written ("\n" stays "\n").
 */
#ifndef HCORE_PROC_H
#define HCORE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hc_proc hc_proc;

struct hc_proc_options {
    const char *command;        /* run with /bin/sh -c */
    const char *const *env;     /* NULL, or a NULL-terminated list of "NAME=value" to set */
    bool stdin_pipe;            /* a pipe the caller writes (hc_proc_stdin); false: /dev/null */
    bool stdout_pty;            /* stdout through a pseudo-terminal instead of a pipe */
    int64_t interrupt_grace_ns; /* stop: SIGINT, this long, then SIGTERM; 0: SIGKILL at once */
    int64_t terminate_grace_ns; /* then this long before SIGKILL (0: 2 s) */
};

/*
 * Starts the command. *out: hc_proc_free. Its descriptors are non-blocking and close-on-exec.
 * HC_ERR_IO when a pipe, the pseudo-terminal or the fork fails.
 */
hc_err hc_proc_start(const struct hc_proc_options *opts, hc_proc **out, hc_error *err);

/* Descriptors to poll; -1 once closed. Reading the pseudo-terminal's end after the command and
 * everything holding it are gone fails with EIO: treat it as the end (hc_proc_read does). */
int hc_proc_stdin(const hc_proc *p);
int hc_proc_stdout(const hc_proc *p);
int hc_proc_stderr(const hc_proc *p);

/* Closes the command's stdin (end of input). */
void hc_proc_close_stdin(hc_proc *p);

/*
 * Reads what stdout has now into buf: > 0 bytes read, 0 at the end (the descriptor is then
 * closed), -1 with errno EAGAIN when nothing is there, -1 with another errno on error.
 */
long hc_proc_read_stdout(hc_proc *p, char *buf, size_t size);

/* Reads what stderr has now into the kept tail (its last 4 KiB); closes it at the end. */
void hc_proc_read_stderr(hc_proc *p);

/* The last max_lines non-empty lines of stderr, joined with " | ", into buf ("" when none). */
void hc_proc_stderr_tail(const hc_proc *p, int max_lines, char *buf, size_t size);

/* True once the command has finished and everything under it was killed and reaped; *status
 * (may be NULL) receives the command's wait status. Non-blocking. */
bool hc_proc_exited(hc_proc *p, int *status);

/*
 * Stops the command (see the options: SIGINT, SIGTERM, SIGKILL) unless it already finished, and
 * waits until it and everything under it are gone. Returns its wait status; *how (may be NULL)
 * says how it ended: 0 by itself, 1 on SIGINT, 2 on SIGTERM, 3 killed.
 */
int hc_proc_stop(hc_proc *p, int *how);

/* Asks for the stop that hc_proc_stop makes, without waiting: hc_proc_exited tells when the
 * command and everything under it are gone (keep reading its output meanwhile). */
void hc_proc_request_stop(hc_proc *p);

/* "exited with status 3", "was killed by signal 9 (Killed)", ... */
void hc_proc_describe_status(int status, char *buf, size_t size);

/* Stops the command if needed (as hc_proc_stop), closes the descriptors and frees. Accepts NULL. */
void hc_proc_free(hc_proc *p);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Diagnostics on stderr (git-style one-liners), the live status line, exit codes and strict
 * parsing of option values (never atoi: "abc" is an error, not 0).
 */
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hcore/log.h"
#include "hcore/timefmt.h"

const char *tool_name = "hkit";
int tool_verbosity = 1;
static bool status_shown;

static void vmessage(const char *kind, const char *fmt, va_list ap)
{
    tool_status_clear();
    fprintf(stderr, "%s: %s", tool_name, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void tool_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

void tool_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning: ", fmt, ap);
    va_end(ap);
}

void tool_info(const char *fmt, ...)
{
    char when[40];
    va_list ap;

    if (tool_verbosity < 1)
        return;
    tool_status_clear();
    hc_time_format_rfc3339(hc_time_realtime_ns(), 3, when, sizeof(when));
    fprintf(stderr, "%s: %s ", tool_name, when);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void log_to_stderr(hc_log_level level, const char *message, void *user)
{
    (void)user;
    if (level == HC_LOG_DEBUG && tool_verbosity < 2)
        return;
    if (level == HC_LOG_ERROR)
        tool_error("%s", message);
    else if (level == HC_LOG_WARNING)
        tool_warn("%s", message);
    else
        tool_info("%s", message);
}

void tool_init(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');
    tool_name = slash ? slash + 1 : argv0;
    hc_log_set(log_to_stderr, NULL);
}

enum opts_result tool_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
    fprintf(stderr, "try '%s --help'\n", tool_name);
    return OPTS_ERROR;
}

int tool_finish_stdout(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        tool_error("cannot write to standard output: %s", strerror(errno ? errno : EIO));
        return code == TOOL_EXIT_OK ? TOOL_EXIT_FAILURE : code;
    }
    return code;
}

int tool_exit_code(hc_err rc)
{
    return rc == HC_OK || rc == HC_DONE ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}

bool tool_status_enabled(void)
{
    return tool_verbosity >= 1 && isatty(STDERR_FILENO);
}

void tool_status(const char *fmt, ...)
{
    va_list ap;
    if (!tool_status_enabled())
        return;
    fputs("\r\033[K", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    status_shown = true;
}

void tool_status_clear(void)
{
    if (status_shown) {
        fputs("\r\033[K", stderr);
        status_shown = false;
    }
}

enum opts_result tool_parse_long(const char *option, const char *text, long min, long max,
                                 long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || end == text || *end)
        return tool_usage_error("invalid value '%s' for %s: not a whole number", text, option);
    if (v < min || v > max)
        return tool_usage_error("invalid value '%s' for %s: must be between %ld and %ld", text,
                                option, min, max);
    *out = v;
    return OPTS_OK;
}

enum opts_result tool_parse_double(const char *option, const char *text, double min, double max,
                                   double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
        return tool_usage_error("invalid value '%s' for %s: not a number", text, option);
    if (v < min || v > max)
        return tool_usage_error("invalid value '%s' for %s: must be between %g and %g", text,
                                option, min, max);
    *out = v;
    return OPTS_OK;
}

enum opts_result tool_parse_duration_ns(const char *option, const char *text, int64_t *out)
{
    hc_error err = HC_ERROR_INIT;

    if (hc_duration_parse(text, out, &err) != HC_OK)
        return tool_usage_error("invalid duration '%s' for %s: %s", text, option, err.message);
    return OPTS_OK;
}

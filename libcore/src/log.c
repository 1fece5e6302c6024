/*
 * The process-wide log callback.
 */
#include "hcore/log.h"

#include <stdarg.h>
#include <stdio.h>

static hc_log_fn log_fn;
static void *log_user;

void hc_log_set(hc_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

void hc_log(hc_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!log_fn)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_fn(level, line, log_user);
}

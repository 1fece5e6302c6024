/*
 * Logging hook. libcore never prints: it hands each log line to the callback the tool installs
 * (as mosquitto's lib/logging_mosq.c does). Without a callback, log lines are discarded.
 */
#ifndef HCORE_LOG_H
#define HCORE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hc_log_level {
    HC_LOG_ERROR,
    HC_LOG_WARNING,
    HC_LOG_INFO, /* connects, disconnects, retries */
    HC_LOG_DEBUG
} hc_log_level;

/* message is one line without a trailing newline; it never contains credentials. */
typedef void (*hc_log_fn)(hc_log_level level, const char *message, void *user);

/* Installs fn (NULL to silence) for the whole process. Not thread-safe against hc_log(). */
void hc_log_set(hc_log_fn fn, void *user);

/* Sends one printf-style line to the installed callback. */
void hc_log(hc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif

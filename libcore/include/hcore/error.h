/*
 * Error codes and the one-line error buffer shared by every libcore function.
 *
 * Every fallible function returns an hc_err and takes an `hc_error *err` last (may be NULL). On
 * failure err->message holds a one-line, lower-case reason that names what failed first, e.g.
 * "cannot open 'field.db': disk I/O error". One list (HC_ERR_MAP) generates the enum,
 * hc_strerror() and hc_err_name(), so they cannot drift apart.
 */
#ifndef HCORE_ERROR_H
#define HCORE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, description) */
#define HC_ERR_MAP(X)                                                                              \
    X(OK, "success")                                                                               \
    X(DONE, "no more data")                                                                        \
    X(INVALID, "invalid argument")                                                                 \
    X(NOMEM, "out of memory")                                                                      \
    X(IO, "input/output error")                                                                    \
    X(EXISTS, "file already exists")                                                               \
    X(DB, "database error")                                                                        \
    X(FULL, "disk full")                                                                           \
    X(NOT_RECORDING, "not an hkit recording")                                                      \
    X(SCHEMA_NEWER, "recording was written by a newer hkit")                                       \
    X(CORRUPT, "file is damaged")                                                                  \
    X(PARSE, "malformed input")                                                                    \
    X(MQTT, "mqtt error")                                                                          \
    X(CONNECT, "cannot connect to broker")                                                         \
    X(CONNECTION_LOST, "connection lost")                                                          \
    X(AUTH, "bad user name or password")                                                           \
    X(NOT_AUTHORIZED, "not authorised")                                                            \
    X(TLS, "tls error")                                                                            \
    X(SUBSCRIBE, "subscription refused")                                                           \
    X(TIMEOUT, "timed out")                                                                        \
    X(INTERRUPTED, "interrupted")

typedef enum hc_err {
#define HC__ERR_ENUM(name, desc) HC_ERR_##name,
    HC_ERR_MAP(HC__ERR_ENUM)
#undef HC__ERR_ENUM
        HC_ERR__COUNT
} hc_err;

/* HC_OK reads better than HC_ERR_OK at call sites; HC_DONE ends iterations. */
#define HC_OK HC_ERR_OK
#define HC_DONE HC_ERR_DONE

#define HC_ERROR_MESSAGE_MAX 512

/* Caller-owned error buffer. Initialise with HC_ERROR_INIT or zero it. */
typedef struct hc_error {
    hc_err code;
    char message[HC_ERROR_MESSAGE_MAX];
} hc_error;

#define HC_ERROR_INIT {HC_OK, {0}}

/* Static description of a code ("database error"); never NULL. */
const char *hc_strerror(hc_err code);

/* Symbolic name of a code ("HC_ERR_DB"); never NULL. */
const char *hc_err_name(hc_err code);

/* Fills err (when not NULL) with code and a printf-style one-line message; returns code. */
hc_err hc_error_set(hc_error *err, hc_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to err->message (for adding context on the way up). Returns err->code. */
hc_err hc_error_prefix(hc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif

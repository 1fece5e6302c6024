/*
 * Helpers shared between libcore's source files (hc__ prefix); not part of the public API.
 */
#ifndef HCORE_INTERNAL_H
#define HCORE_INTERNAL_H

#include <stdbool.h>

#include "hcore/error.h"
#include "hcore/log.h"

#define HC__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- tls.c: hkit's TLS floor and the check made before paho connects ---------------------- */

/* OpenSSL security level for every TLS connection: 112-bit keys (RSA >= 2048), no SHA-1. */
#define HC__TLS_SECURITY_LEVEL 2
/*
 * The TLS 1.2 cipher string of every TLS connection. paho takes no security level and no minimum
 * version, but applies a cipher string after lowering the level to 1: "@SECLEVEL=2" raises it
 * back on paho's own context, and without SHA-1/MD5 MAC suites (the only ones TLS 1.0/1.1 can
 * use) that context cannot negotiate TLS older than 1.2 either. TLS 1.3 suites are unaffected.
 */
#define HC__TLS_CIPHERS "DEFAULT:!SHA1:!MD5:@SECLEVEL=2"

struct hc__tls_target {
    const char *host; /* as in the url: [v6] hosts keep their brackets */
    int port;
    const char *cafile, *capath; /* both NULL: the system store */
    bool insecure;               /* no chain or host name check; the protocol floor still holds */
    int timeout_ms;              /* for the TCP connect and again for the handshake */
};

/*
 * TCP connect to host:port within timeout_ms; *fd_out is a non-blocking, close-on-exec socket.
 * HC_ERR_CONNECT names the cause: unresolvable host, refused, no answer in time.
 */
hc_err hc__net_connect(const char *host, int port, int timeout_ms, int *fd_out, hc_error *err);

/*
 * Connects, completes a TLS handshake under hkit's floor (TLS >= 1.2, security level 2, chain
 * and host name verified unless insecure) and closes again, sending no application data.
 * HC_OK; HC_ERR_TLS for what retrying cannot fix (verification failure naming what failed:
 * host name, expiry, unknown CA, weak key; an old protocol; a plain MQTT port); HC_ERR_CONNECT
 * for what it may (unresolvable, refused, timed out, closed during the handshake).
 */
hc_err hc__tls_probe(const struct hc__tls_target *t, hc_error *err);

/* --- proc.c ------------------------------------------------------------------------------ */

/* Default dispositions for every signal and an empty mask: for a child before it execs. */
void hc__proc_default_signals(void);

#endif

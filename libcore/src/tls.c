/*
 * The TLS check that runs before paho connects to an mqtts:// broker. paho lowers OpenSSL's
 * security level to 1 on its own context, accepts any TLS version and reports a failed host name
 * check without a reason, so a broker it would hand the password to is first met here, with
 * hkit's own floor: TLS 1.2 or newer, OpenSSL security level 2 or higher (RSA/DH keys of 2048 bits
 * and more, no SHA-1 signatures), the chain verified against --cafile/--capath or the system
 * store, and the host name (or IP address) checked by OpenSSL during the handshake. Nothing is
 * sent after the handshake; the connection is closed at once.
 *
 * Every failure is classified, so the caller can tell a fatal misconfiguration (HC_ERR_TLS:
 * verification, weak key, old protocol, a plain MQTT port) from a broker that is merely not
 * reachable now (HC_ERR_CONNECT: unresolvable host, refused, timed out, closed mid-handshake).
 */
#define _GNU_SOURCE /* struct addrinfo under strict C11 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"

/* What the verify callback saw: the first failure, and the names in the server's certificate. */
struct verify_seen {
    int error; /* X509_V_OK: none */
    int depth;
    char names[256]; /* "'a', 'b'" from the leaf's subjectAltName, else its CN */
    char subject_cn[128];
    char issuer_cn[128];
    char not_after[64];
    int key_bits;
    char key_type[16];
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - now_ms();

    return left > 0 ? (int)left : 0;
}

static void name_append(char *buf, size_t size, const char *name, size_t len)
{
    size_t used = strlen(buf);

    if (used + len + 5 >= size)
        return;
    snprintf(buf + used, size - used, "%s'%.*s'", used ? ", " : "", (int)len, name);
}

static void entry_cn(const X509_NAME *name, char *buf, size_t size)
{
    buf[0] = '\0';
    if (name)
        X509_NAME_get_text_by_NID((X509_NAME *)name, NID_commonName, buf, (int)size);
}

/* The DNS names and IP addresses a certificate is for, quoted; its CN when it has no SAN. */
static void cert_names(X509 *cert, char *buf, size_t size)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);

    buf[0] = '\0';
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char ip[INET6_ADDRSTRLEN];

        if (g->type == GEN_DNS) {
            name_append(buf, size, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                        (size_t)ASN1_STRING_length(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            int n = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);

            if ((n == 4 && inet_ntop(AF_INET, a, ip, sizeof(ip))) ||
                (n == 16 && inet_ntop(AF_INET6, a, ip, sizeof(ip))))
                name_append(buf, size, ip, strlen(ip));
        }
    }
    GENERAL_NAMES_free(sans);
    if (!buf[0]) {
        char cn[128];

        entry_cn(X509_get_subject_name(cert), cn, sizeof(cn));
        if (cn[0])
            name_append(buf, size, cn, strlen(cn));
    }
}

static int on_verify(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct verify_seen *seen = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);

    if (!ok && seen && seen->error == X509_V_OK && cert) {
        const ASN1_TIME *na = X509_get0_notAfter(cert);
        EVP_PKEY *key = X509_get0_pubkey(cert);
        BIO *b = BIO_new(BIO_s_mem());

        seen->error = X509_STORE_CTX_get_error(store);
        seen->depth = X509_STORE_CTX_get_error_depth(store);
        cert_names(cert, seen->names, sizeof(seen->names));
        entry_cn(X509_get_subject_name(cert), seen->subject_cn, sizeof(seen->subject_cn));
        entry_cn(X509_get_issuer_name(cert), seen->issuer_cn, sizeof(seen->issuer_cn));
        if (b && na && ASN1_TIME_print(b, na) == 1) {
            int n = BIO_read(b, seen->not_after, (int)sizeof(seen->not_after) - 1);

            seen->not_after[n > 0 ? n : 0] = '\0';
        }
        BIO_free(b);
        if (key) {
            seen->key_bits = EVP_PKEY_get_bits(key);
            snprintf(seen->key_type, sizeof(seen->key_type), "%s",
                     EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA   ? "RSA"
                     : EVP_PKEY_get_base_id(key) == EVP_PKEY_EC  ? "EC"
                     : EVP_PKEY_get_base_id(key) == EVP_PKEY_DSA ? "DSA"
                                                                 : "");
        }
    }
    return ok;
}

/* Strips the brackets of a [v6] host. */
static void bare_host(const char *host, char *out, size_t size)
{
    size_t len = strlen(host);

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
        snprintf(out, size, "%.*s", (int)(len - 2), host + 1);
    else
        snprintf(out, size, "%s", host);
}

hc_err hc__net_connect(const char *host, int port, int timeout_ms, int *fd_out, hc_error *err)
{
    struct addrinfo hints, *res = NULL;
    char name[256], service[16];
    int64_t deadline = now_ms() + timeout_ms;
    int gai, fd = -1, last_errno = 0;
    bool timed_out = false;

    *fd_out = -1;
    bare_host(host, name, sizeof(name));
    snprintf(service, sizeof(service), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    gai = getaddrinfo(name, service, &hints, &res);
    if (gai != 0)
        return hc_error_set(err, HC_ERR_CONNECT, "cannot resolve host '%s': %s%s", name,
                            gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai),
                            gai == EAI_NONAME ? " (check the host name)" : "");
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        struct pollfd pfd;
        int soerr = 0, pr;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno != EINPROGRESS) {
            last_errno = errno;
            close(fd), fd = -1;
            continue;
        }
        pfd = (struct pollfd){fd, POLLOUT, 0};
        do
            pr = poll(&pfd, 1, left_ms(deadline));
        while (pr < 0 && errno == EINTR);
        if (pr == 0) {
            timed_out = true;
        } else if (pr > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr) {
            break;
        } else {
            last_errno = soerr ? soerr : errno;
        }
        close(fd), fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        *fd_out = fd;
        return HC_OK;
    }
    if (timed_out)
        return hc_error_set(err, HC_ERR_CONNECT,
                            "cannot connect to '%s:%d': no answer within %d ms (is the broker "
                            "running and reachable?)",
                            host, port, timeout_ms);
    return hc_error_set(
        err, HC_ERR_CONNECT, "cannot connect to '%s:%d': %s (is the broker running and reachable?)",
        host, port, last_errno == ECONNREFUSED ? "connection refused" : strerror(last_errno));
}

/*
 * After a handshake that ended before the server said anything: is this a plain MQTT port? Sends
 * a credential-free CONNECT (empty client id, clean session) on a new connection and looks for
 * a CONNACK. Nothing secret leaves.
 */
static bool is_plain_mqtt(const char *host, int port, int timeout_ms)
{
    static const unsigned char connect_pkt[] = {0x10, 12,   0x00, 0x04, 'M', 'Q',  'T',
                                                'T',  0x04, 0x02, 0x00, 60,  0x00, 0x00};
    static const unsigned char disconnect_pkt[] = {0xe0, 0x00};
    unsigned char ack[4];
    size_t got = 0;
    int64_t deadline = now_ms() + timeout_ms;
    int fd;

    if (hc__net_connect(host, port, timeout_ms, &fd, NULL) != HC_OK)
        return false;
    if (send(fd, connect_pkt, sizeof(connect_pkt), MSG_NOSIGNAL) != (ssize_t)sizeof(connect_pkt))
        goto no;
    while (got < sizeof(ack)) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&pfd, 1, left_ms(deadline)) <= 0)
            goto no;
        n = recv(fd, ack + got, sizeof(ack) - got, 0);
        if (n <= 0)
            goto no;
        got += (size_t)n;
    }
    if (ack[0] != 0x20 || ack[1] != 0x02)
        goto no;
    if (ack[3] == 0)
        (void)!send(fd, disconnect_pkt, sizeof(disconnect_pkt), MSG_NOSIGNAL);
    close(fd);
    return true;
no:
    close(fd);
    return false;
}

static hc_err verify_error(const struct verify_seen *seen, const char *where, int port,
                           const char *host, hc_error *err)
{
    const char *pre = "tls handshake with";

    switch (seen->error) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return hc_error_set(err, HC_ERR_TLS,
                            "%s '%s:%d' failed: certificate verify failed: certificate is for %s, "
                            "not '%s'",
                            pre, where, port, seen->names[0] ? seen->names : "no host name", host);
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return hc_error_set(err, HC_ERR_TLS,
                            "%s '%s:%d' failed: certificate verify failed: %scertificate '%s' "
                            "expired on %s",
                            pre, where, port, seen->depth ? "CA " : "", seen->subject_cn,
                            seen->not_after);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return hc_error_set(err, HC_ERR_TLS,
                            "%s '%s:%d' failed: certificate verify failed: certificate '%s' is "
                            "not valid yet (check this machine's clock)",
                            pre, where, port, seen->subject_cn);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        return hc_error_set(err, HC_ERR_TLS,
                            "%s '%s:%d' failed: certificate verify failed: unknown CA '%s' "
                            "(use --cafile to trust the broker's CA, or --insecure)",
                            pre, where, port, seen->issuer_cn);
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
        return hc_error_set(err, HC_ERR_TLS,
                            "%s '%s:%d' failed: certificate verify failed: weak key: %s "
                            "certificate '%s' has a %d-bit %s key (hkit requires OpenSSL "
                            "security level 2: RSA keys of 2048 bits or more)",
                            pre, where, port, seen->depth ? "CA" : "server", seen->subject_cn,
                            seen->key_bits, seen->key_type[0] ? seen->key_type : "public");
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return hc_error_set(err, HC_ERR_TLS,
                            "%s '%s:%d' failed: certificate verify failed: certificate '%s' is "
                            "signed with a weak digest (hkit requires OpenSSL security level 2)",
                            pre, where, port, seen->subject_cn);
    default:
        return hc_error_set(
            err, HC_ERR_TLS, "%s '%s:%d' failed: certificate verify failed: %s (certificate '%s')",
            pre, where, port, X509_verify_cert_error_string(seen->error), seen->subject_cn);
    }
}

/* Classifies a failed SSL_connect. */
static hc_err handshake_error(SSL *ssl, int ret, const struct verify_seen *seen, const char *host,
                              int port, int timeout_ms, hc_error *err)
{
    int kind = SSL_get_error(ssl, ret);
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_REASON(e);
    BIO *rbio = SSL_get_rbio(ssl);
    uint64_t bytes_read = rbio ? BIO_number_read(rbio) : 0;

    if (seen->error != X509_V_OK)
        return verify_error(seen, host, port, host, err);
    if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
         reason == SSL_R_WRONG_SSL_VERSION || reason == SSL_R_NO_PROTOCOLS_AVAILABLE))
        return hc_error_set(err, HC_ERR_TLS,
                            "tls handshake with '%s:%d' failed: old protocol: the broker offers "
                            "no TLS version hkit accepts (hkit requires TLS 1.2 or newer)",
                            host, port);
    if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
         reason == SSL_R_HTTP_REQUEST))
        return hc_error_set(err, HC_ERR_TLS,
                            "tls handshake with '%s:%d' failed: the server does not speak TLS "
                            "(%s); is it a plain port? then use mqtt://",
                            host, port, ERR_reason_error_string(e));
    if (bytes_read == 0 && (kind == SSL_ERROR_SYSCALL || kind == SSL_ERROR_ZERO_RETURN ||
                            (e && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING))) {
        if (is_plain_mqtt(host, port, timeout_ms))
            return hc_error_set(err, HC_ERR_TLS,
                                "tls handshake with '%s:%d' failed: it is a plain MQTT port, not "
                                "TLS (use mqtt://%s:%d, or the broker's TLS port)",
                                host, port, host, port);
        return hc_error_set(err, HC_ERR_CONNECT,
                            "tls handshake with '%s:%d' failed: the server closed the connection "
                            "without answering (is it a TLS port?)",
                            host, port);
    }
    if (e)
        return hc_error_set(err, HC_ERR_TLS, "tls handshake with '%s:%d' failed: %s", host, port,
                            ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                                       : "unknown error");
    return hc_error_set(err, HC_ERR_CONNECT,
                        "tls handshake with '%s:%d' failed: connection closed by the server", host,
                        port);
}

static hc_err make_context(const struct hc__tls_target *t, SSL_CTX **out, hc_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    *out = NULL;
    if (!ctx)
        return hc_error_set(err, HC_ERR_TLS, "cannot create a tls context");
    /* the floor, never lowered; a stricter system configuration stays in force */
    if (SSL_CTX_get_min_proto_version(ctx) < TLS1_2_VERSION)
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* the same cipher string as paho's connection, so the probe cannot accept what paho would
     * refuse or the other way round */
    if (SSL_CTX_set_cipher_list(ctx, HC__TLS_CIPHERS) != 1) {
        SSL_CTX_free(ctx);
        return hc_error_set(err, HC_ERR_TLS, "cannot set the tls cipher list");
    }
    if (SSL_CTX_get_security_level(ctx) < HC__TLS_SECURITY_LEVEL)
        SSL_CTX_set_security_level(ctx, HC__TLS_SECURITY_LEVEL);
    if (t->cafile || t->capath) {
        if (SSL_CTX_load_verify_locations(ctx, t->cafile, t->capath) != 1) {
            unsigned long e = ERR_peek_last_error();

            SSL_CTX_free(ctx);
            return hc_error_set(err, HC_ERR_TLS, "cannot load CA certificates from '%s': %s",
                                t->cafile ? t->cafile : t->capath,
                                e ? ERR_reason_error_string(e) : "no certificate found");
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        SSL_CTX_free(ctx);
        return hc_error_set(err, HC_ERR_TLS, "cannot load the system CA certificates");
    }
    SSL_CTX_set_verify(ctx, t->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, on_verify);
    *out = ctx;
    return HC_OK;
}

hc_err hc__tls_probe(const struct hc__tls_target *t, hc_error *err)
{
    struct verify_seen seen;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char host[256];
    unsigned char ipbuf[16];
    int64_t deadline = now_ms() + t->timeout_ms;
    int fd = -1, ret;
    bool is_ip;
    hc_err rc;

    memset(&seen, 0, sizeof(seen));
    seen.error = X509_V_OK;
    bare_host(t->host, host, sizeof(host));
    is_ip = inet_pton(AF_INET, host, ipbuf) == 1 || inet_pton(AF_INET6, host, ipbuf) == 1;
    ERR_clear_error();
    rc = make_context(t, &ctx, err);
    if (rc != HC_OK)
        goto out;
    rc = hc__net_connect(t->host, t->port, t->timeout_ms, &fd, err);
    if (rc != HC_OK)
        goto out;
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        rc = hc_error_set(err, HC_ERR_TLS, "cannot create a tls session");
        goto out;
    }
    SSL_set_app_data(ssl, &seen);
    if (!t->insecure) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1
                  : SSL_set1_host(ssl, host) != 1) {
            rc = hc_error_set(err, HC_ERR_TLS, "cannot set the expected host name '%s'", host);
            goto out;
        }
    }
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, host);
    for (;;) {
        struct pollfd pfd = {fd, 0, 0};
        int kind, pr;

        ERR_clear_error();
        ret = SSL_connect(ssl);
        if (ret == 1)
            break;
        kind = SSL_get_error(ssl, ret);
        if (kind != SSL_ERROR_WANT_READ && kind != SSL_ERROR_WANT_WRITE) {
            rc = handshake_error(ssl, ret, &seen, t->host, t->port, left_ms(deadline), err);
            goto out;
        }
        pfd.events = kind == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        do
            pr = poll(&pfd, 1, left_ms(deadline));
        while (pr < 0 && errno == EINTR);
        if (pr == 0) {
            rc = hc_error_set(err, HC_ERR_CONNECT,
                              "tls handshake with '%s:%d' failed: no answer within %d ms", t->host,
                              t->port, t->timeout_ms);
            goto out;
        }
    }
    /* SSL_VERIFY_PEER already failed the handshake on any verification error */
    rc = HC_OK;
out:
    if (ssl && rc == HC_OK)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    return rc;
}

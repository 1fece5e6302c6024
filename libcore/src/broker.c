/*
 * The private Haltian-like broker (see broker.h): files for the run (certificates made with
 * OpenSSL's API, a Mosquitto 2 password file, an ACL, a configuration), Mosquitto started as a
 * child hkit owns, readiness observed in its log and on its listeners, and its log read back as
 * connection and subscription events.
 */
#include "hcore/broker.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hcore/timefmt.h"
#include "hcore/topic.h"
#include "internal.h"

#define PBKDF2_ITERATIONS 101 /* what mosquitto_passwd 2.0 writes */
#define SALT_BYTES 12
#define HASH_BYTES 64
#define LOG_LINE_MAX 4096
#define CLIENTS_KEPT 256 /* client id -> user name, for subscribe events */
#define START_ATTEMPTS 5

struct client_user {
    char *client_id, *user;
};

struct hc_broker {
    struct hc_broker_info info;
    pid_t pid;
    char dir[512];
    char cafile[600], token_file[600], log_path[600], out_path[600], conf_path[600];
    char consumer_url[64], publisher_url[64];
    char integration_id[128], api_key_id[128];
    char token[512];
    char publisher_password[40];
    char program[256]; /* what hc_broker_restart runs again */

    off_t log_off;
    char line[LOG_LINE_MAX];
    size_t line_len;
    bool line_overlong;
    struct client_user clients[CLIENTS_KEPT];
    size_t next_client;
};

/* --- random ids and the token ------------------------------------------------------------- */

static hc_err random_bytes(unsigned char *buf, size_t n, hc_error *err)
{
    if (RAND_bytes(buf, (int)n) != 1)
        return hc_error_set(err, HC_ERR_IO, "cannot get random bytes from openssl");
    return HC_OK;
}

static hc_err random_uuid(char out[37], hc_error *err)
{
    unsigned char b[16];
    hc_err rc = random_bytes(b, sizeof(b), err);

    if (rc != HC_OK)
        return rc;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return HC_OK;
}

/* base64url without padding, as JWTs use it. */
static void base64url(const unsigned char *in, size_t n, char *out, size_t size)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < size; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);

        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
}

static hc_err make_token(hc_broker *b, hc_error *err)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char payload[300], h64[80], p64[420], s64[60];
    unsigned char sig[32];
    long long now = (long long)time(NULL);
    hc_err rc = random_bytes(sig, sizeof(sig), err);

    if (rc != HC_OK)
        return rc;
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"iss\":\"hkit\"}", b->api_key_id, now,
             now + 90LL * 86400);
    base64url((const unsigned char *)header, strlen(header), h64, sizeof(h64));
    base64url((const unsigned char *)payload, strlen(payload), p64, sizeof(p64));
    base64url(sig, sizeof(sig), s64, sizeof(s64));
    if ((size_t)snprintf(b->token, sizeof(b->token), "%s.%s.%s", h64, p64, s64) >= sizeof(b->token))
        return hc_error_set(err, HC_ERR_INVALID, "api key id too long for a token");
    return HC_OK;
}

hc_err hc_broker_password_line(const char *user, const char *password, char *buf, size_t size,
                               hc_error *err)
{
    unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
    unsigned char salt64[4 * ((SALT_BYTES + 2) / 3) + 1], hash64[4 * ((HASH_BYTES + 2) / 3) + 1];
    hc_err rc;
    int n;

    if (strchr(user, ':') || size < 256)
        return hc_error_set(err, HC_ERR_INVALID, "cannot write a password line for '%s'", user);
    rc = random_bytes(salt, sizeof(salt), err);
    if (rc != HC_OK)
        return rc;
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt), PBKDF2_ITERATIONS,
                          EVP_sha512(), sizeof(hash), hash) != 1)
        return hc_error_set(err, HC_ERR_IO, "cannot hash a password (pbkdf2)");
    EVP_EncodeBlock(salt64, salt, sizeof(salt));
    EVP_EncodeBlock(hash64, hash, sizeof(hash));
    n = snprintf(buf, size, "%s:$7$%d$%s$%s", user, PBKDF2_ITERATIONS, (const char *)salt64,
                 (const char *)hash64);
    OPENSSL_cleanse(hash, sizeof(hash));
    if (n < 0 || (size_t)n >= size)
        return hc_error_set(err, HC_ERR_INVALID, "user name '%s' is too long", user);
    return HC_OK;
}

/* --- certificates ------------------------------------------------------------------------- */

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);

    if (ctx && EVP_PKEY_keygen_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) == 1)
        EVP_PKEY_keygen(ctx, &key);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    bool ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate for key signed by issuer_key (issuer NULL: self-signed), valid for two days. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
    X509 *cert = X509_new();
    X509_NAME *name;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    bool ok = false;

    if (!cert || RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        goto out;
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 2L * 86400);
    X509_set_pubkey(cert, key);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"hkit", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    if (ca) {
        ok = add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(cert, cert, NID_subject_key_identifier, "hash");
    } else {
        ok = add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
             add_ext(cert, issuer, NID_ext_key_usage, "serverAuth") &&
             add_ext(cert, issuer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") &&
             add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
    }
    ok = ok && X509_sign(cert, issuer_key, EVP_sha256()) > 0;
out:
    BN_free(bn);
    if (!ok) {
        X509_free(cert);
        cert = NULL;
    }
    return cert;
}

static bool write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok;

    if (!fp) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    ok = cert ? PEM_write_X509(fp, cert) == 1
              : PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) == 1;
    return (fclose(fp) == 0) && ok;
}

static hc_err make_certs(hc_broker *b, hc_error *err)
{
    EVP_PKEY *ca_key = new_key(), *srv_key = new_key();
    X509 *ca = NULL, *srv = NULL;
    char path[700];
    hc_err rc = HC_OK;

    if (!ca_key || !srv_key) {
        rc = hc_error_set(err, HC_ERR_IO, "cannot make a key with openssl");
        goto out;
    }
    ca = new_cert(ca_key, "hkit private broker CA", NULL, ca_key, true);
    srv = ca ? new_cert(srv_key, "localhost", ca, ca_key, false) : NULL;
    if (!srv) {
        rc = hc_error_set(err, HC_ERR_IO, "cannot make a certificate with openssl");
        goto out;
    }
    snprintf(path, sizeof(path), "%s/server.crt", b->dir);
    if (!write_pem(b->cafile, ca, NULL) || !write_pem(path, srv, NULL))
        rc = hc_error_set(err, HC_ERR_IO, "cannot write certificates in '%s'", b->dir);
    snprintf(path, sizeof(path), "%s/server.key", b->dir);
    if (rc == HC_OK && !write_pem(path, NULL, srv_key))
        rc = hc_error_set(err, HC_ERR_IO, "cannot write '%s'", path);
out:
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    return rc;
}

/* --- configuration files ------------------------------------------------------------------ */

static hc_err write_file(const char *path, mode_t mode, const char *text, hc_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    size_t len = strlen(text), off = 0;

    if (fd < 0)
        return hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    while (off < len) {
        ssize_t k = write(fd, text + off, len - off);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = errno;

            close(fd);
            return hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(e));
        }
        off += (size_t)k;
    }
    if (close(fd) != 0)
        return hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return HC_OK;
}

static hc_err write_auth(hc_broker *b, const struct hc_broker_options *o, hc_error *err)
{
    char path[700], text[2048], line1[512], line2[512];
    hc_err rc;

    rc = hc_broker_password_line(b->api_key_id, b->token, line1, sizeof(line1), err);
    if (rc == HC_OK)
        rc = hc_broker_password_line(b->info.publisher_user, b->publisher_password, line2,
                                     sizeof(line2), err);
    if (rc != HC_OK)
        return rc;
    snprintf(text, sizeof(text), "%s\n%s\n", line1, line2);
    snprintf(path, sizeof(path), "%s/passwd", b->dir);
    rc = write_file(path, 0600, text, err);
    if (rc != HC_OK)
        return rc;
    snprintf(text, sizeof(text),
             "user %s\ntopic read haltian-iot/events/%s/%s/#\n%s%s%s\nuser %s\ntopic readwrite #\n"
             "topic read $SYS/#\n",
             b->api_key_id, b->integration_id, b->api_key_id,
             o->consumer_write ? "topic write " : "", o->consumer_write ? o->consumer_write : "",
             o->consumer_write ? "\n" : "", b->info.publisher_user);
    snprintf(path, sizeof(path), "%s/acl", b->dir);
    rc = write_file(path, 0600, text, err);
    if (rc == HC_OK)
        rc = write_file(b->token_file, 0600, b->token, err);
    return rc;
}

static hc_err write_conf(hc_broker *b, const struct hc_broker_options *o, hc_error *err)
{
    char text[4096];
    int n;

    n = snprintf(text, sizeof(text),
                 "# hkit's private broker for one run\n"
                 "per_listener_settings false\n"
                 "allow_anonymous false\n"
                 "password_file %s/passwd\n"
                 "acl_file %s/acl\n"
                 "persistence false\n"
                 "max_queued_messages 0\n"
                 "max_queued_bytes 0\n"
                 "max_inflight_messages 0\n"
                 "message_size_limit 0\n"
                 "log_dest file %s\n"
                 "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                 "log_type subscribe\n"
                 "log_timestamp false\n"
                 "connection_messages true\n"
                 "sys_interval 1\n" /* $SYS counters move within a short load step */
                 "%s"
                 "listener %d 127.0.0.1\n"
                 "listener %d 127.0.0.1\n",
                 b->dir, b->dir, b->log_path, geteuid() == 0 ? "user root\n" : "",
                 b->info.publisher_port, b->info.consumer_port);
    if (!o->plain && n > 0 && (size_t)n < sizeof(text))
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "cafile %s\ncertfile %s/server.crt\nkeyfile %s/server.key\n"
                      "tls_version tlsv1.2\n",
                      b->cafile, b->dir, b->dir);
    if (n < 0 || (size_t)n >= sizeof(text))
        return hc_error_set(err, HC_ERR_INVALID, "directory name too long: '%s'", b->dir);
    return write_file(b->conf_path, 0600, text, err);
}

/* --- the process -------------------------------------------------------------------------- */

/* A loopback port nothing listens on now (the kernel's choice; another process may still take
 * it before Mosquitto binds: hc_broker_start retries). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static hc_err spawn(hc_broker *b, const char *program, hc_error *err)
{
    pid_t parent = getpid();
    int out = open(b->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (out < 0)
        return hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", b->out_path, strerror(errno));
    b->pid = fork();
    if (b->pid < 0) {
        close(out);
        b->pid = 0;
        return hc_error_set(err, HC_ERR_IO, "cannot start mosquitto: %s", strerror(errno));
    }
    if (b->pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        setpgid(0, 0);
        hc__proc_default_signals();
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent)
            _exit(125);
        if (null >= 0)
            dup2(null, 0);
        dup2(out, 1);
        dup2(out, 2);
        execlp(program, program, "-c", b->conf_path, (char *)NULL);
        dprintf(2, "cannot run '%s': %s\n", program, strerror(errno));
        _exit(127);
    }
    setpgid(b->pid, b->pid);
    close(out);
    return HC_OK;
}

static void stop_process(hc_broker *b)
{
    int64_t until = hc_time_monotonic_ns() + 2000000000LL;
    int status;

    if (b->pid <= 0)
        return;
    kill(-b->pid, SIGTERM);
    for (;;) {
        pid_t r = waitpid(b->pid, &status, WNOHANG);
        struct timespec ts = {0, 2000000};

        if (r == b->pid || (r < 0 && errno != EINTR))
            break;
        if (hc_time_monotonic_ns() >= until) {
            kill(-b->pid, SIGKILL);
            while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        nanosleep(&ts, NULL);
    }
    b->pid = 0;
}

bool hc_broker_alive(hc_broker *b)
{
    int status;

    if (!b || b->pid <= 0)
        return false;
    if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
        b->pid = 0;
        return false;
    }
    return true;
}

/* Whether a file holds text (small files: the log while starting, Mosquitto's own output). */
static bool file_contains(const char *path, const char *text)
{
    char buf[16384];
    FILE *fp = fopen(path, "re");
    size_t n;

    if (!fp)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* The last non-empty line of a small file, for error messages. */
static void last_line(const char *path, char *out, size_t size)
{
    char buf[16384];
    FILE *fp = fopen(path, "re");
    size_t n = 0, end, start;

    out[0] = '\0';
    if (fp) {
        if (fseek(fp, 0, SEEK_END) == 0) {
            long len = ftell(fp);

            fseek(fp, len > (long)sizeof(buf) - 1 ? len - (long)sizeof(buf) + 1 : 0, SEEK_SET);
        }
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
    }
    end = n;
    while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    snprintf(out, size, "%.*s", (int)(end - start), buf + start);
}

static bool listener_answers(int port)
{
    int fd = -1;

    if (hc__net_connect("127.0.0.1", port, 200, &fd, NULL) != HC_OK)
        return false;
    close(fd);
    return true;
}

/* Starts Mosquitto once on fresh ports. HC_ERR_EXISTS: a port was taken (try others). */
static hc_err start_once(hc_broker *b, const struct hc_broker_options *o, int64_t deadline,
                         hc_error *err)
{
    const char *program = b->program;
    char why[300];
    hc_err rc;

    b->info.consumer_port = free_port();
    b->info.publisher_port = free_port();
    if (b->info.consumer_port <= 0 || b->info.publisher_port <= 0 ||
        b->info.consumer_port == b->info.publisher_port)
        return hc_error_set(err, HC_ERR_EXISTS, "cannot find free loopback ports");
    unlink(b->log_path);
    rc = write_conf(b, o, err);
    if (rc == HC_OK)
        rc = spawn(b, program, err);
    if (rc != HC_OK)
        return rc;
    for (;;) {
        struct timespec ts = {0, 5000000};

        if (!hc_broker_alive(b)) {
            if (file_contains(b->log_path, "Address already in use") ||
                file_contains(b->out_path, "Address already in use"))
                return hc_error_set(err, HC_ERR_EXISTS, "a listener port was taken");
            last_line(b->out_path, why, sizeof(why));
            if (!why[0])
                last_line(b->log_path, why, sizeof(why));
            return hc_error_set(err, HC_ERR_IO, "mosquitto exited at start: %s",
                                why[0] ? why : "(it printed nothing)");
        }
        /* our own log says it runs: a listener answering alone may be another process */
        if (file_contains(b->log_path, " running") && listener_answers(b->info.publisher_port) &&
            listener_answers(b->info.consumer_port))
            return HC_OK;
        if (hc_time_monotonic_ns() >= deadline) {
            stop_process(b);
            return hc_error_set(err, HC_ERR_TIMEOUT,
                                "mosquitto did not start listening on ports %d and %d in time",
                                b->info.publisher_port, b->info.consumer_port);
        }
        nanosleep(&ts, NULL);
    }
}

hc_err hc_broker_restart(hc_broker *b, int64_t timeout_ns, hc_error *err)
{
    int64_t deadline = hc_time_monotonic_ns() + (timeout_ns > 0 ? timeout_ns : 10000000000LL);
    char why[300];
    int status;
    hc_err rc;

    if (b->pid > 0) {
        kill(-b->pid, SIGKILL);
        while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR)
            ;
        b->pid = 0;
    }
    rc = spawn(b, b->program, err);
    if (rc != HC_OK)
        return rc;
    for (;;) {
        struct timespec ts = {0, 5000000};

        if (!hc_broker_alive(b)) {
            last_line(b->out_path, why, sizeof(why));
            return hc_error_set(err, HC_ERR_IO, "mosquitto exited at its restart: %s",
                                why[0] ? why : "(it printed nothing)");
        }
        if (listener_answers(b->info.publisher_port) && listener_answers(b->info.consumer_port))
            return HC_OK;
        if (hc_time_monotonic_ns() >= deadline)
            return hc_error_set(err, HC_ERR_TIMEOUT,
                                "mosquitto did not listen again on ports %d and %d in time",
                                b->info.publisher_port, b->info.consumer_port);
        nanosleep(&ts, NULL);
    }
}

static void fill_info(hc_broker *b, bool plain)
{
    struct hc_broker_info *i = &b->info;

    snprintf(b->consumer_url, sizeof(b->consumer_url), "%s://127.0.0.1:%d",
             plain ? "mqtt" : "mqtts", i->consumer_port);
    snprintf(b->publisher_url, sizeof(b->publisher_url), "mqtt://127.0.0.1:%d", i->publisher_port);
    i->host = "127.0.0.1";
    i->consumer_url = b->consumer_url;
    i->cafile = b->cafile;
    i->integration_id = b->integration_id;
    i->api_key_id = b->api_key_id;
    i->token = b->token;
    i->token_file = b->token_file;
    i->publisher_url = b->publisher_url;
    i->publisher_password = b->publisher_password;
    i->dir = b->dir;
    i->log_path = b->log_path;
}

static hc_err set_id(char *dst, size_t size, const char *given, const char *what, hc_error *err)
{
    if (!given)
        return random_uuid(dst, err);
    if (!*given || strlen(given) >= size || hc_topic_level_validate(given, NULL) != HC_OK ||
        strpbrk(given, " \t\r\n:"))
        return hc_error_set(err, HC_ERR_INVALID, "invalid %s '%s': must be one topic level", what,
                            given);
    snprintf(dst, size, "%s", given);
    return HC_OK;
}

hc_err hc_broker_start(const struct hc_broker_options *o, hc_broker **out, hc_error *err)
{
    const char *tmp = o->tmpdir ? o->tmpdir : getenv("TMPDIR");
    int64_t deadline =
        hc_time_monotonic_ns() + (o->start_timeout_ns > 0 ? o->start_timeout_ns : 10000000000LL);
    hc_broker *b = calloc(1, sizeof(*b));
    unsigned char pw[18];
    hc_err rc;

    *out = NULL;
    if (!b)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(b->dir, sizeof(b->dir), "%s/hkit-broker.XXXXXX", tmp);
    if (!mkdtemp(b->dir)) {
        rc = hc_error_set(err, HC_ERR_IO, "cannot make a directory in '%s': %s", tmp,
                          strerror(errno));
        b->dir[0] = '\0';
        goto fail;
    }
    snprintf(b->cafile, sizeof(b->cafile), "%s/ca.crt", b->dir);
    snprintf(b->token_file, sizeof(b->token_file), "%s/token", b->dir);
    snprintf(b->log_path, sizeof(b->log_path), "%s/mosquitto.log", b->dir);
    snprintf(b->out_path, sizeof(b->out_path), "%s/mosquitto.out", b->dir);
    snprintf(b->conf_path, sizeof(b->conf_path), "%s/mosquitto.conf", b->dir);
    b->info.publisher_user = "hkit-publisher";
    snprintf(b->program, sizeof(b->program), "%s", o->mosquitto ? o->mosquitto : "mosquitto");
    rc = set_id(b->integration_id, sizeof(b->integration_id), o->integration_id, "integration id",
                err);
    if (rc == HC_OK)
        rc = set_id(b->api_key_id, sizeof(b->api_key_id), o->api_key_id, "api key id", err);
    if (rc == HC_OK && strcmp(b->api_key_id, b->info.publisher_user) == 0)
        rc = hc_error_set(err, HC_ERR_INVALID, "api key id '%s' is reserved", b->api_key_id);
    if (rc == HC_OK)
        rc = random_bytes(pw, sizeof(pw), err);
    if (rc != HC_OK)
        goto fail;
    base64url(pw, sizeof(pw), b->publisher_password, sizeof(b->publisher_password));
    rc = make_token(b, err);
    if (rc == HC_OK)
        rc = make_certs(b, err);
    if (rc == HC_OK)
        rc = write_auth(b, o, err);
    if (rc != HC_OK)
        goto fail;
    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        rc = start_once(b, o, deadline, err);
        if (rc != HC_ERR_EXISTS)
            break;
    }
    if (rc == HC_ERR_EXISTS)
        rc = hc_error_set(err, HC_ERR_IO, "mosquitto could not bind free loopback ports");
    if (rc != HC_OK)
        goto fail;
    fill_info(b, o->plain);
    *out = b;
    return HC_OK;
fail:
    hc_broker_free(b);
    return rc;
}

const struct hc_broker_info *hc_broker_get_info(const hc_broker *b)
{
    return &b->info;
}

/* --- the log as events -------------------------------------------------------------------- */

static const char *user_of(hc_broker *b, const char *client_id)
{
    for (size_t k = 0; k < CLIENTS_KEPT; k++) {
        size_t i = (b->next_client + CLIENTS_KEPT - 1 - k) % CLIENTS_KEPT; /* newest first */

        if (b->clients[i].client_id && strcmp(b->clients[i].client_id, client_id) == 0)
            return b->clients[i].user;
    }
    return "";
}

static void remember_client(hc_broker *b, const char *client_id, const char *user)
{
    struct client_user *c = &b->clients[b->next_client];

    free(c->client_id);
    free(c->user);
    c->client_id = strdup(client_id);
    c->user = strdup(user);
    if (!c->client_id || !c->user) {
        free(c->client_id), free(c->user);
        c->client_id = c->user = NULL;
    }
    b->next_client = (b->next_client + 1) % CLIENTS_KEPT;
}

/*
 * Mosquitto 2.0's lines (log_timestamp false):
 *   New client connected from 127.0.0.1:36494 as CLIENT (p2, c1, k60, u'USER').
 *   CLIENT 1 FILTER                               (log_type subscribe)
 *   Client CLIENT disconnected.  /  Client CLIENT closed its connection.
 *   Outgoing messages are being dropped for client CLIENT.
 */
static void parse_line(hc_broker *b, char *line, hc_broker_event_fn fn, void *ctx)
{
    static const char connected[] = "New client connected from ";
    static const char dropping[] = "Outgoing messages are being dropped for client ";
    struct hc_broker_event ev;
    char *p, *q;

    memset(&ev, 0, sizeof(ev));
    if (strncmp(line, dropping, sizeof(dropping) - 1) == 0) {
        size_t n;

        ev.client_id = line + sizeof(dropping) - 1;
        n = strlen(ev.client_id);
        if (n && line[sizeof(dropping) - 1 + n - 1] == '.')
            line[sizeof(dropping) - 1 + n - 1] = '\0';
        ev.kind = HC_BROKER_DROPPING;
        ev.user = user_of(b, ev.client_id);
        fn(ctx, &ev);
        return;
    }
    if (strncmp(line, connected, sizeof(connected) - 1) == 0) {
        char *as = strstr(line, " as "), *paren = strrchr(line, '(');
        char *u = paren ? strstr(paren, " u'") : NULL;

        if (!as || !paren || paren < as + 4)
            return;
        paren[-1] = '\0';
        ev.client_id = as + 4;
        ev.user = "";
        if (u && (q = strchr(u + 3, '\'')) != NULL) {
            *q = '\0';
            ev.user = u + 3;
        }
        ev.kind = HC_BROKER_CONNECTED;
        remember_client(b, ev.client_id, ev.user);
        fn(ctx, &ev);
        return;
    }
    if (strncmp(line, "Client ", 7) == 0 && ((p = strstr(line, " disconnected")) != NULL ||
                                             (p = strstr(line, " closed its")) != NULL)) {
        *p = '\0';
        ev.kind = HC_BROKER_DISCONNECTED;
        ev.client_id = line + 7;
        ev.user = user_of(b, ev.client_id);
        fn(ctx, &ev);
        return;
    }
    /* "CLIENT QOS FILTER": an id without spaces, one digit, the rest */
    p = strchr(line, ' ');
    if (!p || p == line || p[1] < '0' || p[1] > '2' || p[2] != ' ' || !p[3])
        return;
    *p = '\0';
    ev.kind = HC_BROKER_SUBSCRIBED;
    ev.client_id = line;
    ev.qos = p[1] - '0';
    ev.filter = p + 3;
    ev.user = user_of(b, line);
    if (!*ev.user) /* a line of another kind that happens to look like one */
        return;
    fn(ctx, &ev);
}

hc_err hc_broker_poll_events(hc_broker *b, hc_broker_event_fn fn, void *ctx, hc_error *err)
{
    int fd = open(b->log_path, O_RDONLY | O_CLOEXEC);
    char chunk[8192];
    ssize_t n;

    if (fd < 0)
        return hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", b->log_path, strerror(errno));
    while ((n = pread(fd, chunk, sizeof(chunk), b->log_off)) > 0) {
        b->log_off += n;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                if (b->line_len + 1 < sizeof(b->line))
                    b->line[b->line_len++] = chunk[i];
                else
                    b->line_overlong = true;
                continue;
            }
            b->line[b->line_len] = '\0';
            if (!b->line_overlong)
                parse_line(b, b->line, fn, ctx);
            b->line_len = 0;
            b->line_overlong = false;
        }
    }
    close(fd);
    if (n < 0)
        return hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", b->log_path, strerror(errno));
    return HC_OK;
}

/* --- what a consumer is given -------------------------------------------------------------- */

void hc_broker_env_init(struct hc_broker_env *env, const struct hc_broker_info *info)
{
    char(*t)[700] = env->text;

    snprintf(t[0], sizeof(t[0]), "HALTIAN_MQTT_HOST=%s", info->host);
    snprintf(t[1], sizeof(t[1]), "HALTIAN_MQTT_PORT=%d", info->consumer_port);
    snprintf(t[2], sizeof(t[2]), "HALTIAN_MQTT_URL=%s", info->consumer_url);
    snprintf(t[3], sizeof(t[3]), "HALTIAN_API_KEY_ID=%s", info->api_key_id);
    snprintf(t[4], sizeof(t[4]), "HALTIAN_API_KEY_TOKEN=%s", info->token);
    snprintf(t[5], sizeof(t[5]), "HALTIAN_INTEGRATION_ID=%s", info->integration_id);
    snprintf(t[6], sizeof(t[6]), "HKIT_CAFILE=%s", info->cafile);
    for (size_t i = 0; i < HC_BROKER_ENV_COUNT; i++)
        env->vars[i] = t[i];
    env->vars[HC_BROKER_ENV_COUNT] = NULL;
}

/* value for sh: as it is when it holds only harmless characters, else in single quotes */
static void put_shell_quoted(FILE *ms, const char *s)
{
    bool plain = *s != '\0' && *s != '-';

    for (const char *c = s; *c && plain; c++)
        plain = isalnum((unsigned char)*c) || strchr("/._-+:,=@", *c);
    if (plain) {
        fputs(s, ms);
        return;
    }
    fputc('\'', ms);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", ms);
        else
            fputc(*s, ms);
    }
    fputc('\'', ms);
}

char *hc_broker_expand_command(const struct hc_broker_info *info, const char *cmd)
{
    char port[16], *out = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&out, &len);
    const struct {
        const char *name, *value;
    } vars[] = {{"host", info->host},
                {"port", port},
                {"url", info->consumer_url},
                {"cafile", info->cafile},
                {"api_key_id", info->api_key_id},
                {"integration_id", info->integration_id},
                {"token_file", info->token_file}};

    if (!ms)
        return NULL;
    snprintf(port, sizeof(port), "%d", info->consumer_port);
    for (const char *p = cmd; *p; p++) {
        bool done = false;

        for (size_t i = 0; *p == '{' && i < sizeof(vars) / sizeof(vars[0]) && !done; i++) {
            size_t n = strlen(vars[i].name);

            if (strncmp(p + 1, vars[i].name, n) == 0 && p[1 + n] == '}') {
                put_shell_quoted(ms, vars[i].value ? vars[i].value : "");
                p += n + 1;
                done = true;
            }
        }
        if (!done)
            fputc(*p, ms);
    }
    if (fclose(ms) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* --- cleanup ------------------------------------------------------------------------------ */

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"ca.crt",         "server.crt",    "server.key",
                                        "passwd",         "acl",           "token",
                                        "mosquitto.conf", "mosquitto.log", "mosquitto.out"};
    char path[700];

    for (size_t i = 0; i < HC__ARRAY_LEN(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

void hc_broker_free(hc_broker *b)
{
    if (!b)
        return;
    stop_process(b);
    for (size_t i = 0; i < CLIENTS_KEPT; i++) {
        free(b->clients[i].client_id);
        free(b->clients[i].user);
    }
    if (b->dir[0])
        remove_dir(b->dir);
    OPENSSL_cleanse(b->token, sizeof(b->token));
    OPENSSL_cleanse(b->publisher_password, sizeof(b->publisher_password));
    free(b);
}

/*
 * The MQTT connection options every networked tool shares, and where credentials come from:
 * options, then the environment, then a token file. A token on the command line works but is
 * warned about (other users can read argv); it never reaches logs, errors, --help or recordings.
 * While a token is in memory the process is not dumpable (no core file, no ptrace by the same
 * user), and exactly one copy is kept: the original in the environment or argv is wiped.
 */
#include "tool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

const char tool_mqtt_usage[] =
    "Broker connection:\n"
    "  --url URL             mqtt://host[:port] or mqtts://host[:port] (TLS)\n"
    "  -h, --host HOST       broker host (with -p; plain MQTT unless the URL says mqtts)\n"
    "  -p, --port PORT       broker port\n"
    "  -i, --id ID           client id (default: unique per run)\n"
    "  --cafile FILE         trust this CA certificate (PEM) instead of the system bundle\n"
    "  --capath DIR          trust the CA certificates in DIR\n"
    "  --insecure            do not verify the server certificate (prints a warning)\n"
    "  -u, --username NAME   MQTT user name (env HALTIAN_API_KEY_ID)\n"
    "  --integration-id ID   integration id for topics (env HALTIAN_INTEGRATION_ID)\n"
    "  --token-file FILE     read the password/token from FILE (env HALTIAN_API_KEY_TOKEN)\n"
    "  --token TOKEN         token on the command line: visible to other users, avoid\n"
    "  --keepalive SECONDS   MQTT keepalive (default 60)\n";

enum opts_result tool_mqtt_option(struct tool_mqtt *m, int opt, const char *arg)
{
    switch (opt) {
    case TOOL_OPT_URL:
        m->url = arg;
        return OPTS_OK;
    case 'h':
        m->host = arg;
        return OPTS_OK;
    case 'p':
        return tool_parse_long("--port", arg, 1, 65535, &m->port);
    case 'i':
        if (!*arg || strlen(arg) > 65535)
            return tool_usage_error("invalid value '%s' for --id: must not be empty", arg);
        m->client_id = arg;
        return OPTS_OK;
    case TOOL_OPT_CAFILE:
        m->cafile = arg;
        return OPTS_OK;
    case TOOL_OPT_CAPATH:
        m->capath = arg;
        return OPTS_OK;
    case TOOL_OPT_INSECURE:
        m->insecure = true;
        return OPTS_OK;
    case 'u':
    case TOOL_OPT_API_KEY_ID:
        m->api_key_id = arg;
        return OPTS_OK;
    case TOOL_OPT_INTEGRATION_ID:
        m->integration_id = arg;
        return OPTS_OK;
    case TOOL_OPT_TOKEN_FILE:
        m->token_file = arg;
        return OPTS_OK;
    case TOOL_OPT_TOKEN:
        m->token_arg = arg;
        return OPTS_OK;
    case TOOL_OPT_KEEPALIVE:
        return tool_parse_long("--keepalive", arg, 5, 65535, &m->keepalive_s);
    default:
        return OPTS_UNKNOWN;
    }
}

/* The longest token accepted; longer ones were silently cut before, now they are an error. */
#define TOKEN_MAX 8191

void tool_shell_quote(char *out, size_t size, const char *s)
{
    size_t o = 0, need = 2;
    bool plain = *s != '\0' && *s != '-';

    for (const char *c = s; *c; c++) {
        need += *c == '\'' ? 4 : 1;
        if (!(isalnum((unsigned char)*c) || strchr("/._-+:,=@", *c)))
            plain = false;
    }
    if (plain && strlen(s) < size) {
        memcpy(out, s, strlen(s) + 1);
        return;
    }
    if (need >= size) { /* never hand out a cut path as a command */
        snprintf(out, size, "%s", size > 6 ? "'...'" : "");
        return;
    }
    out[o++] = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *s;
        }
    }
    out[o++] = '\'';
    out[o] = '\0';
}

/* Wipes a secret in place, in a way the compiler cannot drop. */
static void wipe(char *s, size_t len)
{
    volatile char *v = s;

    while (len--)
        *v++ = '\0';
}

/*
 * A token is in memory from here until tool_mqtt_release: no core dump may carry it, and
 * (PR_SET_DUMPABLE also does this) no other process of the same user may read our memory.
 */
static void protect_secrets(void)
{
    struct rlimit none = {0, 0};

    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    setrlimit(RLIMIT_CORE, &none);
}

/* "its group can read and write it, other users can write it" from a file mode's group/other
 * bits; "" when there are none. */
static void describe_access(mode_t mode, char *buf, size_t size)
{
    static const struct {
        mode_t r, w, x;
        const char *who;
    } classes[2] = {{S_IRGRP, S_IWGRP, S_IXGRP, "its group"},
                    {S_IROTH, S_IWOTH, S_IXOTH, "other users"}};

    buf[0] = '\0';
    for (int i = 0; i < 2; i++) {
        const char *verbs[3];
        int n = 0;
        size_t used = strlen(buf);

        if (mode & classes[i].r)
            verbs[n++] = "read";
        if (mode & classes[i].w)
            verbs[n++] = "write";
        if (mode & classes[i].x)
            verbs[n++] = "execute";
        if (!n)
            continue;
        snprintf(buf + used, size - used, "%s%s can %s%s%s%s%s it", used ? ", " : "",
                 classes[i].who, verbs[0],
                 n == 2   ? " and "
                 : n == 3 ? ", "
                          : "",
                 n > 1 ? verbs[1] : "", n == 3 ? " and " : "", n == 3 ? verbs[2] : "");
    }
}

/* A token that ends (or starts) in blanks is sent as is, but is most likely a copy-paste slip. */
static void hint_blanks(const char *token, const char *source)
{
    size_t len = strlen(token);

    if (len && (token[len - 1] == ' ' || token[len - 1] == '\t'))
        tool_warn("the token from %s ends with a space or tab, which is sent as part of it; remove "
                  "it if it is not",
                  source);
    else if (token[0] == ' ' || token[0] == '\t')
        tool_warn("the token from %s starts with a space or tab, which is sent as part of it; "
                  "remove it if it is not",
                  source);
}

static enum opts_result read_token_file(struct tool_mqtt *m)
{
    struct stat st;
    char buf[TOKEN_MAX + 3]; /* the token, a "\r\n", and one byte to notice a longer one */
    char quoted[4 * 4096 + 3], source[4200], access[128];
    size_t n = 0, len;
    int fd;
    enum opts_result res = OPTS_ERROR;

    fd = open(m->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        tool_error("cannot read token file '%s': %s", m->token_file, strerror(errno));
        return OPTS_ERROR;
    }
    if (fstat(fd, &st) != 0) {
        tool_error("cannot read token file '%s': %s", m->token_file, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        tool_error("token file '%s' is a directory, not a file", m->token_file);
        goto out;
    }
    if (!S_ISREG(st.st_mode))
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* a pipe: wait for the writer */
    describe_access(st.st_mode, access, sizeof(access));
    if (access[0]) {
        tool_shell_quote(quoted, sizeof(quoted), m->token_file);
        tool_warn("token file '%s' has mode %04o: %s; run: chmod 600 %s", m->token_file,
                  (unsigned)(st.st_mode & 07777), access, quoted);
    }
    protect_secrets();
    while (n < sizeof(buf)) {
        ssize_t k = read(fd, buf + n, sizeof(buf) - n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            tool_error("cannot read token file '%s': %s", m->token_file, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (memchr(buf, '\n', n))
            break; /* only the first line is the token */
    }
    len = 0;
    while (len < n && buf[len] != '\n' && buf[len] != '\r')
        len++;
    if (len > TOKEN_MAX) {
        tool_error("the token in '%s' is longer than %d bytes", m->token_file, TOKEN_MAX);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        tool_error("the token in '%s' contains a NUL byte", m->token_file);
        goto out;
    }
    if (len == 0) {
        tool_error("token file '%s' is empty", m->token_file);
        goto out;
    }
    m->token = malloc(len + 1);
    if (!m->token) {
        tool_error("out of memory");
        goto out;
    }
    memcpy(m->token, buf, len);
    m->token[len] = '\0';
    snprintf(source, sizeof(source), "'%s'", m->token_file);
    hint_blanks(m->token, source);
    res = OPTS_OK;
out:
    wipe(buf, sizeof(buf));
    close(fd);
    return res;
}

/*
 * Takes the one copy of a token kept in memory from where it came (an environment variable or
 * argv) and wipes the original there, so it is neither in /proc/PID/environ or cmdline nor in
 * memory twice.
 */
static enum opts_result take_token(struct tool_mqtt *m, char *origin, const char *source)
{
    size_t len = strlen(origin);

    if (len > TOKEN_MAX) {
        tool_error("the token from %s is longer than %d bytes", source, TOKEN_MAX);
        return OPTS_ERROR;
    }
    protect_secrets();
    m->token = strdup(origin);
    wipe(origin, len);
    if (!m->token) {
        tool_error("out of memory");
        return OPTS_ERROR;
    }
    hint_blanks(m->token, source);
    return OPTS_OK;
}

/* Userinfo ("user:secret@") in a broker address is never echoed, and never used. */
static bool has_userinfo(const char *address)
{
    const char *start = strstr(address, "://"), *end;

    start = start ? start + 3 : address;
    end = start + strcspn(start, "/?#");
    return memchr(start, '@', (size_t)(end - start)) != NULL;
}

enum opts_result tool_mqtt_resolve(struct tool_mqtt *m, const char *default_url,
                                   struct hc_mqtt_options *out)
{
    struct hc_mqtt_url parsed;
    hc_error err = HC_ERROR_INIT;
    const char *env;

    memset(out, 0, sizeof(*out));
    if (m->url && (m->host || m->port))
        return tool_usage_error("use either --url or -h/-p, not both");
    if ((m->url && has_userinfo(m->url)) || (m->host && strchr(m->host, '@')))
        return tool_usage_error("%s must not contain a user name or password ('user:token@'); use "
                                "--api-key-id and --token-file",
                                m->url ? "--url" : "-h");
    if (m->url) {
        if (hc_mqtt_parse_url(m->url, &parsed, &err) != HC_OK)
            return tool_usage_error("%s", err.message);
        out->url = m->url;
    } else if (m->host || m->port) {
        bool tls = false;
        if (hc_mqtt_parse_url(default_url, &parsed, NULL) == HC_OK)
            tls = parsed.tls && !m->host; /* -p alone keeps the default scheme and host */
        snprintf(m->url_buf, sizeof(m->url_buf), "%s://%s%s%s:%ld", tls ? "mqtts" : "mqtt",
                 m->host && strchr(m->host, ':') ? "[" : "", m->host ? m->host : parsed.host,
                 m->host && strchr(m->host, ':') ? "]" : "",
                 m->port ? m->port : (tls ? 8883L : 1883L));
        if (hc_mqtt_parse_url(m->url_buf, &parsed, &err) != HC_OK)
            return tool_usage_error("%s", err.message);
        out->url = m->url_buf;
    } else {
        out->url = default_url;
    }

    if (!m->api_key_id && (env = getenv("HALTIAN_API_KEY_ID")) && *env)
        m->api_key_id = env;
    if (!m->integration_id && (env = getenv("HALTIAN_INTEGRATION_ID")) && *env)
        m->integration_id = env;
    if (m->token_arg && m->token_file)
        return tool_usage_error("use either --token or --token-file, not both");
    if (m->token_arg) {
        tool_warn("a token on the command line is visible to other users; prefer --token-file "
                  "or HALTIAN_API_KEY_TOKEN");
        /* argv is the caller's to write: wiping it also hides the token from ps from now on */
        if (take_token(m, (char *)m->token_arg, "--token") != OPTS_OK)
            return OPTS_ERROR;
    } else if (m->token_file) {
        if (read_token_file(m) != OPTS_OK)
            return OPTS_ERROR;
    } else if ((env = getenv("HALTIAN_API_KEY_TOKEN")) && *env) {
        if (take_token(m, (char *)env, "HALTIAN_API_KEY_TOKEN") != OPTS_OK)
            return OPTS_ERROR;
        unsetenv("HALTIAN_API_KEY_TOKEN"); /* children see no emptied variable */
    }
    if (m->token && !m->api_key_id)
        return tool_usage_error("a token needs an API key id (--api-key-id or "
                                "HALTIAN_API_KEY_ID)");

    if (m->insecure)
        tool_warn("--insecure: the broker's certificate is not verified; anyone on the path can "
                  "read the traffic and the token");
    if (!m->client_id) {
        hc_mqtt_client_id(tool_name, m->client_id_buf, sizeof(m->client_id_buf));
        m->client_id = m->client_id_buf;
    }
    out->client_id = m->client_id;
    out->username = m->api_key_id;
    out->password = m->token;
    out->cafile = m->cafile;
    out->capath = m->capath;
    out->insecure = m->insecure;
    out->keepalive_s = (int)m->keepalive_s;
    return OPTS_OK;
}

void tool_mqtt_release(struct tool_mqtt *m)
{
    if (m->token) {
        wipe(m->token, strlen(m->token));
        free(m->token);
        m->token = NULL;
    }
}

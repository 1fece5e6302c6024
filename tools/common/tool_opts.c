/*
 * The MQTT connection options every networked tool shares, and where credentials come from:
 * options, then the environment, then a token file. A token on the command line works but is
 * warned about (other users can read argv); it never reaches logs, --help or recordings.
 */
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char tool_mqtt_usage[] =
    "Broker connection:\n"
    "  --url URL             mqtt://host[:port] or mqtts://host[:port] (TLS)\n"
    "  -h, --host HOST       broker host (with -p; plain MQTT unless the URL says mqtts)\n"
    "  -p, --port PORT       broker port\n"
    "  -i, --id ID           client id (default: unique per run)\n"
    "  --cafile FILE         trust this CA certificate (PEM) instead of the system bundle\n"
    "  --capath DIR          trust the CA certificates in DIR\n"
    "  --insecure            do not verify the server certificate (prints a warning)\n"
    "  -u, --api-key-id ID   MQTT user name (env HALTIAN_API_KEY_ID)\n"
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

static enum opts_result read_token_file(struct tool_mqtt *m)
{
    struct stat st;
    FILE *fp;
    char buf[8192];
    size_t n;

    fp = fopen(m->token_file, "r");
    if (!fp) {
        tool_error("cannot read token file '%s': %s", m->token_file, strerror(errno));
        return OPTS_ERROR;
    }
    if (fstat(fileno(fp), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        tool_warn("token file '%s' is readable by other users; run 'chmod 600 %s'",
                  m->token_file, m->token_file);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!buf[0]) {
        tool_error("token file '%s' is empty", m->token_file);
        return OPTS_ERROR;
    }
    m->token = strdup(buf);
    memset(buf, 0, sizeof(buf));
    return m->token ? OPTS_OK : OPTS_ERROR;
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
    if (m->url) {
        if (hc_mqtt_parse_url(m->url, &parsed, &err) != HC_OK)
            return tool_usage_error("%s", err.message);
        out->url = m->url;
    } else if (m->host || m->port) {
        bool tls = false;
        if (hc_mqtt_parse_url(default_url, &parsed, NULL) == HC_OK)
            tls = parsed.tls && !m->host; /* -p alone keeps the default scheme and host */
        snprintf(m->url_buf, sizeof(m->url_buf), "%s://%s%s%s:%ld", tls ? "mqtts" : "mqtt",
                 m->host && strchr(m->host, ':') ? "[" : "",
                 m->host ? m->host : parsed.host, m->host && strchr(m->host, ':') ? "]" : "",
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
        m->token = strdup(m->token_arg);
    } else if (m->token_file) {
        if (read_token_file(m) != OPTS_OK)
            return OPTS_ERROR;
    } else if ((env = getenv("HALTIAN_API_KEY_TOKEN")) && *env) {
        m->token = strdup(env);
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
        volatile char *v = m->token;
        while (*v)
            *v++ = '\0';
        free(m->token);
        m->token = NULL;
    }
}

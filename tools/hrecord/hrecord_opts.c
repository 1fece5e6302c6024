/*
 * hrecord's command line: one getopt_long table, the usage text, strict values, and the
 * subscriptions resolved from -t or from --kind/--type/--device and the Haltian ids.
 */
#include "hrecord.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hcore/decode.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"

enum {
    OPT_APPEND = TOOL_OPT_TOOL_BASE,
    OPT_FORCE,
    OPT_NOTE,
    OPT_DURATION,
    OPT_FLUSH_MS,
    OPT_RECONNECT_MIN,
    OPT_RECONNECT_MAX,
    OPT_RETRY_CONNECT,
    OPT_JSON_SUMMARY,
    OPT_QUIET,
    OPT_ROTATE_SIZE,
    OPT_ROTATE_TIME,
    OPT_KEEP,
    OPT_HELP
};

/* A segment starts at several hundred KiB (schema pages of 32 KiB, its -wal): smaller limits
 * would rotate at every message. */
#define ROTATE_SIZE_MIN (1024LL * 1024)
#define ROTATE_TIME_MIN_NS 1000000000LL

static const struct option long_options[] = {
    TOOL_MQTT_LONG_OPTIONS,
    {"topic", required_argument, NULL, 't'},
    {"kind", required_argument, NULL, TOOL_OPT_KIND},
    {"type", required_argument, NULL, TOOL_OPT_TYPE},
    {"device", required_argument, NULL, TOOL_OPT_DEVICE},
    {"qos", required_argument, NULL, 'q'},
    {"output", required_argument, NULL, 'o'},
    {"append", no_argument, NULL, OPT_APPEND},
    {"force", no_argument, NULL, OPT_FORCE},
    {"note", required_argument, NULL, OPT_NOTE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"count", required_argument, NULL, 'C'},
    {"flush-ms", required_argument, NULL, OPT_FLUSH_MS},
    {"reconnect-min", required_argument, NULL, OPT_RECONNECT_MIN},
    {"reconnect-max", required_argument, NULL, OPT_RECONNECT_MAX},
    {"retry-connect", no_argument, NULL, OPT_RETRY_CONNECT},
    {"rotate-size", required_argument, NULL, OPT_ROTATE_SIZE},
    {"rotate-time", required_argument, NULL, OPT_ROTATE_TIME},
    {"keep", required_argument, NULL, OPT_KEEP},
    {"json-summary", no_argument, NULL, OPT_JSON_SUMMARY},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

static const char usage_head[] =
    "Usage: hrecord [OPTIONS]\n"
    "Capture a live MQTT stream (Haltian IoT by default) into a recording: every message byte\n"
    "for byte with its arrival time, QoS, retain and dup flags, one session per connection.\n"
    "\n"
    "Examples:\n"
    "  export HALTIAN_API_KEY_ID=... HALTIAN_INTEGRATION_ID=... HALTIAN_API_KEY_TOKEN=...\n"
    "  hrecord -o field.db --note 'gateway 7 drops readings at night'\n"
    "  hrecord -o temps.db --kind measurements --type ambientTemperature --duration 2h\n"
    "  hrecord --url mqtt://localhost:1883 -t 'sensors/#' -o local.db --count 1000\n"
    "\n"
    "Default broker: " HRECORD_DEFAULT_URL " (TLS, verified against the\n"
    "system CA bundle). Default subscription:\n"
    "  haltian-iot/events/{integration-id}/{api-key-id}/#\n"
    "\n";

static const char usage_record[] =
    "Subscriptions:\n"
    "  --api-key-id ID       API key id: MQTT user name and topic level 4 (env "
    "HALTIAN_API_KEY_ID)\n"
    "  -t, --topic FILTER    subscribe to FILTER (repeatable; MQTT wildcards + and #)\n"
    "  --kind KIND           Haltian event kind, e.g. measurements (repeatable)\n"
    "  --type TYPE           Haltian event type, e.g. ambientTemperature; aliases such as\n"
    "                        ambient_temperature also subscribe the canonical name (repeatable)\n"
    "  --device ID           device id (repeatable); --kind/--type/--device build the filters\n"
    "                        haltian-iot/events/{integration}/{key}/{kind}/{type}/{device}\n"
    "                        with + (or a final #) where a level is not given\n"
    "  -q, --qos QOS         QoS requested for every filter, 0-2 (default 1); the granted QoS\n"
    "                        is stored in the recording\n"
    "\n"
    "Recording:\n"
    "  -o, --output FILE     recording to write (default: hkit-<UTC time>.db in the current\n"
    "                        directory, hkit-<UTC time>-2.db... when taken); checked before\n"
    "                        connecting; an existing file is refused unless:\n"
    "  --append              add a new session to an existing recording\n"
    "  --force               replace an existing file\n"
    "  --note TEXT           free-text description stored in the recording\n"
    "  --flush-ms MS         commit (and sync to the device) every message within MS\n"
    "                        milliseconds of its arrival (default 200; 0 commits every\n"
    "                        message): the most a crash or power loss can lose\n"
    "  --duration D          stop after D (e.g. 90s, 30m, 2h)\n"
    "  -C, --count N         stop after N messages\n"
    "\n"
    "Rotation (segments 000001.db, 000002.db... and manifest.json in -o DIR/):\n"
    "  --rotate-size SIZE    start the next segment once one (file and -wal) reaches SIZE\n"
    "                        bytes and holds a message (suffixes K, M, G: powers of\n"
    "                        1024; at least 1M)\n"
    "  --rotate-time D       start the next segment on each multiple of D of the UTC clock\n"
    "                        (1h cuts on the hour; at least 1s)\n"
    "  --keep N              keep only the newest N segments (default: all)\n"
    "                        hcat, hreplay and hverify read DIR as one recording; --append\n"
    "                        continues a directory after a crash, --force replaces its segments\n"
    "\n"
    "Connection:\n"
    "  --reconnect-min D     first delay before reconnecting after a lost connection (default 1s)\n"
    "  --reconnect-max D     cap of the doubling delay (default 60s); delays get random jitter\n"
    "  --retry-connect       also retry when the first connection fails (default: fail at once\n"
    "                        if the broker cannot be reached when hrecord starts)\n"
    "\n"
    "Output:\n"
    "  --json-summary        print the recording's path and counts as JSON on stdout at exit\n"
    "  --quiet               no status line, connection log or summary; errors only\n"
    "  -v, --verbose         more detail on stderr\n"
    "  --help                show this help\n"
    "\n";

static const char usage_tail[] =
    "\n"
    "Bad credentials, a refused subscription or a TLS verification failure stop hrecord at once.\n"
    "A lost connection is retried with backoff; each reconnection starts a new session.\n"
    "SIGINT/SIGTERM commit what was received, close the session and exit 0.\n" TOOL_EXIT_CODES_HELP;

static enum opts_result add_arg(const char **list, size_t *n, const char *option, const char *arg)
{
    if (*n >= HRECORD_MAX_ARGS)
        return tool_usage_error("too many %s options (at most %d)", option, HRECORD_MAX_ARGS);
    list[(*n)++] = arg;
    return OPTS_OK;
}

/* SIZE: a whole number of bytes with an optional K, M or G (powers of 1024). */
static enum opts_result parse_size(const char *option, const char *text, int64_t *out)
{
    char *end = NULL;
    long long v;
    int64_t unit = 1;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (end == text || errno || v <= 0)
        return tool_usage_error("invalid value '%s' for %s: expected a size such as 64M", text,
                                option);
    if (*end == 'K' || *end == 'k')
        unit = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        unit = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        unit = 1024 * 1024 * 1024, end++;
    if (*end || v > INT64_MAX / unit)
        return tool_usage_error("invalid value '%s' for %s: expected a size such as 64M", text,
                                option);
    *out = (int64_t)v * unit;
    return OPTS_OK;
}

static enum opts_result parse_one(struct hrecord_opts *o, int opt, const char *arg)
{
    hc_error err = HC_ERROR_INIT;

    switch (opt) {
    case 't':
        if (hc_topic_filter_validate(arg, &err) != HC_OK)
            return tool_usage_error("%s", err.message);
        return add_arg(o->topics, &o->n_topics, "-t", arg);
    case TOOL_OPT_KIND:
        return add_arg(o->kinds, &o->n_kinds, "--kind", arg);
    case TOOL_OPT_TYPE:
        return add_arg(o->types, &o->n_types, "--type", arg);
    case TOOL_OPT_DEVICE:
        return add_arg(o->devices, &o->n_devices, "--device", arg);
    case 'q':
        return tool_parse_long("--qos", arg, 0, 2, &o->qos);
    case 'o':
        if (!*arg)
            return tool_usage_error("invalid value '' for --output: must not be empty");
        o->output = arg;
        return OPTS_OK;
    case OPT_APPEND:
        o->append = true;
        return OPTS_OK;
    case OPT_FORCE:
        o->force = true;
        return OPTS_OK;
    case OPT_NOTE:
        o->note = arg;
        return OPTS_OK;
    case OPT_DURATION:
        if (tool_parse_duration_ns("--duration", arg, &o->duration_ns) != OPTS_OK)
            return OPTS_ERROR;
        if (o->duration_ns <= 0)
            return tool_usage_error("invalid duration '%s' for --duration: must be positive", arg);
        return OPTS_OK;
    case 'C':
        return tool_parse_long("--count", arg, 1, LONG_MAX, &o->count);
    case OPT_FLUSH_MS:
        return tool_parse_long("--flush-ms", arg, 0, 3600000, &o->flush_ms);
    case OPT_RECONNECT_MIN:
    case OPT_RECONNECT_MAX: {
        const char *name = opt == OPT_RECONNECT_MIN ? "--reconnect-min" : "--reconnect-max";
        int64_t *dst = opt == OPT_RECONNECT_MIN ? &o->reconnect_min_ns : &o->reconnect_max_ns;
        if (tool_parse_duration_ns(name, arg, dst) != OPTS_OK)
            return OPTS_ERROR;
        if (*dst < 1000000 || *dst > 86400 * 1000000000LL)
            return tool_usage_error("invalid duration '%s' for %s: must be between 1ms and 1d", arg,
                                    name);
        return OPTS_OK;
    }
    case OPT_RETRY_CONNECT:
        o->retry_connect = true;
        return OPTS_OK;
    case OPT_JSON_SUMMARY:
        o->json_summary = true;
        return OPTS_OK;
    case OPT_QUIET:
        tool_verbosity = 0;
        return OPTS_OK;
    case OPT_ROTATE_SIZE:
        if (parse_size("--rotate-size", arg, &o->rotate_size) != OPTS_OK)
            return OPTS_ERROR;
        if (o->rotate_size < ROTATE_SIZE_MIN)
            return tool_usage_error("invalid value '%s' for --rotate-size: must be at least 1M",
                                    arg);
        return OPTS_OK;
    case OPT_ROTATE_TIME:
        if (tool_parse_duration_ns("--rotate-time", arg, &o->rotate_ns) != OPTS_OK)
            return OPTS_ERROR;
        if (o->rotate_ns < ROTATE_TIME_MIN_NS)
            return tool_usage_error("invalid value '%s' for --rotate-time: must be at least 1s",
                                    arg);
        return OPTS_OK;
    case OPT_KEEP:
        return tool_parse_long("--keep", arg, 1, 999999, &o->keep);
    case 'v':
        tool_verbosity = 2;
        return OPTS_OK;
    default:
        return tool_mqtt_option(&o->mqtt, opt, arg);
    }
}

/* Builds o->filters from -t, --kind/--type/--device, or the Haltian default. */
static enum opts_result resolve_filters(struct hrecord_opts *o)
{
    const char *integration = o->mqtt.integration_id, *key = o->mqtt.api_key_id;
    bool haltian = o->n_kinds || o->n_types || o->n_devices;
    hc_error err = HC_ERROR_INIT;
    size_t n_built = 0;
    char **built = NULL;

    if (!o->n_topics || haltian) {
        if (!integration || !key)
            return tool_usage_error(
                "%s needs the integration id and API key id (--integration-id and --api-key-id, "
                "or HALTIAN_INTEGRATION_ID and HALTIAN_API_KEY_ID); or give -t FILTER",
                haltian ? "--kind/--type/--device" : "the default subscription");
        if (hrecord_build_filters(integration, key, o->kinds, o->n_kinds, o->types, o->n_types,
                                  o->devices, o->n_devices, HRECORD_MAX_SUBSCRIPTIONS - o->n_topics,
                                  &built, &n_built, &err) != HC_OK)
            return tool_usage_error("%s", err.message);
    }
    o->filters = calloc(o->n_topics + n_built + 1, sizeof(char *));
    if (!o->filters) {
        for (size_t i = 0; i < n_built; i++)
            free(built[i]);
        free(built);
        tool_error("out of memory");
        return OPTS_ERROR;
    }
    for (size_t i = 0; i < o->n_topics; i++) {
        bool dup = false;
        for (size_t j = 0; j < o->n_filters && !dup; j++)
            dup = strcmp(o->filters[j], o->topics[i]) == 0;
        if (!dup && !(o->filters[o->n_filters] = strdup(o->topics[i]))) {
            tool_error("out of memory");
            return OPTS_ERROR;
        }
        o->n_filters += dup ? 0 : 1;
    }
    for (size_t i = 0; i < n_built; i++) {
        bool dup = false;
        for (size_t j = 0; j < o->n_filters && !dup; j++)
            dup = strcmp(o->filters[j], built[i]) == 0;
        if (dup)
            free(built[i]);
        else
            o->filters[o->n_filters++] = built[i];
    }
    free(built);
    return OPTS_OK;
}

static enum opts_result resolve_output(struct hrecord_opts *o)
{
    struct stat st;

    if (o->append && o->force)
        return tool_usage_error("use either --append or --force, not both");
    if (!o->output) {
        char when[40];
        int64_t now = hc_time_realtime_ns();
        /* hkit-20260205T103045Z.db: sortable, no characters that need quoting in a shell */
        hc_time_format_rfc3339(now, 0, when, sizeof(when));
        size_t j = 0;
        for (size_t i = 0; when[i] && j + 1 < sizeof(when); i++)
            if (when[i] != '-' && when[i] != ':')
                when[j++] = when[i];
        when[j] = '\0';
        snprintf(o->output_buf, sizeof(o->output_buf), "hkit-%s.db", when);
        o->output = o->output_buf;
        o->output_is_default = true;
    }
    o->output_is_dir = o->output[strlen(o->output) - 1] == '/' ||
                       (stat(o->output, &st) == 0 && S_ISDIR(st.st_mode));
    if (o->output_is_dir && !o->rotate_size && !o->rotate_ns)
        return tool_usage_error("invalid value '%s' for --output: is a directory", o->output);
    if ((o->rotate_size || o->rotate_ns) && !o->output_is_dir)
        return tool_usage_error("--rotate-size and --rotate-time write segments into a directory: "
                                "give -o DIR/");
    if (o->keep && !o->output_is_dir)
        return tool_usage_error("--keep needs --rotate-size or --rotate-time");
    return OPTS_OK;
}

enum opts_result hrecord_parse(int argc, char **argv, struct hrecord_opts *o)
{
    enum opts_result r;
    int opt;

    memset(o, 0, sizeof(*o));
    o->qos = 1;
    o->flush_ms = 200;
    o->reconnect_min_ns = 1000000000LL;
    o->reconnect_max_ns = 60000000000LL;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":" TOOL_MQTT_SHORT_OPTIONS "t:q:o:C:v", long_options,
                              NULL)) != -1) {
        if (opt == OPT_HELP) {
            fputs(usage_head, stdout);
            fputs(usage_record, stdout);
            fputs(tool_mqtt_usage, stdout);
            fputs(usage_tail, stdout);
            return OPTS_HELP;
        }
        if (opt == '?') {
            if (optopt)
                return tool_usage_error("unknown option '-%c'", optopt);
            return tool_usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (opt == ':')
            return tool_usage_error("option '%s' needs a value", argv[optind - 1]);
        r = parse_one(o, opt, optarg);
        if (r == OPTS_UNKNOWN)
            return tool_usage_error("unknown option '%s'", argv[optind - 1]);
        if (r != OPTS_OK)
            return r;
    }
    if (optind < argc)
        return tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (o->reconnect_min_ns > o->reconnect_max_ns)
        return tool_usage_error("--reconnect-min must not be longer than --reconnect-max");
    r = resolve_output(o);
    if (r != OPTS_OK)
        return r;
    r = tool_mqtt_resolve(&o->mqtt, HRECORD_DEFAULT_URL, &o->conn);
    if (r != OPTS_OK)
        return r;
    return resolve_filters(o);
}

void hrecord_opts_release(struct hrecord_opts *o)
{
    for (size_t i = 0; i < o->n_filters; i++)
        free(o->filters[i]);
    free(o->filters);
    o->filters = NULL;
    o->n_filters = 0;
    tool_mqtt_release(&o->mqtt);
}

/*
 * hgen's command line: one getopt_long table, the usage text, and strict values. Exactly one
 * output is required (-o FILE.db, --jsonl, or a broker via --url / -h / -p).
 */
#include "hgen.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/timefmt.h"

enum {
    OPT_DEVICES = TOOL_OPT_TOOL_BASE,
    OPT_DURATION,
    OPT_START,
    OPT_SEED,
    OPT_SHAPES,
    OPT_THINGSEE,
    OPT_JSONL,
    OPT_FORCE,
    OPT_SPEED,
    OPT_RATE,
    OPT_MAX,
    OPT_COUNT,
    OPT_QUIET,
    OPT_HELP
};

static const struct option long_options[] = {TOOL_MQTT_LONG_OPTIONS,
                                             {"devices", required_argument, NULL, OPT_DEVICES},
                                             {"duration", required_argument, NULL, OPT_DURATION},
                                             {"start", required_argument, NULL, OPT_START},
                                             {"seed", required_argument, NULL, OPT_SEED},
                                             {"shapes", required_argument, NULL, OPT_SHAPES},
                                             {"thingsee", no_argument, NULL, OPT_THINGSEE},
                                             {"output", required_argument, NULL, 'o'},
                                             {"jsonl", no_argument, NULL, OPT_JSONL},
                                             {"force", no_argument, NULL, OPT_FORCE},
                                             {"speed", required_argument, NULL, OPT_SPEED},
                                             {"rate", required_argument, NULL, OPT_RATE},
                                             {"max", no_argument, NULL, OPT_MAX},
                                             {"qos", required_argument, NULL, 'q'},
                                             {"count", required_argument, NULL, OPT_COUNT},
                                             {"quiet", no_argument, NULL, OPT_QUIET},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};

static const char usage_text[] =
    "Usage: hgen [OPTIONS] (-o FILE.db | --jsonl | --url URL)\n"
    "Synthesise realistic Haltian IoT traffic from a device mix: the measurement types, ranges,\n"
    "units, cadences and event-driven behaviour Haltian documents, in time order. The same seed\n"
    "and options give the same bytes.\n"
    "\n"
    "Examples:\n"
    "  hgen -o week.db --devices environment=50,presence=100 --duration 7d\n"
    "  hgen --jsonl --duration 10m --seed 7 | head\n"
    "  hgen --url mqtt://localhost:1883 --speed 60     one simulated hour per real minute\n"
    "\n"
    "Traffic model:\n"
    "  --devices MIX         devices per kind, e.g. environment=50,presence=100,air=10 (kinds:\n"
    "                        environment, presence, air, beam, count, tag, radar, leakage,\n"
    "                        group (device groups; none with --thingsee); default\n"
    "                        environment=20,presence=40,air=5,beam=5,count=5,tag=10,radar=5,\n"
    "                        leakage=5,group=4)\n"
    "  --duration DURATION   simulated time span, e.g. 30m, 1h, 7d (default 1h)\n"
    "  --start TIME          RFC 3339 start of the simulated time (default 2026-02-02T00:00:00Z,\n"
    "                        a Monday, so output is reproducible; with a broker: now)\n"
    "  --seed N              random seed (default 1); device ids derive from it\n"
    "  --integration-id ID   topic integration id (default " HC_GEN_DEFAULT_INTEGRATION_ID ")\n"
    "  --api-key-id ID       topic API key id (default " HC_GEN_DEFAULT_API_KEY_ID ")\n"
    "  --shapes SHAPES       canonical (default): {\"measured_at\":...,\"value\":...}; mixed: "
    "also\n"
    "                        named fields, snake_case and upper-case type names, 0 or 6\n"
    "                        fractional digits with +00:00, the other position layouts\n"
    "  --thingsee            legacy Thingsee messages (cloudext/json/... topics) instead\n"
    "  --count N             stop after N messages\n"
    "\n"
    "Output (exactly one):\n"
    "  -o, --output FILE.db  write a recording, as if captured (one session, QoS 1)\n"
    "  --force               replace an existing FILE.db\n"
    "  --jsonl               JSON lines on standard output (hkit's format, as hcat prints)\n"
    "  --url URL             publish live to a broker (mqtt:// or mqtts://; or -h/-p)\n"
    "\n"
    "Publishing:\n"
    "  --speed X             X times real time (default 1: real time)\n"
    "  --rate N              N messages per second, evenly spaced, whatever their timestamps\n"
    "  --max                 as fast as the broker takes them\n"
    "  -q, --qos 0|1         QoS of published messages (default 1)\n"
    "  -h, --host HOST       broker host (with -p; plain MQTT)\n"
    "  -p, --port PORT       broker port\n"
    "  -i, --id ID           client id (default: unique per run)\n"
    "  -u, --username NAME   MQTT user name\n"
    "  --token-file FILE     read the password from FILE (env HALTIAN_API_KEY_TOKEN)\n"
    "  --token TOKEN         password on the command line: visible to other users, avoid\n"
    "  --cafile FILE         trust this CA certificate (PEM) instead of the system bundle\n"
    "  --capath DIR          trust the CA certificates in DIR\n"
    "  --insecure            do not verify the server certificate (prints a warning)\n"
    "  --keepalive SECONDS   MQTT keepalive (default 60)\n"
    "\n"
    "Other:\n"
    "  --quiet               no summary on standard error\n"
    "  --help                this text\n"
    "\n" TOOL_EXIT_CODES_HELP;

static enum opts_result parse_one(struct hgen_opts *o, int opt, const char *arg, bool *speed_set)
{
    hc_error err = HC_ERROR_INIT;
    long v;

    switch (opt) {
    case OPT_DEVICES:
        if (hc_gen_parse_devices(arg, o->gen.devices, &err) != HC_OK)
            return tool_usage_error("invalid value '%s' for --devices: %s", arg, err.message);
        o->devices_text = arg;
        return OPTS_OK;
    case OPT_DURATION:
        if (tool_parse_duration_ns("--duration", arg, &o->gen.duration_ns) != OPTS_OK)
            return OPTS_ERROR;
        if (o->gen.duration_ns < 1000000 || o->gen.duration_ns > 36500LL * 86400000000000LL)
            return tool_usage_error("invalid value '%s' for --duration: must be between 1ms "
                                    "and 100 years",
                                    arg);
        return OPTS_OK;
    case OPT_START:
        if (hc_time_parse_rfc3339(arg, strlen(arg), &o->gen.start_ns, &err) != HC_OK ||
            o->gen.start_ns < 0)
            return tool_usage_error("invalid value '%s' for --start: expected an RFC 3339 time "
                                    "such as 2026-02-02T08:00:00Z",
                                    arg);
        o->start_given = true;
        return OPTS_OK;
    case OPT_SEED: {
        char *end;
        unsigned long long s;
        if (!*arg || *arg == '-')
            return tool_usage_error("invalid value '%s' for --seed: not a whole number", arg);
        s = strtoull(arg, &end, 0);
        if (*end)
            return tool_usage_error("invalid value '%s' for --seed: not a whole number", arg);
        o->gen.seed = (uint64_t)s;
        return OPTS_OK;
    }
    case OPT_SHAPES:
        if (strcmp(arg, "canonical") == 0)
            o->gen.shapes = HC_GEN_SHAPES_CANONICAL;
        else if (strcmp(arg, "mixed") == 0)
            o->gen.shapes = HC_GEN_SHAPES_MIXED;
        else
            return tool_usage_error("invalid value '%s' for --shapes: use canonical or mixed", arg);
        return OPTS_OK;
    case OPT_THINGSEE:
        o->gen.thingsee = true;
        return OPTS_OK;
    case TOOL_OPT_INTEGRATION_ID:
    case TOOL_OPT_API_KEY_ID:
        if (!*arg || strchr(arg, '/') || strchr(arg, '+') || strchr(arg, '#') || strlen(arg) > 100)
            return tool_usage_error(
                "invalid value '%s' for %s: must be one topic level "
                "(no '/', '+' or '#')",
                arg, opt == TOOL_OPT_API_KEY_ID ? "--api-key-id" : "--integration-id");
        if (opt == TOOL_OPT_API_KEY_ID)
            o->gen.api_key_id = arg;
        else
            o->gen.integration_id = arg;
        return OPTS_OK;
    case 'o':
        if (!*arg)
            return tool_usage_error("invalid value '' for --output: must not be empty");
        o->output_path = arg;
        return OPTS_OK;
    case OPT_JSONL:
        o->output = HGEN_OUT_JSONL;
        return OPTS_OK;
    case OPT_FORCE:
        o->force = true;
        return OPTS_OK;
    case OPT_SPEED:
        *speed_set = true;
        o->pace = HGEN_PACE_SPEED;
        return tool_parse_double("--speed", arg, 0.001, 1e9, &o->speed);
    case OPT_RATE:
        o->pace = HGEN_PACE_RATE;
        return tool_parse_double("--rate", arg, 0.001, 1e9, &o->rate);
    case OPT_MAX:
        o->pace = HGEN_PACE_MAX;
        return OPTS_OK;
    case 'q':
        return tool_parse_long("--qos", arg, 0, 1, &o->qos);
    case OPT_COUNT:
        if (tool_parse_long("--count", arg, 1, 9000000000000000000L, &v) != OPTS_OK)
            return OPTS_ERROR;
        o->count = v;
        return OPTS_OK;
    case OPT_QUIET:
        o->quiet = true;
        tool_verbosity = 0;
        return OPTS_OK;
    default:
        return tool_mqtt_option(&o->mqtt, opt, arg);
    }
}

enum opts_result hgen_parse(int argc, char **argv, struct hgen_opts *o)
{
    enum opts_result r;
    bool speed_set = false, rate_set = false, max_set = false;
    int opt, outputs;

    memset(o, 0, sizeof(*o));
    hc_gen_options_init(&o->gen);
    o->qos = 1;
    o->speed = 1.0;
    o->pace = HGEN_PACE_SPEED;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":" TOOL_MQTT_SHORT_OPTIONS "o:q:", long_options,
                              NULL)) != -1) {
        if (opt == OPT_HELP) {
            fputs(usage_text, stdout);
            return OPTS_HELP;
        }
        if (opt == '?') {
            if (optopt)
                return tool_usage_error("unknown option '-%c'", optopt);
            return tool_usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (opt == ':')
            return tool_usage_error("option '%s' needs a value", argv[optind - 1]);
        rate_set |= opt == OPT_RATE;
        max_set |= opt == OPT_MAX;
        r = parse_one(o, opt, optarg, &speed_set);
        if (r == OPTS_UNKNOWN)
            return tool_usage_error("unknown option '%s'", argv[optind - 1]);
        if (r != OPTS_OK)
            return r;
    }
    if (optind < argc)
        return tool_usage_error("unexpected argument '%s'", argv[optind]);

    outputs = (o->output_path != NULL) + (o->output == HGEN_OUT_JSONL) +
              (o->mqtt.url != NULL || o->mqtt.host != NULL || o->mqtt.port != 0);
    if (outputs == 0)
        return tool_usage_error("no output: use -o FILE.db, --jsonl or --url URL");
    if (outputs > 1)
        return tool_usage_error("use only one output: -o FILE.db, --jsonl or --url URL");
    if (o->output_path)
        o->output = HGEN_OUT_DB;
    else if (o->output != HGEN_OUT_JSONL)
        o->output = HGEN_OUT_MQTT;
    if (o->force && o->output != HGEN_OUT_DB)
        return tool_usage_error("--force only applies to -o FILE.db");
    if ((int)speed_set + (int)rate_set + (int)max_set > 1)
        return tool_usage_error("use only one of --speed, --rate and --max");
    if (o->output != HGEN_OUT_MQTT && (speed_set || rate_set || max_set))
        return tool_usage_error("--speed, --rate and --max only apply when publishing (--url)");
    if (o->gen.thingsee && o->gen.shapes == HC_GEN_SHAPES_MIXED)
        return tool_usage_error("--shapes mixed does not apply to --thingsee messages");
    if (o->gen.thingsee && o->devices_text && o->gen.devices[HC_GEN_GROUP] > 0) {
        long others = 0;

        for (int k = 0; k < HC_GEN_KIND__COUNT; k++)
            if (k != HC_GEN_GROUP)
                others += o->gen.devices[k];
        /* device groups have no legacy Thingsee form: say so rather than send fewer messages */
        if (!others)
            return tool_usage_error("--thingsee: device groups have no legacy Thingsee form, and "
                                    "--devices '%s' has no other devices",
                                    o->devices_text);
        tool_warn("--thingsee: the %ld device group%s in --devices send%s nothing (no legacy "
                  "Thingsee form)",
                  o->gen.devices[HC_GEN_GROUP], o->gen.devices[HC_GEN_GROUP] == 1 ? "" : "s",
                  o->gen.devices[HC_GEN_GROUP] == 1 ? "s" : "");
    }

    if (o->output == HGEN_OUT_MQTT) {
        if (!o->start_given) /* live consumers expect current timestamps: now, to the second */
            o->gen.start_ns = hc_time_realtime_ns() / 1000000000 * 1000000000;
        if (tool_mqtt_resolve(&o->mqtt, "mqtt://localhost:1883", &o->conn) != OPTS_OK)
            return OPTS_ERROR;
    }
    return OPTS_OK;
}

void hgen_opts_release(struct hgen_opts *o)
{
    tool_mqtt_release(&o->mqtt);
}

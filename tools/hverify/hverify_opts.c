/*
 * hverify's command line: one getopt_long table, the usage text, strict values. Also accepts
 * "hverify accept PATH..." as a spelling of --accept.
 */
#include "hverify.h"

#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/topic.h"

enum {
    OPT_DECODER = TOOL_OPT_TOOL_BASE,
    OPT_TIMEOUT,
    OPT_ABS_TOL,
    OPT_REL_TOL,
    OPT_IGNORE,
    OPT_ORDER,
    OPT_UPDATE,
    OPT_ACCEPT,
    OPT_FORCE,
    OPT_JSON,
    OPT_JUNIT,
    OPT_REPORT_HTML,
    OPT_MAX_REPORT,
    OPT_CONSUMER,
    OPT_BROKER,
    OPT_READY,
    OPT_READY_TIMEOUT,
    OPT_SETTLE,
    OPT_STOP_GRACE,
    OPT_TIMING,
    OPT_TEXT,
    OPT_IGNORE_LINE,
    OPT_CAPTURE,
    OPT_PROBE,
    OPT_FAULTS,
    OPT_SEED,
    OPT_HELP,
    OPT_QUIET
};

static const char usage[] =
    "Usage: hverify [options] PATH...\n"
    "       hverify accept PATH...\n"
    "Runs a decoder over fixture cases and compares its output with the expected output.\n"
    "PATH is a case directory (input.jsonl or input.db, expected.jsonl, optional case.json)\n"
    "or a folder searched recursively for cases, run in name order. case.json members:\n"
    "description, notes, source (text), abs_tol, rel_tol, tolerances, ignore, order;\n"
    "with --consumer also timing, ignore_lines, faults, seed, expect.\n"
    "\n"
    "Decoder:\n"
    "  --decoder 'CMD ARGS'  run CMD with sh -c once per case: input messages as JSON lines\n"
    "                        on its stdin, one JSON value per line expected on its stdout\n"
    "                        (default: hkit's built-in decoder)\n"
    "  --timeout DURATION    per-case limit for --decoder or --consumer, e.g. 500ms, 30s\n"
    "                        (default 60s); the process group is killed when it passes\n"
    "";

static const char usage_consumer[] =
    "Consumer (an MQTT client tested end to end; see hverify(1)):\n"
    "  --consumer 'CMD'      run CMD with sh -c once per case against a private Mosquitto\n"
    "                        (TLS, a CA made for the run, password auth, an ACL as Haltian's);\n"
    "                        replay the case's input once it has subscribed to a matching\n"
    "                        filter; compare what it prints on stdout (a pseudo-terminal, so\n"
    "                        stdio and Python print line by line). Its environment:\n"
    "                        HALTIAN_MQTT_HOST, HALTIAN_MQTT_PORT, HALTIAN_MQTT_URL,\n"
    "                        HALTIAN_API_KEY_ID, HALTIAN_API_KEY_TOKEN, HALTIAN_INTEGRATION_ID,\n"
    "                        HKIT_CAFILE, HVERIFY_CASE; placeholders in CMD: {host} {port}\n"
    "                        {url} {cafile} {api_key_id} {integration_id} {token_file}\n"
    "  --broker MODE         tls (default) or plain: what the consumer's listener speaks\n"
    "  --ready REGEX         replay once an output line matches REGEX (default: once it has\n"
    "                        subscribed to a filter matching the case's topics)\n"
    "  --ready-timeout DURATION  give up on a consumer not ready by then (default 10s)\n"
    "  --settle DURATION     a case ends when every input is acknowledged and the output has\n"
    "                        been still this long (default 500ms), or at --timeout\n"
    "  --stop-grace DURATION the consumer is stopped with SIGINT, SIGTERM after this long,\n"
    "                        SIGKILL after as long again (default 2s)\n"
    "  --timing MODE         max (default), recorded or speed:X; overrides case.json's timing\n"
    "  --text                compare plain lines (the default when a case has expected.txt)\n"
    "  --ignore-line REGEX   skip output lines matching REGEX (repeatable; also case.json's\n"
    "                        ignore_lines)\n"
    "  --integration-id ID, --api-key-id ID  the run's ids (default: random UUIDs)\n"
    "  --capture SINK        what is compared instead of its stdout: mqtt:FILTER (messages\n"
    "                        it publishes under FILTER, one payload per line) or file:PATH\n"
    "                        (a file it writes, removed before each case, read as it grows)\n"
    "  --probe 'CMD'         after the consumer stopped, run CMD with sh -c (same environment\n"
    "                        and placeholders); its stdout is the output, e.g.\n"
    "                        sqlite3 out.db 'select ...'\n"
    "  --faults SPEC         perturb each case's input as hreplay --faults does (see\n"
    "                        docs/faults.md), plus broker-restart[=at:N]: the private broker\n"
    "                        is killed and restarted before input N (default: the middle)\n"
    "                        and the consumer must subscribe again; overrides case.json's\n"
    "                        \"faults\"; the expected output stays the clean run's\n"
    "  --seed N              seed of the fault decisions (default: case.json's, else 1)\n"
    "  Broker connection options (--url, -h...: below) use an existing broker instead of\n"
    "  starting one (needs --ready); hverify publishes with them and the consumer gets them\n"
    "  in its environment.\n";

static const char usage_rest[] =
    "Comparison (structural: key order and whitespace never matter):\n"
    "  --abs-tol X           numbers may differ by X\n"
    "  --rel-tol X           numbers may differ by X times the larger magnitude\n"
    "  --ignore PATH         skip this path (repeatable): value.entries, measurements[0].value,\n"
    "                        measurements[*].unit, *.note, [\"odd.key\"]\n"
    "  --order MODE          strict (default), per-device (order kept per device_id only) or\n"
    "                        any; overrides case.json's \"order\"\n"
    "Updating:\n"
    "  --update              write the new output as expected.jsonl.pending in each case that\n"
    "                        differs, and list what changed\n"
    "  --accept              move expected.jsonl.pending files into place (no decoding);\n"
    "                        with --update: write expected.jsonl directly\n"
    "  --force               write even though CI is set in the environment\n"
    "Reporting:\n"
    "  --json                machine-readable report on stdout instead of text\n"
    "  --junit FILE          also write a JUnit XML report (one testcase per case)\n"
    "  --report-html FILE    also write a self-contained HTML page: the cases, each failure\n"
    "                        with its first differing path, and for --consumer cases a\n"
    "                        timeline of inputs and outputs with the failing ones marked\n"
    "  --max-report N        mismatching messages detailed per case (default 10, 0 = all)\n"
    "  --quiet               only the summary line\n"
    "  -v, --verbose         also list the cases that passed\n"
    "  --help                this help\n"
    "\n"
    "Summary line: 'N passed, M failed' (cases; M includes cases that could not "
    "run).\n" TOOL_EXIT_CODES_HELP
    "hverify: 0 all passed, 3 some case differs, 1 some case could not run (missing files,\n"
    "decoder crash, exit status, timeout, wrong number of lines, output that is not JSON).\n";

void hverify_opts_init(struct hverify_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ns = 60LL * 1000000000LL;
    o->max_report = 10;
    o->ready_timeout_ns = 10LL * 1000000000LL;
    o->settle_ns = 500LL * 1000000LL;
    o->stop_grace_ns = 2LL * 1000000000LL;
    o->verbosity = 1;
}

enum opts_result hverify_parse(int argc, char **argv, struct hverify_opts *o)
{
    static const struct option longopts[] = {
        {"decoder", required_argument, NULL, OPT_DECODER},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"abs-tol", required_argument, NULL, OPT_ABS_TOL},
        {"rel-tol", required_argument, NULL, OPT_REL_TOL},
        {"ignore", required_argument, NULL, OPT_IGNORE},
        {"order", required_argument, NULL, OPT_ORDER},
        {"update", no_argument, NULL, OPT_UPDATE},
        {"accept", no_argument, NULL, OPT_ACCEPT},
        {"force", no_argument, NULL, OPT_FORCE},
        {"json", no_argument, NULL, OPT_JSON},
        {"junit", required_argument, NULL, OPT_JUNIT},
        {"report-html", required_argument, NULL, OPT_REPORT_HTML},
        {"max-report", required_argument, NULL, OPT_MAX_REPORT},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"verbose", no_argument, NULL, 'v'},
        {"consumer", required_argument, NULL, OPT_CONSUMER},
        {"broker", required_argument, NULL, OPT_BROKER},
        {"ready", required_argument, NULL, OPT_READY},
        {"ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT},
        {"settle", required_argument, NULL, OPT_SETTLE},
        {"stop-grace", required_argument, NULL, OPT_STOP_GRACE},
        {"timing", required_argument, NULL, OPT_TIMING},
        {"text", no_argument, NULL, OPT_TEXT},
        {"ignore-line", required_argument, NULL, OPT_IGNORE_LINE},
        {"capture", required_argument, NULL, OPT_CAPTURE},
        {"probe", required_argument, NULL, OPT_PROBE},
        {"faults", required_argument, NULL, OPT_FAULTS},
        {"seed", required_argument, NULL, OPT_SEED},
        TOOL_MQTT_LONG_OPTIONS,
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    int opt;
    bool accept_cmd = false;

    if (argc > 1 && strcmp(argv[1], "accept") == 0) {
        accept_cmd = true;
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":v" TOOL_MQTT_SHORT_OPTIONS, longopts, NULL)) != -1) {
        enum opts_result r = OPTS_OK;

        if (opt == TOOL_OPT_INTEGRATION_ID || opt == TOOL_OPT_API_KEY_ID || opt == 'u') {
            const char *name = opt == TOOL_OPT_INTEGRATION_ID ? "--integration-id"
                               : opt == 'u'                   ? "--username"
                                                              : "--api-key-id";

            if (!*optarg || strchr(optarg, '/') || strchr(optarg, '+') || strchr(optarg, '#'))
                return tool_usage_error("invalid value '%s' for %s: must be one topic level",
                                        optarg, name);
            *(opt == TOOL_OPT_INTEGRATION_ID ? &o->integration_id : &o->api_key_id) = optarg;
        }
        if (opt == TOOL_OPT_URL || opt == 'h')
            o->use_url = true;
        r = tool_mqtt_option(&o->mqtt, opt, optarg);
        if (r == OPTS_ERROR)
            return OPTS_ERROR;
        if (r == OPTS_OK)
            continue;
        r = OPTS_OK;
        switch (opt) {
        case OPT_DECODER:
            if (!*optarg)
                return tool_usage_error("invalid value '' for --decoder: must not be empty");
            o->decoder = optarg;
            break;
        case OPT_TIMEOUT:
            r = tool_parse_duration_ns("--timeout", optarg, &o->timeout_ns);
            if (r == OPTS_OK && o->timeout_ns <= 0)
                return tool_usage_error("invalid value '%s' for --timeout: must be > 0", optarg);
            break;
        case OPT_ABS_TOL:
            r = tool_parse_double("--abs-tol", optarg, 0, 1e300, &o->abs_tol);
            break;
        case OPT_REL_TOL:
            r = tool_parse_double("--rel-tol", optarg, 0, 1e300, &o->rel_tol);
            break;
        case OPT_IGNORE: {
            struct hv_path p;
            char why[160];

            if (o->n_ignore >= HV_MAX_IGNORE)
                return tool_usage_error("too many --ignore options (at most %d)", HV_MAX_IGNORE);
            if (!hv_path_compile(optarg, &p, why, sizeof(why)))
                return tool_usage_error("invalid value '%s' for --ignore: %s", optarg, why);
            hv_path_release(&p);
            o->ignore[o->n_ignore++] = optarg;
            break;
        }
        case OPT_ORDER:
            if (strcmp(optarg, "strict") == 0)
                o->order = HV_ORDER_STRICT;
            else if (strcmp(optarg, "per-device") == 0)
                o->order = HV_ORDER_PER_DEVICE;
            else if (strcmp(optarg, "any") == 0)
                o->order = HV_ORDER_ANY;
            else
                return tool_usage_error(
                    "invalid value '%s' for --order: expected strict, per-device or any", optarg);
            break;
        case OPT_UPDATE:
            o->update = true;
            break;
        case OPT_ACCEPT:
            o->accept = true;
            break;
        case OPT_FORCE:
            o->force = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_JUNIT:
            if (!*optarg)
                return tool_usage_error("invalid value '' for --junit: must not be empty");
            o->junit = optarg;
            break;
        case OPT_REPORT_HTML:
            if (!*optarg)
                return tool_usage_error("invalid value '' for --report-html: must not be empty");
            o->report_html = optarg;
            break;
        case OPT_MAX_REPORT:
            r = tool_parse_long("--max-report", optarg, 0, 1000000000L, &o->max_report);
            break;
        case OPT_QUIET:
            o->verbosity = 0;
            break;
        case 'v':
            o->verbosity = 2;
            break;
        case OPT_CONSUMER:
            if (!*optarg)
                return tool_usage_error("invalid value '' for --consumer: must not be empty");
            o->consumer = optarg;
            break;
        case OPT_BROKER:
            if (strcmp(optarg, "tls") != 0 && strcmp(optarg, "plain") != 0)
                return tool_usage_error("invalid value '%s' for --broker: expected tls or plain",
                                        optarg);
            o->broker_plain = strcmp(optarg, "plain") == 0;
            break;
        case OPT_READY: {
            regex_t re;

            if (regcomp(&re, optarg, REG_EXTENDED | REG_NOSUB) != 0)
                return tool_usage_error("invalid value '%s' for --ready: not a regex", optarg);
            regfree(&re);
            o->ready = optarg;
            break;
        }
        case OPT_READY_TIMEOUT:
        case OPT_SETTLE:
        case OPT_STOP_GRACE: {
            const char *name = opt == OPT_READY_TIMEOUT ? "--ready-timeout"
                               : opt == OPT_SETTLE      ? "--settle"
                                                        : "--stop-grace";
            int64_t *dst = opt == OPT_READY_TIMEOUT ? &o->ready_timeout_ns
                           : opt == OPT_SETTLE      ? &o->settle_ns
                                                    : &o->stop_grace_ns;

            r = tool_parse_duration_ns(name, optarg, dst);
            if (r == OPTS_OK && *dst <= 0)
                return tool_usage_error("invalid value '%s' for %s: must be > 0", optarg, name);
            break;
        }
        case OPT_TIMING: {
            char *end;
            double x;

            if (strncmp(optarg, "speed:", 6) == 0) {
                x = strtod(optarg + 6, &end);
                if (end == optarg + 6 || *end || !(x > 0) || x > 1e9)
                    return tool_usage_error(
                        "invalid value '%s' for --timing: speed:X needs a number X > 0", optarg);
            } else if (strcmp(optarg, "max") != 0 && strcmp(optarg, "recorded") != 0) {
                return tool_usage_error(
                    "invalid value '%s' for --timing: expected max, recorded or speed:X", optarg);
            }
            o->timing = optarg;
            break;
        }
        case OPT_TEXT:
            o->text = true;
            break;
        case OPT_IGNORE_LINE: {
            regex_t re;

            if (o->n_ignore_line >= HV_MAX_IGNORE)
                return tool_usage_error("too many --ignore-line options (at most %d)",
                                        HV_MAX_IGNORE);
            if (regcomp(&re, optarg, REG_EXTENDED | REG_NOSUB) != 0)
                return tool_usage_error("invalid value '%s' for --ignore-line: not a regex",
                                        optarg);
            regfree(&re);
            o->ignore_line[o->n_ignore_line++] = optarg;
            break;
        }
        case OPT_CAPTURE:
            if ((strncmp(optarg, "mqtt:", 5) != 0 && strncmp(optarg, "file:", 5) != 0) ||
                !optarg[5])
                return tool_usage_error(
                    "invalid value '%s' for --capture: expected mqtt:FILTER or file:PATH", optarg);
            if (strncmp(optarg, "mqtt:", 5) == 0) {
                hc_error err = HC_ERROR_INIT;

                if (hc_topic_filter_validate(optarg + 5, &err) != HC_OK)
                    return tool_usage_error("invalid value '%s' for --capture: %s", optarg,
                                            err.message);
            }
            if (o->capture)
                return tool_usage_error("--capture is given twice (one sink per run)");
            o->capture = optarg;
            break;
        case OPT_PROBE:
            if (!*optarg)
                return tool_usage_error("invalid value '' for --probe: must not be empty");
            o->probe = optarg;
            break;
        case OPT_FAULTS: {
            hc_error err = HC_ERROR_INIT;

            if (hv_faults_check(optarg, &err) != HC_OK)
                return tool_usage_error("invalid value for --faults: %s", err.message);
            o->faults = optarg;
            break;
        }
        case OPT_SEED: {
            char *end;
            unsigned long long v;

            errno = 0;
            v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return tool_usage_error(
                    "invalid value '%s' for --seed: expected a whole number >= 0", optarg);
            o->fault_seed = (uint64_t)v;
            o->seed_given = true;
            break;
        }
        case OPT_HELP:
            fputs(usage, stdout);
            fputs(usage_consumer, stdout);
            fputs(tool_mqtt_usage, stdout);
            fputs(usage_rest, stdout);
            return OPTS_HELP;
        case ':':
            return tool_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return tool_usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (r != OPTS_OK)
            return r;
    }
    if (accept_cmd) {
        if (o->update)
            return tool_usage_error("'accept' takes no --update (it only moves pending files)");
        o->accept = true;
    }
    if (o->consumer && o->decoder)
        return tool_usage_error("--consumer and --decoder cannot be combined");
    if (!o->consumer && (o->ready || o->timing || o->text || o->n_ignore_line ||
                         o->integration_id || o->api_key_id || o->broker_plain || o->use_url ||
                         o->capture || o->probe || o->faults || o->seed_given))
        return tool_usage_error("--broker, --ready, --timing, --text, --ignore-line, "
                                "--integration-id, --api-key-id, --url, --capture, --probe, "
                                "--faults and --seed need --consumer");
    if (o->capture && o->probe)
        return tool_usage_error("--capture and --probe cannot be combined (one sink per run)");
    if (!o->use_url &&
        (o->mqtt.port || o->mqtt.client_id || o->mqtt.cafile || o->mqtt.capath ||
         o->mqtt.insecure || o->mqtt.token_file || o->mqtt.token_arg || o->mqtt.keepalive_s))
        return tool_usage_error("-p, -i, --cafile, --capath, --insecure, --token-file, --token "
                                "and --keepalive need --url (or -h): hverify's private broker "
                                "sets them itself");
    if (o->use_url) {
        if (o->broker_plain)
            return tool_usage_error("--broker and --url cannot be combined");
        if (!o->ready)
            return tool_usage_error("--url needs --ready REGEX: an existing broker does not "
                                    "show hverify when the consumer has subscribed");
        if (o->faults && strstr(o->faults, "broker-restart"))
            return tool_usage_error("broker-restart needs hverify's private broker (no --url)");
        if (tool_mqtt_resolve(&o->mqtt, "mqtt://localhost:1883", &o->mqtt_opts) != OPTS_OK)
            return OPTS_ERROR;
    }
    if (optind >= argc)
        return tool_usage_error("no case or folder given");
    o->paths = (const char **)(argv + optind);
    o->n_paths = (size_t)(argc - optind);
    return OPTS_OK;
}

void hverify_opts_release(struct hverify_opts *o)
{
    tool_mqtt_release(&o->mqtt);
}

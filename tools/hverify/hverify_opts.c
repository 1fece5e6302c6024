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

/* --- one option's value ------------------------------------------------------------------- */

/* A value that must not be empty (a command or a file name). */
static enum opts_result non_empty(const char *name, const char *arg, const char **dst)
{
    if (!*arg)
        return tool_usage_error("invalid value '' for %s: must not be empty", name);
    *dst = arg;
    return OPTS_OK;
}

/* A duration that must be > 0. */
static enum opts_result positive_duration(const char *name, const char *arg, int64_t *dst)
{
    enum opts_result r = tool_parse_duration_ns(name, arg, dst);

    if (r == OPTS_OK && *dst <= 0)
        return tool_usage_error("invalid value '%s' for %s: must be > 0", arg, name);
    return r;
}

/* A regex as --ready and --ignore-line take it (extended); compiled once here to check it. */
static enum opts_result check_regex(const char *name, const char *arg)
{
    regex_t re;

    if (regcomp(&re, arg, REG_EXTENDED | REG_NOSUB) != 0)
        return tool_usage_error("invalid value '%s' for %s: not a regex", arg, name);
    regfree(&re);
    return OPTS_OK;
}

static enum opts_result parse_ignore(struct hverify_opts *o, const char *arg)
{
    struct hv_path p;
    char why[160];

    if (o->n_ignore >= HV_MAX_IGNORE)
        return tool_usage_error("too many --ignore options (at most %d)", HV_MAX_IGNORE);
    if (!hv_path_compile(arg, &p, why, sizeof(why)))
        return tool_usage_error("invalid value '%s' for --ignore: %s", arg, why);
    hv_path_release(&p);
    o->ignore[o->n_ignore++] = arg;
    return OPTS_OK;
}

static enum opts_result parse_order(struct hverify_opts *o, const char *arg)
{
    if (strcmp(arg, "strict") == 0)
        o->order = HV_ORDER_STRICT;
    else if (strcmp(arg, "per-device") == 0)
        o->order = HV_ORDER_PER_DEVICE;
    else if (strcmp(arg, "any") == 0)
        o->order = HV_ORDER_ANY;
    else
        return tool_usage_error(
            "invalid value '%s' for --order: expected strict, per-device or any", arg);
    return OPTS_OK;
}

static enum opts_result parse_broker(struct hverify_opts *o, const char *arg)
{
    if (strcmp(arg, "tls") != 0 && strcmp(arg, "plain") != 0)
        return tool_usage_error("invalid value '%s' for --broker: expected tls or plain", arg);
    o->broker_plain = strcmp(arg, "plain") == 0;
    return OPTS_OK;
}

static enum opts_result parse_timing(struct hverify_opts *o, const char *arg)
{
    char *end;
    double x;

    if (strncmp(arg, "speed:", 6) == 0) {
        x = strtod(arg + 6, &end);
        if (end == arg + 6 || *end || !(x > 0) || x > 1e9)
            return tool_usage_error("invalid value '%s' for --timing: speed:X needs a number X > 0",
                                    arg);
    } else if (strcmp(arg, "max") != 0 && strcmp(arg, "recorded") != 0) {
        return tool_usage_error(
            "invalid value '%s' for --timing: expected max, recorded or speed:X", arg);
    }
    o->timing = arg;
    return OPTS_OK;
}

static enum opts_result parse_ignore_line(struct hverify_opts *o, const char *arg)
{
    if (o->n_ignore_line >= HV_MAX_IGNORE)
        return tool_usage_error("too many --ignore-line options (at most %d)", HV_MAX_IGNORE);
    if (check_regex("--ignore-line", arg) != OPTS_OK)
        return OPTS_ERROR;
    o->ignore_line[o->n_ignore_line++] = arg;
    return OPTS_OK;
}

static enum opts_result parse_capture(struct hverify_opts *o, const char *arg)
{
    if ((strncmp(arg, "mqtt:", 5) != 0 && strncmp(arg, "file:", 5) != 0) || !arg[5])
        return tool_usage_error(
            "invalid value '%s' for --capture: expected mqtt:FILTER or file:PATH", arg);
    if (strncmp(arg, "mqtt:", 5) == 0) {
        hc_error err = HC_ERROR_INIT;

        if (hc_topic_filter_validate(arg + 5, &err) != HC_OK)
            return tool_usage_error("invalid value '%s' for --capture: %s", arg, err.message);
    }
    if (o->capture)
        return tool_usage_error("--capture is given twice (one sink per run)");
    o->capture = arg;
    return OPTS_OK;
}

static enum opts_result parse_faults(struct hverify_opts *o, const char *arg)
{
    hc_error err = HC_ERROR_INIT;

    if (hv_faults_check(arg, &err) != HC_OK)
        return tool_usage_error("invalid value for --faults: %s", err.message);
    o->faults = arg;
    return OPTS_OK;
}

static enum opts_result parse_seed(struct hverify_opts *o, const char *arg)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-')
        return tool_usage_error("invalid value '%s' for --seed: expected a whole number >= 0", arg);
    o->fault_seed = (uint64_t)v;
    o->seed_given = true;
    return OPTS_OK;
}

/* The shared connection options (tool_mqtt_option), and what hverify reads from them: the run's
 * ids must be one topic level each, and --url or -h means an existing broker. */
static enum opts_result parse_mqtt(struct hverify_opts *o, int opt, const char *arg)
{
    if (opt == TOOL_OPT_INTEGRATION_ID || opt == TOOL_OPT_API_KEY_ID || opt == 'u') {
        const char *name = opt == TOOL_OPT_INTEGRATION_ID ? "--integration-id"
                           : opt == 'u'                   ? "--username"
                                                          : "--api-key-id";

        if (!*arg || strchr(arg, '/') || strchr(arg, '+') || strchr(arg, '#'))
            return tool_usage_error("invalid value '%s' for %s: must be one topic level", arg,
                                    name);
        *(opt == TOOL_OPT_INTEGRATION_ID ? &o->integration_id : &o->api_key_id) = arg;
    }
    if (opt == TOOL_OPT_URL || opt == 'h')
        o->use_url = true;
    return tool_mqtt_option(&o->mqtt, opt, arg);
}

/* One option and its value: OPTS_OK, OPTS_ERROR (message printed) or OPTS_UNKNOWN. */
static enum opts_result parse_one(struct hverify_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case OPT_DECODER:
        return non_empty("--decoder", arg, &o->decoder);
    case OPT_TIMEOUT:
        return positive_duration("--timeout", arg, &o->timeout_ns);
    case OPT_ABS_TOL:
        return tool_parse_double("--abs-tol", arg, 0, 1e300, &o->abs_tol);
    case OPT_REL_TOL:
        return tool_parse_double("--rel-tol", arg, 0, 1e300, &o->rel_tol);
    case OPT_IGNORE:
        return parse_ignore(o, arg);
    case OPT_ORDER:
        return parse_order(o, arg);
    case OPT_UPDATE:
        o->update = true;
        return OPTS_OK;
    case OPT_ACCEPT:
        o->accept = true;
        return OPTS_OK;
    case OPT_FORCE:
        o->force = true;
        return OPTS_OK;
    case OPT_JSON:
        o->json = true;
        return OPTS_OK;
    case OPT_JUNIT:
        return non_empty("--junit", arg, &o->junit);
    case OPT_REPORT_HTML:
        return non_empty("--report-html", arg, &o->report_html);
    case OPT_MAX_REPORT:
        return tool_parse_long("--max-report", arg, 0, 1000000000L, &o->max_report);
    case OPT_QUIET:
        o->verbosity = 0;
        return OPTS_OK;
    case 'v':
        o->verbosity = 2;
        return OPTS_OK;
    case OPT_CONSUMER:
        return non_empty("--consumer", arg, &o->consumer);
    case OPT_BROKER:
        return parse_broker(o, arg);
    case OPT_READY:
        if (check_regex("--ready", arg) != OPTS_OK)
            return OPTS_ERROR;
        o->ready = arg;
        return OPTS_OK;
    case OPT_READY_TIMEOUT:
        return positive_duration("--ready-timeout", arg, &o->ready_timeout_ns);
    case OPT_SETTLE:
        return positive_duration("--settle", arg, &o->settle_ns);
    case OPT_STOP_GRACE:
        return positive_duration("--stop-grace", arg, &o->stop_grace_ns);
    case OPT_TIMING:
        return parse_timing(o, arg);
    case OPT_TEXT:
        o->text = true;
        return OPTS_OK;
    case OPT_IGNORE_LINE:
        return parse_ignore_line(o, arg);
    case OPT_CAPTURE:
        return parse_capture(o, arg);
    case OPT_PROBE:
        return non_empty("--probe", arg, &o->probe);
    case OPT_FAULTS:
        return parse_faults(o, arg);
    case OPT_SEED:
        return parse_seed(o, arg);
    default:
        return parse_mqtt(o, opt, arg);
    }
}

/* --- rules between options ----------------------------------------------------------------- */

/* Which options go together, checked once all are read. */
static enum opts_result check_combinations(struct hverify_opts *o, bool accept_cmd)
{
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
    return OPTS_OK;
}

/* --url or -h: an existing broker instead of the private one; its connection and credentials
 * are resolved here (o->mqtt_opts). */
static enum opts_result resolve_broker(struct hverify_opts *o)
{
    if (!o->use_url)
        return OPTS_OK;
    if (o->broker_plain)
        return tool_usage_error("--broker and --url cannot be combined");
    if (!o->ready)
        return tool_usage_error("--url needs --ready REGEX: an existing broker does not "
                                "show hverify when the consumer has subscribed");
    if (o->faults && strstr(o->faults, "broker-restart"))
        return tool_usage_error("broker-restart needs hverify's private broker (no --url)");
    if (tool_mqtt_resolve(&o->mqtt, "mqtt://localhost:1883", &o->mqtt_opts) != OPTS_OK)
        return OPTS_ERROR;
    return OPTS_OK;
}

/* --- the command line ---------------------------------------------------------------------- */

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
    enum opts_result r;
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
        if (opt == OPT_HELP) {
            fputs(usage, stdout);
            fputs(usage_consumer, stdout);
            fputs(tool_mqtt_usage, stdout);
            fputs(usage_rest, stdout);
            return OPTS_HELP;
        }
        if (opt == ':')
            return tool_usage_error("option '%s' needs a value", argv[optind - 1]);
        r = parse_one(o, opt, optarg);
        if (r == OPTS_UNKNOWN)
            return tool_usage_error("unknown option '%s'", argv[optind - 1]);
        if (r != OPTS_OK)
            return r;
    }
    r = check_combinations(o, accept_cmd);
    if (r == OPTS_OK)
        r = resolve_broker(o);
    if (r != OPTS_OK)
        return r;
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

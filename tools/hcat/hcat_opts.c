/*
 * hcat's command line: one getopt_long table (shared selection options included), the usage
 * text, and the checks that reject combinations that would not do what the user meant.
 */
#include "hcat.h"

#include <getopt.h>
#include <string.h>

enum {
    OPT_FORCE = TOOL_OPT_TOOL_BASE,
    OPT_INFO,
    OPT_JSON,
    OPT_TOP,
    OPT_DECODE,
    OPT_FORMAT,
    OPT_REDACT,
    OPT_REDACT_KEY,
    OPT_MASK,
    OPT_SKIP_BAD,
    OPT_NOTE,
    OPT_CHECK,
    OPT_REPORT,
    OPT_UPGRADE,
    OPT_HELP,
    OPT_QUIET
};

static const char usage[] =
    "Usage: hcat [OPTION]... FILE...\n"
    "Print, summarise, cut, merge, import and redact recordings.\n"
    "FILE is a recording (.db) or JSON lines (hkit's own or mosquitto_sub -F '%%j'); '-' reads\n"
    "JSON lines from standard input. Several files merge in arrival order (received_at).\n"
    "\n"
    "Output:\n"
    "  (default)             print the selected messages as JSON lines on stdout\n"
    "  --format FMT          jsonl (default) or csv (RFC 4180, header row); mcap with -o:\n"
    "                        an MCAP file for Foxglove Studio or PlotJuggler (one channel per\n"
    "                        topic, JSON payloads as message_encoding json, others kept byte\n"
    "                        for byte as x-hkit-bytes; log_time = arrival, publish_time =\n"
    "                        measured_at; chunked and indexed)\n"
    "  --decode              add the decoder's output to each line (\"decoded\" / column)\n"
    "  --info                summarise each FILE instead: time span, counts and rates per kind,\n"
    "                        type and device, sessions and gaps, payload sizes, decode errors,\n"
    "                        meta\n"
    "  --json                with --info: one JSON object per FILE\n"
    "  --top N               with --info: show the N largest groups (default 10; 0 for all)\n"
    "  --report FILE         write a self-contained HTML report of the selection instead:\n"
    "                        header (span, counts, sessions, gaps, meta), rate per type over\n"
    "                        time with sessions and gaps, device x time heatmap, delivery\n"
    "                        latency, decode errors, duplicates and measured_at going back,\n"
    "                        per-device table; no network needed to view it\n"
    "  --check               check each recording completely instead (SQLite's integrity_check,\n"
    "                        then that messages name existing sessions and topics and hold\n"
    "                        possible values); prints 'FILE: ok, N messages' or fails (exit 1)\n"
    "                        with the first problem\n"
    "  --upgrade             convert each recording in place to the current schema (version 2:\n"
    "                        summaries for --info, time windows by binary search), or count\n"
    "                        the summaries of a current one again; prints 'FILE: ...'\n"
    "  -o, --output FILE     write the selection as a new recording (meta copied, provenance\n"
    "                        added, sessions carried over); also imports JSON lines\n"
    "  --force               replace an existing output file\n"
    "  --note TEXT           set the output's meta note\n"
    "  --skip-bad            skip (and count) bad JSON lines instead of stopping at the first\n"
    "\n"
    "Redaction:\n"
    "  --redact              replace integration, API key, device and Thingsee ids with\n"
    "                        UUID-shaped pseudonyms (HMAC-SHA256), in topics, payloads and meta;\n"
    "                        the broker client id is dropped from the meta\n"
    "  --redact-key FILE     key for the pseudonyms (at least 16 bytes): the same key gives the\n"
    "                        same pseudonyms across files; without it a random key is used for\n"
    "                        this run only (implies --redact)\n"
    "  --mask PATH           set the JSON member at dotted PATH (value.space_id) to null;\n"
    "                        repeatable (implies --redact)\n"
    "\n"
    "%s"
    "\n"
    "General:\n"
    "  --quiet               only errors on stderr\n"
    "  -v, --verbose         more detail on stderr\n"
    "  --help                show this help and exit\n"
    "\n" TOOL_EXIT_CODES_HELP;

static void append_selection(struct hcat_opts *o, const char *option, const char *arg)
{
    size_t used = strlen(o->selection_text);
    snprintf(o->selection_text + used, sizeof(o->selection_text) - used, "%s%s %s", used ? " " : "",
             option, arg);
}

static const char *select_option_name(int opt)
{
    switch (opt) {
    case TOOL_OPT_SINCE:
        return "--since";
    case TOOL_OPT_UNTIL:
        return "--until";
    case 't':
        return "-t";
    case TOOL_OPT_KIND:
        return "--kind";
    case TOOL_OPT_TYPE:
        return "--type";
    case TOOL_OPT_DEVICE:
        return "--device";
    case TOOL_OPT_SESSION:
        return "--session";
    default:
        return "--limit";
    }
}

/* The combinations of --format mcap and --report, checked before the general ones. */
static enum opts_result pictures_check(const struct hcat_opts *o)
{
    if (o->report && (o->output || o->info || o->check || o->decode || o->note ||
                      o->format != HCAT_FORMAT_JSONL))
        return tool_usage_error("--report cannot be combined with -o, --info, --check, --decode, "
                                "--format or --note");
    if (o->format == HCAT_FORMAT_MCAP && !o->output)
        return tool_usage_error("--format mcap needs -o FILE");
    if (o->format == HCAT_FORMAT_MCAP && (o->info || o->check || o->decode || o->note))
        return tool_usage_error("--format mcap cannot be combined with --info, --check, --decode "
                                "or --note");
    return OPTS_OK;
}

/*
 * One of hcat's own options (the selection ones are tool_select_option's): its value checked and
 * stored. OPTS_HELP after printing the usage, OPTS_UNKNOWN when opt is none of them.
 */
static enum opts_result parse_one(struct hcat_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case 'o':
        o->output = arg;
        return OPTS_OK;
    case OPT_FORCE:
        o->force = true;
        return OPTS_OK;
    case OPT_INFO:
        o->info = true;
        return OPTS_OK;
    case OPT_JSON:
        o->json = true;
        return OPTS_OK;
    case OPT_TOP:
        if (tool_parse_long("--top", arg, 0, 1000000, &o->top) != OPTS_OK)
            return OPTS_ERROR;
        o->top_given = true;
        return OPTS_OK;
    case OPT_DECODE:
        o->decode = true;
        return OPTS_OK;
    case OPT_FORMAT:
        if (strcmp(arg, "jsonl") == 0)
            o->format = HCAT_FORMAT_JSONL;
        else if (strcmp(arg, "csv") == 0)
            o->format = HCAT_FORMAT_CSV;
        else if (strcmp(arg, "mcap") == 0)
            o->format = HCAT_FORMAT_MCAP;
        else
            return tool_usage_error("invalid value '%s' for --format: expected jsonl, csv or mcap",
                                    arg);
        return OPTS_OK;
    case OPT_REDACT:
        o->redact = true;
        return OPTS_OK;
    case OPT_REDACT_KEY:
        o->redact = true;
        o->redact_key_file = arg;
        return OPTS_OK;
    case OPT_MASK:
        if (o->n_masks >= HCAT_MAX_MASKS)
            return tool_usage_error("too many --mask options (at most %d)", HCAT_MAX_MASKS);
        if (!*arg || arg[0] == '.' || arg[strlen(arg) - 1] == '.' || strstr(arg, ".."))
            return tool_usage_error("invalid value '%s' for --mask: expected member names "
                                    "joined by dots (value.space_id)",
                                    arg);
        o->redact = true;
        o->masks[o->n_masks++] = arg;
        return OPTS_OK;
    case OPT_SKIP_BAD:
        o->skip_bad = true;
        return OPTS_OK;
    case OPT_NOTE:
        o->note = arg;
        return OPTS_OK;
    case OPT_CHECK:
        o->check = true;
        return OPTS_OK;
    case OPT_REPORT:
        o->report = arg;
        return OPTS_OK;
    case OPT_UPGRADE:
        o->upgrade = true;
        return OPTS_OK;
    case OPT_QUIET:
        tool_verbosity = 0;
        return OPTS_OK;
    case 'v':
        tool_verbosity = 2;
        return OPTS_OK;
    case OPT_HELP:
        printf(usage, tool_select_usage);
        return OPTS_HELP;
    default:
        return OPTS_UNKNOWN;
    }
}

/* The arguments: the input files, at least one. */
static enum opts_result validate_inputs(struct hcat_opts *o, int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++) {
        if (o->n_inputs >= HCAT_MAX_INPUTS)
            return tool_usage_error("too many input files (at most %d)", HCAT_MAX_INPUTS);
        o->inputs[o->n_inputs++] = argv[i];
    }
    if (!o->n_inputs)
        return tool_usage_error("no input file given");
    return OPTS_OK;
}

/* What each mode (print, -o, --info, --check, --upgrade) accepts beside it. */
static enum opts_result validate_modes(const struct hcat_opts *o)
{
    if (o->json && !o->info)
        return tool_usage_error("--json only applies to --info");
    if (o->check && (o->info || o->output || o->redact || o->decode ||
                     o->format != HCAT_FORMAT_JSONL || o->selection_text[0]))
        return tool_usage_error("--check cannot be combined with --info, -o, --redact, --mask, "
                                "--decode, --format or selection options");
    if (o->upgrade && (o->check || o->info || o->output || o->redact || o->decode ||
                       o->format != HCAT_FORMAT_JSONL || o->selection_text[0]))
        return tool_usage_error("--upgrade cannot be combined with --check, --info, -o, --redact, "
                                "--mask, --decode, --format or selection options");
    if (o->top_given && !o->info)
        return tool_usage_error("--top only applies to --info");
    if (o->info && (o->output || o->redact || o->decode || o->format != HCAT_FORMAT_JSONL))
        return tool_usage_error("--info cannot be combined with -o, --redact, --mask, --decode "
                                "or --format");
    if (o->output &&
        (o->decode || (o->format != HCAT_FORMAT_JSONL && o->format != HCAT_FORMAT_MCAP)))
        return tool_usage_error("--decode and --format apply to printed output, not to -o");
    if (o->force && !o->output && !o->report)
        return tool_usage_error("--force only applies to -o and --report");
    if (o->note && !o->output)
        return tool_usage_error("--note only applies to -o");
    return OPTS_OK;
}

/* The selection against the inputs, and no file written over one of them. */
static enum opts_result validate_files(const struct hcat_opts *o)
{
    /* values were checked as parsed (exit 2); +DURATION is resolved against the inputs later */
    if (tool_select_check_inputs(&o->select, (const char *const *)o->inputs, o->n_inputs) !=
        OPTS_OK)
        return OPTS_ERROR;
    for (size_t i = 0; i < o->n_inputs; i++)
        if ((o->output && strcmp(o->inputs[i], o->output) == 0) ||
            (o->report && strcmp(o->inputs[i], o->report) == 0))
            return tool_usage_error("output '%s' is also an input",
                                    o->output ? o->output : o->report);
    return OPTS_OK;
}

enum opts_result hcat_parse(int argc, char **argv, struct hcat_opts *o)
{
    static const struct option longopts[] = {
        TOOL_SELECT_LONG_OPTIONS,
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, OPT_FORCE},
        {"info", no_argument, NULL, OPT_INFO},
        {"json", no_argument, NULL, OPT_JSON},
        {"top", required_argument, NULL, OPT_TOP},
        {"decode", no_argument, NULL, OPT_DECODE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"redact", no_argument, NULL, OPT_REDACT},
        {"redact-key", required_argument, NULL, OPT_REDACT_KEY},
        {"mask", required_argument, NULL, OPT_MASK},
        {"skip-bad", no_argument, NULL, OPT_SKIP_BAD},
        {"note", required_argument, NULL, OPT_NOTE},
        {"check", no_argument, NULL, OPT_CHECK},
        {"report", required_argument, NULL, OPT_REPORT},
        {"upgrade", no_argument, NULL, OPT_UPGRADE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    int opt;

    memset(o, 0, sizeof(*o));
    tool_select_init(&o->select);
    o->top = HCAT_DEFAULT_TOP;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":" TOOL_SELECT_SHORT_OPTIONS "o:v", longopts, NULL)) !=
           -1) {
        enum opts_result r = tool_select_option(&o->select, opt, optarg);

        if (r == OPTS_OK)
            append_selection(o, select_option_name(opt), optarg);
        if (r == OPTS_UNKNOWN)
            r = parse_one(o, opt, optarg);
        if (r == OPTS_UNKNOWN && opt == ':')
            return tool_usage_error("option '%s' needs a value", argv[optind - 1]);
        if (r == OPTS_UNKNOWN)
            return tool_usage_error("unknown option '%s'", argv[optind - 1]);
        if (r != OPTS_OK)
            return r;
    }
    if (validate_inputs(o, argc, argv, optind) != OPTS_OK || pictures_check(o) != OPTS_OK ||
        validate_modes(o) != OPTS_OK || validate_files(o) != OPTS_OK)
        return OPTS_ERROR;
    return OPTS_OK;
}

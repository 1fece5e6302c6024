/*
 * hcat: print, summarise, cut, merge, import and redact recordings. Parses the command line,
 * runs, reports, and maps the result to the shared exit codes.
 */
#include "hcat.h"

#include <inttypes.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    struct hcat_opts opts;
    struct hcat_summary sum = {0};
    hc_error err = HC_ERROR_INIT;
    enum opts_result parsed;
    hc_err rc;

    tool_init(argv[0]);
    parsed = hcat_parse(argc, argv, &opts);
    if (parsed != OPTS_OK)
        return parsed == OPTS_HELP ? tool_finish_stdout(TOOL_EXIT_OK) : TOOL_EXIT_USAGE;
    tool_signals_install();
    rc = hcat_run(&opts, stdout, &sum, &err);
    if (rc != HC_OK && rc != HC_DONE)
        tool_error("%s", err.message[0] ? err.message : hc_strerror(rc));
    /* a reader that went away (hcat x.db | head) is a normal end, as for cat */
    if ((fflush(stdout) != 0 || sum.output_closed) && tool_output_closed(stdout)) {
        tool_output_discard(stdout);
        sum.output_closed = true;
    }
    if (sum.skipped_bad)
        tool_warn("skipped %" PRId64 " bad JSON line%s (--skip-bad)", sum.skipped_bad,
                  sum.skipped_bad == 1 ? "" : "s");
    if ((rc == HC_OK || rc == HC_DONE) && (opts.report || opts.format == HCAT_FORMAT_MCAP))
        tool_info("%swrote %" PRId64 " message%s to '%s'", sum.interrupted ? "interrupted: " : "",
                  sum.messages, sum.messages == 1 ? "" : "s",
                  opts.report ? opts.report : opts.output);
    else if ((rc == HC_OK || rc == HC_DONE) && opts.output)
        tool_info("%swrote %" PRId64 " message%s in %" PRId64 " session%s to '%s'",
                  sum.interrupted ? "interrupted: " : "", sum.messages,
                  sum.messages == 1 ? "" : "s", sum.sessions, sum.sessions == 1 ? "" : "s",
                  opts.output);
    else if ((rc == HC_OK || rc == HC_DONE) && !opts.info && !opts.check && !opts.upgrade &&
             (tool_verbosity >= 2 || sum.interrupted))
        tool_info("%sprinted %" PRId64 " message%s%s", sum.interrupted ? "interrupted: " : "",
                  sum.messages, sum.messages == 1 ? "" : "s",
                  sum.output_closed ? " before the reader closed standard output" : "");
    return tool_finish_stdout(tool_exit_code(rc));
}

/*
 * hgen: synthesise Haltian traffic. Parses the command line, runs the generator, reports, and
 * maps the result to the shared exit codes.
 */
#include "hgen.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    struct hgen_opts opts;
    struct hgen_summary sum;
    hc_error err = HC_ERROR_INIT;
    enum opts_result parsed;
    hc_err rc;

    tool_init(argv[0]);
    parsed = hgen_parse(argc, argv, &opts);
    if (parsed != OPTS_OK) {
        hgen_opts_release(&opts);
        return parsed == OPTS_HELP ? tool_finish_stdout(TOOL_EXIT_OK) : TOOL_EXIT_USAGE;
    }
    tool_signals_install();
    rc = hgen_run(&opts, &sum, &err);
    if (rc != HC_OK)
        tool_error("%s", err.message[0] ? err.message : hc_strerror(rc));
    hgen_report(&opts, &sum);
    hgen_opts_release(&opts);
    return tool_finish_stdout(tool_exit_code(rc));
}

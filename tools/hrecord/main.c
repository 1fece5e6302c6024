/*
 * hrecord: capture a live Haltian (or any MQTT) stream into a recording. Parses the command
 * line, runs the capture, reports, and maps the result to the shared exit codes.
 */
#include "hrecord.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    struct hrecord_opts opts;
    struct hrecord_summary sum;
    hc_error err = HC_ERROR_INIT;
    enum opts_result parsed;
    hc_err rc;

    tool_init(argv[0]);
    parsed = hrecord_parse(argc, argv, &opts);
    if (parsed != OPTS_OK) {
        hrecord_opts_release(&opts);
        return parsed == OPTS_HELP ? tool_finish_stdout(TOOL_EXIT_OK) : TOOL_EXIT_USAGE;
    }
    tool_signals_install();
    rc = hrecord_run(&opts, &sum, &err);
    if (rc != HC_OK)
        tool_error("%s", err.message[0] ? err.message : hc_strerror(rc));
    hrecord_report(&opts, &sum, rc != HC_OK ? &err : NULL);
    hrecord_opts_release(&opts);
    return tool_finish_stdout(tool_exit_code(rc));
}

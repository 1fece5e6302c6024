/*
 * hreplay's entry point: parse, run, map the result to an exit code.
 */
#include "hreplay.h"

int main(int argc, char **argv)
{
    struct hreplay_opts opts;
    enum opts_result r;
    int code;

    tool_init(argv[0]);
    r = hreplay_parse(argc, argv, &opts);
    if (r != OPTS_OK) {
        hreplay_opts_release(&opts);
        return r == OPTS_HELP ? tool_finish_stdout(TOOL_EXIT_OK) : TOOL_EXIT_USAGE;
    }
    tool_signals_install();
    code = hreplay_run(&opts);
    hreplay_opts_release(&opts);
    return tool_finish_stdout(code);
}

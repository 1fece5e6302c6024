/*
 * hverify: checks decoder output against recorded fixture cases.
 */
#include "hverify.h"

int main(int argc, char **argv)
{
    struct hverify_opts o;
    enum opts_result r;
    int rc;

    tool_init(argv[0]);
    hverify_opts_init(&o);
    r = hverify_parse(argc, argv, &o);
    if (r == OPTS_HELP) {
        hverify_opts_release(&o);
        return tool_finish_stdout(TOOL_EXIT_OK);
    }
    if (r != OPTS_OK) {
        hverify_opts_release(&o);
        return TOOL_EXIT_USAGE;
    }
    rc = hverify_run(&o);
    hverify_opts_release(&o);
    return tool_finish_stdout(rc);
}

/* hcat --report: placeholder until the report lands. */
#include "hcat.h"

hc_err hcat_report_sink_new(const struct hcat_opts *o, struct hcat_sink **out, hc_error *err)
{
    (void)o;
    *out = NULL;
    return hc_error_set(err, HC_ERR_INVALID, "--report is not implemented yet");
}

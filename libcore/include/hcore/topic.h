/*
 * MQTT 3.1.1 topic names and topic filters (specification section 4.7): validation and matching
 * with '+' and '#', including the rule that filters starting with a wildcard do not match topics
 * starting with '$'.
 */
#ifndef HCORE_TOPIC_H
#define HCORE_TOPIC_H

#include <stdbool.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when topic (a name, no wildcards) matches filter. Invalid filters or names match nothing. */
bool hc_topic_matches(const char *filter, const char *topic);

/* HC_OK for a valid filter; HC_ERR_INVALID with the reason ("'#' must be the last level"...). */
hc_err hc_topic_filter_validate(const char *filter, hc_error *err);

/* HC_OK for a valid topic name (non-empty, no '+' or '#', at most 65535 bytes). */
hc_err hc_topic_name_validate(const char *topic, hc_error *err);

#ifdef __cplusplus
}
#endif
#endif

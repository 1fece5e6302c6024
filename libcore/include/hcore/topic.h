/*
 * MQTT 3.1.1 topic names and topic filters (specification section 4.7): validation and matching
 * with '+' and '#', including the rule that filters starting with a wildcard do not match topics
 * starting with '$'.
 */
#ifndef HCORE_TOPIC_H
#define HCORE_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when topic (a name, no wildcards) matches filter. Invalid filters or names match nothing. */
bool hc_topic_matches(const char *filter, const char *topic);

/* HC_OK for a valid filter; HC_ERR_INVALID with the reason ("'#' must be the last level"...). */
hc_err hc_topic_filter_validate(const char *filter, hc_error *err);

/*
 * HC_OK for a valid topic name: non-empty, no '+' or '#', at most 65535 bytes, well-formed UTF-8
 * without NUL (3.1.1, 1.5.3 and 4.7). HC_ERR_INVALID otherwise, naming the topic with every
 * byte that is not printable ASCII written as \xNN.
 */
hc_err hc_topic_name_validate(const char *topic, hc_error *err);

/* HC_OK when level can stand as one level of a topic name (valid, and no '/'). */
hc_err hc_topic_level_validate(const char *level, hc_error *err);

/*
 * Matches the leading levels of topic against filter (a valid filter: '+' for one level, a final
 * '#' for any further levels). True on a match, with *prefix_len the length of the topic's
 * matched levels (without the '/' that follows them): "a/+" on "a/b/c" gives 3 ("a/b"),
 * "a/#" on "a/b/c" gives 1, "a/#" on "a" gives 1, "#" gives 0. Levels match whole: "a/b"
 * matches "a/b" and "a/b/c", never "a/bc".
 */
bool hc_topic_prefix_match(const char *filter, const char *topic, size_t *prefix_len);

#ifdef __cplusplus
}
#endif
#endif

/*
 * The selection options shared by hreplay and hcat, so both select messages the same way from a
 * recording (in SQL, via hc_store_query) or from JSON lines (tool_select_matches).
 */
#include "tool.h"

#include <string.h>

#include "hcore/decode.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"

const char tool_select_usage[] =
    "Selection (repeat -t/--kind/--type/--device/--session to select any of several):\n"
    "  --since TIME          from TIME inclusive: RFC 3339, or +DURATION after the first message\n"
    "  --until TIME          up to TIME exclusive: RFC 3339, or +DURATION after the first message\n"
    "  -t, --topic FILTER    MQTT topic filter (+ and # wildcards)\n"
    "  --kind KIND           event kind (measurements, notifications, ...)\n"
    "  --type TYPE           measurement type (aliases accepted: CO2, ambient_temperature)\n"
    "  --device ID           device id\n"
    "  --session N           recording session number\n"
    "  --limit N             at most N messages\n";

void tool_select_init(struct tool_select *s)
{
    memset(s, 0, sizeof(*s));
    s->sel.topic_filters = s->topics;
    s->sel.kinds = s->kinds;
    s->sel.types = s->types;
    s->sel.devices = s->devices;
    s->sel.sessions = s->sessions;
}

static enum opts_result add(const char **list, size_t *n, const char *option, const char *arg)
{
    if (*n >= TOOL_SELECT_MAX)
        return tool_usage_error("too many %s options (at most %d)", option, TOOL_SELECT_MAX);
    if (!*arg)
        return tool_usage_error("invalid value '' for %s: must not be empty", option);
    list[(*n)++] = arg;
    return OPTS_OK;
}

static enum opts_result parse_time(const char *option, const char *text, bool *has, bool *relative,
                                   int64_t *offset_ns, int64_t *at_ns);

enum opts_result tool_select_option(struct tool_select *s, int opt, const char *arg)
{
    hc_error err = HC_ERROR_INIT;
    long v;

    switch (opt) {
    case TOOL_OPT_SINCE:
        s->since_text = arg;
        return parse_time("--since", arg, &s->sel.has_since, &s->since_relative,
                          &s->since_offset_ns, &s->sel.since_ns);
    case TOOL_OPT_UNTIL:
        s->until_text = arg;
        return parse_time("--until", arg, &s->sel.has_until, &s->until_relative,
                          &s->until_offset_ns, &s->sel.until_ns);
    case 't':
        if (hc_topic_filter_validate(arg, &err) != HC_OK)
            return tool_usage_error("%s", err.message);
        return add(s->topics, &s->sel.n_topic_filters, "--topic", arg);
    case TOOL_OPT_KIND:
        return add(s->kinds, &s->sel.n_kinds, "--kind", arg);
    case TOOL_OPT_TYPE:
        return add(s->types, &s->sel.n_types, "--type", arg);
    case TOOL_OPT_DEVICE:
        return add(s->devices, &s->sel.n_devices, "--device", arg);
    case TOOL_OPT_SESSION:
        if (s->sel.n_sessions >= TOOL_SELECT_MAX)
            return tool_usage_error("too many --session options (at most %d)", TOOL_SELECT_MAX);
        if (tool_parse_long("--session", arg, 1, 0x7fffffffL, &v) != OPTS_OK)
            return OPTS_ERROR;
        s->sessions[s->sel.n_sessions++] = v;
        return OPTS_OK;
    case TOOL_OPT_LIMIT:
        if (tool_parse_long("--limit", arg, 1, 0x7fffffffffffffffL, &v) != OPTS_OK)
            return OPTS_ERROR;
        s->sel.limit = v;
        return OPTS_OK;
    default:
        return OPTS_UNKNOWN;
    }
}

/* Checks a --since/--until value now (usage errors are exit 2, decided before any work). */
static enum opts_result parse_time(const char *option, const char *text, bool *has, bool *relative,
                                   int64_t *offset_ns, int64_t *at_ns)
{
    hc_error err = HC_ERROR_INIT;

    *has = true;
    *relative = text[0] == '+';
    if (*relative)
        return tool_parse_duration_ns(option, text + 1, offset_ns);
    if (hc_time_parse_rfc3339(text, strlen(text), at_ns, &err) != HC_OK) {
        /* a valid time outside hkit's range says so, rather than "expected a time" */
        if (strncmp(err.message, "time out of range", 17) == 0)
            return tool_usage_error("invalid value '%s' for %s: %s", text, option, err.message);
        return tool_usage_error("invalid value '%s' for %s: expected an RFC 3339 time "
                                "(2026-02-05T10:30:00Z) or +DURATION (+90s)",
                                text, option);
    }
    return OPTS_OK;
}

void tool_select_copy(struct tool_select *dst, const struct tool_select *src)
{
    *dst = *src;
    dst->sel.topic_filters = dst->topics;
    dst->sel.kinds = dst->kinds;
    dst->sel.types = dst->types;
    dst->sel.devices = dst->devices;
    dst->sel.sessions = dst->sessions;
}

bool tool_select_is_relative(const struct tool_select *s)
{
    return s->since_relative || s->until_relative;
}

enum opts_result tool_select_check_inputs(const struct tool_select *s, const char *const *paths,
                                          size_t n_paths)
{
    if (!tool_select_is_relative(s))
        return OPTS_OK;
    for (size_t i = 0; i < n_paths; i++)
        if (strcmp(paths[i], "-") == 0)
            return tool_usage_error("--since/--until +DURATION need a file: standard input "
                                    "can be read only once");
    return OPTS_OK;
}

void tool_select_resolve(struct tool_select *s, int64_t first_received_at_ns)
{
    if (s->since_relative)
        s->sel.since_ns = first_received_at_ns + s->since_offset_ns;
    if (s->until_relative)
        s->sel.until_ns = first_received_at_ns + s->until_offset_ns;
}

static bool in_list(const char *const *list, size_t n, const char *value)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], value) == 0)
            return true;
    return false;
}

bool tool_select_matches(const struct tool_select *s, const struct hc_msg *msg)
{
    const struct hc_select *sel = &s->sel;
    struct hc_decode_index idx;
    bool matched = false;

    if (sel->has_since && msg->received_at_ns < sel->since_ns)
        return false;
    if (sel->has_until && msg->received_at_ns >= sel->until_ns)
        return false;
    if (sel->n_sessions) {
        for (size_t i = 0; i < sel->n_sessions && !matched; i++)
            matched = sel->sessions[i] == msg->session_id;
        if (!matched)
            return false;
    }
    if (sel->n_topic_filters) {
        matched = false;
        for (size_t i = 0; i < sel->n_topic_filters && !matched; i++)
            matched = hc_topic_matches(sel->topic_filters[i], msg->topic);
        if (!matched)
            return false;
    }
    if (!sel->n_kinds && !sel->n_types && !sel->n_devices)
        return true;
    hc_decode_index(msg->topic, msg->payload, msg->payload_len, &idx);
    if (sel->n_kinds && !in_list(sel->kinds, sel->n_kinds, idx.kind))
        return false;
    if (sel->n_types) {
        matched = false;
        for (size_t i = 0; i < sel->n_types && !matched; i++) {
            const char *canonical = hc_decode_canonical_type(sel->types[i]);
            matched = strcmp(canonical ? canonical : sel->types[i], idx.type) == 0;
        }
        if (!matched)
            return false;
    }
    if (sel->n_devices && !in_list(sel->devices, sel->n_devices, idx.device_id))
        return false;
    return true;
}

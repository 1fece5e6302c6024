/*
 * MQTT 3.1.1 topic names and filters (section 4.7). Matching walks both strings level by level
 * without allocating, because the store calls it once per row from SQL.
 */
#include "hcore/topic.h"

#include <stdio.h>
#include <string.h>

#include "hcore/text.h"

#define HC_TOPIC_MAX_LEN 65535

hc_err hc_topic_filter_validate(const char *filter, hc_error *err)
{
    size_t len;

    if (!filter || !*filter)
        return hc_error_set(err, HC_ERR_INVALID, "topic filter must not be empty");
    len = strlen(filter);
    if (len > HC_TOPIC_MAX_LEN)
        return hc_error_set(err, HC_ERR_INVALID, "topic filter longer than %d bytes",
                            HC_TOPIC_MAX_LEN);
    for (size_t i = 0; i < len; i++) {
        bool starts_level = i == 0 || filter[i - 1] == '/';
        bool ends_level = i + 1 == len || filter[i + 1] == '/';
        if (filter[i] == '+' && !(starts_level && ends_level))
            return hc_error_set(err, HC_ERR_INVALID,
                                "invalid topic filter '%s': '+' must occupy a whole level", filter);
        if (filter[i] == '#' && !(starts_level && i + 1 == len))
            return hc_error_set(err, HC_ERR_INVALID,
                                "invalid topic filter '%s': '#' must be the last level", filter);
    }
    return HC_OK;
}

/* Writes text for an error message: printable ASCII as is, every other byte as \xNN. */
static const char *printable(const char *text, char *buf, size_t size)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p && n + 5 < size; p++) {
        if (*p >= 0x20 && *p < 0x7f)
            buf[n++] = (char)*p;
        else
            n += (size_t)snprintf(buf + n, size - n, "\\x%02x", *p);
    }
    if (n + 5 >= size && n >= 3)
        memcpy(buf + n - 3, "...", 3);
    buf[n] = '\0';
    return buf;
}

hc_err hc_topic_name_validate(const char *topic, hc_error *err)
{
    char shown[120];
    size_t len;

    if (!topic || !*topic)
        return hc_error_set(err, HC_ERR_INVALID, "topic must not be empty");
    len = strlen(topic);
    if (len > HC_TOPIC_MAX_LEN)
        return hc_error_set(err, HC_ERR_INVALID, "topic longer than %d bytes", HC_TOPIC_MAX_LEN);
    if (strpbrk(topic, "+#"))
        return hc_error_set(err, HC_ERR_INVALID, "invalid topic '%s': wildcards are not allowed",
                            printable(topic, shown, sizeof(shown)));
    if (!hc_text_is_json_safe_utf8((const unsigned char *)topic, len))
        return hc_error_set(err, HC_ERR_INVALID, "invalid topic '%s': not valid UTF-8",
                            printable(topic, shown, sizeof(shown)));
    return HC_OK;
}

hc_err hc_topic_level_validate(const char *level, hc_error *err)
{
    char shown[120];

    if (!level || !*level)
        return hc_error_set(err, HC_ERR_INVALID, "a topic level must not be empty");
    if (strchr(level, '/'))
        return hc_error_set(err, HC_ERR_INVALID, "'%s' is more than one topic level",
                            printable(level, shown, sizeof(shown)));
    return hc_topic_name_validate(level, err);
}

bool hc_topic_prefix_match(const char *filter, const char *topic, size_t *prefix_len)
{
    const char *f = filter, *t = topic;

    /* MQTT 3.1.1 4.7.2: a filter starting with a wildcard does not match topics starting with '$'.
     */
    if (*t == '$' && (*f == '+' || *f == '#'))
        return false;
    for (;;) {
        if (f[0] == '#' && f[1] == '\0') {
            *prefix_len = t > topic && t[-1] == '/' ? (size_t)(t - topic) - 1 : (size_t)(t - topic);
            return true; /* the rest of the topic is kept */
        }
        if (f[0] == '+' && (f[1] == '/' || f[1] == '\0')) {
            while (*t && *t != '/')
                t++;
            f++;
        } else {
            while (*f && *f != '/' && *f == *t) {
                f++;
                t++;
            }
            if ((*f && *f != '/') || (*t && *t != '/'))
                return false; /* the level differs */
        }
        if (!*f) {
            *prefix_len = (size_t)(t - topic); /* t is at '/' or the end */
            return true;
        }
        if (!*t) {
            /* the topic ended: only a final "/#" still matches ("a/#" matches "a") */
            *prefix_len = (size_t)(t - topic);
            return f[0] == '/' && f[1] == '#' && f[2] == '\0';
        }
        f++;
        t++;
    }
}

bool hc_topic_matches(const char *filter, const char *topic)
{
    size_t matched;

    /* invalid filters and invalid topic names (empty, with wildcards) match nothing */
    if (!filter || !topic || !*topic || strpbrk(topic, "+#") ||
        hc_topic_filter_validate(filter, NULL) != HC_OK)
        return false;
    /* the whole topic, or its leading levels under a final '#' */
    return hc_topic_prefix_match(filter, topic, &matched) &&
           (topic[matched] == '\0' || filter[strlen(filter) - 1] == '#');
}

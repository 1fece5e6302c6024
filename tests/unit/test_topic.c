/*
 * MQTT 3.1.1 topic filters and names (section 4.7): the specification's examples and the edges.
 */
#include <criterion/criterion.h>

#include "hcore/topic.h"

Test(topic, multi_level_wildcard_matches_parent_and_children)
{
    cr_assert(hc_topic_matches("sport/tennis/player1/#", "sport/tennis/player1"));
    cr_assert(hc_topic_matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    cr_assert(hc_topic_matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
    cr_assert(hc_topic_matches("sport/#", "sport"));
    cr_assert_not(hc_topic_matches("sport/tennis/player1/#", "sport/tennis/player2"));
}

Test(topic, hash_alone_matches_every_topic_not_starting_with_dollar)
{
    cr_assert(hc_topic_matches("#", "a"));
    cr_assert(hc_topic_matches("#", "a/b/c"));
    cr_assert(hc_topic_matches("#", "/a"));
    cr_assert_not(hc_topic_matches("#", "$SYS/broker/uptime"));
}

Test(topic, single_level_wildcard_matches_exactly_one_level)
{
    cr_assert(hc_topic_matches("sport/tennis/+", "sport/tennis/player1"));
    cr_assert(hc_topic_matches("sport/tennis/+", "sport/tennis/player2"));
    cr_assert_not(hc_topic_matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    cr_assert(hc_topic_matches("sport/+", "sport/"));
    cr_assert_not(hc_topic_matches("sport/+", "sport"));
    cr_assert(hc_topic_matches("+/+", "/finance"));
    cr_assert(hc_topic_matches("/+", "/finance"));
    cr_assert_not(hc_topic_matches("+", "/finance"));
    cr_assert(hc_topic_matches("+/tennis/#", "sport/tennis/player1"));
}

Test(topic, plus_at_each_level_of_a_haltian_topic)
{
    const char *t = "haltian-iot/events/int/key/measurements/ambientTemperature/dev1";
    cr_assert(hc_topic_matches("+/events/int/key/measurements/ambientTemperature/dev1", t));
    cr_assert(hc_topic_matches("haltian-iot/+/int/key/measurements/ambientTemperature/dev1", t));
    cr_assert(hc_topic_matches("haltian-iot/events/+/key/measurements/ambientTemperature/dev1", t));
    cr_assert(hc_topic_matches("haltian-iot/events/int/+/measurements/ambientTemperature/dev1", t));
    cr_assert(hc_topic_matches("haltian-iot/events/int/key/+/ambientTemperature/dev1", t));
    cr_assert(hc_topic_matches("haltian-iot/events/int/key/measurements/+/dev1", t));
    cr_assert(hc_topic_matches("haltian-iot/events/int/key/measurements/ambientTemperature/+", t));
    cr_assert(hc_topic_matches("haltian-iot/events/int/key/measurements/+/+", t));
    cr_assert_not(hc_topic_matches("haltian-iot/events/int/key/measurements/+", t));
    cr_assert_not(hc_topic_matches("haltian-iot/events/int/key/measurements/co2/+", t));
}

Test(topic, dollar_topics_need_an_explicit_first_level)
{
    cr_assert_not(hc_topic_matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    cr_assert(hc_topic_matches("$SYS/#", "$SYS/monitor/Clients"));
    cr_assert(hc_topic_matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
}

Test(topic, empty_levels_are_levels)
{
    cr_assert(hc_topic_matches("a//b", "a//b"));
    cr_assert(hc_topic_matches("a/+/b", "a//b"));
    cr_assert_not(hc_topic_matches("a/b", "a//b"));
    cr_assert(hc_topic_matches("a/b/", "a/b/"));
    cr_assert_not(hc_topic_matches("a/b", "a/b/"));
    cr_assert(hc_topic_matches("a/b/+", "a/b/"));
    cr_assert_not(hc_topic_matches("+", ""), "an empty topic is invalid");
}

Test(topic, exact_filters_compare_whole_levels)
{
    cr_assert(hc_topic_matches("a/b", "a/b"));
    cr_assert_not(hc_topic_matches("a/b", "a/bc"));
    cr_assert_not(hc_topic_matches("a/bc", "a/b"));
    cr_assert_not(hc_topic_matches("a/b", "a"));
    cr_assert_not(hc_topic_matches("a", "a/b"));
    cr_assert_not(hc_topic_matches("A/b", "a/b"), "matching is case-sensitive");
}

Test(topic, invalid_filters_are_rejected_and_match_nothing)
{
    hc_error err = HC_ERROR_INIT;
    const char *bad[] = {"sport/tennis#", "sport/tennis/#/ranking", "sport+", "a/+b", "#/a", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(hc_topic_filter_validate(bad[i], &err), HC_ERR_INVALID, "%s", bad[i]);
        cr_assert_not(hc_topic_matches(bad[i], "sport/tennis"), "%s", bad[i]);
    }
    cr_assert_eq(hc_topic_filter_validate("sport/tennis/#", &err), HC_OK);
    cr_assert_eq(hc_topic_filter_validate("+", &err), HC_OK);
    cr_assert_eq(hc_topic_filter_validate("+/+/#", &err), HC_OK);
    cr_assert_eq(hc_topic_filter_validate("a#", &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "invalid topic filter 'a#': '#' must be the last level");
}

Test(topic, topic_names_reject_wildcards_and_empty)
{
    hc_error err = HC_ERROR_INIT;
    cr_assert_eq(hc_topic_name_validate("a/b", &err), HC_OK);
    cr_assert_eq(hc_topic_name_validate("a/+", &err), HC_ERR_INVALID);
    cr_assert_eq(hc_topic_name_validate("a/#", &err), HC_ERR_INVALID);
    cr_assert_eq(hc_topic_name_validate("", &err), HC_ERR_INVALID);
    cr_assert_not(hc_topic_matches("a/+", "a/+"), "a topic with wildcards is not matched");
}

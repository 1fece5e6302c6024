/*
 * The shared MQTT options of the tools: where a token comes from, how many copies of it stay in
 * memory, and what protects it while it is there; shell quoting of suggested commands.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "tool.h"

Test(tool_opts, a_token_from_the_environment_is_taken_once_and_the_process_is_not_dumpable)
{
    struct tool_mqtt m;
    struct hc_mqtt_options out;
    struct rlimit core;

    memset(&m, 0, sizeof(m));
    cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
    setenv("HALTIAN_API_KEY_ID", "key", 1);
    setenv("HALTIAN_API_KEY_TOKEN", "secret-token", 1);
    cr_assert_eq(tool_mqtt_resolve(&m, "mqtt://localhost:1883", &out), OPTS_OK);
    cr_assert_str_eq(out.password, "secret-token");
    cr_assert_null(getenv("HALTIAN_API_KEY_TOKEN"), "the environment still holds the token");
    cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0, "a core dump could carry the token");
    cr_assert_eq(getrlimit(RLIMIT_CORE, &core), 0);
    cr_assert_eq(core.rlim_cur, 0);
    tool_mqtt_release(&m);
    cr_assert_null(m.token);
}

Test(tool_opts, a_token_on_the_command_line_is_wiped_from_argv)
{
    struct tool_mqtt m;
    struct hc_mqtt_options out;
    char arg[] = "argv-secret";

    memset(&m, 0, sizeof(m));
    m.api_key_id = "key";
    cr_assert_eq(tool_mqtt_option(&m, TOOL_OPT_TOKEN, arg), OPTS_OK);
    cr_assert_eq(tool_mqtt_resolve(&m, "mqtt://localhost:1883", &out), OPTS_OK);
    cr_assert_str_eq(out.password, "argv-secret");
    for (size_t i = 0; i < sizeof(arg); i++)
        cr_assert_eq(arg[i], '\0', "argv byte %zu not wiped", i);
    tool_mqtt_release(&m);
}

Test(tool_opts, shell_quote_makes_one_inert_word)
{
    char out[128];

    tool_shell_quote(out, sizeof(out), "fixtures/case-1");
    cr_assert_str_eq(out, "fixtures/case-1");
    tool_shell_quote(out, sizeof(out), "a; touch X `echo y`");
    cr_assert_str_eq(out, "'a; touch X `echo y`'");
    tool_shell_quote(out, sizeof(out), "it's $HOME");
    cr_assert_str_eq(out, "'it'\\''s $HOME'");
    tool_shell_quote(out, sizeof(out), "-rf");
    cr_assert_str_eq(out, "'-rf'");
    tool_shell_quote(out, 8, "a long path");
    cr_assert_str_eq(out, "'...'");
}

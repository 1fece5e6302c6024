/*
 * Unit tests of hverify's structural comparison: key order, tolerances (global and per path),
 * ignore paths with indices and wildcards, the first differing path, and path syntax errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcore/jsonl.h"
#include "hverify.h"

static bool cmp(const char *e, const char *a, const struct hv_cfg *cfg, struct hv_diff *d)
{
    cJSON *je = cJSON_Parse(e), *ja = cJSON_Parse(a);
    bool r;

    cr_assert_not_null(je);
    cr_assert_not_null(ja);
    r = hv_compare(je, ja, cfg, d);
    cJSON_Delete(je);
    cJSON_Delete(ja);
    return r;
}

static void add_ignore(struct hv_cfg *cfg, const char *text)
{
    char why[100];

    cfg->ignore = realloc(cfg->ignore, (cfg->n_ignore + 1) * sizeof(*cfg->ignore));
    cr_assert(hv_path_compile(text, &cfg->ignore[cfg->n_ignore], why, sizeof(why)), "%s", why);
    cfg->n_ignore++;
}

Test(hverify, key_order_and_whitespace_do_not_matter)
{
    cr_assert(cmp("{\"a\":1,\"b\":{\"c\":[1,2],\"d\":\"x\"}}",
                  " { \"b\" : { \"d\":\"x\", \"c\":[ 1 , 2 ] } , \"a\" : 1 }", NULL, NULL));
}

Test(hverify, array_order_matters)
{
    struct hv_diff d;

    cr_assert_not(cmp("{\"a\":[1,2]}", "{\"a\":[2,1]}", NULL, &d));
    cr_assert_str_eq(d.path, "a[0]");
}

Test(hverify, first_differing_path_follows_expected_member_order)
{
    cJSON *e = cJSON_Parse("{\"x\":1,\"m\":[{\"v\":1},{\"v\":2,\"u\":\"g\"}],\"y\":2}");
    cJSON *a = cJSON_Parse("{\"y\":3,\"x\":1,\"m\":[{\"v\":1},{\"u\":\"g\",\"v\":2.5}]}");
    struct hv_diff d;

    cr_assert_not(hv_compare(e, a, NULL, &d));
    cr_assert_str_eq(d.path, "m[1].v");
    cr_assert_eq(d.expected->valuedouble, 2);
    cr_assert_eq(d.actual->valuedouble, 2.5);
    cJSON_Delete(e);
    cJSON_Delete(a);
}

Test(hverify, missing_and_extra_members_and_elements_are_reported)
{
    struct hv_diff d;

    cr_assert_not(cmp("{\"a\":1,\"b\":2}", "{\"a\":1}", NULL, &d));
    cr_assert_str_eq(d.path, "b");
    cr_assert_not_null(d.expected);
    cr_assert_null(d.actual);
    cr_assert_not(cmp("{\"a\":1}", "{\"a\":1,\"z\":true}", NULL, &d));
    cr_assert_str_eq(d.path, "z");
    cr_assert_null(d.expected);
    cr_assert_not(cmp("[1,2]", "[1,2,3]", NULL, &d));
    cr_assert_str_eq(d.path, "[2]");
}

Test(hverify, type_changes_differ_including_true_false_and_null)
{
    struct hv_diff d;

    cr_assert_not(cmp("{\"v\":true}", "{\"v\":false}", NULL, &d));
    cr_assert_str_eq(d.path, "v");
    cr_assert_not(cmp("{\"v\":1}", "{\"v\":\"1\"}", NULL, NULL));
    cr_assert_not(cmp("{\"v\":null}", "{\"v\":0}", NULL, NULL));
    cr_assert_not(cmp("1", "2", NULL, &d));
    cr_assert_str_eq(d.path, "$");
}

Test(hverify, odd_member_names_are_quoted_in_paths)
{
    struct hv_diff d;

    cr_assert_not(cmp("{\"a.b\":{\"c d\":1}}", "{\"a.b\":{\"c d\":2}}", NULL, &d));
    cr_assert_str_eq(d.path, "[\"a.b\"][\"c d\"]");
}

Test(hverify, absolute_and_relative_tolerances_loosen_numbers_only)
{
    struct hv_cfg cfg = {0};

    cfg.abs_tol = 0.01;
    cr_assert(cmp("{\"v\":1.0}", "{\"v\":1.005}", &cfg, NULL));
    cr_assert_not(cmp("{\"v\":1.0}", "{\"v\":1.02}", &cfg, NULL));
    cfg.abs_tol = 0;
    cfg.rel_tol = 0.001;
    cr_assert(cmp("{\"v\":1000}", "{\"v\":1000.9}", &cfg, NULL));
    cr_assert_not(cmp("{\"v\":1000}", "{\"v\":1001.1}", &cfg, NULL));
    cr_assert_not(cmp("{\"v\":\"1000\"}", "{\"v\":\"1000.5\"}", &cfg, NULL));
    cr_assert(cmp("{\"v\":0}", "{\"v\":0}", NULL, NULL));
}

Test(hverify, per_path_tolerance_applies_at_and_below_its_path)
{
    struct hv_cfg cfg = {0};
    char why[100];

    cfg.tols = calloc(1, sizeof(*cfg.tols));
    cr_assert(hv_path_compile("measurements[*].value", &cfg.tols[0].path, why, sizeof(why)));
    cfg.tols[0].abs_tol = 0.5;
    cfg.n_tols = 1;
    cr_assert(cmp("{\"measurements\":[{\"value\":1},{\"value\":{\"x\":2}}],\"v\":3}",
                  "{\"measurements\":[{\"value\":1.4},{\"value\":{\"x\":2.3}}],\"v\":3}", &cfg,
                  NULL));
    cr_assert_not(cmp("{\"measurements\":[{\"value\":1}],\"v\":3}",
                      "{\"measurements\":[{\"value\":1}],\"v\":3.1}", &cfg, NULL));
    hv_cfg_release(&cfg);
}

Test(hverify, ignore_paths_with_indices_and_wildcards)
{
    struct hv_cfg cfg = {0};
    struct hv_diff d;
    const char *e = "{\"n\":[\"a\"],\"m\":[{\"u\":\"g\",\"v\":1},{\"u\":\"g\",\"v\":2}],\"t\":1}";
    const char *a = "{\"n\":[\"b\"],\"m\":[{\"u\":\"x\",\"v\":1},{\"u\":\"y\",\"v\":2}],\"t\":1}";

    add_ignore(&cfg, "n");
    add_ignore(&cfg, "m[0].u");
    cr_assert_not(cmp(e, a, &cfg, &d));
    cr_assert_str_eq(d.path, "m[1].u");
    hv_cfg_release(&cfg);

    add_ignore(&cfg, "n[0]");
    add_ignore(&cfg, "m[*].u");
    cr_assert(cmp(e, a, &cfg, NULL));
    hv_cfg_release(&cfg);

    add_ignore(&cfg, "*[0]");
    add_ignore(&cfg, "*.*.u");
    cr_assert(cmp(e, a, &cfg, NULL));
    hv_cfg_release(&cfg);

    /* An ignored member may also be missing on one side. */
    add_ignore(&cfg, "normalised");
    cr_assert(cmp("{\"a\":1,\"normalised\":[]}", "{\"a\":1}", &cfg, NULL));
    hv_cfg_release(&cfg);
}

Test(hverify, malformed_paths_are_refused_with_a_reason)
{
    struct hv_path p;
    char why[100];

    cr_assert_not(hv_path_compile("a..b", &p, why, sizeof(why)));
    cr_assert_str_eq(why, "empty member name");
    cr_assert_not(hv_path_compile("a[x]", &p, why, sizeof(why)));
    cr_assert_not(hv_path_compile("a[1", &p, why, sizeof(why)));
    cr_assert_not(hv_path_compile("[\"a", &p, why, sizeof(why)));
    cr_assert_not(hv_path_compile("$", &p, why, sizeof(why)));
    cr_assert(hv_path_compile("[\"a.b\"].c[3]", &p, why, sizeof(why)));
    cr_assert_eq(p.n, 3);
    cr_assert_str_eq(p.segs[0].key, "a.b");
    cr_assert_eq(p.segs[2].kind, HV_SEG_INDEX);
    cr_assert_eq(p.segs[2].index, 3);
    hv_path_release(&p);
}

Test(hverify, xml_escape_handles_markup_and_control_characters)
{
    char *s = hv_xml_escape("<a & \"b\">\x01'");

    cr_assert_str_eq(s, "&lt;a &amp; &quot;b&quot;&gt;?&apos;");
    free(s);
}

/*
 * Tests of redaction: pseudonyms are consistent, keyed and UUID-shaped; ids are replaced in
 * topics and anywhere in payloads and text; masks blank JSON members by path.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/redact.h"

#define INTEGRATION "3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44"
#define API_KEY "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
#define DEVICE "9d1e2f3a-4b5c-4d6e-8f70-a1b2c3d4e5f6"
#define OTHER_DEVICE "11111111-2222-4333-8444-555555555555"
#define TOPIC_OF(dev)                                                                              \
    "haltian-iot/events/" INTEGRATION "/" API_KEY "/measurements/ambientTemperature/" dev

static const unsigned char KEY1[] = "0123456789abcdef-key-one";
static const unsigned char KEY2[] = "fedcba9876543210-key-two";

static hc_redact *new_redactor(const unsigned char *key)
{
    hc_error err = HC_ERROR_INIT;
    hc_redact *r = NULL;
    cr_assert_eq(hc_redact_new(key, key ? strlen((const char *)key) : 0, &r, &err), HC_OK, "%s",
                 err.message);
    return r;
}

static struct hc_msg redact(hc_redact *r, const char *topic, const char *payload)
{
    hc_error err = HC_ERROR_INIT;
    struct hc_msg in = {0}, out;
    in.topic = topic;
    in.payload = (const unsigned char *)payload;
    in.payload_len = strlen(payload);
    cr_assert_eq(hc_redact_message(r, &in, &out, &err), HC_OK, "%s", err.message);
    return out;
}

static bool is_uuid_v4(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

Test(redact, pseudonym_has_the_uuid_version_4_shape)
{
    hc_redact *r = new_redactor(KEY1);
    char p[HC_REDACT_PSEUDONYM_LEN + 1];
    const char *ids[] = {DEVICE, "TSEN01ABC12345678", "haltiansalesdemo", "x"};

    for (size_t i = 0; i < 4; i++) {
        hc_redact_pseudonym(r, ids[i], strlen(ids[i]), p);
        cr_assert(is_uuid_v4(p, strlen(p)), "'%s' -> '%s'", ids[i], p);
    }
    hc_redact_free(r);
}

Test(redact, same_id_and_key_give_the_same_pseudonym_across_redactors)
{
    hc_redact *a = new_redactor(KEY1), *b = new_redactor(KEY1);
    char pa[HC_REDACT_PSEUDONYM_LEN + 1], pb[HC_REDACT_PSEUDONYM_LEN + 1];

    hc_redact_pseudonym(a, DEVICE, strlen(DEVICE), pa);
    hc_redact_pseudonym(b, DEVICE, strlen(DEVICE), pb);
    cr_assert_str_eq(pa, pb);
    hc_redact_pseudonym(b, OTHER_DEVICE, strlen(OTHER_DEVICE), pb);
    cr_assert_str_neq(pa, pb);
    hc_redact_free(a);
    hc_redact_free(b);
}

Test(redact, different_keys_give_unrelated_pseudonyms)
{
    hc_redact *a = new_redactor(KEY1), *b = new_redactor(KEY2), *c = new_redactor(NULL);
    char pa[HC_REDACT_PSEUDONYM_LEN + 1], pb[HC_REDACT_PSEUDONYM_LEN + 1],
        pc[HC_REDACT_PSEUDONYM_LEN + 1];
    size_t same = 0;

    hc_redact_pseudonym(a, DEVICE, strlen(DEVICE), pa);
    hc_redact_pseudonym(b, DEVICE, strlen(DEVICE), pb);
    hc_redact_pseudonym(c, DEVICE, strlen(DEVICE), pc);
    cr_assert_str_neq(pa, pb);
    cr_assert_str_neq(pa, pc);
    /* unrelated: about 1 in 16 hex digits agree by chance, not most of them */
    for (size_t i = 0; i < 36; i++)
        same += pa[i] == pb[i] && pa[i] != '-';
    cr_assert_lt(same, 12, "%zu of 32 hex digits agree", same);
    hc_redact_free(a);
    hc_redact_free(b);
    hc_redact_free(c);
}

Test(redact, short_key_is_refused)
{
    hc_error err = HC_ERROR_INIT;
    hc_redact *r = NULL;
    cr_assert_eq(hc_redact_new((const unsigned char *)"short", 5, &r, &err), HC_ERR_INVALID);
    cr_assert_null(r);
    cr_assert_str_eq(err.message, "redaction key too short: 5 bytes, at least 16 needed");
}

Test(redact, topic_ids_are_replaced_and_kind_and_type_kept)
{
    hc_redact *r = new_redactor(KEY1);
    char pi[37], pk[37], pd[37], want[300];
    struct hc_msg out = redact(r, TOPIC_OF(DEVICE), "{\"value\":1}");

    hc_redact_pseudonym(r, INTEGRATION, strlen(INTEGRATION), pi);
    hc_redact_pseudonym(r, API_KEY, strlen(API_KEY), pk);
    hc_redact_pseudonym(r, DEVICE, strlen(DEVICE), pd);
    snprintf(want, sizeof(want), "haltian-iot/events/%s/%s/measurements/ambientTemperature/%s", pi,
             pk, pd);
    cr_assert_str_eq(out.topic, want);
    cr_assert_eq(out.payload_len, strlen("{\"value\":1}"));
    cr_assert_eq(memcmp(out.payload, "{\"value\":1}", out.payload_len), 0);
    cr_assert_eq(hc_redact_id_count(r), 3);
    hc_redact_free(r);
}

Test(redact, the_same_id_maps_to_the_same_pseudonym_within_a_stream)
{
    hc_redact *r = new_redactor(NULL);
    char first[300];
    struct hc_msg out = redact(r, TOPIC_OF(DEVICE), "1");

    snprintf(first, sizeof(first), "%s", out.topic);
    redact(r, TOPIC_OF(OTHER_DEVICE), "2");
    out = redact(r, TOPIC_OF(DEVICE), "3");
    cr_assert_str_eq(out.topic, first);
    hc_redact_free(r);
}

Test(redact, every_occurrence_of_a_known_id_in_a_payload_is_replaced)
{
    hc_redact *r = new_redactor(KEY1);
    char pd[37], po[37], want[400];
    struct hc_msg out;

    redact(r, TOPIC_OF(OTHER_DEVICE), "{}"); /* learn OTHER_DEVICE from a topic */
    out = redact(r, TOPIC_OF(DEVICE),
                 "{\"value\":{\"rss\":-70,\"sourceDeviceId\":\"" OTHER_DEVICE
                 "\"},\"note\":\"seen " DEVICE " and " DEVICE "x\"}");
    hc_redact_pseudonym(r, DEVICE, strlen(DEVICE), pd);
    hc_redact_pseudonym(r, OTHER_DEVICE, strlen(OTHER_DEVICE), po);
    snprintf(want, sizeof(want),
             "{\"value\":{\"rss\":-70,\"sourceDeviceId\":\"%s\"},\"note\":\"seen %s and "
             "%sx\"}",
             po, pd, DEVICE); /* "<id>x" is another token, not the id: it stays */
    cr_assert_eq(out.payload_len, strlen(want));
    cr_assert_eq(memcmp(out.payload, want, out.payload_len), 0, "%.*s", (int)out.payload_len,
                 (const char *)out.payload);
    hc_redact_free(r);
}

Test(redact, ids_only_in_payload_members_are_learnt_and_replaced)
{
    hc_redact *r = new_redactor(KEY1);
    char pd[37], want[200];
    struct hc_msg out =
        redact(r, "some/other/topic", "{\"sourceDeviceId\": \"" OTHER_DEVICE "\",\"x\":1}");

    hc_redact_pseudonym(r, OTHER_DEVICE, strlen(OTHER_DEVICE), pd);
    snprintf(want, sizeof(want), "{\"sourceDeviceId\": \"%s\",\"x\":1}", pd);
    cr_assert_eq(out.payload_len, strlen(want));
    cr_assert_eq(memcmp(out.payload, want, out.payload_len), 0);
    cr_assert_str_eq(out.topic, "some/other/topic");
    hc_redact_free(r);
}

Test(redact, thingsee_group_tuid_and_gateway_are_replaced)
{
    hc_redact *r = new_redactor(KEY1);
    char pg[37], pt[37], pw[37], want_topic[200];
    struct hc_msg out = redact(r, "cloudext/json/pr/fi/prfi00samplegroup/TSEN01ABC12345678/12100",
                               "{\"tsmId\":12100,\"temp\":21.3,\"tsmTuid\":\"TSEN01ABC12345678\","
                               "\"tsmGw\":\"TSGW06ABC12345678\",\"deploymentGroupId\":"
                               "\"prfi00samplegroup\"}");
    char payload[400];

    hc_redact_pseudonym(r, "prfi00samplegroup", 17, pg);
    hc_redact_pseudonym(r, "TSEN01ABC12345678", 17, pt);
    hc_redact_pseudonym(r, "TSGW06ABC12345678", 17, pw);
    snprintf(want_topic, sizeof(want_topic), "cloudext/json/pr/fi/%s/%s/12100", pg, pt);
    cr_assert_str_eq(out.topic, want_topic);
    snprintf(payload, sizeof(payload), "%.*s", (int)out.payload_len, (const char *)out.payload);
    cr_assert_null(strstr(payload, "TSEN01"));
    cr_assert_null(strstr(payload, "TSGW06"));
    cr_assert_null(strstr(payload, "samplegroup"));
    cr_assert_not_null(strstr(payload, pw));
    hc_redact_free(r);
}

Test(redact, wirepas_gateway_and_network_ids_inside_a_passthrough_mqtt_topic_are_replaced)
{
    hc_redact *r = new_redactor(KEY1);
    char pg[37], pn[37], want[400];
    struct hc_msg out =
        redact(r, "haltian-iot/events/" INTEGRATION "/" API_KEY "/payloads/wirepas/" OTHER_DEVICE,
               "{\"received_at\":\"2026-01-29T12:34:56.789Z\",\"value\":{\"mqtt_topic\":"
               "\"haltian-iot/wirepas/gw-event/received_data/BS225000789/sink1/7156763/21/21\","
               "\"payload\":\"CgYIARAB\"}}");

    hc_redact_pseudonym(r, "BS225000789", 11, pg);
    hc_redact_pseudonym(r, "7156763", 7, pn);
    snprintf(want, sizeof(want),
             "{\"received_at\":\"2026-01-29T12:34:56.789Z\",\"value\":{\"mqtt_topic\":"
             "\"haltian-iot/wirepas/gw-event/received_data/%s/sink1/%s/21/21\","
             "\"payload\":\"CgYIARAB\"}}",
             pg, pn);
    cr_assert_eq(out.payload_len, strlen(want), "%.*s", (int)out.payload_len,
                 (const char *)out.payload);
    cr_assert_eq(memcmp(out.payload, want, out.payload_len), 0);

    /* the same gateway in a status topic: the same pseudonym; sink names stay */
    out = redact(r, "x/y", "{\"mqtt_topic\":\"gw-event/status/BS225000789\",\"sink\":\"sink1\"}");
    snprintf(want, sizeof(want), "{\"mqtt_topic\":\"gw-event/status/%s\",\"sink\":\"sink1\"}", pg);
    cr_assert_eq(out.payload_len, strlen(want));
    cr_assert_eq(memcmp(out.payload, want, out.payload_len), 0);
    hc_redact_free(r);
}

Test(redact, binary_payload_with_nul_bytes_is_scanned_byte_exact)
{
    hc_redact *r = new_redactor(KEY1);
    hc_error err = HC_ERROR_INIT;
    unsigned char bytes[100];
    struct hc_msg in = {0}, out;
    char pd[37];

    memcpy(bytes, "\x00\xff", 2);
    memcpy(bytes + 2, DEVICE, 36);
    memcpy(bytes + 38, "\x00\x01", 2);
    in.topic = TOPIC_OF(DEVICE);
    in.payload = bytes;
    in.payload_len = 40;
    cr_assert_eq(hc_redact_message(r, &in, &out, &err), HC_OK);
    hc_redact_pseudonym(r, DEVICE, 36, pd);
    cr_assert_eq(out.payload_len, 40);
    cr_assert_eq(memcmp(out.payload, "\x00\xff", 2), 0);
    cr_assert_eq(memcmp(out.payload + 2, pd, 36), 0);
    cr_assert_eq(memcmp(out.payload + 38, "\x00\x01", 2), 0);
    hc_redact_free(r);
}

Test(redact, masks_blank_members_by_dotted_path_as_null)
{
    hc_redact *r = new_redactor(KEY1);
    hc_error err = HC_ERROR_INIT;
    struct hc_msg out;

    cr_assert_eq(hc_redact_add_mask(r, "value.space_id", &err), HC_OK);
    cr_assert_eq(hc_redact_add_mask(r, "value.position_global", &err), HC_OK);
    cr_assert_eq(hc_redact_add_mask(r, "absent.path", &err), HC_OK);
    out = redact(r, "t/1",
                 "{\"measured_at\":\"2026-02-05T10:30:45.123Z\",\"value\":{\"position_global\":"
                 "{\"type\":\"Point\",\"coordinates\":[24.9384,60.1699]},\"accuracy\":2.5,"
                 "\"space_id\":\"55a0a3d0-84b6-4ace-b131-0b2420053e91\"}}");
    cr_assert_str_eq((const char *)out.payload,
                     "{\"measured_at\":\"2026-02-05T10:30:45.123Z\",\"value\":{\"position_global\":"
                     "null,\"accuracy\":2.5,\"space_id\":null}}");
    hc_redact_free(r);
}

Test(redact, masks_leave_untouched_payloads_byte_for_byte)
{
    hc_redact *r = new_redactor(KEY1);
    hc_error err = HC_ERROR_INIT;
    const char *payload = "{ \"value\" : 23.50 }";
    struct hc_msg out;

    cr_assert_eq(hc_redact_add_mask(r, "value.space_id", &err), HC_OK);
    out = redact(r, "t/1", payload);
    cr_assert_eq(out.payload_len, strlen(payload));
    cr_assert_eq(memcmp(out.payload, payload, out.payload_len), 0);
    out = redact(r, "t/1", "not json {");
    cr_assert_str_eq((const char *)out.payload, "not json {");
    hc_redact_free(r);
}

Test(redact, masks_descend_into_arrays)
{
    hc_redact *r = new_redactor(KEY1);
    hc_error err = HC_ERROR_INIT;
    struct hc_msg out;

    cr_assert_eq(hc_redact_add_mask(r, "temp", &err), HC_OK);
    out = redact(r, "t/1", "[{\"temp\":1,\"a\":2},{\"temp\":3}]");
    cr_assert_str_eq((const char *)out.payload, "[{\"temp\":null,\"a\":2},{\"temp\":null}]");
    hc_redact_free(r);
}

Test(redact, malformed_mask_paths_are_refused)
{
    hc_redact *r = new_redactor(KEY1);
    hc_error err = HC_ERROR_INIT;

    cr_assert_eq(hc_redact_add_mask(r, "", &err), HC_ERR_INVALID);
    cr_assert_eq(hc_redact_add_mask(r, "value..x", &err), HC_ERR_INVALID);
    cr_assert_eq(hc_redact_add_mask(r, ".value", &err), HC_ERR_INVALID);
    cr_assert_str_eq(err.message, "invalid mask '.value': expected member names joined by dots "
                                  "(value.space_id)");
    hc_redact_free(r);
}

Test(redact, text_gets_every_known_id_replaced)
{
    hc_redact *r = new_redactor(KEY1);
    hc_error err = HC_ERROR_INIT;
    char pi[37], pk[37], want[300];
    char *text = NULL;

    redact(r, TOPIC_OF(DEVICE), "");
    cr_assert_eq(hc_redact_text(r, "haltian-iot/events/" INTEGRATION "/" API_KEY "/#", &text, &err),
                 HC_OK);
    hc_redact_pseudonym(r, INTEGRATION, strlen(INTEGRATION), pi);
    hc_redact_pseudonym(r, API_KEY, strlen(API_KEY), pk);
    snprintf(want, sizeof(want), "haltian-iot/events/%s/%s/#", pi, pk);
    cr_assert_str_eq(text, want);
    free(text);
    hc_redact_free(r);
}

Test(redact, short_ids_are_replaced_only_as_whole_segments)
{
    hc_redact *r = new_redactor(KEY1);
    char pd[37], want[300];
    struct hc_msg out = redact(r, "haltian-iot/events/demo/key/measurements/co2/dev1",
                               "{\"deviceId\":\"dev1\",\"text\":\"developer dev1x\"}");

    hc_redact_pseudonym(r, "dev1", 4, pd);
    snprintf(want, sizeof(want), "{\"deviceId\":\"%s\",\"text\":\"developer dev1x\"}", pd);
    cr_assert_str_eq((const char *)out.payload, want);
    hc_redact_free(r);
}

Test(redact, many_ids_of_many_lengths_are_all_found)
{
    hc_redact *r = new_redactor(KEY1);
    hc_error err = HC_ERROR_INIT;
    char id[64], payload[200], *text = NULL;

    for (int i = 0; i < 500; i++) {
        int n = snprintf(id, sizeof(id), "device-%0*d", 1 + i % 20, i);
        cr_assert_eq(hc_redact_add_id(r, id, (size_t)n, &err), HC_OK);
    }
    snprintf(payload, sizeof(payload), "a device-%0*d b device-%0*d c", 1 + 499 % 20, 499,
             1 + 7 % 20, 7);
    cr_assert_eq(hc_redact_text(r, payload, &text, &err), HC_OK);
    cr_assert_null(strstr(text, "device-"), "%s", text);
    cr_assert_eq(strlen(text), strlen("a  b  c") + 72);
    free(text);
    hc_redact_free(r);
}

/* --- issue 11 items 6-8: redaction that holds ---------------------------------------------------
 */

static const char *payload_text(const struct hc_msg *m)
{
    static char text[2000];
    snprintf(text, sizeof(text), "%.*s", (int)m->payload_len, (const char *)m->payload);
    return text;
}

static void assert_absent(const char *text, const char *what)
{
    cr_assert_null(strstr(text, what), "'%s' left in %s", what, text);
}

Test(redact, every_form_of_a_known_id_is_replaced_by_the_same_pseudonym)
{
    hc_redact *r = new_redactor(KEY1);
    char pd[37], want[1200];
    struct hc_msg out;

    redact(r, TOPIC_OF(DEVICE), "{}");
    hc_redact_pseudonym(r, DEVICE, strlen(DEVICE), pd);
    out = redact(r, "x/y",
                 "{\"a\":\"9D1E2F3A-4B5C-4D6E-8F70-A1B2C3D4E5F6\","      /* upper case */
                 "\"b\":\"9d1e2f3a4b5c4d6e8f70a1b2c3d4e5f6\","           /* no hyphens */
                 "\"c\":\"9d1e2f3a%2D4b5c%2d4d6e-8f70-a1b2c3d4e5f6\","   /* percent-encoded */
                 "\"d\":\"9d1e2f3a\\u002d4b5c-4d6e-8f70-a1b2c3d4e5f6\"," /* JSON escape */
                 "\"e\":\"haltian-iot\\/events\\/x\\/y\\/measurements\\/co2\\/" DEVICE "\","
                 "\"f\":\"see https://x/devices/9D1E2F3A4B5C4D6E8F70A1B2C3D4E5F6.\"}");
    snprintf(
        want, sizeof(want),
        "{\"a\":\"%s\",\"b\":\"%s\",\"c\":\"%s\",\"d\":\"%s\","
        "\"e\":\"haltian-iot/events/x/y/measurements/co2/%s\",\"f\":\"see https://x/devices/%s.\"}",
        pd, pd, pd, pd, pd, pd);
    cr_assert_str_eq(payload_text(&out), want);
    hc_redact_free(r);
}

Test(redact, members_named_like_ids_are_replaced_and_learnt)
{
    hc_redact *r = new_redactor(KEY1);
    char pg[37], pu[37], want[600];
    char *text = NULL;
    struct hc_msg out = redact(r, "x/y",
                               "{\"gatewayId\":\"gw-7\",\"value\":{\"gateway_id\":\"GW-77\","
                               "\"ID\":\"abc\",\"valid\":\"yes\",\"tsmId\":12100}}");

    hc_redact_pseudonym(r, "gw-7", 4, pg);
    hc_redact_pseudonym(r, "gw-77", 5, pu);
    snprintf(want, sizeof(want), "{\"gatewayId\":\"%s\",\"value\":{\"gateway_id\":\"%s\",\"ID\":\"",
             pg, pu);
    cr_assert_eq(strncmp(payload_text(&out), want, strlen(want)), 0, "%s", payload_text(&out));
    assert_absent(payload_text(&out), "abc");
    cr_assert_not_null(strstr(payload_text(&out), "\"valid\":\"yes\",\"tsmId\":12100}}"));
    /* a learnt short id is not replaced inside free text (too common) */
    cr_assert_eq(hc_redact_text(r, "gw-7 and gw-77", &text, NULL), HC_OK);
    cr_assert_str_eq(text, "gw-7 and gw-77");
    free(text);
    hc_redact_free(r);
}

Test(redact, numbers_and_other_tokens_are_never_cut)
{
    hc_redact *r = new_redactor(KEY1);
    char pn[37], want[600];
    struct hc_msg out;

    cr_assert_eq(hc_redact_add_id(r, "1234567", 7, NULL), HC_OK);
    hc_redact_pseudonym(r, "1234567", 7, pn);
    out = redact(r, "a/1234567/b",
                 "{\"value\":81234567,\"n\":1234567,\"at\":\"2026-02-05T10:30:51.1234567Z\","
                 "\"w\":\"x1234567\",\"s\":\"1234567\",\"t\":\"net 1234567.\"}");
    snprintf(want, sizeof(want),
             "{\"value\":81234567,\"n\":1234567,\"at\":\"2026-02-05T10:30:51.1234567Z\","
             "\"w\":\"x1234567\",\"s\":\"%s\",\"t\":\"net %s.\"}",
             pn, pn);
    cr_assert_str_eq(payload_text(&out), want);
    snprintf(want, sizeof(want), "a/%s/b", pn);
    cr_assert_str_eq(out.topic, want);
    hc_redact_free(r);
}

Test(redact, uuids_are_replaced_even_when_never_learnt)
{
    hc_redact *r = new_redactor(KEY1);
    char po[37];
    char *text = NULL;

    hc_redact_pseudonym(r, OTHER_DEVICE, strlen(OTHER_DEVICE), po);
    cr_assert_eq(
        hc_redact_text(r, "device " OTHER_DEVICE " and TSEN01ABC12345678 drop", &text, NULL),
        HC_OK);
    cr_assert(strstr(text, po), "%s", text);
    assert_absent(text, OTHER_DEVICE);
    assert_absent(text, "TSEN01ABC");
    free(text);
    hc_redact_free(r);
}

Test(redact, ids_in_the_subscriptions_meta_are_learnt)
{
    hc_redact *r = new_redactor(KEY1);
    char pi[37], pd[37], want[300];
    char *text = NULL;

    cr_assert_eq(hc_redact_learn_meta(r, "subscriptions",
                                      "[{\"filter\":\"haltian-iot/events/demo01/key01/measurements/"
                                      "+/dev-0001\",\"qos\":1,\"granted_qos\":1}]",
                                      NULL),
                 HC_OK);
    cr_assert_eq(hc_redact_learn_meta(r, "note", "site demo01", NULL), HC_OK);
    cr_assert_eq(hc_redact_id_count(r), 3);
    hc_redact_pseudonym(r, "demo01", 6, pi);
    hc_redact_pseudonym(r, "dev-0001", 8, pd);
    cr_assert_eq(hc_redact_text(r, "site demo01, device dev-0001", &text, NULL), HC_OK);
    snprintf(want, sizeof(want), "site %s, device %s", pi, pd);
    cr_assert_str_eq(text, want);
    free(text);
    hc_redact_free(r);
}

Test(redact, masks_null_every_duplicate_and_keep_other_bytes)
{
    hc_redact *r = new_redactor(KEY1);
    struct hc_msg out;

    cr_assert_eq(hc_redact_add_mask(r, "secret", NULL), HC_OK);
    cr_assert_eq(hc_redact_add_mask(r, "value.pos", NULL), HC_OK);
    out = redact(r, "t/1",
                 "{\"secret\":\"one\", \"w\":0.30000000000000004,\"secret\" : {\"a\":[1,2]},"
                 "\"big\":12345678901234567890,\"f\":1.0,\"inf\":1e400,"
                 "\"value\":[{\"pos\":[1.50,2]},{\"pos\":\"x\",\"k\":-0}],\"secret\":\"two\"}");
    cr_assert_str_eq(payload_text(&out),
                     "{\"secret\":null, \"w\":0.30000000000000004,\"secret\" : null,"
                     "\"big\":12345678901234567890,\"f\":1.0,\"inf\":1e400,"
                     "\"value\":[{\"pos\":null},{\"pos\":null,\"k\":-0}],\"secret\":null}");
    hc_redact_free(r);
}

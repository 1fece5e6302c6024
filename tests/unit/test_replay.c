/*
 * The replay engine's compatibility promises: the device hash, the connection and shard chosen
 * from it, and the derived fan-out ids are the same on every run and machine (shards on several
 * machines split one recording by them), so their values are pinned here. Also the options the
 * engine refuses before it connects anywhere.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "hcore/replay.h"

struct pinned {
    const char *device;
    uint64_t hash;
    unsigned connection_of_4, shard_of_3;
    const char *copy1, *copy7;
};

static const struct pinned pins[] = {
    {"dev-1", 0x420661e1113b2d68ULL, 0, 1, "45476bee-f6d8-8279-b5cf-0021f47b3568",
     "37f7bf4c-6b73-850c-93ac-090dfc7fd495"},
    {"TSEN01ABC12345678", 0x0341f549a7282fa0ULL, 0, 2, "da24ea61-c8c8-8bef-9817-a4feb1fc41cd",
     "ee77afde-9121-8041-ba33-60a902035bea"},
    {"3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44", 0xd210a93bcd96d774ULL, 0, 1,
     "6dc35c6d-9f9b-8993-a3cc-cf52d98339cd", "5aba7937-e6bf-8141-8775-2c952b9ec3aa"},
    {"", 0xf52a15e9a9b5e89bULL, 3, 1, "41b45d5b-34aa-8267-82b7-b3cd9f4c2143",
     "7327bd04-8a32-8a83-aee3-7c721ca637c4"},
};

Test(replay, device_hash_connection_and_shard_keep_their_values)
{
    for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
        uint64_t h = hc_replay_hash(pins[i].device, strlen(pins[i].device));
        cr_assert_eq(h, pins[i].hash, "hash of '%s'", pins[i].device);
        cr_assert_eq(hc_replay_connection_of(h, 4), pins[i].connection_of_4);
        cr_assert_eq(hc_replay_shard_of(h, 3), pins[i].shard_of_3);
    }
}

Test(replay, derived_fanout_ids_keep_their_values_and_are_version_8_uuids)
{
    for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
        char id[37];
        size_t len = strlen(pins[i].device);

        hc_replay_fanout_id(pins[i].device, len, 1, id);
        cr_assert_str_eq(id, pins[i].copy1);
        hc_replay_fanout_id(pins[i].device, len, 7, id);
        cr_assert_str_eq(id, pins[i].copy7);
        cr_assert_eq(strlen(id), 36);
        cr_assert_eq(id[14], '8', "version 8: %s", id);
        cr_assert(strchr("89ab", id[19]) != NULL, "RFC 9562 variant: %s", id);
    }
}

Test(replay, every_shard_takes_its_own_devices_and_together_all)
{
    /* 10,000 devices over 7 shards: each device in exactly one, none empty */
    unsigned counts[7] = {0};
    for (int d = 0; d < 10000; d++) {
        char id[32];
        int n = snprintf(id, sizeof(id), "device-%d", d);
        counts[hc_replay_shard_of(hc_replay_hash(id, (size_t)n), 7)]++;
    }
    for (int k = 0; k < 7; k++)
        cr_assert(counts[k] > 1200 && counts[k] < 1700, "shard %d has %u devices", k, counts[k]);
}

Test(replay, options_that_would_make_invalid_topics_are_refused_before_connecting)
{
    struct hc_replay_remap bad_to = {"a/b", "x/+"};
    struct hc_replay_options o = {
        .mqtt = {.url = "mqtt://127.0.0.1:1", .client_id = "test-replay"},
        .fanout = 1,
        .connections = 1,
        .loops = 1,
        .qos = 0,
    };
    hc_replay *r = NULL;
    hc_error err = HC_ERROR_INIT;

    o.remaps = &bad_to;
    o.n_remaps = 1;
    cr_assert_eq(hc_replay_new(&o, &r, &err), HC_ERR_INVALID);
    cr_assert(strstr(err.message, "wildcards") != NULL, "%s", err.message);
    cr_assert_null(r);
    o.n_remaps = 0;
    o.integration_id = "a/b";
    cr_assert_eq(hc_replay_new(&o, &r, &err), HC_ERR_INVALID);
    o.integration_id = NULL;
    o.shard_k = 4;
    o.shard_n = 3;
    cr_assert_eq(hc_replay_new(&o, &r, &err), HC_ERR_INVALID);
}

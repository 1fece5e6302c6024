/*
 * libFuzzer target for the decoder. Input: "<topic>\n<payload bytes>"; without a newline the
 * first byte picks one of a few realistic topics and the rest is the payload. Checks, besides
 * ASan/UBSan cleanliness, that hc_decode_index agrees with hc_decode_message and that the output
 * always prints.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/decode.h"

static const char *const topics[] = {
    "haltian-iot/events/i/k/measurements/ambientTemperature/d",
    "haltian-iot/events/i/k/measurements/position/d",
    "haltian-iot/events/i/k/measurements/directionalMovement/d",
    "haltian-iot/events/i/k/measurements/magnetoSwitchStatus/d",
    "haltian-iot/events/i/k/measurements/occupancyStatus/d",
    "haltian-iot/events/i/k/payloads/wirepas/d",
    "haltian-iot/events/i/k/notifications/deviceOffline",
    "haltian-iot/events/i/k/messages/rawData/d",
    "cloudext/json/pr/fi/g/TSEN01ABC12345678/12100",
};

static void check(int cond)
{
    if (!cond)
        __builtin_trap();
}

static void agree(const cJSON *o, const char *key, const char *idx_value)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const char *s = cJSON_IsString(v) ? v->valuestring : "";

    /* The index truncates; compare the stored prefix. */
    check(strncmp(s, idx_value, strlen(idx_value)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;
    char *topic;
    const uint8_t *payload;
    size_t len;
    cJSON *out = NULL;
    struct hc_decode_index idx;
    char *text;

    if (nl) {
        size_t tlen = (size_t)(nl - data);

        topic = malloc(tlen + 1);
        if (!topic)
            return 0;
        memcpy(topic, data, tlen);
        topic[tlen] = '\0'; /* a NUL inside just shortens the topic */
        payload = nl + 1;
        len = size - tlen - 1;
    } else {
        const char *t = topics[size ? data[0] % (sizeof(topics) / sizeof(topics[0])) : 0];

        topic = strdup(t);
        if (!topic)
            return 0;
        payload = size ? data + 1 : data;
        len = size ? size - 1 : 0;
    }
    if (hc_decode_message(topic, payload, len, &out, NULL) == HC_OK) {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(out, "measured_at_ms");

        hc_decode_index(topic, payload, len, &idx);
        agree(out, "kind", idx.kind);
        agree(out, "type", idx.type);
        agree(out, "device_id", idx.device_id);
        check(idx.has_error == cJSON_HasObjectItem(out, "error"));
        check(idx.has_measured_at == (ms != NULL));
        check(!ms || (double)idx.measured_at_ms == ms->valuedouble);
        text = cJSON_PrintUnformatted(out);
        check(text != NULL);
        free(text);
        cJSON_Delete(out);
    }
    free(topic);
    return 0;
}

/*
 * The Haltian decoder: (topic, payload bytes) -> one canonical JSON object.
 *
 * Accepts every shape in Haltian's public documentation (Haltian IoT stream API topics with 7
 * or 6 levels, value and named-field payloads, three position layouts, binary passthrough) and
 * the legacy Thingsee format (cloudext/json/... topics, object or array payloads). Type aliases
 * are normalised to one canonical name; timestamps to RFC 3339 UTC with milliseconds. Anything
 * it cannot understand becomes data in the output ("error": {"code", "detail"}): the decoder
 * never fails on bad input, only on out-of-memory. The output format is documented in README.md
 * ("The decoder's output").
 */
#ifndef HCORE_DECODE_H
#define HCORE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the decoder's output format; bumped on any change a fixture would notice. */
#define HC_DECODE_FORMAT_VERSION 1

/*
 * Decodes one message. On HC_OK *out is a new cJSON object owned by the caller (cJSON_Delete);
 * some of its strings are cJSON references to static text, which cJSON_Delete and
 * cJSON_Duplicate handle. Malformed input still returns HC_OK with an "error" member in *out.
 * Returns HC_ERR_NOMEM, or HC_ERR_INVALID (NULL topic or out, NULL payload with a length) only.
 * payload need not be NUL-terminated; exactly payload_len bytes are read.
 */
hc_err hc_decode_message(const char *topic, const unsigned char *payload, size_t payload_len,
                         cJSON **out, hc_error *err);

/*
 * The columns a recording indexes, filled from topic and payload without building the full
 * output. Strings are NUL-terminated and truncated to fit; empty when unknown.
 */
struct hc_decode_index {
    char kind[32];          /* "measurements", "notifications", ...; "thingsee" for legacy */
    char type[64];          /* canonical type name ("ambientTemperature"); first for Thingsee */
    char device_id[128];    /* device id from the topic (Thingsee: tuid) */
    int64_t measured_at_ms; /* ms since the epoch (UTC) */
    int has_measured_at;    /* 0 when the payload has no usable timestamp */
    int has_error;          /* 1 when hc_decode_message would report an error */
};

/*
 * Fills idx (never fails on bad input; zeroes fields it cannot fill). Runs the same decoding pass
 * as hc_decode_message without building the output (the topic half, then the payload half), so
 * both always agree on kind, type, device, measured_at and whether there is an error. Plain
 * Haltian measurements ({"measured_at":"...","value":<number>}) take a shortcut that ends exactly
 * where the full pass would (tested against hc_decode_message, and fuzzed). Keeps no state of its
 * own (cJSON records its last parse error in a global); allocates only inside cJSON's parser.
 */
void hc_decode_index(const char *topic, const unsigned char *payload, size_t payload_len,
                     struct hc_decode_index *idx);

/*
 * Canonical name for a type name or alias ("ambient_temperature", "CO2", "ambientHumidity"
 * -> "ambientTemperature", "co2", "humidity"); NULL when unknown. Matching ignores ASCII case
 * and the separators '_' and '-', so camelCase, snake_case and upper-case spellings of a name
 * or of a documented alias all match. Unit of a type ("°C"; aliases accepted), NULL when the
 * type has none or is unknown. Returned strings are static.
 */
const char *hc_decode_canonical_type(const char *name);
const char *hc_decode_unit(const char *canonical_type);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Redaction: replaces the identifiers in Haltian traffic (integration id, API key id, device and
 * device-group ids; Thingsee group ids, tuids and gateway ids) with consistent pseudonyms, and
 * blanks chosen JSON fields, so a recording can be attached to a bug report without leaking a
 * customer's ids.
 *
 * A pseudonym is HMAC-SHA256(key, id) cut to 128 bits and laid out as a version 4 UUID
 * ("5f0c3a1e-9b2d-4e7f-a1c3-0d9e8f7a6b5c"): the same id and key give the same pseudonym, other
 * keys give unrelated ones, and nobody without the key can map a pseudonym back.
 *
 * Ids are learnt from topics (haltian-iot/events/{integration}/{api-key}/{kind}/{type}/{device},
 * cloudext/json/{env}/{country}/{group}/{tuid}/{tsmId}) and from payload members that carry ids
 * ("sourceDeviceId", "tsmTuid", "tsmGw", "deploymentGroupId", "deviceId", "device_id", and the
 * gateway id and network address of a Wirepas topic in a passthrough's "mqtt_topic"). Every
 * occurrence of a learnt id's bytes is then replaced anywhere in topics, payloads and text, so
 * learn from all messages first (hc_redact_learn) when payloads may mention ids that only appear
 * later in topics. Ids shorter than HC_REDACT_MIN_ID_LEN bytes are replaced only where they form
 * a whole id segment of a topic or a whole id member value: replacing short strings everywhere
 * would mangle unrelated bytes.
 *
 * Masks blank JSON members by dotted path ("value.space_id"): the member's value becomes null,
 * so the shape stays visible and a consumer can tell "hidden" from "never sent". A path
 * descends into every element of an array it meets (Thingsee array payloads). A payload is
 * re-serialised (compact, by cJSON) only when a mask hit; otherwise its bytes stay as they were.
 */
#ifndef HCORE_REDACT_H
#define HCORE_REDACT_H

#include <stddef.h>

#include "hcore/error.h"
#include "hcore/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HC_REDACT_PSEUDONYM_LEN 36 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define HC_REDACT_MIN_ID_LEN 6
#define HC_REDACT_MIN_KEY_LEN 16 /* bytes of key material */

typedef struct hc_redact hc_redact;

/*
 * Creates a redactor keyed with key_len bytes of key (at least HC_REDACT_MIN_KEY_LEN; copied),
 * or with 32 random bytes when key is NULL. *out: hc_redact_free. HC_ERR_INVALID for a short
 * key.
 */
hc_err hc_redact_new(const unsigned char *key, size_t key_len, hc_redact **out, hc_error *err);

/* Wipes the key and frees. Accepts NULL. */
void hc_redact_free(hc_redact *r);

/* Writes the pseudonym of id (id_len bytes) and a NUL into out (HC_REDACT_PSEUDONYM_LEN + 1). */
void hc_redact_pseudonym(const hc_redact *r, const char *id, size_t id_len, char *out);

/* Registers one id to replace (empty ids are ignored). */
hc_err hc_redact_add_id(hc_redact *r, const char *id, size_t id_len, hc_error *err);

/* Learns the ids of one message (its topic segments and id members of its payload). */
hc_err hc_redact_learn(hc_redact *r, const char *topic, const unsigned char *payload,
                       size_t payload_len, hc_error *err);

/* Number of distinct ids learnt so far. */
size_t hc_redact_id_count(const hc_redact *r);

/* Adds a mask: a dotted path of member names, e.g. "value.position_global". */
hc_err hc_redact_add_mask(hc_redact *r, const char *path, hc_error *err);

/*
 * Redacts one message: learns its ids, applies the masks to its payload, then replaces every
 * known id in topic and payload. *out is *in with topic and payload pointing into buffers owned
 * by r, valid until the next call or hc_redact_free.
 */
hc_err hc_redact_message(hc_redact *r, const struct hc_msg *in, struct hc_msg *out, hc_error *err);

/*
 * Replaces every known id in a NUL-terminated text (meta values, selections). *out is a new
 * string (free()).
 */
hc_err hc_redact_text(hc_redact *r, const char *text, char **out, hc_error *err);

#ifdef __cplusplus
}
#endif
#endif

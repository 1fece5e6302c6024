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
 * The rule. An id is replaced wherever it stands as a whole: a whole JSON string value, a whole
 * member name, a whole topic level, or a whole text token (a run of letters, digits, '-', '_',
 * '%' and '.', trailing dots excluded) inside a string, a non-JSON payload, a meta value or the
 * note. Never a part of a number or of another token: {"value":81234567} and "51.1234567Z" stay.
 * An id is known in all its forms: JSON escapes are decoded first ("dev\u002d1"), and ids are
 * compared in a canonical form (percent-decoded, ASCII lower case, 32 hex digits read as a UUID
 * with hyphens), so the upper-case, hyphen-less and percent-encoded forms of an id, and a Wirepas
 * topic written with escaped slashes, give the same pseudonym.
 * The ids are:
 *   - the id levels of topics: haltian-iot/events/{integration}/{api-key}/{kind}/{type}/{device}
 *     and cloudext/json/{env}/{country}/{group}/{tuid}/{tsmId} (also of subscription filters);
 *   - the string value of every member whose name is "id" (any case) or ends in "Id", "ID",
 *     "_id", "-id", "uid", "Uid", "uuid" or "UUID" (gatewayId, gateway_id, sourceDeviceId,
 *     tsmTuid, space_id...), and of "tsmGw";
 *   - the gateway id and network address of a Wirepas topic in any string ("mqtt_topic");
 *   - ids the meta names (hc_redact_learn_meta: api_key_id, integration_id, username,
 *     filter_devices, the subscriptions' filters);
 *   - anything shaped like an id even when never learnt: a UUID in any of its forms, and a
 *     Thingsee id ("TS" and 6 to 18 letters and digits, at least one a digit).
 * Learn from all messages first (hc_redact_learn) when payloads may mention ids that only appear
 * later in topics. A known id shorter than HC_REDACT_MIN_ID_LEN bytes is replaced only as an id
 * level of a topic or an id member's value, since short tokens such as "21" are everywhere.
 *
 * Masks blank JSON members by dotted path ("value.space_id"): the member's value becomes null,
 * so the shape stays visible and a consumer can tell "hidden" from "never sent". Every member
 * of that name is blanked, duplicates included (readers differ on which twin wins). A path
 * descends into every element of an array it meets (Thingsee array payloads). Payloads are
 * never re-serialised: every byte that is not replaced or blanked, numbers included, stays as
 * it was.
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

/*
 * Writes the pseudonym of id (id_len bytes, any of its forms: the canonical form is what is
 * keyed) and a NUL into out (HC_REDACT_PSEUDONYM_LEN + 1).
 */
void hc_redact_pseudonym(const hc_redact *r, const char *id, size_t id_len, char *out);

/* Registers one id to replace (empty ids are ignored). */
hc_err hc_redact_add_id(hc_redact *r, const char *id, size_t id_len, hc_error *err);

/* Learns the ids of one message (its topic's id levels and its payload's id members). */
hc_err hc_redact_learn(hc_redact *r, const char *topic, const unsigned char *payload,
                       size_t payload_len, hc_error *err);

/* Learns the id levels of a topic filter; "+" and "#" levels are skipped. */
hc_err hc_redact_learn_filter(hc_redact *r, const char *filter, hc_error *err);

/*
 * Learns the ids one meta entry of a recording names: "api_key_id", "integration_id" and
 * "username" are ids; "filter_devices" is a JSON list of ids; "subscriptions" is a JSON list of
 * {"filter": ...} objects (or of filter strings, or one filter). Other keys teach nothing (their
 * values are still redacted by hc_redact_text).
 */
hc_err hc_redact_learn_meta(hc_redact *r, const char *key, const char *value, hc_error *err);

/* Number of distinct ids learnt so far. */
size_t hc_redact_id_count(const hc_redact *r);

/* Adds a mask: a dotted path of member names, e.g. "value.position_global". */
hc_err hc_redact_add_mask(hc_redact *r, const char *path, hc_error *err);

/*
 * Redacts one message: learns its ids, then in one pass over the payload blanks masked members
 * and replaces ids (see the rule above), and replaces the ids among the topic's levels. *out is *in
 * with topic and payload pointing into buffers owned by r, valid until the next call or
 * hc_redact_free.
 */
hc_err hc_redact_message(hc_redact *r, const struct hc_msg *in, struct hc_msg *out, hc_error *err);

/*
 * Replaces every known or id-shaped text token in a NUL-terminated text (meta values, the note,
 * selections). *out is a new
 * string (free()).
 */
hc_err hc_redact_text(hc_redact *r, const char *text, char **out, hc_error *err);

#ifdef __cplusplus
}
#endif
#endif

/*
 * A fast, exact compact JSON printer for cJSON trees (what the tools use to print decoder output).
 *
 * cJSON_PrintUnformatted allocates per call and prints every non-integer number with "%1.15g"
 * and re-reads it with sscanf, which dominates the cost of printing a decoded message. This
 * printer writes into a caller-owned buffer that is reused from call to call (no allocation once
 * it is large enough), prints integral numbers below 2^53 with a hand-rolled conversion and other
 * numbers in a short form that reads back as the identical double. The output is the same
 * compact JSON cJSON_PrintUnformatted gives, except where cJSON is not exact:
 *   - every finite number reads back (strtod, cJSON_Parse) as exactly the same double, -0 included
 *     (cJSON prints -0.0 as "0" and integers beyond INT_MAX through "%1.15g");
 *   - NaN and the infinities are written as null, as cJSON does.
 * Strings escape '"', '\\' and bytes below 0x20 (\b \f \n \r \t, else \u00XX); well-formed
 * UTF-8 passes through, and every byte that is not part of well-formed UTF-8 is written as
 * \u00XX (its Latin-1 reading), so the output is valid JSON whatever a string held. Raw items (cJSON_Raw) are copied verbatim. Nesting is
 * walked without recursion, so any depth a tree can have is printed without growing the C stack.
 */
#ifndef HCORE_JSONOUT_H
#define HCORE_JSONOUT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "hcore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Caller-owned printer state: the output text and the walk's stack of open containers. Keep one
 * per thread and reuse it; release it once at the end. data and len are the public result; the
 * other fields are private.
 */
struct hc_jsonout {
    char *data; /* output, NUL-terminated after a successful call; NULL before the first */
    size_t len; /* bytes in data, without the NUL */
    size_t cap;
    const cJSON **stack;
    size_t stack_cap;
};

#define HC_JSONOUT_INIT                                                                            \
    {                                                                                              \
        NULL, 0, 0, NULL, 0                                                                        \
    }

/* Longest text hc_jsonout_format_number writes, NUL included. */
#define HC_JSONOUT_NUMBER_MAX 32

/* Zeroes out (same as HC_JSONOUT_INIT). */
void hc_jsonout_init(struct hc_jsonout *out);

/* Frees what out holds and zeroes it; accepts NULL and an initialised, never-used out. */
void hc_jsonout_release(struct hc_jsonout *out);

/*
 * Replaces out->data with the compact JSON text of item (only item, not its siblings). The text
 * stays valid, owned by out, until the next call on out or hc_jsonout_release. Returns HC_OK,
 * HC_ERR_INVALID (NULL out or item, an item of no known type, a raw item without text) or
 * HC_ERR_NOMEM; on failure out->len is 0 and out->data (when not NULL) is "".
 */
hc_err hc_jsonout_print(struct hc_jsonout *out, const cJSON *item, hc_error *err);

/*
 * As hc_jsonout_print, but appends to what out already holds (to print several values into one
 * line). On failure out->len and data are back to what they were before the call.
 */
hc_err hc_jsonout_append(struct hc_jsonout *out, const cJSON *item, hc_error *err);

/*
 * Writes the JSON text of one number to dst (HC_JSONOUT_NUMBER_MAX bytes, NUL-terminated) and
 * returns its length: "null" for NaN and infinities; an integer for integral values below 2^53 in
 * magnitude ("-0" for negative zero); otherwise text that strtod reads back as exactly d: the
 * plain decimal with the fewest fraction digits (up to 17) when |d| >= 1e-4 and one exists,
 * else the first of "%.15g", "%.16g", "%.17g" that reads back exactly. Independent of the C
 * locale.
 */
size_t hc_jsonout_format_number(double d, char *dst);

#ifdef __cplusplus
}
#endif
#endif

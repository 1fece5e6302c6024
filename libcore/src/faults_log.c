/*
 * The fault log line (hc_faults_event_json): one JSON object per fault applied, what
 * hreplay --fault-log writes and hverify names in its differences.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/faults.h"
#include "internal.h"

char *hc_faults_event_json(const struct hc_faults_event *ev)
{
    const struct hc_faults_out *o = ev->out;
    struct hc__buf b = HC__BUF_INIT;

    hc__buf_addf(&b, "{\"seq\":%" PRIu64 ",\"kind\":\"%s\"", o->seq, hc_faults_kind_name(ev->kind));
    hc__buf_addstr(&b, ",\"topic\":");
    hc__buf_add_json_string(&b, (const unsigned char *)(ev->topic ? ev->topic : o->msg.topic),
                            strlen(ev->topic ? ev->topic : o->msg.topic));
    switch (ev->kind) {
    case HC_FAULT_DROP:
        hc__buf_addf(&b, ",\"in_burst\":%s", o->in_burst ? "true" : "false");
        break;
    case HC_FAULT_DUP:
        hc__buf_addf(&b, ",\"after\":%ld", o->dup_after);
        break;
    case HC_FAULT_REORDER:
        hc__buf_addf(&b, ",\"window\":%ld", o->window);
        if (o->partner_seq)
            hc__buf_addf(&b, ",\"with\":%" PRIu64, o->partner_seq);
        else
            hc__buf_addf(&b, ",\"with\":null");
        break;
    case HC_FAULT_DELAY:
        hc__buf_addf(&b, ",\"by_ns\":%" PRId64, o->delay_ns);
        break;
    case HC_FAULT_STALE:
        hc__buf_addf(&b, ",\"by_ns\":%" PRId64, o->stale_ns);
        break;
    case HC_FAULT_FUTURE:
        hc__buf_addf(&b, ",\"by_ns\":%" PRId64, o->future_ns);
        break;
    case HC_FAULT_SKEW:
        hc__buf_addf(&b, ",\"offset_ns\":%" PRId64, o->skew_ns);
        break;
    case HC_FAULT_CORRUPT:
        hc__buf_addf(&b, ",\"how\":\"%s\"", hc_faults_corruption_name(o->corruption));
        break;
    case HC_FAULT_DISCONNECT:
        hc__buf_addf(&b, ",\"lost\":%s", ev->lost ? "true" : "false");
        break;
    case HC_FAULT_BACKLOG:
        hc__buf_addf(&b, ",\"hold_ns\":%" PRId64 ",\"from\":%" PRIu64, o->hold_ns, o->backlog_from);
        break;
    default:
        break;
    }
    if (ev->position)
        hc__buf_addf(&b, ",\"position\":%" PRIu64, ev->position);
    else
        hc__buf_addf(&b, ",\"position\":null");
    if (ev->kind == HC_FAULT_REDELIVER)
        hc__buf_addf(&b, ",\"position2\":%" PRIu64, ev->position2);
    if (ev->kind == HC_FAULT_STALE || ev->kind == HC_FAULT_FUTURE || ev->kind == HC_FAULT_SKEW) {
        hc__buf_addf(&b, ",\"field\":\"%s\",\"before\":\"%s\",\"after\":\"%s\",\"changed\":%d",
                  o->time_field, o->time_before, o->time_after, o->times_changed);
    }
    /* the bytes sent where they changed; a copy's too, as the other faults may have changed
     * the original's */
    if (ev->kind == HC_FAULT_STALE || ev->kind == HC_FAULT_FUTURE || ev->kind == HC_FAULT_SKEW ||
        ev->kind == HC_FAULT_CORRUPT || ev->kind == HC_FAULT_DUP) {
        hc__buf_addf(&b, ",\"length_before\":%zu,\"payload_hex\":\"", o->original_len);
        for (size_t i = 0; i < o->msg.payload_len; i++)
            hc__buf_addf(&b, "%02x", o->msg.payload[i]);
        hc__buf_add(&b, "\"", 1);
    }
    hc__buf_add(&b, "}", 1);
    if (b.failed) {
        hc__buf_release(&b);
        return NULL;
    }
    return (char *)b.data;
}

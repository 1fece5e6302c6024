/*
 * One MQTT message as hkit sees it: what arrived, when, and where it sits in a recording.
 */
#ifndef HCORE_MSG_H
#define HCORE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A value struct. Pointers are borrowed: whoever filled the struct owns the bytes (a cursor keeps
 * them valid until its next call). The payload is arbitrary bytes (binary, empty, NUL bytes,
 * invalid UTF-8); payload may be NULL when payload_len is 0.
 */
struct hc_msg {
    int64_t seq;            /* arrival sequence in the recording, from 1; 0 when not stored */
    int64_t session_id;     /* recording session (one per connection); 0 when unknown */
    int64_t received_at_ns; /* CLOCK_REALTIME at arrival, ns since the Unix epoch */
    int64_t mono_ns;        /* CLOCK_MONOTONIC at arrival minus the session's start, ns */
    int64_t timeline_ns;    /* replay time axis: session start (realtime) + mono_ns; ns */
    const char *topic;      /* NUL-terminated MQTT topic name */
    const unsigned char *payload;
    size_t payload_len;
    int qos; /* 0, 1 or 2 */
    bool retain;
    bool dup;
};

#ifdef __cplusplus
}
#endif
#endif

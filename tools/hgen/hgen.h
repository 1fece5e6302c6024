/*
 * hgen: synthesise realistic Haltian traffic (libcore's generator) into a recording, JSON lines
 * or a live broker. The option parsing and the run are separate so unit tests can call them.
 */
#ifndef HKIT_HGEN_H
#define HKIT_HGEN_H

#include <stdbool.h>
#include <stdint.h>

#include "hcore/gen.h"
#include "hcore/mqtt.h"
#include "tool.h"

enum hgen_output { HGEN_OUT_NONE, HGEN_OUT_DB, HGEN_OUT_JSONL, HGEN_OUT_MQTT };

enum hgen_pace {
    HGEN_PACE_SPEED, /* measured_at timeline divided by speed (1: real time) */
    HGEN_PACE_RATE,  /* a fixed number of messages per second */
    HGEN_PACE_MAX    /* as fast as the broker takes them */
};

struct hgen_opts {
    struct hc_gen_options gen;
    bool start_given;
    const char *devices_text; /* as given, for the recording's meta */
    enum hgen_output output;
    const char *output_path;
    bool force;
    struct tool_mqtt mqtt;
    struct hc_mqtt_options conn; /* resolved for HGEN_OUT_MQTT */
    enum hgen_pace pace;
    double speed;
    double rate;
    long qos;
    int64_t count; /* 0: no limit */
    bool quiet;
};

/* Counts of one run, for the summary. */
struct hgen_summary {
    int64_t messages;
    int64_t first_measured_ns, last_measured_ns;
    int64_t per_kind[HC_GEN_KIND__COUNT];
    const char *type_names[64];
    int64_t per_type[64];
    int n_types;
    double elapsed_s;
    bool interrupted;
};

/* Parses argv into o (zeroed first). OPTS_OK, OPTS_HELP (usage printed) or OPTS_ERROR. */
enum opts_result hgen_parse(int argc, char **argv, struct hgen_opts *o);

/* Releases what parsing resolved (the token). */
void hgen_opts_release(struct hgen_opts *o);

/* Generates and writes/publishes. sum is filled even on failure (what was done). */
hc_err hgen_run(struct hgen_opts *o, struct hgen_summary *sum, hc_error *err);

/* The summary on stderr (unless --quiet). */
void hgen_report(const struct hgen_opts *o, const struct hgen_summary *sum);

#endif

/*
 * What the summary's two files share: the summary's counters in memory and the helpers that
 * fill them. store_summary.c counts messages into them and reads them out (totals, groups,
 * minutes, topics); store_summary_tables.c keeps them in the summary tables of a recording
 * (schema, fold, upgrade, load, scan). Internal to libcore; not part of the public API.
 */
#ifndef HCORE_STORE_SUMMARY_INTERNAL_H
#define HCORE_STORE_SUMMARY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcore/store.h"

/* Payload sizes: exact below this, then 64 classes per doubling. */
#define SIZE_EXACT 1024

/* --- counters keyed by two integers ----------------------------------------------------------- */

struct acc_val {
    int64_t messages, bytes;
    int64_t first, last; /* received_at_ns min and max; sizes: min and max length */
};

struct acc_slot {
    int64_t a, b;
    bool used;
    struct acc_val v;
};

struct acc_map {
    struct acc_slot *slots;
    size_t cap, n; /* cap: a power of two, or 0 */
    size_t last;   /* slot of the last hit: consecutive rows often share a key */
};

/* The counters of (a, b), zeroed on first sight; NULL when out of memory. */
struct acc_val *hc__acc_get(struct acc_map *m, int64_t a, int64_t b);

/* Adds messages and bytes to v, and widens its first..last to take first and last in. */
void hc__acc_count(struct acc_val *v, int64_t bytes, int64_t first, int64_t last, int64_t messages);

/* Frees m's slots; m is empty and usable again. */
void hc__acc_clear(struct acc_map *m);

/* --- interned strings (types, error codes: a few dozen) -----------------------------------------
 */

struct str_table {
    char **items;
    size_t n, cap;
};

/* The index of s in t, added on first sight; -1 when out of memory. */
int32_t hc__str_intern(struct str_table *t, const char *s);

/* --- the summary --------------------------------------------------------------------------------
 */

struct time_run {
    int64_t first_seq, last_seq, first_ns, last_ns;
};

/* One topic as a reader reports it. */
struct topic_info {
    int64_t id;
    char *name, *kind, *device_id;
};

/* The counters most rows touch, by index instead of by hash (most of the per-row cost was
 * hashing): a topic's own type by topic id, sizes below SIZE_EXACT, and the current minute of
 * each of the first DENSE_TYPES types. Moved into the maps before anything reads them. */
#define DENSE_TYPES 256
#define DENSE_TOPICS_MAX (1 << 20)
struct dense_topic {
    int32_t type_ix; /* -1: unused */
    struct acc_val v;
};

struct hc_summary {
    struct dense_topic *dense_topics;
    size_t dense_topics_cap, dense_topics_used;
    struct acc_val dense_sizes[SIZE_EXACT];
    size_t dense_sizes_used;
    int64_t minute_now[DENSE_TYPES], minute_count[DENSE_TYPES];
    struct acc_map topics;   /* (topic_id, type_ix) */
    struct acc_map minutes;  /* (minute, type_ix) */
    struct acc_map sessions; /* (session_id, 0) */
    struct acc_map sizes;    /* (size class, 0): first/last are min/max length */
    struct acc_map errors;   /* (code_ix, 0) */
    struct str_table types, codes;
    /* Runs begun or extended since the last fold; run_open: the last of them (or the table's
     * last run) may be extended by the next row. */
    struct time_run *runs;
    size_t n_runs, cap_runs;
    bool run_open;
    struct time_run run;
    int64_t rows;
    bool oom;
    /* A reader's: the selection was the whole recording, with every session; topics by id. */
    bool everything;
    int64_t all_sessions;
    struct topic_info *topic_infos;
    size_t n_topic_infos;
};

/* Moves the dense counters into the maps (s->oom when out of memory). */
void hc__summary_flush_dense(struct hc_summary *s);

/* Forgets the counts (not the interned strings, which topic cache entries refer to). */
void hc__summary_reset_counts(struct hc_summary *s);

#endif

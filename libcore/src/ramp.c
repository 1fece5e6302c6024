/*
 * Load ramps (see hcore/ramp.h): the backlog slope, the verdict of a step and who limited it,
 * and the matcher that pairs a consumer's outputs with the inputs that caused them.
 *
 * The matcher keeps every input's send time in an array (position matching) and the keyed
 * inputs not yet matched in a chained hash table; a chain keeps insertion order, so equal keys
 * are matched oldest first.
 */
#include "hcore/ramp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/replay.h"

double hc_ramp_slope(const double *x, const double *y, size_t n)
{
    double mx = 0, my = 0, sxx = 0, sxy = 0;

    if (n < 2)
        return 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    return sxx > 0 ? sxy / sxx : 0;
}

static double slope_noise(double target_rate)
{
    double noise = HC_RAMP_SLOPE_NOISE * target_rate;
    return noise > HC_RAMP_SLOPE_NOISE_MIN ? noise : HC_RAMP_SLOPE_NOISE_MIN;
}

enum hc_ramp_verdict hc_ramp_judge(const struct hc_ramp_figures *f, enum hc_ramp_limit *limit,
                                   char *why, size_t size)
{
    char scratch[8];
    double noise = slope_noise(f->target_rate);
    bool growing =
        f->backlog_slope > noise && f->backlog_end > HC_RAMP_BACKLOG_MIN_S * f->target_rate;

    if (!why) {
        why = scratch;
        size = sizeof(scratch);
    }
    why[0] = '\0';
    /* a slow generator is never blamed on the consumer: this is checked first */
    if (f->input_rate < HC_RAMP_RATE_REACHED * f->target_rate) {
        bool busy = f->generator_busy < 0 || f->generator_busy >= HC_RAMP_GENERATOR_BUSY;
        *limit = busy ? HC_RAMP_LIMIT_GENERATOR : HC_RAMP_LIMIT_BROKER;
        if (f->generator_busy < 0)
            snprintf(why, size, "sent %.0f of %.0f msg/s", f->input_rate, f->target_rate);
        else
            snprintf(why, size, "sent %.0f of %.0f msg/s; hreplay busy %.0f%% of the step (%s)",
                     f->input_rate, f->target_rate, 100 * f->generator_busy,
                     busy ? "it could not go faster" : "it waited on the broker");
        return HC_RAMP_RATE_NOT_REACHED;
    }
    if (f->observer_lag > HC_RAMP_BACKLOG_MIN_S * f->target_rate) {
        *limit = HC_RAMP_LIMIT_GENERATOR;
        snprintf(why, size, "hreplay had not read %.0f outputs yet: it observes too slowly",
                 f->observer_lag);
        return HC_RAMP_NOT_OBSERVED;
    }
    if (f->broker_known && f->dropped_delta > 0) {
        *limit = f->stored_delta > 0 || growing ? HC_RAMP_LIMIT_CONSUMER : HC_RAMP_LIMIT_BROKER;
        snprintf(why, size, "the broker dropped %lld messages (store %+lld)",
                 (long long)f->dropped_delta, (long long)f->stored_delta);
        return HC_RAMP_DROPPING;
    }
    if (growing) {
        *limit = HC_RAMP_LIMIT_CONSUMER;
        snprintf(why, size, "backlog grows %.1f msg/s (noise %.1f), %.0f at the end",
                 f->backlog_slope, noise, f->backlog_end);
        return HC_RAMP_FALLING_BEHIND;
    }
    if (f->slo_ns > 0 && f->latency_known && f->latency_p99_ns > f->slo_ns) {
        *limit = HC_RAMP_LIMIT_CONSUMER;
        snprintf(why, size, "latency p99 %.1f ms over the SLO %.1f ms",
                 (double)f->latency_p99_ns / 1e6, (double)f->slo_ns / 1e6);
        return HC_RAMP_FALLING_BEHIND;
    }
    *limit = HC_RAMP_LIMIT_NONE;
    snprintf(why, size, "backlog slope %.1f msg/s (noise %.1f)", f->backlog_slope, noise);
    return HC_RAMP_KEPT_UP;
}

const char *hc_ramp_verdict_name(enum hc_ramp_verdict v)
{
    static const char *const names[] = {"kept up", "falling behind", "dropping", "rate not reached",
                                        "not observed"};
    return (size_t)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

const char *hc_ramp_limit_name(enum hc_ramp_limit l)
{
    static const char *const names[] = {"none", "consumer", "broker", "generator"};
    return (size_t)l < sizeof(names) / sizeof(names[0]) ? names[l] : "?";
}

/* --- the matcher --------------------------------------------------------------------------- */

struct node {
    struct node *next;
    uint64_t hash;
    int64_t sent_ns;
    size_t key_len;
    char key[];
};

struct hc_ramp_match {
    int64_t *sent; /* every input's send time, in order */
    size_t n_sent, cap_sent;
    struct node **heads, **tails;
    size_t n_buckets; /* a power of two */
    size_t n_keyed;   /* nodes in the table */
};

hc_err hc_ramp_match_new(hc_ramp_match **out, hc_error *err)
{
    hc_ramp_match *m = calloc(1, sizeof(*m));

    *out = NULL;
    if (m) {
        m->n_buckets = 1024;
        m->heads = calloc(m->n_buckets, sizeof(*m->heads));
        m->tails = calloc(m->n_buckets, sizeof(*m->tails));
    }
    if (!m || !m->heads || !m->tails) {
        hc_ramp_match_free(m);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    *out = m;
    return HC_OK;
}

void hc_ramp_match_free(hc_ramp_match *m)
{
    if (!m)
        return;
    for (size_t b = 0; m->heads && b < m->n_buckets; b++) {
        struct node *n = m->heads[b];
        while (n) {
            struct node *next = n->next;
            free(n);
            n = next;
        }
    }
    free(m->heads);
    free(m->tails);
    free(m->sent);
    free(m);
}

static void append(struct node **heads, struct node **tails, size_t b, struct node *n)
{
    n->next = NULL;
    if (tails[b])
        tails[b]->next = n;
    else
        heads[b] = n;
    tails[b] = n;
}

/* Doubles the table; chains are walked in order, so equal keys keep their order. */
static bool grow(hc_ramp_match *m)
{
    size_t nb = m->n_buckets * 2;
    struct node **heads = calloc(nb, sizeof(*heads)), **tails = calloc(nb, sizeof(*tails));

    if (!heads || !tails) {
        free(heads);
        free(tails);
        return false;
    }
    for (size_t b = 0; b < m->n_buckets; b++) {
        struct node *n = m->heads[b];
        while (n) {
            struct node *next = n->next;
            append(heads, tails, (size_t)(n->hash & (nb - 1)), n);
            n = next;
        }
    }
    free(m->heads);
    free(m->tails);
    m->heads = heads;
    m->tails = tails;
    m->n_buckets = nb;
    return true;
}

hc_err hc_ramp_match_input(hc_ramp_match *m, const char *key, size_t key_len, int64_t sent_ns,
                           hc_error *err)
{
    struct node *n;

    if (m->n_sent == m->cap_sent) {
        size_t cap = m->cap_sent ? m->cap_sent * 2 : 4096;
        int64_t *p = realloc(m->sent, cap * sizeof(*p));
        if (!p)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        m->sent = p;
        m->cap_sent = cap;
    }
    m->sent[m->n_sent++] = sent_ns;
    if (!key)
        return HC_OK;
    if (m->n_keyed >= 2 * m->n_buckets && !grow(m))
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    n = malloc(sizeof(*n) + key_len);
    if (!n)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    n->hash = hc_replay_hash(key, key_len);
    n->sent_ns = sent_ns;
    n->key_len = key_len;
    memcpy(n->key, key, key_len);
    append(m->heads, m->tails, (size_t)(n->hash & (m->n_buckets - 1)), n);
    m->n_keyed++;
    return HC_OK;
}

bool hc_ramp_match_by_key(hc_ramp_match *m, const char *key, size_t key_len, int64_t *sent_ns)
{
    uint64_t h = hc_replay_hash(key, key_len);
    size_t b = (size_t)(h & (m->n_buckets - 1));
    struct node *prev = NULL;

    for (struct node *n = m->heads[b]; n; prev = n, n = n->next) {
        if (n->hash != h || n->key_len != key_len || memcmp(n->key, key, key_len) != 0)
            continue;
        *sent_ns = n->sent_ns;
        if (prev)
            prev->next = n->next;
        else
            m->heads[b] = n->next;
        if (m->tails[b] == n)
            m->tails[b] = prev;
        free(n);
        m->n_keyed--;
        return true;
    }
    return false;
}

bool hc_ramp_match_by_position(const hc_ramp_match *m, uint64_t n, int64_t *sent_ns)
{
    if (n >= m->n_sent)
        return false;
    *sent_ns = m->sent[n];
    return true;
}

uint64_t hc_ramp_match_inputs(const hc_ramp_match *m)
{
    return m->n_sent;
}

uint64_t hc_ramp_match_unmatched(const hc_ramp_match *m)
{
    return m->n_keyed;
}

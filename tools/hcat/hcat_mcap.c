/*
 * hcat --format mcap -o FILE: the merged stream as MCAP through libcore's writer. One channel
 * per topic with message_encoding json for payloads that are JSON text; a payload that is not
 * (binary, invalid UTF-8, not JSON) goes byte for byte to a second channel of the same topic
 * with message_encoding x-hkit-bytes, so viewers decode every json channel and can still show
 * the rest raw. log_time is the arrival time (received_at), publish_time the payload's
 * measured_at as the decoder reads it (the arrival time when it has none), sequence counts
 * per channel from 1. The meta of the recordings among the inputs goes into one Metadata
 * record named "hkit" (the first input's value wins, as for -o), with how the file was made.
 */
#include "hcat.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/decode.h"
#include "hcore/mcap.h"
#include "hcore/store.h"
#include "hcore/text.h"
#include "hcore/timefmt.h"

#ifndef HKIT_VERSION
#define HKIT_VERSION "unknown"
#endif

#define JSON_MAX_DEPTH 1000

struct mcap_sink {
    struct hcat_sink base;
    const struct hcat_opts *o;
    char *tmp;
    FILE *f;
    hc_mcap_writer *w;
    uint32_t *sequences; /* per channel id */
    size_t n_sequences;
};

static uint64_t clamp_time(int64_t ns)
{
    return ns < 0 ? 0 : (uint64_t)ns;
}

static bool is_json(const struct hc_msg *m)
{
    return m->payload_len && hc_text_is_json_safe_utf8(m->payload, m->payload_len) &&
           hc_json_validate((const char *)m->payload, m->payload_len, JSON_MAX_DEPTH, NULL) ==
               HC_OK;
}

static hc_err mcap_add(struct hcat_sink *base, const struct hc_msg *m, hc_error *err)
{
    struct mcap_sink *s = (struct mcap_sink *)base;
    struct hc_decode_index idx;
    uint64_t log_time = clamp_time(m->received_at_ns), publish_time = log_time;
    uint16_t id;
    hc_err rc;

    rc = hc_mcap_channel(s->w, m->topic, is_json(m) ? "json" : "x-hkit-bytes", NULL, NULL, 0, &id,
                         err);
    if (rc != HC_OK)
        return rc;
    if (id >= s->n_sequences) {
        size_t n = s->n_sequences ? s->n_sequences * 2 : 256;
        uint32_t *grown;
        while (n <= id)
            n *= 2;
        grown = realloc(s->sequences, n * sizeof(*grown));
        if (!grown)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        memset(grown + s->n_sequences, 0, (n - s->n_sequences) * sizeof(*grown));
        s->sequences = grown;
        s->n_sequences = n;
    }
    hc_decode_index(m->topic, m->payload, m->payload_len, &idx);
    if (idx.has_measured_at && idx.measured_at_ms >= 0 && idx.measured_at_ms <= INT64_MAX / 1000000)
        publish_time = (uint64_t)idx.measured_at_ms * 1000000u;
    return hc_mcap_write_message(s->w, id, ++s->sequences[id], log_time, publish_time, m->payload,
                                 m->payload_len, err);
}

struct meta_list {
    char **keys, **values;
    size_t n, cap;
    bool failed;
};

static void meta_put(struct meta_list *l, const char *key, const char *value)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->keys[i], key) == 0)
            return; /* the first input's value wins */
    if (!hc_text_is_json_safe_utf8((const unsigned char *)value, strlen(value)))
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **k = realloc(l->keys, cap * sizeof(*k));
        char **v = k ? realloc(l->values, cap * sizeof(*v)) : NULL;
        if (k)
            l->keys = k;
        if (v)
            l->values = v;
        if (!k || !v) {
            l->failed = true;
            return;
        }
        l->cap = cap;
    }
    l->keys[l->n] = strdup(key);
    l->values[l->n] = strdup(value);
    if (!l->keys[l->n] || !l->values[l->n]) {
        free(l->keys[l->n]);
        free(l->values[l->n]);
        l->failed = true;
        return;
    }
    l->n++;
}

static int meta_one(const char *key, const char *value, void *user)
{
    meta_put(user, key, value);
    return 0;
}

static hc_err mcap_finish(struct hcat_sink *base, const char *const *recordings, size_t n,
                          bool interrupted, hc_error *err)
{
    struct mcap_sink *s = (struct mcap_sink *)base;
    struct meta_list meta = {0};
    char when[40];
    hc_err rc = HC_OK;

    for (size_t i = 0; i < n && rc == HC_OK; i++) {
        hc_store *st = NULL;
        rc = hc_store_open(recordings[i], HC_STORE_READ, &st, err);
        if (rc == HC_OK)
            rc = hc_store_meta_each(st, meta_one, &meta, err);
        hc_store_close(st, NULL);
    }
    hc_time_format_rfc3339(hc_time_realtime_ns(), 3, when, sizeof(when));
    meta_put(&meta, "mcap_by", "hcat " HKIT_VERSION);
    meta_put(&meta, "mcap_at", when);
    if (s->o->selection_text[0])
        meta_put(&meta, "mcap_selection", s->o->selection_text);
    if (interrupted)
        meta_put(&meta, "mcap_interrupted", "yes: the file ends where hcat was stopped");
    if (rc == HC_OK && meta.failed)
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (rc == HC_OK)
        rc = hc_mcap_write_metadata(s->w, "hkit", (const char *const *)meta.keys,
                                    (const char *const *)meta.values, meta.n, err);
    for (size_t i = 0; i < meta.n; i++) {
        free(meta.keys[i]);
        free(meta.values[i]);
    }
    free(meta.keys);
    free(meta.values);
    if (rc == HC_OK) {
        rc = hc_mcap_writer_close(s->w, err);
        s->w = NULL;
    }
    if (rc == HC_OK) {
        rc = hcat_output_commit(s->o->output, s->tmp, s->f, err);
        s->tmp = NULL;
        s->f = NULL;
    }
    if (rc != HC_OK && !strstr(err ? err->message : "", s->o->output))
        hc_error_prefix(err, "cannot write '%s'", s->o->output);
    return rc;
}

static void mcap_free(struct hcat_sink *base)
{
    struct mcap_sink *s = (struct mcap_sink *)base;
    hc_mcap_writer_free(s->w);
    hcat_output_abandon(s->tmp, s->f);
    free(s->sequences);
    free(s);
}

hc_err hcat_mcap_sink_new(const struct hcat_opts *o, struct hcat_sink **out, hc_error *err)
{
    struct mcap_sink *s = calloc(1, sizeof(*s));
    struct hc_mcap_options mo = {.library = "hkit " HKIT_VERSION " (hcat)"};
    hc_err rc;

    *out = NULL;
    if (!s)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    s->base.add = mcap_add;
    s->base.finish = mcap_finish;
    s->base.free = mcap_free;
    s->o = o;
    rc = hcat_output_begin(o->output, o->force, &s->tmp, &s->f, err);
    if (rc == HC_OK)
        rc = hc_mcap_writer_open(s->f, &mo, &s->w, err);
    if (rc != HC_OK) {
        mcap_free(&s->base);
        return rc;
    }
    *out = &s->base;
    return HC_OK;
}

/*
 * The capture loop. One thread: paho's synchronous client hands over one message at a time,
 * the arrival times are taken at once, and the store batches rows into transactions committed
 * at least every --flush-ms (an idle stream is flushed from the receive timeout). Each
 * connection is one session; a lost connection ends it, and reconnection (backoff with jitter,
 * interruptible) begins the next, so an outage is visible in the recording as the gap between
 * two sessions. Nothing here allocates per message beyond what paho does.
 */
#include "hrecord.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "hcore/decode.h"
#include "hcore/store.h"
#include "hcore/timefmt.h"

#ifndef HKIT_VERSION
#define HKIT_VERSION "unknown"
#endif

#define RECEIVE_TIMEOUT_MS 50 /* how late an idle batch, a signal or --duration is noticed */
#define STATUS_INTERVAL_NS 500000000LL
#define BACKOFF_SLICE_NS 50000000LL /* sleeping in slices keeps the backoff interruptible */
#define BACKOFF_RESET_NS 10000000000LL

/* --- filters and backoff (pure, unit-tested) ------------------------------------------------- */

static bool segment_ok(const char *s)
{
    return s && *s && !strpbrk(s, "/+#");
}

static bool list_has(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

hc_err hrecord_build_filters(const char *integration_id, const char *api_key_id,
                             const char *const *kinds, size_t n_kinds, const char *const *types,
                             size_t n_types, const char *const *devices, size_t n_devices,
                             size_t max, char ***out, size_t *n_out, hc_error *err)
{
    const char *type_names[2 * HRECORD_MAX_ARGS];
    const char *any = NULL;
    size_t n_names = 0, total, k, t, d, n = 0;
    char **filters = NULL;
    hc_err rc = HC_OK;

    *out = NULL;
    *n_out = 0;
    if (!segment_ok(integration_id) || !segment_ok(api_key_id))
        return hc_error_set(err, HC_ERR_INVALID,
                            "integration id and API key id must be non-empty and contain no "
                            "'/', '+' or '#'");
    if (n_kinds > HRECORD_MAX_ARGS || n_types > HRECORD_MAX_ARGS || n_devices > HRECORD_MAX_ARGS)
        return hc_error_set(err, HC_ERR_INVALID, "too many --kind/--type/--device values");
    for (size_t i = 0; i < n_kinds; i++)
        if (!segment_ok(kinds[i]))
            return hc_error_set(err, HC_ERR_INVALID,
                                "invalid value '%s' for --kind: must be one topic level "
                                "(non-empty, no '/', '+' or '#')",
                                kinds[i]);
    for (size_t i = 0; i < n_devices; i++)
        if (!segment_ok(devices[i]))
            return hc_error_set(err, HC_ERR_INVALID,
                                "invalid value '%s' for --device: must be one topic level "
                                "(non-empty, no '/', '+' or '#')",
                                devices[i]);
    for (size_t i = 0; i < n_types; i++) {
        const char *canonical;
        if (!segment_ok(types[i]))
            return hc_error_set(err, HC_ERR_INVALID,
                                "invalid value '%s' for --type: must be one topic level "
                                "(non-empty, no '/', '+' or '#')",
                                types[i]);
        /* Haltian's topics use camelCase, but older pages show aliases: subscribe both. */
        canonical = hc_decode_canonical_type(types[i]);
        if (canonical && !list_has(type_names, n_names, canonical))
            type_names[n_names++] = canonical;
        if (!list_has(type_names, n_names, types[i]))
            type_names[n_names++] = types[i];
    }

    total = (n_kinds ? n_kinds : 1) * (n_names ? n_names : 1) * (n_devices ? n_devices : 1);
    if (total > max)
        return hc_error_set(err, HC_ERR_INVALID,
                            "--kind/--type/--device combine into %zu filters; at most %zu are "
                            "allowed",
                            total, max);
    filters = calloc(total, sizeof(char *));
    if (!filters)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    for (k = 0; k < (n_kinds ? n_kinds : 1); k++) {
        for (t = 0; t < (n_names ? n_names : 1); t++) {
            for (d = 0; d < (n_devices ? n_devices : 1); d++) {
                const char *level[3] = {n_kinds ? kinds[k] : any, n_names ? type_names[t] : any,
                                        n_devices ? devices[d] : any};
                char buf[1024];
                size_t last = 3, len;
                /* Trailing unspecified levels fold into one '#': it also matches 6-level
                 * topics such as notifications/deviceOffline, which have no device level. */
                while (last > 0 && !level[last - 1])
                    last--;
                len = (size_t)snprintf(buf, sizeof(buf), "haltian-iot/events/%s/%s", integration_id,
                                       api_key_id);
                for (size_t i = 0; i < last && len < sizeof(buf); i++)
                    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "/%s",
                                            level[i] ? level[i] : "+");
                if (last < 3 && len < sizeof(buf))
                    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "/#");
                if (len >= sizeof(buf)) {
                    rc = hc_error_set(err, HC_ERR_INVALID, "topic filter too long");
                    goto fail;
                }
                filters[n] = strdup(buf);
                if (!filters[n]) {
                    rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                n++;
            }
        }
    }
    *out = filters;
    *n_out = n;
    return HC_OK;
fail:
    for (size_t i = 0; i < n; i++)
        free(filters[i]);
    free(filters);
    return rc;
}

int64_t hrecord_backoff_ns(int64_t min_ns, int64_t max_ns, unsigned attempt, double jitter01)
{
    double delay = (double)min_ns;

    for (unsigned i = 0; i < attempt && delay < (double)max_ns; i++)
        delay *= 2;
    if (delay > (double)max_ns)
        delay = (double)max_ns;
    if (!(jitter01 >= 0))
        jitter01 = 0;
    if (jitter01 > 1)
        jitter01 = 1;
    /* "Equal jitter": never less than half the step, so retries still back off, but many
     * clients cut off together do not come back in lockstep; and never less than
     * --reconnect-min, which promises the shortest wait (so the first retry has no jitter). */
    delay *= 0.5 + 0.5 * jitter01;
    return delay < (double)min_ns ? min_ns : (int64_t)delay;
}

void hrecord_output_variant(const char *base, unsigned attempt, char *buf, size_t size)
{
    size_t len = strlen(base);

    if (attempt <= 1 || len < 3 || strcmp(base + len - 3, ".db") != 0)
        snprintf(buf, size, "%s", base);
    else
        snprintf(buf, size, "%.*s-%u.db", (int)(len - 3), base, attempt);
}

int hrecord_receive_timeout_ms(int64_t due_in_ns)
{
    int64_t ms;

    if (due_in_ns >= (int64_t)RECEIVE_TIMEOUT_MS * 1000000)
        return RECEIVE_TIMEOUT_MS;
    ms = (due_in_ns + 999999) / 1000000; /* wake at the deadline, not before it */
    return ms < 1 ? 1 : (int)ms;
}

/* --- the run --------------------------------------------------------------------------------- */

#define OUTPUT_VARIANTS_MAX 100

enum loop_end { END_SIGNAL, END_COUNT, END_DURATION, END_LOST, END_STORE_FAILED };

struct run {
    const struct hrecord_opts *o;
    struct hrecord_summary *sum;
    hc_mqtt *m;
    hc_store *st;
    struct hc_mqtt_url url;
    int *qos, *granted;
    int64_t start_mono, deadline_mono; /* deadline 0: none */
    uint64_t rng;
    /* live status */
    bool status;
    int64_t next_status_mono, last_msg_mono, rate_mark_mono, rate_mark_messages;
    double rate;
    /* the output and reconnection policy */
    enum hc_store_mode mode;
    unsigned variant; /* of the default name, from 1 */
    unsigned flaps;   /* connections lost right after they were made, in a row */
    /* rotation (o->output_is_dir) */
    unsigned segment;             /* number of the segment being written */
    int64_t next_cut_ns;          /* CLOCK_REALTIME of the next time cut; 0: none */
    int64_t size_check_mono;      /* CLOCK_MONOTONIC of the last look at the segment's size */
    int64_t segment_messages;     /* messages written into the current segment */
    int64_t conn_real, conn_mono; /* the connection's start: its session's key in every segment */
    bool closer_running;
    pthread_t closer;
    struct closer_job *job;
    unsigned first_segment; /* the first this run writes (--append continues the numbering) */
};

/* A segment being closed beside the capture, with what comes after: manifest, --keep. */
struct closer_job {
    hc_store *st;
    int64_t session_id, ended_at_ns; /* the session to end in it (CLOCK_REALTIME) */
    const char *dir;
    unsigned newest;
    long keep;
    hc_err rc;
    hc_error err;
};

static double next_random01(struct run *r)
{
    /* xorshift64*: jitter only needs to differ between processes, not be unpredictable */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return (double)((r->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static bool deadline_passed(const struct run *r, int64_t now_mono)
{
    return r->deadline_mono && now_mono >= r->deadline_mono;
}

static void format_bytes(int64_t bytes, char *buf, size_t size)
{
    if (bytes < 10000)
        snprintf(buf, size, "%lld B", (long long)bytes);
    else if (bytes < 10000000)
        snprintf(buf, size, "%.1f kB", (double)bytes / 1e3);
    else if (bytes < 10000000000LL)
        snprintf(buf, size, "%.1f MB", (double)bytes / 1e6);
    else
        snprintf(buf, size, "%.1f GB", (double)bytes / 1e9);
}

static void show_status(struct run *r, int64_t now, bool connected)
{
    char bytes[32], since[32];
    int64_t dt = now - r->rate_mark_mono;

    r->next_status_mono = now + STATUS_INTERVAL_NS;
    if (dt > 0) {
        r->rate = (double)(r->sum->messages - r->rate_mark_messages) * 1e9 / (double)dt;
        r->rate_mark_mono = now;
        r->rate_mark_messages = r->sum->messages;
    }
    format_bytes(r->sum->bytes, bytes, sizeof(bytes));
    if (r->last_msg_mono)
        snprintf(since, sizeof(since), "%.1f s ago", (double)(now - r->last_msg_mono) / 1e9);
    else
        snprintf(since, sizeof(since), "none yet");
    tool_status("%s %lld msgs, %.0f msg/s, %s, %lld disconnects, last message %s",
                connected ? "recording:" : "reconnecting:", (long long)r->sum->messages, r->rate,
                bytes, (long long)r->sum->disconnects, since);
}

/*
 * Sleeps delay_ns in slices; false when a signal or the --duration deadline interrupted it.
 */
static bool sleep_interruptible(struct run *r, int64_t delay_ns)
{
    int64_t until = hc_time_monotonic_ns() + delay_ns;

    for (;;) {
        int64_t now = hc_time_monotonic_ns(), left = until - now;
        struct timespec ts;
        if (tool_stop_requested || deadline_passed(r, now))
            return false;
        if (left <= 0)
            return true;
        if (r->status && now >= r->next_status_mono)
            show_status(r, now, false);
        if (left > BACKOFF_SLICE_NS)
            left = BACKOFF_SLICE_NS;
        ts.tv_sec = (time_t)(left / 1000000000LL);
        ts.tv_nsec = (long)(left % 1000000000LL);
        nanosleep(&ts, NULL);
    }
}

static bool is_fatal_connect_error(hc_err rc)
{
    return rc == HC_ERR_AUTH || rc == HC_ERR_NOT_AUTHORIZED || rc == HC_ERR_TLS;
}

/*
 * Connects and subscribes. Unreachable brokers are retried with backoff, except on the very
 * first connection unless --retry-connect (a user starting hrecord against a dead broker gets
 * the reason at once). Bad credentials, TLS failures and refused subscriptions are fatal.
 * HC_ERR_INTERRUPTED when a signal or the deadline ended the wait.
 */
static hc_err connect_and_subscribe(struct run *r, bool first, unsigned attempt,
                                    int64_t *connected_real, int64_t *connected_mono, hc_error *err)
{
    const struct hrecord_opts *o = r->o;
    unsigned failures = 0;

    for (;;) {
        hc_error cerr = HC_ERROR_INIT;
        hc_err rc;
        int64_t delay;

        if (tool_stop_requested || deadline_passed(r, hc_time_monotonic_ns()))
            return HC_ERR_INTERRUPTED;
        rc = hc_mqtt_connect(r->m, &cerr);
        if (rc == HC_OK) {
            *connected_real = hc_time_realtime_ns();
            *connected_mono = hc_time_monotonic_ns();
            rc = hc_mqtt_subscribe(r->m, o->n_filters, (const char *const *)o->filters, r->qos,
                                   r->granted, &cerr);
            if (rc == HC_OK) {
                tool_info("connected to '%s:%d' as '%s', subscribed to %zu filter%s", r->url.host,
                          r->url.port, o->conn.client_id, o->n_filters,
                          o->n_filters == 1 ? "" : "s");
                for (size_t i = 0; i < o->n_filters; i++) {
                    if (r->granted[i] < r->qos[i])
                        tool_warn("broker granted QoS %d instead of %d for '%s'", r->granted[i],
                                  r->qos[i], o->filters[i]);
                    else if (tool_verbosity >= 2)
                        tool_info("subscribed to '%s' at QoS %d", o->filters[i], r->granted[i]);
                }
                return HC_OK;
            }
            if (rc == HC_ERR_SUBSCRIBE && hc_mqtt_is_connected(r->m)) {
                hc_mqtt_disconnect(r->m, 1000);
                return hc_error_set(err, rc,
                                    "%s; check the filter and that the API key may read it "
                                    "(Haltian keys only read haltian-iot/events/"
                                    "{integration-id}/{api-key-id}/...)",
                                    cerr.message);
            }
            /* the connection dropped while subscribing: an ordinary lost connection */
            hc_mqtt_disconnect(r->m, 0);
            rc = HC_ERR_CONNECT;
        } else if (is_fatal_connect_error(rc)) {
            *err = cerr;
            /* Mosquitto answers a wrong password with CONNACK 5, not 4: name both causes. */
            if (rc == HC_ERR_NOT_AUTHORIZED)
                hc_error_prefix(err, "bad credentials or a key without access");
            return rc;
        } else if (first && !o->retry_connect) {
            return hc_error_set(err, rc, "%s; use --retry-connect to keep trying", cerr.message);
        }
        delay =
            hrecord_backoff_ns(o->reconnect_min_ns, o->reconnect_max_ns, attempt, next_random01(r));
        attempt++;
        failures++;
        tool_info("connection attempt %u failed: %s; retrying in %.1f s", failures, cerr.message,
                  (double)delay / 1e9);
        if (!sleep_interruptible(r, delay))
            return HC_ERR_INTERRUPTED;
    }
}

static hc_err write_subscriptions_meta(struct run *r, hc_error *err)
{
    cJSON *arr = cJSON_CreateArray();
    char *text = NULL;
    hc_err rc;

    for (size_t i = 0; arr && i < r->o->n_filters; i++) {
        cJSON *item = cJSON_CreateObject();
        if (!item || !cJSON_AddStringToObject(item, "filter", r->o->filters[i]) ||
            !cJSON_AddNumberToObject(item, "qos", r->qos[i]) ||
            !cJSON_AddNumberToObject(item, "granted_qos", r->granted[i])) {
            cJSON_Delete(item);
            cJSON_Delete(arr);
            arr = NULL;
            break;
        }
        cJSON_AddItemToArray(arr, item);
    }
    if (arr)
        text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!text)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    rc = hc_store_meta_set(r->st, "subscriptions", text, err);
    free(text);
    return rc;
}

static char *json_string_list(const char *const *list, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    char *text;
    for (size_t i = 0; arr && i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(list[i]));
    text = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return text;
}

/* What the recording says about itself. Credentials never go here: only the API key id, which
 * is part of every topic anyway. */
static hc_err write_static_meta(struct run *r, hc_error *err)
{
    const struct hrecord_opts *o = r->o;
    char when[40], port[16], *existing = NULL, *kinds, *types, *devices;
    hc_err rc;

    rc = hc_store_meta_get(r->st, "created_at", &existing, err);
    if (rc == HC_OK && !existing) {
        hc_time_format_rfc3339(hc_time_realtime_ns(), 3, when, sizeof(when));
        rc = hc_store_meta_set(r->st, "created_at", when, err);
    }
    free(existing);
    snprintf(port, sizeof(port), "%d", r->url.port);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "tool", "hrecord", err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "tool_version", HKIT_VERSION, err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "broker_host", r->url.host, err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "broker_port", port, err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "broker_tls", r->url.tls ? "1" : "0", err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "client_id", o->conn.client_id, err);
    if (rc == HC_OK && o->mqtt.api_key_id)
        rc = hc_store_meta_set(r->st, "api_key_id", o->mqtt.api_key_id, err);
    if (rc == HC_OK && o->mqtt.integration_id)
        rc = hc_store_meta_set(r->st, "integration_id", o->mqtt.integration_id, err);
    if (rc == HC_OK && o->note)
        rc = hc_store_meta_set(r->st, "note", o->note, err);
    if (rc != HC_OK)
        return rc;
    kinds = json_string_list(o->kinds, o->n_kinds);
    types = json_string_list(o->types, o->n_types);
    devices = json_string_list(o->devices, o->n_devices);
    if (!kinds || !types || !devices)
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "filter_kinds", kinds, err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "filter_types", types, err);
    if (rc == HC_OK)
        rc = hc_store_meta_set(r->st, "filter_devices", devices, err);
    free(kinds);
    free(types);
    free(devices);
    return rc;
}

/* --- rotation ------------------------------------------------------------------------------ */

/* how often the size of the segment being written is looked at */
#define SIZE_CHECK_NS 100000000LL
#define ROTATED_REASON "continued in the next segment"

static int64_t file_size_or_zero(const char *path, const char *suffix)
{
    char name[4200];
    struct stat sb;
    snprintf(name, sizeof(name), "%s%s", path, suffix);
    return stat(name, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* The first wall-clock multiple of period after now: --rotate-time 1h cuts on the hour (UTC). */
static int64_t next_cut(int64_t now_real, int64_t period)
{
    return (now_real / period + 1) * period;
}

/* now_real: the arrival of the message about to be written, or the clock when idle */
static bool rotation_due(struct run *r, int64_t now_mono, int64_t now_real)
{
    const struct hrecord_opts *o = r->o;

    if (!o->output_is_dir)
        return false;
    if (r->next_cut_ns && now_real >= r->next_cut_ns)
        return true;
    /* A new segment's schema alone can come near a small --rotate-size: a segment is cut for
     * its size only once it holds a message, or an idle recorder would cut empty ones. */
    if (o->rotate_size && r->segment_messages > 0 &&
        now_mono - r->size_check_mono >= SIZE_CHECK_NS) {
        r->size_check_mono = now_mono;
        return file_size_or_zero(r->sum->path, "") + file_size_or_zero(r->sum->path, "-wal") >=
               o->rotate_size;
    }
    return false;
}

/* Removes the oldest segments until keep remain (newest is the one being written). */
static hc_err prune_segments(const char *dir, long keep, unsigned newest, hc_error *err)
{
    unsigned *numbers = NULL;
    size_t n = 0, kept = 0;
    hc_err rc = hc_segments_list(dir, &numbers, &n, err);

    for (size_t i = n; rc == HC_OK && i-- > 0;) {
        if (numbers[i] > newest)
            continue;
        if ((long)kept < keep)
            kept++;
        else
            rc = hc_segments_remove(dir, numbers[i], err);
    }
    free(numbers);
    return rc;
}

static void *closer_main(void *arg)
{
    struct closer_job *job = arg;

    job->rc =
        hc_store_session_end(job->st, job->session_id, job->ended_at_ns, ROTATED_REASON, &job->err);
    if (job->rc == HC_OK)
        job->rc = hc_store_close(job->st, &job->err);
    else
        hc_store_close(job->st, NULL);
    if (job->rc == HC_OK && job->keep)
        job->rc = prune_segments(job->dir, job->keep, job->newest, &job->err);
    if (job->rc == HC_OK)
        job->rc = hc_segments_manifest_write(job->dir, &job->err);
    return NULL;
}

/* Waits for the previous segment's close; its error, if any. */
static hc_err closer_join(struct run *r, hc_error *err)
{
    hc_err rc = HC_OK;

    if (!r->closer_running)
        return HC_OK;
    pthread_join(r->closer, NULL);
    r->closer_running = false;
    rc = r->job->rc;
    if (rc != HC_OK && err)
        *err = r->job->err;
    free(r->job);
    r->job = NULL;
    return rc;
}

static hc_err write_static_meta(struct run *r, hc_error *err);
static hc_err write_subscriptions_meta(struct run *r, hc_error *err);

/* Opens the next segment and begins the connection's session in it (same start, so a reader
 * of the directory sees one session). */
static hc_err open_segment(struct run *r, unsigned number, int64_t *session_id, hc_error *err)
{
    hc_err rc = hc_segments_path(r->o->output, number, r->sum->path, sizeof(r->sum->path), err);

    if (rc == HC_OK)
        rc = hc_store_open(r->sum->path, HC_STORE_CREATE, &r->st, err);
    if (rc != HC_OK)
        return rc;
    r->segment = number;
    r->segment_messages = 0;
    r->size_check_mono = hc_time_monotonic_ns();
    if (r->o->rotate_ns)
        r->next_cut_ns = next_cut(hc_time_realtime_ns(), r->o->rotate_ns);
    hc_store_set_flush_interval(r->st, (int64_t)r->o->flush_ms * 1000000LL);
    rc = hc_store_set_sync_commits(r->st, true, err);
    if (rc == HC_OK)
        rc = write_static_meta(r, err);
    if (rc == HC_OK && session_id) {
        rc = write_subscriptions_meta(r, err);
        if (rc == HC_OK)
            rc = hc_store_session_begin(r->st, r->conn_real, r->conn_mono, session_id, err);
    }
    return rc;
}

/*
 * Switches to the next segment: it is opened (and the session begun in it) before the current
 * one is closed, and the end of the session there, the close (commit, checkpoint), the manifest
 * and --keep run on a thread of their own, so the capture goes on at once.
 */
static hc_err rotate(struct run *r, int64_t *session_id, hc_error *err)
{
    hc_store *old = r->st;
    int64_t old_session = *session_id, new_session = 0;
    struct closer_job *job;
    hc_err rc;

    rc = closer_join(r, err);
    if (rc != HC_OK)
        return rc;
    job = calloc(1, sizeof(*job));
    if (!job)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    r->st = NULL;
    rc = open_segment(r, r->segment + 1, &new_session, err);
    if (rc != HC_OK) {
        hc_store_close(r->st, NULL);
        r->st = old;
        free(job);
        return rc;
    }
    *session_id = new_session;
    job->st = old;
    job->session_id = old_session;
    job->ended_at_ns = hc_time_realtime_ns();
    job->dir = r->o->output;
    job->newest = r->segment;
    job->keep = r->o->keep;
    r->job = job;
    if (pthread_create(&r->closer, NULL, closer_main, job) == 0) {
        r->closer_running = true;
    } else {
        closer_main(job);
        r->job = NULL;
        if (job->rc != HC_OK) {
            rc = job->rc;
            *err = job->err;
        }
        free(job);
    }
    if (tool_verbosity >= 2)
        tool_info("segment %06u started", r->segment);
    return rc;
}

/*
 * Before the first segment: creates the directory, or continues one (--append: a segment left
 * unsealed by a killed writer is sealed, numbering continues; --force: the old segments go).
 * The manifest is rebuilt from what is there, so it is true again after a crash.
 */
static hc_err prepare_segment_dir(struct run *r, unsigned *first, hc_error *err)
{
    const char *dir = r->o->output;
    unsigned *numbers = NULL;
    size_t n = 0;
    hc_err rc;

    *first = 1;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return hc_error_set(err, HC_ERR_IO, "cannot create '%s': %s", dir, strerror(errno));
    rc = hc_segments_list(dir, &numbers, &n, err);
    if (rc != HC_OK)
        return rc;
    if (n && !r->o->append && !r->o->force)
        rc = hc_error_set(err, HC_ERR_EXISTS,
                          "'%s' already holds segments; use --append to continue it or "
                          "--force to replace them",
                          dir);
    for (size_t i = 0; rc == HC_OK && r->o->force && i < n; i++)
        rc = hc_segments_remove(dir, numbers[i], err);
    if (rc == HC_OK && n && r->o->append)
        *first = numbers[n - 1] + 1;
    /* A killed writer may leave the segment it wrote and the one it was closing with committed
     * pages in their -wal: opening each for writing and closing it checkpoints them. */
    for (size_t i = 0; rc == HC_OK && r->o->append && i < n; i++) {
        char path[4096];
        hc_store *st = NULL;

        rc = hc_segments_path(dir, numbers[i], path, sizeof(path), err);
        if (rc != HC_OK ||
            (i + 1 < n && file_size_or_zero(path, "-wal") + file_size_or_zero(path, "-shm") == 0))
            continue;
        rc = hc_store_open(path, HC_STORE_APPEND, &st, err);
        if (rc == HC_ERR_NOT_RECORDING && i == n - 1) {
            /* killed while creating it: no schema, so no message; its number is taken again */
            rc = hc_segments_remove(dir, numbers[i], err);
            *first = numbers[i];
        } else if (rc == HC_OK) {
            rc = hc_store_close(st, err);
        }
    }
    if (rc == HC_OK)
        rc = hc_segments_manifest_write(dir, err);
    free(numbers);
    return rc;
}

/* Receives and stores until the connection drops or a stop condition holds. */
static enum loop_end receive_loop(struct run *r, int64_t *session_id, int64_t session_mono,
                                  hc_error *err)
{
    const struct hrecord_opts *o = r->o;
    struct hc_msg msg;
    hc_error rerr = HC_ERROR_INIT;

    for (;;) {
        hc_err rc;
        int64_t now;

        if (tool_stop_requested)
            return END_SIGNAL;
        /* The flush bound holds while nothing arrives too: wait no longer than the open batch
         * may stay uncommitted, then commit it. */
        if (hc_store_flush_if_due(r->st, err) != HC_OK)
            return END_STORE_FAILED;
        rc = hc_mqtt_receive(r->m, hrecord_receive_timeout_ms(hc_store_flush_due_in_ns(r->st)),
                             &msg, &rerr);
        if (rc == HC_OK) {
            msg.received_at_ns = hc_time_realtime_ns();
            now = hc_time_monotonic_ns();
            msg.mono_ns = now - session_mono;
            /* a message that arrived after a cut goes into the next segment */
            if (rotation_due(r, now, msg.received_at_ns) && rotate(r, session_id, err) != HC_OK)
                return END_STORE_FAILED;
            msg.session_id = *session_id;
            if (hc_store_append(r->st, &msg, NULL, err) != HC_OK)
                return END_STORE_FAILED;
            r->sum->messages++;
            r->segment_messages++;
            r->sum->bytes += (int64_t)msg.payload_len;
            r->last_msg_mono = now;
            if (o->count && r->sum->messages >= o->count)
                return END_COUNT;
        } else if (rc == HC_ERR_TIMEOUT) {
            if (hc_store_flush_if_due(r->st, err) != HC_OK)
                return END_STORE_FAILED;
            now = hc_time_monotonic_ns();
        } else {
            *err = rerr;
            return END_LOST;
        }
        if (deadline_passed(r, now))
            return END_DURATION;
        if (rc != HC_OK && rotation_due(r, now, hc_time_realtime_ns()) &&
            rotate(r, session_id, err) != HC_OK)
            return END_STORE_FAILED;
        if (r->status && now >= r->next_status_mono)
            show_status(r, now, true);
    }
}

static void run_init(struct run *r, const struct hrecord_opts *o, struct hrecord_summary *sum)
{
    memset(r, 0, sizeof(*r));
    memset(sum, 0, sizeof(*sum));
    r->o = o;
    r->sum = sum;
    r->start_mono = hc_time_monotonic_ns();
    r->deadline_mono = o->duration_ns ? r->start_mono + o->duration_ns : 0;
    r->rng = (uint64_t)hc_time_realtime_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    if (!r->rng)
        r->rng = 1;
    r->status = tool_status_enabled();
    r->rate_mark_mono = r->start_mono;
    r->mode = o->append ? HC_STORE_APPEND : o->force ? HC_STORE_FORCE : HC_STORE_CREATE;
    r->variant = 1;
    snprintf(sum->stop_reason, sizeof(sum->stop_reason), "error");
    snprintf(sum->path, sizeof(sum->path), "%s", o->output);
}

/* The file policy: an existing output is refused unless --append or --force; the default name
 * moves on to the next free variant. try is hc_store_check_writable's check, or the opening. */
static hc_err output_try(struct run *r, bool open, hc_error *err)
{
    const struct hrecord_opts *o = r->o;
    hc_err rc;

    for (;;) {
        rc = open ? hc_store_open(r->sum->path, r->mode, &r->st, err)
                  : hc_store_check_writable(r->sum->path, r->mode, err);
        if (rc != HC_ERR_EXISTS || !o->output_is_default || r->variant >= OUTPUT_VARIANTS_MAX)
            break;
        hrecord_output_variant(o->output, ++r->variant, r->sum->path, sizeof(r->sum->path));
    }
    if (rc == HC_ERR_EXISTS)
        return hc_error_set(err, HC_ERR_EXISTS,
                            "'%s' already exists; use --append to add a session to it or "
                            "--force to replace it",
                            r->sum->path);
    return rc;
}

/* Opens the recording once the broker took us (another hrecord may have taken the default
 * name since the check), with its flush policy and static meta; with rotation, the first
 * segment of the directory prepare_segment_dir made ready. */
static hc_err output_open(struct run *r, hc_error *err)
{
    hc_err rc;

    if (r->o->output_is_dir) {
        /* the first segment; the session begins in it as in a single file */
        rc = open_segment(r, r->first_segment, NULL, err);
        if (rc == HC_OK)
            r->sum->opened = true;
        return rc;
    }
    rc = output_try(r, true, err);
    if (rc != HC_OK)
        return rc;
    r->sum->opened = true;
    hc_store_set_flush_interval(r->st, (int64_t)r->o->flush_ms * 1000000LL);
    /* a committed batch survives a power loss too (README, "Flush and loss guarantees") */
    rc = hc_store_set_sync_commits(r->st, true, err);
    if (rc == HC_OK)
        rc = write_static_meta(r, err);
    return rc;
}

/* The connection's state: URL, per-filter QoS, the client, the first connection. */
static hc_err connect_first(struct run *r, int64_t *conn_real, int64_t *conn_mono, hc_error *err)
{
    const struct hrecord_opts *o = r->o;
    hc_err rc = hc_mqtt_parse_url(o->conn.url, &r->url, err);

    if (rc != HC_OK)
        return rc;
    r->qos = calloc(o->n_filters ? o->n_filters : 1, sizeof(int));
    r->granted = calloc(o->n_filters ? o->n_filters : 1, sizeof(int));
    if (!r->qos || !r->granted)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < o->n_filters; i++)
        r->qos[i] = (int)o->qos;
    rc = hc_mqtt_new(&o->conn, HC_MQTT_SUBSCRIBER, &r->m, err);
    if (rc != HC_OK)
        return rc;
    tool_info("connecting to '%s:%d'%s", r->url.host, r->url.port, r->url.tls ? " (TLS)" : "");
    return connect_and_subscribe(r, true, 0, conn_real, conn_mono, err);
}

/* The session's end reason, as stored and shown; lost names the cause (err). */
static const char *end_reason(enum loop_end end, const hc_error *err, char *buf, size_t size)
{
    switch (end) {
    case END_SIGNAL:
        return "interrupted";
    case END_COUNT:
        return "count reached";
    case END_DURATION:
        return "duration reached";
    case END_LOST:
        snprintf(buf, size, "connection lost: %s", err->message);
        return buf;
    default:
        return "write failed";
    }
}

/* A stop while waiting to reconnect: interrupted, or the duration reached. */
static hc_err stopped_while_away(struct run *r)
{
    snprintf(r->sum->stop_reason, sizeof(r->sum->stop_reason), "%s",
             tool_stop_requested ? "interrupted" : "duration reached");
    return HC_OK;
}

/*
 * After a lost connection: waits the backoff (a connection that keeps dropping right after it
 * is made backs off too) and reconnects. HC_DONE when a stop came first.
 */
static hc_err reconnect(struct run *r, int64_t session_id, int64_t *conn_real, int64_t *conn_mono,
                        hc_error *err)
{
    hc_error lerr = HC_ERROR_INIT;
    int64_t delay;
    hc_err rc;

    r->flaps = hc_time_monotonic_ns() - *conn_mono < BACKOFF_RESET_NS ? r->flaps + 1 : 0;
    delay = hrecord_backoff_ns(r->o->reconnect_min_ns, r->o->reconnect_max_ns,
                               r->flaps ? r->flaps - 1 : 0, next_random01(r));
    tool_info("%s; session %lld ended; reconnecting in %.1f s", err->message, (long long)session_id,
              (double)delay / 1e9);
    memset(err, 0, sizeof(*err));
    if (!sleep_interruptible(r, delay))
        return HC_DONE;
    rc = connect_and_subscribe(r, false, r->flaps, conn_real, conn_mono, &lerr);
    if (rc == HC_ERR_INTERRUPTED)
        return HC_DONE;
    if (rc != HC_OK)
        *err = lerr;
    return rc;
}

/* One session per connection, until a stop reason or an error. */
static hc_err record_sessions(struct run *r, int64_t conn_real, int64_t conn_mono, hc_error *err)
{
    struct hrecord_summary *sum = r->sum;

    for (;;) {
        int64_t session_id = 0, ended;
        enum loop_end end;
        const char *reason;
        char lost_reason[HC_ERROR_MESSAGE_MAX + 32];
        hc_err rc = write_subscriptions_meta(r, err);

        if (rc == HC_OK)
            rc = hc_store_session_begin(r->st, conn_real, conn_mono, &session_id, err);
        if (rc != HC_OK)
            return rc;
        sum->sessions++;
        if (tool_verbosity >= 2)
            tool_info("session %lld started", (long long)session_id);
        r->conn_real = conn_real;
        r->conn_mono = conn_mono;
        /* rotation may move the session to the next segment: session_id follows it */
        end = receive_loop(r, &session_id, conn_mono, err);
        ended = hc_time_realtime_ns();
        reason = end_reason(end, err, lost_reason, sizeof(lost_reason));
        if (end == END_STORE_FAILED) {
            /* best effort: the disk may refuse this too; what was committed stays readable */
            hc_store_session_end(r->st, session_id, ended, reason, NULL);
            return err->code != HC_OK ? err->code : HC_ERR_IO;
        }
        rc = hc_store_session_end(r->st, session_id, ended, reason, err);
        if (rc != HC_OK)
            return rc;
        if (end != END_LOST) {
            snprintf(sum->stop_reason, sizeof(sum->stop_reason), "%.*s",
                     (int)sizeof(sum->stop_reason) - 1, reason);
            tool_info("stopping (%s); session %lld ended", reason, (long long)session_id);
            return HC_OK;
        }
        sum->disconnects++;
        rc = reconnect(r, session_id, &conn_real, &conn_mono, err);
        if (rc == HC_DONE)
            return stopped_while_away(r);
        if (rc != HC_OK)
            return rc;
    }
}

/* Disconnects, waits for a segment still being closed, closes the recording (its close error
 * counts when nothing failed before) and, with rotation, writes the final manifest. */
static hc_err run_release(struct run *r, hc_err rc, hc_error *err)
{
    r->sum->duration_ns = hc_time_monotonic_ns() - r->start_mono;
    tool_status_clear();
    if (r->m) {
        hc_mqtt_disconnect(r->m, 1000);
        if (rc == HC_OK && r->sum->opened)
            tool_info("disconnected from '%s:%d'", r->url.host, r->url.port);
    }
    hc_mqtt_free(r->m);
    {
        hc_error cerr = HC_ERROR_INIT;
        if (closer_join(r, &cerr) != HC_OK && rc == HC_OK) {
            *err = cerr;
            rc = cerr.code;
        }
    }
    if (r->st) {
        hc_error cerr = HC_ERROR_INIT;
        if (hc_store_close(r->st, &cerr) != HC_OK && rc == HC_OK) {
            *err = cerr;
            rc = cerr.code;
        }
    }
    if (r->o->output_is_dir && r->sum->opened) {
        hc_error cerr = HC_ERROR_INIT;
        /* the last segment is sealed now: the manifest gets its hash */
        if (hc_segments_manifest_write(r->o->output, &cerr) != HC_OK && rc == HC_OK) {
            *err = cerr;
            rc = cerr.code;
        }
        snprintf(r->sum->path, sizeof(r->sum->path), "%s", r->o->output);
    }
    free(r->qos);
    free(r->granted);
    return rc;
}

hc_err hrecord_run(const struct hrecord_opts *o, struct hrecord_summary *sum, hc_error *err)
{
    struct run r;
    int64_t conn_real = 0, conn_mono = 0;
    hc_err rc;

    run_init(&r, o, sum);
    /* Check the output before touching the network, and create the file only once the broker
     * took us: a failed start leaves nothing behind (nor deletes anything, --force). A directory
     * of segments is made ready here (created, or continued with --append). */
    rc = o->output_is_dir ? prepare_segment_dir(&r, &r.first_segment, err)
                          : output_try(&r, false, err);
    if (rc != HC_OK)
        return rc;
    rc = connect_first(&r, &conn_real, &conn_mono, err);
    if (rc == HC_ERR_INTERRUPTED) {
        snprintf(sum->stop_reason, sizeof(sum->stop_reason), "interrupted before connecting");
        rc = HC_OK;
    } else if (rc == HC_OK) {
        rc = output_open(&r, err);
        if (rc == HC_OK)
            rc = record_sessions(&r, conn_real, conn_mono, err);
    }
    return run_release(&r, rc, err);
}

void hrecord_report(const struct hrecord_opts *o, const struct hrecord_summary *sum,
                    const hc_error *failure)
{
    if (tool_verbosity >= 1 && sum->opened) {
        char bytes[32];
        format_bytes(sum->bytes, bytes, sizeof(bytes));
        fprintf(stderr,
                "%s: recorded %lld message%s (%s of payload) in %lld session%s with %lld gap%s "
                "over %.1f s into '%s'\n",
                tool_name, (long long)sum->messages, sum->messages == 1 ? "" : "s", bytes,
                (long long)sum->sessions, sum->sessions == 1 ? "" : "s",
                (long long)sum->disconnects, sum->disconnects == 1 ? "" : "s",
                (double)sum->duration_ns / 1e9, sum->path);
        if (failure && failure->code != HC_OK)
            fprintf(stderr,
                    "%s: messages of the batch being written when it failed (at most --flush-ms) "
                    "are not in the file; everything committed before is\n",
                    tool_name);
    }
    if (o->json_summary) {
        cJSON *j = cJSON_CreateObject();
        char *text;
        if (!j)
            return;
        if (sum->opened)
            cJSON_AddStringToObject(j, "path", sum->path);
        else
            cJSON_AddNullToObject(j, "path");
        cJSON_AddNumberToObject(j, "messages", (double)sum->messages);
        cJSON_AddNumberToObject(j, "payload_bytes", (double)sum->bytes);
        cJSON_AddNumberToObject(j, "sessions", (double)sum->sessions);
        cJSON_AddNumberToObject(j, "disconnects", (double)sum->disconnects);
        cJSON_AddNumberToObject(j, "duration_s", (double)sum->duration_ns / 1e9);
        cJSON_AddStringToObject(j, "stop_reason", sum->stop_reason);
        if (failure && failure->code != HC_OK)
            cJSON_AddStringToObject(j, "error", failure->message);
        else
            cJSON_AddNullToObject(j, "error");
        text = cJSON_PrintUnformatted(j);
        if (text)
            printf("%s\n", text);
        free(text);
        cJSON_Delete(j);
    }
}

/*
 * The replay engine (see hcore/replay.h): the schedule over a source, rewriting topics and
 * payloads, and the figures of a run. The connections, and resuming after one is lost, are in
 * replay_conn.c (replay_internal.h).
 */
#include "hcore/replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/log.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"
#include "replay_internal.h"

#define PROGRESS_EVERY_NS 250000000LL
#define DEFAULT_GIVE_UP_NS (60LL * 1000000000LL)
#define SAFE_QOS2_WINDOW 20 /* QoS 2 window when the broker does not state its limit */

/* --- the replay clock and the device hash ---------------------------------------------------- */

static void spin_sleep_until(void *ctx, int64_t deadline_ns)
{
    const struct replay_spin_clock *sc = ctx;
    const struct hc_clock *real = sc->real;
    int64_t now = real->now_ns(real->ctx);

    if (deadline_ns - now > sc->spin_ns) {
        real->sleep_until_ns(real->ctx, deadline_ns - sc->spin_ns);
        return; /* hc_sched_wait asks again: what is left is spun */
    }
    while (now < deadline_ns)
        now = real->now_ns(real->ctx);
}

static int64_t spin_now(void *ctx)
{
    const struct replay_spin_clock *sc = ctx;
    return sc->real->now_ns(sc->real->ctx);
}

uint64_t hc_replay_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    /* splitmix64's finaliser spreads FNV's weak low bits over the whole word */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static uint64_t mix64(uint64_t h)
{
    h += 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

void hc_replay_fanout_id(const char *device, size_t len, long k, char *buf)
{
    uint64_t a = mix64(hc_replay_hash(device, len) ^ ((uint64_t)k * 0xd6e8feb86659fd93ULL));
    uint64_t b = mix64(a ^ 0x5851f42d4c957f2dULL);

    snprintf(buf, 37, "%08" PRIx32 "-%04" PRIx32 "-8%03" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
             (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffffu, (uint32_t)a & 0xfffu,
             (uint32_t)(0x8000u | ((b >> 48) & 0x3fffu)), (uint64_t)(b & 0xffffffffffffULL));
}

/* --- rewriting ------------------------------------------------------------------------------- */

/* Number of levels of a topic, and whether it has one of the shapes that name a device last. */
static bool names_device(const char *topic)
{
    size_t levels = 1;
    for (const char *p = topic; *p; p++)
        levels += *p == '/';
    if (levels != 7)
        return false;
    return strncmp(topic, "haltian-iot/events/", 19) == 0 ||
           strncmp(topic, "cloudext/json/", 14) == 0;
}

/*
 * Builds the topic to publish for copy k (0 = the device itself) into r->topic, and points
 * *key and *key_len at what decides the connection and shard: the (derived) device id, or the
 * whole topic when it names no device. Order: --remap on the recorded topic; then, on
 * haltian-iot/events/ topics, --integration-id and --api-key-id replace levels 3 and 4; then for
 * k > 0 the last level (the device id of a recorded Haltian or Thingsee topic) is replaced.
 */
static bool build_topic(struct hc_replay *r, const char *topic, long k, const char **key,
                        size_t *key_len, bool *has_device)
{
    const struct hc_replay_options *o = &r->o;
    struct hc__buf *out = &r->topic;
    const char *src = topic, *p, *last, *built;
    char derived[37];
    size_t level = 0, off;

    *has_device = names_device(topic);
    for (size_t i = 0; i < o->n_remaps; i++) {
        size_t matched;
        const char *rest, *to = o->remaps[i].to;

        if (!hc_topic_prefix_match(o->remaps[i].from, topic, &matched))
            continue;
        /* TO replaces the matched levels; the levels after them are kept */
        rest = topic + matched + (topic[matched] == '/');
        hc__buf_reset(&r->remapped);
        hc__buf_addstr(&r->remapped, to);
        if (*to && *rest)
            hc__buf_add(&r->remapped, "/", 1);
        if (!hc__buf_addstr(&r->remapped, rest))
            return false;
        src = (const char *)r->remapped.data;
        break;
    }
    hc__buf_reset(out);
    if ((o->integration_id || o->api_key_id) && strncmp(src, "haltian-iot/events/", 19) == 0) {
        for (p = src;; level++) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            const char *s = p;
            if (level == 2 && o->integration_id) {
                s = o->integration_id;
                len = strlen(s);
            } else if (level == 3 && o->api_key_id) {
                s = o->api_key_id;
                len = strlen(s);
            }
            if (level)
                hc__buf_add(out, "/", 1);
            hc__buf_add(out, s, len);
            if (!slash)
                break;
            p = slash + 1;
        }
    } else {
        hc__buf_addstr(out, src);
    }
    if (out->failed)
        return false;
    built = (const char *)out->data;
    if (!*has_device) {
        *key = built;
        *key_len = out->len;
        return true;
    }
    last = strrchr(built, '/');
    off = last ? (size_t)(last + 1 - built) : 0;
    if (k > 0) {
        hc_replay_fanout_id(built + off, out->len - off, k, derived);
        out->len = off;
        if (!hc__buf_add(out, derived, 36))
            return false;
    }
    *key = (const char *)out->data + off; /* after hc__buf_add: it may have moved the buffer */
    *key_len = out->len - off;
    return true;
}

/*
 * Rewrites the "measured_at"/"received_at" string values of a JSON payload to the send time plus
 * their recorded offset from the message's arrival; every other byte is copied as it was.
 * Points *out and *len at the payload to send (r->payload or the original); false when out of
 * memory.
 */
static bool rebase_payload(struct hc_replay *r, const struct hc_msg *msg, const unsigned char **out,
                           size_t *len)
{
    const unsigned char *p = msg->payload;
    size_t n = msg->payload_len, pos = 0, start, end, copied = 0;
    int64_t base = msg->received_at_ns ? msg->received_at_ns : msg->timeline_ns;
    int64_t now_real = hc_time_realtime_ns(), ts, fresh;

    *out = p;
    *len = n;
    hc__buf_reset(&r->payload);
    while (hc__json_next_time(p, n, &pos, &start, &end, &ts, NULL)) {
        char text[48];

        if (base) {
            fresh = now_real + (ts - base);
        } else {
            /* no arrival time: keep the offsets between messages, starting at the replay */
            if (!r->have_rebase_first) {
                r->rebase_first = ts;
                r->have_rebase_first = true;
            }
            fresh = r->start_real + (ts - r->rebase_first);
        }
        hc_time_format_rfc3339(fresh,
                               hc__time_fraction_digits((const char *)p + start, end - start),
                               text, sizeof(text));
        hc__buf_add(&r->payload, p + copied, start - copied);
        hc__buf_addstr(&r->payload, text);
        copied = end;
    }
    if (!copied)
        return true;
    if (!hc__buf_add(&r->payload, p + copied, n - copied))
        return false;
    *out = r->payload.data;
    *len = r->payload.len;
    return true;
}

/* --- the replay loop ------------------------------------------------------------------------- */

/* fo: the faults applied to msg (NULL without faults) */
static hc_err replay_message(struct hc_replay *r, const struct hc_msg *msg,
                             const struct hc_faults_out *fo, hc_error *err)
{
    const struct hc_replay_options *o = &r->o;
    int qos = o->qos >= 0 ? o->qos : msg->qos;
    bool retain = o->retain_never ? false : msg->retain;

    if (fo && (fo->applied & HC_FAULT_BIT(HC_FAULT_RETAIN)))
        retain = true; /* faults: retain wins over --retain never */

    for (long k = 0; k < o->fanout; k++) {
        const char *key, *topic;
        size_t key_len;
        bool has_device;
        const unsigned char *payload = msg->payload;
        size_t len = msg->payload_len;
        struct replay_conn *c;
        uint64_t h;
        hc_err rc;

        hc_error terr = HC_ERROR_INIT;

        if (!build_topic(r, msg->topic, k, &key, &key_len, &has_device))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        if (k > 0 && !has_device)
            break; /* no device to derive copies from: the message goes out once */
        topic = (const char *)r->topic.data;
        if (hc_topic_name_validate(topic, &terr) != HC_OK) {
            /* a broker closes the connection on an invalid topic: never send one */
            r->st.invalid_topics++;
            r->st.failed++;
            if (r->st.failed <= REPLAY_MAX_FAILURES_SHOWN) {
                hc_log(HC_LOG_ERROR, "message %" PRIu64 " not sent: %s", r->st.scheduled,
                       terr.message);
                if (r->st.failed == REPLAY_MAX_FAILURES_SHOWN)
                    hc_log(HC_LOG_ERROR, "further failed messages are counted, not shown");
            }
            continue;
        }
        h = hc_replay_hash(key, key_len);
        if (o->shard_n > 1 &&
            hc_replay_shard_of(h, (unsigned)o->shard_n) != (unsigned)o->shard_k - 1) {
            r->st.other_shards++;
            continue;
        }
        if (o->rebase_time && !rebase_payload(r, msg, &payload, &len))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        c = &r->conns[hc_replay_connection_of(h, (unsigned)r->n_conns)];
        if (fo && k == 0 && fo->applied)
            rc = hc__replay_faults_publish(r, c, topic, payload, len, qos, retain, fo, err);
        else
            rc = hc__replay_publish(r, c, topic, payload, len, qos, retain, err);
        if (rc == HC_OK) {
            r->st.sent++;
            if (o->hooks.published)
                o->hooks.published(o->hooks.ctx, topic, payload, len, hc_time_monotonic_ns());
            if (k == 0 && o->hooks.sent && !(fo && fo->copy))
                o->hooks.sent(o->hooks.ctx, fo ? fo->seq : r->st.scheduled, hc_time_monotonic_ns());
        } else if (rc == HC_DONE) {
            /* faults: lost at a disconnect, on purpose */
        } else if (r->fatal) {
            r->st.failed++; /* this message was never sent */
            return rc;
        } else if (rc == HC_ERR_INTERRUPTED) {
            return rc;
        } else {
            hc__replay_message_failed(r, topic, err->message);
        }
    }
    return HC_OK;
}

static void flush_all(struct hc_replay *r)
{
    /* a failure shows again, and is handled, at the connection's next publish */
    for (size_t i = 0; i < r->n_conns; i++)
        hc_mqtt_flush(r->conns[i].m);
}

static hc_err start_at(struct hc_replay *r, hc_error *err);

/*
 * The replay stopped early (a connection could not be restored): the rest of the pass was never
 * sent, and counts as failed, once for every copy this shard would have sent.
 */
static void count_unsent(struct hc_replay *r, const struct hc_replay_source *src)
{
    const struct hc_replay_options *o = &r->o;
    struct hc_msg msg;
    hc_error ignored = HC_ERROR_INIT;
    hc_err rc;

    while ((rc = src->next(src->ctx, &msg, &ignored)) == HC_OK || rc == HC_ERR_PARSE) {
        if (rc == HC_ERR_PARSE) {
            r->st.failed++;
            continue;
        }
        for (long k = 0; k < o->fanout; k++) {
            const char *key;
            size_t key_len;
            bool has_device;

            if (!build_topic(r, msg.topic, k, &key, &key_len, &has_device))
                break;
            if (k > 0 && !has_device)
                break;
            if (o->shard_n > 1 && hc_replay_shard_of(hc_replay_hash(key, key_len),
                                                     (unsigned)o->shard_n) !=
                                      (unsigned)o->shard_k - 1)
                continue;
            r->st.failed++;
        }
    }
}

/*
 * Waits for msg's due time (timed modes) and sends it; fo: its faults (NULL without). *now:
 * the clock after waking (0 under --max). HC_ERR_INTERRUPTED with st.interrupted set.
 */
static hc_err send_one(struct hc_replay *r, const struct hc_msg *msg,
                       const struct hc_faults_out *fo, int64_t *now, hc_error *err)
{
    const struct hc_replay_options *o = &r->o;
    int64_t due = hc_sched_due(r->sched, msg->timeline_ns);
    uint64_t handled;
    hc_err rc;

    if (o->sched.mode != HC_SCHED_MAX) {
        /*
         * Messages already due go out together in one write (catching up after a stall costs
         * far less); what is buffered leaves before we sleep.
         */
        if (due > hc_time_monotonic_ns())
            flush_all(r);
        if (!hc_sched_wait(r->sched, due, r->o.stop, now)) {
            r->st.interrupted = true;
            return HC_ERR_INTERRUPTED;
        }
    }
    handled = r->st.sent + r->st.failed;
    rc = replay_message(r, msg, fo, err);
    if (o->sched.mode != HC_SCHED_MAX && *now && r->st.sent + r->st.failed > handled) {
        /* this shard's messages only: another shard measures its own */
        r->st.last_lateness_ns = *now - due;
        hc_sched_record(r->sched, *now - due);
        if (o->hooks.lateness)
            o->hooks.lateness(o->hooks.ctx, *now - due);
    }
    if (o->hooks.handled_at && r->st.sent + r->st.failed > handled)
        o->hooks.handled_at(o->hooks.ctx, o->sched.mode != HC_SCHED_MAX ? due : 0,
                            o->sched.mode != HC_SCHED_MAX && *now ? *now : hc_time_monotonic_ns());
    return rc;
}

/* faults: sends what the stream made ready; a dropped message is only reported */
static hc_err faults_drain(struct hc_replay *r, int64_t *now, hc_error *err)
{
    struct hc_faults_out fo;

    while (hc_faults_pop(r->faults, &fo)) {
        hc_err rc;
        if (fo.applied & HC_FAULT_BIT(HC_FAULT_DROP)) {
            r->st.faults.dropped++;
            hc__replay_fault_event(r, &fo, HC_FAULT_DROP, NULL, 0, 0, false);
            continue;
        }
        rc = send_one(r, &fo.msg, &fo, now, err);
        if (rc != HC_OK)
            return rc;
    }
    return HC_OK;
}

/* faults: one input message into the stream, and out what it made ready */
static hc_err faults_feed(struct hc_replay *r, const struct hc_msg *msg, int64_t *now,
                          hc_error *err)
{
    hc_err rc = hc_faults_push(r->faults, msg, err);
    return rc == HC_OK ? faults_drain(r, now, err) : rc;
}

static hc_err replay(struct hc_replay *r, const struct hc_replay_source *src, hc_error *err)
{
    const struct hc_replay_options *o = &r->o;
    bool timed = o->sched.mode != HC_SCHED_MAX;
    struct hc_msg msg;
    hc_err rc = HC_OK;
    int64_t end_now = 0;

    r->st.start_mono_ns = hc_time_monotonic_ns();
    r->start_real = hc_time_realtime_ns();
    if (o->start_at_ns) {
        rc = start_at(r, err);
        if (rc != HC_OK)
            return rc;
    }
    r->last_progress = r->st.start_mono_ns;
    /*
     * The schedule starts when the first message is in hand (hc_sched_due's default), not
     * before the input is opened: otherwise the first messages start out late and, at high
     * speeds, hundreds of them are late while the replay catches up.
     */
    for (uint64_t pass = 0; o->loops == 0 || pass < (uint64_t)o->loops; pass++) {
        uint64_t before = r->st.scheduled;

        rc = src->open(src->ctx, err);
        if (rc != HC_OK)
            return rc;
        for (;;) {
            int64_t now = 0;

            if (hc__replay_stopped(r)) {
                r->st.interrupted = true;
                break;
            }
            rc = src->next(src->ctx, &msg, err);
            if (rc == HC_DONE)
                break;
            if (rc == HC_ERR_PARSE) {
                /* an input that is no message (e.g. a topic MQTT forbids): it fails alone */
                r->st.failed++;
                r->st.invalid_input++;
                if (r->st.failed <= REPLAY_MAX_FAILURES_SHOWN)
                    hc_log(HC_LOG_ERROR, "%s", err->message);
                continue;
            }
            if (rc != HC_OK)
                goto out;
            r->st.scheduled++;
            rc = r->faults ? faults_feed(r, &msg, &now, err) : send_one(r, &msg, NULL, &now, err);
            if (rc == HC_ERR_INTERRUPTED)
                break; /* r->st.interrupted is set */
            if (rc != HC_OK)
                goto out;
            if ((r->st.scheduled & 255) == 0 || timed) {
                if (!now)
                    now = hc_time_monotonic_ns();
                if (now - r->last_progress >= PROGRESS_EVERY_NS && o->hooks.progress) {
                    r->last_progress = now;
                    o->hooks.progress(o->hooks.ctx, r, now);
                }
            }
        }
        if (r->faults && !r->st.interrupted) {
            /* faults: what the stream still holds goes out at the end of the pass */
            rc = hc_faults_finish(r->faults, err);
            if (rc == HC_OK)
                rc = faults_drain(r, &end_now, err);
            if (rc != HC_OK && rc != HC_ERR_INTERRUPTED)
                goto out;
        }
        src->close(src->ctx);
        if (r->st.interrupted)
            break;
        if (r->st.scheduled == before) {
            /* nothing to repeat: an empty selection must not spin */
            hc_log(HC_LOG_WARNING, "nothing to replay: the selection is empty");
            break;
        }
        r->st.passes++;
        hc_sched_next_pass(r->sched);
    }
    rc = HC_OK;
out:
    if (r->fatal)
        count_unsent(r, src);
    src->close(src->ctx);
    return rc;
}

/* --- the public face ---------------------------------------------------------------------------- */

static hc_err check_options(const struct hc_replay_options *o, hc_error *err)
{
    hc_error tmp = HC_ERROR_INIT;

    if (o->fanout < 1 || o->connections < 1 || o->connections > 256 || o->loops < 0)
        return hc_error_set(err, HC_ERR_INVALID, "fanout and connections must be at least 1");
    if (o->shard_n > 1 && (o->shard_k < 1 || o->shard_k > o->shard_n))
        return hc_error_set(err, HC_ERR_INVALID, "shard %ld of %ld does not exist", o->shard_k,
                            o->shard_n);
    if (o->qos < -1 || o->qos > 2)
        return hc_error_set(err, HC_ERR_INVALID, "qos must be 0, 1 or 2");
    for (size_t i = 0; i < o->n_remaps; i++) {
        if (hc_topic_filter_validate(o->remaps[i].from, &tmp) != HC_OK ||
            (o->remaps[i].to[0] && hc_topic_name_validate(o->remaps[i].to, &tmp) != HC_OK))
            return hc_error_set(err, HC_ERR_INVALID, "invalid remap: %s", tmp.message);
    }
    if ((o->integration_id && hc_topic_level_validate(o->integration_id, &tmp) != HC_OK) ||
        (o->api_key_id && hc_topic_level_validate(o->api_key_id, &tmp) != HC_OK))
        return hc_error_set(err, HC_ERR_INVALID, "invalid topic id: %s", tmp.message);
    if (hc_faults_has(o->faults, HC_FAULT_REDELIVER) && o->mqtt.url &&
        strncmp(o->mqtt.url, "mqtts:", 6) == 0)
        return hc_error_set(err, HC_ERR_INVALID,
                            "redeliver needs a plain mqtt:// url: over tls, paho sets the dup "
                            "flag only on its own retries");
    return HC_OK;
}

hc_err hc_replay_new(const struct hc_replay_options *opts, hc_replay **out, hc_error *err)
{
    hc_replay *r;
    hc_err rc;
    bool qos2_limit_stated = false;

    *out = NULL;
    rc = check_options(opts, err);
    if (rc != HC_OK)
        return rc;
    r = calloc(1, sizeof(*r));
    if (!r)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    r->o = *opts;
    if (!r->o.stop)
        r->o.stop = &r->never;
    if (!r->o.give_up_ns)
        r->o.give_up_ns = DEFAULT_GIVE_UP_NS;
    r->mo = opts->mqtt;
    r->mo.cancel = r->o.stop;
    if (r->mo.max_inflight <= 0)
        r->mo.max_inflight = 1000;
    rc = hc_mqtt_parse_url(r->mo.url, &r->url, err);
    if (rc != HC_OK)
        goto fail;
    r->spin.real = opts->clock ? opts->clock : hc_clock_real();
    r->spin.spin_ns = opts->spin_ns;
    r->spin_clock.now_ns = spin_now;
    r->spin_clock.sleep_until_ns = spin_sleep_until;
    r->spin_clock.ctx = &r->spin;
    rc = hc_sched_new(&r->o.sched, &r->spin_clock, &r->sched, err);
    if (rc != HC_OK)
        goto fail;
    if ((r->o.qos == 2 || r->o.qos < 0) && r->mo.max_inflight_qos2 <= 0) {
        /*
         * QoS 2 beyond the broker's in-flight limit is acknowledged and dropped by Mosquitto:
         * ask the broker for its limit once, before the schedule starts (libcore would ask at
         * the first QoS 2 message otherwise, making that one late).
         */
        int limit = hc_mqtt_probe_receive_maximum(&r->mo);
        r->mo.max_inflight_qos2 = limit > 0 ? limit : SAFE_QOS2_WINDOW;
        qos2_limit_stated = limit > 0;
    }
    r->n_conns = (size_t)r->o.connections;
    r->conns = calloc(r->n_conns, sizeof(*r->conns));
    if (!r->conns) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < r->n_conns; i++) {
        rc = hc__replay_conn_open(r, i, err);
        if (rc != HC_OK)
            goto fail;
    }
    if (opts->faults) {
        /* faults: the stream of this replay */
        struct hc_faults_stream_options fso = {opts->faults, opts->fault_seed, opts->qos,
                                               opts->fault_in_scope, opts->fault_scope_ctx};
        rc = hc_faults_stream_new(&fso, &r->faults, err);
        if (rc != HC_OK)
            goto fail;
    }
    if (r->mo.max_inflight_qos2 > 0 && r->mo.max_inflight_qos2 < r->mo.max_inflight)
        hc_log(HC_LOG_DEBUG, "at most %d QoS 2 messages in flight per connection (%s)",
               r->mo.max_inflight_qos2,
               qos2_limit_stated ? "the broker's Receive Maximum"
                                 : "the broker does not state its limit");
    *out = r;
    return HC_OK;
fail:
    hc_replay_free(r);
    return rc;
}

hc_err hc_replay_run(hc_replay *r, const struct hc_replay_source *src, hc_error *err)
{
    hc_err rc = replay(r, src, err);

    for (size_t i = 0; i < r->n_conns; i++) {
        struct replay_conn *c = &r->conns[i];
        if (r->fatal) {
            /* nothing more is confirmed on any connection */
            r->st.failed += hc_mqtt_inflight(c->m);
            r->st.qos0_maybe_lost += c->qos0_since_connect;
            continue;
        }
        if (r->st.interrupted || hc__replay_stopped(r)) {
            /* after a stop: a short grace for acknowledgements already on their way */
            r->st.interrupted = true;
            hc_mqtt_set_cancel(c->m, NULL);
            hc__replay_drain(r, c, HC_MQTT_STOP_GRACE_MS);
        } else {
            /* a broker that stops acknowledging is noticed after the keepalive and then given
             * up on after give_up_ns: this bound is only a backstop */
            int keepalive = r->mo.keepalive_s > 0 ? r->mo.keepalive_s : 60;
            hc__replay_drain(r, c, (int)(r->o.give_up_ns / 1000000) + 1000 * keepalive);
        }
    }
    r->st.end_mono_ns = hc_time_monotonic_ns();
    r->st.gave_up = r->fatal;
    if (rc == HC_ERR_INTERRUPTED)
        rc = HC_OK;
    return rc;
}

void hc_replay_get_stats(const hc_replay *r, struct hc_replay_stats *out)
{
    *out = r->st;
    hc_sched_stats(r->sched, &out->lateness);
}

const struct hc_hist *hc_replay_lateness(const hc_replay *r)
{
    return hc_sched_lateness(r->sched);
}

/*
 * --start-at: waits until the common start instant and makes it the schedule's zero. The wait is
 * on CLOCK_MONOTONIC (the realtime instant converted once), so a clock step while waiting does
 * not move it.
 */
static hc_err start_at(struct hc_replay *r, hc_error *err)
{
    int64_t now_real = hc_time_realtime_ns(), now_mono = hc_time_monotonic_ns();
    int64_t ahead = r->o.start_at_ns - now_real, start_mono = now_mono + ahead, now = 0;

    if (ahead < -1000000000LL)
        return hc_error_set(err, HC_ERR_INVALID, "the start time is %.1f s in the past",
                            (double)-ahead / 1e9);
    if (!hc_sched_wait(r->sched, start_mono, r->o.stop, &now)) {
        r->st.interrupted = true;
        return HC_ERR_INTERRUPTED;
    }
    hc_sched_start(r->sched, start_mono);
    r->st.start_mono_ns = start_mono;
    r->start_real = r->o.start_at_ns;
    return HC_OK;
}

void hc_replay_flush(hc_replay *r)
{
    flush_all(r);
}

void hc_replay_free(hc_replay *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->conns && i < r->n_conns; i++)
        hc__replay_conn_close(&r->conns[i]);
    free(r->conns);
    hc_faults_stream_free(r->faults);
    hc_sched_free(r->sched);
    hc__buf_release(&r->remapped);
    hc__buf_release(&r->topic);
    hc__buf_release(&r->payload);
    free(r);
}

/*
 * hreplay's work: read the selection (a recording through hc_store_query, or JSON lines through
 * hc_jsonl_reader and tool_select_matches), schedule every message with hc_sched, rewrite topics
 * and payloads as asked, publish through one or more hc_mqtt publishers, survive lost
 * connections, and report what was sent and how late.
 *
 * One thread publishes to every connection in turn: per-device order then holds trivially
 * (a device always hashes to the same connection and messages leave in recording order), and
 * the MQTT layer's own thread per connection takes the acknowledgements and socket reads.
 *
 * Resuming at QoS 1/2: each connection keeps a copy of its last messages in a ring indexed by
 * ticket (4 x the in-flight window). A slot is reused only once its ticket is acknowledged, so
 * after a lost connection every unacknowledged message is still there to resend in order.
 */
#include "hreplay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "hcore/jsonl.h"
#include "hcore/mqtt.h"
#include "hcore/store.h"
#include "hcore/timefmt.h"
#include "hcore/topic.h"

#define KEPT_P99_LIMIT_NS 1000000LL /* the schedule counts as kept when p99 lateness < 1 ms */
#define PROGRESS_EVERY_NS 250000000LL
#define BACKOFF_MIN_NS 100000000LL   /* first wait before reconnecting after a fruitless loss */
#define BACKOFF_MAX_NS 5000000000LL  /* backoff doubles up to this */
#define PROGRESS_AGE_NS 10000000000LL /* a connection that lived this long made progress */
#define INTERRUPT_DRAIN_MS 1000        /* after Ctrl-C, acknowledgements are awaited this long */
#define MAX_FAILURES_SHOWN 10          /* failed messages named one by one, then only counted */

/* --- small helpers --------------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static bool buf_put(struct buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static int64_t mono_now(void)
{
    return hc_time_monotonic_ns();
}

/*
 * The replay clock: the real one, except that the last spin_ns before a due time are spent
 * polling the clock instead of sleeping (--spin). clock_nanosleep wakes ~40 µs late even with a
 * 1 ns timer slack (p99 ~110 µs); sleeping to spin_ns early and then spinning puts the median
 * within a few µs, at the cost of up to spin_ns of CPU per message.
 */
struct spin_clock {
    const struct hc_clock *real;
    int64_t spin_ns;
};

static void spin_sleep_until(void *ctx, int64_t deadline_ns)
{
    const struct spin_clock *sc = ctx;
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
    const struct spin_clock *sc = ctx;
    return sc->real->now_ns(sc->real->ctx);
}

static void nap_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    nanosleep(&ts, NULL);
}

uint64_t hreplay_hash(const char *s, size_t len)
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

void hreplay_fanout_id(const char *device, size_t len, long k, char *buf)
{
    uint64_t a = mix64(hreplay_hash(device, len) ^ ((uint64_t)k * 0xd6e8feb86659fd93ULL));
    uint64_t b = mix64(a ^ 0x5851f42d4c957f2dULL);

    snprintf(buf, 37, "%08" PRIx32 "-%04" PRIx32 "-8%03" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
             (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffffu, (uint32_t)a & 0xfffu,
             (uint32_t)(0x8000u | ((b >> 48) & 0x3fffu)), (uint64_t)(b & 0xffffffffffffULL));
}

/* --- input ----------------------------------------------------------------------------------- */

struct source {
    const struct hreplay_opts *o;
    bool is_db;
    hc_store *st;
    hc_cursor *cur;
    hc_jsonl_reader *jr;
    int64_t taken;              /* JSON lines: messages passed on this pass (for --limit) */
    void (*on_wait)(void *ctx); /* JSON lines: called before the input blocks (a pipe) */
    void *wait_ctx;
};

static hc_err source_open(struct source *src, hc_error *err)
{
    hc_err rc;

    if (src->is_db)
        return hc_store_query(src->st, &src->o->select.sel, &src->cur, err);
    src->taken = 0;
    rc = hc_jsonl_reader_open(src->o->input, &src->jr, err);
    if (rc == HC_OK)
        hc_jsonl_reader_set_wait_hook(src->jr, src->on_wait, src->wait_ctx);
    return rc;
}

static void source_close(struct source *src)
{
    hc_cursor_free(src->cur);
    src->cur = NULL;
    hc_jsonl_reader_close(src->jr);
    src->jr = NULL;
}

static hc_err source_next(struct source *src, struct hc_msg *msg, hc_error *err)
{
    struct hc_jsonl_record rec;
    hc_err rc;

    if (src->is_db)
        return hc_cursor_next(src->cur, msg, err);
    for (;;) {
        if (src->o->select.sel.limit && src->taken >= src->o->select.sel.limit)
            return HC_DONE;
        rc = hc_jsonl_next(src->jr, &rec, err);
        if (rc != HC_OK)
            return rc;
        if (!tool_select_matches(&src->o->select, &rec.msg))
            continue;
        src->taken++;
        *msg = rec.msg;
        return HC_OK;
    }
}

/* Resolves --since/--until offsets against the first message, and counts the selection. */
static hc_err source_prepare(struct source *src, struct hreplay_opts *o, int64_t *total,
                             hc_error *err)
{
    struct hc_select all;
    hc_err rc;

    *total = -1;
    if (src->is_db) {
        rc = hc_store_open(o->input, HC_STORE_READ, &src->st, err);
        if (rc != HC_OK)
            return rc;
        if (o->select.since_text || o->select.until_text) {
            int64_t n, first;
            memset(&all, 0, sizeof(all));
            rc = hc_store_count(src->st, &all, &n, &first, err);
            if (rc != HC_OK)
                return rc;
            if (tool_select_resolve(&o->select, first) != OPTS_OK)
                return HC_ERR_INVALID;
        }
        rc = hc_store_count(src->st, &o->select.sel, total, NULL, err);
        if (rc != HC_OK)
            return rc;
        if (o->select.sel.limit && *total > o->select.sel.limit)
            *total = o->select.sel.limit;
        return HC_OK;
    }
    if (o->select.since_text || o->select.until_text) {
        struct hc_jsonl_record rec;
        hc_jsonl_reader *jr;
        int64_t first = 0;

        if (strcmp(o->input, "-") == 0) {
            /* RFC 3339 times need no look-ahead; +offsets count from a first message that
             * standard input cannot give twice (a usage error: exit 2, as for --loop) */
            if ((o->select.since_text && o->select.since_text[0] == '+') ||
                (o->select.until_text && o->select.until_text[0] == '+')) {
                (void)tool_usage_error("--since/--until +DURATION need a file: standard input "
                                       "can be read only once");
                return HC_ERR_INVALID;
            }
            return tool_select_resolve(&o->select, 0) == OPTS_OK ? HC_OK : HC_ERR_INVALID;
        }
        rc = hc_jsonl_reader_open(o->input, &jr, err);
        if (rc != HC_OK)
            return rc;
        rc = hc_jsonl_next(jr, &rec, err);
        if (rc == HC_OK)
            first = rec.msg.received_at_ns;
        hc_jsonl_reader_close(jr);
        if (rc != HC_OK && rc != HC_DONE)
            return rc;
        if (tool_select_resolve(&o->select, first) != OPTS_OK)
            return HC_ERR_INVALID;
    }
    return HC_OK;
}

/* --- connections ----------------------------------------------------------------------------- */

struct entry {
    uint64_t ticket; /* 0: empty */
    char *topic;
    size_t topic_cap;
    unsigned char *payload;
    size_t payload_cap, len;
    int qos;
    bool retain;
};

struct conn {
    hc_mqtt *m;
    char client_id[200];
    struct entry *ring;
    size_t ring_cap;
    uint64_t last_ticket;
    uint64_t oldest_known; /* a lower bound of the oldest unacknowledged ticket */
    uint64_t qos0_since_connect; /* QoS 0 messages the broker has not been seen to read */
    /* reconnecting: a loss without progress since the last connect is a strike */
    int64_t connected_at;     /* CLOCK_MONOTONIC */
    uint64_t acked_at_connect;
    int strikes;
    int64_t trouble_since; /* CLOCK_MONOTONIC: the first loss of the current fruitless series */
    int64_t backoff_ns;
};

struct run {
    struct hreplay_opts *o;
    struct hc_mqtt_options mo;
    struct hc_mqtt_url url;
    struct conn *conns;
    size_t n_conns;
    hc_sched *sched;
    struct buf remapped, topic, payload;
    FILE *lateness_log;
    int64_t total; /* selected messages per pass, -1 when unknown */
    int64_t start_mono, start_real, end_mono;
    int64_t rebase_first;
    bool have_rebase_first;
    uint64_t scheduled, sent, failed, resent, qos0_maybe_lost, reconnects, skipped, passes;
    uint64_t invalid_topics, invalid_input; /* failed before sending: bad topic, bad line */
    FILE *report_fp; /* --report-json, opened at the start */
    bool interrupted, fatal;
    int64_t last_progress;
    int64_t last_lateness;
};

static hc_err ring_reserve(struct entry *e, const char *topic, const void *payload, size_t len)
{
    size_t tlen = strlen(topic) + 1;
    if (tlen > e->topic_cap) {
        char *p = realloc(e->topic, tlen);
        if (!p)
            return HC_ERR_NOMEM;
        e->topic = p;
        e->topic_cap = tlen;
    }
    if (len > e->payload_cap) {
        unsigned char *p = realloc(e->payload, len);
        if (!p)
            return HC_ERR_NOMEM;
        e->payload = p;
        e->payload_cap = len;
    }
    memcpy(e->topic, topic, tlen);
    if (len)
        memcpy(e->payload, payload, len);
    e->len = len;
    return HC_OK;
}

/* Waits until the ring slot the next ticket will use holds an acknowledged message. */
static hc_err ring_make_room(struct conn *c)
{
    uint64_t next = c->last_ticket + 1;
    uint64_t victim;

    if (next <= c->ring_cap)
        return HC_OK;
    victim = next - c->ring_cap;
    if (victim < c->oldest_known)
        return HC_OK;
    for (;;) {
        c->oldest_known = hc_mqtt_oldest_unacked(c->m);
        if (victim < c->oldest_known)
            return HC_OK;
        if (!hc_mqtt_is_connected(c->m))
            return HC_ERR_CONNECTION_LOST;
        nap_ns(200000);
    }
}

static hc_err connect_initial(struct run *r, struct conn *c, hc_error *err)
{
    struct hc_mqtt_options mo = r->mo;
    hc_err rc;

    mo.client_id = c->client_id;
    rc = hc_mqtt_new(&mo, HC_MQTT_PUBLISHER, &c->m, err);
    if (rc != HC_OK)
        return rc;
    rc = hc_mqtt_connect(c->m, err);
    if (rc != HC_OK)
        return rc;
    /*
     * Many messages per write, far fewer system calls: --max flushes when the buffer fills,
     * timed replays before every sleep (see replay).
     */
    hc_mqtt_set_batching(c->m, true);
    c->oldest_known = hc_mqtt_oldest_unacked(c->m);
    c->connected_at = mono_now();
    c->backoff_ns = BACKOFF_MIN_NS;
    return HC_OK;
}

static hc_err publish(struct run *r, struct conn *c, const char *topic, const void *payload,
                      size_t len, int qos, bool retain, hc_error *err);

/* Names a failed message on stderr, the first MAX_FAILURES_SHOWN of them. */
static void message_failed(struct run *r, const char *topic, const char *why)
{
    char shown[200];
    hc_error tmp = HC_ERROR_INIT;

    r->failed++;
    if (r->failed > MAX_FAILURES_SHOWN)
        return;
    /* the topic may be anything a recording holds: show it the way validation errors do */
    if (hc_topic_name_validate(topic, &tmp) == HC_OK)
        snprintf(shown, sizeof(shown), "'%.150s'", topic);
    else
        snprintf(shown, sizeof(shown), "with an invalid topic");
    tool_status_clear();
    tool_error("message %s failed: %s", shown, why);
    if (r->failed == MAX_FAILURES_SHOWN)
        tool_error("further failed messages are counted, not shown");
}

/* Sleeps ns, waking early on Ctrl-C. */
static void nap_interruptible(int64_t ns)
{
    for (int64_t slept = 0; slept < ns && !tool_stop_requested; slept += 50000000LL)
        nap_ns(ns - slept < 50000000LL ? ns - slept : 50000000LL);
}

/*
 * Bookkeeping for a lost connection: was it a strike (no progress since it was made)? Returns
 * true when the replay should give up: --give-up has passed since this fruitless series began.
 */
static bool count_loss(struct run *r, struct conn *c, int64_t now, bool *progress_out)
{
    bool progress = hc_mqtt_acked_total(c->m) > c->acked_at_connect ||
                    now - c->connected_at >= PROGRESS_AGE_NS;

    *progress_out = progress;
    if (progress) {
        c->strikes = 1;
        c->trouble_since = now;
        c->backoff_ns = BACKOFF_MIN_NS;
    } else {
        c->strikes++;
        if (!c->trouble_since)
            c->trouble_since = now;
    }
    return now - c->trouble_since > r->o->give_up_ns;
}

/*
 * After a lost connection: reconnect with backoff, then resend what was not acknowledged. A
 * connection lost twice in a row without progress fails the oldest unacknowledged message (the
 * broker is likely refusing it: a topic it does not allow, a packet over its maximum size).
 * Everything that cannot be resent is counted as failed; QoS 0 messages the broker was not seen
 * to read count as possibly lost.
 */
static hc_err recover(struct run *r, struct conn *c, hc_error *err)
{
    uint64_t oldest = hc_mqtt_oldest_unacked(c->m);
    uint64_t last = c->last_ticket;
    struct entry *pending = NULL;
    size_t n_pending = 0, first = 0, resent = 0;
    const char *why = hc_mqtt_lost_reason(c->m);
    char reason[200];
    bool give_up, progress, wait = false;
    hc_err rc = HC_OK;

    snprintf(reason, sizeof(reason), "%s", why && *why ? why : "");
    r->reconnects++;
    give_up = count_loss(r, c, mono_now(), &progress);
    wait = !progress; /* a fruitless connection: back off before the next one */
    if (last >= oldest) {
        pending = calloc((size_t)(last - oldest + 1), sizeof(*pending));
        if (!pending) {
            r->fatal = true;
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        }
        for (uint64_t t = oldest; t <= last; t++) {
            struct entry *e = &c->ring[t % c->ring_cap];
            if (e->ticket != t)
                continue;
            if (ring_reserve(&pending[n_pending], e->topic, e->payload, e->len) != HC_OK) {
                rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
                goto out;
            }
            pending[n_pending].qos = e->qos;
            pending[n_pending].retain = e->retain;
            n_pending++;
        }
    }
    r->qos0_maybe_lost += c->qos0_since_connect;
    c->qos0_since_connect = 0;
    hc_mqtt_reset_inflight(c->m);
    tool_status_clear();
    tool_warn("connection to '%s:%d' lost%s%s; reconnecting (%zu unacknowledged messages to "
              "resend)",
              r->url.host, r->url.port, reason[0] ? ": " : "", reason, n_pending);
    if (give_up) {
        rc = hc_error_set(err, HC_ERR_CONNECTION_LOST,
                          "gave up: no progress on the connection to '%s:%d' for %.0f s",
                          r->url.host, r->url.port, (double)r->o->give_up_ns / 1e9);
        goto out;
    }
    if (c->strikes >= 2 && n_pending > 0) {
        message_failed(r, pending[0].topic,
                       "the connection was lost twice in a row while it was the oldest "
                       "unacknowledged message (does the broker refuse it?)");
        first = 1;
        c->strikes = 0;
    }

    for (;;) {
        hc_error cerr = HC_ERROR_INIT;
        if (tool_stop_requested) {
            /* Ctrl-C is a clean stop, not a failure to reconnect */
            r->interrupted = true;
            rc = hc_error_set(err, HC_ERR_INTERRUPTED, "interrupted while reconnecting");
            goto out;
        }
        if (wait) {
            nap_interruptible(c->backoff_ns);
            if (c->backoff_ns < BACKOFF_MAX_NS)
                c->backoff_ns *= 2;
            if (tool_stop_requested)
                continue;
        }
        wait = true;
        hc_mqtt_disconnect(c->m, 0);
        rc = hc_mqtt_connect(c->m, &cerr);
        if (rc == HC_OK)
            break;
        if (rc == HC_ERR_INTERRUPTED)
            continue;
        if (mono_now() - c->trouble_since > r->o->give_up_ns || rc != HC_ERR_CONNECT) {
            rc = hc_error_set(err, rc, "%s (gave up reconnecting)", cerr.message);
            goto out;
        }
    }
    c->connected_at = mono_now();
    c->acked_at_connect = hc_mqtt_acked_total(c->m);
    tool_info("reconnected to '%s:%d'", r->url.host, r->url.port);
    c->oldest_known = hc_mqtt_oldest_unacked(c->m);
    for (size_t i = first; i < n_pending; i++) {
        rc = publish(r, c, pending[i].topic, pending[i].payload, pending[i].len, pending[i].qos,
                     pending[i].retain, err);
        if (rc != HC_OK)
            goto out;
        resent++;
        r->resent++;
    }
out:
    if (rc != HC_OK) {
        /* what could not be resent was never confirmed: it failed */
        r->failed += n_pending - first - resent;
        if (rc != HC_ERR_INTERRUPTED)
            r->fatal = true;
    }
    for (size_t i = 0; i < n_pending; i++) {
        free(pending[i].topic);
        free(pending[i].payload);
    }
    free(pending);
    return rc;
}

/*
 * Publishes one message, reconnecting as needed. HC_OK when sent; r->fatal is set when the
 * connection could not be restored; other errors concern this message only.
 */
static hc_err publish(struct run *r, struct conn *c, const char *topic, const void *payload,
                      size_t len, int qos, bool retain, hc_error *err)
{
    uint64_t ticket = 0;
    hc_err rc;

    for (;;) {
        rc = qos > 0 ? ring_make_room(c) : HC_OK;
        if (rc == HC_OK)
            rc = hc_mqtt_publish(c->m, topic, payload, len, qos, retain, &ticket, err);
        if (rc == HC_OK)
            break;
        if (rc == HC_ERR_INTERRUPTED) {
            r->interrupted = true;
            return rc;
        }
        if (rc != HC_ERR_CONNECTION_LOST)
            return rc;
        rc = recover(r, c, err);
        if (rc != HC_OK)
            return rc;
    }
    if (qos > 0) {
        struct entry *e = &c->ring[ticket % c->ring_cap];
        if (ring_reserve(e, topic, payload, len) != HC_OK) {
            r->fatal = true;
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        }
        e->ticket = ticket;
        e->qos = qos;
        e->retain = retain;
        c->last_ticket = ticket;
    } else {
        c->qos0_since_connect++;
    }
    return HC_OK;
}

/*
 * Waits for every acknowledgement, resending after a lost connection. On success the broker
 * has also read every QoS 0 message (hc_mqtt_wait_all's ping), so none of them counts as
 * possibly lost; otherwise every unconfirmed message is counted.
 */
static void drain(struct run *r, struct conn *c, int timeout_ms)
{
    for (;;) {
        hc_error err = HC_ERROR_INIT;
        hc_err rc = hc_mqtt_wait_all(c->m, timeout_ms, &err);
        if (rc == HC_OK) {
            c->qos0_since_connect = 0;
            return;
        }
        if (rc == HC_ERR_CONNECTION_LOST && !r->fatal && !tool_stop_requested) {
            if (recover(r, c, &err) == HC_OK)
                continue;
        }
        tool_status_clear();
        tool_error("%s", err.message);
        if (rc == HC_ERR_INTERRUPTED)
            r->interrupted = true;
        r->failed += hc_mqtt_inflight(c->m);
        r->qos0_maybe_lost += c->qos0_since_connect;
        c->qos0_since_connect = 0;
        hc_mqtt_reset_inflight(c->m);
        return;
    }
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
static bool build_topic(struct run *r, const char *topic, long k, const char **key, size_t *key_len,
                        bool *has_device)
{
    const struct hreplay_opts *o = r->o;
    const char *src = topic, *p, *last;
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
        r->remapped.len = 0;
        if (!buf_put(&r->remapped, to, strlen(to)) ||
            (*to && *rest && !buf_put(&r->remapped, "/", 1)) ||
            !buf_put(&r->remapped, rest, strlen(rest)))
            return false;
        src = r->remapped.p;
        break;
    }
    r->topic.len = 0;
    if ((o->topic_integration_id || o->topic_api_key_id) &&
        strncmp(src, "haltian-iot/events/", 19) == 0) {
        for (p = src;; level++) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            const char *s = p;
            if (level == 2 && o->topic_integration_id) {
                s = o->topic_integration_id;
                len = strlen(s);
            } else if (level == 3 && o->topic_api_key_id) {
                s = o->topic_api_key_id;
                len = strlen(s);
            }
            if ((level && !buf_put(&r->topic, "/", 1)) || !buf_put(&r->topic, s, len))
                return false;
            if (!slash)
                break;
            p = slash + 1;
        }
    } else if (!buf_put(&r->topic, src, strlen(src))) {
        return false;
    }
    if (!*has_device) {
        *key = r->topic.p;
        *key_len = r->topic.len;
        return true;
    }
    last = strrchr(r->topic.p, '/');
    off = last ? (size_t)(last + 1 - r->topic.p) : 0;
    if (k > 0) {
        hreplay_fanout_id(r->topic.p + off, r->topic.len - off, k, derived);
        r->topic.len = off;
        if (!buf_put(&r->topic, derived, 36))
            return false;
    }
    *key = r->topic.p + off; /* after buf_put: it may have moved the buffer */
    *key_len = r->topic.len - off;
    return true;
}

static int fraction_digits(const char *s, size_t len)
{
    const char *dot = memchr(s, '.', len);
    int n = 0;
    if (!dot)
        return 0;
    for (const char *p = dot + 1; p < s + len && *p >= '0' && *p <= '9'; p++)
        n++;
    return n == 0 ? 0 : n <= 3 ? 3 : n <= 6 ? 6 : 9;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Rewrites the "measured_at"/"received_at" string values of a JSON payload to the send time plus
 * their recorded offset from the message's arrival; every other byte is copied as it was.
 * Returns the payload to send (r->payload or the original).
 */
static const unsigned char *rebase_payload(struct run *r, const struct hc_msg *msg, size_t *len)
{
    const unsigned char *p = msg->payload;
    size_t n = msg->payload_len, i = 0, copied = 0;
    int64_t base = msg->received_at_ns ? msg->received_at_ns : msg->timeline_ns;
    int64_t now_real = hc_time_realtime_ns();
    bool changed = false;

    *len = n;
    while (i < n && is_ws(p[i]))
        i++;
    if (i == n || (p[i] != '{' && p[i] != '['))
        return p;
    r->payload.len = 0;
    for (; i + 13 <= n; i++) {
        size_t j, start, end;
        int64_t ts, fresh;
        char text[48];

        if (p[i] != '"' || (i > 0 && p[i - 1] == '\\'))
            continue;
        if (memcmp(p + i + 1, "measured_at\"", 12) != 0 &&
            memcmp(p + i + 1, "received_at\"", 12) != 0)
            continue;
        j = i + 13;
        while (j < n && is_ws(p[j]))
            j++;
        if (j >= n || p[j] != ':')
            continue;
        j++;
        while (j < n && is_ws(p[j]))
            j++;
        if (j >= n || p[j] != '"')
            continue;
        start = j + 1;
        for (end = start; end < n && p[end] != '"'; end++)
            ;
        if (end >= n || end - start > 40 ||
            hc_time_parse_rfc3339((const char *)p + start, end - start, &ts, NULL) != HC_OK)
            continue;
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
        hc_time_format_rfc3339(fresh, fraction_digits((const char *)p + start, end - start), text,
                               sizeof(text));
        buf_put(&r->payload, p + copied, start - copied);
        buf_put(&r->payload, text, strlen(text));
        copied = end;
        i = end;
        changed = true;
    }
    if (!changed)
        return p;
    buf_put(&r->payload, p + copied, n - copied);
    *len = r->payload.len;
    return (const unsigned char *)r->payload.p;
}

/* --- progress and report --------------------------------------------------------------------- */

static const char *mode_name(enum hc_sched_mode m)
{
    switch (m) {
    case HC_SCHED_SPEED:
        return "speed";
    case HC_SCHED_RATE:
        return "rate";
    case HC_SCHED_MAX:
        return "max";
    default:
        return "original";
    }
}

static void progress(struct run *r, int64_t now)
{
    double elapsed = (double)(now - r->start_mono) / 1e9;
    double rate = elapsed > 0 ? (double)r->sent / elapsed : 0;
    int64_t total = -1;
    char eta[48] = "", late[48] = "";

    r->last_progress = now;
    if (r->total >= 0 && r->o->loops > 0)
        total = r->total * r->o->loops;
    if (total > 0 && r->scheduled > 0 && elapsed > 0) {
        double left = (double)(total - (int64_t)r->scheduled) * elapsed / (double)r->scheduled;
        snprintf(eta, sizeof(eta), ", ETA %.0fs", left > 0 ? left : 0);
    }
    if (r->o->sched.mode != HC_SCHED_MAX)
        snprintf(late, sizeof(late), ", lateness %" PRId64 " us", r->last_lateness / 1000);
    if (total >= 0)
        tool_status("sent %" PRIu64 ", message %" PRIu64 "/%" PRId64 " (%.0f%%), %.0f msg/s%s%s",
                    r->sent, r->scheduled, total,
                    total ? 100.0 * (double)r->scheduled / (double)total : 100.0, rate, eta, late);
    else
        tool_status("sent %" PRIu64 ", %.0f msg/s%s", r->sent, rate, late);
}

static double us(int64_t ns)
{
    return (double)ns / 1000.0;
}

static void report(struct run *r)
{
    struct hc_sched_stats st;
    double duration = (double)(r->end_mono - r->start_mono) / 1e9;
    double rate = duration > 0 ? (double)r->sent / duration : 0;
    bool timed = r->o->sched.mode != HC_SCHED_MAX;
    bool kept;

    hc_sched_stats(r->sched, &st);
    kept = timed && st.count > 0 && st.p99_ns < KEPT_P99_LIMIT_NS;
    tool_status_clear();
    if (tool_verbosity >= 1) {
        fprintf(stderr,
                "%s: sent %" PRIu64 " messages, %" PRIu64 " failed, in %.3f s: %.0f msg/s "
                "(%s timing%s)\n",
                tool_name, r->sent, r->failed, duration, rate, mode_name(r->o->sched.mode),
                r->interrupted ? ", interrupted" : "");
        if (r->invalid_topics)
            fprintf(stderr, "%s: %" PRIu64 " messages not sent: invalid topic\n", tool_name,
                    r->invalid_topics);
        if (r->invalid_input)
            fprintf(stderr, "%s: %" PRIu64 " input lines not sent: not a valid message\n",
                    tool_name, r->invalid_input);
        if (timed && st.count)
            fprintf(stderr,
                    "%s: lateness p50 %.0f us, p99 %.0f us, max %.0f us over %" PRIu64
                    " messages; schedule kept: %s (p99 under 1000 us)\n",
                    tool_name, us(st.p50_ns), us(st.p99_ns), us(st.max_ns), st.count,
                    kept ? "yes" : "no");
        else if (!timed)
            fprintf(stderr, "%s: lateness not measured (--max has no schedule)\n", tool_name);
        if (r->skipped)
            fprintf(stderr, "%s: %" PRIu64 " messages belong to other shards\n", tool_name,
                    r->skipped);
        if (r->reconnects)
            fprintf(stderr,
                    "%s: connection lost %" PRIu64 " times: %" PRIu64
                    " messages resent, up to %" PRIu64 " QoS 0 messages may have been lost\n",
                    tool_name, r->reconnects, r->resent, r->qos0_maybe_lost);
    }
    if (r->o->report_json) {
        cJSON *j = cJSON_CreateObject();
        cJSON *lat;
        char *text;
        FILE *fp;

        cJSON_AddStringToObject(j, "input", r->o->input);
        cJSON_AddStringToObject(j, "mode", mode_name(r->o->sched.mode));
        if (r->o->sched.mode == HC_SCHED_SPEED)
            cJSON_AddNumberToObject(j, "speed", r->o->sched.speed);
        if (r->o->sched.mode == HC_SCHED_RATE)
            cJSON_AddNumberToObject(j, "rate", r->o->sched.rate);
        cJSON_AddNumberToObject(j, "sent", (double)r->sent);
        cJSON_AddNumberToObject(j, "failed", (double)r->failed);
        cJSON_AddNumberToObject(j, "resent", (double)r->resent);
        cJSON_AddNumberToObject(j, "reconnects", (double)r->reconnects);
        cJSON_AddNumberToObject(j, "qos0_maybe_lost", (double)r->qos0_maybe_lost);
        cJSON_AddNumberToObject(j, "invalid_topics", (double)r->invalid_topics);
        cJSON_AddNumberToObject(j, "invalid_input", (double)r->invalid_input);
        cJSON_AddNumberToObject(j, "other_shards", (double)r->skipped);
        cJSON_AddNumberToObject(j, "passes", (double)r->passes);
        cJSON_AddBoolToObject(j, "interrupted", r->interrupted);
        cJSON_AddNumberToObject(j, "duration_s", duration);
        cJSON_AddNumberToObject(j, "rate_msg_s", rate);
        if (timed && st.count > 0) {
            lat = cJSON_AddObjectToObject(j, "lateness_us");
            cJSON_AddNumberToObject(lat, "count", (double)st.count);
            cJSON_AddNumberToObject(lat, "p50", us(st.p50_ns));
            cJSON_AddNumberToObject(lat, "p90", us(st.p90_ns));
            cJSON_AddNumberToObject(lat, "p99", us(st.p99_ns));
            cJSON_AddNumberToObject(lat, "p999", us(st.p999_ns));
            cJSON_AddNumberToObject(lat, "max", us(st.max_ns));
            cJSON_AddNumberToObject(lat, "mean", st.mean_ns / 1000.0);
            cJSON_AddBoolToObject(j, "schedule_kept", kept);
        } else {
            /* --max has no schedule, and nothing sent has no lateness: unknown, not "0" */
            cJSON_AddNullToObject(j, "lateness_us");
            cJSON_AddNullToObject(j, "schedule_kept");
        }
        cJSON_AddStringToObject(j, "schedule_kept_rule", "p99 lateness under 1000 us");
        text = cJSON_Print(j);
        fp = r->report_fp;
        r->report_fp = NULL;
        if (!fp || !text || fprintf(fp, "%s\n", text) < 0 || fclose(fp) != 0) {
            tool_error("cannot write report '%s': %s", r->o->report_json, strerror(errno));
            r->fatal = true;
        }
        free(text);
        cJSON_Delete(j);
    }
}

/* --- the replay loop ------------------------------------------------------------------------- */

static hc_err replay_message(struct run *r, const struct hc_msg *msg, hc_error *err)
{
    const struct hreplay_opts *o = r->o;
    int qos = o->qos >= 0 ? o->qos : msg->qos;
    bool retain = o->retain_never ? false : msg->retain;

    for (long k = 0; k < o->fanout; k++) {
        const char *key;
        size_t key_len;
        bool has_device;
        const unsigned char *payload = msg->payload;
        size_t len = msg->payload_len;
        uint64_t h;
        hc_err rc;

        hc_error terr = HC_ERROR_INIT;

        if (!build_topic(r, msg->topic, k, &key, &key_len, &has_device))
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        if (k > 0 && !has_device)
            break; /* no device to derive copies from: the message goes out once */
        if (hc_topic_name_validate(r->topic.p, &terr) != HC_OK) {
            /* a broker closes the connection on an invalid topic: never send one */
            r->invalid_topics++;
            r->failed++;
            if (r->failed <= MAX_FAILURES_SHOWN) {
                tool_status_clear();
                tool_error("message %" PRIu64 " not sent: %s", r->scheduled, terr.message);
                if (r->failed == MAX_FAILURES_SHOWN)
                    tool_error("further failed messages are counted, not shown");
            }
            continue;
        }
        h = hreplay_hash(key, key_len);
        if (o->shard_n > 1 &&
            hreplay_shard_of(h, (unsigned)o->shard_n) != (unsigned)o->shard_k - 1) {
            r->skipped++;
            continue;
        }
        if (o->rebase_time)
            payload = rebase_payload(r, msg, &len);
        rc = publish(r, &r->conns[hreplay_connection_of(h, (unsigned)r->n_conns)], r->topic.p,
                     payload, len, qos, retain, err);
        if (rc == HC_OK) {
            r->sent++;
        } else if (r->fatal) {
            r->failed++; /* this message was never sent */
            return rc;
        } else if (rc == HC_ERR_INTERRUPTED) {
            return rc;
        } else {
            message_failed(r, r->topic.p, err->message);
        }
    }
    return HC_OK;
}

static void flush_all(struct run *r)
{
    /* a failure shows again, and is handled, at the connection's next publish */
    for (size_t i = 0; i < r->n_conns; i++)
        hc_mqtt_flush(r->conns[i].m);
}

/* Input that trickles (a pipe): what is batched leaves now, not when the batch fills. */
static void flush_on_wait(void *ctx)
{
    flush_all(ctx);
}

static hc_err replay(struct run *r, struct source *src, hc_error *err)
{
    const struct hreplay_opts *o = r->o;
    bool timed = o->sched.mode != HC_SCHED_MAX;
    struct hc_msg msg;
    hc_err rc = HC_OK;

    r->start_mono = mono_now();
    r->start_real = hc_time_realtime_ns();
    r->last_progress = r->start_mono;
    /*
     * The schedule starts when the first message is in hand (hc_sched_due's default), not
     * before the input is opened: otherwise the first messages start out late and, at high
     * speeds, hundreds of them are late while the replay catches up.
     */
    for (uint64_t pass = 0; o->loops == 0 || pass < (uint64_t)o->loops; pass++) {
        uint64_t before = r->scheduled;

        rc = source_open(src, err);
        if (rc != HC_OK)
            return rc;
        for (;;) {
            int64_t due, now = 0;

            if (tool_stop_requested) {
                r->interrupted = true;
                break;
            }
            rc = source_next(src, &msg, err);
            if (rc == HC_DONE)
                break;
            if (rc == HC_ERR_PARSE && !src->is_db) {
                /* a line that is no message (e.g. a topic MQTT forbids): it fails, the rest go */
                r->failed++;
                r->invalid_input++;
                if (r->failed <= MAX_FAILURES_SHOWN) {
                    tool_status_clear();
                    tool_error("%s", err->message);
                }
                continue;
            }
            if (rc != HC_OK)
                goto out;
            r->scheduled++;
            due = hc_sched_due(r->sched, msg.timeline_ns);
            if (timed) {
                /*
                 * Messages already due go out together in one write (catching up after a
                 * stall costs far less); what is buffered leaves before we sleep.
                 */
                if (due > mono_now())
                    flush_all(r);
                if (!hc_sched_wait(r->sched, due, &tool_stop_requested, &now)) {
                    r->interrupted = true;
                    break;
                }
                r->last_lateness = now - due;
                hc_sched_record(r->sched, now - due);
                if (r->lateness_log)
                    fprintf(r->lateness_log, "%" PRId64 "\n", now - due);
            }
            rc = replay_message(r, &msg, err);
            if (rc == HC_ERR_INTERRUPTED)
                break; /* r->interrupted is set */
            if (rc != HC_OK)
                goto out;
            if ((r->scheduled & 255) == 0 || timed) {
                if (!now)
                    now = mono_now();
                if (now - r->last_progress >= PROGRESS_EVERY_NS && tool_status_enabled())
                    progress(r, now);
            }
        }
        source_close(src);
        if (r->interrupted)
            break;
        if (r->scheduled == before) {
            /* nothing to repeat: an empty selection must not spin */
            tool_status_clear();
            tool_warn("nothing to replay: the selection is empty");
            break;
        }
        r->passes++;
        hc_sched_next_pass(r->sched);
    }
    rc = HC_OK;
out:
    source_close(src);
    return rc;
}

int hreplay_run(struct hreplay_opts *o)
{
    struct spin_clock spin = {hc_clock_real(), o->spin_ns};
    struct hc_clock spin_clock = {spin_now, spin_sleep_until, &spin};
    struct source src = {.o = o};
    struct run r = {.o = o};
    hc_error err = HC_ERROR_INIT;
    hc_err rc;
    int code = TOOL_EXIT_FAILURE;
    bool qos2_limit_stated = false;

    if (tool_mqtt_resolve(&o->mqtt, "mqtt://localhost:1883", &r.mo) != OPTS_OK)
        return TOOL_EXIT_USAGE;
    hc_mqtt_parse_url(r.mo.url, &r.url, NULL);
    r.mo.max_inflight = (int)o->inflight;
    r.mo.cancel = &tool_stop_requested;
    if (o->report_json) {
        /* found now, not after the whole replay */
        r.report_fp = fopen(o->report_json, "w");
        if (!r.report_fp) {
            tool_error("cannot write '%s': %s", o->report_json, strerror(errno));
            return TOOL_EXIT_FAILURE;
        }
    }

    src.on_wait = flush_on_wait;
    src.wait_ctx = &r;
    rc = tool_detect_input(o->input, &src.is_db, &err);
    if (rc == HC_OK)
        rc = source_prepare(&src, o, &r.total, &err);
    if (rc == HC_ERR_INVALID && !err.message[0])
        return TOOL_EXIT_USAGE; /* tool_select_resolve printed it */
    if (rc != HC_OK) {
        tool_error("%s", err.message);
        goto out;
    }
    rc = hc_sched_new(&o->sched, &spin_clock, &r.sched, &err);
    if (rc != HC_OK) {
        tool_error("%s", err.message);
        goto out;
    }
    if (o->lateness_log) {
        r.lateness_log = fopen(o->lateness_log, "w");
        if (!r.lateness_log) {
            tool_error("cannot write '%s': %s", o->lateness_log, strerror(errno));
            goto out;
        }
    }

    if (o->qos == 2 || o->qos < 0) {
        /*
         * QoS 2 beyond the broker's in-flight limit is acknowledged and dropped by Mosquitto:
         * ask the broker for its limit once, before the schedule starts (libcore would ask at
         * the first QoS 2 message otherwise, making that one late).
         */
        int limit = hc_mqtt_probe_receive_maximum(&r.mo);
        r.mo.max_inflight_qos2 = limit > 0 ? limit : HREPLAY_SAFE_QOS2_WINDOW;
        qos2_limit_stated = limit > 0;
    }
    r.n_conns = (size_t)o->connections;
    r.conns = calloc(r.n_conns, sizeof(*r.conns));
    if (!r.conns) {
        tool_error("out of memory");
        goto out;
    }
    for (size_t i = 0; i < r.n_conns; i++) {
        struct conn *c = &r.conns[i];
        if (r.n_conns == 1)
            snprintf(c->client_id, sizeof(c->client_id), "%s", r.mo.client_id);
        else
            snprintf(c->client_id, sizeof(c->client_id), "%.160s-c%u", r.mo.client_id,
                     (unsigned)(i + 1));
        c->ring_cap = 4 * (size_t)o->inflight;
        c->ring = calloc(c->ring_cap, sizeof(*c->ring));
        if (!c->ring) {
            tool_error("out of memory");
            goto out;
        }
        rc = connect_initial(&r, c, &err);
        if (rc != HC_OK) {
            tool_error("%s", err.message);
            goto out;
        }
    }
    tool_info("replaying '%s' to %s (%s timing, %zu connection%s)", o->input, r.mo.url,
              mode_name(o->sched.mode), r.n_conns, r.n_conns == 1 ? "" : "s");
    if (r.mo.max_inflight_qos2 && r.mo.max_inflight_qos2 < r.mo.max_inflight)
        tool_info("at most %d QoS 2 messages in flight per connection (%s)",
                  r.mo.max_inflight_qos2,
                  qos2_limit_stated ? "the broker's Receive Maximum"
                                    : "the broker does not state its limit");

    rc = replay(&r, &src, &err);
    if (rc != HC_OK && !r.fatal) {
        tool_status_clear();
        tool_error("%s", err.message);
    } else if (rc != HC_OK) {
        tool_status_clear();
        tool_error("%s", err.message);
    }
    for (size_t i = 0; i < r.n_conns; i++) {
        struct conn *c = &r.conns[i];
        if (r.fatal) {
            /* nothing more is confirmed on any connection */
            r.failed += hc_mqtt_inflight(c->m);
            r.qos0_maybe_lost += c->qos0_since_connect;
            continue;
        }
        if (r.interrupted || tool_stop_requested) {
            /* after Ctrl-C: a short grace for acknowledgements already on their way */
            r.interrupted = true;
            hc_mqtt_set_cancel(c->m, NULL);
            drain(&r, c, INTERRUPT_DRAIN_MS);
        } else {
            /* a broker that stops acknowledging is noticed after --keepalive and then given
             * up on after --give-up: this bound is only a backstop */
            drain(&r, c, (int)(o->give_up_ns / 1000000) + 1000 * (r.mo.keepalive_s > 0 ? r.mo.keepalive_s : 60));
        }
    }
    r.end_mono = mono_now();
    if (r.lateness_log && fflush(r.lateness_log) != 0) {
        tool_error("cannot write '%s': %s", o->lateness_log, strerror(errno));
        r.fatal = true;
    }
    report(&r);
    code = rc == HC_OK && !r.fatal && r.failed == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
out:
    if (r.conns) {
        for (size_t i = 0; i < r.n_conns; i++) {
            struct conn *c = &r.conns[i];
            if (c->m)
                hc_mqtt_disconnect(c->m, 1000);
            hc_mqtt_free(c->m);
            for (size_t e = 0; c->ring && e < c->ring_cap; e++) {
                free(c->ring[e].topic);
                free(c->ring[e].payload);
            }
            free(c->ring);
        }
        free(r.conns);
    }
    if (r.lateness_log)
        fclose(r.lateness_log);
    if (r.report_fp)
        fclose(r.report_fp);
    source_close(&src);
    hc_store_close(src.st, NULL);
    hc_sched_free(r.sched);
    free(r.remapped.p);
    free(r.topic.p);
    free(r.payload.p);
    return code;
}

/*
 * Fault injection's stream (see hcore/faults.h): the per-message decisions, and the holds that
 * make messages late or out of order. The plan comes from faults.c, the payload rewrites from
 * faults_payload.c.
 *
 * A message's way through hc_faults_push, in this order: drop (then nothing else); the payload
 * (skew, stale, future, then corrupt); the flags (retain, redeliver, disconnect, dup); then at
 * most one of the holds: the device's backlog, delay, or a reorder window. A message leaves the
 * holds through emit(), which also sends dup's copies on their way.
 */
#include "hcore/faults.h"

#include <stdlib.h>
#include <string.h>

#include "faults_internal.h"
#include "internal.h"

/* --- draws -------------------------------------------------------------------------------------
 */

/* The n-th draw of kind for input position seq: the same on every run and machine. */
static uint64_t draw(uint64_t seed, enum hc_fault_kind kind, uint64_t seq, unsigned n)
{
    uint64_t kind_n = hc__faults_mix64(((uint64_t)kind << 8 | n) * 0xd6e8feb86659fd93ULL);
    return hc__faults_mix64(seed ^ hc__faults_mix64(seq ^ kind_n));
}

/* A double in [0, 1) from the top 53 bits: exact, so every machine compares alike. */
static double unit(uint64_t x)
{
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

/* --- the stream's storage ----------------------------------------------------------------------
 */

static void list_add(struct list *l, struct item *it)
{
    it->next = NULL;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->n++;
}

static struct item *list_take(struct list *l)
{
    struct item *it = l->head;
    if (!it)
        return NULL;
    l->head = it->next;
    if (!l->head)
        l->tail = NULL;
    l->n--;
    it->next = NULL;
    return it;
}

/* An item holding a copy of msg (topic and payload owned). */
static struct item *item_new(hc_faults_stream *s, const struct hc_msg *msg, uint64_t seq)
{
    struct item *it = list_take(&s->spare);
    size_t tlen = strlen(msg->topic) + 1;

    if (!it) {
        it = calloc(1, sizeof(*it));
        if (!it)
            return NULL;
    }
    if (!hc__grow((void **)&it->topic, &it->topic_cap, tlen, 1, 64) ||
        !hc__grow((void **)&it->payload, &it->payload_cap, msg->payload_len + 1, 1, 64)) {
        list_add(&s->spare, it);
        return NULL;
    }
    memset(&it->o, 0, sizeof(it->o));
    memcpy(it->topic, msg->topic, tlen);
    if (msg->payload_len)
        memcpy(it->payload, msg->payload, msg->payload_len);
    it->o.msg = *msg;
    it->o.msg.topic = it->topic;
    it->o.msg.payload = it->payload;
    it->o.seq = seq;
    it->o.original_len = msg->payload_len;
    it->key = 0;
    it->release_at = 0;
    return it;
}

static void item_free(struct item *it)
{
    if (!it)
        return;
    free(it->topic);
    free(it->payload);
    free(it);
}

static void list_free(struct list *l)
{
    struct item *it;
    while ((it = list_take(l)))
        item_free(it);
}

/* --- the heap of held messages (delay, backlog) ------------------------------------------------
 */

static bool heap_less(const struct item *a, const struct item *b)
{
    return a->key < b->key || (a->key == b->key && a->o.seq < b->o.seq);
}

static bool heap_push(hc_faults_stream *s, struct item *it)
{
    size_t i;
    if (!hc__grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof(*s->heap), 64))
        return false;
    i = s->heap_n++;
    while (i > 0 && heap_less(it, s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = it;
    s->held++;
    return true;
}

static struct item *heap_pop(hc_faults_stream *s)
{
    struct item *top = s->heap[0], *last = s->heap[--s->heap_n];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_n)
            break;
        if (c + 1 < s->heap_n && heap_less(s->heap[c + 1], s->heap[c]))
            c++;
        if (!heap_less(s->heap[c], last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_n)
        s->heap[i] = last;
    s->held--;
    return top;
}

/* --- devices -----------------------------------------------------------------------------------
 */

/* The device a message belongs to: the last level of a 7-level Haltian or Thingsee topic, else
 * the whole topic (as the replay engine decides connections). */
static uint64_t device_key(const char *topic)
{
    const char *last = topic;
    size_t levels = 1;
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const char *p = topic; *p; p++)
        if (*p == '/') {
            levels++;
            last = p + 1;
        }
    if (levels != 7 || (strncmp(topic, "haltian-iot/events/", 19) != 0 &&
                        strncmp(topic, "cloudext/json/", 14) != 0))
        last = topic;
    for (const char *p = last; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 0x100000001b3ULL;
    }
    h = hc__faults_mix64(h);
    return h ? h : 1;
}

static struct dev *dev_find(hc_faults_stream *s, uint64_t key, bool create)
{
    size_t i;

    if (create && (s->dev_n + 1) * 10 > s->dev_cap * 7) {
        size_t cap = s->dev_cap ? s->dev_cap * 2 : 64;
        struct dev *nd = calloc(cap, sizeof(*nd));
        if (!nd)
            return NULL;
        for (size_t j = 0; j < s->dev_cap; j++) {
            if (!s->devs[j].key)
                continue;
            for (i = s->devs[j].key & (cap - 1); nd[i].key; i = (i + 1) & (cap - 1))
                ;
            nd[i] = s->devs[j];
        }
        free(s->devs);
        s->devs = nd;
        s->dev_cap = cap;
    }
    if (!s->dev_cap)
        return NULL;
    for (i = key & (s->dev_cap - 1); s->devs[i].key; i = (i + 1) & (s->dev_cap - 1))
        if (s->devs[i].key == key)
            return &s->devs[i];
    if (!create)
        return NULL;
    s->devs[i].key = key;
    s->dev_n++;
    return &s->devs[i];
}

/* --- emitting ----------------------------------------------------------------------------------
 */

static void set_due(hc_faults_stream *s, struct hc_msg *msg)
{
    if (s->have_due && msg->timeline_ns < s->last_due)
        msg->timeline_ns = s->last_due;
    s->last_due = msg->timeline_ns;
    s->have_due = true;
}

static void release_dups(hc_faults_stream *s)
{
    while (s->dups.head && s->dups.head->release_at <= s->originals) {
        struct item *c = list_take(&s->dups);
        s->held--;
        set_due(s, &c->o.msg);
        list_add(&s->ready, c);
    }
}

/* Makes it ready; a dup's copy follows right away or joins those waiting for :after. */
static bool emit(hc_faults_stream *s, struct item *it)
{
    struct item *copy = NULL;

    set_due(s, &it->o.msg);
    list_add(&s->ready, it);
    if (it->o.applied & HC_FAULT_BIT(HC_FAULT_DROP))
        return true;
    if ((it->o.applied & HC_FAULT_BIT(HC_FAULT_DUP)) && !it->o.copy) {
        copy = item_new(s, &it->o.msg, it->o.seq);
        if (!copy)
            return false;
        copy->o.applied = HC_FAULT_BIT(HC_FAULT_DUP);
        copy->o.copy = true;
        copy->o.dup_after = it->o.dup_after;
        copy->o.original_len = it->o.original_len;
        copy->o.msg.retain = it->o.msg.retain;
        /* the copy is the message as sent, not as recorded: only the DUP fault is its own */
        it->o.applied &= ~HC_FAULT_BIT(HC_FAULT_DUP);
        copy->release_at = s->originals + 1 + (uint64_t)it->o.dup_after;
        list_add(&s->dups, copy);
        s->held++;
    }
    s->originals++;
    release_dups(s);
    return true;
}

/* A reorder window is complete: its last message (the partner) goes first, the chosen first
 * message last; partner NULL when the input ended first (the chosen one then goes last). */
static bool flush_window(hc_faults_stream *s, struct list *w, bool complete)
{
    struct item *chosen = list_take(w), *it, *partner = NULL;
    s->held--;
    if (complete && w->tail) {
        /* move the partner to the front */
        partner = w->tail;
        if (w->head == partner) {
            w->head = w->tail = NULL;
        } else {
            for (it = w->head; it->next != partner; it = it->next)
                ;
            it->next = NULL;
            w->tail = it;
        }
        w->n--;
        s->held--;
        if (!emit(s, partner))
            return false;
    }
    while ((it = list_take(w))) {
        s->held--;
        if (!emit(s, it))
            return false;
    }
    chosen->o.partner_seq = partner ? partner->o.seq : 0;
    return emit(s, chosen);
}

/* --- the stream --------------------------------------------------------------------------------
 */

hc_err hc_faults_stream_new(const struct hc_faults_stream_options *opts, hc_faults_stream **out,
                            hc_error *err)
{
    hc_faults_stream *s;

    *out = NULL;
    if (!opts || !opts->plan)
        return hc_error_set(err, HC_ERR_INVALID, "no fault plan");
    s = calloc(1, sizeof(*s));
    if (!s)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    s->o = *opts;
    s->f = opts->plan;
    *out = s;
    return HC_OK;
}

void hc_faults_stream_free(hc_faults_stream *s)
{
    if (!s)
        return;
    item_free(s->popped);
    list_free(&s->ready);
    list_free(&s->spare);
    list_free(&s->win);
    list_free(&s->dups);
    for (size_t i = 0; i < s->heap_n; i++)
        item_free(s->heap[i]);
    free(s->heap);
    for (size_t i = 0; i < s->dev_cap; i++)
        list_free(&s->devs[i].win);
    free(s->devs);
    free(s->scratch);
    free(s);
}

size_t hc_faults_held(const hc_faults_stream *s)
{
    return s ? s->held : 0;
}

static void recycle(hc_faults_stream *s)
{
    if (s->popped) {
        list_add(&s->spare, s->popped);
        s->popped = NULL;
    }
    s->pass = false;
}

/* Makes ready every held message due at or before t (recording time). */
static bool release_due(hc_faults_stream *s, int64_t t)
{
    while (s->heap_n && s->heap[0]->key <= t)
        if (!emit(s, heap_pop(s)))
            return false;
    return true;
}

static bool fires(const hc_faults_stream *s, enum hc_fault_kind k, uint64_t seq)
{
    const struct rule *r = &s->f->r[k];
    return r->on && r->p > 0 && unit(draw(s->o.seed, k, seq, 0)) < r->p;
}

/* The drop decision: independent, or the Gilbert-Elliott chain when :burst is given. */
static bool drop_decision(hc_faults_stream *s, uint64_t seq)
{
    const struct rule *r = &s->f->r[HC_FAULT_DROP];
    double u;

    if (!r->on)
        return false;
    if (r->burst <= 0)
        return fires(s, HC_FAULT_DROP, seq);
    u = unit(draw(s->o.seed, HC_FAULT_DROP, seq, 0));
    if (s->ge_bad)
        s->ge_bad = !(u < 1.0 / r->burst);
    else
        s->ge_bad = u < r->ge_enter;
    return s->ge_bad;
}

/* The per-device constant clock offset of skew: uniform in [-bound, +bound], in whole ms when
 * the bound is at least 1 ms (payload timestamps rarely carry more). */
static int64_t skew_of(const hc_faults_stream *s, uint64_t dev)
{
    int64_t bound = s->f->r[HC_FAULT_SKEW].by_ns, unit_ns = bound >= 1000000 ? 1000000 : 1;
    uint64_t steps = (uint64_t)(bound / unit_ns);
    uint64_t r = draw(s->o.seed, HC_FAULT_SKEW, dev, 0);
    return ((int64_t)(r % (2 * steps + 1)) - (int64_t)steps) * unit_ns;
}

/* The reorder stage (after the holds): joins or opens a window, or goes out. */
static bool reorder_stage(hc_faults_stream *s, struct item *it, bool chosen, uint64_t dev)
{
    const struct rule *r = &s->f->r[HC_FAULT_REORDER];
    struct list *w = &s->win;
    long *need = &s->win_need;
    struct dev *d = NULL;

    if (r->on && r->device_scope && (chosen || s->dev_windows)) {
        d = dev_find(s, dev, chosen);
        if (chosen && !d)
            return false;
        if (d) {
            w = &d->win;
            need = &d->need;
        }
    } else if (r->device_scope) {
        return emit(s, it);
    }
    if (w->n) {
        list_add(w, it);
        s->held++;
        if (--*need == 0) {
            if (d)
                s->dev_windows--;
            return flush_window(s, w, true);
        }
        return true;
    }
    if (!chosen || (r->device_scope && !d))
        return emit(s, it);
    it->o.applied |= HC_FAULT_BIT(HC_FAULT_REORDER);
    it->o.window = r->window;
    *need = 1 + (long)(draw(s->o.seed, HC_FAULT_REORDER, it->o.seq, 1) % (uint64_t)r->window);
    list_add(w, it);
    s->held++;
    if (d)
        s->dev_windows++;
    return true;
}

/* The flags and payload faults of an in-scope message; true when any fired. */
static unsigned decide(hc_faults_stream *s, const struct hc_msg *msg, uint64_t seq, uint64_t *dev,
                       bool *have_dev)
{
    const hc_faults *f = s->f;
    unsigned fired = 0;
    int qos = s->o.qos >= 0 ? s->o.qos : msg->qos;

    for (int k = HC_FAULT_DUP; k < HC_FAULT__COUNT; k++) {
        if (!(f->kinds & HC_FAULT_BIT(k)))
            continue;
        switch (k) {
        case HC_FAULT_SKEW:
            *dev = device_key(msg->topic);
            *have_dev = true;
            if (skew_of(s, *dev) != 0)
                fired |= HC_FAULT_BIT(k);
            break;
        case HC_FAULT_REDELIVER:
            if (qos > 0 && fires(s, (enum hc_fault_kind)k, seq))
                fired |= HC_FAULT_BIT(k);
            break;
        case HC_FAULT_DISCONNECT:
            if (f->r[k].every_ns) {
                if (!s->have_disconnect) {
                    s->next_disconnect = msg->timeline_ns + f->r[k].every_ns;
                    s->have_disconnect = true;
                } else if (msg->timeline_ns >= s->next_disconnect) {
                    fired |= HC_FAULT_BIT(k);
                    while (s->next_disconnect <= msg->timeline_ns)
                        s->next_disconnect += f->r[k].every_ns;
                }
            } else if (fires(s, (enum hc_fault_kind)k, seq)) {
                fired |= HC_FAULT_BIT(k);
            }
            break;
        default:
            if (fires(s, (enum hc_fault_kind)k, seq))
                fired |= HC_FAULT_BIT(k);
            break;
        }
    }
    return fired;
}

/* Applies the payload faults and records the parameters of the others. */
static bool apply(hc_faults_stream *s, struct item *it, unsigned fired, uint64_t dev)
{
    const hc_faults *f = s->f;
    int64_t delta = 0;

    it->o.applied |= fired & ~(HC_FAULT_BIT(HC_FAULT_REORDER) | HC_FAULT_BIT(HC_FAULT_DELAY) |
                               HC_FAULT_BIT(HC_FAULT_BACKLOG) | HC_FAULT_BIT(HC_FAULT_SKEW) |
                               HC_FAULT_BIT(HC_FAULT_STALE) | HC_FAULT_BIT(HC_FAULT_FUTURE));
    if (fired & HC_FAULT_BIT(HC_FAULT_SKEW))
        delta += it->o.skew_ns = skew_of(s, dev);
    if (fired & HC_FAULT_BIT(HC_FAULT_STALE))
        delta -= it->o.stale_ns = f->r[HC_FAULT_STALE].by_ns;
    if (fired & HC_FAULT_BIT(HC_FAULT_FUTURE))
        delta += it->o.future_ns = f->r[HC_FAULT_FUTURE].by_ns;
    if (fired & (HC_FAULT_BIT(HC_FAULT_SKEW) | HC_FAULT_BIT(HC_FAULT_STALE) |
                 HC_FAULT_BIT(HC_FAULT_FUTURE))) {
        if (!hc__faults_shift_times(s, it, delta))
            return false;
        /* only a timestamp that moved is a fault applied */
        if (it->o.times_changed)
            it->o.applied |= fired & (HC_FAULT_BIT(HC_FAULT_SKEW) | HC_FAULT_BIT(HC_FAULT_STALE) |
                                      HC_FAULT_BIT(HC_FAULT_FUTURE));
    }
    if ((fired & HC_FAULT_BIT(HC_FAULT_CORRUPT)) &&
        !hc__faults_corrupt(s, it, draw(s->o.seed, HC_FAULT_CORRUPT, it->o.seq, 1)))
        return false;
    if (fired & HC_FAULT_BIT(HC_FAULT_RETAIN))
        it->o.msg.retain = true;
    if (fired & HC_FAULT_BIT(HC_FAULT_DUP))
        it->o.dup_after = f->r[HC_FAULT_DUP].after;
    return true;
}

hc_err hc_faults_push(hc_faults_stream *s, const struct hc_msg *msg, hc_error *err)
{
    const hc_faults *f = s->f;
    uint64_t seq = ++s->seq, dev = 0;
    bool have_dev = false, in_scope, drop;
    unsigned fired = 0;
    struct item *it;
    struct dev *d = NULL;

    recycle(s);
    if (s->heap_n && !release_due(s, msg->timeline_ns))
        goto nomem;
    in_scope = !s->o.in_scope || s->o.in_scope(s->o.scope_ctx, msg);
    if (in_scope) {
        drop = drop_decision(s, seq);
        if (drop) {
            it = item_new(s, msg, seq);
            if (!it)
                goto nomem;
            it->o.applied = HC_FAULT_BIT(HC_FAULT_DROP);
            it->o.in_burst = s->dropped_last;
            s->dropped_last = true;
            set_due(s, &it->o.msg);
            list_add(&s->ready, it);
            return HC_OK;
        }
        s->dropped_last = false;
        fired = decide(s, msg, seq, &dev, &have_dev);
        /* a device already holding its messages back keeps them */
        if (s->dev_holds) {
            if (!have_dev)
                dev = device_key(msg->topic);
            have_dev = true;
            d = dev_find(s, dev, false);
            if (d && d->hold_from && msg->timeline_ns >= d->hold_until) {
                d->hold_from = 0;
                s->dev_holds--;
            }
            if (d && !d->hold_from)
                d = NULL;
        }
    }
    if (!fired && !d && !s->win.n && !s->dev_windows && !s->dups.n) {
        /* the common case: out as it came, no copy */
        s->pass = true;
        s->pass_msg = *msg;
        s->pass_seq = seq;
        set_due(s, &s->pass_msg);
        s->originals++;
        return HC_OK;
    }
    it = item_new(s, msg, seq);
    if (!it || !apply(s, it, fired, dev))
        goto nomem;
    if (!have_dev && (fired & HC_FAULT_BIT(HC_FAULT_BACKLOG) ||
                      (f->r[HC_FAULT_REORDER].device_scope &&
                       (s->dev_windows || (fired & HC_FAULT_BIT(HC_FAULT_REORDER)))))) {
        dev = device_key(msg->topic);
        have_dev = true;
    }
    if (d) {
        it->o.applied |= HC_FAULT_BIT(HC_FAULT_BACKLOG);
        it->o.hold_ns = f->r[HC_FAULT_BACKLOG].hold_ns;
        it->o.backlog_from = d->hold_from;
        it->key = d->hold_until;
        return heap_push(s, it) ? HC_OK : hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    if (fired & HC_FAULT_BIT(HC_FAULT_BACKLOG)) {
        d = dev_find(s, dev, true);
        if (!d)
            goto nomem;
        d->hold_from = seq;
        d->hold_until = msg->timeline_ns + f->r[HC_FAULT_BACKLOG].hold_ns;
        s->dev_holds++;
        it->o.applied |= HC_FAULT_BIT(HC_FAULT_BACKLOG);
        it->o.hold_ns = f->r[HC_FAULT_BACKLOG].hold_ns;
        it->o.backlog_from = seq;
        it->key = d->hold_until;
        return heap_push(s, it) ? HC_OK : hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    if (fired & HC_FAULT_BIT(HC_FAULT_DELAY)) {
        it->o.applied |= HC_FAULT_BIT(HC_FAULT_DELAY);
        it->o.delay_ns = f->r[HC_FAULT_DELAY].by_ns;
        it->key = msg->timeline_ns + it->o.delay_ns;
        return heap_push(s, it) ? HC_OK : hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    }
    if (!reorder_stage(s, it, (fired & HC_FAULT_BIT(HC_FAULT_REORDER)) != 0, dev))
        goto nomem;
    return HC_OK;
nomem:
    return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
}

static int cmp_window_start(const void *a, const void *b)
{
    const struct dev *x = *(const struct dev *const *)a, *y = *(const struct dev *const *)b;
    return x->win.head->o.seq < y->win.head->o.seq ? -1 : 1;
}

hc_err hc_faults_finish(hc_faults_stream *s, hc_error *err)
{
    struct item *it;
    struct dev **open = NULL;
    size_t n_open = 0;

    recycle(s);
    /* the order is the one they would have had with more input: held messages by release
     * time, then the unfinished swaps (by their start), then the copies still waiting */
    if (s->heap_n && !release_due(s, INT64_MAX))
        goto nomem;
    if (s->win.n && !flush_window(s, &s->win, false))
        goto nomem;
    if (s->dev_windows) {
        open = malloc(s->dev_windows * sizeof(*open));
        if (!open)
            goto nomem;
        for (size_t i = 0; i < s->dev_cap; i++)
            if (s->devs[i].win.n)
                open[n_open++] = &s->devs[i];
        qsort(open, n_open, sizeof(*open), cmp_window_start);
        for (size_t i = 0; i < n_open; i++)
            if (!flush_window(s, &open[i]->win, false))
                goto nomem;
        free(open);
        open = NULL;
        s->dev_windows = 0;
    }
    while ((it = list_take(&s->dups))) {
        s->held--;
        set_due(s, &it->o.msg);
        list_add(&s->ready, it);
    }
    for (size_t i = 0; i < s->dev_cap; i++)
        s->devs[i].hold_from = 0;
    s->dev_holds = 0;
    s->have_disconnect = false;
    s->have_due = false; /* the next pass has its own timeline */
    return HC_OK;
nomem:
    free(open);
    return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
}

bool hc_faults_pop(hc_faults_stream *s, struct hc_faults_out *out)
{
    if (s->popped) {
        list_add(&s->spare, s->popped);
        s->popped = NULL;
    }
    if (s->ready.head) {
        s->popped = list_take(&s->ready);
        *out = s->popped->o;
        return true;
    }
    if (s->pass) {
        s->pass = false;
        memset(out, 0, sizeof(*out));
        out->msg = s->pass_msg;
        out->seq = s->pass_seq;
        out->original_len = s->pass_msg.payload_len;
        return true;
    }
    return false;
}

/*
 * Fault injection (see hcore/faults.h): the spec parser, the per-message decisions, the holds
 * that make messages late or out of order, the payload rewrites, and the log line of an event.
 *
 * A message's way through hc_faults_push, in this order: drop (then nothing else); the payload
 * (skew, stale, future, then corrupt); the flags (retain, redeliver, disconnect, dup); then at
 * most one of the holds: the device's backlog, delay, or a reorder window. A message leaves the
 * holds through emit(), which also sends dup's copies on their way.
 */
#include "hcore/faults.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcore/text.h"
#include "hcore/timefmt.h"
#include "internal.h"

#define MAX_WINDOW 1000000L
#define MAX_AFTER 1000000L
#define MAX_BURST 1e6
#define MAX_MEMBERS 64

const char *hc_faults_kind_name(enum hc_fault_kind kind)
{
    static const char *const names[] = {
#define NAME(name, text) text,
        HC_FAULTS_KIND_MAP(NAME)
#undef NAME
    };
    return (unsigned)kind < HC_FAULT__COUNT ? names[kind] : "?";
}

const char *hc_faults_corruption_name(enum hc_faults_corruption how)
{
    static const char *const names[] = {
#define NAME(name, text) text,
        HC_FAULTS_CORRUPTION_MAP(NAME)
#undef NAME
    };
    return (unsigned)how < HC_CORRUPT__COUNT ? names[how] : "?";
}

/* --- the plan ----------------------------------------------------------------------------------
 */

/* What a kind's value is, and which keys it takes (KEY_ bits). */
enum value_form { PROBABILITY, DURATION, PROBABILITY_OR_EVERY };
enum { KEY_BURST = 1, KEY_AFTER = 2, KEY_WINDOW = 4, KEY_SCOPE = 8, KEY_BY = 16, KEY_HOLD = 32 };

static const struct kind_def {
    enum value_form form;
    unsigned keys, required;
} kind_defs[HC_FAULT__COUNT] = {
    [HC_FAULT_DROP] = {PROBABILITY, KEY_BURST, 0},
    [HC_FAULT_DUP] = {PROBABILITY, KEY_AFTER, 0},
    [HC_FAULT_REDELIVER] = {PROBABILITY, 0, 0},
    [HC_FAULT_REORDER] = {PROBABILITY, KEY_WINDOW | KEY_SCOPE, 0},
    [HC_FAULT_DELAY] = {PROBABILITY, KEY_BY, KEY_BY},
    [HC_FAULT_STALE] = {PROBABILITY, KEY_BY, KEY_BY},
    [HC_FAULT_FUTURE] = {PROBABILITY, KEY_BY, KEY_BY},
    [HC_FAULT_SKEW] = {DURATION, 0, 0},
    [HC_FAULT_CORRUPT] = {PROBABILITY, 0, 0},
    [HC_FAULT_DISCONNECT] = {PROBABILITY_OR_EVERY, 0, 0},
    [HC_FAULT_RETAIN] = {PROBABILITY, 0, 0},
    [HC_FAULT_BACKLOG] = {PROBABILITY, KEY_HOLD, KEY_HOLD},
};

static const char *const key_names[] = {"burst", "after", "window", "scope", "by", "hold"};

struct rule {
    bool on;
    double p;          /* probability per message */
    int64_t by_ns;     /* delay, stale, future; skew: the bound */
    long window;       /* reorder */
    bool device_scope; /* reorder */
    long after;        /* dup */
    double burst;      /* drop: mean burst length, 0 when losses are independent */
    double ge_enter;   /* drop with burst: P(good -> bad) */
    int64_t every_ns;  /* disconnect every */
    int64_t hold_ns;   /* backlog */
    char *text;        /* the item as written */
};

struct hc_faults {
    struct rule r[HC_FAULT__COUNT];
    unsigned kinds; /* HC_FAULT_BIT of each kind on */
    char *spec;     /* canonical: the items in kind order */
};

static hc_err bad_item(hc_error *err, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* HC_ERR_INVALID "'<item>': <why>" */
static hc_err bad_item(hc_error *err, const char *item, const char *fmt, ...)
{
    char why[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return hc_error_set(err, HC_ERR_INVALID, "'%s': %s", item, why);
}

static bool parse_probability(const char *text, double *out)
{
    char *end;
    double v;

    if (!*text || !((*text >= '0' && *text <= '9') || *text == '.'))
        return false;
    v = strtod(text, &end);
    if (*end || !isfinite(v) || v < 0 || v > 1)
        return false;
    *out = v;
    return true;
}

static bool parse_count(const char *text, long min, long max, long *out)
{
    char *end;
    long v;

    if (!*text || *text < '0' || *text > '9')
        return false;
    v = strtol(text, &end, 10);
    if (*end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static hc_err parse_duration_value(const char *item, const char *what, const char *text,
                                   int64_t *out, hc_error *err)
{
    hc_error derr = HC_ERROR_INIT;

    if (hc_duration_parse(text, out, &derr) != HC_OK)
        return bad_item(err, item, "invalid duration '%.40s' for %s: %.120s", text, what,
                        derr.message);
    if (*out <= 0)
        return bad_item(err, item, "%s must be above 0", what);
    return HC_OK;
}

/* One key=value after the kind's value. */
static hc_err parse_key(struct rule *r, enum hc_fault_kind kind, const char *item, char *kv,
                        hc_error *err)
{
    char *eq = strchr(kv, '=');
    unsigned key = 0;
    const char *value;
    double d;

    if (!eq)
        return bad_item(err, item, "expected key=value after ':', got '%s'", kv);
    *eq = '\0';
    value = eq + 1;
    for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
        if (strcmp(kv, key_names[i]) == 0)
            key = 1u << i;
    if (!(key & kind_defs[kind].keys))
        return bad_item(err, item, "unknown key '%s' for %s", kv, hc_faults_kind_name(kind));
    switch (key) {
    case KEY_BURST:
        d = strtod(value, &eq);
        if (!*value || *eq || !isfinite(d) || d < 1 || d > MAX_BURST)
            return bad_item(err, item, "%s", "burst must be a mean length of at least 1");
        r->burst = d;
        break;
    case KEY_AFTER:
        if (!parse_count(value, 0, MAX_AFTER, &r->after))
            return bad_item(err, item, "%s", "after must be a count from 0 to 1000000");
        break;
    case KEY_WINDOW:
        if (!parse_count(value, 1, MAX_WINDOW, &r->window))
            return bad_item(err, item, "%s", "window must be a count from 1 to 1000000");
        break;
    case KEY_SCOPE:
        if (strcmp(value, "device") == 0)
            r->device_scope = true;
        else if (strcmp(value, "all") == 0)
            r->device_scope = false;
        else
            return bad_item(err, item, "%s", "scope must be device or all");
        break;
    case KEY_BY:
        return parse_duration_value(item, "by", value, &r->by_ns, err);
    case KEY_HOLD:
        return parse_duration_value(item, "hold", value, &r->hold_ns, err);
    default:
        break;
    }
    return HC_OK;
}

/* One item KIND=VALUE[:key=value]...; item is a writable copy, text the original. */
static hc_err parse_item(hc_faults *f, char *item, const char *text, hc_error *err)
{
    char *eq = strchr(item, '='), *value, *next;
    enum hc_fault_kind kind = HC_FAULT__COUNT;
    struct rule *r;
    unsigned seen = 0;
    hc_err rc;

    if (!*item)
        return hc_error_set(err, HC_ERR_INVALID, "empty item (two commas, or a comma at an end)");
    if (!eq)
        return bad_item(err, text, "%s", "expected KIND=VALUE");
    *eq = '\0';
    for (int k = 0; k < HC_FAULT__COUNT; k++)
        if (strcmp(item, hc_faults_kind_name((enum hc_fault_kind)k)) == 0)
            kind = (enum hc_fault_kind)k;
    if (kind == HC_FAULT__COUNT)
        return bad_item(err, text,
                        "unknown kind '%s' (drop, dup, redeliver, reorder, delay, "
                        "stale, future, skew, corrupt, disconnect, retain, backlog)",
                        item);
    r = &f->r[kind];
    if (r->on)
        return bad_item(err, text, "%s is given twice", item);
    r->on = true;
    r->window = 1;
    value = eq + 1;
    next = strchr(value, ':');
    if (next)
        *next++ = '\0';
    switch (kind_defs[kind].form) {
    case DURATION:
        rc = parse_duration_value(text, item, value, &r->by_ns, err);
        if (rc != HC_OK)
            return rc;
        break;
    case PROBABILITY_OR_EVERY:
        if (strcmp(value, "every") == 0) {
            char *dur = next;
            if (!dur || !*dur)
                return bad_item(err, text, "%s", "expected every:DURATION");
            next = strchr(dur, ':');
            if (next)
                *next++ = '\0';
            rc = parse_duration_value(text, "every", dur, &r->every_ns, err);
            if (rc != HC_OK)
                return rc;
            break;
        }
        /* fall through */
    case PROBABILITY:
        if (!parse_probability(value, &r->p))
            return bad_item(err, text, "probability must be between 0 and 1, got '%s'", value);
        break;
    }
    while (next) {
        char *kv = next;
        next = strchr(kv, ':');
        if (next)
            *next++ = '\0';
        rc = parse_key(r, kind, text, kv, err);
        if (rc != HC_OK)
            return rc;
        for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
            if (strcmp(kv, key_names[i]) == 0) {
                if (seen & (1u << i))
                    return bad_item(err, text, "%s is given twice", key_names[i]);
                seen |= 1u << i;
            }
    }
    if (kind_defs[kind].required & ~seen) {
        for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
            if (kind_defs[kind].required & ~seen & (1u << i))
                return bad_item(err, text, "missing :%s=DURATION", key_names[i]);
    }
    if (kind == HC_FAULT_DROP && r->burst > 0) {
        /* Gilbert-Elliott with a bad state that always loses: the bad state's share is p and
         * its mean stay is burst, so enter = p / (burst (1 - p)), leave = 1 / burst */
        if (r->p >= 1)
            r->ge_enter = 1;
        else
            r->ge_enter = fmin(1.0, r->p / (r->burst * (1.0 - r->p)));
    }
    r->text = strdup(text);
    if (!r->text)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    f->kinds |= HC_FAULT_BIT(kind);
    return HC_OK;
}

hc_err hc_faults_parse(const char *spec, hc_faults **out, hc_error *err)
{
    hc_faults *f;
    char *copy = NULL, *item, *next;
    size_t len = 0;
    hc_err rc = HC_OK;

    *out = NULL;
    if (!spec || !*spec)
        return hc_error_set(err, HC_ERR_INVALID, "empty fault spec (e.g. 'drop=0.01,dup=0.02')");
    f = calloc(1, sizeof(*f));
    copy = strdup(spec);
    if (!f || !copy) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (item = copy; item; item = next) {
        char text[256];
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        snprintf(text, sizeof(text), "%s", item);
        rc = parse_item(f, item, text, err);
        if (rc != HC_OK)
            goto out;
    }
    for (int k = 0; k < HC_FAULT__COUNT; k++)
        if (f->r[k].on)
            len += strlen(f->r[k].text) + 1;
    f->spec = calloc(1, len + 1);
    if (!f->spec) {
        rc = hc_error_set(err, HC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k < HC_FAULT__COUNT; k++) {
        if (!f->r[k].on)
            continue;
        if (f->spec[0])
            strcat(f->spec, ",");
        strcat(f->spec, f->r[k].text);
    }
out:
    free(copy);
    if (rc != HC_OK) {
        hc_faults_free(f);
        return rc;
    }
    *out = f;
    return HC_OK;
}

void hc_faults_free(hc_faults *f)
{
    if (!f)
        return;
    for (int k = 0; k < HC_FAULT__COUNT; k++)
        free(f->r[k].text);
    free(f->spec);
    free(f);
}

bool hc_faults_has(const hc_faults *f, enum hc_fault_kind kind)
{
    return f && (unsigned)kind < HC_FAULT__COUNT && f->r[kind].on;
}

const char *hc_faults_spec(const hc_faults *f)
{
    return f && f->spec ? f->spec : "";
}

/* --- draws -------------------------------------------------------------------------------------
 */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The n-th draw of kind for input position seq: the same on every run and machine. */
static uint64_t draw(uint64_t seed, enum hc_fault_kind kind, uint64_t seq, unsigned n)
{
    return mix64(seed ^ mix64(seq ^ mix64(((uint64_t)kind << 8 | n) * 0xd6e8feb86659fd93ULL)));
}

/* A double in [0, 1) from the top 53 bits: exact, so every machine compares alike. */
static double unit(uint64_t x)
{
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

/* --- the stream's storage ----------------------------------------------------------------------
 */

struct item {
    struct hc_faults_out o; /* o.msg.topic/payload point into the buffers below */
    char *topic;
    size_t topic_cap;
    unsigned char *payload;
    size_t payload_cap;
    int64_t key;         /* heap: release time (recording time) */
    uint64_t release_at; /* dup copies: after this many originals have gone */
    struct item *next;
};

struct list {
    struct item *head, *tail;
    size_t n;
};

/* Per-device state, in an open-addressing table keyed by a hash of the device id. */
struct dev {
    uint64_t key; /* 0: empty slot */
    int64_t hold_until;
    uint64_t hold_from; /* 0: not holding */
    struct list win;    /* reorder with scope=device: the open window */
    long need;
};

struct hc_faults_stream {
    struct hc_faults_stream_options o;
    const hc_faults *f;
    uint64_t seq;       /* inputs taken */
    uint64_t originals; /* originals made ready (dup's :after counts these) */
    struct list ready, spare;
    struct item *popped; /* handed out by the last pop: recycled at the next call */
    bool pass;           /* the current input goes out as it is, after what is ready */
    struct hc_msg pass_msg;
    uint64_t pass_seq;
    struct item **heap; /* delay and backlog, by (key, seq) */
    size_t heap_n, heap_cap;
    struct list win; /* reorder, scope all */
    long win_need;
    struct list dups; /* copies waiting for :after (release_at is non-decreasing) */
    struct dev *devs;
    size_t dev_cap, dev_n, dev_windows, dev_holds;
    bool ge_bad;
    bool dropped_last;
    int64_t last_due;
    bool have_due;
    int64_t next_disconnect;
    bool have_disconnect;
    size_t held;
    unsigned char *scratch;
    size_t scratch_cap;
};

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

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 64;
    void *q;
    if (need <= *cap)
        return true;
    while (n < need)
        n *= 2;
    q = realloc(*p, n * elem);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
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
    if (!grow((void **)&it->topic, &it->topic_cap, tlen, 1) ||
        !grow((void **)&it->payload, &it->payload_cap, msg->payload_len + 1, 1)) {
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
    if (!grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof(*s->heap)))
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
    h = mix64(h);
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

/* --- payload rewrites --------------------------------------------------------------------------
 */

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool scratch_reserve(hc_faults_stream *s, size_t need)
{
    return grow((void **)&s->scratch, &s->scratch_cap, need, 1);
}

/* Replaces it's payload by the len bytes of s->scratch. */
static bool payload_set(struct item *it, const unsigned char *bytes, size_t len)
{
    if (!grow((void **)&it->payload, &it->payload_cap, len + 1, 1))
        return false;
    memcpy(it->payload, bytes, len);
    it->o.msg.payload = it->payload;
    it->o.msg.payload_len = len;
    return true;
}

/*
 * Moves every "measured_at"/"received_at" RFC 3339 string value by delta_ns (UTC out, the same
 * fractional precision rounded up to 0, 3, 6 or 9 digits); every other byte stays.
 */
static bool shift_times(hc_faults_stream *s, struct item *it, int64_t delta_ns)
{
    const unsigned char *p = it->payload;
    size_t n = it->o.msg.payload_len, pos = 0, start, end, copied = 0, out = 0;
    const char *field;
    int64_t ts;

    if (!scratch_reserve(s, n + 256))
        return false;
    while (hc__json_next_time(p, n, &pos, &start, &end, &ts, &field)) {
        size_t tl;
        char text[48];

        if ((delta_ns > 0 && ts > INT64_MAX - delta_ns) ||
            (delta_ns < 0 && ts < INT64_MIN - delta_ns) || !hc_time_in_range(ts + delta_ns))
            continue;
        hc_time_format_rfc3339(ts + delta_ns,
                               hc__time_fraction_digits((const char *)p + start, end - start),
                               text, sizeof(text));
        tl = strlen(text);
        if (!scratch_reserve(s, out + (start - copied) + tl + (n - end) + 1))
            return false;
        memcpy(s->scratch + out, p + copied, start - copied);
        out += start - copied;
        memcpy(s->scratch + out, text, tl);
        out += tl;
        if (it->o.times_changed++ == 0) {
            snprintf(it->o.time_field, sizeof(it->o.time_field), "%.11s", field);
            snprintf(it->o.time_before, sizeof(it->o.time_before), "%.*s", (int)(end - start),
                     (const char *)p + start);
            snprintf(it->o.time_after, sizeof(it->o.time_after), "%.39s", text);
        }
        copied = end;
    }
    if (!copied)
        return true;
    memcpy(s->scratch + out, p + copied, n - copied);
    out += n - copied;
    return payload_set(it, s->scratch, out);
}

/* Index after the JSON value at i, or 0 when it is malformed. */
static size_t skip_value(const unsigned char *p, size_t n, size_t i)
{
    int depth = 0;
    bool in_string = false;

    if (i >= n)
        return 0;
    if (p[i] != '"' && p[i] != '{' && p[i] != '[') {
        while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && !is_ws(p[i]))
            i++;
        return i;
    }
    for (; i < n; i++) {
        if (in_string) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_string = false;
            if (!in_string && depth == 0)
                return i + 1;
            continue;
        }
        if (p[i] == '"')
            in_string = true;
        else if (p[i] == '{' || p[i] == '[')
            depth++;
        else if ((p[i] == '}' || p[i] == ']') && --depth == 0)
            return i + 1;
    }
    return 0;
}

struct member {
    size_t key, value, end; /* offsets: the key's quote, the value, after the value */
};

/* The members of a top-level JSON object; 0 when the payload is no object or is malformed. */
static size_t object_members(const unsigned char *p, size_t n, struct member *m, size_t max)
{
    size_t i = 0, count = 0;

    while (i < n && is_ws(p[i]))
        i++;
    if (i >= n || p[i] != '{')
        return 0;
    i++;
    for (;;) {
        while (i < n && is_ws(p[i]))
            i++;
        if (i < n && p[i] == '}' && count == 0)
            return 0;
        if (i >= n || p[i] != '"' || count == max)
            return 0;
        m[count].key = i;
        i = skip_value(p, n, i);
        while (i && i < n && is_ws(p[i]))
            i++;
        if (!i || i >= n || p[i] != ':')
            return 0;
        i++;
        while (i < n && is_ws(p[i]))
            i++;
        m[count].value = i;
        i = skip_value(p, n, i);
        if (!i || i == m[count].value)
            return 0;
        m[count].end = i;
        count++;
        while (i < n && is_ws(p[i]))
            i++;
        if (i < n && p[i] == ',') {
            i++;
            continue;
        }
        return i < n && p[i] == '}' ? count : 0;
    }
}

/* Builds scratch = p[0..a) + mid + p[b..n). */
static bool splice(hc_faults_stream *s, struct item *it, size_t a, size_t b, const void *mid,
                   size_t mid_len)
{
    const unsigned char *p = it->payload;
    size_t n = it->o.msg.payload_len;
    if (!scratch_reserve(s, a + mid_len + (n - b) + 1))
        return false;
    memcpy(s->scratch, p, a);
    if (mid_len)
        memcpy(s->scratch + a, mid, mid_len);
    memcpy(s->scratch + a + mid_len, p + b, n - b);
    return payload_set(it, s->scratch, a + mid_len + (n - b));
}

/*
 * Breaks the payload the way r picks; a way that does not apply to this payload (no members to
 * remove, too short to cut) passes to the next. Sets *applied false on out of memory only.
 */
static bool corrupt(hc_faults_stream *s, struct item *it, uint64_t r)
{
    const unsigned char *p = it->payload;
    size_t n = it->o.msg.payload_len, count;
    struct member m[MAX_MEMBERS];
    uint64_t r2 = mix64(r);

    count = object_members(p, n, m, MAX_MEMBERS);
    for (int t = 0; t < HC_CORRUPT__COUNT; t++) {
        enum hc_faults_corruption how =
            (enum hc_faults_corruption)((r + (uint64_t)t) % HC_CORRUPT__COUNT);
        it->o.corruption = how;
        switch (how) {
        case HC_CORRUPT_TRUNCATED:
            if (n < 2)
                continue;
            it->o.msg.payload_len = 1 + (size_t)(r2 % (n - 1));
            return true;
        case HC_CORRUPT_MEMBER_REMOVED: {
            size_t k, a, b;
            if (count == 0)
                continue;
            k = (size_t)(r2 % count);
            if (count == 1) {
                a = m[0].key;
                b = m[0].end;
            } else if (k + 1 < count) {
                a = m[k].key;
                b = m[k + 1].key;
            } else {
                a = m[k - 1].end;
                b = m[k].end;
            }
            return splice(s, it, a, b, NULL, 0);
        }
        case HC_CORRUPT_WRONG_TYPE: {
            size_t scalars[MAX_MEMBERS], ns = 0, k;
            unsigned char quoted[64];
            for (size_t j = 0; j < count; j++)
                if (p[m[j].value] != '{' && p[m[j].value] != '[' &&
                    (p[m[j].value] == '"' || m[j].end - m[j].value + 2 <= sizeof(quoted)))
                    scalars[ns++] = j;
            if (ns == 0)
                continue;
            k = scalars[r2 % ns];
            if (p[m[k].value] == '"')
                return splice(s, it, m[k].value, m[k].end, "0", 1); /* a string becomes a number */
            /* a number or literal becomes a string of its text */
            quoted[0] = '"';
            memcpy(quoted + 1, p + m[k].value, m[k].end - m[k].value);
            quoted[m[k].end - m[k].value + 1] = '"';
            return splice(s, it, m[k].value, m[k].end, quoted, m[k].end - m[k].value + 2);
        }
        case HC_CORRUPT_INVALID_UTF8: {
            /* a byte no UTF-8 text holds, inside the first string when there is one */
            static const unsigned char bad = 0xff;
            const unsigned char *q = memchr(p, '"', n);
            size_t at = q ? (size_t)(q - p) + 1 : (size_t)(r2 % (n + 1));
            return splice(s, it, at, at, &bad, 1);
        }
        case HC_CORRUPT_NOT_JSON: {
            /* the quotes gone, as a naive serialiser writes it: {measured_at:...,value:21.5} */
            size_t out = 0;
            if (!memchr(p, '"', n))
                continue;
            if (!scratch_reserve(s, n + 1))
                return false;
            for (size_t j = 0; j < n; j++)
                if (p[j] != '"')
                    s->scratch[out++] = p[j];
            return payload_set(it, s->scratch, out);
        }
        default:
            break;
        }
    }
    return true;
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
        if (!shift_times(s, it, delta))
            return false;
        /* only a timestamp that moved is a fault applied */
        if (it->o.times_changed)
            it->o.applied |= fired & (HC_FAULT_BIT(HC_FAULT_SKEW) | HC_FAULT_BIT(HC_FAULT_STALE) |
                                      HC_FAULT_BIT(HC_FAULT_FUTURE));
    }
    if ((fired & HC_FAULT_BIT(HC_FAULT_CORRUPT)) &&
        !corrupt(s, it, draw(s->o.seed, HC_FAULT_CORRUPT, it->o.seq, 1)))
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

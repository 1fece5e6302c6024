/*
 * Fault injection's plan (see hcore/faults.h): the names of the kinds and of the corruptions, and
 * the spec parser that turns "drop=0.01,reorder=0.05:window=3" into one rule per kind. What the
 * rules do to a stream of messages is in faults_stream.c.
 */
#include "hcore/faults.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults_internal.h"
#include "hcore/timefmt.h"

#define MAX_WINDOW 1000000L
#define MAX_AFTER 1000000L
#define MAX_BURST 1e6

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

/*
 * Comparing a case's output values with its expected values. Strict order streams: each value
 * is compared with the next expected line as it comes, so neither the input nor the outputs are
 * held in memory and a million-message case costs what one message does. The other orders
 * (per-device, any) collect the values of the case first and pair them at the end.
 */
#include "case_run.h"

#include <stdlib.h>
#include <string.h>

static bool items_add(struct hv_items *l, cJSON *value, const char *topic, long index)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct hv_item *v = realloc(l->v, cap * sizeof(*v));

        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].value = value;
    l->v[l->n].topic = hv_xstrdup(topic);
    l->v[l->n].index = index;
    l->n++;
    return true;
}

static void items_free(struct hv_items *l)
{
    for (size_t i = 0; i < l->n; i++) {
        cJSON_Delete(l->v[i].value);
        free(l->v[i].topic);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Compact print of v in r->print (exact numbers); NULL on out of memory. */
static const char *print_value(struct hv_run *r, const cJSON *v, size_t *len)
{
    if (hc_jsonout_print(&r->print, v, NULL) != HC_OK)
        return NULL;
    *len = r->print.len;
    return r->print.data;
}

/*
 * One actual output value (owned: consumed here). text/len is its line as the decoder printed it
 * (NULL for the built-in decoder). Returns false when the case cannot go on (r->err set).
 */
bool hv_match_value(struct hv_run *r, cJSON *actual, const char *text, size_t len,
                    const char *topic)
{
    long index = ++r->n_actual;
    size_t elen = 0;
    bool ok = true;
    int got;

    if (!text) {
        text = print_value(r, actual, &len);
        if (!text) {
            cJSON_Delete(actual);
            hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory");
            return false;
        }
    }
    if (r->order != HV_ORDER_STRICT) {
        if (!items_add(&r->act_items, actual, topic, index)) {
            cJSON_Delete(actual);
            hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory");
            return false;
        }
        return hv_pending_write(r, text, len);
    }
    got = hv_expected_next(r, &elen);
    if (got < 0) {
        cJSON_Delete(actual);
        return false;
    }
    if (got == 0) {
        struct hv_diff d = {"$", NULL, actual};
        char note[96];

        snprintf(note, sizeof(note), "expected.jsonl has no line for this message");
        hv_add_mismatch(r, index, topic, &d, note);
        ok = hv_pending_write(r, text, len);
    } else if (elen == len && memcmp(r->exp_line, text, len) == 0) {
        /* Same bytes as a value printed before: equal, no need to parse (the fast path). */
        ok = hv_pending_write(r, text, len);
    } else {
        cJSON *expected = hv_expected_parse(r, elen);
        struct hv_diff d;

        if (!expected) {
            if (!r->o->update) {
                cJSON_Delete(actual);
                return false;
            }
            r->err.code = HC_OK;
            d = (struct hv_diff){"$", NULL, actual};
            hv_add_mismatch(r, index, topic, &d, "the expected line is not JSON");
            ok = hv_pending_write(r, text, len);
        } else if (hv_compare(expected, actual, &r->cfg, &d)) {
            ok = hv_pending_write(r, r->exp_line, elen); /* keep the reviewed text */
        } else {
            hv_add_mismatch(r, index, topic, &d, NULL);
            ok = hv_pending_write(r, text, len);
        }
        cJSON_Delete(expected);
    }
    cJSON_Delete(actual);
    return ok;
}

/* Strict order: expected lines left over after the last output. */
static bool finish_strict(struct hv_run *r)
{
    size_t elen;
    int got;

    while ((got = hv_expected_next(r, &elen)) > 0) {
        cJSON *expected = hv_expected_parse(r, elen);
        struct hv_diff d = {"$", expected, NULL};

        if (!expected && !r->o->update)
            return false;
        r->err.code = HC_OK;
        hv_add_mismatch(r, r->n_expected, NULL, &d,
                        "no input message for this expected line (the input has fewer messages)");
        cJSON_Delete(expected);
    }
    return got == 0;
}

static const char *device_key(const cJSON *v)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "device_id");

    return cJSON_IsString(d) ? d->valuestring : "";
}

static int item_device_cmp(const void *a, const void *b)
{
    const struct hv_item *x = a, *y = b;
    int c = strcmp(device_key(x->value), device_key(y->value));

    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index; /* stable: keeps order per device */
}

/* Reads every expected value left into r->exp_items. */
static bool collect_expected(struct hv_run *r)
{
    size_t elen;
    struct hv_items *e = &r->exp_items;
    int got;

    while ((got = hv_expected_next(r, &elen)) > 0) {
        cJSON *v = hv_expected_parse(r, elen);

        if (!v)
            return false;
        if (!items_add(e, v, NULL, r->n_expected)) {
            cJSON_Delete(v);
            return hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory") == HC_OK;
        }
    }
    return got >= 0;
}

/* per-device: the values of each device in order, devices by id. */
static bool compare_per_device(struct hv_run *r)
{
    struct hv_items *e = &r->exp_items, *a = &r->act_items;

    qsort(e->v, e->n, sizeof(*e->v), item_device_cmp);
    qsort(a->v, a->n, sizeof(*a->v), item_device_cmp);
    for (size_t i = 0; i < e->n || i < a->n; i++) {
        struct hv_diff d;
        const cJSON *ev = i < e->n ? e->v[i].value : NULL;
        const cJSON *av = i < a->n ? a->v[i].value : NULL;

        if (!hv_compare(ev, av, &r->cfg, &d))
            hv_add_mismatch(r, av ? a->v[i].index : 0, av ? a->v[i].topic : NULL, &d,
                            !av ? "no actual value for this device's expected value" : NULL);
    }
    return true;
}

/* any: each actual value takes the first unused expected value it matches. */
static bool compare_any(struct hv_run *r)
{
    struct hv_items *e = &r->exp_items, *a = &r->act_items;
    bool *used = calloc(e->n + 1, sizeof(bool));
    size_t next_unused = 0;

    if (!used)
        return hc_error_set(&r->err, HC_ERR_NOMEM, "out of memory") == HC_OK;
    for (size_t i = 0; i < a->n; i++) {
        bool found = false;

        for (size_t k = 0; k < e->n && !found; k++)
            if (!used[k] && hv_compare(e->v[k].value, a->v[i].value, &r->cfg, NULL))
                used[k] = found = true;
        if (!found) {
            struct hv_diff d;

            /* Explain against the first expected value nothing matched. */
            while (next_unused < e->n && used[next_unused])
                next_unused++;
            hv_compare(next_unused < e->n ? e->v[next_unused].value : NULL, a->v[i].value, &r->cfg,
                       &d);
            hv_add_mismatch(r, a->v[i].index, a->v[i].topic, &d,
                            "matches no expected value (order any); difference shown against "
                            "the first unmatched expected value");
        }
    }
    for (size_t k = 0; k < e->n; k++)
        if (!used[k]) {
            struct hv_diff d = {"$", e->v[k].value, NULL};
            char note[96];

            snprintf(note, sizeof(note), "expected.jsonl value %ld matched no output",
                     e->v[k].index);
            /* Only counted once per unmatched pair: skip when an actual was reported. */
            if (r->n_actual < r->n_expected)
                hv_add_mismatch(r, 0, NULL, &d, note);
        }
    free(used);
    return true;
}

bool hv_match_finish(struct hv_run *r)
{
    if (r->order == HV_ORDER_STRICT)
        return finish_strict(r);
    if (!collect_expected(r))
        return false;
    return r->order == HV_ORDER_PER_DEVICE ? compare_per_device(r) : compare_any(r);
}

void hv_match_release(struct hv_run *r)
{
    items_free(&r->exp_items);
    items_free(&r->act_items);
}

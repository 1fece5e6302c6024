/*
 * Structural JSON comparison for hverify: key order and whitespace never matter, numbers may
 * differ within tolerances (global or per path), ignored paths are skipped, and the first
 * difference is reported as a path a user can paste back into --ignore or case.json.
 *
 * Path syntax (documented in fixtures/README.md): members joined with '.', array elements as
 * [n]; `*` matches any one member or element, `[*]` any element; a member whose name is not a
 * plain identifier is written ["name"] (JSON string syntax). "$" is the whole value.
 */
#include "hverify.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_ident(const char *s)
{
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
            return false;
    return true;
}

void hv_path_append_key(char *path, size_t size, const char *key)
{
    size_t len = strlen(path);

    if (strcmp(path, "$") == 0)
        len = 0;
    if (is_ident(key)) {
        snprintf(path + len, size - len, "%s%s", len ? "." : "", key);
    } else {
        cJSON *s = cJSON_CreateString(key);
        char *q = s ? cJSON_PrintUnformatted(s) : NULL;

        snprintf(path + len, size - len, "[%s]", q ? q : "\"?\"");
        cJSON_free(q);
        cJSON_Delete(s);
    }
}

static void append_index(char *path, size_t size, int index)
{
    size_t len = strlen(path);

    if (strcmp(path, "$") == 0)
        len = 0;
    snprintf(path + len, size - len, "[%d]", index);
}

static bool push_seg(struct hv_path *p, struct hv_seg seg)
{
    struct hv_seg *s = realloc(p->segs, (p->n + 1) * sizeof(*s));

    if (!s) {
        free(seg.key);
        return false;
    }
    p->segs = s;
    p->segs[p->n++] = seg;
    return true;
}

void hv_path_release(struct hv_path *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->segs[i].key);
    free(p->segs);
    free(p->text);
    memset(p, 0, sizeof(*p));
}

static bool compile_fail(struct hv_path *p, char *why, size_t size, const char *reason)
{
    snprintf(why, size, "%s", reason);
    hv_path_release(p);
    return false;
}

bool hv_path_compile(const char *text, struct hv_path *out, char *why, size_t why_size)
{
    const char *s = text;

    memset(out, 0, sizeof(*out));
    out->text = strdup(text);
    if (!out->text)
        return compile_fail(out, why, why_size, "out of memory");
    if (strcmp(text, "$") == 0 || !*text)
        return compile_fail(out, why, why_size, "the whole value cannot be a path here");
    if (*s == '$')
        s++;
    if (*s == '.')
        s++;
    while (*s) {
        struct hv_seg seg = {HV_SEG_KEY, NULL, 0};

        if (*s == '[') {
            s++;
            if (*s == '*' && s[1] == ']') {
                seg.kind = HV_SEG_ANY_INDEX;
                s += 2;
            } else if (*s == '"') {
                const char *start = s;
                cJSON *str;

                for (s++; *s && *s != '"'; s++)
                    if (*s == '\\' && s[1])
                        s++;
                if (*s != '"' || s[1] != ']')
                    return compile_fail(out, why, why_size, "unterminated [\"name\"]");
                {
                    size_t n = (size_t)(s - start) + 1;
                    char *lit = malloc(n + 1);

                    if (!lit)
                        return compile_fail(out, why, why_size, "out of memory");
                    memcpy(lit, start, n);
                    lit[n] = '\0';
                    str = cJSON_Parse(lit);
                    free(lit);
                }
                if (!cJSON_IsString(str)) {
                    cJSON_Delete(str);
                    return compile_fail(out, why, why_size, "bad string in [\"name\"]");
                }
                seg.key = strdup(str->valuestring);
                cJSON_Delete(str);
                if (!seg.key)
                    return compile_fail(out, why, why_size, "out of memory");
                s += 2;
            } else {
                char *end;
                long v;

                if (!isdigit((unsigned char)*s))
                    return compile_fail(out, why, why_size,
                                        "expected a number, * or \"name\" after '['");
                errno = 0;
                v = strtol(s, &end, 10);
                if (errno || *end != ']' || v > 1000000000L)
                    return compile_fail(out, why, why_size, "bad array index");
                seg.kind = HV_SEG_INDEX;
                seg.index = v;
                s = end + 1;
            }
        } else {
            const char *start = s;

            while (*s && *s != '.' && *s != '[')
                s++;
            if (s == start)
                return compile_fail(out, why, why_size, "empty member name");
            if (s - start == 1 && *start == '*') {
                seg.kind = HV_SEG_ANY;
            } else {
                seg.key = strndup(start, (size_t)(s - start));
                if (!seg.key)
                    return compile_fail(out, why, why_size, "out of memory");
            }
        }
        if (!push_seg(out, seg))
            return compile_fail(out, why, why_size, "out of memory");
        if (*s == '.') {
            s++;
            if (!*s || *s == '.' || *s == '[')
                return compile_fail(out, why, why_size, "empty member name");
        } else if (*s && *s != '[') {
            return compile_fail(out, why, why_size, "expected '.' or '['");
        }
    }
    return true;
}

/* The path of the node being compared, as segments (keys borrowed from the trees). */
struct walk_seg {
    const char *key; /* NULL for an array element */
    int index;
};

struct walk {
    const struct hv_cfg *cfg;
    struct walk_seg segs[64];
    size_t depth;
    struct hv_diff *diff;
};

static bool seg_matches(const struct hv_seg *p, const struct walk_seg *w)
{
    switch (p->kind) {
    case HV_SEG_KEY:
        return w->key && strcmp(p->key, w->key) == 0;
    case HV_SEG_INDEX:
        return !w->key && p->index == w->index;
    case HV_SEG_ANY_KEY:
        return w->key != NULL;
    case HV_SEG_ANY_INDEX:
        return !w->key;
    case HV_SEG_ANY:
        return true;
    }
    return false;
}

/* True when pattern matches the current path (prefix: also a path below the pattern). */
static bool path_matches(const struct hv_path *p, const struct walk *w, bool prefix)
{
    if (p->n > w->depth || (!prefix && p->n != w->depth))
        return false;
    for (size_t i = 0; i < p->n; i++)
        if (!seg_matches(&p->segs[i], &w->segs[i]))
            return false;
    return true;
}

static bool ignored(const struct walk *w)
{
    if (!w->cfg)
        return false;
    for (size_t i = 0; i < w->cfg->n_ignore; i++)
        if (path_matches(&w->cfg->ignore[i], w, true))
            return true;
    return false;
}

static bool numbers_equal(const struct walk *w, double e, double a)
{
    double d = fabs(e - a), scale = fmax(fabs(e), fabs(a));

    if (e == a)
        return true;
    if (!isfinite(d) || !w->cfg)
        return false;
    if (d <= w->cfg->abs_tol || d <= w->cfg->rel_tol * scale)
        return true;
    for (size_t i = 0; i < w->cfg->n_tols; i++) {
        const struct hv_tol_rule *t = &w->cfg->tols[i];

        if (path_matches(&t->path, w, true) && (d <= t->abs_tol || d <= t->rel_tol * scale))
            return true;
    }
    return false;
}

static void render_path(const struct walk *w, char *out, size_t size)
{
    snprintf(out, size, "$");
    for (size_t i = 0; i < w->depth; i++) {
        if (w->segs[i].key)
            hv_path_append_key(out, size, w->segs[i].key);
        else
            append_index(out, size, w->segs[i].index);
    }
}

static bool differ(struct walk *w, const cJSON *e, const cJSON *a)
{
    if (w->diff) {
        render_path(w, w->diff->path, sizeof(w->diff->path));
        w->diff->expected = e;
        w->diff->actual = a;
    }
    return false;
}

static bool walk_value(struct walk *w, const cJSON *e, const cJSON *a);

static bool walk_child(struct walk *w, const char *key, int index, const cJSON *e, const cJSON *a)
{
    bool ok;

    if (w->depth >= sizeof(w->segs) / sizeof(w->segs[0]))
        return cJSON_Compare(e, a, true) ? true : differ(w, e, a);
    w->segs[w->depth].key = key;
    w->segs[w->depth].index = index;
    w->depth++;
    if (ignored(w))
        ok = true;
    else if (!e || !a)
        ok = differ(w, e, a);
    else
        ok = walk_value(w, e, a);
    w->depth--;
    return ok;
}

static bool walk_value(struct walk *w, const cJSON *e, const cJSON *a)
{
    int te = e->type & 0xFF, ta = a->type & 0xFF;

    if (te != ta)
        return differ(w, e, a);
    switch (te) {
    case cJSON_Number:
        return numbers_equal(w, e->valuedouble, a->valuedouble) ? true : differ(w, e, a);
    case cJSON_String:
    case cJSON_Raw:
        return strcmp(e->valuestring ? e->valuestring : "", a->valuestring ? a->valuestring : "") ==
                       0
                   ? true
                   : differ(w, e, a);
    case cJSON_Array: {
        const cJSON *ce = e->child, *ca = a->child;
        int i = 0;

        for (; ce || ca; i++) {
            if (!walk_child(w, NULL, i, ce, ca))
                return false;
            ce = ce ? ce->next : NULL;
            ca = ca ? ca->next : NULL;
        }
        return true;
    }
    case cJSON_Object:
        for (const cJSON *ce = e->child; ce; ce = ce->next)
            if (!walk_child(w, ce->string, 0, ce, cJSON_GetObjectItemCaseSensitive(a, ce->string)))
                return false;
        for (const cJSON *ca = a->child; ca; ca = ca->next)
            if (!cJSON_GetObjectItemCaseSensitive(e, ca->string) &&
                !walk_child(w, ca->string, 0, NULL, ca))
                return false;
        return true;
    default: /* null, true, false: the type says it all */
        return true;
    }
}

bool hv_compare(const cJSON *expected, const cJSON *actual, const struct hv_cfg *cfg,
                struct hv_diff *diff)
{
    struct walk w = {cfg, {{NULL, 0}}, 0, diff};

    if (!expected || !actual)
        return differ(&w, expected, actual);
    return walk_value(&w, expected, actual);
}

void hv_cfg_release(struct hv_cfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_ignore; i++)
        hv_path_release(&cfg->ignore[i]);
    free(cfg->ignore);
    for (size_t i = 0; i < cfg->n_tols; i++)
        hv_path_release(&cfg->tols[i].path);
    free(cfg->tols);
    memset(cfg, 0, sizeof(*cfg));
}

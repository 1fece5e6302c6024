/*
 * hverify's cases on disk: finding them under the paths given (a folder holding input.jsonl,
 * input.db, expected.jsonl or case.json), the files left over from updates and each case's
 * settings in case.json. The fixtures' life (CI mode, pending files, accepting them) is
 * fixture.c's.
 */
#include "hverify.h"

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 32

char *hv_xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *hv_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

bool hv_file_exists(const char *dir, const char *name)
{
    char *p = hv_path_join(dir, name);
    struct stat st;
    bool ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);

    free(p);
    return ok;
}

bool hv_recording_exists(const char *dir, const char *name)
{
    char *p = hv_path_join(dir, name);
    struct stat st;
    bool ok = p && stat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));

    free(p);
    return ok;
}

/* --- case discovery ----------------------------------------------------------------------------
 */

static bool is_case_dir(const char *dir)
{
    return hv_file_exists(dir, "input.jsonl") || hv_recording_exists(dir, "input.db") ||
           hv_file_exists(dir, "expected.jsonl") || hv_file_exists(dir, "case.json");
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool list_add(struct hv_case_list *l, const char *dir)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **d = realloc(l->dirs, cap * sizeof(*d));

        if (!d)
            return false;
        l->dirs = d;
        l->cap = cap;
    }
    l->dirs[l->n] = strdup(dir);
    return l->dirs[l->n++] != NULL;
}

/* Sorted names in dir (bytewise, so the order does not depend on the locale). */
static char **sorted_entries(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;

    *count = 0;
    if (!d)
        return NULL;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*nn));
            if (!nn)
                break;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    *count = n;
    return names;
}

void hv_find_cases(const char *dir, int depth, struct hv_case_list *l)
{
    size_t n;
    char **names;

    if (is_case_dir(dir)) {
        list_add(l, dir);
        return;
    }
    /* a folder of cases for another mode (fixtures/consumers/): only when named as PATH */
    if (depth > MAX_DEPTH || (depth > 0 && hv_file_exists(dir, ".hverify-skip")))
        return;
    names = sorted_entries(dir, &n);
    for (size_t i = 0; i < n; i++) {
        char *sub = hv_path_join(dir, names[i]);
        struct stat st;

        if (sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            hv_find_cases(sub, depth + 1, l);
        free(sub);
        free(names[i]);
    }
    free(names);
}

/* Files in a case directory that hverify does not read: reported so nothing is left behind. */
void hv_report_leftovers(const char *dir, bool updating)
{
    static const char *const known[] = {
        "input.jsonl",         "input.db",  "input.db-wal",           "input.db-shm",
        "expected.jsonl",      "case.json", "expected.jsonl.pending", "expected.txt",
        "expected.txt.pending"};
    size_t n;
    char **names = sorted_entries(dir, &n);

    for (size_t i = 0; i < n; i++) {
        bool ok = false;
        size_t len = strlen(names[i]);

        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            if (strcmp(names[i], known[k]) == 0)
                ok = true;
        if (strncmp(names[i], "README", 6) == 0 || (len > 3 && !strcmp(names[i] + len - 3, ".md")))
            ok = true;
        if (!ok)
            tool_warn("unreferenced file '%s/%s' (hverify reads input.jsonl or input.db, "
                      "expected.jsonl, case.json)",
                      dir, names[i]);
        else if (!updating && strcmp(names[i], "expected.jsonl.pending") == 0) {
            char quoted[4 * 4096 + 3];

            tool_shell_quote(quoted, sizeof(quoted), dir);
            tool_warn("'%s/expected.jsonl.pending' is an update not yet accepted "
                      "(review it, then: hverify accept %s)",
                      dir, quoted);
        }
        free(names[i]);
    }
    free(names);
}

/* --- case.json ----------------------------------------------------------------------------- */

bool hv_add_ignore(struct hv_cfg *cfg, const char *text, char *why, size_t size)
{
    struct hv_path *p = realloc(cfg->ignore, (cfg->n_ignore + 1) * sizeof(*p));
    char reason[160];

    if (!p) {
        snprintf(why, size, "out of memory");
        return false;
    }
    cfg->ignore = p;
    if (!hv_path_compile(text, &cfg->ignore[cfg->n_ignore], reason, sizeof(reason))) {
        snprintf(why, size, "bad path '%s': %s", text, reason);
        return false;
    }
    cfg->n_ignore++;
    return true;
}

static bool parse_order(const char *s, enum hv_order *out)
{
    if (strcmp(s, "strict") == 0)
        *out = HV_ORDER_STRICT;
    else if (strcmp(s, "per-device") == 0)
        *out = HV_ORDER_PER_DEVICE;
    else if (strcmp(s, "any") == 0)
        *out = HV_ORDER_ANY;
    else
        return false;
    return true;
}

static bool number_member(const cJSON *v, const char *what, double *out, char *why, size_t size)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
        snprintf(why, size, "\"%s\" must be a number >= 0", what);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

/* The whole of fp, NUL-terminated (malloc'd), or NULL when out of memory. */
static char *read_whole(FILE *fp)
{
    char *text = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&text, &len);
    char chunk[4096];
    size_t k;

    if (!ms)
        return NULL;
    while ((k = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        fwrite(chunk, 1, k, ms);
    if (fclose(ms) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* case.json "ignore": an array of paths. */
static bool case_ignore(const cJSON *m, struct hv_cfg *cfg, char *reason, size_t size)
{
    const cJSON *p;

    if (!cJSON_IsArray(m)) {
        snprintf(reason, size, "\"ignore\" must be an array of paths");
        return false;
    }
    cJSON_ArrayForEach(p, m)
    {
        if (!cJSON_IsString(p)) {
            snprintf(reason, size, "\"ignore\" must be an array of paths");
            return false;
        }
        if (!hv_add_ignore(cfg, p->valuestring, reason, size))
            return false;
    }
    return true;
}

/* case.json "ignore_lines": an array of extended regexes. */
static bool case_ignore_lines(const cJSON *m, struct hv_case_extra *extra, char *reason,
                              size_t size)
{
    const cJSON *p;

    cJSON_ArrayForEach(p, m)
    {
        if (!cJSON_IsString(p) || extra->n_ign >= HV_MAX_IGNORE ||
            regcomp(&extra->ign[extra->n_ign], p->valuestring, REG_EXTENDED | REG_NOSUB) != 0) {
            snprintf(reason, size, "\"ignore_lines\" must be an array of regexes (at most %d)",
                     HV_MAX_IGNORE);
            return false;
        }
        extra->n_ign++;
    }
    if (!cJSON_IsArray(m)) {
        snprintf(reason, size, "\"ignore_lines\" must be an array of regexes");
        return false;
    }
    return true;
}

/* case.json "faults" (a spec), "seed" (a whole number) and "expect" ("same": the expected output
 * is the clean run's). */
static bool case_faults(const cJSON *m, struct hv_case_extra *extra, char *reason, size_t size)
{
    if (strcmp(m->string, "faults") == 0) {
        hc_error ferr = HC_ERROR_INIT;

        if (!cJSON_IsString(m) || hv_faults_check(m->valuestring, &ferr) != HC_OK) {
            snprintf(reason, size, "\"faults\": %.200s",
                     cJSON_IsString(m) ? ferr.message : "must be a spec (see docs/faults.md)");
            return false;
        }
        free(extra->faults);
        extra->faults = hv_xstrdup(m->valuestring);
        return true;
    }
    if (strcmp(m->string, "seed") == 0) {
        if (!cJSON_IsNumber(m) || m->valuedouble < 0 || m->valuedouble > 9007199254740992.0 ||
            m->valuedouble != (double)(uint64_t)m->valuedouble) {
            snprintf(reason, size, "\"seed\" must be a whole number >= 0");
            return false;
        }
        extra->seed = (uint64_t)m->valuedouble;
        extra->has_seed = true;
        return true;
    }
    if (!cJSON_IsString(m) || strcmp(m->valuestring, "same") != 0) {
        snprintf(reason, size,
                 "\"expect\" must be \"same\" (or absent: the expected output is the faulty "
                 "run's own)");
        return false;
    }
    extra->expect_same = true;
    return true;
}

/* case.json "tolerances": {"path": {"abs": x, "rel": y}, ...}. */
static bool case_tolerances(const cJSON *m, struct hv_cfg *cfg, char *reason, size_t size)
{
    const cJSON *t;

    if (!cJSON_IsObject(m)) {
        snprintf(reason, size, "\"tolerances\" must map paths to {\"abs\": x, \"rel\": y}");
        return false;
    }
    cJSON_ArrayForEach(t, m)
    {
        struct hv_tol_rule *r = realloc(cfg->tols, (cfg->n_tols + 1) * sizeof(*r));
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "abs");
        const cJSON *rl = cJSON_GetObjectItemCaseSensitive(t, "rel");
        char preason[160];

        if (!r) {
            snprintf(reason, size, "out of memory");
            return false;
        }
        cfg->tols = r;
        r = &cfg->tols[cfg->n_tols];
        memset(r, 0, sizeof(*r));
        if (!cJSON_IsObject(t) || (!a && !rl) ||
            cJSON_GetArraySize(t) != (a != NULL) + (rl != NULL)) {
            snprintf(reason, size, "tolerance for '%s' must be {\"abs\": x, \"rel\": y}",
                     t->string);
            return false;
        }
        if ((a && !number_member(a, "abs", &r->abs_tol, reason, size)) ||
            (rl && !number_member(rl, "rel", &r->rel_tol, reason, size)))
            return false;
        if (!hv_path_compile(t->string, &r->path, preason, sizeof(preason))) {
            snprintf(reason, size, "bad path '%s': %s", t->string, preason);
            return false;
        }
        cfg->n_tols++;
    }
    return true;
}

/* One member of case.json; false with the reason for a bad or unknown one. */
static bool case_member(const cJSON *m, struct hv_cfg *cfg, enum hv_order *order,
                        struct hv_case_extra *extra, char *reason, size_t size)
{
    const char *name = m->string;

    if (strcmp(name, "description") == 0 || strcmp(name, "source") == 0 ||
        strcmp(name, "notes") == 0)
        return true;
    if (strcmp(name, "abs_tol") == 0)
        return number_member(m, "abs_tol", &cfg->abs_tol, reason, size);
    if (strcmp(name, "rel_tol") == 0)
        return number_member(m, "rel_tol", &cfg->rel_tol, reason, size);
    if (strcmp(name, "order") == 0) {
        if (cJSON_IsString(m) && parse_order(m->valuestring, order))
            return true;
        snprintf(reason, size, "\"order\" must be strict, per-device or any");
        return false;
    }
    if (strcmp(name, "ignore") == 0)
        return case_ignore(m, cfg, reason, size);
    if (strcmp(name, "timing") == 0) {
        if (!cJSON_IsString(m)) {
            snprintf(reason, size, "\"timing\" must be max, recorded or speed:X");
            return false;
        }
        free(extra->timing);
        extra->timing = hv_xstrdup(m->valuestring);
        return true;
    }
    if (strcmp(name, "faults") == 0 || strcmp(name, "seed") == 0 || strcmp(name, "expect") == 0)
        return case_faults(m, extra, reason, size);
    if (strcmp(name, "ignore_lines") == 0)
        return case_ignore_lines(m, extra, reason, size);
    if (strcmp(name, "tolerances") == 0)
        return case_tolerances(m, cfg, reason, size);
    snprintf(reason, size,
             "unknown member \"%s\" (known: description, notes, source, abs_tol, rel_tol, "
             "tolerances, ignore, order, timing, ignore_lines, faults, seed, expect)",
             name);
    return false;
}

bool hv_load_case_settings(const char *dir, struct hv_cfg *cfg, enum hv_order *order,
                           struct hv_case_extra *extra, char *why, size_t size)
{
    char *path = hv_path_join(dir, "case.json");
    FILE *fp = path ? fopen(path, "rb") : NULL;
    char *text;
    cJSON *doc = NULL;
    bool ok = false;

    if (!fp) {
        free(path);
        return true; /* optional */
    }
    text = read_whole(fp);
    if (!text) {
        snprintf(why, size, "out of memory");
        goto out;
    }
    doc = cJSON_Parse(text);
    if (!cJSON_IsObject(doc)) {
        snprintf(why, size, "'%s' is not a JSON object", path);
        goto out;
    }
    for (const cJSON *m = doc->child; m; m = m->next) {
        char reason[300] = "";

        if (!case_member(m, cfg, order, extra, reason, sizeof(reason))) {
            snprintf(why, size, "'%s': %s", path, reason);
            goto out;
        }
    }
    ok = true;
out:
    cJSON_Delete(doc);
    free(text);
    fclose(fp);
    free(path);
    return ok;
}

/* --- collecting cases ----------------------------------------------------------------------- */

bool hv_collect_cases(const struct hverify_opts *o, struct hv_case_list *cases)
{
    for (size_t i = 0; i < o->n_paths; i++) {
        char *p = strdup(o->paths[i]);
        struct stat st;
        size_t before = cases->n, len;

        if (!p)
            return false;
        len = strlen(p);
        while (len > 1 && p[len - 1] == '/')
            p[--len] = '\0';
        if (stat(p, &st) != 0) {
            tool_error("cannot open '%s': %s", p, strerror(errno));
            free(p);
            return false;
        }
        if (!S_ISDIR(st.st_mode)) {
            tool_error("'%s' is not a directory (give a case directory or a folder of cases)", p);
            free(p);
            return false;
        }
        hv_find_cases(p, 0, cases);
        if (cases->n == before) {
            tool_error("no cases under '%s' (a case directory holds input.jsonl or input.db "
                       "and expected.jsonl)",
                       p);
            free(p);
            return false;
        }
        free(p);
    }
    return true;
}

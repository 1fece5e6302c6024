/*
 * hverify's fixtures: each case's expected output and the updates to it. expected.jsonl is read
 * one value line at a time (strict order streams it); --update writes expected.jsonl.pending
 * beside it (lines that still match keep their old text, so only real changes show in a diff),
 * kept only when the output changed, and accepting moves it into place. Updates never overwrite
 * a reviewed file silently: with CI set, nothing is written or accepted unless --force.
 */
#include "case_run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPECTED_BUFFER_SIZE ((size_t)1 << 18)

/* --- the expected file ------------------------------------------------------------------------ */

/* Opens the expected file; missing is fine with --update (the case is new). */
bool hv_expected_open(struct hv_run *r, const char *exp_path)
{
    int e;

    r->exp = fopen(exp_path, "rbe"); /* close-on-exec: decoders and consumers do not inherit it */
    r->has_exp = r->exp != NULL;
    /* large reads, as the input's reader makes: a case may hold a million lines (glibc ignores
     * the size without a buffer of ours) */
    if (r->exp && (r->exp_io = malloc(EXPECTED_BUFFER_SIZE)) != NULL)
        setvbuf(r->exp, r->exp_io, _IOFBF, EXPECTED_BUFFER_SIZE);
    if (r->exp)
        return true;
    e = errno;
    if (e == ENOENT && r->o->update)
        return true;
    hc_error_set(&r->err, HC_ERR_IO, "cannot open '%s': %s%s", exp_path, strerror(e),
                 e == ENOENT ? " (create it with: hverify --update)" : "");
    return false;
}

/* Next value line of expected.jsonl (blank lines skipped). 1 with the text in r->exp_line,
 * 0 at the end, -1 when it cannot be read (r->err set). */
int hv_expected_next(struct hv_run *r, size_t *len)
{
    ssize_t n;

    if (!r->has_exp)
        return 0;
    while ((n = getline(&r->exp_buf, &r->exp_cap, r->exp)) >= 0) {
        char *line = r->exp_buf;
        size_t k = (size_t)n;

        r->exp_lineno++;
        if (k > 0 && line[k - 1] == '\n')
            k--;
        while (k > 0 && (line[k - 1] == '\r' || line[k - 1] == ' ' || line[k - 1] == '\t'))
            k--;
        line[k] = '\0';
        if (k == 0)
            continue;
        r->exp_line = line;
        r->n_expected++;
        *len = k;
        return 1;
    }
    if (!ferror(r->exp))
        return 0;
    hc_error_set(&r->err, errno == ENOMEM ? HC_ERR_NOMEM : HC_ERR_IO,
                 "'%s/expected.jsonl': cannot read: %s", r->dir, strerror(errno));
    return -1;
}

cJSON *hv_expected_parse(struct hv_run *r, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(r->exp_line, len, &end, 0);

    if (v && end != r->exp_line + len) {
        cJSON_Delete(v);
        v = NULL;
    }
    if (!v) {
        char *ex = hv_excerpt_text(r->exp_line, len);

        hc_error_set(&r->err, HC_ERR_PARSE, "'%s/expected.jsonl' line %ld is not JSON: %s", r->dir,
                     r->exp_lineno, ex ? ex : "");
        free(ex);
    }
    return v;
}

/* --- the pending file (--update) -------------------------------------------------------------- */

/* --update: the pending file the new output goes to (unless CI forbids writing). */
bool hv_pending_open(struct hv_run *r, const char *pend_path, bool writes_allowed)
{
    if (!r->o->update || !writes_allowed)
        return true;
    r->pending = fopen(pend_path, "wb");
    if (!r->pending)
        hc_error_set(&r->err, HC_ERR_IO, "cannot write '%s': %s", pend_path, strerror(errno));
    return r->pending != NULL;
}

bool hv_pending_write(struct hv_run *r, const char *text, size_t len)
{
    if (!r->pending)
        return true;
    if (fwrite(text, 1, len, r->pending) != len || fputc('\n', r->pending) == EOF) {
        hc_error_set(&r->err, HC_ERR_IO, "cannot write '%s/expected.jsonl.pending': %s", r->dir,
                     strerror(errno));
        return false;
    }
    return true;
}

/* Closes the pending file: kept when the output changed, moved into place with --accept,
 * removed otherwise. Returns ok, false when that failed. */
bool hv_pending_settle(struct hv_run *r, bool ok, const char *exp_path, const char *pend_path)
{
    if (!r->pending)
        return ok;
    if (fclose(r->pending) != 0 && ok) {
        hc_error_set(&r->err, HC_ERR_IO, "cannot write '%s': %s", pend_path, strerror(errno));
        ok = false;
    }
    r->pending = NULL;
    if (!ok || !r->changed) {
        unlink(pend_path);
    } else if (r->o->accept && rename(pend_path, exp_path) != 0) {
        hc_error_set(&r->err, HC_ERR_IO, "cannot rename '%s': %s", pend_path, strerror(errno));
        ok = false;
    }
    return ok;
}

/* --update with a changed output: what was written and how to accept it. */
void hv_pending_announce(const struct hv_run *r, bool writes_allowed, const char *exp_path,
                         const char *pend_path)
{
    FILE *out = r->o->json ? stderr : stdout;
    char quoted[4 * 4096 + 3];

    if (!writes_allowed) {
        tool_warn("%s: CI is set: not writing expected.jsonl.pending (use --force)", r->dir);
    } else if (r->o->accept) {
        fprintf(out, "updated %s (%ld messages)\n", exp_path, r->n_input);
    } else {
        tool_shell_quote(quoted, sizeof(quoted), r->dir);
        fprintf(out, "wrote %s (%ld of %ld values changed); review, then: hverify accept %s\n",
                pend_path, r->res->mismatch_count, r->n_input, quoted);
    }
}

/* --- CI and accepting pending files ----------------------------------------------------------- */

/* CI set (and not 0 or false): nothing is written or accepted without --force. */
bool hv_ci_mode(void)
{
    const char *ci = getenv("CI");

    return ci && *ci && strcmp(ci, "0") != 0 && strcmp(ci, "false") != 0;
}

int hv_accept_pending(const struct hverify_opts *o, const struct hv_case_list *cases)
{
    int code = TOOL_EXIT_OK;
    long accepted = 0;

    for (size_t i = 0; i < cases->n; i++) {
        char *pend = hv_path_join(cases->dirs[i], "expected.jsonl.pending");
        char *exp = hv_path_join(cases->dirs[i], "expected.jsonl");
        struct stat st;

        if (pend && exp && stat(pend, &st) == 0) {
            if (hv_ci_mode() && !o->force) {
                tool_error("CI is set: not accepting '%s' (use --force)", pend);
                code = TOOL_EXIT_FAILURE;
            } else if (rename(pend, exp) != 0) {
                tool_error("cannot rename '%s' to '%s': %s", pend, exp, strerror(errno));
                code = TOOL_EXIT_FAILURE;
            } else {
                printf("accepted %s\n", exp);
                accepted++;
            }
        }
        free(pend);
        free(exp);
    }
    printf("%ld accepted\n", accepted);
    return code;
}

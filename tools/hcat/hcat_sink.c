/*
 * Files that hcat's sinks (MCAP, the HTML report) write: under "<name>.hcat-tmp-<pid>" beside
 * the target, renamed into place only when complete, so a failed or interrupted write never
 * leaves a half-made file under the name the user asked for (the stale-temporary cleanup of
 * recordings removes these too).
 */
#include "hcat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

hc_err hcat_output_begin(const char *path, bool force, char **tmp_out, FILE **f_out, hc_error *err)
{
    size_t size = strlen(path) + 40;
    char *tmp = malloc(size);
    struct stat sb;
    FILE *f;

    *tmp_out = NULL;
    *f_out = NULL;
    if (!tmp)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory");
    if (!force && stat(path, &sb) == 0) {
        free(tmp);
        return hc_error_set(err, HC_ERR_EXISTS,
                            "cannot write '%s': file exists (use --force to replace it)", path);
    }
    snprintf(tmp, size, "%s.hcat-tmp-%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    *tmp_out = tmp;
    *f_out = f;
    return HC_OK;
}

hc_err hcat_output_commit(const char *path, char *tmp, FILE *f, hc_error *err)
{
    hc_err rc = HC_OK;
    int failed = fflush(f) != 0 || ferror(f);

    if (fclose(f) != 0 || failed)
        rc = hc_error_set(err, errno == ENOSPC ? HC_ERR_FULL : HC_ERR_IO, "cannot write '%s': %s",
                          path, strerror(errno ? errno : EIO));
    if (rc == HC_OK && rename(tmp, path) != 0)
        rc = hc_error_set(err, HC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (rc != HC_OK)
        unlink(tmp);
    free(tmp);
    return rc;
}

void hcat_output_abandon(char *tmp, FILE *f)
{
    if (f)
        fclose(f);
    if (tmp)
        unlink(tmp);
    free(tmp);
}

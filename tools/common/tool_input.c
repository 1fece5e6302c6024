/*
 * What kind of input a path holds, decided by content rather than by name: a recording starts
 * with SQLite's header, JSON lines with '{' (after blank space); a directory holds the
 * segments of a rotated recording. hcat and hreplay both accept
 * either, so they ask here.
 */
#include "tool.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

hc_err tool_detect_input(const char *path, bool *is_db, hc_error *err)
{
    unsigned char head[64];
    struct stat sb;
    size_t n;
    FILE *fp;

    *is_db = false;
    if (strcmp(path, "-") == 0)
        return HC_OK;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        /* a directory of segments (hrecord --rotate-*): the store reads it as one recording */
        *is_db = true;
        return HC_OK;
    }
    fp = fopen(path, "rb");
    if (!fp)
        return hc_error_set(err, HC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    n = fread(head, 1, sizeof(head), fp);
    if (ferror(fp)) {
        hc_err rc = hc_error_set(err, HC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        fclose(fp);
        return rc;
    }
    fclose(fp);
    if (n >= 16 && memcmp(head, "SQLite format 3", 16) == 0) {
        *is_db = true;
        return HC_OK;
    }
    /* a UTF-8 byte order mark (some Windows editors write one) is skipped, as the reader does */
    for (size_t i = n >= 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; i < n; i++) {
        if (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n')
            continue;
        if (head[i] == '{')
            return HC_OK;
        return hc_error_set(err, HC_ERR_NOT_RECORDING,
                            "'%s' is neither an hkit recording nor JSON lines", path);
    }
    return HC_OK; /* empty or blank: JSON lines with no messages */
}

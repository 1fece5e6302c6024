/*
 * Error names, descriptions and the error buffer helpers. Generated from HC_ERR_MAP.
 */
#include "hcore/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *hc_strerror(hc_err code)
{
    switch (code) {
#define HC__ERR_DESC(name, desc)                                                                   \
    case HC_ERR_##name:                                                                            \
        return desc;
        HC_ERR_MAP(HC__ERR_DESC)
#undef HC__ERR_DESC
    default:
        return "unknown error";
    }
}

const char *hc_err_name(hc_err code)
{
    switch (code) {
#define HC__ERR_NAME(name, desc)                                                                   \
    case HC_ERR_##name:                                                                            \
        return "HC_ERR_" #name;
        HC_ERR_MAP(HC__ERR_NAME)
#undef HC__ERR_NAME
    default:
        return "HC_ERR_UNKNOWN";
    }
}

hc_err hc_error_set(hc_error *err, hc_err code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

hc_err hc_error_prefix(hc_error *err, const char *fmt, ...)
{
    char prefix[HC_ERROR_MESSAGE_MAX];
    char joined[2 * HC_ERROR_MESSAGE_MAX + 2];
    va_list ap;

    if (!err)
        return HC_OK;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    snprintf(joined, sizeof(joined), "%s: %s", prefix, err->message);
    memcpy(err->message, joined, sizeof(err->message) - 1);
    err->message[sizeof(err->message) - 1] = '\0';
    return err->code;
}

/*
 * Helpers shared between libcore's source files (hc__ prefix); not part of the public API.
 */
#ifndef HCORE_INTERNAL_H
#define HCORE_INTERNAL_H

#include "hcore/error.h"
#include "hcore/log.h"

#define HC__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif

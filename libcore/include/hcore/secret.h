/*
 * Wiping secrets (API key tokens, passwords, HMAC keys) before their memory is reused or freed:
 * the one routine libcore and the tools share, so no copy of a token outlives its use because an
 * optimiser dropped a plain memset on memory that is about to be freed.
 */
#ifndef HCORE_SECRET_H
#define HCORE_SECRET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Overwrites n bytes at p with zeros, in a way the compiler cannot drop. Accepts p NULL. */
void hc_secret_wipe(void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif

/*
 * The one secret wipe of libcore (internal.h): key material and passwords are cleared before
 * their memory is freed.
 */
#include <openssl/crypto.h>

#include "internal.h"

void hc__secret_wipe(void *p, size_t n)
{
    /* OpenSSL's cleanse is written so that no optimiser can prove the stores dead. */
    if (p && n)
        OPENSSL_cleanse(p, n);
}

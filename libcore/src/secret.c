/*
 * The one secret wipe (hcore/secret.h).
 */
#include "hcore/secret.h"

#include <openssl/crypto.h>

void hc_secret_wipe(void *p, size_t n)
{
    /* OpenSSL's cleanse is written so that no optimiser can prove the stores dead. */
    if (p && n)
        OPENSSL_cleanse(p, n);
}

/*
 * The one secret wipe: what it clears and what it accepts.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "hcore/secret.h"

Test(secret, wipe_zeroes_exactly_the_bytes_asked_for)
{
    char token[] = "eyJhbGciOiJSUzI1NiJ9.secret";
    size_t n = strlen(token);

    hc_secret_wipe(token, n - 6);
    for (size_t i = 0; i < n - 6; i++)
        cr_assert_eq(token[i], '\0', "byte %zu", i);
    cr_assert_str_eq(token + n - 6, "secret");
}

Test(secret, wipe_accepts_null_and_empty)
{
    char c = 'x';

    hc_secret_wipe(NULL, 16);
    hc_secret_wipe(&c, 0);
    cr_assert_eq(c, 'x');
}

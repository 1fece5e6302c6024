#!/usr/bin/env bash
# cmake --install puts the tools, libhcore.a, its headers and hcore.pc in a prefix, and a user's
# own C program builds against them with pkg-config and decodes a Haltian message.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

build_dir=$(dirname "$HKIT_BIN")
prefix=$HKIT_TMP/prefix
cmake --install "$build_dir" --prefix "$prefix" >/dev/null

for tool in hrecord hreplay hverify hcat hgen; do
    if [ -x "$HKIT_BIN/$tool" ]; then
        [ -x "$prefix/bin/$tool" ] || hkit_fail "$tool not installed"
    fi
done
[ -f "$prefix/lib/libhcore.a" ] || [ -f "$prefix/lib64/libhcore.a" ] ||
    [ -n "$(find "$prefix" -name libhcore.a)" ] || hkit_fail "libhcore.a not installed"
[ -f "$prefix/include/hcore/decode.h" ] || hkit_fail "headers not installed"
pc=$(dirname "$(find "$prefix" -name hcore.pc | head -1)")
[ -n "$pc" ] || hkit_fail "hcore.pc not installed"

cat >"$HKIT_TMP/user.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <hcore/decode.h>
#include <hcore/topic.h>

int main(void)
{
    const char *topic = "haltian-iot/events/i/k/measurements/ambientTemperature/d1";
    const char *payload = "{\"measured_at\":\"2026-02-05T10:30:45.123Z\",\"value\":23.5}";
    cJSON *out = NULL;
    if (hc_decode_message(topic, (const unsigned char *)payload, strlen(payload), &out, NULL))
        return 1;
    char *text = cJSON_PrintUnformatted(out);
    puts(text);
    cJSON_free(text);
    cJSON_Delete(out);
    return hc_topic_matches("haltian-iot/events/+/+/measurements/#", topic) ? 0 : 2;
}
C
extra=()
grep -q '^HKIT_SANITIZE:BOOL=ON' "$build_dir/CMakeCache.txt" && extra=(-fsanitize=address,undefined)
grep -q '^HKIT_FUZZ:BOOL=ON' "$build_dir/CMakeCache.txt" && extra=(-fsanitize=fuzzer-no-link,address,undefined)
compiler=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
# shellcheck disable=SC2046
"${compiler:-cc}" "${extra[@]}" -o "$HKIT_TMP/user" "$HKIT_TMP/user.c" \
    $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs --static hcore) ||
    hkit_fail "a user program does not build against the installed hcore"
out=$("$HKIT_TMP/user") || hkit_fail "the user program failed"
hkit_assert_contains "$out" '"ambientTemperature"' "decoded type"
hkit_assert_contains "$out" '23.5' "decoded value"
echo "ok: installed tools, library, headers and pkg-config file work for a user's program"

#!/usr/bin/env bash
# The man pages are built from docs/man/*.scd and installed by 'cmake --install' (here with
# DESTDIR, as a package build does) into share/man/man1, where man renders them without
# warnings; and docs/<tool>.md are exactly what docs/man/scd2md makes of the same sources.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

python3 "$HKIT_SOURCE_DIR/docs/man/scd2md" --check ||
    hkit_fail "docs/<tool>.md differ from their man page sources: run docs/man/scd2md and commit"

build_dir=$(dirname "$HKIT_BIN")
cache=$build_dir/CMakeCache.txt
if grep -q '^HKIT_MAN:BOOL=OFF' "$cache"; then
    echo "ok: docs/<tool>.md are up to date; man pages left out on purpose (-DHKIT_MAN=OFF)"
    exit 0
fi
grep -Eq '^HKIT_SCDOC:FILEPATH=.*/scdoc$' "$cache" ||
    hkit_fail "the man pages were not built: scdoc was missing when cmake configured this" \
        "build; install it (scripts/setup does: apt-get install scdoc) and run cmake again"

DESTDIR=$HKIT_TMP/dest cmake --install "$build_dir" --prefix /usr/local >/dev/null
for tool in hrecord hreplay hcat hverify hgen; do
    page=$HKIT_TMP/dest/usr/local/share/man/man1/$tool.1
    [ -f "$page" ] || hkit_fail "$tool.1 not installed under DESTDIR (expected $page)"
    text=$(MANWIDTH=80 man -l "$page" 2>"$HKIT_TMP/man.err" | col -b)
    [ ! -s "$HKIT_TMP/man.err" ] || hkit_fail "man $tool warns: $(cat "$HKIT_TMP/man.err")"
    hkit_assert_contains "$text" "$tool - " "NAME line of $tool(1)"
    hkit_assert_contains "$text" "EXIT STATUS" "$tool(1)"
done
[ -z "$(find "$HKIT_TMP/dest" -name '*.scd')" ] || hkit_fail "an .scd source was installed"
echo "ok: 5 man pages built and installed with DESTDIR; docs/<tool>.md are up to date"

#!/usr/bin/env bash
# The example decoder in fixtures/examples is the code fixtures/README.md shows, and it runs on
# the whole shipped corpus without a protocol error: its values differ from hkit's (exit 3), but
# no case is an error (no Infinity or NaN printed, no crash on short topics or odd payloads).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 0; }

ex=$HKIT_SOURCE_DIR/fixtures/examples/passthrough_decoder.py
awk '/^```python$/ {on=1; next} on && /^```$/ {exit} on' "$HKIT_SOURCE_DIR/fixtures/README.md" >"$HKIT_TMP/readme.py"
sed -n '/^import base64/,$p' "$ex" >"$HKIT_TMP/file.py"
diff -u "$HKIT_TMP/readme.py" "$HKIT_TMP/file.py" || hkit_fail "fixtures/README.md and $ex differ"

hkit_expect_exit 3 hverify --decoder "python3 '$ex'" "$HKIT_SOURCE_DIR/fixtures"
case $OUT in *ERROR*) hkit_fail "the example decoder broke the protocol: $(printf '%s\n' "$OUT" | grep ERROR | head -3)" ;; esac
case $ERR in *"could not run"*) hkit_fail "cases could not run: $ERR" ;; esac
printf '{"topic":"a/b","payload":{"v":1e400}}\n{"topic":"a","payload":"NaN"}\n' |
    python3 "$ex" >"$HKIT_TMP/odd.out"
hkit_assert_eq '{"error": "number-out-of-range"}
{"error": "not-json"}' "$(cat "$HKIT_TMP/odd.out")" "odd inputs"

#!/usr/bin/env bash
# hverify --report-html: with real Python paho consumers on hverify's private Mosquitto (text
# and JSON modes, a broken variant of each) and with the built-in decoder on a fixture whose
# expected output was altered. The page names every case with its status and counts, each
# failure with its input and first differing path, and per consumer case a timeline whose
# failing inputs and outputs match the mismatches; it is checked in headless chromium
# (tests/js/browser-check.mjs): not blank, no console errors, no network requests.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
. "$HKIT_SOURCE_DIR/tests/js/setup.sh"
command -v chromium >/dev/null || hkit_fail "chromium is needed (scripts/setup installs it)"
hkit_require_paho
C=$HKIT_SOURCE_DIR/fixtures/consumers
cd "$HKIT_TMP"
cp -r "$C/cases" "$C/json-cases" .
# count PATTERN FILE: how many times PATTERN occurs
count() { grep -o "$1" "$2" | wc -l; }

# --- text mode, broken: the Fahrenheit figure is wrong in two output lines of each case -------
hkit_expect_exit 3 hverify --consumer "python3 $C/broken_fahrenheit.py" --report-html text.html cases
html=$(cat text.html)
hkit_assert_contains "$html" "<title>hkit report: hverify, 2 cases</title>" "title"
hkit_assert_contains "$html" "2 cases: 0 passed, 2 failed, 0 could not run" "result row"
hkit_assert_contains "$html" "<td class=\"mono\">cases/text-environment</td><td class=\"warn\">FAILED</td><td class=\"n\">5</td><td class=\"n\">2</td>" "case row"
hkit_assert_contains "$html" "<td class=\"mono\">input 1: ambientTemperature, device 9b2f6c1e-4d3a-4f8b-a1c2-3e4d5f6a7b8c, 2026-02-05T10:30:45.123Z</td><td class=\"mono\">expected.txt line 2</td>" "input and path"
hkit_assert_contains "$html" "Timeline: 5 inputs sent (2 failing), 12 output lines (2 failing)" "timeline counts, environment"
hkit_assert_contains "$html" "Timeline: 3 inputs sent (2 failing), 7 output lines (2 failing)" "timeline counts, malformed"
hkit_assert_eq 2 "$(count '<section class="case">' text.html)" "one section per case"
# the failing marks on the timeline add up to the failing lines: 2 + 2 outputs
hkit_assert_eq 4 "$(grep -o 'data-tip="[0-9]* failing outputs from' text.html | awk '{gsub(/data-tip="/, ""); s += $1} END {print s}')" "failing output marks"
out=$(node "$HKIT_JS/browser-check.mjs" text.html text.png 1000 2) || hkit_fail "browser, text: $out"
echo "$out"
hkit_assert_contains "$out" "browser-check: ok" "browser check, text"

# --- JSON mode: a passing run, then a broken one naming the differing path -------------------
hkit_expect_exit 0 hverify --consumer "python3 $C/json_client.py" --report-html pass.html json-cases
html=$(cat pass.html)
hkit_assert_contains "$html" "1 cases: 1 passed, 0 failed, 0 could not run" "passing result"
hkit_assert_contains "$html" "Timeline: 5 inputs sent (0 failing), 4 output lines (0 failing)" "passing timeline"
sed 's/"fahrenheit": round(c \* 9 \/ 5 + 32, 2)/"fahrenheit": round(c * 9 \/ 5, 2)/' "$C/json_client.py" >broken_json.py
hkit_expect_exit 3 hverify --consumer "python3 broken_json.py" --report-html json.html json-cases/environment
hkit_assert_contains "$(cat json.html)" "</td><td class=\"mono\">fahrenheit</td><td class=\"mono\">74.3</td><td class=\"mono warn\">42.3</td>" "json path, expected, actual"
out=$(node "$HKIT_JS/browser-check.mjs" json.html json.png 1000 1) || hkit_fail "browser, json: $out"

# --- the built-in decoder: one altered expected value, no consumer, so no timeline ------------
cp -r "$HKIT_SOURCE_DIR/fixtures/thingsee-1111-orientation" orientation
sed -i 's/"tsm_id":1111/"tsm_id":1112/' orientation/expected.jsonl
hkit_expect_exit 3 hverify --report-html builtin.html orientation
html=$(cat builtin.html)
hkit_assert_contains "$html" "<td>message 1</td>" "message named"
hkit_assert_contains "$html" "<td class=\"mono\">tsm_id</td><td class=\"mono\">1112</td><td class=\"mono warn\">1111</td>" "builtin path"
hkit_assert_contains "$html" "<td>built-in (hc_decode_message)</td>" "decoder row"
case "$html" in *"<h2>Timeline"*) hkit_fail "a decoder case has no timeline" ;; esac
out=$(node "$HKIT_JS/browser-check.mjs" builtin.html builtin.png 1000 0) || hkit_fail "browser, builtin: $out"
hkit_assert_contains "$out" "browser-check: ok" "browser check, builtin"
for f in text.html pass.html json.html builtin.html; do
    if grep -Eqi '(src|href)=|@import|url\(|https?://' "$f"; then
        hkit_fail "$f refers to something outside itself"
    fi
done

# --- argument errors -------------------------------------------------------------------------
hkit_expect_exit 2 hverify --report-html '' orientation
hkit_assert_eq "hverify: invalid value '' for --report-html: must not be empty" "$(head -1 "$HKIT_TMP/stderr")" "empty value"
hkit_expect_exit 1 hverify --report-html no/such/dir.html orientation
hkit_assert_contains "$ERR" "hverify: cannot write 'no/such/dir.html': No such file or directory" "unwritable"
echo "t0323 ok"

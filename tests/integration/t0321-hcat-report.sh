#!/usr/bin/env bash
# hcat --report on a demo-like recording (tests/js/make-demo-recording.sh: two generated
# sessions with a gap, an imported one with a decode error, duplicates and measured_at going
# back), checked in a real browser, headless chromium from Debian driven over the DevTools
# protocol (tests/js/browser-check.mjs): the page renders with a screenshot that is not blank,
# the console shows no errors, the page makes no network requests, hovering shows values. The
# header's counts, the file's bound on size, and argument errors are pinned.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
. "$HKIT_SOURCE_DIR/tests/js/setup.sh"
command -v chromium >/dev/null || hkit_fail "chromium is needed (scripts/setup installs it)"
cd "$HKIT_TMP"

expect_usage() { # message args...
    local want=$1
    shift
    hkit_expect_exit 2 hcat "$@"
    hkit_assert_eq "$want" "$(head -1 "$HKIT_TMP/stderr")" "usage error for $*"
}

"$HKIT_SOURCE_DIR/tests/js/make-demo-recording.sh" demo.db
hkit_expect_exit 0 hcat demo.db --report demo.html
hkit_assert_contains "$ERR" "wrote 10549 messages to 'demo.html'" "summary line"
html=$(cat demo.html)
hkit_assert_contains "$html" "1 decode errors, 2 duplicates, 1 times measured_at went back" "anomalies"
hkit_assert_contains "$html" "3 sessions, 1 gaps between them, longest 1h 00m" "sessions and gaps"
hkit_assert_contains "$html" "10549 (0.733 msg/s)" "message count and rate"
# self-contained: nothing that could fetch
if grep -Eqi '(src|href)=|@import|url\(|https?://' demo.html; then
    hkit_fail "the report refers to something outside itself: $(grep -Eoi '(src|href)=.{0,40}|@import.{0,40}|url\(.{0,40}|https?://.{0,40}' demo.html | head -3)"
fi
size=$(stat -c %s demo.html)
[ "$size" -lt 2000000 ] || hkit_fail "report is $size bytes, over 2 MB"

out=$(node "$HKIT_JS/browser-check.mjs" demo.html demo.png) || hkit_fail "browser: $out"
echo "$out"
hkit_assert_contains "$out" "browser-check: ok" "browser check"

# a selection, an empty selection, JSON lines input, existing files
hkit_expect_exit 0 hcat demo.db --type humidity --report humidity.html
hkit_assert_contains "$(cat humidity.html)" "selection</th><td>--type humidity" "selection shown"
hkit_expect_exit 0 hcat demo.db --type nosuchtype --report empty.html
hkit_assert_contains "$(cat empty.html)" "No messages in the selection." "empty selection"
hcat demo.db --limit 500 >part.jsonl
hkit_expect_exit 0 hcat part.jsonl --report part.html
hkit_assert_contains "$(cat part.html)" "none recorded (JSON lines input)" "JSON lines input"
out=$(node "$HKIT_JS/browser-check.mjs" part.html part.png) || hkit_fail "browser, JSON lines: $out"
hkit_expect_exit 1 hcat demo.db --report demo.html
hkit_assert_contains "$ERR" "cannot write 'demo.html': file exists (use --force to replace it)" "no overwrite"
hkit_expect_exit 0 hcat demo.db --report demo.html --force

expect_usage "hcat: --report cannot be combined with -o, --info, --check, --decode, --format or --note" demo.db --report x.html --info
expect_usage "hcat: option '--report' needs a value" demo.db --report
expect_usage "hcat: output 'demo.db' is also an input" demo.db --report demo.db
echo "t0321 ok"

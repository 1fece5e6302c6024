#!/usr/bin/env bash
# hreplay --report-html against a real Mosquitto: a timed replay with one input MQTT forbids (a
# failure) and connections broken by the disconnect fault (p 0.01, seed 1: twice) (real reconnects). The
# page's figures must agree with --report-json of the same run, the failure and reconnect marks
# on the timeline must add up to the run's counts, and the page is checked in headless chromium
# (tests/js/browser-check.mjs): not blank, no console errors, no network requests. A --max run
# has no lateness section; argument errors are pinned.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
. "$HKIT_SOURCE_DIR/tests/js/setup.sh"
command -v chromium >/dev/null || hkit_fail "chromium is needed (scripts/setup installs it)"
hkit_broker_start "$HKIT_TMP/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
cd "$HKIT_TMP"

json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# marks NAME FILE: the sum of the counts in the "N NAME from ..." tooltips of a chart's marks
marks() { grep -o "data-tip=\"[0-9]* $1 from" "$2" | awk '{gsub(/data-tip="/, ""); s += $1} END {print s + 0}'; }

for i in $(seq 1 400); do
    printf '{"topic":"rep/dev-%d/t","qos":1,"payload":"%d"}\n' $((i % 7)) "$i"
    [ "$i" = 200 ] && printf '{"topic":"rep/bad/+/wildcard","qos":1,"payload":"x"}\n'
done >in.jsonl

hkit_expect_exit 1 hreplay --url "$URL" --rate 250 --faults disconnect=0.01 \
    --report-html run.html --report-json run.json in.jsonl
sent=$(json run.json sent)
reconnects=$(json run.json reconnects)
broken=$(python3 -c 'import json; print(json.load(open("run.json"))["faults"]["reconnects"])')
hkit_assert_eq 400 "$sent" "sent (json)"
hkit_assert_eq 1 "$(json run.json failed)" "failed (json)"
[ "$broken" -ge 2 ] || hkit_fail "expected at least 2 connections broken by the fault, got $broken"
html=$(cat run.html)
hkit_assert_contains "$html" "<title>hkit report: replay of in.jsonl</title>" "title"
hkit_assert_contains "$html" "<td class=\"warn\">400 sent, 1 failed, 401 taken from the input" "messages row"
hkit_assert_contains "$html" "<td>rate, 250 msg/s</td>" "timing row"
hkit_assert_contains "$html" "$reconnects reconnects, " "reconnects row"
hkit_assert_contains "$html" "disconnect=0.01 (seed 1)" "faults row"
hkit_assert_contains "$html" "<section id=\"rates\">" "rates section"
hkit_assert_contains "$html" "<section id=\"lateness\">" "lateness section"
hkit_assert_eq 1 "$(marks failures run.html)" "failure marks add up to the failures"
hkit_assert_eq $((reconnects + broken)) "$(marks reconnects run.html)" "reconnect marks add up to the reconnects"
hkit_assert_contains "$html" "$broken connections broken" "faults row counts"
p99=$(python3 -c 'import json; print(round(json.load(open("run.json"))["lateness_us"]["p99"]))')
hkit_assert_contains "$html" "p99 $p99 us," "lateness p99 as in the json"
if grep -Eqi '(src|href)=|@import|url\(|https?://' run.html; then
    hkit_fail "the report refers to something outside itself"
fi
out=$(node "$HKIT_JS/browser-check.mjs" run.html run.png 1000 2) || hkit_fail "browser: $out"
echo "$out"
hkit_assert_contains "$out" "browser-check: ok" "browser check"

# --max: no schedule, so no lateness chart; a clean run exits 0
hkit_expect_exit 0 hreplay --url "$URL" --max -q 0 --report-html max.html --limit 150 in.jsonl
html=$(cat max.html)
hkit_assert_contains "$html" "not measured (--max has no schedule)" "lateness under --max"
hkit_assert_contains "$html" "<td>150 sent, 0 failed, 150 taken from the input" "messages under --max"
case "$html" in *'<section id="lateness">'*) hkit_fail "--max page has a lateness section" ;; esac
out=$(node "$HKIT_JS/browser-check.mjs" max.html max.png 1000 1) || hkit_fail "browser, --max: $out"

# argument errors
hkit_expect_exit 2 hreplay --merge-reports --report-html x.html run.json
hkit_assert_eq "hreplay: --report-html describes a replay; it cannot be combined with --merge-reports" \
    "$(head -1 "$HKIT_TMP/stderr")" "--merge-reports"
hkit_expect_exit 2 hreplay --url "$URL" --report-html
hkit_assert_eq "hreplay: option '--report-html' needs a value" "$(head -1 "$HKIT_TMP/stderr")" "no value"
hkit_expect_exit 1 hreplay --url "$URL" --report-html no/such/dir.html in.jsonl
hkit_assert_eq "hreplay: cannot write 'no/such/dir.html': No such file or directory" \
    "$(head -1 "$HKIT_TMP/stderr")" "unwritable"
echo "t0322 ok"

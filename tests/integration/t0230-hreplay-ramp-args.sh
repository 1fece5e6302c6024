#!/usr/bin/env bash
# hreplay --ramp's argument errors: exact message and exit status 2, before any connection.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

echo '{"topic":"a/b","payload":"x"}' >"$HKIT_TMP/in.jsonl"
IN=$HKIT_TMP/in.jsonl
OBS=(--observe 'mqtt:out/#')

usage_error() { # expected-first-line args...
    local want=$1
    shift
    hkit_expect_exit 2 hreplay "$@"
    hkit_assert_eq "$want" "$(printf '%s\n' "$ERR" | head -1)" "hreplay $*"
    hkit_assert_eq "try 'hreplay --help'" "$(printf '%s\n' "$ERR" | sed -n 2p)" "hreplay $* hint"
}

shape="expected START:STEP:HOLD[:MAX] (msg/s, msg/s, a duration, msg/s; e.g. 100:50:5s:1000)"
usage_error "hreplay: invalid value '100' for --ramp: $shape" --ramp 100 "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '100:50' for --ramp: $shape" --ramp 100:50 "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '100:50:5s:1000:9' for --ramp: $shape" --ramp 100:50:5s:1000:9 "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value 'a:50:5s' for --ramp: $shape" --ramp a:50:5s "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '100::5s' for --ramp: $shape" --ramp 100::5s "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '100:50:5s:' for --ramp: $shape" --ramp 100:50:5s: "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '-5:50:5s' for --ramp: $shape" --ramp -5:50:5s "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '0:50:5s' for --ramp: START must be above 0" --ramp 0:50:5s "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '100:0:5s' for --ramp: STEP must be above 0" --ramp 100:0:5s "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '100:50:5s:50' for --ramp: MAX is below START" --ramp 100:50:5s:50 "${OBS[@]}" "$IN"
usage_error "hreplay: invalid value '100:50:100ms' for --ramp: HOLD must be at least 500ms" --ramp 100:50:100ms "${OBS[@]}" "$IN"
usage_error "hreplay: invalid duration 'soon' for --ramp: expected e.g. 250ms, 10s, 5m, 2h" --ramp 100:50:soon "${OBS[@]}" "$IN"
usage_error "hreplay: --ramp needs --observe mqtt:FILTER or --observe file:PATH (where the consumer's outputs appear)" --ramp 100:50:5s "$IN"
usage_error "hreplay: invalid value 'udp:x' for --observe: expected mqtt:FILTER or file:PATH" --ramp 100:50:5s --observe udp:x "$IN"
usage_error "hreplay: invalid value 'mqtt:' for --observe: expected mqtt:FILTER or file:PATH" --ramp 100:50:5s --observe mqtt: "$IN"
usage_error "hreplay: invalid value 'file:' for --observe: expected mqtt:FILTER or file:PATH" --ramp 100:50:5s --observe file: "$IN"
usage_error "hreplay: invalid value 'mqtt:out/#/x' for --observe: invalid topic filter 'out/#/x': '#' must be the last level" --ramp 100:50:5s --observe 'mqtt:out/#/x' "$IN"
usage_error "hreplay: --observe needs --ramp" "${OBS[@]}" "$IN"
usage_error "hreplay: --slo needs --ramp" --slo 50ms "$IN"
usage_error "hreplay: --report-svg needs --ramp" --report-svg x.svg "$IN"
usage_error "hreplay: invalid value '0' for --slo: must be above 0" --ramp 100:50:5s "${OBS[@]}" --slo 0 "$IN"
usage_error "hreplay: --rate and --ramp cannot be combined" --rate 5 --ramp 100:50:5s "${OBS[@]}" "$IN"
usage_error "hreplay: --ramp and --max cannot be combined" --ramp 100:50:5s --max "${OBS[@]}" "$IN"
usage_error "hreplay: --ramp cannot be combined with --loop (the ramp repeats the input itself)" --ramp 100:50:5s --loop 2 "${OBS[@]}" "$IN"
usage_error "hreplay: --ramp cannot be combined with --max-gap" --ramp 100:50:5s --max-gap 1s "${OBS[@]}" "$IN"
usage_error "hreplay: --ramp cannot be combined with --shard" --ramp 100:50:5s --shard 1/2 "${OBS[@]}" "$IN"
usage_error "hreplay: --ramp needs a file: standard input can be read only once" --ramp 100:50:5s "${OBS[@]}" - </dev/null

# --help names every ramp option (t0002 checks the man page)
OUT=$(hreplay --help)
for opt in --ramp --observe --slo --report-svg; do
    hkit_assert_contains "$OUT" "  $opt " "--help lists $opt"
done
echo "t0230: ok"

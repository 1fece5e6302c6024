#!/usr/bin/env bash
# hrecord --rotate-time with a real Mosquitto: cuts fall on multiples of the period of the UTC
# clock, so every message of a segment lies inside one period; the segments together hold every
# message once, and the directory reads as one recording with one session.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
port=$HKIT_BROKER_PORT
dir=$HKIT_TMP/rec/
T=haltian-iot/events/intg/key/measurements/ambientTemperature/dev-1

has_session() { [ -f "$dir/000001.db" ] && [ "$(sqlite3 "file:$dir/000001.db?mode=ro" "select count(*) from sessions" 2>/dev/null || echo 0)" -ge 1 ]; }
segments() { ls "$dir" | grep -c '^[0-9]\{6\}\.db$' || true; }
at_least_segments() { [ "$(segments)" -ge "$1" ]; }

timeout 120 hrecord --url "mqtt://127.0.0.1:$port" -t 'haltian-iot/#' -o "$dir" \
    --rotate-time 1s --flush-ms 20 --quiet &
rec=$!
hkit_wait_cmd "hrecord's session" 10 has_session
# publish in three bursts, each once a new segment has been opened, so they straddle cuts
sent=0
for burst in 1 2 3; do
    hkit_wait_cmd "segment $((burst + 1))" 10 at_least_segments $((burst + 1))
    seq -f "{\"value\":%g}" $((sent + 1)) $((sent + 200)) |
        timeout 30 mosquitto_pub -p "$port" -t "$T" -q 1 -l
    sent=$((sent + 200))
done
kill -INT "$(pgrep -P $rec)"
wait $rec

# every message of a segment lies within one second of the clock, aligned on the second
for f in "$dir"/[0-9]*.db; do
    span=$(sqlite3 "file:$f?mode=ro&immutable=1" \
        "select count(distinct received_at_ns / 1000000000) from message_rows")
    [ "$span" -le 1 ] || hkit_fail "$(basename "$f") holds messages from $span different seconds"
done
hkit_assert_eq "$(seq 1 $sent)" "$(hcat "$dir" | jq -r '.payload | fromjson | .value')" \
    "every message once, in order, over the directory"
hkit_assert_eq "1" "$(hcat --info --json --top 0 "$dir" | jq '.sessions | length')" "one session"
hkit_assert_eq "$(segments)" "$(jq '.segments | length' "$dir/manifest.json")" "manifest entries"
echo ok

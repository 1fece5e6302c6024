#!/usr/bin/env bash
# hgen publishing live to a private broker: every message reaches an independent subscriber
# (mosquitto_sub -F) with the same topics and payloads as --jsonl gives for the same options,
# and hrecord captures the same stream when it is built.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"
hkit_broker_start "$HKIT_TMP/broker"
url="mqtt://127.0.0.1:$HKIT_BROKER_PORT"
start=2026-03-02T08:00:00Z
args=(--devices environment=3,presence=5,count=2,air=1 --duration 2h --seed 5 --start "$start")

hgen --jsonl "${args[@]}" --quiet | jq -r '.topic + " " + .payload' >expected.txt
n=$(wc -l <expected.txt)
[ "$n" -gt 100 ] || hkit_fail "only $n messages"

timeout 60 mosquitto_sub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -q 1 -t 'haltian-iot/#' \
    -i t0403-sub -F '%t %p' -C "$n" >got.txt &
sub=$!
have_hrecord=no
if [ -x "$HKIT_BIN/hrecord" ]; then
    have_hrecord=yes
    timeout 60 hrecord --url "$url" -i t0403-rec -t 'haltian-iot/#' -o rec.db --count "$n" --quiet &
    rec=$!
    hkit_wait_subscribed t0403-rec 'haltian-iot/#'
fi
hkit_wait_subscribed t0403-sub 'haltian-iot/#' # both subscribers in place before the first publish
timeout 60 hgen --url "$url" "${args[@]}" --max 2>summary.txt
hkit_assert_contains "$(cat summary.txt)" "hgen: $n messages" "summary"
wait $sub || hkit_fail "mosquitto_sub did not receive $n messages"
hkit_assert_eq "$(sha256sum <expected.txt)" "$(sha256sum <got.txt)" "broker delivered what --jsonl shows, in order"
if [ $have_hrecord = yes ]; then
    wait $rec || hkit_fail "hrecord failed"
    hkit_assert_eq "$n" "$(sqlite3 rec.db 'SELECT count(*) FROM messages')" "hrecord count"
    hkit_assert_eq "$(sha256sum <expected.txt)" \
        "$(sqlite3 rec.db "SELECT t.name || ' ' || CAST(m.payload AS TEXT) FROM messages m JOIN topics t ON t.id = m.topic_id ORDER BY m.seq" | sha256sum)" \
        "hrecord captured the stream"
fi

# paced publishing: --rate 200 for 100 messages takes about half a second (bounded, not timed)
timeout 30 mosquitto_sub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t 'haltian-iot/#' -i t0403-paced \
    -F '%t' -C 100 >paced.txt &
sub=$!
hkit_wait_subscribed t0403-paced 'haltian-iot/#'
timeout 30 hgen --url "$url" "${args[@]}" --rate 200 --count 100 -q 0 --quiet
wait $sub || hkit_fail "paced: subscriber did not get 100 messages"
hkit_assert_eq 100 "$(wc -l <paced.txt)" "paced count"

# real time at a high speed, stopped by SIGINT: exits 0 and says it was interrupted
timeout 30 hgen --url "$url" "${args[@]}" --speed 100 2>int.txt &
gen=$!
hkit_wait_for 200 0.05 "hgen to publish" "grep -q 'connected to .*; publishing' int.txt"
kill -INT $gen
wait $gen || hkit_fail "hgen exited $? after SIGINT"
hkit_assert_contains "$(cat int.txt)" "(interrupted)" "interrupted summary"
echo ok

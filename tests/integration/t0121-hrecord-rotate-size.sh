#!/usr/bin/env bash
# hrecord --rotate-size with a real Mosquitto: segments 000001.db... each a recording usable on its
# own and under the limit by no more than what arrives between two looks at its size; the
# manifest lists every segment with its count and sha256; hcat over the directory shows every
# message once, in order, seq continuing, in one session. An idle recorder cuts no segment: a new
# segment's schema alone is about 1M, and cutting on size without a message once made a new empty
# segment every 100 ms.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
port=$HKIT_BROKER_PORT
dir=$HKIT_TMP/rec/
T=haltian-iot/events/intg/key/measurements/ambientTemperature/dev-1
N=6000

has_session() { [ -f "$dir/000001.db" ] && [ "$(sqlite3 "file:$dir/000001.db?mode=ro" "select count(*) from sessions" 2>/dev/null || echo 0)" -ge 1 ]; }

timeout 120 hrecord --url "mqtt://127.0.0.1:$port" -t 'haltian-iot/#' -o "$dir" \
    --rotate-size 1M --flush-ms 20 --count $N --quiet &
rec=$!
hkit_wait_cmd "hrecord's session" 10 has_session
pad=$(head -c 600 /dev/zero | tr '\0' x)
seq -f "{\"value\":%g,\"pad\":\"$pad\"}" 1 $N | timeout 60 mosquitto_pub -p "$port" -t "$T" -q 1 -l
wait $rec

segs=$(ls "$dir" | grep -c '^[0-9]\{6\}\.db$')
[ "$segs" -ge 3 ] || hkit_fail "expected at least 3 segments of 1M for ~4M of payloads, got $segs"
total=0
for f in "$dir"/[0-9]*.db; do
    n=$(hcat "$f" | wc -l) # each segment is a recording on its own
    total=$((total + n))
    [ -e "$f-wal" ] && hkit_fail "$f left a -wal after a clean stop"
done
hkit_assert_eq "$N" "$total" "messages over all segments"

# the manifest: one entry per segment, counts and hashes as the files say
hkit_assert_eq "$segs" "$(jq '.segments | length' "$dir/manifest.json")" "manifest entries"
for f in "$dir"/[0-9]*.db; do
    b=$(basename "$f")
    hkit_assert_eq "$(sha256sum "$f" | cut -d' ' -f1)" \
        "$(jq -r --arg f "$b" '.segments[] | select(.file == $f) | .sha256' "$dir/manifest.json")" \
        "sha256 of $b"
    hkit_assert_eq "$(sqlite3 "file:$f?mode=ro" "select count(*) from message_rows")" \
        "$(jq -r --arg f "$b" '.segments[] | select(.file == $f) | .messages' "$dir/manifest.json")" \
        "messages of $b"
done

# the directory as one recording: every value once, in order, seq 1..N, one session
hcat --format jsonl "$dir" >"$HKIT_TMP/all.jsonl"
hkit_assert_eq "$(seq 1 $N)" "$(jq -r '.payload | fromjson | .value' "$HKIT_TMP/all.jsonl")" \
    "values in order"
info=$(hcat --info --json --top 0 "$dir")
hkit_assert_eq "$N" "$(printf '%s' "$info" | jq .messages)" "messages in --info"
hkit_assert_eq "1" "$(printf '%s' "$info" | jq '.sessions | length')" "one session across segments"
# idle for 1.5 s (15 looks at the size) with the smallest --rotate-size: one segment, empty
hkit_expect_exit 0 timeout 30 hrecord --url "mqtt://127.0.0.1:$port" -t 'idle/#' \
    -o "$HKIT_TMP/idle/" --rotate-size 1M --duration 1500ms --quiet
hkit_assert_eq "000001.db manifest.json" "$(ls "$HKIT_TMP/idle" | tr '\n' ' ' | sed 's/ $//')" \
    "segments of an idle recorder"
echo ok

#!/usr/bin/env bash
# A rotated recording read as one: hcat over the directory equals hcat over its segments one
# after the other (payloads, topics, times), seq continues from segment to segment, sessions are
# kept across segments, and hreplay plays the directory to a broker in
# the same order (checked with mosquitto_sub).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
port=$HKIT_BROKER_PORT
dir=$HKIT_TMP/rec/
T=haltian-iot/events/intg/key/measurements

segments() { ls "$dir" | grep -c '^[0-9]\{6\}\.db$' || true; }
at_least_segments() { [ "$(segments)" -ge "$1" ]; }
has_session() { [ -f "$dir/000001.db" ] && [ "$(sqlite3 "file:$dir/000001.db?mode=ro" "select count(*) from sessions" 2>/dev/null || echo 0)" -ge 1 ]; }

timeout 120 hrecord --url "mqtt://127.0.0.1:$port" -t 'haltian-iot/#' -o "$dir" \
    --rotate-time 1s --flush-ms 20 --quiet &
rec=$!
hkit_wait_cmd "hrecord's session" 10 has_session
for burst in 1 2 3; do
    hkit_wait_cmd "segment $((burst + 1))" 10 at_least_segments $((burst + 1))
    seq -f "{\"value\":%g}" $((burst * 100 + 1)) $((burst * 100 + 50)) |
        timeout 30 mosquitto_pub -p "$port" -t "$T/ambientTemperature/dev-$burst" -q 1 -l
done
kill -INT "$(pgrep -P $rec)"
wait $rec

hcat "$dir" >"$HKIT_TMP/dir.jsonl"
for f in "$dir"/[0-9]*.db; do hcat "$f"; done >"$HKIT_TMP/segs.jsonl"
# the same messages, times and sessions' starts; only the numbering differs
strip() { jq -c 'del(.seq, .session)' "$1"; }
cmp <(strip "$HKIT_TMP/dir.jsonl") <(strip "$HKIT_TMP/segs.jsonl") ||
    hkit_fail "hcat over the directory differs from its segments concatenated"
hcat --format csv "$dir" | tail -n +2 >"$HKIT_TMP/dir.csv"
hkit_assert_eq "$(seq 1 150)" "$(cut -d, -f1 "$HKIT_TMP/dir.csv")" "seq continues across segments"
hkit_assert_eq "1" "$(cut -d, -f2 "$HKIT_TMP/dir.csv" | sort -u)" "one session"
hkit_assert_eq "150" "$(hcat --info --json --top 0 "$dir" | jq '.sessions[0].messages')" \
    "the session's messages"

# hreplay plays the directory as one recording, in order
hkit_capture_start "$HKIT_TMP/cap.txt" 'haltian-iot/#'
hreplay --url "mqtt://127.0.0.1:$port" --max --quiet "$dir"
captured() { [ "$(grep -vc '^hkit-test/' "$HKIT_TMP/cap.txt.raw" || true)" -ge 150 ]; }
hkit_wait_cmd "150 messages at the subscriber" 20 captured
hkit_capture_stop "$HKIT_TMP/cap.txt"
hkit_assert_eq "$(jq -r '.payload' "$HKIT_TMP/dir.jsonl")" \
    "$(cut -d' ' -f4 "$HKIT_TMP/cap.txt" | while read -r hex; do printf '%s' "$hex" | xxd -r -p; echo; done)" \
    "hreplay sent the directory's messages in order"
echo ok

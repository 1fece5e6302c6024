#!/usr/bin/env bash
# hrecord --keep N keeps a ring of the newest N segments: older ones go with their side files, the
# manifest lists exactly the ones left, and the directory still reads as one recording (the
# newest messages, seq from 1). Usage errors of the rotation options are pinned.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
port=$HKIT_BROKER_PORT
dir=$HKIT_TMP/rec/
T=haltian-iot/events/intg/key/measurements/ambientTemperature/dev-1
url=mqtt://127.0.0.1:$port

newest_segment_at_least() { ls "$dir" | grep -q "^$(printf %06d "$1")\.db$"; }
has_session() { [ -f "$dir/000001.db" ] && [ "$(sqlite3 "file:$dir/000001.db?mode=ro" "select count(*) from sessions" 2>/dev/null || echo 0)" -ge 1 ]; }

# usage errors: exact message, exit 2
check_usage() { # expected-message args...
    local want=$1 out
    shift
    set +e
    out=$(hrecord --url "$url" -t 'x/#' "$@" 2>&1 >/dev/null)
    local rc=$?
    set -e
    hkit_assert_eq 2 "$rc" "exit status of hrecord $*"
    hkit_assert_eq "hrecord: $want" "$(printf '%s\n' "$out" | head -1)" "message of hrecord $*"
}
check_usage "invalid value '100K' for --rotate-size: must be at least 1M" -o "$dir" --rotate-size 100K
check_usage "invalid value '12X' for --rotate-size: expected a size such as 64M" -o "$dir" --rotate-size 12X
check_usage "invalid value '500ms' for --rotate-time: must be at least 1s" -o "$dir" --rotate-time 500ms
check_usage "--rotate-size and --rotate-time write segments into a directory: give -o DIR/" \
    -o "$HKIT_TMP/x.db" --rotate-time 1s
check_usage "--keep needs --rotate-size or --rotate-time" -o "$HKIT_TMP/x.db" --keep 2
check_usage "invalid value '0' for --keep: must be between 1 and 999999" -o "$dir" --rotate-time 1s --keep 0

timeout 120 hrecord --url "$url" -t 'haltian-iot/#' -o "$dir" --rotate-time 1s --keep 2 \
    --flush-ms 20 --quiet &
rec=$!
hkit_wait_cmd "hrecord's session" 10 has_session
sent=0
for n in 2 3 4 5; do
    hkit_wait_cmd "segment $n" 10 newest_segment_at_least "$n"
    seq -f "{\"value\":%g}" $((sent + 1)) $((sent + 20)) |
        timeout 30 mosquitto_pub -p "$port" -t "$T" -q 1 -l
    sent=$((sent + 20))
done
kill -INT "$(pgrep -P $rec)"
wait $rec

left=$(ls "$dir")
hkit_assert_eq 2 "$(printf '%s\n' "$left" | grep -c '^[0-9]\{6\}\.db$')" "segments kept"
printf '%s\n' "$left" | grep -q '^000001' && hkit_fail "000001.db or a side file of it survived"
hkit_assert_eq "$(printf '%s\n' "$left" | grep '^[0-9]\{6\}\.db$')" \
    "$(jq -r '.segments[].file' "$dir/manifest.json")" "the manifest lists the segments kept"
# the kept segments hold the newest messages; read as one recording they start at seq 1
vals=$(hcat "$dir" | jq -r '.payload | fromjson | .value')
# (a cut may fall between the last burst and the stop, so they are a suffix of what was sent)
n=$(printf '%s\n' "$vals" | grep -c . || true)
hkit_assert_eq "$(seq 1 $sent | tail -n "$n")" "$(printf '%s\n' "$vals" | grep .)" \
    "the kept segments hold the newest messages, in order"
[ "$n" -eq 0 ] || hkit_assert_eq "1" "$(hcat --format csv "$dir" | sed -n 2p | cut -d, -f1)" \
    "seq starts at 1"
echo ok

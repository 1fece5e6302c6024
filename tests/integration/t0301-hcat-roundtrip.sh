#!/usr/bin/env bash
# hcat round trips, checked with the sqlite3 CLI: JSON lines -> recording -> JSON lines ->
# recording keeps payload bytes (binary, NUL, invalid UTF-8, empty), topics, times and flags;
# slicing bounds (--since inclusive, --until exclusive) are exact to the nanosecond; two inputs
# merge in arrival order with sessions carried over; CSV quoting; --info and --info --json.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

I=3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44
K=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
D1=9d1e2f3a-4b5c-4d6e-8f70-a1b2c3d4e5f6
D2=11111111-2222-4333-8444-555555555555
T="haltian-iot/events/$I/$K/measurements"
cat >a.jsonl <<J
{"received_at":"2026-02-05T10:30:00.000000001Z","topic":"$T/ambientTemperature/$D1","qos":1,"retain":false,"payload":"{\"measured_at\":\"2026-02-05T10:30:00.000Z\",\"value\":23.5}"}
{"received_at":"2026-02-05T10:30:01.000000000Z","topic":"$T/humidity/$D1","qos":0,"retain":true,"payload":"{\"measured_at\":\"2026-02-05T10:30:01Z\",\"value\":45.8}"}
{"received_at":"2026-02-05T10:30:02.000000000Z","topic":"$T/co2/$D2","qos":2,"dup":true,"payload_b64":"AP8AgA=="}
{"received_at":"2026-02-05T10:30:03.000000000Z","topic":"x/empty","payload":""}
{"received_at":"2026-02-05T10:30:04.999999999Z","topic":"x/comma","payload":"a,\"b\"\nc"}
J

hkit_expect_exit 0 hcat a.jsonl -o a.db
hkit_assert_eq 5 "$(sqlite3 a.db 'select count(*) from messages')" "imported rows"
hkit_assert_eq "00FF0080" "$(sqlite3 a.db "select hex(payload) from messages_v where topic like '%co2%'")" "binary payload bytes"
hkit_assert_eq "2|1|0" "$(sqlite3 a.db "select qos, dup, retain from messages where seq = 3")" "flags"
hkit_assert_eq "0" "$(sqlite3 a.db "select length(payload) from messages where seq = 4")" "empty payload"
hkit_assert_eq "1770287400000000001" "$(sqlite3 a.db 'select received_at_ns from messages where seq = 1')" "ns time"
hkit_assert_eq "1" "$(sqlite3 a.db 'select count(*) from sessions')" "one session for an import"
hkit_assert_eq "4999999998" "$(sqlite3 a.db 'select mono_ns from messages where seq = 5')" "mono relative to first"

# recording -> JSON lines -> recording
hcat a.db >b.jsonl
hkit_expect_exit 0 hcat b.jsonl -o b.db
q='select m.received_at_ns, m.mono_ns, t.name, hex(m.payload), m.qos, m.retain, m.dup, s.started_at_ns from messages m join topics t on t.id = m.topic_id join sessions s on s.id = m.session_id order by seq'
hkit_assert_eq "$(sqlite3 a.db "$q")" "$(sqlite3 b.db "$q")" "round trip via JSON lines"
# and directly recording -> recording
hkit_expect_exit 0 hcat a.db -o c.db
hkit_assert_eq "$(sqlite3 a.db "$q")" "$(sqlite3 c.db "$q")" "recording copy"
hkit_assert_eq '["a.db"]' "$(sqlite3 c.db "select value from meta where key = 'cut_sources'")" "provenance: sources"
hkit_assert_eq "hcat a.jsonl" "$(sqlite3 c.db "select 'hcat ' || json_extract(value, '\$[0]') from meta where key = 'cut_sources'" | sed 's/a.db/a.jsonl/')" "provenance json"
[ -n "$(sqlite3 c.db "select value from meta where key = 'cut_at'")" ] || hkit_fail "cut_at missing"

# slicing: --since inclusive, --until exclusive, to the nanosecond
hcat a.db --since 2026-02-05T10:30:01Z --until 2026-02-05T10:30:04.999999999Z >s.jsonl
hkit_assert_eq 3 "$(wc -l <s.jsonl)" "since/until count"
hkit_assert_contains "$(head -1 s.jsonl)" '"received_at":"2026-02-05T10:30:01.000000000Z"' "since is inclusive"
hcat a.db --since 2026-02-05T10:30:00.000000002Z --until 2026-02-05T10:30:05Z >s.jsonl
hkit_assert_eq 4 "$(wc -l <s.jsonl)" "one ns after the first excludes it; until after the last includes it"
hcat a.db --since +1s --until +2s >s.jsonl
# first is 10:30:00.000000001: the window [10:30:01.000000001, 10:30:02.000000001) holds only
# the 10:30:02 message, not the one at 10:30:01.000000000
hkit_assert_eq 1 "$(wc -l <s.jsonl)" "relative window [first+1s, first+2s)"
hkit_assert_contains "$(cat s.jsonl)" '"received_at":"2026-02-05T10:30:02.000000000Z"' "relative since"
# the same slice from JSON lines input (tool_select_matches) and from the recording (SQL)
hkit_assert_eq "$(hcat a.db --since 2026-02-05T10:30:01Z --until 2026-02-05T10:30:03Z | sed 's/"seq":[0-9]*,"session":[0-9]*,//; s/"session_started_at_ns":[0-9]*,"mono_ns":[0-9]*,//')" \
    "$(hcat a.jsonl --since 2026-02-05T10:30:01Z --until 2026-02-05T10:30:03Z)" "same slice from both input kinds"
hkit_assert_eq 2 "$(hcat a.db --device $D1 | wc -l)" "--device"
hkit_assert_eq 1 "$(hcat a.db --type CO2 | wc -l)" "--type alias"
hkit_assert_eq 2 "$(hcat a.db -t 'x/#' | wc -l)" "-t filter"
hkit_assert_eq 3 "$(hcat a.db --limit 3 | wc -l)" "--limit"
hkit_expect_exit 0 hcat a.db --since 2026-02-05T10:30:01Z --until 2026-02-05T10:30:03Z --device $D1 -o cut.db
hkit_assert_eq 1 "$(sqlite3 cut.db 'select count(*) from messages')" "cut rows"
hkit_assert_eq "--since 2026-02-05T10:30:01Z --until 2026-02-05T10:30:03Z --device $D1" \
    "$(sqlite3 cut.db "select value from meta where key = 'cut_selection'")" "provenance: selection"

# merge: two inputs interleave by received_at; their sessions become separate sessions
cat >m1.jsonl <<J
{"received_at":"2026-02-05T10:00:00Z","session":1,"session_started_at_ns":1770285000000000000,"mono_ns":0,"topic":"m/1","payload":"a1"}
{"received_at":"2026-02-05T10:00:02Z","session":1,"session_started_at_ns":1770285000000000000,"mono_ns":2000000000,"topic":"m/1","payload":"a2"}
{"received_at":"2026-02-05T10:00:04Z","session":1,"session_started_at_ns":1770285000000000000,"mono_ns":4000000000,"topic":"m/1","payload":"a3"}
J
cat >m2.jsonl <<J
{"received_at":"2026-02-05T10:00:01Z","topic":"m/2","payload":"b1"}
{"received_at":"2026-02-05T10:00:02Z","topic":"m/2","payload":"b2"}
{"received_at":"2026-02-05T10:00:05Z","topic":"m/2","payload":"b3"}
J
hkit_expect_exit 0 hcat m1.jsonl -o m1.db
hkit_expect_exit 0 hcat m1.db m2.jsonl -o merged.db
hkit_assert_eq "a1 b1 a2 b2 a3 b3" "$(sqlite3 merged.db 'select cast(payload as text) from messages order by seq' | tr '\n' ' ' | sed 's/ $//')" "merge order (ties: first input first)"
hkit_assert_eq "2" "$(sqlite3 merged.db 'select count(*) from sessions')" "merged sessions"
hkit_assert_eq "1770285000000000000|0" "$(sqlite3 merged.db "select s.started_at_ns, s.started_mono_ns from sessions s join messages m on m.session_id = s.id where cast(m.payload as text) = 'a1'")" "session start kept"
hkit_assert_eq "4000000000" "$(sqlite3 merged.db "select mono_ns from messages where cast(payload as text) = 'a3'")" "mono kept"
hkit_assert_eq "a1 b1 a2 b2 a3 b3" "$(hcat m1.jsonl m2.jsonl | sed 's/.*"payload":"\([^"]*\)".*/\1/' | tr '\n' ' ' | sed 's/ $//')" "printed merge order"

# CSV: RFC 4180 quoting, base64 column for binary payloads
hcat a.db --format csv >a.csv
hkit_assert_eq "seq,session,received_at,received_at_ns,topic,qos,retain,dup,payload_encoding,payload" "$(head -1 a.csv | tr -d '\r')" "csv header"
hkit_assert_contains "$(cat a.csv)" "3,1,2026-02-05T10:30:02.000000000Z,1770287402000000000,$T/co2/$D2,2,0,1,base64,AP8AgA==" "csv base64 row"
hkit_assert_contains "$(cat a.csv)" '"{""measured_at"":""2026-02-05T10:30:00.000Z"",""value"":23.5}"' "csv quotes doubled"
# python's csv module is an independent reader: the multi-line field comes back intact
if command -v python3 >/dev/null; then
    got=$(python3 -c 'import csv,sys; rows=list(csv.reader(open(sys.argv[1], newline=""))); print(repr(rows[5][9]), rows[5][8], len(rows))' a.csv)
    hkit_assert_eq "'a,\"b\"\\nc' text 6" "$got" "csv parsed back"
fi

# --decode adds the decoder's output
hkit_assert_contains "$(hcat a.db --decode --limit 1)" '"decoded":{' "--decode"
hkit_assert_contains "$(hcat a.db --decode --limit 1)" '"type":"ambientTemperature"' "--decode type"

# --info: terminal text and JSON
out=$(hcat --info a.db)
hkit_assert_contains "$out" "messages:   5 (" "info messages"
hkit_assert_contains "$out" "time span:  2026-02-05T10:30:00.000000001Z .. 2026-02-05T10:30:04.999999999Z" "info span"
hkit_assert_contains "$out" "sessions (1):" "info sessions"
hkit_assert_contains "$out" "cut_sources" "info meta"
out=$(hcat --info --top 1 a.db)
hkit_assert_contains "$out" "... and 1 more" "info top N"
json=$(hcat --info --json a.db)
hkit_assert_eq 5 "$(printf '%s' "$json" | jq .messages)" "info json messages"
hkit_assert_eq 2 "$(printf '%s' "$json" | jq '.kinds_total')" "info json kinds"
hkit_assert_eq 1 "$(printf '%s' "$json" | jq '.sessions | length')" "info json sessions"
hkit_assert_eq 3 "$(printf '%s' "$json" | jq '.decode_errors')" "info json decode errors (binary co2, two non-Haltian topics)"
hkit_assert_eq 2 "$(hcat --info --json --device $D1 a.db | jq .messages)" "info respects the selection"

# against hrecord's output, when hrecord is built: a real capture survives a cut unchanged
if [ -x "$HKIT_BIN/hrecord" ]; then
    hkit_broker_start "$HKIT_TMP/broker"
    timeout 20 hrecord -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t 'r/#' -o rec.db --count 3 2>/dev/null &
    rec=$!
    # publish until hrecord has its three messages (it may subscribe after the first ones)
    i=0
    while kill -0 $rec 2>/dev/null && [ $i -lt 200 ]; do
        i=$((i + 1))
        mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t r/$i -m "p$i" -q 1
        hkit_sleep 0.05
    done
    wait $rec || hkit_fail "hrecord failed"
    hkit_expect_exit 0 hcat rec.db -o rec2.db
    hkit_assert_eq "$(sqlite3 rec.db "$q")" "$(sqlite3 rec2.db "$q")" "hrecord output copied exactly"
    hkit_assert_eq "$(sqlite3 rec.db "select value from meta where key='broker_port'")" \
        "$(sqlite3 rec2.db "select value from meta where key='broker_port'")" "meta copied"
fi
echo ok

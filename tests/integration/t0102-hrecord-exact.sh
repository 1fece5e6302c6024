#!/usr/bin/env bash
# hrecord on a Haltian-like broker (TLS with a CA made here, password auth, ACL) stores exactly
# what mosquitto_pub published: binary with NUL and invalid UTF-8, empty, 1 MiB, retained,
# QoS 0/1/2, thousands of messages in order. Compared with the sqlite3 CLI, not with hkit.
# The token appears nowhere in the recording, nor on stderr.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker" tls auth

base=haltian-iot/events/$HKIT_TEST_INTEGRATION_ID/$HKIT_TEST_API_KEY_ID
db=$HKIT_TMP/rec.db
pub() {
    timeout 20 mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" --cafile "$HKIT_TMP/broker/ca.crt" \
        -u "$HKIT_TEST_PUBLISHER" -P "$HKIT_TEST_PUBLISHER_PASSWORD" "$@"
}
q() { sqlite3 "$db" "$1"; }
hex_of_file() { od -An -v -tx1 "$1" | tr -d ' \n' | tr a-f A-F; }
payload_hex() { # topic -> hex of the payloads stored for that topic, one per line
    q "select hex(m.payload) from messages m join topics t on t.id = m.topic_id
       where t.name = '$1' order by m.seq"
}
wait_for() { # seconds sql expected
    local i
    for i in $(seq 1 $(($1 * 20))); do
        # never let the sqlite3 shell create the file before hrecord does
        [ -f "$db" ] && [ "$(q "$2" 2>/dev/null || true)" = "$3" ] && return 0
        hkit_sleep 0.05
    done
    hkit_fail "timed out waiting for '$2' = '$3' (got '$(q "$2" 2>&1 || true)')"
}

# retained before hrecord starts: delivered on subscribe with the retain flag
pub -t "$base/measurements/ambientTemperature/dev-retained" -m '{"value":1}' -r -q 1

export HALTIAN_API_KEY_ID=$HKIT_TEST_API_KEY_ID HALTIAN_INTEGRATION_ID=$HKIT_TEST_INTEGRATION_ID
export HALTIAN_API_KEY_TOKEN=$HKIT_TEST_TOKEN
timeout 60 hrecord --url "mqtts://127.0.0.1:$HKIT_BROKER_PORT" --cafile "$HKIT_TMP/broker/ca.crt" \
    -q 2 -o "$db" --note 'exactness test' --json-summary >"$HKIT_TMP/summary.json" \
    2>"$HKIT_TMP/hrecord.err" &
rec=$!
wait_for 10 "select count(*) from sessions" 1

printf 'a\000b\377\376c\000' >"$HKIT_TMP/binary"          # NUL and invalid UTF-8
head -c 1048576 /dev/urandom >"$HKIT_TMP/big"              # 1 MiB of random bytes
pub -t "$base/messages/rawData/dev-bin" -q 1 -s <"$HKIT_TMP/binary"
pub -t "$base/messages/rawData/dev-empty" -q 1 -n
pub -t "$base/payloads/wirepas/dev-big" -q 1 -f "$HKIT_TMP/big"
for qos in 0 1 2; do
    pub -t "$base/measurements/co2/dev-qos$qos" -q "$qos" -m "qos $qos"
done
seq -f 'order-%06g' 1 3000 >"$HKIT_TMP/lines"
pub -t "$base/measurements/co2/dev-order" -q 1 -l <"$HKIT_TMP/lines"
wait_for 20 "select count(*) from messages" 3007

kill -INT $rec
wait $rec && rc=0 || rc=$?
hkit_assert_eq 0 "$rc" "hrecord exit status after SIGINT"

hkit_assert_eq "$(hex_of_file "$HKIT_TMP/binary")" "$(payload_hex "$base/messages/rawData/dev-bin")" \
    "binary payload"
hkit_assert_eq "" "$(payload_hex "$base/messages/rawData/dev-empty")" "empty payload"
hkit_assert_eq 1 "$(q "select count(*) from messages m join topics t on t.id = m.topic_id
    where t.name = '$base/messages/rawData/dev-empty' and length(m.payload) = 0
    and typeof(m.payload) = 'blob'")" "empty payload stored as an empty blob"
hkit_assert_eq "$(hex_of_file "$HKIT_TMP/big")" "$(payload_hex "$base/payloads/wirepas/dev-big")" \
    "1 MiB payload"
hkit_assert_eq "1|1" "$(q "select m.retain, m.qos from messages m join topics t on t.id = m.topic_id
    where t.name = '$base/measurements/ambientTemperature/dev-retained'")" "retained message"
for qos in 0 1 2; do
    hkit_assert_eq "$qos|0|qos $qos" "$(q "select m.qos, m.retain, cast(m.payload as text)
        from messages m join topics t on t.id = m.topic_id
        where t.name = '$base/measurements/co2/dev-qos$qos'")" "qos $qos message"
done
q "select cast(m.payload as text) from messages m join topics t on t.id = m.topic_id
   where t.name = '$base/measurements/co2/dev-order' order by m.seq" >"$HKIT_TMP/got-lines"
cmp "$HKIT_TMP/lines" "$HKIT_TMP/got-lines" || hkit_fail "3000 messages not recorded in order"

# arrival times: realtime now-ish, monotonic offsets non-decreasing within the session
hkit_assert_eq 0 "$(q "select count(*) from messages a join messages b on b.seq = a.seq + 1
    where b.mono_ns < a.mono_ns or b.received_at_ns < a.received_at_ns - 1000000000")" \
    "arrival times in order"
hkit_assert_eq 1 "$(q "select count(*) from sessions where ended_at_ns is not null
    and end_reason = 'interrupted'")" "session ended on SIGINT"

# meta: granted QoS, note, tool; never the token
hkit_assert_eq "[{\"filter\":\"$base/#\",\"qos\":2,\"granted_qos\":2}]" \
    "$(q "select value from meta where key = 'subscriptions'")" "subscriptions meta"
hkit_assert_eq "exactness test" "$(q "select value from meta where key = 'note'")" "note"
hkit_assert_eq "hrecord" "$(q "select value from meta where key = 'tool'")" "tool meta"
hkit_assert_eq ok "$(q "pragma integrity_check")" "integrity"
for f in "$db"*; do
    if grep -qaF "$HKIT_TEST_TOKEN" "$f"; then hkit_fail "token found in $f"; fi
done
if grep -qaF "$HKIT_TEST_TOKEN" "$HKIT_TMP/hrecord.err"; then hkit_fail "token on stderr"; fi

summary=$(cat "$HKIT_TMP/summary.json")
hkit_assert_contains "$summary" "\"path\":\"$db\"" "json summary path"
hkit_assert_contains "$summary" '"messages":3007' "json summary count"
hkit_assert_contains "$summary" '"sessions":1' "json summary sessions"
hkit_assert_contains "$(cat "$HKIT_TMP/hrecord.err")" "recorded 3007 messages" "stderr summary"

#!/usr/bin/env bash
# SIGINT commits everything received (even with a long flush interval), ends the session and
# exits 0. SIGKILL mid-capture leaves a file that opens, passes integrity_check and holds a
# prefix of what was sent. --count and --duration stop cleanly.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
# for the first part the broker logs every packet (log_type debug): the PUBACKs it receives
# from hrecord show that hrecord has read the messages
HKIT_BROKER_EXTRA_CONF="log_type debug" hkit_broker_start "$HKIT_TMP/broker"
port=$HKIT_BROKER_PORT
wait_file() { # file sql expected seconds
    hkit_wait_for $(($4 * 20)) 0.05 "'$2' = '$3' in $1" \
        "$(printf '[ -f %q ] && [ "$(sqlite3 %q %q 2>/dev/null || true)" = %q ]' "$1" "$1" "$2" "$3")"
}
seq -f 'm-%07g' 1 2000 >"$HKIT_TMP/lines"

# SIGINT with a 60 s flush interval: only the exit path can have committed the messages
db=$HKIT_TMP/int.db
timeout 60 hrecord --url "mqtt://127.0.0.1:$port" -t 'x/#' -o "$db" --flush-ms 60000 \
    2>"$HKIT_TMP/int.err" &
rec=$!
wait_file "$db" "select count(*) from sessions" 1 10
mosquitto_pub -p "$port" -t x/y -q 1 -l <"$HKIT_TMP/lines"
mosquitto_pub -p "$port" -t x/last -q 1 -m last
hkit_wait_for 400 0.05 "hrecord to acknowledge the 2001 messages" \
    "[ \"\$(grep -c 'Received PUBACK from' '$HKIT_BROKER_DIR/mosquitto.log')\" -ge 2001 ]"
hkit_assert_eq 0 "$(sqlite3 "$db" "select count(*) from messages")" \
    "nothing committed before the flush interval"
kill -INT $rec
wait $rec && rc=0 || rc=$?
hkit_assert_eq 0 "$rc" "exit status after SIGINT"
hkit_assert_eq 2001 "$(sqlite3 "$db" "select count(*) from messages")" "all committed at exit"
hkit_assert_eq "interrupted" "$(sqlite3 "$db" "select end_reason from sessions")" "session end"
hkit_assert_contains "$(cat "$HKIT_TMP/int.err")" "recorded 2001 messages" "summary"

# SIGKILL mid-capture: the file is intact and holds a prefix of the stream (a broker on the same
# port that does not log every packet)
hkit_broker_stop
HKIT_BROKER_PORT_WANTED=$port hkit_broker_start "$HKIT_TMP/broker2"
db=$HKIT_TMP/kill.db
seq -f 'k-%07g' 1 200000 >"$HKIT_TMP/many"
timeout 60 hrecord --url "mqtt://127.0.0.1:$port" -t 'k/#' -o "$db" --flush-ms 50 \
    2>/dev/null &
rec=$!
wait_file "$db" "select count(*) from sessions" 1 10
timeout 30 mosquitto_pub -p "$port" -t k/y -q 0 -l <"$HKIT_TMP/many" &
pubpid=$!
for i in $(seq 1 200); do
    n=$(sqlite3 "$db" "select count(*) from messages" 2>/dev/null || echo 0)
    [ "$n" -gt 1000 ] && break
    hkit_sleep 0.05
done
kill -9 "$(pgrep -P $rec)" # hrecord itself, not the timeout wrapper
wait $rec 2>/dev/null || true
kill $pubpid 2>/dev/null || true
wait $pubpid 2>/dev/null || true
hkit_assert_eq ok "$(sqlite3 "$db" "pragma integrity_check")" "integrity after SIGKILL"
n=$(sqlite3 "$db" "select count(*) from messages")
[ "$n" -gt 0 ] || hkit_fail "nothing committed before SIGKILL"
head -n "$n" "$HKIT_TMP/many" >"$HKIT_TMP/prefix"
sqlite3 "$db" "select cast(payload as text) from messages order by seq" >"$HKIT_TMP/got"
cmp "$HKIT_TMP/prefix" "$HKIT_TMP/got" || hkit_fail "recording is not a prefix of the stream"
hkit_assert_eq "" "$(sqlite3 "$db" "select ifnull(ended_at_ns, '') from sessions")" \
    "a killed writer leaves its session open"

# --count stops after exactly N; --duration stops on time with nothing received
db=$HKIT_TMP/count.db
timeout 30 hrecord --url "mqtt://127.0.0.1:$port" -t 'c/#' -o "$db" --count 5 --quiet \
    2>"$HKIT_TMP/count.err" &
rec=$!
wait_file "$db" "select count(*) from sessions" 1 10
mosquitto_pub -p "$port" -t c/y -q 1 -l <"$HKIT_TMP/lines"
wait $rec && rc=0 || rc=$?
hkit_assert_eq 0 "$rc" "--count exit status"
hkit_assert_eq "5|count reached" "$(sqlite3 "$db" "select (select count(*) from messages),
    end_reason from sessions")" "--count"
hkit_assert_eq "" "$(cat "$HKIT_TMP/count.err")" "--quiet prints nothing"
start=$(date +%s%N)
hkit_expect_exit 0 timeout 10 hrecord --url "mqtt://127.0.0.1:$port" -t 'd/#' \
    -o "$HKIT_TMP/d.db" --duration 500ms --json-summary
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -lt 5000 ] || hkit_fail "--duration 500ms took ${elapsed_ms} ms"
hkit_assert_contains "$OUT" '"messages":0' "--duration json summary"
hkit_assert_contains "$OUT" '"stop_reason":"duration reached"' "--duration stop reason"

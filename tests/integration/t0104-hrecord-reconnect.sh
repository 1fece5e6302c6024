#!/usr/bin/env bash
# The broker is killed and restarted on the same port mid-capture: hrecord logs the loss,
# reconnects with backoff, resubscribes, and records the gap as a new session; messages
# published after the restart are recorded.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
port=$HKIT_BROKER_PORT
db=$HKIT_TMP/rec.db
q() { sqlite3 "$db" "$1"; }
is() { [ -f "$db" ] && [ "$(q "$1" 2>/dev/null || true)" = "$2" ]; } # sql expected
wait_for() { # seconds sql expected
    hkit_wait_for $(($1 * 20)) 0.05 "'$2' = '$3'" "$(printf 'is %q %q' "$2" "$3")"
}

timeout 60 hrecord --url "mqtt://127.0.0.1:$port" -t 'site/#' -o "$db" \
    --reconnect-min 100ms --reconnect-max 400ms 2>"$HKIT_TMP/hrecord.err" &
rec=$!
wait_for 10 "select count(*) from sessions" 1
for i in 1 2 3; do mosquitto_pub -p "$port" -t site/a -m "before-$i" -q 1; done
wait_for 10 "select count(*) from messages" 3

kill -9 "$HKIT_BROKER_PID"
wait "$HKIT_BROKER_PID" 2>/dev/null || true
HKIT_BROKER_PID=
# a few failed attempts while the broker is down
hkit_wait_for 200 0.05 "failed reconnection attempts" \
    "grep -q 'connection attempt 2 failed' '$HKIT_TMP/hrecord.err'"
HKIT_BROKER_PORT_WANTED=$port hkit_broker_start "$HKIT_TMP/broker"
wait_for 15 "select count(*) from sessions" 2
for i in 1 2 3 4; do mosquitto_pub -p "$port" -t site/b -m "after-$i" -q 1; done
wait_for 10 "select count(*) from messages" 7

kill -TERM $rec
wait $rec && rc=0 || rc=$?
hkit_assert_eq 0 "$rc" "exit status after SIGTERM"
hkit_assert_eq "before-1 before-2 before-3" "$(q "select group_concat(cast(payload as text), ' ')
    from (select payload from messages where session_id = 1 order by seq)")" "first session"
hkit_assert_eq "after-1 after-2 after-3 after-4" "$(q "select group_concat(cast(payload as text),
    ' ') from (select payload from messages where session_id = 2 order by seq)")" "second session"
reason1=$(q "select end_reason from sessions where id = 1")
hkit_assert_contains "$reason1" "connection lost" "first session's end reason"
hkit_assert_eq interrupted "$(q "select end_reason from sessions where id = 2")" "second session"
# the gap is visible: session 2 starts after session 1 ended
hkit_assert_eq 1 "$(q "select (select started_at_ns from sessions where id = 2) >=
    (select ended_at_ns from sessions where id = 1)")" "gap between sessions"
err=$(cat "$HKIT_TMP/hrecord.err")
hkit_assert_contains "$err" "lost; session 1 ended; reconnecting in" "loss logged"
hkit_assert_contains "$err" "connection attempt 1 failed" "retry logged"
hkit_assert_contains "$err" "in 2 sessions with 1 gap" "summary counts the gap"
[ "$(grep -c "connected to '127.0.0.1:$port'" "$HKIT_TMP/hrecord.err")" = 2 ] ||
    hkit_fail "expected two connects logged: $err"

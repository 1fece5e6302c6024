#!/usr/bin/env bash
# Brokers that misbehave in ways Mosquitto cannot (tests/brokers/fake_broker.py): one that stays
# connected and answers pings but never acknowledges, ones that acknowledge packet ids not in
# flight, id 0 or with a 1-byte PUBACK, and one that never reads while it keeps sending. hreplay
# and hgen must neither hang nor spin: they end with exit 1 within a bound, count every message
# they could not confirm as failed, and honour Ctrl-C within a second while they wait.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$HKIT_TMP"' EXIT
T=$HKIT_TMP
N=50
for i in $(seq 1 $N); do printf '{"topic":"fb/dev-1","qos":1,"payload":"%d"}\n' "$i"; done >"$T/in.jsonl"

# fake MODE: starts the fake broker (lib.sh); sets FAKE_PORT and FAKE_PID
fake() {
    hkit_fake_broker "$1"
    PIDS+=("$FAKE_PID")
}

# A broker that acknowledges nothing: after --keepalive seconds without an acknowledgement the
# connection counts as lost, the messages are resent on a new one, and after --give-up without
# progress hreplay ends: exit 1, every message failed, none claimed as sent successfully: the
# ten in flight and the forty it never got to send (--inflight 10).
for mode in noack ack-unknown ack-zero ack-short; do
    fake "$mode"
    start=$(date +%s)
    rc=0
    timeout 60 hreplay --url "mqtt://127.0.0.1:$FAKE_PORT" --max -q 1 --inflight 10 --keepalive 5 --give-up 3s \
        --report-json "$T/rep.$mode.json" "$T/in.jsonl" 2>"$T/err.$mode" || rc=$?
    took=$(($(date +%s) - start))
    kill "$FAKE_PID"
    hkit_assert_eq 1 "$rc" "$mode: exit status ($(tail -3 "$T/err.$mode"))"
    [ "$took" -le 30 ] || hkit_fail "$mode: took ${took}s to give up"
    hkit_assert_eq "$N" "$(hkit_report "$T/rep.$mode.json" failed)" "$mode: failed messages"
    hkit_assert_contains "$(cat "$T/err.$mode")" "gave up" "$mode: the reason to stop"
    conns=$(wc -l <"$T/port.$mode.log")
    [ "$conns" -le 20 ] || hkit_fail "$mode: $conns connections in ${took}s: no backoff"
done
hkit_assert_contains "$(cat "$T/err.noack")" "acknowledged none of" "noack: the cause"
hkit_assert_contains "$(cat "$T/err.ack-unknown")" "not in flight" "ack-unknown: the cause"
hkit_assert_contains "$(cat "$T/err.ack-short")" "unexpected packet" "ack-short: the cause"

# Ctrl-C while the window is full and nothing is acknowledged: out within about a second.
fake noack
hreplay --url "mqtt://127.0.0.1:$FAKE_PORT" --max -q 1 --inflight 10 \
    --report-json "$T/rep.int.json" "$T/in.jsonl" 2>"$T/err.int" &
pid=$!
PIDS+=("$pid")
# the window is full: the broker has received the ten messages (not just a connection, which may
# be the probe's, before anything is sent)
hkit_wait_for 200 0.05 "10 messages at the broker" '[ "$(wc -l <"$FAKE_PUB" 2>/dev/null || echo 0)" -ge 10 ]'
kill -INT "$pid"
for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; hkit_sleep 0.05; done
kill -0 "$pid" 2>/dev/null && hkit_fail "hreplay still running 1.5 s after Ctrl-C with a full window"
rc=0
wait "$pid" || rc=$?
hkit_assert_eq 1 "$rc" "Ctrl-C with unacknowledged messages: exit status"
hkit_assert_eq True "$(hkit_report "$T/rep.int.json" interrupted)" "Ctrl-C: interrupted in the report"
hkit_assert_eq 10 "$(hkit_report "$T/rep.int.json" failed)" "Ctrl-C: the window counted as failed"

# The same for hgen publishing live at QoS 1.
hgen --url "mqtt://127.0.0.1:$FAKE_PORT" -q 1 --count 100 --max 2>"$T/err.hgen" &
pid=$!
PIDS+=("$pid")
hkit_wait_for 200 0.05 "hgen's first message at the broker" '[ "$(wc -l <"$FAKE_PUB")" -ge 11 ]'
kill -INT "$pid"
for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; hkit_sleep 0.05; done
kill -0 "$pid" 2>/dev/null && hkit_fail "hgen still running 1.5 s after Ctrl-C with a full window"
rc=0
wait "$pid" || rc=$?
[ "$rc" != 0 ] || hkit_fail "hgen: exit 0 although nothing was acknowledged"
kill "$FAKE_PID"

# A broker that never reads, and keeps sending bytes (PINGRESPs nobody asked for): the sender
# blocked in send() is released, at QoS 0 as at QoS 1.
head -c 20000 /dev/zero | tr '\0' 'x' >"$T/big"
python3 -c 'import sys; p=open(sys.argv[1]).read()
for i in range(300): print("{\"topic\":\"fb/dev-1\",\"qos\":0,\"payload\":\"%s\"}" % p)' "$T/big" >"$T/big.jsonl"
for qos in 0 1; do
    fake noread
    start=$(date +%s)
    rc=0
    timeout 60 hreplay --url "mqtt://127.0.0.1:$FAKE_PORT" --max -q $qos --keepalive 5 \
        --give-up 3s --report-json "$T/rep.noread.$qos.json" "$T/big.jsonl" 2>"$T/err.noread.$qos" ||
        rc=$?
    took=$(($(date +%s) - start))
    kill "$FAKE_PID"
    [ "$took" -le 40 ] || hkit_fail "noread at QoS $qos: took ${took}s"
    if [ $qos = 1 ]; then
        hkit_assert_eq 1 "$rc" "noread at QoS 1: exit status ($(tail -3 "$T/err.noread.$qos"))"
        [ "$(hkit_report "$T/rep.noread.1.json" failed)" -gt 0 ] || hkit_fail "noread: none failed"
    else
        # QoS 0 cannot be confirmed one by one: what the broker was not seen to read is counted
        # as possibly lost (a broker sending PINGRESPs nobody asked for can fake the final ping
        # answer, so not necessarily all 300)
        lost=$(hkit_report "$T/rep.noread.0.json" qos0_maybe_lost)
        [ "$lost" -gt 0 ] || hkit_fail "noread at QoS 0: nothing counted as possibly lost"
    fi
done
echo "ok"

#!/usr/bin/env bash
# Ctrl-C while hreplay waits for a lost broker to come back is a clean stop like any other
# Ctrl-C: it exits promptly, the report says interrupted (stderr and --report-json), and it is
# not reported as "gave up reconnecting"; with nothing left unacknowledged it exits 0.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; hkit_broker_stop;
    rm -rf "$HKIT_TMP"' EXIT
hkit_broker_start "$HKIT_TMP/broker"
PORT=$HKIT_BROKER_PORT
T=$HKIT_TMP
for i in $(seq 1 1000); do printf '{"topic":"ir/dev-1","qos":1,"payload":"%d"}\n' "$i"; done >"$T/in.jsonl"

mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'ir/#' >"$T/sub" 2>/dev/null &
PIDS+=($!)
for i in $(seq 1 100); do
    mosquitto_pub -h 127.0.0.1 -p "$PORT" -t ir/ready -m 0
    [ -s "$T/sub" ] && break
    sleep 0.05
done
hreplay --url "mqtt://127.0.0.1:$PORT" --rate 200 --report-json "$T/rep.json" "$T/in.jsonl" \
    2>"$T/err" &
pid=$!
PIDS+=("$pid")
for i in $(seq 1 200); do
    [ "$(wc -l <"$T/sub")" -ge 100 ] && break
    sleep 0.05
done
kill -KILL "$HKIT_BROKER_PID"
wait "$HKIT_BROKER_PID" 2>/dev/null || true
HKIT_BROKER_PID=
for i in $(seq 1 100); do
    grep -q "lost; reconnecting" "$T/err" && break
    [ "$i" -lt 100 ] || hkit_fail "the lost connection was not noticed: $(cat "$T/err")"
    sleep 0.05
done
sleep 0.5 # in the backoff between attempts
kill -INT "$pid"
for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$pid" 2>/dev/null && hkit_fail "hreplay still running 3 s after SIGINT while reconnecting"
wait "$pid" && rc=0 || rc=$?
err=$(cat "$T/err")
case $err in *"gave up reconnecting"*) hkit_fail "Ctrl-C reported as giving up: $err" ;; esac
hkit_assert_contains "$err" ", interrupted)" "report on stderr"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["interrupted"] is True, r' \
    "$T/rep.json" || hkit_fail "report json: $(cat "$T/rep.json")"
if grep -q "(0 unacknowledged messages to resend)" "$T/err"; then
    hkit_assert_eq 0 "$rc" "exit status (nothing was left unacknowledged); stderr: $err"
fi
echo "t0209 ok"

#!/usr/bin/env bash
# Ctrl-C while hreplay waits for a lost broker to come back is a clean stop like any other
# Ctrl-C: it exits promptly, the report says interrupted (stderr and --report-json), and it is
# not reported as "gave up reconnecting". Messages left unacknowledged by the lost connection
# (the broker is frozen before it dies, so there are some) were never confirmed: the report
# counts them as failed and the exit status is 1; with none left, the exit status is 0.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; hkit_broker_stop;
    rm -rf "$HKIT_TMP"' EXIT
T=$HKIT_TMP
for i in $(seq 1 1000); do printf '{"topic":"ir/dev-1","qos":1,"payload":"%d"}\n' "$i"; done >"$T/in.jsonl"

# scenario NAME FREEZE(yes|no)
scenario() {
    local name=$1 freeze=$2 i pid rc err unacked
    hkit_broker_start "$T/broker.$name"
    local port=$HKIT_BROKER_PORT
    mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t 'ir/#' >"$T/sub.$name" 2>/dev/null &
    PIDS+=($!)
    for i in $(seq 1 100); do
        mosquitto_pub -h 127.0.0.1 -p "$port" -t ir/ready -m 0
        [ -s "$T/sub.$name" ] && break
        hkit_sleep 0.05
    done
    hreplay --url "mqtt://127.0.0.1:$port" --rate 200 --report-json "$T/rep.$name.json" \
        "$T/in.jsonl" 2>"$T/err.$name" &
    pid=$!
    PIDS+=("$pid")
    for i in $(seq 1 200); do
        [ "$(wc -l <"$T/sub.$name")" -ge 100 ] && break
        hkit_sleep 0.05
    done
    if [ "$freeze" = yes ]; then
        kill -STOP "$HKIT_BROKER_PID"
        sleep 0.3 # ~60 messages the broker never acknowledges
    fi
    kill -KILL "$HKIT_BROKER_PID"
    kill -CONT "$HKIT_BROKER_PID" 2>/dev/null || true
    wait "$HKIT_BROKER_PID" 2>/dev/null || true
    HKIT_BROKER_PID=
    for i in $(seq 1 100); do
        grep -q "; reconnecting (" "$T/err.$name" && break
        [ "$i" -lt 100 ] || hkit_fail "$name: the lost connection was not noticed: $(cat "$T/err.$name")"
        hkit_sleep 0.05
    done
    sleep 0.5 # in the backoff between attempts
    kill -INT "$pid"
    for i in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        hkit_sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && hkit_fail "$name: hreplay still running 3 s after SIGINT while reconnecting"
    wait "$pid" && rc=0 || rc=$?
    err=$(cat "$T/err.$name")
    case $err in *"gave up reconnecting"*) hkit_fail "$name: Ctrl-C reported as giving up: $err" ;; esac
    hkit_assert_contains "$err" ", interrupted)" "$name: report on stderr"
    unacked=$(sed -n 's/.*reconnecting (\([0-9]*\) unacknowledged.*/\1/p' "$T/err.$name")
    python3 - "$T/rep.$name.json" "$unacked" <<'PY' || hkit_fail "$name: report json: $(cat "$T/rep.$name.json")"
import json, sys
r, unacked = json.load(open(sys.argv[1])), int(sys.argv[2])
assert r["interrupted"] is True, r
assert r["failed"] == unacked, f"{unacked} unacknowledged messages, reported failed {r['failed']}"
PY
    if [ "$unacked" = 0 ]; then
        hkit_assert_eq 0 "$rc" "$name: exit status (nothing left unacknowledged); stderr: $err"
    else
        hkit_assert_eq 1 "$rc" "$name: exit status ($unacked messages never confirmed); stderr: $err"
    fi
    [ "$freeze" = no ] || [ "$unacked" -gt 0 ] || hkit_fail "$name: freezing the broker left nothing unacknowledged"
}
scenario frozen yes
scenario killed no
echo "t0209 ok"

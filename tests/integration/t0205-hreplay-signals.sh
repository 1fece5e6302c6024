#!/usr/bin/env bash
# SIGINT (Ctrl-C) and SIGTERM stop a replay cleanly: exit 0 within a short time, the report on
# stderr says "interrupted", --report-json says interrupted=true with sent < total and failed 0,
# every message reported sent (QoS 1) has reached an independent subscriber and nothing arrives
# afterwards, and no process is left behind. Covered: a paced replay (--rate), a long idle gap in
# the recorded timing (the wait is interrupted, not slept through), and --loop 0 (forever).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; hkit_broker_stop;
    rm -rf "$HKIT_TMP"' EXIT
hkit_broker_start "$HKIT_TMP/broker"
PORT=$HKIT_BROKER_PORT
URL=mqtt://127.0.0.1:$PORT
T=$HKIT_TMP
N=2000
for i in $(seq 1 $N); do printf '{"topic":"sg/dev-1","qos":1,"payload":"%d"}\n' "$i"; done >"$T/paced.jsonl"
# two messages a minute apart, as recorded
cat >"$T/gap.jsonl" <<'JSONL'
{"topic":"sg/dev-2","qos":1,"received_at":"2026-02-05T10:30:00Z","payload":"1"}
{"topic":"sg/dev-2","qos":1,"received_at":"2026-02-05T10:31:00Z","payload":"2"}
JSONL

# sub_start FILE: a subscriber printing the payloads of sg/#, ready when this returns.
sub_start() {
    hkit_sub_start "$1" '%t %p' -t 'sg/#'
    SUB_PID=$HKIT_SUB_PID
    PIDS+=("$SUB_PID")
}
# sub_stop FILE: flushes the subscriber with an end marker, stops it, keeps the payloads.
sub_stop() {
    hkit_sub_flush "$1"
    kill "$SUB_PID" 2>/dev/null || true
    wait "$SUB_PID" 2>/dev/null || true
    grep '^sg/' "$1" | cut -d' ' -f2 >"$1.payloads" || true
}
# interrupt NAME SIGNAL AFTER_MESSAGES hreplay-args...: starts hreplay (its own pid, no wrapper
# in between), sends SIGNAL once the subscriber has AFTER_MESSAGES messages, and requires an exit
# within 3 s. Leaves RC, $T/NAME.err, $T/NAME.json, $T/NAME.sub(.payloads).
interrupt() {
    local name=$1 sig=$2 after=$3
    shift 3
    sub_start "$T/$name.sub"
    hreplay --url "$URL" -i "t0205-$name" --report-json "$T/$name.json" "$@" 2>"$T/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    hkit_wait_for 300 0.05 "$after messages in $T/$name.sub" \
        "[ \"\$(grep -c '^sg/' '$T/$name.sub' || true)\" -ge $after ]"
    kill "-$sig" "$pid"
    hkit_poll 60 0.05 "! kill -0 $pid 2>/dev/null" ||
        hkit_fail "$name: hreplay still running 3 s after SIG$sig"
    wait "$pid" && RC=0 || RC=$?
    # nothing of this run is left: no process with its pid or its report path on the command line
    ! kill -0 "$pid" 2>/dev/null || hkit_fail "$name: process left behind"
    ! pgrep -f -- "$T/$name.json" >/dev/null || hkit_fail "$name: a process is left behind"
    hkit_wait_disconnected "t0205-$name" # all it sent is routed: the end marker comes after it
    sub_stop "$T/$name.sub"
}
# check_report NAME TOTAL: interrupted report, and the subscriber got exactly what was sent.
check_report() {
    local name=$1 total=$2 sent
    hkit_assert_eq 0 "$RC" "$name: exit status; stderr: $(cat "$T/$name.err")"
    hkit_assert_contains "$(cat "$T/$name.err")" ", interrupted)" "$name: report on stderr"
    python3 - "$T/$name.json" "$total" <<'PY' || hkit_fail "$name: report json $(cat "$T/$name.json")"
import json, sys
r, total = json.load(open(sys.argv[1])), int(sys.argv[2])
assert r["interrupted"] is True and r["failed"] == 0, r
assert 0 < r["sent"] < total, r
PY
    sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$T/$name.json")
    hkit_assert_contains "$(cat "$T/$name.err")" "sent $sent messages, 0 failed" "$name: report on stderr"
    hkit_assert_eq "$(seq 1 "$sent")" "$(cat "$T/$name.sub.payloads")" \
        "$name: the subscriber received exactly the messages reported sent"
}

interrupt int INT 100 --rate 200 "$T/paced.jsonl"
check_report int $N
interrupt term TERM 100 --rate 200 "$T/paced.jsonl"
check_report term $N

# in a one-minute gap of the recorded timing: the wait ends at once (within interrupt's 3 s)
interrupt gap INT 1 "$T/gap.jsonl"
check_report gap 2
interrupt gapterm TERM 1 "$T/gap.jsonl"
check_report gapterm 2

# --loop 0 runs until interrupted; passes completed before the signal are counted
interrupt loop INT 2500 --loop 0 --rate 2000 "$T/paced.jsonl"
hkit_assert_eq 0 "$RC" "--loop 0: exit status; stderr: $(cat "$T/loop.err")"
python3 - "$T/loop.json" "$T/loop.sub.payloads" "$N" <<'PY' || hkit_fail "--loop 0 report $(cat "$T/loop.json")"
import json, sys
r = json.load(open(sys.argv[1]))
got = [int(x) for x in open(sys.argv[2])]
n = int(sys.argv[3])
assert r["interrupted"] is True and r["failed"] == 0 and r["passes"] >= 1, r
assert r["sent"] == len(got) and r["sent"] > n, (r["sent"], len(got))
assert got == [i % n + 1 for i in range(len(got))], "passes out of order"
PY
echo "t0205 ok"

#!/usr/bin/env bash
# Ctrl-C is honoured within about a second in the waits t0205, t0209 and t0211 do not reach, and
# the edges of what hreplay refuses to send:
# - while connecting to a broker that never answers the CONNECT (hreplay and hgen);
# - in the end-of-run drain, every message written and none acknowledged: each is failed;
# - a real Mosquitto frozen (SIGSTOP) mid-run at QoS 1: what it did not acknowledge is failed;
# - a topic of 65,536 bytes fails alone (MQTT's limit is 65,535), the others arrive;
# - --loop 0 over an empty selection (--session 99, a recording without messages) ends at once.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    [ -z "${HKIT_BROKER_PID:-}" ] || kill -CONT "$HKIT_BROKER_PID" 2>/dev/null || true
    hkit_capture_kill; hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT
T=$HKIT_TMP

# fake MODE: starts the fake broker (lib.sh); sets FAKE_PORT, FAKE_LOG and FAKE_PUB
fake() {
    hkit_fake_broker "$1"
    PIDS+=("$FAKE_PID")
}
# interrupt WHAT PID: SIGINT, then PID must be gone within 1.5 s; sets RC
interrupt() {
    kill -INT "$2"
    hkit_poll 30 0.05 "! kill -0 $2 2>/dev/null" || hkit_fail "$1: still running 1.5 s after Ctrl-C"
    RC=0
    wait "$2" || RC=$?
}

for i in $(seq 1 5); do printf '{"topic":"iw/dev-1","qos":1,"payload":"%d"}\n' "$i"; done >"$T/five.jsonl"

# --- connecting: the broker accepted the TCP connection and never sends CONNACK ---------------
fake silent
for tool in hreplay hgen; do
    : >"$FAKE_LOG"
    case $tool in
    hreplay) args=("$T/five.jsonl") ;;
    hgen) args=(--count 10) ;;
    esac
    "$tool" --url "mqtt://127.0.0.1:$FAKE_PORT" -q 1 --max "${args[@]}" 2>"$T/err.$tool" &
    pid=$!
    PIDS+=("$pid")
    hkit_wait_for 100 0.05 "$tool's connection" "[ -s '$FAKE_LOG' ]"
    interrupt "$tool while connecting" "$pid"
    hkit_assert_eq 1 "$RC" "$tool interrupted while connecting: exit status (nothing was sent)"
    hkit_assert_contains "$(cat "$T/err.$tool")" "interrupted while connecting" "$tool: the reason"
done

# --- the end-of-run drain: five messages written, the broker acknowledges none -----------------
fake noack
hreplay --url "mqtt://127.0.0.1:$FAKE_PORT" -q 1 --max --report-json "$T/drain.json" \
    "$T/five.jsonl" 2>"$T/err.drain" &
pid=$!
PIDS+=("$pid")
hkit_wait_for 200 0.05 "the five messages at the fake broker" \
    "[ -s '$FAKE_PUB' ] && [ \"\$(wc -l <'$FAKE_PUB')\" -ge 5 ]"
interrupt "hreplay draining" "$pid"
hkit_assert_eq 1 "$RC" "interrupted drain: exit status ($(cat "$T/err.drain"))"
# all five went out (sent), none was confirmed (failed)
hkit_assert_eq "True 5 5" "$(hkit_report "$T/drain.json" interrupted) $(hkit_report "$T/drain.json" sent) \
$(hkit_report "$T/drain.json" failed)" "interrupted drain: interrupted, sent, failed"

# --- a real Mosquitto frozen mid-run -------------------------------------------------------------
hkit_broker_start "$T/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
BROKER_PID=$HKIT_BROKER_PID
for i in $(seq 1 2000); do printf '{"topic":"iw/dev-2","qos":1,"payload":"%d"}\n' "$i"; done >"$T/paced.jsonl"
hkit_capture_start "$T/cap.frozen" 'iw/#'
hreplay --url "$URL" -q 1 --rate 400 --report-json "$T/frozen.json" "$T/paced.jsonl" \
    2>"$T/err.frozen" &
pid=$!
PIDS+=("$pid")
hkit_wait_for 300 0.05 "50 messages at the subscriber" \
    "[ \"\$(grep -c '^iw/' '$T/cap.frozen.raw' || true)\" -ge 50 ]"
kill -STOP "$BROKER_PID"
interrupt "hreplay with a frozen broker" "$pid"
kill -CONT "$BROKER_PID"
python3 - "$T/frozen.json" "$RC" <<'PY' || hkit_fail "frozen broker: $(cat "$T/err.frozen")"
import json, sys
r, rc = json.load(open(sys.argv[1])), int(sys.argv[2])
assert r["interrupted"] is True, r
assert r["sent"] >= 50 and r["sent"] < 2000, r
# what was written and not acknowledged is failed, and then the exit status says so
assert (rc == 1) == (r["failed"] > 0) and rc in (0, 1), (rc, r["failed"])
PY
hkit_capture_stop "$T/cap.frozen"
# every confirmed message arrived; the failed ones went out unconfirmed and may arrive or not
sent=$(hkit_report "$T/frozen.json" sent)
confirmed=$((sent - $(hkit_report "$T/frozen.json" failed)))
got=$(grep -c '^iw/' "$T/cap.frozen" || true)
[ "$got" -ge "$confirmed" ] && [ "$got" -le "$sent" ] ||
    hkit_fail "frozen broker: $sent sent, $confirmed of them confirmed, $got received"

# --- a topic over MQTT's 65,535 bytes ---------------------------------------------------------
python3 -c 'print("{\"topic\":\"iw/ok/1\",\"qos\":1,\"payload\":\"1\"}")
print("{\"topic\":\"iw/%s\",\"qos\":1,\"payload\":\"2\"}" % ("a" * 65533))
print("{\"topic\":\"iw/ok/3\",\"qos\":1,\"payload\":\"3\"}")' >"$T/long.jsonl"
hkit_capture_start "$T/cap.long" 'iw/ok/#'
hkit_expect_exit 1 timeout 30 hreplay --url "$URL" -q 1 --max --report-json "$T/long.json" "$T/long.jsonl"
hkit_capture_stop "$T/cap.long"
hkit_assert_contains "$ERR" "message 2 not sent: topic longer than 65535 bytes" "long topic: named"
hkit_assert_eq "2 1" "$(hkit_report "$T/long.json" sent) $(hkit_report "$T/long.json" failed)" "long topic: sent, failed"
hkit_assert_eq "iw/ok/1 31
iw/ok/3 33" "$(cut -d' ' -f1,4 "$T/cap.long")" "long topic: the others arrived (topic, hex payload)"

# --- --loop 0 over an empty selection ---------------------------------------------------------
hgen -o "$T/g.db" --count 10 --quiet
: >"$T/empty.jsonl"
hcat -o "$T/empty.db" --quiet "$T/empty.jsonl"
for input in "--session 99 $T/g.db" "$T/empty.db"; do
    # shellcheck disable=SC2086 # the words of $input are arguments
    hkit_expect_exit 0 timeout 10 hreplay --url "$URL" --loop 0 $input
    hkit_assert_contains "$ERR" "nothing to replay: the selection is empty" "--loop 0 $input"
done
echo ok

#!/usr/bin/env bash
# hreplay --faults, the kinds that break the connection: redeliver (a QoS 1 message again with
# the DUP flag after a reconnect: the broker's own log shows the flag, the subscriber the
# duplicate) and disconnect (P, and every:DURATION; a QoS 0 message in flight is lost, a QoS 1
# one goes out after the reconnect). Checked against mosquitto_sub and the fault log
# (t0213-faults-check.py), and the broker's count of connections.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
HKIT_BROKER_EXTRA_CONF="log_type debug" hkit_broker_start "$HKIT_TMP/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
T=$HKIT_TMP
LOG=$T/broker/mosquitto.log
CHECK="$HKIT_SOURCE_DIR/tests/integration/t0213-faults-check.py"

# 60 messages of 3 devices, 1 s apart, QoS as the argument
make_input() { # FILE QOS
    python3 - "$1" "$2" <<'PY'
import json, sys
H = "haltian-iot/events/int-1/key-1/measurements"
with open(sys.argv[1], "w") as f:
    for i in range(60):
        t = "2026-02-05T10:%02d:%02d.000Z" % (i // 60, i % 60)
        p = json.dumps({"measured_at": t, "value": 400 + i}, separators=(",", ":"))
        f.write(json.dumps({"topic": f"{H}/co2/dev-{i % 3}", "qos": int(sys.argv[2]),
                            "retain": False, "received_at": t, "payload": p}) + "\n")
PY
}
make_input "$T/q0.jsonl" 0
make_input "$T/q1.jsonl" 1

# run NAME INPUT SPEC CLIENT-ID KIND...
run() {
    local name=$1 input=$2 spec=$3 id=$4
    shift 4
    hkit_capture_start "$T/$name.cap" 'haltian-iot/#'
    timeout 60 hreplay --url "$URL" --max -i "$id" --faults "$spec" --seed 5 \
        --fault-log "$T/$name.log" --report-json "$T/$name.json" "$input" 2>"$T/$name.err" ||
        hkit_fail "$name: hreplay failed: $(cat "$T/$name.err")"
    hkit_capture_stop "$T/$name.cap"
    python3 "$CHECK" "$input" "$T/$name.log" "$T/$name.cap" "$@" >"$T/$name.check" ||
        hkit_fail "$name ($spec)"
}
# connections the broker saw from client id ID
connects() { grep -c "New client connected from .* as $1 " "$LOG" || true; }
# PUBLISH packets from client ID with the DUP flag set
dup_publishes() { grep -c "Received PUBLISH from $1 (d1, q1," "$LOG" || true; }

# --- redeliver at QoS 1 -------------------------------------------------------------------------
run redeliver "$T/q1.jsonl" 'redeliver=0.1' fr-redeliver redeliver
n=$(grep -c '"kind":"redeliver"' "$T/redeliver.log")
hkit_assert_eq "$n" "$(dup_publishes fr-redeliver)" "PUBLISH packets with the DUP flag in the broker's log"
hkit_assert_eq $((n + 1)) "$(connects fr-redeliver)" "connections (one per redelivery, plus the first)"
python3 - "$T/redeliver.json" "$n" <<'PY' || hkit_fail "redeliver report"
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert r["sent"] == 60 + n and r["failed"] == 0 and r["faults"]["duplicates"] == n, r
assert r["faults"]["reconnects"] == n and r["faults"]["applied"]["redeliver"] == n, r
PY
# the second copy follows the first right away (one connection, QoS 1 keeps the order)
python3 - "$T/redeliver.log" <<'PY' || hkit_fail "redelivery position"
import json, sys
for e in map(json.loads, open(sys.argv[1])):
    assert e["position2"] == e["position"] + 1, e
PY
# QoS 0 messages are never redelivered
run redeliver-q0 "$T/q0.jsonl" 'redeliver=1' fr-redeliver-q0
[ -s "$T/redeliver-q0.log" ] && hkit_fail "a QoS 0 message was redelivered"
hkit_assert_eq 0 "$(dup_publishes fr-redeliver-q0)" "DUP flags at QoS 0"

# --- disconnect: QoS 0 in flight is lost, QoS 1 goes out after the reconnect ---------------------
run disconnect-q0 "$T/q0.jsonl" 'disconnect=0.1' fr-disc0 disconnect
n=$(grep -c '"kind":"disconnect"' "$T/disconnect-q0.log")
hkit_assert_eq "$n" "$(grep -c '"lost":true' "$T/disconnect-q0.log")" "QoS 0 messages lost at disconnects"
hkit_assert_eq $((n + 1)) "$(connects fr-disc0)" "connections at QoS 0"
run disconnect-q1 "$T/q1.jsonl" 'disconnect=0.1' fr-disc1 disconnect
grep -q '"lost":true' "$T/disconnect-q1.log" && hkit_fail "a QoS 1 message was lost at a disconnect"
hkit_assert_eq $(($(grep -c '"kind":"disconnect"' "$T/disconnect-q1.log") + 1)) \
    "$(connects fr-disc1)" "connections at QoS 1"
# every 10 s of recording time: inputs 11, 21, ..., 51 (the first message starts the clock)
run disconnect-every "$T/q1.jsonl" 'disconnect=every:10s' fr-every disconnect
hkit_assert_eq "11 21 31 41 51" "$(grep -o '"seq":[0-9]*' "$T/disconnect-every.log" | cut -d: -f2 | xargs)" \
    "disconnect every 10s"
hkit_assert_eq 6 "$(connects fr-every)" "connections with disconnect=every:10s"
# the connection was dropped, not closed politely: no DISCONNECT before the reconnects
hkit_assert_eq 1 "$(grep -c "Received DISCONNECT from fr-every$" "$LOG")" "DISCONNECT packets (the last one only)"
echo "t0215 ok"

#!/usr/bin/env bash
# hreplay at QoS 2 against a real broker, checked by an independent subscriber (mosquitto_sub
# -q 2): two thousand messages over 20 devices at --max with a window of 1, 16 and 20000
# in-flight messages, and a timed replay (the publisher mostly idle, so PUBRELs must leave without
# a further publish). Every message arrives exactly once, at QoS 2, in order per device, and the
# report counts them all.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
T=$HKIT_TMP
N=2000

# N messages, device i % 20, payload {"device":"dev-K","n":<per-device sequence>}, 1 ms apart
python3 - "$N" "$T/rec.jsonl" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
seq = {}
with open(path, "w") as f:
    for i in range(n):
        dev = "dev-%02d" % (i % 20)
        k = seq.get(dev, 0)
        seq[dev] = k + 1
        ms = i % 1000
        s = i // 1000
        payload = '{\\"device\\":\\"%s\\",\\"n\\":%d}' % (dev, k)
        f.write('{"topic":"haltian-iot/events/int-1/key-1/measurements/co2/%s","qos":0,'
                '"retain":false,"received_at":"2026-02-05T10:30:%02d.%03dZ","payload":"%s"}\n'
                % (dev, s, ms, payload))
PY

# The subscriber speaks MQTT 3.1.1 (hkit_capture_start ... mqttv311): Mosquitto 2.0.11's MQTT 5
# subscriber at QoS 2 drops its connection with "protocol error" after a few hundred QoS 2
# messages, whoever publishes them (mosquitto_pub -q 2 -l too).
capture_stop() { # file: the end marker follows the replay's messages in the broker's queue
    local i
    mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -q 2 -t hkit-test/end -m x
    for i in $(seq 1 200); do
        grep -q '^hkit-test/end ' "$1.raw" && break
        hkit_sleep 0.05
    done
    hkit_capture_kill
    [ ! -s "$1.err" ] || hkit_fail "subscriber: $(cat "$1.err")"
    grep -v '^hkit-test/' "$1.raw" >"$1" || true
}

# check capture prefix: N lines, QoS 2, each device's sequence 0, 1, 2... exactly once, in order
check() {
    python3 - "$1" "$2" "$N" <<'PY' || hkit_fail "capture of $2"
import json, sys
path, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(path).read().split("\n")[:-1]
seen = {}
for line in lines:
    topic, retain, qos, hexpayload = line.split(" ")
    p = json.loads(bytes.fromhex(hexpayload))
    assert topic.endswith("/" + p["device"]), f"{what}: payload of {p['device']} on {topic}"
    assert qos == "2" and retain == "0", f"{what}: flags {retain} {qos} on {line}"
    want = seen.get(topic, 0)
    assert p["n"] == want, f"{what}: {topic}: got message {p['n']} where {want} was due " \
        "(lost, duplicated or out of order)"
    seen[topic] = want + 1
assert len(lines) == n, f"{what}: {len(lines)} messages arrived, {n} sent"
assert len(seen) == 20 and all(v == n // 20 for v in seen.values()), f"{what}: {seen}"
PY
}

run=0
for inflight in 1 16 20000; do
    run=$((run + 1))
    hkit_capture_start "$T/c$run" "q$run/#" mqttv311
    timeout 60 hreplay --url "$URL" --max -q 2 --inflight "$inflight" --remap "haltian-iot/=q$run/" \
        "$T/rec.jsonl" 2>"$T/err$run" || hkit_fail "hreplay --inflight $inflight: $(cat "$T/err$run")"
    capture_stop "$T/c$run"
    hkit_assert_contains "$(cat "$T/err$run")" "sent $N messages, 0 failed" "report at --inflight $inflight"
    check "$T/c$run" "--max -q 2 --inflight $inflight"
done

# timed: 2000 messages 1 ms apart at --speed 4 (about 0.5 s), one in flight at a time mostly
hkit_capture_start "$T/ct" 'qt/#' mqttv311
timeout 60 hreplay --url "$URL" -q 2 --speed 4 --inflight 16 --remap haltian-iot/=qt/ \
    "$T/rec.jsonl" 2>"$T/errt" || hkit_fail "timed hreplay: $(cat "$T/errt")"
capture_stop "$T/ct"
hkit_assert_contains "$(cat "$T/errt")" "sent $N messages, 0 failed" "report of the timed replay"
check "$T/ct" "-q 2 --speed 4"
echo "t0210 ok"

#!/usr/bin/env bash
# The two "latest value per device" consumers of fixtures/consumers (paho-mqtt clients as
# Haltian's tutorial writes them) under hreplay's faults: on the clean stream both end in the
# same state; under reorder, stale, redeliver and dup the naive one (last arrival wins, every
# arrival a reading) ends elsewhere, while the correct one (measured_at decides, duplicates
# harmless) ends where the clean run did (stale changes the data, so there only naive != correct).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
T=$HKIT_TMP
C="$HKIT_SOURCE_DIR/fixtures/consumers"
hkit_require_paho
hkit_broker_start "$T/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT

# 90 readings of 3 devices, 1 s apart
python3 - "$T/in.jsonl" <<'PY'
import json, sys
H = "haltian-iot/events/int-1/key-1/measurements"
with open(sys.argv[1], "w") as f:
    for i in range(90):
        t = "2026-02-05T10:%02d:%02d.000Z" % (i // 60, i % 60)
        p = json.dumps({"measured_at": t, "value": 400 + i}, separators=(",", ":"))
        f.write(json.dumps({"topic": f"{H}/co2/dev-{i % 3}", "qos": 1, "retain": False,
                            "received_at": t, "payload": p}) + "\n")
PY

PIDS=()
stop_consumers() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_consumers; hkit_capture_kill; hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT

# case NAME [hreplay options]: both consumers see one replay; their states in NAME.naive/.correct
case_run() {
    local name=$1 c i
    shift
    PIDS=()
    for c in naive correct; do
        python3 "$C/latest_$c.py" -h 127.0.0.1 -p "$HKIT_BROKER_PORT" \
            >"$T/$name.$c" 2>"$T/$name.$c.err" &
        PIDS+=($!)
    done
    for i in $(seq 1 200); do
        [ "$(cat "$T/$name.naive.err" "$T/$name.correct.err" | grep -c '^subscribed$')" = 2 ] && break
        hkit_sleep 0.05
    done
    [ "$i" != 200 ] || hkit_fail "$name: the consumers did not subscribe"
    timeout 60 hreplay --url "$URL" --max -q 1 "$@" "$T/in.jsonl" 2>"$T/$name.err" ||
        hkit_fail "$name: hreplay failed: $(cat "$T/$name.err")"
    mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -q 1 -t hkit-test/end -m end
    for c in 0 1; do
        timeout 30 tail --pid="${PIDS[$c]}" -f /dev/null || hkit_fail "$name: a consumer did not finish"
    done
    PIDS=()
    [ -s "$T/$name.naive" ] && [ -s "$T/$name.correct" ] || hkit_fail "$name: empty consumer state"
}

case_run clean
cmp -s "$T/clean.naive" "$T/clean.correct" || hkit_fail "clean run: the consumers disagree"
hkit_assert_eq 3 "$(wc -l <"$T/clean.correct")" "devices"

for spec in 'reorder=0.5:scope=device' 'dup=0.2:after=4' 'redeliver=0.2' 'stale=0.3:by=1h'; do
    name=${spec%%=*}
    case_run "$name" --faults "$spec" --seed 3 --fault-log "$T/$name.log"
    cmp -s "$T/$name.naive" "$T/$name.correct" &&
        hkit_fail "$spec: the naive consumer ended in the correct state (the fault did not bite)"
    if [ "$name" != stale ]; then
        diff "$T/clean.correct" "$T/$name.correct" >/dev/null ||
            hkit_fail "$spec: the correct consumer did not end as on the clean stream: $(diff "$T/clean.correct" "$T/$name.correct")"
    fi
done
# stale: the correct consumer never takes an older reading for the latest
python3 - "$T/stale.correct" "$T/clean.correct" <<'PY' || hkit_fail "stale: correct consumer went back in time"
import json, sys
got = {j["device"]: j for j in map(json.loads, open(sys.argv[1]))}
clean = {j["device"]: j for j in map(json.loads, open(sys.argv[2]))}
for d, j in got.items():
    assert j["measured_at"] <= clean[d]["measured_at"] and j["value"] <= clean[d]["value"], (j, clean[d])
PY
echo "t0216 ok"

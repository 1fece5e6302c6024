#!/usr/bin/env bash
# hkit-test: serial
# A fast consumer is not reported as failing: `mosquitto_sub > FILE` observed through
# --observe file:FILE (outputs without device ids: latency matched by position) is ramped until
# something gives; the ramp names the broker or the generator, never the consumer. Also: the
# report's shape (JSON members, one object per step, the SVG) and an unwritable --report-svg.
# Serial: it measures rates.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
trap 'echo "t0233: command failed at line $LINENO" >&2' ERR
T=$HKIT_TMP
SUB_PID=
trap '[ -z "$SUB_PID" ] || { kill "$SUB_PID" 2>/dev/null; wait "$SUB_PID" 2>/dev/null; }; hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT

HKIT_BROKER_EXTRA_CONF="sys_interval 1" hkit_broker_start "$T/broker"
URL="mqtt://127.0.0.1:$HKIT_BROKER_PORT"
python3 - "$T/in.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(500):
        f.write(json.dumps({
            "topic": "haltian-iot/events/int/key/measurements/co2/dev-%03d" % (i % 50),
            "received_at": "2026-02-05T10:30:00.500000Z",
            "payload": {"measured_at": "2026-02-05T10:30:00.%06dZ" % i, "value": 400 + i}}) + "\n")
PY

mosquitto_sub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -q 1 -t 'haltian-iot/#' -t 'hkit-test/ready' \
    >"$T/out" 2>"$T/sub.err" &
SUB_PID=$!
for _ in $(seq 1 100); do
    mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t hkit-test/ready -m ready
    grep -q ready "$T/out" && break
    hkit_sleep 0.05
done
grep -q ready "$T/out" || hkit_fail "mosquitto_sub did not start"

# steps of 4000 msg/s, no MAX, QoS 1 with 4 messages in flight: the publisher waits on the
# broker's acknowledgements long before mosquitto_sub is pressed
hreplay --url "$URL" -q 1 --inflight 4 --ramp 2000:4000:1s --observe "file:$T/out" --report-json "$T/r.json" \
    --report-svg "$T/r.svg" "$T/in.jsonl" >"$T/table" 2>"$T/err" ||
    hkit_fail "hreplay --ramp exited $?: $(cat "$T/err")"
cat "$T/table"
python3 - "$T/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("fast consumer: max sustainable %s msg/s, limited by %s (%s)"
      % (r["max_sustainable_rate"], r["limited_by"], r["limit_reason"]))
assert r["limited_by"] in ("broker", "generator"), r["limited_by"] + ": " + r["limit_reason"]
assert r["max_sustainable_rate"] is not None and r["max_sustainable_rate"] >= 2000, r
assert r["matching"] == "position", r["matching_note"]
assert r["mode"] == "ramp" and r["observe"].startswith("file:")
assert len(r["steps"]) >= 2
last = r["steps"][-1]
assert last["verdict"] in ("rate not reached", "not observed"), last
for s in r["steps"]:
    assert s["verdict"] in ("kept up", "rate not reached", "not observed") or s["transient"], s
PY
grep -q '<svg' "$T/r.svg" || hkit_fail "no SVG"
grep -q "limited by" "$T/table" || hkit_fail "no summary line"

# an unwritable SVG path: the run still reports, and exits 1 naming the file
hkit_expect_exit 1 hreplay --url "$URL" --ramp 200:100:500ms:200 --observe "file:$T/out" \
    --report-svg "$T/no/such/dir/r.svg" "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: cannot write '$T/no/such/dir/r.svg': No such file or directory" "svg error"
hkit_assert_contains "$OUT" "maximum sustainable rate: 200 msg/s" "the table before the error"
echo "t0233: ok"

#!/usr/bin/env bash
# hkit-test: serial
# A fast consumer is not reported as failing: fixtures/consumers/c_consumer.c (libcore's
# subscriber, one JSON line per input through stdio, read by hreplay from its pseudo-terminal)
# started by hreplay --ramp --consumer, ramped without MAX at QoS 2 with 1 message in flight,
# is found limited by the broker or the generator, latency matched by device id and measured_at.
# QoS 2 with one message in flight puts that limit (a few thousand msg/s) well below what the
# consumer, subscribed at QoS 0, and hreplay reading it can take.
# Serial: it measures rates.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
trap 'echo "t0235: command failed at line $LINENO" >&2' ERR
T=$HKIT_TMP
CONSUMER=$HKIT_BIN/c_consumer
[ -x "$CONSUMER" ] || hkit_fail "$CONSUMER is missing (built with the tests)"

python3 - "$T/in.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(500):
        f.write(json.dumps({
            "topic": "haltian-iot/events/int/key/measurements/co2/dev-%03d" % (i % 50),
            "received_at": "2026-02-05T10:30:00.500000Z",
            "payload": {"measured_at": "2026-02-05T10:30:00.%06dZ" % i, "value": 400 + i}}) + "\n")
PY

hkit_expect_exit 0 hreplay -q 2 --inflight 1 --ramp 1000:2000:1s --consumer "$CONSUMER 0" \
    --report-json "$T/r.json" "$T/in.jsonl"
printf '%s\n' "$OUT"
left=$(pgrep -af -- "$CONSUMER" || true)
[ -z "$left" ] || hkit_fail "consumer left behind: $left"
python3 - "$T/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("C consumer: max sustainable %s msg/s, limited by %s (%s)"
      % (r["max_sustainable_rate"], r["limited_by"], r["limit_reason"]))
assert r["limited_by"] in ("broker", "generator"), r["limited_by"] + ": " + r["limit_reason"]
assert r["max_sustainable_rate"] is not None and r["max_sustainable_rate"] >= 1000, r
assert r["matching"] == "device_id+measured_at", r["matching_note"]
assert r["observe"].startswith("stdout:") and r["broker_evidence"] is True
assert r["steps"][0]["verdict"] == "kept up", r["steps"][0]
PY
echo "t0235: ok"

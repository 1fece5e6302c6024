#!/usr/bin/env bash
# hkit-test: serial
# hreplay --ramp finds a slow consumer's capacity: fixtures/consumers/slow_5ms.py (or the consumer
# named by the first argument: t0232 runs slow_1ms.py) at QoS 0 and QoS 1. For each QoS the test
# first measures the consumer's true capacity itself: it gives the consumer a backlog (hreplay
# --max of N messages) and times the drain from the consumer's own output timestamps. Then the
# reported maximum sustainable rate must be within +-20% of it (of the slowest to the fastest of
# three drains: the machine is shared), limited by the consumer, with
# latency matched by device id and measured_at, and the broker's $SYS counters in every step.
# Serial: it measures rates (the true capacity is measured in the same run, on the same machine).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
CONSUMER=${1:-5ms}
case $CONSUMER in
5ms) DRAIN_N=500 RAMP=60:20:2s:400 ;;
1ms) DRAIN_N=3000 RAMP=150:75:2s:2500 ;;
*) hkit_fail "unknown consumer '$CONSUMER'" ;;
esac
trap 'echo "t0231 ($CONSUMER): command failed at line $LINENO" >&2' ERR
T=$HKIT_TMP

hkit_require_paho

# the test owns the consumer: its own process group, killed and reaped on every exit path
CONS_PID=
stop_consumer() {
    if [ -n "$CONS_PID" ]; then
        kill -TERM -- "-$CONS_PID" 2>/dev/null || true
        wait "$CONS_PID" 2>/dev/null || true
        CONS_PID=
    fi
}
trap 'stop_consumer; hkit_capture_kill; hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT

# $SYS every second: a step of 2 s then sees the broker's counters move
HKIT_BROKER_EXTRA_CONF="sys_interval 1" hkit_broker_start "$T/broker"
URL="mqtt://127.0.0.1:$HKIT_BROKER_PORT"

# input: 50 devices, measured_at with microseconds (distinct keys after --rebase-time)
make_input() { # FILE N
    python3 - "$1" "$2" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        s, us = divmod(i * 10000, 1000000)
        f.write(json.dumps({
            "topic": "haltian-iot/events/int/key/measurements/ambientTemperature/dev-%03d" % (i % 50),
            "received_at": "2026-02-05T10:%02d:%02d.%06dZ" % (s // 60, s % 60, (us + 800) % 1000000),
            "payload": {"measured_at": "2026-02-05T10:%02d:%02d.%06dZ" % (s // 60, s % 60, us),
                        "value": 20 + i % 7}}) + "\n")
PY
}
make_input "$T/in.jsonl" 200
make_input "$T/drain.jsonl" "$DRAIN_N"

wait_lines() { # FILE N: until FILE has N lines (bounded: 60 s)
    local i
    for i in $(seq 1 600); do
        [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
        hkit_sleep 0.1
    done
    hkit_fail "$1: $(wc -l <"$1" 2>/dev/null || echo 0) lines, expected $2"
}

for QOS in 0 1; do
    out=$T/out-q$QOS.jsonl
    setsid python3 "$HKIT_SOURCE_DIR/fixtures/consumers/slow_$CONSUMER.py" --port "$HKIT_BROKER_PORT" \
        --qos "$QOS" --topic 'haltian-iot/events/#' --out-topic "out$QOS" --out-file "$out" \
        >"$T/cons.out" 2>&1 &
    CONS_PID=$!
    for i in $(seq 1 100); do grep -q subscribed "$T/cons.out" && break; hkit_sleep 0.05; done
    grep -q subscribed "$T/cons.out" || hkit_fail "consumer did not subscribe: $(cat "$T/cons.out")"

    # true capacity: a backlog of DRAIN_N messages, drained at the consumer's own pace; twice
    # before the ramp and once after, the median taken (the machine is shared: one drain may
    # meet a burst of other work)
    drain() {
        : >"$out"
        hreplay --url "$URL" -q "$QOS" --max --quiet "$T/drain.jsonl"
        wait_lines "$out" "$DRAIN_N"
        python3 -c '
import json, sys
t = [json.loads(l)["output_at"] for l in open(sys.argv[1])]
print("%.1f" % ((len(t) - 1) / (t[-1] - t[0])))' "$out"
    }
    drains="$(drain) $(drain)"
    hreplay --url "$URL" -q "$QOS" --ramp "$RAMP" --observe "mqtt:out$QOS/#" \
        --report-json "$T/r$QOS.json" --report-svg "$T/r$QOS.svg" "$T/in.jsonl" \
        >"$T/table$QOS" 2>"$T/err$QOS" || hkit_fail "hreplay --ramp exited $?: $(cat "$T/err$QOS")"
    # the ramp left a backlog: the consumer works it off before the last drain
    wait_lines "$out" "$(($(wc -l <"$T/drain.jsonl") + $(jq .sent "$T/r$QOS.json")))"
    drains="$drains $(drain)"
    stop_consumer
    cat "$T/table$QOS"

    python3 - "$T/r$QOS.json" "$QOS" $drains <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
qos, drains = sys.argv[2], sorted(float(d) for d in sys.argv[3:])
capacity = drains[1]
best = r["max_sustainable_rate"]
print("QoS %s: true capacity %.0f msg/s (median of drains %s), ramp says %s msg/s, limited by %s"
      % (qos, capacity, drains, best, r["limited_by"]))
assert best is not None, "the first step failed"
# the capacity itself moves with the machine's other work (the drains show by how much): the
# ramp's answer must be within 20% of a capacity the consumer showed in this run
assert 0.8 * drains[0] <= best <= 1.2 * drains[-1], \
    "maximum sustainable rate %s not within 20%% of the true capacity (drains %s)" % (best, drains)
assert r["limited_by"] == "consumer", r["limited_by"] + ": " + r["limit_reason"]
assert r["matching"] == "device_id+measured_at", r["matching_note"]
assert r["broker_evidence"] is True
steps = r["steps"]
assert steps[-1]["verdict"] in ("falling behind", "dropping"), steps[-1]
# a failing step is repeated once: the last failure may be the repetition of the one before
confirmed = len(steps) - (2 if steps[-1]["repeat"] else 1)
for s in steps[:confirmed]:
    assert s["verdict"] == "kept up" or s["transient"], s
for s in steps[:confirmed]:
    if s["verdict"] != "kept up":
        continue
    assert s["broker_dropped"] == 0, s
    assert s["latency_ms"]["count"] > 0 and s["latency_ms"]["p50"] <= s["latency_ms"]["p99"], s
    assert abs(s["input_rate"] - s["rate_target"]) <= 0.05 * s["rate_target"], s
for key in ("rate_target", "input_rate", "lateness_ms", "output_rate", "backlog_end",
            "backlog_slope", "latency_ms", "broker_dropped", "broker_stored", "verdict"):
    assert key in steps[0], key
PY
    grep -q "maximum sustainable rate: " "$T/table$QOS" || hkit_fail "no summary in the table"
    grep -q "<svg" "$T/r$QOS.svg" || hkit_fail "no SVG"
done
echo "t0231 ($CONSUMER): ok"

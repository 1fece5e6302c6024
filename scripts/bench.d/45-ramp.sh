#!/usr/bin/env bash
# Benchmark part: hreplay --ramp against consumers of known capacity. For each of
# fixtures/consumers/slow_5ms.py and slow_1ms.py, at QoS 0 and QoS 1: the consumer's true
# capacity (median of three drains of a backlog, timed from its own output timestamps) next to
# the ramp's maximum sustainable rate with fine steps (5% of the expected capacity) and long
# holds, and what limited the run. Also mosquitto_sub > FILE observed through file:, ramped until
# the broker or hreplay gives way. Prints a Markdown section.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh 2>/dev/null || true
export PATH="$HKIT_BIN:$PATH" # the tools by name, as a user runs them
HOLD=${HKIT_BENCH_RAMP_HOLD:-5s}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-ramp.XXXXXX")
CONS=
SUB=
stop_all() {
    # a consumer ended by the signal exits non-zero: that is expected, not a failure (set -e)
    [ -z "$CONS" ] || { kill -TERM -- "-$CONS" 2>/dev/null; wait "$CONS" 2>/dev/null || true; CONS=; }
    [ -z "$SUB" ] || { kill "$SUB" 2>/dev/null; wait "$SUB" 2>/dev/null || true; SUB=; }
}
trap 'stop_all; hkit_broker_stop; rm -rf "$TMP"' EXIT
HKIT_BROKER_EXTRA_CONF="sys_interval 1" hkit_broker_start "$TMP/broker" >/dev/null
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
PY=$HKIT_PY
"$PY" -c 'import paho.mqtt.client' || { echo "bench ramp: python3-paho-mqtt missing (scripts/setup)" >&2; exit 1; }

make_input() { # FILE N
    "$PY" - "$1" "$2" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        s, us = divmod(i * 10000, 1000000)
        f.write(json.dumps({
            "topic": "haltian-iot/events/int/key/measurements/ambientTemperature/dev-%03d" % (i % 100),
            "received_at": "2026-02-05T10:%02d:%02d.%06dZ" % (s // 60 % 60, s % 60, (us + 800) % 1000000),
            "payload": {"measured_at": "2026-02-05T10:%02d:%02d.%06dZ" % (s // 60 % 60, s % 60, us),
                        "value": 20 + i % 7}}) + "\n")
PY
}
make_input "$TMP/in.jsonl" 1000
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
wait_lines() { for _ in $(seq 1 1200); do [ "$(lines "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
drain() { # OUT QOS N
    : >"$1"
    hreplay --url "$URL" -q "$2" --max --quiet "$TMP/drain.jsonl"
    wait_lines "$1" "$3"
    "$PY" -c 'import json,sys; t=[json.loads(l)["output_at"] for l in open(sys.argv[1])]; print("%.1f" % ((len(t)-1)/(t[-1]-t[0])))' "$1"
}

echo "## Ramp: maximum sustainable rate against known capacity"
echo
echo "Steps of $HOLD; the true capacity is the median of three drains of a backlog."
echo
echo "| consumer | QoS | true capacity (msg/s) | ramp: max sustainable (msg/s) | ratio | limited by |"
echo "| --- | --- | --- | --- | --- | --- |"
for c in 5ms 1ms; do
    case $c in 5ms) N=1000 R=80:10:$HOLD:400 ;; 1ms) N=5000 R=300:40:$HOLD:2000 ;; esac
    make_input "$TMP/drain.jsonl" "$N"
    for q in 0 1; do
        out=$TMP/out-$c-$q
        setsid "$PY" fixtures/consumers/slow_$c.py --port "$HKIT_BROKER_PORT" --qos "$q" \
            --out-topic "out$q" --out-file "$out" >"$TMP/cons.out" 2>&1 &
        CONS=$!
        for _ in $(seq 1 100); do grep -q subscribed "$TMP/cons.out" && break; sleep 0.05; done
        d1=$(drain "$out" "$q" "$N"); d2=$(drain "$out" "$q" "$N")
        hreplay --url "$URL" -q "$q" --ramp "$R" --observe "mqtt:out$q/#" --quiet \
            --report-json "$TMP/r.json" "$TMP/in.jsonl" >/dev/null
        wait_lines "$out" "$((N + $(jq .sent "$TMP/r.json")))" || true
        d3=$(drain "$out" "$q" "$N")
        stop_all
        cap=$(printf '%s\n' "$d1" "$d2" "$d3" | sort -n | sed -n 2p)
        best=$(jq .max_sustainable_rate "$TMP/r.json")
        ratio=$(awk -v b="$best" -v c="$cap" 'BEGIN { if (b == "null") print "-"; else printf "%.2f", b / c }')
        echo "| slow_$c.py | $q | $cap | $best | $ratio | $(jq -r .limited_by "$TMP/r.json") |"
    done
done
mosquitto_sub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -q 1 -t 'haltian-iot/#' -t 'hkit-test/ready' \
    >"$TMP/fast" 2>/dev/null &
SUB=$!
for _ in $(seq 1 100); do # until the subscriber receives
    mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t hkit-test/ready -m '{}'
    [ -s "$TMP/fast" ] && break
    sleep 0.05
done
for q in 0 1; do
    hreplay --url "$URL" -q "$q" --ramp 5000:5000:$HOLD --observe "file:$TMP/fast" --quiet \
        --report-json "$TMP/f.json" "$TMP/in.jsonl" >/dev/null || true
    echo "| mosquitto_sub > file | $q | - | $(jq .max_sustainable_rate "$TMP/f.json") | - | $(jq -r .limited_by "$TMP/f.json") |"
done
echo

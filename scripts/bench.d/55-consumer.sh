#!/usr/bin/env bash
# Benchmark part: hverify --consumer per-case overhead and a 20-case suite. The private broker
# runs for the whole run (started once); per case hverify starts the consumer, waits for its
# subscription, replays, waits --settle, stops it. Overhead per case = the case's time less
# --settle, with mosquitto_sub as the consumer (a C client whose own start-up is a few ms, so
# nearly all that remains is hverify's). The suite: the same 20 cases with the Python JSON client
# of fixtures/consumers (its start-up, ~0.3 s of Python and paho, included).
# Targets (issue 13): overhead <= 100 ms plus settle; the 20-case Python suite under 30 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
PY=$HKIT_PY
SETTLE=${HKIT_BENCH_SETTLE:-200ms}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-consumer.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
for i in $(seq -w 1 20); do
    mkdir -p "$TMP/sub/c$i" "$TMP/py/c$i"
    cp fixtures/consumers/json-cases/environment/input.jsonl "$TMP/sub/c$i/"
    cp fixtures/consumers/json-cases/environment/{input.jsonl,expected.jsonl,case.json} "$TMP/py/c$i/"
done
SUB='mosquitto_sub -h {host} -p {port} -u {api_key_id} -P "$HALTIAN_API_KEY_TOKEN" -t "haltian-iot/events/$HALTIAN_INTEGRATION_ID/$HALTIAN_API_KEY_ID/#" -F %p'
"$HKIT_BIN/hverify" --update --accept --broker plain --settle "$SETTLE" --consumer "$SUB" "$TMP/sub" >/dev/null
start=$(date +%s%N)
"$HKIT_BIN/hverify" --json --broker plain --settle "$SETTLE" --consumer "$SUB" "$TMP/sub" >"$TMP/sub.json"
sub_wall=$((($(date +%s%N) - start) / 1000000))
start=$(date +%s%N)
"$HKIT_BIN/hverify" --json --consumer "$PY fixtures/consumers/json_client.py" "$TMP/py" >"$TMP/py.json"
py_wall=$((($(date +%s%N) - start) / 1000000))
read -r p50 max < <(python3 - "$TMP/sub.json" "$SETTLE" <<'PY'
import json, re, sys
settle = float(re.match(r"(\d+)", sys.argv[2]).group(1)) / 1000
t = sorted(c["seconds"] - settle for c in json.load(open(sys.argv[1]))["cases"])
print(f"{t[len(t) // 2] * 1000:.0f} {t[-1] * 1000:.0f}")
PY
)
echo "## hverify --consumer (20 cases of 5 inputs, private broker started once)"
echo
echo "| run | wall time | per case |"
echo "| --- | --- | --- |"
echo "| mosquitto_sub as consumer, --settle $SETTLE | $sub_wall ms | overhead (case time less settle) p50 $p50 ms, max $max ms |"
echo "| fixtures/consumers/json_client.py (Python paho), --settle 500ms | $py_wall ms | $((py_wall / 20)) ms |"
echo
echo "Command: scripts/bench consumer. Load while measuring: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)."
echo "Targets (issue 13): overhead <= 100 ms plus settle; the Python suite under 30 s."

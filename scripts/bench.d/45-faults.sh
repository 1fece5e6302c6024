#!/usr/bin/env bash
# Benchmark part: hreplay --faults overhead. hreplay --max -q 0 with no subscriber, the same
# JSON lines without --faults and with a spec of every stream kind whose faults never fire
# (probability 0: each message still takes one draw per kind), median of HKIT_BENCH_REPEAT runs.
# The issue's bound: within 10% of the run without --faults.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
N=${HKIT_BENCH_MESSAGES:-1000000}
REPEAT=${HKIT_BENCH_REPEAT:-3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-faults.XXXXXX")
trap 'hkit_broker_stop; rm -rf "$TMP"' EXIT
hkit_broker_start "$TMP/broker" >/dev/null
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
python3 - "$N" "$TMP/in.jsonl" <<'PY'
import sys
n = int(sys.argv[1])
base = "haltian-iot/events/3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d/measurements/ambientTemperature/"
with open(sys.argv[2], "w") as f:
    for i in range(n):
        dev = "%08x-0000-4000-8000-%012x" % (i % 1000, i % 1000)
        s = 1770287445 + i // 10000
        f.write('{"topic":"%s%s","qos":0,"retain":false,"received_at":"2026-02-05T10:%02d:%02d.%06dZ","payload":"{\\"measured_at\\":\\"2026-02-05T10:30:45.123Z\\",\\"value\\":%.2f}"}\n'
                % (base, dev, (i // 1000000) % 60, (i // 10000) % 60, (i % 10000) * 100, 20 + (i % 1000) / 100))
PY
SPEC='drop=0:burst=2,dup=0,reorder=0:window=4,delay=0:by=1s,stale=0:by=1h,future=0:by=1h,corrupt=0,retain=0,backlog=0:hold=1s'
# rate options...: "msg/s cpu_us_per_msg" of one run (the rate from its report; CPU = user +
# system time of hreplay, less sensitive than the rate to what else the machine runs)
rate() {
    /usr/bin/time -f '%U %S' -o "$TMP/cpu" "$HKIT_BIN/hreplay" --url "$URL" --max -q 0 --quiet \
        --report-json "$TMP/r.json" "$@" "$TMP/in.jsonl"
    python3 - "$TMP/r.json" "$TMP/cpu" "$N" <<'PY'
import json, sys
u, s = open(sys.argv[2]).read().split()[-2:]
print(int(json.load(open(sys.argv[1]))["rate_msg_s"]), f"{(float(u) + float(s)) * 1e6 / int(sys.argv[3]):.2f}")
PY
}
median() { local i; for ((i = 0; i < REPEAT; i++)); do rate "$@"; done | sort -n | sed -n "$(((REPEAT + 1) / 2))p"; }
read -r plain plain_cpu < <(median)
read -r faults faults_cpu < <(median --faults "$SPEC" --seed 1)
echo "## hreplay --faults ($N messages, --max -q 0, median of $REPEAT)"
echo
echo "| run | msg/s | vs without --faults | hreplay CPU µs/msg |"
echo "| --- | --- | --- | --- |"
echo "| without --faults | $plain | 1.00x | $plain_cpu |"
echo "| --faults '$SPEC' (never fires) | $faults | $(python3 -c "print(f'{$faults/$plain:.2f}x')") | $faults_cpu |"
echo
echo "Load while measuring: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores). Target (issue 14): within 10%."

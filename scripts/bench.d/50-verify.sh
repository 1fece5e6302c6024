#!/usr/bin/env bash
# Benchmark part: hverify over one generated case of HKIT_BENCH_MESSAGES Haltian-sized messages,
# with the built-in decoder and with `cat` as an external decoder (streamed through pipes), next
# to the same-run cost of just piping the input through cat (the floor for any external decoder).
set -euo pipefail
: "${HKIT_BIN:?}"
n=${HKIT_BENCH_MESSAGES:-1000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-verify.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/builtin" "$work/cat"
python3 - "$work/builtin/input.jsonl" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
types = ["ambientTemperature", "humidity", "co2", "batteryPercentage", "occupancyStatus"]
with open(path, "w") as f:
    for i in range(n):
        t = types[i % len(types)]
        v = "true" if t == "occupancyStatus" else "%.1f" % (20 + (i % 100) / 10)
        dev = "9b2f6c1e-4d3a-4f8b-a1c2-%012d" % (i % 1000)
        f.write('{"topic":"haltian-iot/events/3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44/'
                'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d/measurements/%s/%s",'
                '"payload":"{\\"measured_at\\":\\"2026-02-05T10:%02d:%02d.123Z\\",\\"value\\":%s}"}\n'
                % (t, dev, (i // 60) % 60, i % 60, v))
PY
cp "$work/builtin/input.jsonl" "$work/cat/input.jsonl"
"$HKIT_BIN/hverify" -q --update --accept --force "$work/builtin" >/dev/null
"$HKIT_BIN/hverify" -q --update --accept --force --decoder cat "$work/cat" >/dev/null

secs() { # command... -> elapsed seconds on stdout
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
t_builtin=$(secs "$HKIT_BIN/hverify" -q "$work/builtin")
t_cat=$(secs "$HKIT_BIN/hverify" -q --timeout 1h --decoder cat "$work/cat")
t_pipe=$(secs sh -c "cat '$work/cat/input.jsonl' | cat | wc -l")
rate() { echo "$n / $1" | bc -l | xargs printf '%.0f'; }
echo "## hverify ($n messages, one case)"
echo
echo "| run | seconds | msg/s |"
echo "| --- | --- | --- |"
printf '| hverify, built-in decoder | %.2f | %s |\n' "$t_builtin" "$(rate "$t_builtin")"
printf '| hverify --decoder cat (streamed, compared) | %.2f | %s |\n' "$t_cat" "$(rate "$t_cat")"
printf '| peer floor: cat input \\| cat \\| wc -l | %.2f | %s |\n' "$t_pipe" "$(rate "$t_pipe")"
echo
echo "Targets: built-in >= 500k msg/s, external cat-like decoder >= 100k msg/s."
echo "Command: \`HKIT_BENCH_MESSAGES=$n scripts/bench verify\`"

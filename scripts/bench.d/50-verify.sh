#!/usr/bin/env bash
# Benchmark part: hverify over one generated case of HKIT_BENCH_MESSAGES Haltian-sized messages,
# with the built-in decoder and with `cat` as an external decoder (streamed through pipes), next
# to the same-run cost of just piping the input through cat (the floor for any external decoder).
# Each figure is the median of 3 runs after a warm-up run (the --update that writes the case).
set -euo pipefail
: "${HKIT_BIN:?}"
n=${HKIT_BENCH_MESSAGES:-1000000}
runs=3
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
"$HKIT_BIN/hverify" --quiet --update --accept --force "$work/builtin" >/dev/null
"$HKIT_BIN/hverify" --quiet --update --accept --force --decoder cat "$work/cat" >/dev/null

# Each run prints "elapsed cpu" (seconds; cpu = user + system of the command and its children,
# which tells the cost apart from waiting when the machine is busy; "-" without /usr/bin/time).
run1() {
    local t0 t1 cpu=-
    t0=$(date +%s.%N)
    if [ -x /usr/bin/time ]; then
        cpu=$(/usr/bin/time -f '%U %S' "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}')
    else
        "$@" >/dev/null
    fi
    t1=$(date +%s.%N)
    echo "$(echo "$t1 - $t0" | bc -l) $cpu"
}
median() { # command... -> "elapsed cpu", each the median of $runs runs
    local i out
    out=$(for ((i = 0; i < runs; i++)); do run1 "$@"; done)
    echo "$(echo "$out" | awk '{print $1}' | sort -g | sed -n "$(((runs + 1) / 2))p")" \
        "$(echo "$out" | awk '{print $2}' | sort -g | sed -n "$(((runs + 1) / 2))p")"
}
read -r t_builtin c_builtin < <(median "$HKIT_BIN/hverify" --quiet "$work/builtin")
read -r t_cat c_cat < <(median "$HKIT_BIN/hverify" --quiet --timeout 1h --decoder cat "$work/cat")
read -r t_pipe c_pipe < <(median sh -c "cat '$work/cat/input.jsonl' | cat | wc -l")
rss_builtin=
if [ -x /usr/bin/time ]; then
    rss_builtin=$(/usr/bin/time -f '%M' "$HKIT_BIN/hverify" --quiet "$work/builtin" 2>&1 >/dev/null |
        tail -1)
fi
rate() { echo "$n / $1" | bc -l | xargs printf '%.0f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; } # how many times slower than $2
met() { [ "$(echo "$n >= $2 * $1" | bc -l)" = 1 ] && echo "yes" || echo "**no**"; }
in_mb=$(du -m "$work/builtin/input.jsonl" | cut -f1)
exp_mb=$(du -m "$work/builtin/expected.jsonl" | cut -f1)

echo "## hverify ($n messages, one case)"
echo
echo "One case: input.jsonl ${in_mb} MB, expected.jsonl ${exp_mb} MB (every value equal, so the"
echo "figures are the cost of a passing run). Seconds are the median of $runs runs; msg/s and the"
echo "ratios use elapsed time; cpu seconds (user + system, the decoder process included) show the"
echo "cost apart from waiting for a busy machine."
echo
echo "| run | seconds | cpu seconds | msg/s | time vs floor | target | met |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '| hverify, built-in decoder | %.2f | %s | %s | %sx | 500000 msg/s | %s |\n' "$t_builtin" \
    "$c_builtin" "$(rate "$t_builtin")" "$(ratio "$t_builtin" "$t_pipe")" \
    "$(met "$t_builtin" 500000)"
printf '| %s | %.2f | %s | %s | %sx | 100000 msg/s | %s |\n' \
    'hverify --decoder cat (streamed, compared)' "$t_cat" "$c_cat" "$(rate "$t_cat")" \
    "$(ratio "$t_cat" "$t_pipe")" "$(met "$t_cat" 100000)"
printf '| peer floor: cat input \\| cat \\| wc -l | %.2f | %s | %s | 1.00x | | |\n' "$t_pipe" \
    "$c_pipe" "$(rate "$t_pipe")"
echo
if [ -n "$rss_builtin" ]; then
    echo "Peak RSS of the built-in run: $((rss_builtin / 1024)) MiB (strict order streams: the"
    echo "case is never held in memory)."
    echo
fi
echo "Command: \`HKIT_BENCH_MESSAGES=$n scripts/bench verify\` (or, with a Release build:"
echo "\`HKIT_BIN=<build>/bin HKIT_BENCH_MESSAGES=$n bash scripts/bench.d/50-verify.sh\`)."

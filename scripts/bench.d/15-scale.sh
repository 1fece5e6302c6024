#!/usr/bin/env bash
# Benchmark part: week-long recordings (issue 16). hgen makes a small and a large recording of the
# same site (9,500 devices, ~60 msg/s; by default 2M and 20M messages, the large one ~2.3 GB: it
# falls back to 2M alone when the disk has less than 12 GB free), then measures on each:
#   - hcat --info (summaries read, not scanned), and how its cost grows from the small to the large;
#   - a one-minute --since/--until -o cut ten minutes before the end;
#   - hreplay --max --limit 1000 --since <that minute>: when its first message reaches a
#     subscriber, counted from hreplay's start;
#   - the same-run sqlite3 floors: one GROUP BY pass over the rows (what --info would cost with
#     a single scan), and one scan for the minute (what a window costs without a search).
# The append rate with the summaries maintained is bench_store -w against the same program built
# from HKIT_BENCH_BASELINE (default: the merge base with main, i.e. before the summaries).
# HKIT_BENCH_SCALE="2000000 20000000" sets the sizes; HKIT_BENCH_SCALE_DIR where they are made
# (removed at the end unless HKIT_BENCH_SCALE_KEEP=1). Medians of 3 for the fast operations.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
: "${HKIT_BIN:?}"
big_mix=environment=2000,presence=4000,air=500,beam=500,count=500,tag=1000,radar=500,leakage=500
dir=${HKIT_BENCH_SCALE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-scale.XXXXXX")}
mkdir -p "$dir"
cleanup() {
    hkit_broker_stop 2>/dev/null || true
    [ "${HKIT_BENCH_SCALE_KEEP:-0}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT
free_gb=$(df -Pk "$dir" | awk 'NR == 2 {print int($4 / 1048576)}')
sizes=${HKIT_BENCH_SCALE:-}
if [ -z "$sizes" ]; then
    if [ "$free_gb" -ge 12 ]; then sizes="2000000 20000000"; else sizes="2000000"; fi
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
timed() { # timed CMD...: wall seconds of one run, output discarded
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    secs "$t0" "$t1"
}
median3() { for _ in 1 2 3; do timed "$@"; done | median; }

hkit_broker_start "$dir/broker" >/dev/null

rows=()
declare -A info_s
for n in $sizes; do
    db=$dir/gen-$n.db
    if [ ! -s "$db" ]; then
        t0=$(now)
        "$HKIT_BIN/hgen" -o "$db" --devices "$big_mix" --duration 365d --count "$n" --quiet
        gen_s=$(secs "$t0" "$(now)")
    else
        gen_s="(kept)"
    fi
    mb=$(du -m "$db" | cut -f1)
    info_s[$n]=$(median3 "$HKIT_BIN/hcat" --info "$db")
    last=$("$HKIT_BIN/hcat" --info --json "$db" | jq -r '.last_received_at')
    last_ns=$(date -d "$last" +%s%N)
    since_ns=$((last_ns - 600000000000))
    until_ns=$((since_ns + 60000000000))
    since=$(date -u -d "@$((since_ns / 1000000000))" +%Y-%m-%dT%H:%M:%SZ)
    until=$(date -u -d "@$((until_ns / 1000000000))" +%Y-%m-%dT%H:%M:%SZ)
    cut_s=$(median3 "$HKIT_BIN/hcat" "$db" --since "$since" --until "$until" -o "$dir/cut.db" --force)
    cut_n=$("$HKIT_BIN/hcat" --info --json "$dir/cut.db" | jq .messages)

    # first message of the window at a subscriber, counted from hreplay's start
    first=()
    for _ in 1 2 3; do
        rm -f "$dir/first.txt"
        rm -f "$dir/sub.txt"
        # every arrival with its time (%U, the same seconds as now); a ready marker first
        timeout 60 mosquitto_sub -p "$HKIT_BROKER_PORT" -t 'haltian-iot/#' -t 'hkit-bench/ready' \
            -F '%U %t' >"$dir/sub.txt" &
        sub=$!
        for _ in $(seq 1 100); do # until the subscriber receives
            mosquitto_pub -p "$HKIT_BROKER_PORT" -t hkit-bench/ready -m 1
            [ -s "$dir/sub.txt" ] && break
            sleep 0.05
        done
        t0=$(now)
        "$HKIT_BIN/hreplay" "$db" --url "mqtt://127.0.0.1:$HKIT_BROKER_PORT" --max --limit 1000 \
            --since "$since" --quiet >/dev/null 2>&1 || true
        t_done=$(now)
        for _ in $(seq 1 200); do # until the window's first message arrived
            grep -q ' haltian-iot/' "$dir/sub.txt" && break
            sleep 0.05
        done
        kill "$sub" 2>/dev/null || true
        wait "$sub" 2>/dev/null || true
        awk '$2 ~ /^haltian-iot\// {print $1; exit}' "$dir/sub.txt" >"$dir/first.txt"
        [ -s "$dir/first.txt" ] || echo "$t0" >"$dir/first.txt"
        first+=("$(secs "$t0" "$(cat "$dir/first.txt" 2>/dev/null || echo "$t0")")")
        whole=$(secs "$t0" "$t_done")
    done
    first_s=$(printf '%s\n' "${first[@]}" | median)

    floor_info=na floor_window=na
    if command -v sqlite3 >/dev/null; then
        floor_info=$(timed sqlite3 "file:$db?immutable=1" "SELECT topic_id, count(*),
            sum(length(payload)), min(received_at_ns), max(received_at_ns) FROM message_rows
            GROUP BY topic_id" )
        floor_window=$(timed sqlite3 "file:$db?immutable=1" "SELECT count(*) FROM message_rows
            WHERE received_at_ns >= $since_ns AND received_at_ns < $until_ns")
    fi
    rows+=("| $n | $mb | $gen_s | ${info_s[$n]} | $floor_info | $cut_s ($cut_n msgs) | $floor_window | $first_s (1000 sent in $whole) |")
done

# append rate: the summaries maintained, against the baseline's same program
base_ref=${HKIT_BENCH_BASELINE:-$(git merge-base HEAD main 2>/dev/null || echo)}
base_rate=na
if [ -n "$base_ref" ]; then
    src=$dir/baseline-src
    mkdir -p "$src"
    git archive "$base_ref" | tar -x -C "$src"
    cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$src/build" -j2 --target bench_store >/dev/null
    base_bin=$src/build/bin/bench_store
fi
pick_rate() { awk 'index($0, "store append CPU:") == 1 {print $4}'; }
pick_wall() { awk 'index($0, "store append+close:") == 1 {print $3}'; }
new_cpu=() new_wall=() base_cpu=() base_wall=()
for _ in 1 2 3; do
    out=$(TMPDIR=$dir "$HKIT_BIN/bench_store" -n 1000000 -w)
    new_cpu+=("$(printf '%s\n' "$out" | pick_rate)")
    new_wall+=("$(printf '%s\n' "$out" | pick_wall)")
    if [ -n "${base_bin:-}" ]; then
        out=$(TMPDIR=$dir "$base_bin" -n 1000000 -w)
        base_cpu+=("$(printf '%s\n' "$out" | pick_rate)")
        base_wall+=("$(printf '%s\n' "$out" | pick_wall)")
    fi
done
new_cpu_m=$(printf '%s\n' "${new_cpu[@]}" | median)
new_wall_m=$(printf '%s\n' "${new_wall[@]}" | median)
if [ -n "${base_bin:-}" ]; then
    base_cpu_m=$(printf '%s\n' "${base_cpu[@]}" | median)
    base_wall_m=$(printf '%s\n' "${base_wall[@]}" | median)
    ratio_cpu=$(awk -v a="$new_cpu_m" -v b="$base_cpu_m" 'BEGIN {printf "%.2f", a / b}')
    ratio_wall=$(awk -v a="$new_wall_m" -v b="$base_wall_m" 'BEGIN {printf "%.2f", a / b}')
fi

echo "## Week-long recordings: summaries and time windows"
echo
echo "hgen recordings of 9,500 devices (~60 msg/s); times in seconds, wall clock, medians of 3"
echo "(hgen and the sqlite3 floors: one run). The window is one minute, ten minutes before the"
echo "end. sqlite3 floors: one GROUP BY pass over message_rows (--info by one scan), and one scan"
echo "counting the minute's rows (a window without a search)."
echo
echo "| messages | MB | hgen -o | hcat --info | sqlite3 GROUP BY floor | one-minute cut -o | sqlite3 window scan | hreplay: first message at a subscriber |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
set -- $sizes
if [ $# -ge 2 ]; then
    echo
    echo "hcat --info from $1 to ${!#} messages: $(awk -v a="${info_s[$1]}" -v b="${info_s[${!#}]}" 'BEGIN {printf "%.2fx", b / a}') the cost."
fi
echo
echo "Appends with the summaries maintained (\`bench_store -n 1000000 -w\`, medians of 3):"
echo "${new_wall_m} msg/s wall, ${new_cpu_m} per CPU second;"
if [ -n "${base_bin:-}" ]; then
    echo "the same program built from $(git rev-parse --short "$base_ref") (before the summaries):"
    echo "${base_wall_m} msg/s wall, ${base_cpu_m} per CPU second: ${ratio_wall}x (wall), ${ratio_cpu}x (CPU)."
fi

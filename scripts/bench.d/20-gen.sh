#!/usr/bin/env bash
# Benchmark part: hgen. Synthesising into a recording (the issue's goal: 10M messages in under
# 30 s), to JSON lines, and publishing live (QoS 0, --max) to a private broker, next to the
# same-run figure of mosquitto_pub -l publishing the same number of Haltian-sized payloads.
# Recordings are made twice: the default-sized mix over weeks, and ten times as many devices
# over a weekend, where most samples are not reported (the generator's hardest case). CPU
# seconds are given next to wall time: hgen generates in one thread and writes in another.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh 2>/dev/null || true
: "${HKIT_BIN:?}" "${HKIT_BENCH_MESSAGES:?}"
n=$HKIT_BENCH_MESSAGES
live=$((n < 200000 ? n : 200000))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-gen.XXXXXX")
trap 'hkit_broker_stop; rm -rf "$tmp"' EXIT
mix=environment=200,presence=400,air=50,beam=50,count=50,tag=100,radar=50,leakage=50
big=environment=2000,presence=4000,air=500,beam=500,count=500,tag=1000,radar=500,leakage=500
weekend=2026-02-07T00:00:00Z

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# record NAME hgen-args...: sets <NAME>_rate, <NAME>_cpu (user + sys seconds), <NAME>_wall, <NAME>_mb
record() {
    local name=$1 t0 t1 cpu
    shift
    rm -f "$tmp"/gen.db*
    t0=$(now)
    cpu=$( { TIMEFORMAT='%U %S'; time "$HKIT_BIN/hgen" -o "$tmp/gen.db" --count "$n" --quiet "$@"; } 2>&1 )
    t1=$(now)
    printf -v "${name}_rate" '%s' "$(rate "$n" "$t0" "$t1")"
    printf -v "${name}_wall" '%s' "$(secs "$t0" "$t1")"
    printf -v "${name}_cpu" '%s' "$(awk -v u="${cpu% *}" -v s="${cpu#* }" 'BEGIN { printf "%.2f", u + s }')"
    printf -v "${name}_mb" '%s' "$(du -m "$tmp/gen.db" | cut -f1)"
    rm -f "$tmp"/gen.db*
}

record db --devices "$mix" --duration 365d
record night --devices "$big" --duration 365d --start "$weekend"

t0=$(now)
"$HKIT_BIN/hgen" --jsonl --devices "$mix" --duration 365d --count "$n" --quiet >/dev/null
t1=$(now)
jsonl_rate=$(rate "$n" "$t0" "$t1")

hkit_broker_start "$tmp/broker" >/dev/null
"$HKIT_BIN/hgen" --jsonl --devices "$mix" --duration 365d --count "$live" --quiet |
    jq -r .payload >"$tmp/payloads.txt"

timeout 300 mosquitto_sub -p "$HKIT_BROKER_PORT" -t 'haltian-iot/#' -C "$live" >/dev/null &
sub=$!
sleep 0.5
t0=$(now)
"$HKIT_BIN/hgen" --url "mqtt://127.0.0.1:$HKIT_BROKER_PORT" --devices "$mix" --duration 365d \
    --count "$live" --max -q 0 --quiet
wait $sub
t1=$(now)
live_rate=$(rate "$live" "$t0" "$t1")

timeout 300 mosquitto_sub -p "$HKIT_BROKER_PORT" -t 'haltian-iot/#' -C "$live" >/dev/null &
sub=$!
sleep 0.5
t0=$(now)
mosquitto_pub -p "$HKIT_BROKER_PORT" -q 0 -l \
    -t "haltian-iot/events/$HKIT_TEST_INTEGRATION_ID/$HKIT_TEST_API_KEY_ID/measurements/ambientTemperature/4f1776cf-84c2-49ca-8611-33ee56d834de" \
    <"$tmp/payloads.txt"
wait $sub
t1=$(now)
peer_rate=$(rate "$live" "$t0" "$t1")

echo "## hgen: synthetic traffic"
echo
echo "Device mix \`$mix\` (950 devices) from a Monday, simulated year, stopped with \`--count\`;"
echo "\"weekend\" is \`$big\` (9,500 devices) from Saturday $weekend."
echo
echo "| path | messages | msg/s | wall s | CPU s (both threads) | vs peer |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| hgen -o FILE.db (generate + SQLite recording, ${db_mb} MB) | $n | $db_rate | $db_wall | $db_cpu | |"
echo "| hgen -o FILE.db, weekend, 9,500 devices (${night_mb} MB) | $n | $night_rate | $night_wall | $night_cpu | |"
echo "| hgen --jsonl > /dev/null | $n | $jsonl_rate | | | |"
echo "| hgen --url --max, QoS 0, received by mosquitto_sub | $live | $live_rate | | | $(awk -v a="$live_rate" -v b="$peer_rate" 'BEGIN { printf "%.2fx", a / b }') |"
echo "| peer: mosquitto_pub -l, QoS 0, same payloads, received by mosquitto_sub | $live | $peer_rate | | | 1.00x |"
echo
echo "10M messages into a recording at these rates: $(awk -v r="$db_rate" 'BEGIN { printf "%.1f", 10000000 / r }') s, weekend $(awk -v r="$night_rate" 'BEGIN { printf "%.1f", 10000000 / r }') s (goal: under 30 s)."

#!/usr/bin/env bash
# Benchmark part: hgen. Synthesising into a recording (the issue's goal: 10M messages in under
# 30 s), to JSON lines, and publishing live (QoS 0, --max) to a private broker, next to the
# same-run figure of mosquitto_pub -l publishing the same number of Haltian-sized payloads.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh 2>/dev/null || true
: "${HKIT_BIN:?}" "${HKIT_BENCH_MESSAGES:?}"
n=$HKIT_BENCH_MESSAGES
live=$((n < 200000 ? n : 200000))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-gen.XXXXXX")
trap 'hkit_broker_stop; rm -rf "$tmp"' EXIT
mix=environment=200,presence=400,air=50,beam=50,count=50,tag=100,radar=50,leakage=50

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

t0=$(now)
"$HKIT_BIN/hgen" -o "$tmp/gen.db" --devices "$mix" --duration 365d --count "$n" --quiet
t1=$(now)
db_rate=$(rate "$n" "$t0" "$t1")
db_size=$(du -m "$tmp/gen.db" | cut -f1)
rm -f "$tmp"/gen.db*

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
echo "Device mix \`$mix\`, simulated year, stopped with \`--count\`."
echo
echo "| path | messages | msg/s | vs peer |"
echo "| --- | --- | --- | --- |"
echo "| hgen -o FILE.db (generate + SQLite recording, ${db_size} MB) | $n | $db_rate | |"
echo "| hgen --jsonl > /dev/null | $n | $jsonl_rate | |"
echo "| hgen --url --max, QoS 0, received by mosquitto_sub | $live | $live_rate | $(awk -v a="$live_rate" -v b="$peer_rate" 'BEGIN { printf "%.2fx", a / b }') |"
echo "| peer: mosquitto_pub -l, QoS 0, same payloads, received by mosquitto_sub | $live | $peer_rate | 1.00x |"
echo
echo "10M messages into a recording at this rate: $(awk -v r="$db_rate" 'BEGIN { printf "%.1f", 10000000 / r }') s (goal: under 30 s)."

#!/usr/bin/env bash
# Benchmark part: the decoder on one core. bench_decode decodes HKIT_BENCH_MESSAGES Haltian-sized
# messages (a realistic mix of types, ~155-byte topics, ~56-byte payloads) and prints them as
# compact JSON, with hkit's printer and with cJSON's own (the peer a user of cJSON would reach
# for), plus the index pass the store runs for every recorded message. Medians of 3.
set -euo pipefail
: "${HKIT_BIN:?}"
n=${HKIT_BENCH_MESSAGES:-1000000}
out=$("$HKIT_BIN/bench_decode" "$n")
rate() { printf '%s\n' "$out" | awk -v k="$1" 'index($0, k) == 1 {for (i = 1; i <= NF; i++) if ($(i+1) == "msg/s") {print $i; exit}}'; }
ours=$(rate "hc_decode_message + hc_jsonout_print")
peer=$(rate "hc_decode_message + cJSON_PrintUnformatted")
index=$(rate "hc_decode_index")
parse=$(rate "cJSON_Parse of the payload only")
echo "## Decoder (one core, $n messages)"
echo
echo "| path | msg/s | ratio |"
echo "| --- | ---: | ---: |"
awk -v o="$ours" -v p="$peer" -v i="$index" -v c="$parse" 'BEGIN {
    printf "| decode + print (hc_jsonout_print) | %.0f | %.2fx cJSON printing, target 500k: %s |\n", o, o / p, (o >= 500000 ? "met" : "NOT met")
    printf "| decode + print (cJSON_PrintUnformatted) | %.0f | 1.00x |\n", p
    printf "| index pass (what the store runs per message) | %.0f | |\n", i
    printf "| cJSON_Parse of the payload alone (floor) | %.0f | |\n", c
}'
echo
echo "Command: \`scripts/bench decode\` (build-release/bin/bench_decode $n)"

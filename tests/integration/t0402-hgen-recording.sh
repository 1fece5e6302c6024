#!/usr/bin/env bash
# hgen writes recordings and JSON lines: inspected with the sqlite3 CLI (counts per type, value
# ranges, one session, QoS 1, received after measured), and the same seed gives the same bytes
# (sha256sum of --jsonl output) while another seed does not.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

mix=environment=5,presence=10,air=2,beam=2,count=2,tag=3,radar=2,leakage=2,group=2
timeout 60 hgen -o day.db --devices "$mix" --duration 1d --seed 3 2>summary.txt
hkit_assert_contains "$(cat summary.txt)" "per kind: environment=" "summary"
q() { sqlite3 day.db "$1"; }

total=$(q "SELECT count(*) FROM messages")
[ "$total" -gt 5000 ] || hkit_fail "only $total messages"
hkit_assert_contains "$(cat summary.txt)" "hgen: $total messages" "summary count matches the file"
hkit_assert_eq 1 "$(q "SELECT count(*) FROM sessions")" "one session"
hkit_assert_eq "clean exit" "$(q "SELECT end_reason FROM sessions")" "session end"
hkit_assert_eq "1" "$(q "SELECT DISTINCT qos FROM messages")" "QoS 1"
hkit_assert_eq "hgen" "$(q "SELECT value FROM meta WHERE key='tool'")" "meta tool"
hkit_assert_contains "$(q "SELECT value FROM meta WHERE key='generator'")" "seed=3" "meta generator"

# every kind's types are present, and only those
types=$(q "SELECT group_concat(type, ' ') FROM (SELECT DISTINCT type FROM messages ORDER BY type)")
hkit_assert_eq "ambientLight ambientTemperature barometricPressure batteryPercentage co2 deviceOrientation directionalMovement distance echo electricalResistance humidity magneticState magneticStateChanges movementDetections occupancySeconds occupancyStatus occupantsCount position positionConfidence positionZone rss tvoc vibration" "$types" "types"

# ranges from HALTIAN.md section 4, checked on the raw payloads
check_range() { # type lo hi
    local bad
    bad=$(q "SELECT count(*) FROM messages WHERE type='$1' AND NOT (json_extract(CAST(payload AS TEXT),'\$.value') BETWEEN $2 AND $3)")
    hkit_assert_eq 0 "$bad" "$1 outside $2..$3"
}
check_range ambientTemperature -40 85
check_range humidity 0 100
check_range barometricPressure 870 1084
check_range ambientLight 0 100000
check_range co2 400 5000
check_range tvoc 0 60000
check_range movementDetections 0 34
check_range batteryPercentage 0 100
check_range distance 0 4000
check_range positionConfidence 0 100
check_range occupantsCount 0 40
check_range occupancySeconds 0 3600

# battery every 6 h: 4 reports per battery device in a day
hkit_assert_eq "4" "$(q "SELECT DISTINCT n FROM (SELECT count(*) AS n FROM messages WHERE type='batteryPercentage' GROUP BY device_id)")" "battery reports per device per day"
# arrival after measurement, in arrival order
hkit_assert_eq 0 "$(q "SELECT count(*) FROM messages WHERE received_at_ns <= measured_at_ms*1000000")" "received after measured"
hkit_assert_eq 0 "$(q "SELECT count(*) FROM messages a JOIN messages b ON b.seq = a.seq + 1 WHERE b.received_at_ns <= a.received_at_ns")" "arrival order"
hkit_assert_eq 0 "$(q "SELECT count(*) FROM messages WHERE decode_error != 0")" "decodes cleanly"

# determinism: same seed, same bytes; another seed, other bytes
hgen --jsonl --devices "$mix" --duration 6h --seed 11 --shapes mixed --quiet | sha256sum >a.sum
hgen --jsonl --devices "$mix" --duration 6h --seed 11 --shapes mixed --quiet | sha256sum >b.sum
hgen --jsonl --devices "$mix" --duration 6h --seed 12 --shapes mixed --quiet | sha256sum >c.sum
hkit_assert_eq "$(cat a.sum)" "$(cat b.sum)" "same seed, same bytes"
[ "$(cat a.sum)" != "$(cat c.sum)" ] || hkit_fail "different seeds gave the same bytes"

# the recording holds exactly what --jsonl prints (payloads and topics), in the same order
hgen --jsonl --devices "$mix" --duration 1d --seed 3 --quiet >day.jsonl
hkit_assert_eq "$total" "$(wc -l <day.jsonl)" "jsonl line count"
hkit_assert_eq "$(jq -r '.topic + " " + .payload' day.jsonl | sha256sum)" \
    "$(sqlite3 day.db "SELECT t.name || ' ' || CAST(m.payload AS TEXT) FROM messages m JOIN topics t ON t.id = m.topic_id ORDER BY m.seq" | sha256sum)" \
    "recording and JSON lines agree"

# --count stops early; --start moves the timeline; Thingsee topics
hkit_assert_eq 25 "$(hgen --jsonl --count 25 --quiet | wc -l)" "--count"
first=$(hgen --jsonl --count 1 --quiet --start 2025-06-01T12:00:00Z | jq -r .payload | jq -r .measured_at)
hkit_assert_contains "$first" "2025-06-01T12:0" "--start"
hgen --jsonl --thingsee --duration 1h --quiet | jq -r .topic | cut -d/ -f1-5 | sort -u >thingsee.txt
hkit_assert_eq "cloudext/json/pr/fi/prfi00hkitgen" "$(cat thingsee.txt)" "thingsee topics"
echo ok

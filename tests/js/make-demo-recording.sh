#!/usr/bin/env bash
# Makes a demo-like recording for the report's tests and screenshots: three hours of generated
# traffic in two sessions with a gap of an hour between them, plus an imported session of
# hand-written lines with what a report must show: a decode error, duplicates and measured_at
# going backwards. Usage: make-demo-recording.sh OUT.db   (needs hgen and hcat on PATH)
set -euo pipefail
out=$(realpath -m "$1")
dir=$(mktemp -d "${TMPDIR:-/tmp}/hkit-demo-rec.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir" # relative names in the recording's meta (cut_sources)
hgen -o a.db --duration 2h --start 2026-02-02T08:00:00Z --seed 1 2>/dev/null
hgen -o b.db --duration 1h --start 2026-02-02T11:00:00Z --seed 1 --shapes mixed \
    --devices environment=20,presence=30,air=5,tag=10 2>/dev/null
T=haltian-iot/events/6f1c2e7a-4d0b-4e8f-9a3c-1b2d3e4f5a60/0c9e8d7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f/measurements
D=11111111-2222-4333-8444-555555555555
cat >c.jsonl <<J
{"received_at":"2026-02-02T11:20:00.100Z","topic":"$T/ambientTemperature/$D","payload":"{\"measured_at\":\"2026-02-02T11:20:00.000Z\",\"value\":21.5}"}
{"received_at":"2026-02-02T11:20:00.200Z","topic":"$T/ambientTemperature/$D","payload":"{\"measured_at\":\"2026-02-02T11:20:00.000Z\",\"value\":21.5}"}
{"received_at":"2026-02-02T11:20:00.300Z","topic":"$T/ambientTemperature/$D","payload":"{\"measured_at\":\"2026-02-02T11:20:00.000Z\",\"value\":21.5}"}
{"received_at":"2026-02-02T11:30:00.100Z","topic":"$T/ambientTemperature/$D","payload":"{\"measured_at\":\"2026-02-02T11:29:00.000Z\",\"value\":21.7}"}
{"received_at":"2026-02-02T11:30:05.100Z","topic":"$T/ambientTemperature/$D","payload":"{\"measured_at\":\"2026-02-02T11:25:00.000Z\",\"value\":21.6}"}
{"received_at":"2026-02-02T11:40:00.100Z","topic":"$T/humidity/$D","payload":"not json at all"}
J
hcat a.db b.db c.jsonl -o "$out" --force 2>/dev/null

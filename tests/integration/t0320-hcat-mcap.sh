#!/usr/bin/env bash
# hcat --format mcap, read back by an independent MCAP reader (@mcap/core, Foxglove's reference
# TypeScript library, installed by tests/js/setup.sh): a day of generated traffic (many chunks)
# merged with hand-written lines (binary, empty, not-JSON and JSON-without-measured_at
# payloads, a timestamp going back) gives every message with the right topic, log_time
# (received_at), publish_time (measured_at, else received_at) and bytes, through the stream
# reader and the indexed reader, with a seek. Argument errors are pinned.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
. "$HKIT_SOURCE_DIR/tests/js/setup.sh"
cd "$HKIT_TMP"

expect_usage() { # message args...
    local want=$1
    shift
    hkit_expect_exit 2 hcat "$@"
    hkit_assert_eq "$want" "$(head -1 "$HKIT_TMP/stderr")" "usage error for $*"
}

hgen -o day.db --duration 1d --shapes mixed --seed 3 2>/dev/null
T=haltian-iot/events/3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d/measurements
cat >extra.jsonl <<J
{"received_at":"2026-02-02T00:00:00.000000001Z","topic":"$T/co2/11111111-2222-4333-8444-555555555555","payload_b64":"AP8AgA=="}
{"received_at":"2026-02-02T00:00:00.500000000Z","topic":"x/empty","payload":""}
{"received_at":"2026-02-02T00:00:01.000000000Z","topic":"x/text","payload":"not json {"}
{"received_at":"2026-02-02T00:00:02.000000000Z","topic":"x/json","payload":"{\"value\":1}"}
{"received_at":"2026-02-02T00:00:03.000000000Z","topic":"$T/humidity/11111111-2222-4333-8444-555555555555","payload":"{\"measured_at\":\"2026-02-01T23:59:59.123Z\",\"value\":40}"}
{"received_at":"2026-02-02T00:00:04.000000000Z","topic":"$T/humidity/11111111-2222-4333-8444-555555555555","payload":"{\"measured_at\":\"2026-02-01T23:59:58.000Z\",\"value\":41}"}
{"received_at":"2026-02-02T00:00:05.000000000Z","topic":"x/invalid-utf8","payload_b64":"/v8="}
J

hkit_expect_exit 0 hcat day.db extra.jsonl --format mcap -o day.mcap
hkit_assert_contains "$(cat "$HKIT_TMP/stderr")" "messages to 'day.mcap'" "summary line"
[ -z "$(ls | grep hcat-tmp || true)" ] || hkit_fail "temporary file left behind"
hcat day.db extra.jsonl >expected.jsonl
out=$(node "$HKIT_JS/mcap-read.mjs" day.mcap expected.jsonl) || hkit_fail "independent reader: $out"
echo "$out"
hkit_assert_contains "$out" "mcap-read: ok" "independent reader"
chunks=$(echo "$out" | sed -n 's/.* \([0-9]*\) chunks.*/\1/p')
[ "$chunks" -gt 3 ] || hkit_fail "expected several chunks, got $chunks"

# a selection, and the existing-file rules of -o
hkit_expect_exit 1 hcat day.db --format mcap -o day.mcap
hkit_assert_contains "$(cat "$HKIT_TMP/stderr")" "file exists (use --force to replace it)" "no overwrite"
hkit_expect_exit 0 hcat day.db --type humidity --limit 100 --format mcap --force -o day.mcap
hcat day.db --type humidity --limit 100 >expected.jsonl
node "$HKIT_JS/mcap-read.mjs" day.mcap expected.jsonl >/dev/null || hkit_fail "selection read back"
# an empty selection is a valid, empty file
hkit_expect_exit 0 hcat day.db --type nosuchtype --format mcap -o empty.mcap
: >expected.jsonl
out=$(node "$HKIT_JS/mcap-read.mjs" empty.mcap expected.jsonl) || hkit_fail "empty file: $out"
hkit_assert_contains "$out" "ok: 0 messages, 0 channels, 0 chunks" "empty file read back"

expect_usage "hcat: --format mcap needs -o FILE" day.db --format mcap
expect_usage "hcat: invalid value 'png' for --format: expected jsonl, csv or mcap" day.db --format png
expect_usage "hcat: --format mcap cannot be combined with --info, --check, --decode or --note" day.db --format mcap -o x.mcap --note hi
echo "t0320 ok"

#!/usr/bin/env bash
# hverify --consumer's other sinks, with one case and one consumer (fixtures/consumers/
# sink_client.py) that writes each measurement somewhere else than stdout: --capture mqtt:FILTER
# (what it publishes; the private broker lets it write there), --capture file:PATH (a file,
# removed before the case, read as it grows), --probe CMD (sqlite3 reading the table it wrote,
# after it stopped). --url uses an existing Mosquitto instead of the private one.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

hkit_require_paho
C=$HKIT_SOURCE_DIR/fixtures/consumers
cd "$HKIT_TMP"
cp -r "$C/sink-cases" .
SINK="python3 $C/sink_client.py"
SELECT="select json_object('device', device, 'type', type, 'measured_at', measured_at, 'value', value) from readings order by rowid"

# --- what it publishes ------------------------------------------------------------------------
hkit_expect_exit 0 hverify -v --consumer "$SINK --publish out" --capture 'mqtt:out/#' sink-cases
hkit_assert_contains "$OUT" "5 inputs sent, 5 output lines" "mqtt capture"
# a consumer publishing elsewhere: nothing captured, every output missing, inputs named
hkit_expect_exit 3 hverify --consumer "$SINK --publish elsewhere" --capture 'mqtt:out/#' sink-cases
hkit_assert_contains "$OUT" "missing output (input 3: co2, device 9b2f6c1e-4d3a-4f8b-a1c2-3e4d5f6a7b8c" "nothing published"

# --- a file it writes (an old one is removed first) -------------------------------------------
echo '{"stale": "line"}' >out.jsonl
hkit_expect_exit 0 hverify --consumer "$SINK --file out.jsonl" --capture file:out.jsonl sink-cases
hkit_assert_eq 5 "$(wc -l <out.jsonl)" "file written afresh"

# --- a probe over the SQLite table it wrote ---------------------------------------------------
hkit_expect_exit 0 hverify -v --consumer "rm -f out.db; exec $SINK --db out.db" \
    --probe "sqlite3 out.db \"$SELECT\"" sink-cases
hkit_assert_contains "$OUT" "5 inputs sent, 5 output lines" "probe output"
hkit_expect_exit 1 hverify --consumer "$SINK" --probe "sqlite3 missing.db 'select * from x'" sink-cases
hkit_assert_contains "$OUT" "ERROR sink-cases/environment: --probe exited with status 1; its stderr: Error: in prepare, no such table: x" "probe failure"

# --- an existing broker (--url): hverify publishes there, the consumer gets its settings ------
hkit_broker_start "$HKIT_TMP/broker"
trap 'hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT
hkit_expect_exit 0 env HALTIAN_TLS=0 HALTIAN_API_KEY_TOKEN=unused hverify -v \
    --url "mqtt://127.0.0.1:$HKIT_BROKER_PORT" -u key-1 --integration-id int-1 \
    --ready '^subscribed$' --consumer "$SINK --publish out" --capture 'mqtt:out/#' sink-cases
hkit_assert_contains "$OUT" "5 inputs sent, 5 output lines" "url"

# --- argument errors --------------------------------------------------------------------------
hkit_expect_exit 2 hverify --url mqtt://127.0.0.1:1 --consumer true sink-cases
hkit_assert_eq "hverify: --url needs --ready REGEX: an existing broker does not show hverify when the consumer has subscribed
try 'hverify --help'" "$ERR" "url without ready"
hkit_expect_exit 2 hverify --capture stdout --consumer true sink-cases
hkit_assert_contains "$ERR" "invalid value 'stdout' for --capture: expected mqtt:FILTER or file:PATH" "bad sink"
hkit_expect_exit 2 hverify --capture 'mqtt:a/#/b' --consumer true sink-cases
hkit_assert_contains "$ERR" "invalid value 'mqtt:a/#/b' for --capture" "bad filter"
hkit_expect_exit 2 hverify --capture file:x --probe 'true' --consumer true sink-cases
hkit_assert_contains "$ERR" "--capture and --probe cannot be combined" "two sinks"
hkit_expect_exit 2 hverify --cafile ca.crt --consumer true sink-cases
hkit_assert_contains "$ERR" "need --url (or -h)" "connection option without url"
echo "t0509 ok"

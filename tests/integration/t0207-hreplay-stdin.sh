#!/usr/bin/env bash
# hreplay reading JSON lines from standard input ('-'): content, order, binary and empty payloads
# and retained flags reach an independent subscriber (mosquitto_sub -F) exactly; hgen piped
# straight in; selections on the stream, including RFC 3339 --since/--until; lines are replayed
# as they arrive, not after end of input; an empty stream, a bad line (it fails alone: exit 1, line number) and
# +offsets (which need the first message before reading: a usage error) are handled.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
PROD_PID=
trap 'hkit_capture_kill
    [ -z "$PROD_PID" ] || kill "$PROD_PID" 2>/dev/null || true
    hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT
hkit_broker_start "$HKIT_TMP/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
T=$HKIT_TMP

# expect JSONL [PYTHON-CONDITION] [LIMIT]: capture lines for the JSON lines that satisfy the
# condition (on o, the parsed line, and t, its received_at as text), computed without hkit.
expect() {
    python3 - "$1" "${2:-True}" "${3:-0}" <<'PY'
import json, sys, base64
cond, limit, n = sys.argv[2], int(sys.argv[3]), 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    t = o.get("received_at", "")
    if not eval(cond):
        continue
    p = base64.b64decode(o["payload_b64"]) if "payload_b64" in o else o.get("payload", "").encode()
    print(f'{o["topic"]} {1 if o.get("retain") else 0} {o.get("qos", 0)} {p.hex()}')
    n += 1
    if n == limit:
        break
PY
}

# --- a hand-made stream: binary, empty, retained, QoS 0 and 1, 50 ms apart ----------------------
cat >"$T/in.jsonl" <<'JSONL'
{"topic":"st/a/measurements/ambientTemperature/dev-a","qos":1,"retain":false,"received_at":"2026-02-05T10:30:00.000Z","payload":"{\"value\":21.5}"}
{"topic":"st/a/measurements/humidity/dev-b","qos":1,"retain":true,"received_at":"2026-02-05T10:30:00.050Z","payload_b64":"AAH/AA0K"}
{"topic":"st/a/measurements/co2/dev-c","qos":1,"retain":false,"received_at":"2026-02-05T10:30:00.100Z","payload":""}
{"topic":"st/a/notifications/deviceOffline","qos":0,"retain":false,"received_at":"2026-02-05T10:30:00.150Z","payload":"{\"device\":\"dev-c\"}"}
JSONL
hkit_capture_start "$T/c1" 'st/#'
timeout 30 hreplay --url "$URL" --report-json "$T/r1.json" - <"$T/in.jsonl" 2>"$T/e1" ||
    hkit_fail "hreplay -: $(cat "$T/e1")"
hkit_capture_stop "$T/c1"
expect "$T/in.jsonl" >"$T/w1"
diff "$T/w1" "$T/c1" || hkit_fail "stdin: capture differs from the input"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]));
assert r["input"] == "-" and r["sent"] == 4 and r["failed"] == 0, r' "$T/r1.json" || hkit_fail "report"

# --- hgen piped straight in (the same seed gives the same bytes, kept for the expectation) ------
hgen --quiet --jsonl --count 300 --seed 5 --devices environment=3,air=2 >"$T/gen.jsonl"
hkit_capture_start "$T/c2" 'haltian-iot/#'
hgen --quiet --jsonl --count 300 --seed 5 --devices environment=3,air=2 |
    timeout 30 hreplay --url "$URL" --max - 2>"$T/e2" || hkit_fail "hgen | hreplay -: $(cat "$T/e2")"
hkit_capture_stop "$T/c2"
expect "$T/gen.jsonl" >"$T/w2"
hkit_assert_eq 300 "$(wc -l <"$T/w2")" "hgen's stream"
diff "$T/w2" "$T/c2" || hkit_fail "hgen | hreplay -: capture differs"

# --- selections on the stream --------------------------------------------------------------------
hkit_capture_start "$T/c3" 'haltian-iot/#'
timeout 30 hreplay --url "$URL" --max --type humidity --limit 5 - <"$T/gen.jsonl" 2>/dev/null
hkit_capture_stop "$T/c3"
expect "$T/gen.jsonl" 'o["topic"].split("/")[5] == "humidity"' 5 >"$T/w3"
hkit_assert_eq 5 "$(wc -l <"$T/w3")" "humidity messages in hgen's stream"
diff "$T/w3" "$T/c3" || hkit_fail "--type humidity --limit 5 on stdin"

# absolute times need nothing but the message itself: since inclusive, until exclusive
since=$(sed -n 40p "$T/gen.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["received_at"])')
until=$(sed -n 90p "$T/gen.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["received_at"])')
hkit_capture_start "$T/c4" 'haltian-iot/#'
hkit_expect_exit 0 timeout 30 hreplay --url "$URL" --max --since "$since" --until "$until" - \
    <"$T/gen.jsonl"
hkit_capture_stop "$T/c4"
hkit_assert_eq "$(sed -n '40,89p' "$T/gen.jsonl" | python3 -c '
import sys, json, base64
for l in sys.stdin:
    o = json.loads(l)
    print(o["topic"], 1 if o.get("retain") else 0, o.get("qos", 0), o.get("payload", "").encode().hex())')" \
    "$(cat "$T/c4")" "--since/--until with RFC 3339 times on stdin"

# +offsets count from the first message, which has not been read yet: a usage error
hkit_expect_exit 2 hreplay --url "$URL" --since +1s - <"$T/gen.jsonl"
hkit_assert_eq "hreplay: --since/--until +DURATION need a file: standard input can be read only once
try 'hreplay --help'" "$ERR" "+offset on stdin"

# --- streaming: a line is replayed when it arrives, before the input ends -----------------------
mkfifo "$T/fifo"
hkit_capture_start "$T/c5" 'live/#' # (not st/#: a retained message from above sits there)
timeout 30 hreplay --url "$URL" --max - <"$T/fifo" 2>"$T/e5" &
PROD_PID=$!
exec 7>"$T/fifo"
echo '{"topic":"live/1","qos":1,"payload":"first"}' >&7
for i in $(seq 1 100); do
    grep -q '^live/1 ' "$T/c5.raw" && break
    [ "$i" -lt 100 ] || hkit_fail "the first line was not replayed before the input ended"
    hkit_sleep 0.05
done
echo '{"topic":"live/2","qos":1,"payload":"second"}' >&7
exec 7>&-
wait "$PROD_PID" || hkit_fail "hreplay on a pipe: $(cat "$T/e5")"
PROD_PID=
hkit_capture_stop "$T/c5"
hkit_assert_eq "live/1 0 1 $(printf first | xxd -p)
live/2 0 1 $(printf second | xxd -p)" "$(cat "$T/c5")" "streamed lines"

# --- an empty stream, and a bad line ---------------------------------------------------------------
hkit_expect_exit 0 timeout 30 hreplay --url "$URL" - </dev/null
hkit_assert_contains "$ERR" "sent 0 messages, 0 failed" "empty stdin"
hkit_capture_start "$T/c6" 'bad/#'
hkit_expect_exit 1 timeout 30 hreplay --url "$URL" - \
    < <(printf '{"topic":"bad/ok","qos":1,"payload":"x"}\nnot json\n{"topic":"bad/after","payload":"y"}\n')
hkit_capture_stop "$T/c6"
hkit_assert_contains "$ERR" "hreplay: '-' line 2: not valid JSON" "bad line on stdin"
hkit_assert_contains "$ERR" "sent 2 messages, 1 failed" "bad line: report"
hkit_assert_eq "bad/after 0 0 79 bad/ok 0 1 78" "$(sort "$T/c6" | tr '\n' ' ' | sed 's/ $//')" \
    "bad line: it fails alone, the lines around it are sent"
echo "t0207 ok"

#!/usr/bin/env bash
# hreplay with a recording (.db) as input, built by the real tools (hcat importing JSON lines with
# two sessions, hgen -o, hrecord capturing mosquitto_pub traffic). An independent subscriber
# (mosquitto_sub -V mqttv5 --retain-as-published -F '%t %r %q %x') must see exactly the selected
# messages (content, order within each QoS level, binary and empty payloads, retained flags), as
# the sqlite3 CLI reads them from the recording. The gap between two sessions is kept, and
# --max-gap caps it. Selections (--session, --type with an alias, --device, -t with wildcards, --since/--until
# with +offsets and RFC 3339 times, since inclusive and until exclusive, --limit) are made by
# tool_source, which hreplay and hcat share: a few go through the broker, the whole matrix runs
# through hcat without one (its rules are unit-tested in test_store and test_tool_source).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
REC_PID=
trap 'hkit_capture_kill
    [ -z "$REC_PID" ] || kill "$REC_PID" 2>/dev/null || true
    hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT
hkit_broker_start "$HKIT_TMP/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
T=$HKIT_TMP

# want DB PREFIX WHERE: the capture lines the selection must produce, read by sqlite3 (topics
# get PREFIX in front, as the --remap options below do; the QoS is $QOS, a column or a number).
QOS=qos
want() {
    sqlite3 "$1" "select '$2' || topic || ' ' || retain || ' ' || $QOS || ' ' || lower(hex(payload))
        from messages_v where $3 order by seq"
}
# in_order WANT GOT: the same lines, in the same order within each QoS level (the third field).
# MQTT orders messages only within one level: a QoS 2 message, forwarded after its PUBREL, may
# trail a QoS 0 or 1 message sent 50 ms after it on a loaded machine.
in_order() {
    diff <(sort -s -k3,3 "$1") <(sort -s -k3,3 "$2")
}
# check NAME DB WHERE hreplay-options...: replays DB (topics prefixed with NAME/), captures, and
# compares with the sqlite3 expectation.
check() {
    local name=$1 db=$2 where=$3
    shift 3
    hkit_capture_start "$T/$name" "$name/#"
    timeout 30 hreplay --url "$URL" --remap "haltian-iot/=$name/haltian-iot/" \
        --remap "cloudext/=$name/cloudext/" --report-json "$T/$name.json" "$@" "$db" \
        2>"$T/$name.stderr" || hkit_fail "hreplay $* $db: $(cat "$T/$name.stderr")"
    hkit_capture_stop "$T/$name"
    want "$db" "$name/" "$where" >"$T/$name.want"
    [ -s "$T/$name.want" ] || hkit_fail "$name: the selection expected by sqlite3 is empty"
    in_order "$T/$name.want" "$T/$name" || hkit_fail "$name: capture differs from the recording (hreplay $*)"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); n=int(sys.argv[2]);
assert r["sent"] == n and r["failed"] == 0 and r["reconnects"] == 0, (r, n)' \
        "$T/$name.json" "$(wc -l <"$T/$name.want")" || hkit_fail "$name: report"
}
# hcat_select NAME DB WHERE selection-options...: the same comparison for the messages hcat selects
# (no broker: the selection is tool_source's, as in hreplay)
hcat_select() {
    local name=$1 db=$2 where=$3
    shift 3
    hcat "$@" "$db" | python3 -c '
import base64, json, sys
for l in sys.stdin:
    o = json.loads(l)
    p = base64.b64decode(o["payload_b64"]) if "payload_b64" in o else o.get("payload", "").encode()
    print(sys.argv[1] + o["topic"], 1 if o.get("retain") else 0, o.get("qos", 0), p.hex())' \
        "$name/" >"$T/$name" || hkit_fail "hcat $* $db"
    want "$db" "$name/" "$where" >"$T/$name.want"
    [ -s "$T/$name.want" ] || hkit_fail "$name: the selection expected by sqlite3 is empty"
    diff "$T/$name.want" "$T/$name" || hkit_fail "$name: hcat's selection differs (hcat $*)"
}

# --- a recording with two sessions 3 s apart, imported from JSON lines by hcat ------------------
# 50 ms between messages inside a session, binary payloads (NUL, 0xff, CR/LF), an empty one, retained flags, a Thingsee topic.
H=haltian-iot/events/int-1/key-1
python3 - "$T/two.jsonl" "$H" <<'PY'
import json, sys, datetime
out, H = open(sys.argv[1], "w"), sys.argv[2]
S1 = 1770287400000000000  # 2026-02-05T10:30:00Z
def line(session, start, mono_ms, topic, qos, retain, **payload):
    t = start + mono_ms * 10**6
    at = datetime.datetime.fromtimestamp(t // 10**9, datetime.timezone.utc)
    o = {"session": session, "received_at": at.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % (t % 10**9),
         "session_started_at_ns": start, "mono_ns": mono_ms * 10**6, "topic": topic, "qos": qos,
         "retain": retain}
    o.update(payload)
    out.write(json.dumps(o) + "\n")
line(1, S1, 100, H + "/measurements/ambientTemperature/dev-a", 1, False,
     payload='{"measured_at":"2026-02-05T10:30:00.050Z","value":21.5}')
line(1, S1, 150, H + "/measurements/humidity/dev-b", 0, True, payload_b64="AAH/AA==")
line(1, S1, 200, H + "/measurements/co2/dev-c", 2, False, payload="")
line(1, S1, 250, H + "/measurements/ambientTemperature/dev-b", 1, True,
     payload='{"measured_at":"2026-02-05T10:30:00.200Z","value":22}')
line(1, S1, 300, H + "/notifications/deviceOffline", 1, False, payload='{"device":"dev-c"}')
line(1, S1, 350, "cloudext/json/pr/fi/grp/TSEN01ABC12345678/12100", 0, False,
     payload='{"tsmId":12100,"temp":21.3}')
S2 = S1 + 3 * 10**9
line(2, S2, 100, H + "/measurements/humidity/dev-a", 1, False,
     payload='{"measured_at":"2026-02-05T10:30:03.050Z","value":40}')
line(2, S2, 150, H + "/measurements/co2/dev-a", 1, False, payload_b64="AP9/Cg0g")
line(2, S2, 200, H + "/measurements/ambientTemperature/dev-c", 0, True,
     payload='{"measured_at":"2026-02-05T10:30:03.150Z","value":19.75}')
PY
hcat --quiet "$T/two.jsonl" -o "$T/two.db"
TWO=$T/two.db
q() { sqlite3 "$TWO" "$1"; }
# the recording really holds what the checks below rely on
hkit_assert_eq "2 6 3" "$(q "select count(*) from sessions") $(q "select count(*) from messages
    where session_id = 1") $(q "select count(*) from messages where session_id = 2")" "sessions"
hkit_assert_eq "3 1 2" "$(q "select count(*) from messages where retain = 1") $(q "select
    count(*) from messages where length(payload) = 0") $(q "select count(*) from messages
    where instr(payload, x'00') > 0")" "retained, empty and binary payloads"

# the whole recording, original timing: content, order, flags; the session gap is kept
check w1 "$TWO" 1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["duration_s"]
assert 3.05 <= d < 8, f"duration {d:.3f} s: the 2.75 s gap between sessions was not kept"' \
    "$T/w1.json" || hkit_fail "session gap"
hkit_assert_contains "$(cat "$T/w1.stderr")" "sent 9 messages, 0 failed" "report on stderr"

# --max-gap caps the gap between sessions like any other: 5x50 + 100 + 2x50 ms = 450 ms
check w2 "$TWO" 1 --max-gap 100ms
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["duration_s"]
assert 0.44 <= d < 2.0, f"duration {d:.3f} s with --max-gap 100ms"' "$T/w2.json" ||
    hkit_fail "--max-gap between sessions"

# selections through the broker, at full speed: all at QoS 1, since MQTT orders messages only
# within one QoS level (the recorded QoS levels are checked above)
QOS=1
check s4 "$TWO" "type = 'ambientTemperature' and device_id = 'dev-b'" \
    --type ambient_temperature --device dev-b --max -q 1
check s8 "$TWO" "seq in (select seq from messages where device_id = 'dev-a' order by seq limit 2)" \
    --device dev-a --limit 2 --max -q 1
# offsets count from the first message (10:30:00.100): since is inclusive, until exclusive, and
# messages sit exactly on both bounds
first=$(q "select min(received_at_ns) from messages")
hkit_assert_eq "1 1" "$(q "select count(*) from messages where received_at_ns = $first + 50000000")\
 $(q "select count(*) from messages where received_at_ns = $first + 200000000")" "messages on the bounds"
check t1 "$TWO" "received_at_ns >= $first + 50000000 and received_at_ns < $first + 200000000" \
    --since +50ms --until +200ms --max -q 1
hkit_assert_eq 3 "$(wc -l <"$T/t1")" "--since +50ms --until +200ms"
QOS=qos

# the whole matrix, selected by hcat
hcat_select s1 "$TWO" "session_id = 2" --session 2
hcat_select s2 "$TWO" "session_id in (1, 2)" --session 1 --session 2
hcat_select s3 "$TWO" "type = 'co2'" --type CO2
hcat_select s5 "$TWO" "topic like 'haltian-iot/events/%/measurements/%/dev-a'" \
    -t 'haltian-iot/events/+/+/measurements/+/dev-a'
hcat_select s6 "$TWO" "topic like 'cloudext/%' or topic like '%/notifications/%'" \
    -t 'cloudext/#' -t '+/+/+/+/notifications/#'
hcat_select s7 "$TWO" "seq <= 4" --limit 4
hcat_select t2 "$TWO" "received_at_ns >= 1770287403000000000" --since 2026-02-05T10:30:03Z
hcat_select t3 "$TWO" "received_at_ns < $first + 3100000000" --until +3.1s
hkit_assert_eq 8 "$(wc -l <"$T/t3")" "--until +3.1s (the last message sits on the bound)"
hcat_select t4 "$TWO" "received_at_ns >= $first + 250000000 and session_id = 1" --since +250ms \
    --session 1

# a selection matching nothing replays nothing, successfully
hkit_expect_exit 0 timeout 30 hreplay --url "$URL" --device nobody "$TWO"
hkit_assert_contains "$ERR" "sent 0 messages, 0 failed" "empty selection"

# --- a synthetic recording from hgen: QoS 1 throughout, so --max keeps the order ---------------
hgen --quiet -o "$T/gen.db" --devices environment=2,air=1,presence=1 --duration 10m --seed 3
GEN=$T/gen.db
check g1 "$GEN" 1 --max
dev=$(sqlite3 "$GEN" "select device_id from messages where type = 'ambientTemperature'
    group by device_id order by count(*) desc limit 1")
check g2 "$GEN" "type = 'ambientTemperature' and device_id = '$dev'" --max --type ambient_temperature \
    --device "$dev"
hcat_select g3 "$GEN" "type in ('co2', 'humidity')" --type CO2 --type humidity
hcat_select g4 "$GEN" "topic like '%/$dev'" -t "haltian-iot/events/+/+/+/+/$dev"
hcat_select g5 "$GEN" "seq <= 7" --limit 7
hcat_select g6 "$GEN" "seq in (select seq from messages where kind = 'measurements' and
    type = 'humidity' order by seq limit 3)" --kind measurements --type humidity --limit 3
# offsets on a 10-minute recording: the minutes between 2 and 5
gfirst=$(sqlite3 "$GEN" "select min(received_at_ns) from messages")
hcat_select g7 "$GEN" "received_at_ns >= $gfirst + 120000000000 and received_at_ns < $gfirst + 300000000000" \
    --since +2m --until +5m

# --- a recording captured by hrecord from mosquitto_pub traffic --------------------------------
# a retained message stored before hrecord subscribes arrives with the retain flag set; then
# text, binary, empty and QoS 0/1/2 messages, published one after the other
mosquitto_pub -p "$HKIT_BROKER_PORT" -t src/cfg -q 1 -r -m '{"interval":60}'
printf '\000\001\377\376binary\r\n\000' >"$T/bin"
timeout 30 hrecord --url "$URL" -t 'src/#' -q 2 -o "$T/cap.db" --count 6 --quiet &
REC_PID=$!
# (sqlite3 would create the file if it did not exist yet)
hkit_wait_for 200 0.05 "hrecord to store the retained message" \
    "[ -f '$T/cap.db' ] && [ \"\$(sqlite3 '$T/cap.db' 'select count(*) from messages' 2>/dev/null)\" = 1 ]"
mosquitto_pub -p "$HKIT_BROKER_PORT" -t src/a/text -q 1 -m 'hello world'
mosquitto_pub -p "$HKIT_BROKER_PORT" -t src/b/bin -q 1 -f "$T/bin"
mosquitto_pub -p "$HKIT_BROKER_PORT" -t src/c/empty -q 1 -n
mosquitto_pub -p "$HKIT_BROKER_PORT" -t src/d/q0 -q 0 -m zero
mosquitto_pub -p "$HKIT_BROKER_PORT" -t src/e/q2 -q 2 -m two
wait "$REC_PID" || hkit_fail "hrecord failed"
REC_PID=
CAP=$T/cap.db
hkit_assert_eq "6 1 1" "$(sqlite3 "$CAP" "select count(*), sum(retain), sum(length(payload) = 0)
    from messages" | tr '|' ' ')" "hrecord's recording"
hkit_capture_start "$T/h1" 'h1/#'
timeout 30 hreplay --url "$URL" --remap src/=h1/ "$CAP" 2>"$T/h1.stderr" ||
    hkit_fail "hreplay of hrecord's recording: $(cat "$T/h1.stderr")"
hkit_capture_stop "$T/h1"
sqlite3 "$CAP" "select 'h1/' || substr(topic, 5) || ' ' || retain || ' ' || qos || ' ' ||
    lower(hex(payload)) from messages_v order by seq" >"$T/h1.want"
in_order "$T/h1.want" "$T/h1" || hkit_fail "replay of hrecord's recording differs"
grep -qx "h1/b/bin 0 1 $(xxd -p "$T/bin" | tr -d '\n')" "$T/h1" || hkit_fail "binary payload"
echo "t0203 ok"

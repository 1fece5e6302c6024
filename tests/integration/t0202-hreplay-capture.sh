#!/usr/bin/env bash
# hreplay against a real broker, checked by an independent subscriber (mosquitto_sub -F with hex
# payloads, QoS and retain-as-published flags): content and order equal the selection, including
# binary and empty payloads and retained flags; selection filters; --remap, --integration-id,
# --api-key-id; --fanout (device count x K, ids stable across runs); --shard (union = whole, no
# overlap); --connections; --loop counts; --rate/--speed with generous wall-clock bounds; the
# JSON report.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
T=$HKIT_TMP

# A small recording as JSON lines: 3 devices, text, binary (NUL, 0xff) and empty payloads,
# QoS 0/1/2, retained flags, a legacy Thingsee topic and a topic naming no device.
H=haltian-iot/events/int-1/key-1
cat >"$T/rec.jsonl" <<JSONL
{"topic":"$H/measurements/ambientTemperature/dev-a","qos":1,"retain":false,"received_at":"2026-02-05T10:30:00.000Z","payload":"{\"measured_at\":\"2026-02-05T10:29:59.500Z\",\"value\":21.5}"}
{"topic":"$H/measurements/humidity/dev-b","qos":0,"retain":true,"received_at":"2026-02-05T10:30:00.050Z","payload_b64":"AAH/AA=="}
{"topic":"$H/measurements/co2/dev-c","qos":2,"retain":false,"received_at":"2026-02-05T10:30:00.100Z","payload":""}
{"topic":"$H/measurements/ambientTemperature/dev-b","qos":1,"retain":true,"received_at":"2026-02-05T10:30:00.150Z","payload":"{\"measured_at\":\"2026-02-05T10:30:00Z\",\"value\":22}"}
{"topic":"$H/notifications/deviceOffline","qos":1,"retain":false,"received_at":"2026-02-05T10:30:00.200Z","payload":"{\"device\":\"dev-c\"}"}
{"topic":"cloudext/json/pr/fi/grp/TSEN01ABC12345678/12100","qos":0,"retain":false,"received_at":"2026-02-05T10:30:00.250Z","payload":"{\"tsmId\":12100,\"temp\":21.3}"}
{"topic":"$H/measurements/humidity/dev-a","qos":1,"retain":false,"received_at":"2026-02-05T10:30:00.300Z","payload":"{\"measured_at\":\"2026-02-05T10:30:00.3Z\",\"value\":40}"}
JSONL
N=7

# expected capture lines "topic retain qos hexpayload" from the JSON lines (independent of hreplay)
expect() { # jsonl [topic-sed-expr]
    python3 - "$1" "${2:-}" <<'PY'
import json, sys, base64, re
expr = sys.argv[2]
for line in open(sys.argv[1]):
    o = json.loads(line)
    p = base64.b64decode(o["payload_b64"]) if "payload_b64" in o else o.get("payload", "").encode()
    t = o["topic"]
    if expr:
        a, b = expr.split("=", 1)
        if t.startswith(a):
            t = b + t[len(a):]
    print(f'{t} {1 if o["retain"] else 0} {o["qos"]} {p.hex()}')
PY
}


# --- 1. exact content, order, flags ---------------------------------------------------------
hkit_capture_start "$T/c1" 'r1/#'
timeout 30 hreplay --url "$URL" --remap haltian-iot/=r1/haltian-iot/ \
    --remap cloudext/=r1/cloudext/ --report-json "$T/rep1.json" "$T/rec.jsonl" 2>"$T/err1"
hkit_capture_stop "$T/c1"
expect "$T/rec.jsonl" haltian-iot/=r1/haltian-iot/ | sed 's#^cloudext/#r1/cloudext/#' >"$T/want1"
diff "$T/want1" "$T/c1" || hkit_fail "capture differs from the recording"
hkit_assert_contains "$(cat "$T/err1")" "sent $N messages, 0 failed" "report"
python3 - "$T/rep1.json" <<'PY' || hkit_fail "report json"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["sent"] == 7 and r["failed"] == 0 and r["mode"] == "original", r
assert r["lateness_us"]["count"] == 7 and r["lateness_us"]["max"] >= r["lateness_us"]["p50"], r
assert r["schedule_kept"] in (True, False)
PY

# --- 2. qos/retain overrides and selection filters ------------------------------------------
hkit_capture_start "$T/c2" 'r2/#'
timeout 30 hreplay --url "$URL" --max -q 1 --retain never --remap haltian-iot/=r2/ \
    --type humidity --device dev-a --device dev-b "$T/rec.jsonl" 2>/dev/null
hkit_capture_stop "$T/c2"
printf '%s\n' "r2/events/int-1/key-1/measurements/humidity/dev-b 0 1 0001ff00" \
    "r2/events/int-1/key-1/measurements/humidity/dev-a 0 1 $(printf '%s' '{"measured_at":"2026-02-05T10:30:00.3Z","value":40}' | xxd -p | tr -d '\n')" >"$T/want2"
diff "$T/want2" "$T/c2" || hkit_fail "filters/overrides"

hkit_capture_start "$T/c2b" 'r2b/#'
timeout 30 hreplay --url "$URL" --max --remap haltian-iot/=r2b/ -t '+/events/+/+/notifications/#' \
    --limit 1 "$T/rec.jsonl" 2>/dev/null
timeout 30 hreplay --url "$URL" --max --remap haltian-iot/=r2b/ --since +100ms --until +200ms \
    "$T/rec.jsonl" 2>/dev/null
hkit_capture_stop "$T/c2b"
# (sorted: the broker forwards a QoS 2 message only after its PUBREL, so it may trail QoS 1
# messages sent after it; MQTT orders messages per QoS level)
hkit_assert_eq "r2b/events/int-1/key-1/measurements/ambientTemperature/dev-b
r2b/events/int-1/key-1/measurements/co2/dev-c
r2b/events/int-1/key-1/notifications/deviceOffline" "$(cut -d' ' -f1 "$T/c2b" | sort)" "-t/--limit/--since/--until"

# --- 3. integration id and api key id rewrite -----------------------------------------------
hkit_capture_start "$T/c3" 'haltian-iot/events/int-2/#'
timeout 30 hreplay --url "$URL" --max --integration-id int-2 --api-key-id key-2 --retain never \
    "$T/rec.jsonl" 2>/dev/null
hkit_capture_stop "$T/c3"
expect "$T/rec.jsonl" | grep '^haltian-iot' | sed 's#^haltian-iot/events/int-1/key-1/#haltian-iot/events/int-2/key-2/#; s/^\([^ ]*\) 1 /\1 0 /' >"$T/want3"
diff <(sort "$T/want3") <(sort "$T/c3") || hkit_fail "integration/api key rewrite"

# --- 4. fanout: devices x K, stable ids, per-device order ----------------------------------
for run in a b; do
    hkit_capture_start "$T/c4$run" "r4$run/#"
    timeout 30 hreplay --url "$URL" --max --fanout 4 --remap "haltian-iot/=r4$run/" --remap cloudext/=r4c/ \
        -t 'haltian-iot/+/+/+/measurements/#' "$T/rec.jsonl" 2>/dev/null
    hkit_capture_stop "$T/c4$run"
done
diff <(sed 's/^r4a//' "$T/c4a" | sort) <(sed 's/^r4b//' "$T/c4b" | sort) || hkit_fail "fanout ids differ between runs"
hkit_assert_eq 20 "$(wc -l <"$T/c4a")" "fanout message count (5 x 4)"
hkit_assert_eq 12 "$(awk '{n=split($1,a,"/"); print a[n]}' "$T/c4a" | sort -u | wc -l)" "fanout device count (3 x 4)"
grep -q '/dev-a ' "$T/c4a" || hkit_fail "copy 0 keeps the real id"
awk '{n=split($1,a,"/"); print a[n]}' "$T/c4a" | grep -v '^dev-' | grep -Eqv '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' &&
    hkit_fail "derived ids are not UUID-shaped"

# --- 5. shards: union = whole, no overlap; several connections -----------------------------
hkit_capture_start "$T/c5" 'r5/#'
for k in 1 2 3; do
    timeout 30 hreplay --url "$URL" --max --fanout 5 --shard "$k/3" --connections 3 -q 1 \
        --remap haltian-iot/=r5/ --remap cloudext/=r5/ "$T/rec.jsonl" 2>"$T/err5.$k"
done
hkit_capture_stop "$T/c5"
hkit_capture_start "$T/c5all" 'r5all/#'
timeout 30 hreplay --url "$URL" --max --fanout 5 -q 1 --remap haltian-iot/=r5all/ \
    --remap cloudext/=r5all/ "$T/rec.jsonl" 2>/dev/null
hkit_capture_stop "$T/c5all"
sed -i 's#^r5all/#r5/#' "$T/c5all"
hkit_assert_eq "$(cut -d' ' -f1,4 "$T/c5all" | sort | uniq -c | sort)" "$(cut -d' ' -f1,4 "$T/c5" | sort | uniq -c | sort)" "union of shards"
hkit_assert_eq "$(wc -l <"$T/c5all")" "$(cut -d' ' -f1,4 "$T/c5" | sort | uniq | wc -l)" "no overlap"
# per-device order kept across connections: each device's messages in recording order
for d in dev-a dev-b; do
    hkit_assert_eq "$(grep "/$d " "$T/c5all" | cut -d' ' -f4)" "$(grep "/$d " "$T/c5" | cut -d' ' -f4)" "order of $d"
done

# --- 6. loops ---------------------------------------------------------------------------------
hkit_capture_start "$T/c6" 'r6/#'
timeout 30 hreplay --url "$URL" --rate 200 --loop 3 --remap haltian-iot/=r6/ --remap cloudext/=r6/ \
    --report-json "$T/rep6.json" "$T/rec.jsonl" 2>/dev/null
hkit_capture_stop "$T/c6"
hkit_assert_eq $((3 * N)) "$(wc -l <"$T/c6")" "--loop 3"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["passes"]==3 and r["sent"]==21, r' "$T/rep6.json" || hkit_fail "loop report"

# --- 7. timing, generous bounds: 7 messages over 300 ms recorded ------------------------------
# duration_s in the report runs from the schedule's start to the last acknowledgement (connection
# setup excluded: paho's connect alone takes ~100-300 ms here)
duration_between() { # min max options...
    local min=$1 max=$2
    shift 2
    timeout 30 hreplay --url "$URL" --remap haltian-iot/=r7/ --report-json "$T/rep7.json" "$@" \
        "$T/rec.jsonl" 2>/dev/null
    python3 - "$T/rep7.json" "$min" "$max" "$*" <<'PY' || hkit_fail "timing of hreplay $*"
import json, sys
d = json.load(open(sys.argv[1]))["duration_s"]
if not float(sys.argv[2]) <= d < float(sys.argv[3]):
    sys.exit(f"hreplay {sys.argv[4]}: duration {d:.3f} s not in [{sys.argv[2]}, {sys.argv[3]})")
PY
}
duration_between 0.29 2.0            # original: 300 ms
duration_between 0.29 2.0 --spin 0   # the same, sleeping all the way
duration_between 0.59 3.0 --speed 0.5 # 600 ms
duration_between 0.029 1.5 --speed 10 # 30 ms
duration_between 0.29 2.0 --rate 20   # 6 intervals of 50 ms
duration_between 0.059 0.25 --max-gap 10ms # 6 gaps capped at 10 ms
duration_between 0.59 3.0 --loop 2   # 300 + 50 (mean interval) + 300 ms

# --- 8. rebase-time changes only the timestamps ----------------------------------------------
hkit_capture_start "$T/c8" 'r8/#'
timeout 30 hreplay --url "$URL" --max --rebase-time --remap haltian-iot/=r8/ -t '+/+/+/+/+/ambientTemperature/dev-a' \
    "$T/rec.jsonl" 2>/dev/null
hkit_capture_stop "$T/c8"
got=$(cut -d' ' -f4 "$T/c8" | xxd -r -p)
case $got in
'{"measured_at":"'????-??-??T??:??:??.???Z'","value":21.5}') ;;
*) hkit_fail "rebased payload: $got" ;;
esac
[ "${got:16:4}" != 2026 ] || [ "${got:16:10}" != 2026-02-05 ] || hkit_fail "measured_at not rebased: $got"
echo "t0202 ok"

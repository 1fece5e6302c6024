#!/usr/bin/env bash
# hcat imports real `mosquitto_sub -F '%j'` output captured here from a private broker fed by
# mosquitto_pub; redaction leaves no original id anywhere in the output file's raw bytes (nor its
# -wal), is consistent across files with one key and differs with another; masks set members to
# null. Argument and input errors are pinned: message and exit status.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

I=3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44
K=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
D1=9d1e2f3a-4b5c-4d6e-8f70-a1b2c3d4e5f6
D2=77777777-2222-4333-8444-555555555555
T="haltian-iot/events/$I/$K/measurements"
T2="haltian-iot/events/$I/$K"

# --- import of a real mosquitto_sub -F '%j' capture --------------------------------------------
hkit_broker_start "$HKIT_TMP/broker"
timeout 20 mosquitto_sub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t 'haltian-iot/#' -F '%j' -C 3 -q 1 >cap.jsonl &
sub=$!
i=0
# mosquitto_sub may subscribe after the first publish: publish until it has its three messages
while kill -0 $sub 2>/dev/null && [ $i -lt 100 ]; do
    i=$((i + 1))
    mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -q 1 -t "$T/ambientTemperature/$D1" \
        -m "{\"measured_at\":\"2026-02-05T10:30:45.123Z\",\"value\":$i.5}"
    hkit_sleep 0.05
done
wait $sub || hkit_fail "mosquitto_sub failed"
hkit_assert_eq 3 "$(wc -l <cap.jsonl)" "captured lines"
hkit_expect_exit 0 hcat cap.jsonl -o cap.db
hkit_assert_eq 3 "$(sqlite3 cap.db 'select count(*) from messages')" "imported"
# payload bytes as mosquitto_sub printed them, topic, qos
hkit_assert_eq "$(jq -r .payload cap.jsonl | head -1)" "$(sqlite3 cap.db 'select cast(payload as text) from messages where seq = 1')" "payload bytes"
hkit_assert_eq "$T/ambientTemperature/$D1" "$(sqlite3 cap.db 'select topic from messages_v where seq = 1')" "topic"
hkit_assert_eq "1" "$(sqlite3 cap.db 'select qos from messages where seq = 1')" "qos"
# the "tst" arrival time (microseconds, "Z+0000") becomes received_at_ns
tst=$(jq -r .tst cap.jsonl | head -1 | sed 's/Z+0000$/Z/')
hkit_assert_eq "$(date -u -d "$tst" +%s)" "$(sqlite3 cap.db 'select received_at_ns / 1000000000 from messages where seq = 1')" "tst -> received_at"
hkit_assert_eq "ambientTemperature" "$(sqlite3 cap.db 'select type from messages where seq = 1')" "decoded index on import"
hkit_broker_stop

# --- redaction ---------------------------------------------------------------------------------
cat >f1.jsonl <<J
{"received_at":"2026-02-05T10:30:00Z","topic":"$T/ambientTemperature/$D1","payload":"{\"measured_at\":\"2026-02-05T10:30:00.000Z\",\"value\":23.5}"}
{"received_at":"2026-02-05T10:30:01Z","topic":"$T/rss/$D1","payload":"{\"measured_at\":\"2026-02-05T10:30:01Z\",\"value\":{\"rss\":-70,\"sourceDeviceId\":\"$D2\"}}"}
{"received_at":"2026-02-05T10:30:02Z","topic":"$T/position/$D2","payload":"{\"measured_at\":\"2026-02-05T10:30:02Z\",\"value\":{\"position_global\":{\"type\":\"Point\",\"coordinates\":[24.9384,60.1699]},\"accuracy\":2.5,\"space_id\":\"55a0a3d0-84b6-4ace-b131-0b2420053e91\"}}"}
{"received_at":"2026-02-05T10:30:03Z","topic":"cloudext/json/pr/fi/prfi00samplegroup/TSEN01ABC12345678/12100","payload":"{\"tsmId\":12100,\"temp\":21.3,\"tsmTuid\":\"TSEN01ABC12345678\",\"tsmGw\":\"TSGW06ABC12345678\",\"deploymentGroupId\":\"prfi00samplegroup\"}"}
{"received_at":"2026-02-05T10:30:04Z","topic":"$T2/payloads/wirepas/$D1","payload":"{\"received_at\":\"2026-02-05T10:30:04.000Z\",\"value\":{\"mqtt_topic\":\"haltian-iot/wirepas/gw-event/received_data/BS225000789/sink1/7156763/21/21\",\"payload\":\"CgYIARAB\"}}"}
J
cat >f2.jsonl <<J
{"received_at":"2026-02-06T10:30:00Z","topic":"$T/humidity/$D1","payload":"{\"value\":40}"}
J
hkit_expect_exit 0 hcat f1.jsonl -o f1.db --note "site $D1 at customer"
head -c 32 /dev/urandom >key1
head -c 32 /dev/urandom >key2
hkit_expect_exit 0 hcat f1.db --redact-key key1 --mask value.space_id --mask value.position_global -o r1.db
case $ERR in *warning*) hkit_fail "unexpected warning with a key file: $ERR" ;; esac
for id in "$I" "$K" "$D1" "$D2" TSEN01ABC12345678 TSGW06ABC12345678 prfi00samplegroup 55a0a3d0 \
    BS225000789 7156763; do
    for f in r1.db r1.db-wal; do
        [ -f "$f" ] || continue
        hkit_assert_eq 0 "$(grep -c -a -- "$id" "$f" || true)" "'$id' left in $f"
    done
done
hkit_assert_eq 5 "$(sqlite3 r1.db 'select count(*) from messages')" "redacted rows"
p1=$(sqlite3 r1.db "select device_id from messages where seq = 1")
[[ $p1 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] || hkit_fail "pseudonym '$p1' is not UUID v4 shaped"
hkit_assert_eq "$p1" "$(sqlite3 r1.db "select device_id from messages where seq = 2")" "same device, same pseudonym"
p2=$(sqlite3 r1.db "select device_id from messages where seq = 3")
hkit_assert_contains "$(sqlite3 r1.db 'select cast(payload as text) from messages where seq = 2')" "\"sourceDeviceId\":\"$p2\"" "payload id replaced consistently"
hkit_assert_contains "$(sqlite3 r1.db 'select cast(payload as text) from messages where seq = 3')" '"position_global":null,"accuracy":2.5,"space_id":null' "masks"
hkit_assert_contains "$(sqlite3 r1.db "select value from meta where key = 'note'")" "site $p1 at customer" "note redacted"
hkit_assert_contains "$(sqlite3 r1.db "select value from meta where key = 'redacted'")" "masked: value.space_id, value.position_global" "meta says what was done"
hkit_assert_eq 0 "$(sqlite3 r1.db 'select count(*) from meta where key = "client_id"')" "client id dropped"
# the same key across files: the same pseudonym; another key: another one
hkit_expect_exit 0 hcat f2.jsonl --redact-key key1 -o r2.db
hkit_assert_eq "$p1" "$(sqlite3 r2.db 'select device_id from messages')" "consistent across files"
hkit_expect_exit 0 hcat f2.jsonl --redact-key key2 -o r3.db
[ "$p1" != "$(sqlite3 r3.db 'select device_id from messages')" ] || hkit_fail "another key gave the same pseudonym"
# without a key: a random one, and hcat says so
hkit_expect_exit 0 hcat f2.jsonl --redact
hkit_assert_contains "$ERR" "warning: redacting with a random key used for this run only" "random key warning"
hkit_assert_eq 0 "$(printf '%s' "$OUT" | grep -c "$D1" || true)" "printed output redacted"

# --- errors: one line, exit status ----------------------------------------------------------------
hkit_expect_exit 1 hcat f1.jsonl -o f1.db
hkit_assert_eq "hcat: cannot write 'f1.db': file exists (use --force to replace it)" "$ERR" "existing output"
hkit_expect_exit 0 hcat f2.jsonl -o f1.db --force
hkit_assert_eq 1 "$(sqlite3 f1.db 'select count(*) from messages')" "--force replaced"
hkit_expect_exit 1 hcat missing.db
hkit_assert_eq "hcat: cannot open 'missing.db': No such file or directory" "$ERR" "missing input"
printf '\x89PNG\r\n\x1a\n0000000000' >pic.png
hkit_expect_exit 1 hcat pic.png
hkit_assert_eq "hcat: 'pic.png' is neither an hkit recording nor JSON lines" "$ERR" "foreign input"
sqlite3 other.db 'create table t(x)'
hkit_expect_exit 1 hcat other.db
hkit_assert_contains "$ERR" "hcat: 'other.db' is not an hkit recording" "foreign sqlite"
head -c 3000 cap.db >trunc.db
hkit_expect_exit 1 hcat trunc.db
hkit_assert_contains "$ERR" "hcat: 'trunc.db' is damaged" "truncated recording"
printf '%s\n{"topic":"a","payload":"x"}\nnot json\n{"payload":"y"}\n{"topic":"b"}\n' '{"topic":"z"}' >bad.jsonl
hkit_expect_exit 1 hcat bad.jsonl -o bad.db
hkit_assert_eq "hcat: 'bad.jsonl' line 3: not valid JSON" "$ERR" "bad line"
[ ! -e bad.db ] || hkit_fail "a failed import left bad.db behind"
hkit_expect_exit 0 hcat bad.jsonl --skip-bad -o bad.db
hkit_assert_eq "hcat: warning: skipped 2 bad JSON lines (--skip-bad)" "$(printf '%s\n' "$ERR" | grep skipped)" "skip-bad count"
hkit_assert_eq 3 "$(sqlite3 bad.db 'select count(*) from messages')" "skip-bad kept the rest"
mkdir ro && chmod 555 ro
if [ "$(id -u)" != 0 ]; then
    hkit_expect_exit 1 hcat f2.jsonl -o ro/x.db
    hkit_assert_eq "hcat: cannot write 'ro/x.db': Permission denied" "$ERR" "unwritable output"
fi
printf 'short' >shortkey
hkit_expect_exit 1 hcat f2.jsonl --redact-key shortkey
hkit_assert_contains "$ERR" "hcat: redaction key 'shortkey' is too short: 5 bytes, at least 16 needed" "short key"
# usage errors: exit 2
hkit_expect_exit 2 hcat
hkit_assert_eq "hcat: no input file given
try 'hcat --help'" "$ERR" "no input"
hkit_expect_exit 2 hcat --format xml f2.jsonl
hkit_assert_eq "hcat: invalid value 'xml' for --format: expected jsonl, csv or mcap
try 'hcat --help'" "$ERR" "bad format"
hkit_expect_exit 2 hcat --json f2.jsonl
hkit_assert_eq "hcat: --json only applies to --info
try 'hcat --help'" "$ERR" "json without info"
hkit_expect_exit 2 hcat --mask 'a..b' f2.jsonl
hkit_assert_eq "hcat: invalid value 'a..b' for --mask: expected member names joined by dots (value.space_id)
try 'hcat --help'" "$ERR" "bad mask"
hkit_expect_exit 2 hcat --since yesterday f2.jsonl
hkit_assert_contains "$ERR" "hcat: invalid value 'yesterday' for --since" "bad since"
hkit_expect_exit 2 hcat --bogus f2.jsonl
hkit_assert_eq "hcat: unknown option '--bogus'
try 'hcat --help'" "$ERR" "unknown option"
hkit_expect_exit 2 hcat f2.jsonl -o f2.jsonl
hkit_assert_eq "hcat: output 'f2.jsonl' is also an input
try 'hcat --help'" "$ERR" "output is input"
hkit_expect_exit 0 hcat --help
hkit_assert_contains "$OUT" "Usage: hcat" "help"
echo ok

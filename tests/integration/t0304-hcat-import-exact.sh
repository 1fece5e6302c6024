#!/usr/bin/env bash
# Imports keep what they were given (issue 11 items 2-5, 19, 20; issue 10 item 11): real
# `mosquitto_sub -F '%j'` output from a machine not on UTC, payload numbers byte for byte, U+0000
# in payloads, refused NUL and non-UTF-8 topics, messages that name the real cause, and a stored
# non-UTF-8 topic printed as valid JSON.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

# --- mosquitto_sub in a +05:30 zone ------------------------------------------------------------
hkit_broker_start "$HKIT_TMP/broker"
before=$(date -u +%s)
TZ=Asia/Kolkata timeout 20 mosquitto_sub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t 'tz/#' -F '%j' -C 1 >tz.jsonl &
sub=$!
i=0
# mosquitto_sub may subscribe after a publish: publish until it has its message (bounded)
while kill -0 $sub 2>/dev/null && [ $i -lt 100 ]; do
    i=$((i + 1))
    mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t tz/a -m '{"v":1}'
    hkit_sleep 0.05
done
wait $sub || hkit_fail "mosquitto_sub failed"
after=$(date -u +%s)
hkit_broker_stop
hkit_assert_contains "$(jq -r .tst tz.jsonl)" "Z+0530" "mosquitto_sub wrote its local offset"
hkit_expect_exit 0 hcat tz.jsonl -o tz.db
t=$(sqlite3 tz.db 'select received_at_ns / 1000000000 from messages')
[ "$t" -ge "$before" ] && [ "$t" -le "$after" ] || hkit_fail "tst converted to $t, not within $before..$after"

# --- numbers as written, U+0000 kept -----------------------------------------------------------
printf '%s\n' '{"topic":"a/b","payload":{"v":9007199254740993, "w":0.30000000000000004,"z":1e400,"f":1.0}}' \
    '{"topic":"a/c","payload":"a\u0000b"}' >exact.jsonl
hkit_expect_exit 0 hcat exact.jsonl -o exact.db
hkit_assert_eq '{"v":9007199254740993,"w":0.30000000000000004,"z":1e400,"f":1.0}' \
    "$(sqlite3 exact.db 'select cast(payload as text) from messages where seq = 1')" "exact numbers"
hkit_assert_eq 610062 "$(sqlite3 exact.db 'select hex(payload) from messages where seq = 2')" "NUL kept"
hkit_expect_exit 0 hcat exact.db
hkit_assert_contains "$OUT" '"payload_b64":"YQBi"' "NUL exported as base64"

# --- refused lines say why, with their line number ----------------------------------------------
printf '{"topic":"a\\u0000b"}\n' >nultopic.jsonl
hkit_expect_exit 1 hcat nultopic.jsonl -o x.db
hkit_assert_eq "hcat: 'nultopic.jsonl' line 1: \"topic\" contains U+0000, which MQTT does not allow" "$ERR" "NUL topic"
printf '{"topic":"a"}\n{"topic":"b","payload":"x"}\x00tail\n' >rawnul.jsonl
hkit_expect_exit 1 hcat rawnul.jsonl -o x.db
hkit_assert_eq "hcat: 'rawnul.jsonl' line 2: raw NUL byte at column 28 (inside a string write \\u0000)" "$ERR" "raw NUL"
printf '{"topic":"a/\xff/b","payload":"x"}\n{"topic":"ok"}\n' >utf8.jsonl
hkit_expect_exit 1 hcat utf8.jsonl -o x.db
hkit_assert_eq "hcat: 'utf8.jsonl' line 1: \"topic\" is not valid UTF-8, which MQTT requires" "$ERR" "bad UTF-8"
hkit_expect_exit 0 hcat utf8.jsonl --skip-bad -o utf8.db
hkit_assert_eq 1 "$(sqlite3 utf8.db 'select count(*) from messages')" "--skip-bad skipped it"
printf '{"topic":5}\n' >t5.jsonl
hkit_expect_exit 1 hcat t5.jsonl -o x.db
hkit_assert_eq "hcat: 't5.jsonl' line 1: \"topic\" must be a string" "$ERR" "topic 5"
printf '{"topic":""}\n' >tempty.jsonl
hkit_expect_exit 1 hcat tempty.jsonl -o x.db
hkit_assert_eq "hcat: 'tempty.jsonl' line 1: \"topic\" is empty" "$ERR" "empty topic"
{ printf '{"topic":"a","payload":'; head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; printf '}\n'; } >deep.jsonl
hkit_expect_exit 1 hcat deep.jsonl -o x.db
hkit_assert_eq "hcat: 'deep.jsonl' line 1: nesting deeper than 1000 levels" "$ERR" "deep nesting"
printf '\xef\xbb\xbf{"topic":"bom","payload":"x"}\n' >bom.jsonl
hkit_expect_exit 0 hcat bom.jsonl -o bom.db
hkit_assert_eq bom "$(sqlite3 bom.db 'select topic from messages_v')" "BOM skipped"
for y in 2262 1678; do
    printf '{"topic":"a","received_at":"%s-01-01T00:00:00Z"}\n' $y >y$y.jsonl
    hkit_expect_exit 1 hcat y$y.jsonl -o x.db
    hkit_assert_eq "hcat: 'y$y.jsonl' line 1: \"received_at\": time out of range: hkit handles 1900-01-01T00:00:00Z to 2100-12-31T23:59:59Z" "$ERR" "year $y"
done
hkit_expect_exit 2 hcat exact.db --since 2262-01-01T00:00:00Z
hkit_assert_eq "hcat: invalid value '2262-01-01T00:00:00Z' for --since: time out of range: hkit handles 1900-01-01T00:00:00Z to 2100-12-31T23:59:59Z
try 'hcat --help'" "$ERR" "--since out of range"
[ ! -e x.db ] || hkit_fail "a refused import left x.db"

# --- durations: as documented, nothing else -----------------------------------------------------
hkit_expect_exit 2 hcat exact.db --since +5
hkit_assert_eq "hcat: invalid duration '5' for --since: missing unit (use us, ms, s, m, h or d)
try 'hcat --help'" "$ERR" "bare number"
hkit_expect_exit 2 hcat exact.db --since ++5s
hkit_assert_eq "hcat: invalid duration '+5s' for --since: expected e.g. 250ms, 10s, 5m, 2h
try 'hcat --help'" "$ERR" "++5s"
hkit_expect_exit 0 hcat exact.db --since +500us
# -q is --qos wherever it exists (mosquitto's letter); hcat has no QoS, so quiet is --quiet only
hkit_expect_exit 2 hcat -q exact.db
hkit_assert_eq "hcat: unknown option '-q'
try 'hcat --help'" "$ERR" "-q is not --quiet"
# +offsets count from a first message standard input cannot give twice: a usage error, worded and
# numbered as hreplay's (t0207), since both read their inputs through tool_source
hkit_expect_exit 2 hcat --since +10m - </dev/null
hkit_assert_eq "hcat: --since/--until +DURATION need a file: standard input can be read only once
try 'hcat --help'" "$ERR" "+offset on stdin"
hkit_expect_exit 2 hcat --until +1s exact.db - </dev/null
hkit_assert_eq "hcat: --since/--until +DURATION need a file: standard input can be read only once
try 'hcat --help'" "$ERR" "+offset with stdin among the inputs"

# --- a topic stored before imports checked UTF-8 prints as valid JSON -------------------------------
sqlite3 exact.db "update topics set name = cast(x'612fff2f62' as text) where name = 'a/b'"
hkit_expect_exit 0 hcat exact.db
printf '%s\n' "$OUT" | jq -e . >/dev/null || hkit_fail "output is not JSON: $OUT"
hkit_assert_contains "$OUT" '"topic_b64":"YS//L2I="' "topic_b64"
hkit_expect_exit 0 hcat exact.db --decode
printf '%s\n' "$OUT" | jq -e . >/dev/null || hkit_fail "decoded output is not JSON: $OUT"
echo ok

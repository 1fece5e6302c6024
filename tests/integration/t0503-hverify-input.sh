#!/usr/bin/env bash
# The built-in decoder path reads plain input.jsonl lines in place and hands any other line (a
# \u escape, binary payload_b64, CRLF, blank lines) and everything after it to the JSON lines
# reader. Checked against independent paths: hcat --decode (every line through the JSON lines
# reader) and its CSV column compared in Python, the same input imported by hcat into a
# recording (counted with the sqlite3 CLI), and the exact error for a bad line after plain ones.
set -euo pipefail
if bash -n "$HKIT_SOURCE_DIR/scripts/lib.sh" 2>/dev/null; then
    . "$HKIT_SOURCE_DIR/scripts/lib.sh"
else
    . <(sed "s/build's bin/build bin/" "$HKIT_SOURCE_DIR/scripts/lib.sh")
fi
hkit_test_setup
C=$HKIT_TMP/mixed
mkdir -p "$C"
T=haltian-iot/events/3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d/measurements
D=9b2f6c1e-4d3a-4f8b-a1c2-3e4d5f6a7b8c
# Line 3 is blank, line 5 spells its value with \u escapes (90), line 6 is binary, line 8 ends
# in CRLF.
cat >"$C/input.jsonl" <<EOF
{"topic":"$T/ambientTemperature/$D","payload":"{\"measured_at\":\"2026-02-05T10:00:00.123Z\",\"value\":21.5}"}
{"seq":2,"received_at":"2026-02-05T10:00:01Z","topic":"$T/humidity/$D","qos":1,"retain":false,"payload":"{\"measured_at\":\"2026-02-05T10:00:01Z\",\"value\":40}"}

{"topic":"$T/co2/$D","payload":"{\"measured_at\":\"2026-02-05T10:00:02Z\",\"value\":600}"}
{"topic":"$T/batteryPercentage/$D","payload":"{\"measured_at\":\"2026-02-05T10:00:03Z\",\"value\":\u0039\u0030}"}
{"topic":"$T/ambientTemperature/$D","payload_b64":"AAECAw=="}
{"topic":"$T/occupancyStatus/$D","payload":"{\"measured_at\":\"2026-02-05T10:00:05Z\",\"value\":true}"}
EOF
printf '{"topic":"%s/co2/%s","payload":"{\\"measured_at\\":\\"2026-02-05T10:00:06Z\\",\\"value\\":650}"}\r\n' \
    "$T" "$D" >>"$C/input.jsonl"

hkit_expect_exit 0 hverify --update --accept --force "$C"
hkit_assert_contains "$OUT" "updated $C/expected.jsonl (7 messages)" "update"
hkit_expect_exit 0 hverify "$C"
hkit_assert_eq "1 passed, 0 failed" "$OUT" "the case passes"

# Every value equals hcat --decode's (which reads each line with the JSON lines reader).
hcat --decode "$C/input.jsonl" >"$HKIT_TMP/decoded.jsonl"
python3 - "$HKIT_TMP/decoded.jsonl" "$C/expected.jsonl" <<'PY' || hkit_fail "built-in path differs from hcat --decode"
import json, sys
dec = [json.loads(l)["decoded"] for l in open(sys.argv[1]) if l.strip()]
exp = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert len(dec) == 7 and dec == exp, (dec, exp)
assert [v.get("value") for v in exp] == [21.5, 40, 600, 90, None, True, 650], exp
assert "error" in exp[4] and exp[4]["type"] == "ambientTemperature"
PY

# hcat's CSV "decoded" column (read with Python's csv module) holds the same bytes: both print
# with the exact printer.
hcat --decode --format csv "$C/input.jsonl" >"$HKIT_TMP/decoded.csv"
python3 - "$HKIT_TMP/decoded.csv" "$C/expected.jsonl" <<'PY' || hkit_fail "CSV decoded column differs"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0][-1] == "decoded", rows[0]
exp = [l.rstrip("\n") for l in open(sys.argv[2])]
assert [r[-1] for r in rows[1:]] == exp
PY

# The same messages from a recording pass against the same expected output.
mkdir -p "$HKIT_TMP/db"
hcat "$C/input.jsonl" -o "$HKIT_TMP/db/input.db" >/dev/null 2>&1
hkit_assert_eq 7 "$(sqlite3 "$HKIT_TMP/db/input.db" 'SELECT count(*) FROM messages')" "rows"
cp "$C/expected.jsonl" "$HKIT_TMP/db/"
hkit_expect_exit 0 hverify "$HKIT_TMP/db"

# A bad line after plain ones: the error names its message and physical line.
B=$HKIT_TMP/bad
mkdir -p "$B"
head -4 "$C/input.jsonl" >"$B/input.jsonl"
printf '\n{"topic":"t","qos":7}\n' >>"$B/input.jsonl"
tail -1 "$C/input.jsonl" >>"$B/input.jsonl"
cp "$C/expected.jsonl" "$B/"
hkit_expect_exit 1 hverify "$B"
hkit_assert_eq "ERROR $B: input message 4: '$B/input.jsonl' line 6: \"qos\" must be 0, 1 or 2
0 passed, 1 failed" "$OUT" "bad line"
hkit_assert_eq "hverify: 1 of 1 cases could not run" "$ERR" "stderr"
printf '{"topic":"t","payload":"x"} {\n' >"$B/input.jsonl"
sed -n 1p "$C/input.jsonl" >>"$B/input.jsonl"
printf '{"topic":"t"\n' >>"$B/input.jsonl"
hkit_expect_exit 1 hverify "$B"
hkit_assert_contains "$OUT" "ERROR $B: input message 3: '$B/input.jsonl' line 3: not valid JSON" \
    "not JSON"

# An expected.jsonl that cannot be read is an error, not an empty file.
rm "$B/expected.jsonl"
mkdir "$B/expected.jsonl"
cp "$C/input.jsonl" "$B/input.jsonl"
hkit_expect_exit 1 hverify "$B"
hkit_assert_contains "$OUT" "ERROR $B: '$B/expected.jsonl': cannot read: Is a directory" "unreadable"
echo "ok"

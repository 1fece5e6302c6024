#!/usr/bin/env bash
# hverify over the shipped fixture corpus with the built-in decoder (this is how scripts/test
# checks the corpus), then a copy with one expected value changed: exit 3 naming that exact
# path, and the tolerance and ignore options (command line and case.json) turning it into a pass.
set -euo pipefail
# scripts/lib.sh line 154 ("build's" inside "${...:?}") does not parse in bash 5; until it is
# fixed there, source a copy without that quote.
if bash -n "$HKIT_SOURCE_DIR/scripts/lib.sh" 2>/dev/null; then
    . "$HKIT_SOURCE_DIR/scripts/lib.sh"
else
    . <(sed "s/build's bin/build bin/" "$HKIT_SOURCE_DIR/scripts/lib.sh")
fi
hkit_test_setup
F=$HKIT_SOURCE_DIR/fixtures

# One value changed: 21.75 -> 21.8 in message 2 of a copy.
cp -r "$F/measurement-ambient-temperature" "$HKIT_TMP/case"
sed -i '2s/"value":21.75/"value":21.8/' "$HKIT_TMP/case/expected.jsonl"
hkit_expect_exit 3 hverify "$HKIT_TMP/case"
hkit_assert_contains "$OUT" "FAIL  $HKIT_TMP/case: 1 of 3 messages differ" "failure line"
hkit_assert_contains "$OUT" "message 2 (haltian-iot/events/3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d/measurements/ambient_temperature/9b2f6c1e-4d3a-4f8b-a1c2-3e4d5f6a7b8c): at value: expected 21.8, got 21.75" "mismatch line"
hkit_assert_contains "$OUT" "accept the new output: hverify --update --accept $HKIT_TMP/case" "accept command"
hkit_assert_eq "0 passed, 1 failed" "$(printf '%s\n' "$OUT" | tail -1)" "summary line"

# JSON report: the same facts, machine-readable.
hkit_expect_exit 3 hverify --json "$HKIT_TMP/case"
printf '%s' "$OUT" | python3 -c '
import json, sys
r = json.load(sys.stdin)
c = r["cases"][0]
assert c["status"] == "failed" and r["failed"] == 1 and r["passed"] == 0, r
m = c["mismatches"][0]
assert (m["message"], m["path"], m["expected"], m["actual"]) == (2, "value", 21.8, 21.75), m
'

# Tolerances and ignore paths turn it into a pass; too small a tolerance does not.
hkit_expect_exit 0 hverify --abs-tol 0.1 "$HKIT_TMP/case"
hkit_expect_exit 3 hverify --abs-tol 0.01 "$HKIT_TMP/case"
hkit_expect_exit 0 hverify --rel-tol 0.01 "$HKIT_TMP/case"
hkit_expect_exit 0 hverify --ignore value "$HKIT_TMP/case"
hkit_expect_exit 3 hverify --ignore unit "$HKIT_TMP/case"
echo '{"description":"t","tolerances":{"value":{"abs":0.06}}}' >"$HKIT_TMP/case/case.json"
hkit_expect_exit 0 hverify "$HKIT_TMP/case"
# '*' is a whole path segment, never part of a name: "val*" names a member literally.
echo '{"description":"t","ignore":["val*"]}' >"$HKIT_TMP/case/case.json"
hkit_expect_exit 3 hverify "$HKIT_TMP/case"
echo '{"description":"t","ignore":["*"]}' >"$HKIT_TMP/case/case.json"
hkit_expect_exit 0 hverify "$HKIT_TMP/case"
echo '{"descripton":"typo"}' >"$HKIT_TMP/case/case.json"
hkit_expect_exit 1 hverify "$HKIT_TMP/case"
hkit_assert_contains "$OUT" "ERROR $HKIT_TMP/case: '$HKIT_TMP/case/case.json': unknown member \"descripton\"" "case.json typo"
rm "$HKIT_TMP/case/case.json"

# Key order and whitespace do not matter.
python3 - "$HKIT_TMP/case/expected.jsonl" <<'PY'
import json, sys
p = sys.argv[1]
lines = [json.loads(l) for l in open(p)]
lines[1]["value"] = 21.75
with open(p, "w") as f:
    for d in lines:
        f.write(json.dumps(dict(reversed(list(d.items()))), indent=None, separators=(" , ", " : ")) + "\n")
PY
hkit_expect_exit 0 hverify "$HKIT_TMP/case"

# Order: a swapped pair fails strict, passes any and per-device (one device).
E=$F/measurement-ambient-temperature/expected.jsonl
{ sed -n 2p "$E"; sed -n 1p "$E"; sed -n 3p "$E"; } >"$HKIT_TMP/case/expected.jsonl"
hkit_expect_exit 3 hverify "$HKIT_TMP/case"
hkit_expect_exit 0 hverify --order any "$HKIT_TMP/case"
echo '{"order":"any"}' >"$HKIT_TMP/case/case.json"
hkit_expect_exit 0 hverify "$HKIT_TMP/case"
hkit_expect_exit 3 hverify --order strict "$HKIT_TMP/case"
# Last: the whole corpus (a known decoder bug fails a case here until decode.c is fixed),
# with the JUnit report parsed by an independent XML parser.
hkit_expect_exit 0 timeout 120 hverify --junit "$HKIT_TMP/junit.xml" "$F"
# fixtures/consumers/ (.hverify-skip) holds --consumer cases, left out of the search
cases=$(find "$F" -path "$F/consumers" -prune -o -name input.jsonl -print | wc -l)
[ "$cases" -ge 40 ] || hkit_fail "corpus has only $cases cases"
hkit_assert_eq "$cases passed, 0 failed" "$(printf '%s\n' "$OUT" | tail -1)" "summary line"
python3 - "$HKIT_TMP/junit.xml" "$cases" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.findall(".//testcase")
assert len(cases) == int(sys.argv[2]), len(cases)
assert not root.findall(".//failure") and not root.findall(".//error")
PY

echo "t0500 ok"

#!/usr/bin/env bash
# hverify with external decoders written here: a Python decoder that passes and one that is
# wrong; decoders that crash, exit non-zero, hang, print garbage, print too few or too many
# lines; each reported for its own case while the other cases still run.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
F=$HKIT_SOURCE_DIR/fixtures
S=$HKIT_TMP/suite
mkdir -p "$S"
cp -r "$F/measurement-co2" "$S/a-co2"
cp -r "$F/measurement-humidity" "$S/b-humidity"

# A decoder in Python: the value and the canonical-ish type, one line per input line.
cat >"$HKIT_TMP/dec.py" <<'PY'
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    p = json.loads(m["payload"])
    print(json.dumps({"type": m["topic"].split("/")[5].lower(), "value": p["value"]}), flush=True)
PY
for c in a-co2 b-humidity; do
    python3 "$HKIT_TMP/dec.py" <"$S/$c/input.jsonl" >"$S/$c/expected.jsonl" 2>/dev/null || true
done
# The expected outputs were made from the input files directly (not through hverify's pipe),
# so this also checks what hverify writes on the decoder's stdin.
rm -f "$S"/*/case.json
python3 - "$S" <<'PY'
import json, sys, os
for c in ("a-co2", "b-humidity"):
    out = []
    for line in open(os.path.join(sys.argv[1], c, "input.jsonl")):
        m = json.loads(line)
        out.append(json.dumps({"type": m["topic"].split("/")[5].lower(), "value": m["payload"]["value"]}))
    open(os.path.join(sys.argv[1], c, "expected.jsonl"), "w").write("\n".join(out) + "\n")
PY
hkit_expect_exit 0 hverify --decoder "python3 $HKIT_TMP/dec.py" "$S"
hkit_assert_eq "2 passed, 0 failed" "$OUT" "python decoder passes"

# A wrong decoder (reports the value + 1 for co2 only) fails with exit 3 and the right path.
cat >"$HKIT_TMP/wrong.py" <<'PY'
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    p = json.loads(m["payload"])
    t = m["topic"].split("/")[5].lower()
    print(json.dumps({"value": p["value"] + (1 if t == "co2" else 0), "type": t}), flush=True)
PY
hkit_expect_exit 3 hverify --decoder "python3 $HKIT_TMP/wrong.py" "$S"
hkit_assert_contains "$OUT" "FAIL  $S/a-co2: 2 of 2 messages differ" "wrong decoder"
hkit_assert_contains "$OUT" "at value: expected 850, got 851" "wrong value"
hkit_assert_contains "$OUT" "accept the new output: hverify --update --accept --decoder 'python3 $HKIT_TMP/wrong.py' $S/a-co2" "accept command with decoder"
hkit_assert_eq "1 passed, 1 failed" "$(printf '%s\n' "$OUT" | tail -1)" "summary"

# cat echoes the protocol lines (valid JSON, but not the expected values).
hkit_expect_exit 3 hverify --max-report 1 --decoder cat "$S/a-co2"
hkit_assert_contains "$OUT" 'at type: expected "co2", got (missing)' "cat decoder"
hkit_assert_contains "$OUT" "... and 1 more (--max-report 0 shows all)" "max-report"

# Failures that mean "could not run": exit 1, named per case, and the other case still runs.
# (--timeout: long enough for a decoder that fails by itself on a loaded machine; the hung one
# sets TIMEOUT shorter, as its timing is not what is checked)
expect_error() { # decoder-command expected-message-part
    hkit_expect_exit 1 timeout 30 hverify --timeout "${TIMEOUT:-2s}" --decoder "$1" "$S/a-co2" "$S/b-humidity"
    hkit_assert_contains "$OUT" "ERROR $S/a-co2: $2" "decoder '$1'"
    hkit_assert_contains "$OUT" "ERROR $S/b-humidity: " "second case also runs"
    hkit_assert_eq "0 passed, 2 failed" "$(printf '%s\n' "$OUT" | tail -1)" "summary for '$1'"
    hkit_assert_contains "$ERR" "hverify: 2 of 2 cases could not run" "stderr for '$1'"
}
expect_error 'kill -SEGV $$' "after 0 of 2 output lines: decoder was killed by signal 11"
expect_error 'cat >/dev/null; echo broken >&2; exit 4' "after 0 of 2 output lines: decoder exited with status 4; its stderr: broken"
expect_error 'no-such-decoder-xyz' "after 0 of 2 output lines: decoder exited with status 127 (command not found?)"
TIMEOUT=300ms expect_error 'sleep 613; :' "after 0 of 2 output lines: decoder timed out after 0.3s (killed it and its children)"
expect_error 'echo "this is not json"; cat >/dev/null' "decoder output line 1 (message 1, topic 'haltian-iot/events/"
expect_error 'head -n 1' "decoder printed 1 lines for 2 input messages (missing from message 2 on)"
expect_error 'cat; echo "{}"' "decoder printed more lines than input messages: line 3 (2 messages in the case): {}"
# The hung decoder's whole process group is gone (sh and its sleep child).
if pgrep -f "^sleep 613$" >/dev/null; then hkit_fail "the hung decoder was left running"; fi

# Mixed: one good case and one broken case in the same run.
cp -r "$S/a-co2" "$S/c-broken"
: >"$S/c-broken/input.jsonl"
echo 'not json' >"$S/c-broken/input.jsonl"
hkit_expect_exit 1 hverify --decoder "python3 $HKIT_TMP/dec.py" "$S"
hkit_assert_contains "$OUT" "ERROR $S/c-broken: input message 1: " "broken input named"
hkit_assert_eq "2 passed, 1 failed" "$(printf '%s\n' "$OUT" | tail -1)" "others still pass"

# A big case through cat: streaming must not deadlock on pipe buffers.
python3 - "$HKIT_TMP/big" <<'PY'
import json, os, sys
d = sys.argv[1]; os.makedirs(d)
with open(d + "/input.jsonl", "w") as i, open(d + "/expected.jsonl", "w") as e:
    for n in range(50000):
        line = json.dumps({"topic": "t/%d" % n, "qos": 0, "retain": False, "dup": False, "payload": "x" * 300}, separators=(",", ":"))
        i.write(line + "\n"); e.write(line + "\n")
PY
hkit_expect_exit 0 timeout 60 hverify --decoder cat "$HKIT_TMP/big"
echo "t0501 ok"

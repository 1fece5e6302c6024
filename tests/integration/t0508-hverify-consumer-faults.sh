#!/usr/bin/env bash
# hverify --consumer under faults: the "latest value per device" consumers of fixtures/consumers
# run the cases of latest-cases (case.json "faults", "seed" and "expect"). The correct one
# passes every case; the naive one fails under reorder, dup, redeliver ("expect": "same": the
# clean run's output) and stale (the case's own expected output), each difference naming the
# input it belongs to and the faults on that device's inputs. --faults on the command line
# applies to a clean case, whose expected output stays the clean run's.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

hkit_require_paho
C=$HKIT_SOURCE_DIR/fixtures/consumers
cd "$HKIT_TMP"
cp -r "$C/latest-cases" .
CORRECT="python3 $C/latest_correct.py -h {host} -p {port}"
NAIVE="python3 $C/latest_naive.py -h {host} -p {port}"

# --- the correct consumer passes every case, the faults counted in the figures ----------------
hkit_expect_exit 0 hverify -v --broker plain --consumer "$CORRECT" latest-cases
hkit_assert_contains "$OUT" "5 passed, 0 failed" "correct consumer"
hkit_assert_contains "$OUT" "faults 'reorder=0.5:scope=device': 13 applied" "reorder figures"
hkit_assert_contains "$OUT" "40 inputs sent" "dup: 36 inputs and 4 copies"
hkit_expect_exit 0 hverify --json --broker plain --consumer "$CORRECT" latest-cases/redeliver
hkit_assert_eq 17 "$(printf '%s' "$OUT" | jq '.cases[0].consumer.faults_applied')" "json faults"

# --- the naive one fails each faulty case, naming the input and the faults --------------------
hkit_expect_exit 3 hverify --broker plain --consumer "$NAIVE" latest-cases
hkit_assert_contains "$OUT" "1 passed, 4 failed" "naive consumer"
hkit_assert_contains "$OUT" "FAIL  latest-cases/reorder" "reorder"
hkit_assert_contains "$OUT" "output line 1 (input 31: co2, device 5a1e0000-0000-4000-8000-000000000000, 2026-02-05T10:00:30.000Z): at measured_at: expected \"2026-02-05T10:00:33.000Z\", got \"2026-02-05T10:00:30.000Z\"" "reorder: the input"
hkit_assert_contains "$OUT" "faults on this device: input 31 reorder (with input 34)" "reorder: the fault"
hkit_assert_contains "$OUT" "FAIL  latest-cases/dup" "dup"
hkit_assert_contains "$OUT" "at readings: expected 12, got 13" "dup: counted twice"
hkit_assert_contains "$OUT" "faults on this device: input 35 dup" "dup: the fault"
hkit_assert_contains "$OUT" "FAIL  latest-cases/redeliver" "redeliver"
hkit_assert_contains "$OUT" "faults on this device: input 34 redeliver" "redeliver: the fault"
hkit_assert_contains "$OUT" "FAIL  latest-cases/stale" "stale"
hkit_assert_contains "$OUT" "(input 34: co2, device 5a1e0000-0000-4000-8000-000000000000, 2026-02-05T10:00:33.000Z): at measured_at: expected \"2026-02-05T10:00:30.000Z\", got \"2026-02-05T09:00:33.000Z\"" "stale: the input whose time moved"
hkit_assert_contains "$OUT" "faults on this device: input 34 stale" "stale: the fault"

# --- --faults on the command line: the clean case's expected output must still hold ----------
hkit_expect_exit 0 hverify --broker plain --faults 'reorder=0.5:scope=device' --seed 3 \
    --consumer "$CORRECT" latest-cases/clean
hkit_expect_exit 3 hverify --broker plain --faults 'reorder=0.5:scope=device' --seed 3 \
    --consumer "$NAIVE" latest-cases/clean
# updating an "expect": "same" case writes the clean run's output
hkit_expect_exit 0 hverify --update --accept --broker plain --consumer "$NAIVE" latest-cases/dup
cmp latest-cases/dup/expected.jsonl "$C/latest-cases/clean/expected.jsonl" ||
    hkit_fail "updating an expect-same case did not keep the clean output"

# --- argument and case.json errors ------------------------------------------------------------
hkit_expect_exit 2 hverify --faults 'drop=2' --consumer true latest-cases
hkit_assert_eq "hverify: invalid value for --faults: 'drop=2': probability must be between 0 and 1, got '2'
try 'hverify --help'" "$ERR" "bad spec"
hkit_expect_exit 2 hverify --faults 'broker-restart=at:0' --consumer true latest-cases
hkit_assert_contains "$ERR" "'broker-restart=at:0': expected broker-restart or broker-restart=at:N" "bad restart"
hkit_expect_exit 2 hverify --seed -1 --faults dup=0.1 --consumer true latest-cases
hkit_assert_contains "$ERR" "invalid value '-1' for --seed" "bad seed"
hkit_expect_exit 2 hverify --faults dup=0.1 latest-cases
hkit_assert_contains "$ERR" "need --consumer" "faults without consumer"
mkdir -p bad && cp latest-cases/clean/input.jsonl latest-cases/clean/expected.jsonl bad/
echo '{"faults": "dup=0.1", "expect": "other"}' >bad/case.json
hkit_expect_exit 1 hverify --broker plain --consumer "$CORRECT" bad
hkit_assert_contains "$OUT" "\"expect\" must be \"same\"" "bad expect"
echo "t0508 ok"

#!/usr/bin/env bash
# hverify --update / --accept / "hverify accept": pending files, what stays untouched, CI mode
# (nothing written without --force), leftovers reported; and every argument error pinned.
set -euo pipefail
# scripts/lib.sh line 154 ("build's" inside "${...:?}") does not parse in bash 5; until it is
# fixed there, source a copy without that quote.
if bash -n "$HKIT_SOURCE_DIR/scripts/lib.sh" 2>/dev/null; then
    . "$HKIT_SOURCE_DIR/scripts/lib.sh"
else
    . <(sed "s/build's bin/build bin/" "$HKIT_SOURCE_DIR/scripts/lib.sh")
fi
hkit_test_setup
unset CI
C=$HKIT_TMP/case
cp -r "$HKIT_SOURCE_DIR/fixtures/measurement-battery" "$C"
good=$(cat "$C/expected.jsonl")
sed -i '3s/"value":3.12/"value":3.2/' "$C/expected.jsonl"
changed=$(cat "$C/expected.jsonl")

# CI set: --update reports but writes nothing.
CI=true hkit_expect_exit 3 hverify --update "$C"
hkit_assert_contains "$ERR" "hverify: warning: $C: CI is set: not writing expected.jsonl.pending (use --force)" "CI warning"
[ ! -e "$C/expected.jsonl.pending" ] || hkit_fail "pending written with CI set"
hkit_assert_eq "$changed" "$(cat "$C/expected.jsonl")" "expected untouched with CI"

# Without CI: a pending file next to the old one; the old one untouched; the change listed.
hkit_expect_exit 3 hverify --update "$C"
hkit_assert_contains "$OUT" "message 3 (" "changed message listed"
hkit_assert_contains "$OUT" "at value: expected 3.2, got 3.12" "change shown"
hkit_assert_contains "$OUT" "wrote $C/expected.jsonl.pending (1 of 5 values changed); review, then: hverify accept $C" "pending written"
hkit_assert_eq "$changed" "$(cat "$C/expected.jsonl")" "expected untouched"
hkit_assert_eq "$good" "$(cat "$C/expected.jsonl.pending")" "pending holds the new output"
diff <(sed -n '1,2p;4,5p' "$C/expected.jsonl") <(sed -n '1,2p;4,5p' "$C/expected.jsonl.pending") >/dev/null ||
    hkit_fail "unchanged lines were rewritten"

# A plain run reports the pending file left behind.
hkit_expect_exit 3 hverify "$C"
hkit_assert_contains "$ERR" "hverify: warning: '$C/expected.jsonl.pending' is an update not yet accepted (review it, then: hverify accept $C)" "pending reported"

# An unreferenced file is reported.
echo x >"$C/notes.txt"
hkit_expect_exit 3 hverify "$C"
hkit_assert_contains "$ERR" "hverify: warning: unreferenced file '$C/notes.txt'" "leftover reported"
rm "$C/notes.txt"

# accept with CI set refuses unless --force.
CI=1 hkit_expect_exit 1 hverify accept "$C"
hkit_assert_contains "$ERR" "hverify: CI is set: not accepting '$C/expected.jsonl.pending' (use --force)" "CI accept"
[ -e "$C/expected.jsonl.pending" ] || hkit_fail "pending consumed with CI set"
hkit_expect_exit 0 hverify accept "$C"
hkit_assert_eq "accepted $C/expected.jsonl
1 accepted" "$OUT" "accept output"
hkit_assert_eq "$good" "$(cat "$C/expected.jsonl")" "accepted content"
[ ! -e "$C/expected.jsonl.pending" ] || hkit_fail "pending left after accept"
hkit_expect_exit 0 hverify "$C"

# --accept spelled as an option; --update --accept writes directly; --force overrides CI.
sed -i '1s/"value":85/"value":84/' "$C/expected.jsonl"
CI=true hkit_expect_exit 3 hverify --update --accept "$C"
CI=true hkit_expect_exit 0 hverify --update --accept --force "$C"
hkit_assert_contains "$OUT" "updated $C/expected.jsonl (5 messages)" "direct update"
hkit_assert_eq "$good" "$(cat "$C/expected.jsonl")" "direct update content"
hkit_expect_exit 0 hverify --accept "$C"
hkit_assert_eq "0 accepted" "$OUT" "nothing to accept"

# A new case: no expected.jsonl yet.
mkdir "$HKIT_TMP/new"
cp "$C/input.jsonl" "$HKIT_TMP/new/"
hkit_expect_exit 1 hverify "$HKIT_TMP/new"
hkit_assert_contains "$OUT" "ERROR $HKIT_TMP/new: cannot open '$HKIT_TMP/new/expected.jsonl': No such file or directory (create it with: hverify --update)" "missing expected"
hkit_expect_exit 3 hverify --update "$HKIT_TMP/new"
hverify accept "$HKIT_TMP/new" >/dev/null
hkit_assert_eq "$good" "$(cat "$HKIT_TMP/new/expected.jsonl")" "new case created"

# A recording (.db) as input, imported with hcat, then checked with the sqlite3 CLI.
mkdir "$HKIT_TMP/db"
hcat "$C/input.jsonl" -o "$HKIT_TMP/db/input.db" >/dev/null 2>&1
hkit_assert_eq 5 "$(sqlite3 "$HKIT_TMP/db/input.db" 'SELECT count(*) FROM messages')" "rows in the recording"
cp "$C/expected.jsonl" "$HKIT_TMP/db/"
hkit_expect_exit 0 hverify "$HKIT_TMP/db"
cp "$C/input.jsonl" "$HKIT_TMP/db/"
hkit_expect_exit 1 hverify "$HKIT_TMP/db"
hkit_assert_contains "$OUT" "ERROR $HKIT_TMP/db: both input.jsonl and input.db are present; keep one" "two inputs"

# Argument errors: exact message and status 2.
expect_usage() { # message args...
    local msg=$1
    shift
    hkit_expect_exit 2 hverify "$@"
    hkit_assert_eq "hverify: $msg
try 'hverify --help'" "$ERR" "usage error for '$*'"
}
expect_usage "no case or folder given"
expect_usage "no case or folder given" --update
expect_usage "invalid value 'sideways' for --order: expected strict, per-device or any" --order sideways "$C"
expect_usage "invalid value '0' for --timeout: must be > 0" --timeout 0 "$C"
expect_usage "invalid value '-1' for --abs-tol: must be between 0 and 1e+300" --abs-tol -1 "$C"
expect_usage "invalid value 'a..b' for --ignore: empty member name" --ignore a..b "$C"
expect_usage "invalid value 'x[' for --ignore: expected a number, * or \"name\" after '['" --ignore 'x[' "$C"
expect_usage "unknown option '--bogus'" --bogus "$C"
# -q is --qos wherever it exists (mosquitto's letter); hverify has no QoS, so quiet is --quiet only
expect_usage "unknown option '-q'" -q "$C"
expect_usage "option '--decoder' needs a value" --decoder
expect_usage "invalid value '' for --decoder: must not be empty" --decoder '' "$C"
expect_usage "'accept' takes no --update (it only moves pending files)" accept --update "$C"
expect_usage "invalid value 'x' for --max-report: not a whole number" --max-report x "$C"
hkit_expect_exit 0 hverify --help
hkit_assert_contains "$OUT" "Usage: hverify [options] PATH..." "help"
hkit_expect_exit 1 hverify "$HKIT_TMP/nonexistent"
hkit_assert_eq "hverify: cannot open '$HKIT_TMP/nonexistent': No such file or directory" "$ERR" "missing path"
mkdir "$HKIT_TMP/empty"
hkit_expect_exit 1 hverify "$HKIT_TMP/empty"
hkit_assert_eq "hverify: no cases under '$HKIT_TMP/empty' (a case directory holds input.jsonl or input.db and expected.jsonl)" "$ERR" "no cases"
echo "t0502 ok"

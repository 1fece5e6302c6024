#!/usr/bin/env bash
# hverify owns the decoder processes it starts: output lines are bounded, nothing a decoder
# started (even with setsid) outlives its case or hverify, children start with default signal
# dispositions, and Ctrl-C stops a running decoder at once. Also: suggested commands are quoted
# for the shell, empty cases run, and a case with more expected lines than input says so.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

T=$HKIT_TMP
mkcase() { # DIR [INPUT-LINES] [EXPECTED-LINES]
    mkdir -p "$1"
    printf '%s' "${2-}" >"$1/input.jsonl"
    printf '%s' "${3-}" >"$1/expected.jsonl"
}
one_in='{"topic":"a/b","payload":"x"}
'
one_out='{"v":1}
'
gone() { # PID WHAT: waits (bounded) until PID no longer exists
    local i
    for i in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || return 0
        hkit_sleep 0.05
    done
    hkit_fail "$2 (pid $1) is still running"
}
wait_file() { # FILE
    local i
    for i in $(seq 1 200); do
        [ -s "$1" ] && return 0
        hkit_sleep 0.05
    done
    hkit_fail "'$1' never appeared"
}

# --- a line without end: a bounded failure, not a gigabyte in memory -------------------------
mkcase "$T/long" "$one_in" "$one_out"
timeout_cmd=(timeout 60)
if [ -x /usr/bin/time ]; then timeout_cmd+=(/usr/bin/time -f %M -o "$T/rss"); fi
hkit_expect_exit 1 "${timeout_cmd[@]}" hverify --decoder 'head -c 1073741824 /dev/zero | tr "\0" a' "$T/long"
hkit_assert_contains "$OUT" "decoder output line 1 is longer than 64 MiB" "unbounded line"
if [ -s "$T/rss" ]; then
    rss_kb=$(tail -1 "$T/rss")
    [ "$rss_kb" -lt 400000 ] || hkit_fail "hverify grew to $rss_kb kB on an endless line"
fi

# --- a setsid'd grandchild does not outlive its case: after a timeout, after a normal end -----
mkcase "$T/orphan" "$one_in" "$one_out"
hkit_expect_exit 1 hverify --timeout 1s \
    --decoder "setsid sleep 612 </dev/null >/dev/null 2>&1 & echo \$! >'$T/gc1.pid'; sleep 611" "$T/orphan"
hkit_assert_contains "$OUT" "decoder timed out after 1s" "timeout"
gone "$(cat "$T/gc1.pid")" "a setsid'd grandchild after the timeout"
hkit_expect_exit 0 hverify \
    --decoder "setsid sleep 613 </dev/null >/dev/null 2>&1 & echo \$! >'$T/gc2.pid'; cat >/dev/null; echo '{\"v\":1}'" "$T/orphan"
gone "$(cat "$T/gc2.pid")" "a setsid'd grandchild after the case passed"

# --- hverify killed outright: its decoder and the decoder's setsid'd child go too ------------
hverify --timeout 60s --decoder "setsid sleep 614 </dev/null >/dev/null 2>&1 & echo \$! >'$T/gc3.pid'; echo \$\$ >'$T/dec3.pid'; sleep 615" \
    "$T/orphan" >/dev/null 2>&1 &
hv=$!
wait_file "$T/gc3.pid"
wait_file "$T/dec3.pid"
kill -KILL $hv
wait $hv 2>/dev/null || true
gone "$(cat "$T/dec3.pid")" "the decoder of a killed hverify"
gone "$(cat "$T/gc3.pid")" "the setsid'd grandchild of a killed hverify"

# --- children start with default dispositions and an empty mask ------------------------------
# (a background job of a non-interactive shell starts with SIGINT and SIGQUIT ignored)
hverify --decoder "grep -E '^Sig(Ign|Blk)' /proc/self/status >'$T/sig'; cat >/dev/null; echo '{\"v\":1}'" \
    "$T/orphan" >/dev/null 2>&1 &
wait $!
hkit_assert_eq "SigBlk:	0000000000000000
SigIgn:	0000000000000000" "$(cat "$T/sig")" "decoder's signal state"

# --- Ctrl-C while a decoder runs: stopped within about a second ------------------------------
rm -f "$T/dec4.pid"
hverify --timeout 60s --decoder "echo \$\$ >'$T/dec4.pid'; sleep 616" "$T/orphan" >"$T/int.out" 2>"$T/int.err" &
hv=$!
wait_file "$T/dec4.pid"
kill -INT $hv
for i in $(seq 1 40); do kill -0 $hv 2>/dev/null || break; hkit_sleep 0.05; done
kill -0 $hv 2>/dev/null && hkit_fail "hverify still runs 2 s after SIGINT"
wait $hv && rc=0 || rc=$?
hkit_assert_eq 1 "$rc" "exit status after SIGINT"
hkit_assert_contains "$(cat "$T/int.out")" "interrupted; stopped the decoder" "SIGINT reported"
gone "$(cat "$T/dec4.pid")" "the decoder after SIGINT"

# --- suggested commands are quoted for the shell ---------------------------------------------
evil='a; touch X `echo y`'
mkdir -p "$T/work"
mkcase "$T/work/$evil" "$one_in" '{"v":0}
'
(cd "$T/work" && hkit_expect_exit 3 hverify --update --decoder "cat >/dev/null; echo '{\"v\":1}'" "$evil" &&
    printf '%s\n' "$OUT" >"$T/update.out")
suggested=$(sed -n 's/.*review, then: //p' "$T/update.out")
hkit_assert_eq "hverify accept 'a; touch X \`echo y\`'" "$suggested" "quoted accept command"
(cd "$T/work" && eval "$suggested" >/dev/null)
[ ! -e "$T/work/X" ] || hkit_fail "pasting the suggested command ran code"
hkit_assert_eq '{"v":1}' "$(cat "$T/work/$evil/expected.jsonl")" "the suggested command accepted"

# --- an empty case runs; more expected lines than input messages says so ---------------------
mkcase "$T/empty"
hkit_expect_exit 0 hverify --decoder cat "$T/empty"
hkit_expect_exit 0 hverify "$T/empty"
mkcase "$T/short" "" "$one_out"
hkit_expect_exit 3 hverify --decoder cat "$T/short"
hkit_assert_contains "$OUT" "FAIL  $T/short: expected.jsonl has 1 line, the input 0 messages" \
    "expected lines without input"
case $OUT in *"1 of 0"*) hkit_fail "says 1 of 0: $OUT" ;; esac

# --- case.json's members, as documented ------------------------------------------------------
hkit_expect_exit 0 hverify --help
hkit_assert_contains "$OUT" "description, notes, source (text), abs_tol, rel_tol, tolerances, ignore, order" "--help"

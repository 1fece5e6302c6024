#!/usr/bin/env bash
# A reader that closes the pipe is a normal end: `hcat x.db | head -1` and `hgen --jsonl | head`
# exit 0 and print nothing on stderr. Ctrl-C on hcat exits 0 with what was printed (or, with -o,
# written: a complete recording that says it was cut short). -v says how many messages hcat
# printed. --top without --info is a usage error.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

hgen -o big.db --count 5000 --quiet # ~1.5 MB of JSON lines: far more than a pipe holds

# --- closed pipes -----------------------------------------------------------------------------
set +o pipefail
first=$(hcat big.db 2>err.txt | head -1)
rc=${PIPESTATUS[0]}
hkit_assert_eq 0 "$rc" "hcat | head -1 exit status"
hkit_assert_eq "" "$(cat err.txt)" "hcat | head -1 stderr"
hkit_assert_eq 1 "$(printf '%s\n' "$first" | jq .seq)" "the line head read"
hcat big.db --format csv 2>err.txt | head -1 >/dev/null
hkit_assert_eq "0 " "${PIPESTATUS[0]} $(cat err.txt)" "hcat --format csv | head -1"
hgen --jsonl --count 200000 2>err.txt | head -3 >/dev/null
hkit_assert_eq "0 " "${PIPESTATUS[0]} $(cat err.txt)" "hgen --jsonl | head"
hcat -v big.db 2>err.txt | head -1 >/dev/null
hkit_assert_contains "$(cat err.txt)" "before the reader closed standard output" "-v on a closed pipe"
set -o pipefail

# --- -v counts what was printed -------------------------------------------------------------
hkit_expect_exit 0 hcat -v big.db --limit 7
hkit_assert_contains "$ERR" "printed 7 messages" "-v count"
hkit_expect_exit 0 hcat big.db --limit 7
hkit_assert_eq "" "$ERR" "no count without -v"

# --- --top needs --info -----------------------------------------------------------------------
hkit_expect_exit 2 hcat --top 3 big.db
hkit_assert_eq "hcat: --top only applies to --info
try 'hcat --help'" "$ERR" "--top without --info"

# --- Ctrl-C while printing from a pipe that has not ended -----------------------------------
hcat big.db --limit 3 >three.jsonl
mkfifo in.fifo
hcat - <in.fifo >printed.jsonl 2>int.err &
cat_pid=$!
exec 3>in.fifo
cat three.jsonl >&3
# hcat has read the three lines and waits in read(2) on its standard input
blocked_in_read() { [ "$(cut -d' ' -f1 /proc/$cat_pid/syscall 2>/dev/null)" = 0 ]; }
hkit_wait_cmd "hcat to wait for more input" 10 blocked_in_read
kill -INT $cat_pid
wait $cat_pid && rc=0 || rc=$?
exec 3>&-
hkit_assert_eq 0 "$rc" "exit status after Ctrl-C"
cmp three.jsonl printed.jsonl || hkit_fail "the messages read before Ctrl-C were not printed"
hkit_assert_contains "$(cat int.err)" "interrupted: printed 3 messages" "Ctrl-C report"

# --- Ctrl-C while writing a recording --------------------------------------------------------
hcat - -o cut.db <in.fifo 2>cut.err &
cat_pid=$!
exec 3>in.fifo
cat three.jsonl >&3
hkit_wait_cmd "hcat to start the temporary file" 10 test -e "cut.db.hcat-tmp-$cat_pid"
hkit_wait_cmd "hcat to wait for more input" 10 blocked_in_read
kill -INT $cat_pid
wait $cat_pid && rc=0 || rc=$?
exec 3>&-
hkit_assert_eq 0 "$rc" "exit status after Ctrl-C with -o"
hkit_assert_eq "3|after 3 messages" "$(sqlite3 cut.db "SELECT (SELECT count(*) FROM messages),
    value FROM meta WHERE key = 'cut_interrupted'")" "the cut holds what was read, and says so"
hkit_assert_contains "$(cat cut.err)" "interrupted: wrote 3 messages" "Ctrl-C report with -o"
[ -z "$(ls | grep hcat-tmp)" ] || hkit_fail "temporary files left: $(ls)"
echo ok

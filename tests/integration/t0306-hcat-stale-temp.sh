#!/usr/bin/env bash
# `hcat -o` writes under a temporary name and renames when complete. A SIGKILL cannot be caught,
# so a killed hcat leaves out.db.hcat-tmp-PID (and its -wal/-shm) behind: the next hcat writing
# into that directory removes the files of processes that no longer run, and never those of a
# running hcat.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"
mkdir out
hgen -o in.db --count 300 --quiet
hcat in.db >in.jsonl
mkfifo killed.fifo live.fifo

# an hcat still running (started first: it would clean up too): its files must survive
hcat - -o out/live.db <live.fifo 2>/dev/null &
live=$!
exec 4>live.fifo
head -5 in.jsonl >&4
hkit_wait_cmd "the running hcat's temporary file" 10 test -e "out/live.db.hcat-tmp-$live"

# an hcat killed with SIGKILL while writing, with its -wal and -shm
hcat - -o out/killed.db <killed.fifo 2>/dev/null &
killed=$!
exec 3>killed.fifo
cat in.jsonl >&3
hkit_wait_cmd "the killed hcat's -wal" 10 test -s "out/killed.db.hcat-tmp-$killed-wal"
kill -9 $killed
wait $killed 2>/dev/null || true
exec 3>&-
[ -e "out/killed.db.hcat-tmp-$killed" ] || hkit_fail "expected the killed hcat's temporary file"

hkit_expect_exit 0 hcat in.db -o out/next.db
hkit_assert_contains "$ERR" "removed 'out/killed.db.hcat-tmp-$killed', left by hcat process $killed" \
    "report of the removal"
left=$(cd out && ls | grep "hcat-tmp-$killed" || true)
hkit_assert_eq "" "$left" "stale temporary files after the next run"
[ -e "out/live.db.hcat-tmp-$live" ] || hkit_fail "a running hcat's temporary file was removed"
exec 4>&-
wait $live || hkit_fail "the running hcat failed"
hkit_assert_eq "5 300" "$(sqlite3 out/live.db "SELECT count(*) FROM messages") \
$(sqlite3 out/next.db "SELECT count(*) FROM messages")" "both outputs"
hkit_assert_eq "live.db next.db" "$(cd out && ls | tr '\n' ' ' | sed 's/ $//')" "files left in out/"
echo ok

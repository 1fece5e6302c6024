#!/usr/bin/env bash
# hgen generates in a thread of its own and hands messages to the writer in blocks of up to 1024:
# --count stops exactly at any count (inside a block, at its end, just after it), every output
# is a prefix of the unlimited run in the same order, a recording holds exactly what --jsonl
# prints (checked with the sqlite3 CLI), and SIGINT in the middle of a large recording stops
# both threads and closes the session as interrupted.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

gen() { timeout 60 hgen --devices environment=30,presence=40,tag=10,count=5 --duration 2d \
    --seed 8 --quiet "$@"; }

gen --jsonl >all.jsonl
total=$(wc -l <all.jsonl)
[ "$total" -gt 6000 ] || hkit_fail "only $total messages"
for c in 1 1023 1024 1025 2048 2049 5000; do
    hkit_assert_eq "$(head -n "$c" all.jsonl | sha256sum)" "$(gen --jsonl --count "$c" | sha256sum)" \
        "--jsonl --count $c is the first $c messages"
done
hkit_assert_eq "$total" "$(gen --jsonl --count $((total + 1)) | wc -l)" "--count beyond the end"

# a recording cut by --count holds the same topics and payloads in the same order
gen -o cut.db --count 3001
hkit_assert_eq 3001 "$(sqlite3 cut.db "SELECT count(*) FROM messages")" "recording --count"
hkit_assert_eq "$(head -n 3001 all.jsonl | jq -r '.topic + " " + .payload' | sha256sum)" \
    "$(sqlite3 cut.db "SELECT t.name || ' ' || CAST(m.payload AS TEXT) FROM messages m JOIN topics t ON t.id = m.topic_id ORDER BY m.seq" | sha256sum)" \
    "recording and JSON lines agree"
hkit_assert_eq "clean exit" "$(sqlite3 cut.db "SELECT end_reason FROM sessions")" "session end"

# SIGINT while both threads are busy: exit 0, summary and session say interrupted
timeout 60 hgen -o big.db --duration 365d --count 100000000 2>int.txt &
pid=$!
# busy: the write-ahead log has grown past 2 MB (the store checkpoints it at a larger size)
hkit_wait_for 200 0.05 "hgen to write 2 MB" '[ "$(stat -c %s big.db-wal 2>/dev/null || echo 0)" -ge 2000000 ]'
kill -INT "$pid"
wait "$pid" || hkit_fail "hgen exited $? after SIGINT"
hkit_assert_contains "$(cat int.txt)" "(interrupted)" "interrupted summary"
hkit_assert_eq "interrupted" "$(sqlite3 big.db "SELECT end_reason FROM sessions")" "session end"
n=$(sqlite3 big.db "SELECT count(*) FROM messages")
hkit_assert_contains "$(cat int.txt)" "hgen: $n messages (interrupted)" "summary counts what was written"
echo ok

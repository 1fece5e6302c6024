#!/usr/bin/env bash
# hrecord checks its output path before it connects (no broker listens on the port used for
# those cases, so a late check would report the connection instead): a missing directory, a
# directory the user may not write, --append to an empty file or to a file that is not a
# recording. Two hrecords started in the same second get different default names. Every commit
# is synced to the device (fdatasync of the -wal), so the power-loss bound holds.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"
dead=$(hkit_free_port)
nobroker="mqtt://127.0.0.1:$dead"

hkit_expect_exit 1 hrecord --url "$nobroker" -t 'a/#' -o /proc/nope/x.db
hkit_assert_eq "hrecord: cannot write '/proc/nope/x.db': directory '/proc/nope' does not exist" \
    "$ERR" "missing directory"

: >empty.db
hkit_expect_exit 1 hrecord --url "$nobroker" -t 'a/#' -o empty.db --append
hkit_assert_eq "hrecord: cannot append to 'empty.db': the file is empty, not an hkit recording" \
    "$ERR" "--append to an empty file"
echo 'my notes' >notes.txt
hkit_expect_exit 1 hrecord --url "$nobroker" -t 'a/#' -o notes.txt --append
hkit_assert_eq "hrecord: 'notes.txt' is not an hkit recording (not an sqlite database)" \
    "$ERR" "--append to a file that is not a recording"
hkit_assert_eq "my notes" "$(cat notes.txt)" "the foreign file is untouched"

mkdir locked
if [ "$(id -u)" = 0 ]; then
    chmod 755 "$HKIT_TMP"
    run_locked() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
else
    chmod 555 locked
    run_locked() { "$@"; }
fi
hkit_expect_exit 1 run_locked hrecord --url "$nobroker" -t 'a/#' -o locked/x.db
hkit_assert_eq "hrecord: cannot write 'locked/x.db': directory 'locked': Permission denied" \
    "$ERR" "a directory the user may not write"
chmod 755 locked

# --- default names ---------------------------------------------------------------------------
hkit_broker_start "$HKIT_TMP/broker"
url="mqtt://127.0.0.1:$HKIT_BROKER_PORT"
mkdir names
# every default name of the next seconds is taken already, by files that are not recordings
now=$(date -u +%s)
for s in 0 1 2 3 4 5; do
    echo taken >"names/hkit-$(date -u -d "@$((now + s))" +%Y%m%dT%H%M%SZ).db"
done
(cd names && timeout 30 hrecord --url "$url" -t 'n/#' --duration 100ms --quiet) &
one=$!
(cd names && timeout 30 hrecord --url "$url" -t 'n/#' --duration 100ms --quiet) &
two=$!
wait $one || hkit_fail "the first hrecord failed"
wait $two || hkit_fail "the second hrecord failed"
hkit_assert_eq 6 "$(grep -l '^taken$' names/*.db | wc -l)" "the files that were there are untouched"
hkit_assert_eq 2 "$(ls names | grep -c -- '-[0-9]*\.db$')" "two new numbered recordings"
for f in names/*-[0-9].db; do
    hkit_assert_eq 1 "$(sqlite3 "$f" "SELECT count(*) FROM sessions")" "a session in $f"
done

# --- every commit reaches the device ----------------------------------------------------------
if command -v strace >/dev/null; then
    # (LeakSanitizer cannot run under ptrace: the sanitizer build checks leaks elsewhere)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        timeout 20 strace -f -y -e trace=fsync,fdatasync -o sync.trace \
        hrecord --url "$url" -t 's/#' -o sync.db --quiet &
    rec=$!
    count_is() { [ "$(hcat --info --json sync.db 2>/dev/null | jq .messages)" = "$1" ]; }
    for i in $(seq 1 200); do count_is 0 && break; hkit_sleep 0.05; done
    wal_syncs() { grep -c 'sync.db-wal>' sync.trace || true; }
    before=$(wal_syncs)
    mosquitto_pub -p "$HKIT_BROKER_PORT" -t s/x -q 1 -m one
    for i in $(seq 1 200); do count_is 1 && break; hkit_sleep 0.05; done
    count_is 1 || hkit_fail "the message was not committed"
    # with synchronous=NORMAL a commit writes the -wal without syncing it: only a checkpoint
    # (every 8 MiB) or the exit syncs it
    for i in $(seq 1 100); do [ "$(wal_syncs)" -gt "$before" ] && break; hkit_sleep 0.05; done
    [ "$(wal_syncs)" -gt "$before" ] ||
        hkit_fail "the commit of the message was not synced: $(cat sync.trace)"
    kill -INT "$(pgrep -P "$(pgrep -P $rec)")" # hrecord, under strace, under timeout
    wait $rec || hkit_fail "hrecord under strace failed"
else
    echo "strace is not installed: the sync-per-commit check is skipped"
fi
echo ok

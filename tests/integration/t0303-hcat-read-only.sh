#!/usr/bin/env bash
# Readers leave every byte as it was: a recording owned by another user in a directory they may
# not write is read by hcat and hreplay; reading a writable recording creates no -wal/-shm; a
# crashed recording (hrecord killed with SIGKILL, its -wal and -shm beside it) is read with the
# batches it committed, and its three files stay byte-identical (nothing checkpointed), also
# when only the .db and -wal were copied elsewhere; a recording still being written is read as
# the batches committed so far.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

# as_other CMD...: runs CMD as a user who owns none of the files (nobody when we are root)
if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || hkit_fail "setpriv (util-linux) is needed to run as nobody"
    as_other() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
    chmod 755 "$HKIT_TMP"
else
    as_other() { "$@"; }
fi
sums() { (cd "$1" && ls -A | sort && sha256sum -- *); }

# --- another user's recording in a directory nobody else may write -----------------------------
mkdir foreign
hgen -o foreign/f.db --count 200 --quiet
chmod 644 foreign/f.db
[ "$(id -u)" = 0 ] || chmod 555 foreign
before=$(sums foreign)
hkit_expect_exit 0 as_other hcat --info foreign/f.db
hkit_assert_contains "$OUT" "messages:   200 " "--info of a foreign recording"
hkit_expect_exit 0 as_other hcat foreign/f.db
hkit_assert_eq 200 "$(printf '%s\n' "$OUT" | wc -l)" "messages read from a foreign recording"
hkit_broker_start "$HKIT_TMP/broker"
port=$HKIT_BROKER_PORT
hkit_expect_exit 0 as_other hreplay --max --url "mqtt://127.0.0.1:$port" foreign/f.db
hkit_assert_eq "$before" "$(sums foreign)" "foreign recording and its directory after reading"

# --- a writable recording: no side files appear -------------------------------------------------
chmod 755 foreign
mkdir own
cp foreign/f.db own/o.db
before=$(sums own)
hkit_expect_exit 0 hcat own/o.db --limit 3
hkit_expect_exit 0 hcat --info own/o.db
hkit_assert_eq "$before" "$(sums own)" "writable recording after reading"

# --- a crashed recording ----------------------------------------------------------------------
mkdir crash
timeout 60 hrecord --url "mqtt://127.0.0.1:$port" -t 'c/#' -o crash/c.db --flush-ms 20 \
    --quiet &
rec=$!
count_is() { [ "$(hcat --info --json "$1" 2>/dev/null | jq .messages)" = "$2" ]; }
hkit_wait_cmd "hrecord to start its session" 10 count_is crash/c.db 0
seq -f 'c-%05g' 1 300 | mosquitto_pub -p "$port" -t c/y -q 1 -l
hkit_wait_cmd "300 messages committed" 10 count_is crash/c.db 300
# a live writer: readers see what it committed, and change nothing it does not
hkit_expect_exit 0 as_other hcat crash/c.db
hkit_assert_eq 300 "$(printf '%s\n' "$OUT" | wc -l)" "messages read while hrecord runs"
kill -9 "$(pgrep -P $rec)" # hrecord itself, not the timeout wrapper
wait $rec 2>/dev/null || true
[ -s crash/c.db-wal ] && [ -e crash/c.db-shm ] ||
    hkit_fail "expected the killed writer to leave a -wal with content and a -shm"
before=$(sums crash)
hkit_expect_exit 0 hcat crash/c.db
hkit_assert_eq 300 "$(printf '%s\n' "$OUT" | wc -l)" "messages read from the crashed recording"
hkit_assert_eq "c-00300" "$(printf '%s\n' "$OUT" | tail -1 | jq -r .payload)" "last message"
hkit_expect_exit 0 as_other hcat --info crash/c.db
hkit_assert_contains "$OUT" "messages:   300 " "--info of the crashed recording as another user"
hkit_assert_eq "$before" "$(sums crash)" "crashed recording after reading (nothing checkpointed)"

# the .db and -wal copied without the -shm, into a directory the reader may not write
mkdir pair
cp crash/c.db crash/c.db-wal pair/
[ "$(id -u)" = 0 ] || chmod 555 pair
before=$(sums pair)
hkit_expect_exit 0 as_other hcat pair/c.db
hkit_assert_eq 300 "$(printf '%s\n' "$OUT" | wc -l)" "messages read from a copied .db/-wal pair"
hkit_assert_eq "$before" "$(sums pair)" "copied pair after reading"
chmod 755 pair
echo ok

#!/usr/bin/env bash
# The disk fills up mid-capture (a file size limit stands in for a full disk): hrecord stops
# with a clear error and exit 1; what it committed before stays readable and intact.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
db=$HKIT_TMP/full.db

# SIGXFSZ ignored so writes past the limit fail with EFBIG, as they would with ENOSPC
timeout 60 bash -c 'trap "" XFSZ; ulimit -f 4096; exec "$@"' hrecord \
    hrecord --url "mqtt://127.0.0.1:$HKIT_BROKER_PORT" -t 'f/#' -o "$db" --flush-ms 20 \
    2>"$HKIT_TMP/err" &
rec=$!
for i in $(seq 1 200); do
    [ -f "$db" ] && [ "$(sqlite3 "$db" "select count(*) from sessions" 2>/dev/null)" = 1 ] && break
    hkit_sleep 0.05
done
head -c 20000 /dev/zero | tr '\0' x >"$HKIT_TMP/payload"
for i in $(seq 1 400); do
    kill -0 $rec 2>/dev/null || break
    mosquitto_pub -p "$HKIT_BROKER_PORT" -t f/x -q 1 -f "$HKIT_TMP/payload"
done
wait $rec && rc=0 || rc=$?
hkit_assert_eq 1 "$rc" "exit status on a full disk"
err=$(cat "$HKIT_TMP/err")
# EFBIG reads as an I/O error, ENOSPC as "database or disk is full": either names the file
hkit_assert_contains "$err" "hrecord: cannot write to '$db': " "error message"
hkit_assert_contains "$err" "everything committed before is" "what survives"
hkit_assert_eq ok "$(sqlite3 "$db" "pragma integrity_check")" "committed part intact"
n=$(sqlite3 "$db" "select count(*) from messages where length(payload) = 20000")
[ "$n" -gt 0 ] && [ "$n" -lt 400 ] || hkit_fail "expected a committed prefix, got $n messages"

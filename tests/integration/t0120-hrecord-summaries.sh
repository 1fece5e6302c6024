#!/usr/bin/env bash
# The summaries hrecord keeps (schema version 2) agree with a full scan by sqlite3 after a SIGKILL
# in mid-write, after --append onto the killed file, and after hcat --upgrade counts them again;
# reading the killed file with hcat --info changes none of its bytes.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
port=$HKIT_BROKER_PORT
db=$HKIT_TMP/rec.db
T=haltian-iot/events/intg/key/measurements
wait_count() { # sql-condition seconds
    local i n
    for i in $(seq 1 $(($2 * 20))); do
        n=$(sqlite3 "file:$db?mode=ro" "select count(*) from message_rows" 2>/dev/null || echo 0)
        [ "$n" -ge "$1" ] && return 0
        hkit_sleep 0.05
    done
    hkit_fail "timed out waiting for $1 messages in $db"
}
wait_session() { # sessions seconds
    local i
    for i in $(seq 1 $(($2 * 20))); do
        [ "$(sqlite3 "file:$db?mode=ro" "select count(*) from sessions" 2>/dev/null || echo 0)" \
            -ge "$1" ] && return 0
        hkit_sleep 0.05
    done
    hkit_fail "timed out waiting for session $1 in $db"
}
# what --info says against what sqlite3 counts over every row
compare() { # what
    local info want got
    info=$(hcat --info --json --top 0 "$db")
    hkit_assert_eq "$(sqlite3 "$db" "select count(*) from messages")" \
        "$(printf '%s' "$info" | jq .messages)" "$1: messages"
    hkit_assert_eq "$(sqlite3 "$db" "select total(length(payload)) from messages" | cut -d. -f1)" \
        "$(printf '%s' "$info" | jq .payload_bytes)" "$1: payload bytes"
    want=$(sqlite3 -separator = "$db" "select type, count(*) from messages group by type order by 2 desc, 1")
    got=$(printf '%s' "$info" | jq -r '.types[] | "\(.key)=\(.count)"')
    hkit_assert_eq "$want" "$got" "$1: types"
    want=$(sqlite3 -separator = "$db" "select device_id, count(*) from messages group by 1 order by 2 desc, 1")
    got=$(printf '%s' "$info" | jq -r '.devices[] | "\(.key)=\(.count)"')
    hkit_assert_eq "$want" "$got" "$1: devices"
    want=$(sqlite3 "$db" "select s.id || '=' || count(m.seq) from sessions s left join message_rows m on m.session_id = s.id group by s.id order by s.id")
    got=$(printf '%s' "$info" | jq -r '.sessions[] | "\(.id)=\(.messages)"')
    hkit_assert_eq "$want" "$got" "$1: sessions"
}
publish() { # topic-suffix count
    seq -f "{\"measured_at\":\"2026-02-05T10:30:45.123Z\",\"value\":%g}" 1 "$2" |
        timeout 60 mosquitto_pub -p "$port" -t "$T/$1" -q 0 -l
}

# a recorder killed while messages pour in
timeout 120 hrecord --url "mqtt://127.0.0.1:$port" -t 'haltian-iot/#' -o "$db" --flush-ms 50 \
    2>/dev/null &
rec=$!
wait_session 1 10
publish ambientTemperature/dev-1 3000
publish humidity/dev-2 2000
publish co2/dev-3 200000 &
pub=$!
wait_count 20000 30
kill -9 "$(pgrep -P $rec)" # hrecord itself, not the timeout wrapper
wait $rec 2>/dev/null || true
kill $pub 2>/dev/null || true
wait $pub 2>/dev/null || true

before=$(sha256sum "$db" "$db-wal" "$db-shm" 2>/dev/null)
hcat --info "$db" >/dev/null
hkit_assert_eq "$before" "$(sha256sum "$db" "$db-wal" "$db-shm" 2>/dev/null)" \
    "hcat --info changed no byte of the killed recording"
compare "after SIGKILL"

# --append onto the killed recording, then a clean stop
timeout 120 hrecord --url "mqtt://127.0.0.1:$port" -t 'haltian-iot/#' -o "$db" --append \
    --flush-ms 50 2>/dev/null &
rec=$!
wait_session 2 10
publish ambientTemperature/dev-4 5000
kill -INT "$(pgrep -P $rec)"
wait $rec 2>/dev/null || true
compare "after --append"
hkit_assert_eq "$(sqlite3 "$db" "select max(seq) from message_rows")" \
    "$(sqlite3 "$db" "select folded_seq from summary_state")" "a clean stop folds everything"

# counted again from scratch, the same
hkit_expect_exit 0 hcat --upgrade "$db"
hkit_assert_contains "$OUT" "schema version 2, summaries counted again" "--upgrade's report"
compare "after --upgrade"
echo "ok"

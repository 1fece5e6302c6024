#!/usr/bin/env bash
# Benchmark part: the recording store. bench_store appends HKIT_BENCH_MESSAGES Haltian-sized
# messages (161-byte topics, 1000 devices x 4 types, 59-byte JSON payloads) through
# hc_store_append with the decoded columns, then reads them all back through hc_store_query.
# Peer: the sqlite3 shell generating and writing the same number of rows of the same shape (topic
# id, payload, times, flags, measured_at, error flag) in one INSERT ... SELECT: SQLite on its own,
# with no per-message API call and no decoding, on the same machine in the same run. Medians of 3.
set -euo pipefail
: "${HKIT_BIN:?}"
n=${HKIT_BENCH_MESSAGES:-1000000}
runs=3
work=$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-store.XXXXXX")
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

out=()
for i in $(seq "$runs"); do
    out+=("$(TMPDIR=$work "$HKIT_BIN/bench_store" -n "$n")")
done
idx=()
for i in $(seq "$runs"); do
    idx+=("$(TMPDIR=$work "$HKIT_BIN/bench_store" -n "$n" -i -w)")
done
pick() { # pick <line prefix> <field number> <array...>
    local key=$1 f=$2
    shift 2
    for o in "$@"; do printf '%s\n' "$o" | awk -v k="$key" -v f="$f" 'index($0, k) == 1 {print $f}'; done |
        median
}
append_wall=$(pick "store append+close:" 3 "${out[@]}")
append_cpu=$(pick "store append CPU:" 4 "${out[@]}")
bytes=$(printf '%s\n' "${out[0]}" | awk 'index($0, "file size:") == 1 {gsub(/[(]/, "", $5); print $5}')
read_rate=$(pick "full read:" 3 "${out[@]}")
decode_rate=$(pick "decoder full pass:" 4 "${out[@]}")
index_s=$(pick "hc_store_index:" 2 "${out[@]}")
idx_wall=$(pick "store append+close:" 3 "${idx[@]}")
idx_cpu=$(pick "store append CPU:" 4 "${idx[@]}")

peer=()
if command -v sqlite3 >/dev/null; then
    for i in $(seq "$runs"); do
        rm -f "$work/peer.db" "$work/peer.db-wal" "$work/peer.db-shm"
        t0=$(date +%s.%N)
        sqlite3 "$work/peer.db" >/dev/null <<SQL
PRAGMA page_size = 32768;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE rows(seq INTEGER PRIMARY KEY, session_id INTEGER, received_at_ns INTEGER,
                  mono_ns INTEGER, topic_id INTEGER, payload BLOB, qos INTEGER, retain INTEGER,
                  dup INTEGER, measured_at_ms INTEGER, decode_error INTEGER, payload_type TEXT);
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < $n - 1)
INSERT INTO rows(session_id, received_at_ns, mono_ns, topic_id, payload, qos, retain, dup,
                 measured_at_ms, decode_error, payload_type)
SELECT 1, 1770287400000000000 + i * 1000, i * 1000, 1 + i % 4000,
       CAST(printf('{"measured_at":"2026-02-05T10:%02d:%02d.%03dZ","value":%8.3f}',
                   (i / 60000) % 60, (i / 1000) % 60, i % 1000, 900.0 + (i % 1000) * 0.125)
            AS BLOB),
       0, 0, 0, 1770285600000 + i, 0, NULL FROM c;
SQL
        t1=$(date +%s.%N)
        peer+=("$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.0f", n / (b - a)}')")
    done
fi
peer_rate=$(printf '%s\n' "${peer[@]:-}" | median)

echo "## Recording store"
echo
echo "\`bench_store -n $n\` (and \`-i -w\` for maintained indexes), median of $runs runs; peer:"
echo "the \`sqlite3\` shell generating and writing $n rows of the same shape in one statement."
echo
echo "| path | msg/s | note |"
echo "| --- | --- | --- |"
echo "| hc_store_append + close, decoded columns | $append_wall | $append_cpu per CPU second; ${bytes} bytes/message |"
echo "| same, with secondary indexes maintained | $idx_wall | $idx_cpu per CPU second |"
echo "| full read, hc_store_query + hc_cursor_next | $read_rate | |"
echo "| hc_decode_index alone (full decoding pass) | $decode_rate | the store runs the topic half once per topic |"
if [ -n "$peer_rate" ]; then
    ratio=$(awk -v a="$append_wall" -v b="$peer_rate" 'BEGIN {printf "%.2f", a / b}')
    echo "| peer: sqlite3 shell, one INSERT ... SELECT | $peer_rate | hkit reaches ${ratio}x of it |"
fi
echo
echo "hc_store_index afterwards: ${index_s} s."

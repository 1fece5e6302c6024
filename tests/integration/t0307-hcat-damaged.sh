#!/usr/bin/env bash
# Damaged recordings: `hcat --check` runs SQLite's integrity_check and the recording's own rules
# and fails on an index that no longer matches its table (which the open-time quick_check cannot
# see); every reader gives one line naming the cause, never SQLite's multi-line report; bytes
# flipped at random in 40 copies never crash hcat, hang it or make it print more than one
# line of error; --info on absurd arrival times (a damaged received_at) prints a summary
# without overflowing; a 0-byte .db is "empty", not "JSON lines".
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

hgen -o good.db --count 500 --quiet
hkit_expect_exit 0 hcat --check good.db
hkit_assert_eq "good.db: ok, 500 messages" "$OUT" "--check of an intact recording"
hkit_expect_exit 2 hcat --check --info good.db
hkit_assert_contains "$ERR" "hcat: --check cannot be combined with --info" "--check --info"

# --- an index whose entries no longer match the table ------------------------------------------
cp good.db idx.db
sqlite3 idx.db "CREATE INDEX message_rows_received_at ON message_rows(received_at_ns)"
root=$(sqlite3 idx.db "SELECT rootpage FROM sqlite_master WHERE name = 'message_rows_received_at'")
psize=$(sqlite3 idx.db "PRAGMA page_size")
# the last bytes of the index's root page hold a key: change one bit of it
python3 - idx.db "$root" "$psize" <<'PY'
import sys
path, root, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'r+b') as f:
    at = root * size - 5
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0x10]))
PY
[ "$(sqlite3 idx.db "PRAGMA quick_check")" = ok ] || hkit_fail "expected quick_check to pass"
[ "$(sqlite3 idx.db "PRAGMA integrity_check")" != ok ] || hkit_fail "expected index damage"
hkit_expect_exit 1 hcat --check idx.db
hkit_assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "one line for index damage"
hkit_assert_contains "$ERR" "hcat: 'idx.db' is damaged: " "index damage"
case $ERR in *'***'*) hkit_fail "SQLite's raw report leaked: $ERR" ;; esac

# --- a message naming a session that does not exist --------------------------------------------
cp good.db orphan.db
sqlite3 orphan.db "UPDATE message_rows SET session_id = 77 WHERE seq = 5"
hkit_expect_exit 1 hcat --check orphan.db
hkit_assert_eq "hcat: 'orphan.db' is damaged: message 5 names session 77, which does not exist" \
    "$ERR" "--check of a message without its session"

# --- a damaged page: one line naming the cause -------------------------------------------------
cp good.db page.db
python3 - page.db <<'PY'
import sys
with open(sys.argv[1], 'r+b') as f:
    size = int.from_bytes(open(sys.argv[1], 'rb').read(18)[16:18], 'big') or 65536
    f.seek(size + 0)       # page 2's b-tree header: an invalid page type
    f.write(b'\x77\x77\x77\x77')
PY
hkit_expect_exit 1 hcat page.db
hkit_assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "one line for a damaged page: $ERR"
hkit_assert_contains "$ERR" "hcat: 'page.db' is damaged: " "damaged page"
case $ERR in *'***'*) hkit_fail "SQLite's raw report leaked: $ERR" ;; esac

# --- random damage: no crash, no hang, one line --------------------------------------------------
python3 - good.db <<'PY'
import random, shutil, sys
src = sys.argv[1]
data = open(src, 'rb').read()
size = int.from_bytes(data[16:18], 'big') or 65536
rng = random.Random(11)
for i in range(40):
    b = bytearray(data)
    for _ in range(rng.choice([1, 4, 32])):
        at = rng.randrange(100, len(b))   # keep the SQLite header, hit anything after it
        b[at] ^= 1 << rng.randrange(8)
    open('rand-%02d.db' % i, 'wb').write(b)
PY
detected=0
for f in rand-*.db; do
    for cmd in "hcat $f" "hcat --info $f" "hcat --info --json $f" "hcat --check $f"; do
        rc=0
        timeout 20 $cmd >/dev/null 2>err.txt || rc=$?
        case $rc in 0 | 1) ;; *) hkit_fail "'$cmd' exited $rc (crash or hang): $(cat err.txt)" ;; esac
        lines=$(grep -vc "runtime error" err.txt || true)
        [ "$lines" -le 1 ] || hkit_fail "'$cmd' printed $lines lines: $(cat err.txt)"
        ! grep -q "runtime error\|Sanitizer" err.txt || hkit_fail "'$cmd': $(cat err.txt)"
    done
    if [ "$(sqlite3 "$f" "PRAGMA integrity_check" 2>/dev/null)" != ok ]; then
        timeout 20 hcat --check "$f" >/dev/null 2>&1 && hkit_fail "--check accepted $f, which" \
            "fails integrity_check"
        detected=$((detected + 1))
    fi
done
echo "random damage: $detected of 40 copies fail integrity_check, all refused by --check"

# --- absurd arrival times ------------------------------------------------------------------------
cp good.db times.db
sqlite3 times.db "UPDATE message_rows SET received_at_ns = -9223372036854775807 WHERE seq = 1;
    UPDATE message_rows SET received_at_ns = 9223372036854775807 WHERE seq = 2;
    UPDATE sessions SET ended_at_ns = -9223372036854775807"
# rows edited behind hkit's back: --upgrade counts the summaries again
hkit_expect_exit 0 hcat --upgrade times.db
hkit_expect_exit 0 hcat --info times.db
case $ERR in *"runtime error"*) hkit_fail "--info overflowed: $ERR" ;; esac
hkit_assert_contains "$OUT" "(106751d 23h 47m)" "a span beyond the int64 range, saturated"
hkit_expect_exit 0 hcat --info --json times.db
hkit_assert_eq 9223372036.854776 "$(printf '%s' "$OUT" | jq .duration_s)" "duration_s, saturated at the int64 range"

# --- an empty .db --------------------------------------------------------------------------------
: >empty.db
hkit_expect_exit 1 hcat --info empty.db
hkit_assert_eq "hcat: 'empty.db' is empty: not an hkit recording (nothing was ever written to it)" \
    "$ERR" "--info of a 0-byte file"
echo ok

#!/usr/bin/env bash
# hreplay's argument errors (exact message and exit status), foreign input and an unreachable
# broker (clear error, exit 1).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

echo '{"topic":"a/b","payload":"x"}' >"$HKIT_TMP/in.jsonl"
IN=$HKIT_TMP/in.jsonl

usage_error() { # expected-first-line args...
    local want=$1
    shift
    hkit_expect_exit 2 hreplay "$@"
    hkit_assert_eq "$want" "$(printf '%s\n' "$ERR" | head -1)" "hreplay $*"
    hkit_assert_eq "try 'hreplay --help'" "$(printf '%s\n' "$ERR" | sed -n 2p)" "hreplay $* hint"
}

usage_error "hreplay: no input given (a recording .db, JSON lines, or '-')"
usage_error "hreplay: unexpected argument 'b' (one input at a time)" a b
usage_error "hreplay: --speed and --max cannot be combined" --speed 2 --max "$IN"
usage_error "hreplay: --rate and --speed cannot be combined" --rate 5 --speed 2 "$IN"
usage_error "hreplay: invalid value '0' for --speed: must be between 1e-09 and 1e+09" --speed 0 "$IN"
usage_error "hreplay: invalid value 'fast' for --speed: not a number" --speed fast "$IN"
usage_error "hreplay: invalid value 'abc' for --rate: not a number" --rate abc "$IN"
usage_error "hreplay: invalid value '3' for --qos: must be between 0 and 2" -q 3 "$IN"
usage_error "hreplay: invalid value 'sometimes' for --retain: expected keep or never" --retain sometimes "$IN"
usage_error "hreplay: invalid value 'abc' for --remap: expected FROM=TO with a non-empty FROM" --remap abc "$IN"
usage_error "hreplay: invalid value '=x' for --remap: expected FROM=TO with a non-empty FROM" --remap =x "$IN"
usage_error "hreplay: invalid value '0' for --fanout: must be between 1 and 1000000" --fanout 0 "$IN"
usage_error "hreplay: invalid value '0' for --connections: must be between 1 and 256" --connections 0 "$IN"
usage_error "hreplay: invalid value '3/2' for --shard: expected K/N with 1 <= K <= N (e.g. 2/4)" --shard 3/2 "$IN"
usage_error "hreplay: invalid value '0/2' for --shard: expected K/N with 1 <= K <= N (e.g. 2/4)" --shard 0/2 "$IN"
usage_error "hreplay: invalid value '20ms' for --spin: at most 10ms" --spin 20ms "$IN"
usage_error "hreplay: invalid duration 'soon' for --spin: expected e.g. 250ms, 10s, 5m, 2h" --spin soon "$IN"
usage_error "hreplay: invalid value '-1' for --loop: must be between 0 and 1000000000" --loop -1 "$IN"
usage_error "hreplay: invalid value '0' for --inflight: must be between 1 and 65535" --inflight 0 "$IN"
usage_error "hreplay: invalid duration 'soon' for --max-gap: expected e.g. 250ms, 10s, 5m, 2h" --max-gap soon "$IN"
usage_error "hreplay: --max-gap applies to recorded timing; it cannot be combined with --max" --max --max-gap 1s "$IN"
usage_error "hreplay: --loop needs a file: standard input can be read only once" --loop 2 -
usage_error "hreplay: unknown option '--bogus'" --bogus "$IN"
usage_error "hreplay: option '--speed' needs a value" "$IN" --speed

hkit_expect_exit 0 hreplay --help
hkit_assert_contains "$OUT" "Usage: hreplay [OPTION]... INPUT" "--help"
hkit_assert_contains "$OUT" "--rebase-time" "--help"

# unreachable broker: clear error, exit 1
port=$(hkit_free_port)
hkit_expect_exit 1 hreplay --url "mqtt://127.0.0.1:$port" "$IN"
hkit_assert_contains "$ERR" "hreplay: cannot connect to '127.0.0.1:$port'" "unreachable broker"

# foreign and missing input
printf 'PK\003\004 not a recording' >"$HKIT_TMP/foreign.zip"
hkit_expect_exit 1 hreplay --url "mqtt://127.0.0.1:$port" "$HKIT_TMP/foreign.zip"
hkit_assert_eq "hreplay: '$HKIT_TMP/foreign.zip' is neither an hkit recording nor JSON lines" "$ERR" "foreign input"
hkit_expect_exit 1 hreplay "$HKIT_TMP/missing.jsonl"
hkit_assert_eq "hreplay: cannot open '$HKIT_TMP/missing.jsonl': No such file or directory" "$ERR" "missing input"
echo "t0201 ok"

#!/usr/bin/env bash
# hreplay --faults and its companions: each argument error's exact message and exit status 2
# (no broker needed: options are checked before connecting); redeliver over TLS is refused.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
T=$HKIT_TMP
echo '{"topic":"a/b","payload":"x"}' >"$T/in.jsonl"

usage() { # EXPECTED-LINE ARGS...
    local want=$1
    shift
    hkit_expect_exit 2 hreplay "$@" "$T/in.jsonl"
    hkit_assert_eq "hreplay: $want
try 'hreplay --help'" "$ERR" "hreplay $*"
}
usage "invalid value for --faults: 'drop=2': probability must be between 0 and 1, got '2'" --faults drop=2
usage "invalid value for --faults: 'lose=0.1': unknown kind 'lose' (drop, dup, redeliver, reorder, delay, stale, future, skew, corrupt, disconnect, retain, backlog)" --faults lose=0.1
usage "invalid value for --faults: 'delay=0.1': missing :by=DURATION" --faults delay=0.1
usage "invalid value for --faults: 'reorder=0.5:window=x': window must be a count from 1 to 1000000" --faults reorder=0.5:window=x
usage "invalid value for --faults: 'stale=0.1:by=1y': invalid duration '1y' for by: unknown unit 'y' (use us, ms, s, m, h or d)" --faults stale=0.1:by=1y
usage "invalid value for --faults: 'dup=0.1': dup is given twice" --faults dup=0.1,dup=0.1
usage "invalid value for --faults: empty fault spec (e.g. 'drop=0.01,dup=0.02')" --faults ''
usage "--faults is given twice (put every item in one spec)" --faults drop=0.1 --faults dup=0.1
usage "invalid value '-1' for --seed: expected a whole number from 0 to 18446744073709551615" --faults drop=0.1 --seed -1
usage "invalid value '18446744073709551616' for --seed: expected a whole number from 0 to 18446744073709551615" --faults drop=0.1 --seed 18446744073709551616
usage "--seed needs --faults" --seed 3
usage "--fault-log needs --faults" --fault-log "$T/f.log"
usage "--fault-type/--fault-device/--fault-kind/--fault-topic needs --faults" --fault-type co2
usage "invalid value '' for --fault-device: must not be empty" --faults drop=0.1 --fault-device ''

# over TLS paho sets the DUP flag only on its own retries: redeliver is refused up front
hkit_expect_exit 1 hreplay --url mqtts://127.0.0.1:1 --faults redeliver=0.1 "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: redeliver needs a plain mqtt:// url: over tls, paho sets the dup flag only on its own retries" "redeliver over tls"

# --help documents every kind
hkit_expect_exit 0 hreplay --help
for k in drop= dup= redeliver= reorder= delay= stale= future= skew= corrupt= disconnect= retain= backlog= \
    --seed --fault-type --fault-device --fault-kind --fault-topic --fault-log; do
    hkit_assert_contains "$OUT" "$k" "--help"
done
echo "t0213 ok"

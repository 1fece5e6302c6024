#!/usr/bin/env bash
# hgen argument errors: each prints one exact line plus the --help hint and exits 2; --help
# prints to stdout and exits 0.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

hkit_expect_exit 0 hgen --help
hkit_assert_contains "$OUT" "Usage: hgen" "--help"
hkit_assert_contains "$OUT" "Exit status" "--help lists exit codes"

expect_usage() { # expected-line args...
    local want=$1
    shift
    hkit_expect_exit 2 hgen "$@"
    hkit_assert_eq "$want
try 'hgen --help'" "$ERR" "hgen $*"
    hkit_assert_eq "" "$OUT" "stdout of hgen $*"
}

expect_usage "hgen: no output: use -o FILE.db, --jsonl or --url URL"
expect_usage "hgen: use only one output: -o FILE.db, --jsonl or --url URL" --jsonl -o x.db
expect_usage "hgen: invalid value 'lamp=3' for --devices: unknown device kind 'lamp' (known: environment, presence, air, beam, count, tag, radar, leakage, group)" --jsonl --devices lamp=3
expect_usage "hgen: invalid value 'air=x' for --devices: bad count 'x' for 'air'" --jsonl --devices air=x
expect_usage "hgen: invalid value 'air=0' for --devices: no devices in the mix" --jsonl --devices air=0
expect_usage "hgen: invalid value 'air=1,air=2' for --devices: device kind 'air' given twice" --jsonl --devices air=1,air=2
expect_usage "hgen: invalid duration '1y' for --duration: unknown unit 'y' (use us, ms, s, m, h or d)" --jsonl --duration 1y
expect_usage "hgen: invalid value '0' for --duration: must be between 1ms and 100 years" --jsonl --duration 0
expect_usage "hgen: invalid value 'yesterday' for --start: expected an RFC 3339 time such as 2026-02-02T08:00:00Z" --jsonl --start yesterday
expect_usage "hgen: invalid value 'abc' for --seed: not a whole number" --jsonl --seed abc
expect_usage "hgen: invalid value '-1' for --seed: not a whole number" --jsonl --seed -1
expect_usage "hgen: invalid value 'weird' for --shapes: use canonical or mixed" --jsonl --shapes weird
expect_usage "hgen: invalid value 'a/b' for --integration-id: must be one topic level (no '/', '+' or '#')" --jsonl --integration-id a/b
expect_usage "hgen: invalid value '#' for --api-key-id: must be one topic level (no '/', '+' or '#')" --jsonl --api-key-id '#'
expect_usage "hgen: invalid value '0' for --count: must be between 1 and 9000000000000000000" --jsonl --count 0
expect_usage "hgen: invalid value '2' for --qos: must be between 0 and 1" --url mqtt://127.0.0.1:1 -q 2
expect_usage "hgen: --speed, --rate and --max only apply when publishing (--url)" --jsonl --speed 10
expect_usage "hgen: use only one of --speed, --rate and --max" --url mqtt://127.0.0.1:1 --speed 2 --max
expect_usage "hgen: invalid value '0' for --speed: must be between 0.001 and 1e+09" --url mqtt://127.0.0.1:1 --speed 0
expect_usage "hgen: --force only applies to -o FILE.db" --jsonl --force
expect_usage "hgen: --shapes mixed does not apply to --thingsee messages" --jsonl --thingsee --shapes mixed
expect_usage "hgen: unknown option '--bogus'" --jsonl --bogus
expect_usage "hgen: option '--devices' needs a value" --jsonl --devices
expect_usage "hgen: unexpected argument 'extra'" --jsonl extra

# not usage errors: an existing output file, an unreachable broker
: >"$HKIT_TMP/exists.db"
hkit_expect_exit 1 hgen -o "$HKIT_TMP/exists.db" --quiet
hkit_assert_eq "hgen: '$HKIT_TMP/exists.db' already exists (use --force to replace it)" "$ERR" "existing output"
port=$(hkit_free_port)
hkit_expect_exit 1 timeout 30 hgen --url "mqtt://127.0.0.1:$port" --quiet --count 1
hkit_assert_contains "$ERR" "hgen: " "unreachable broker"
echo ok

# device groups have no Thingsee form: only groups is a usage error, groups among others a warning
expect_usage "hgen: --thingsee: device groups have no legacy Thingsee form, and --devices 'group=3' has no other devices" \
    --jsonl --thingsee --devices group=3
hkit_expect_exit 0 hgen --jsonl --thingsee --devices group=2,air=1 --duration 10m
hkit_assert_contains "$ERR" "hgen: warning: --thingsee: the 2 device groups in --devices send nothing (no legacy Thingsee form)" \
    "groups among others with --thingsee"
[ -n "$OUT" ] || hkit_fail "--thingsee with air devices printed nothing"

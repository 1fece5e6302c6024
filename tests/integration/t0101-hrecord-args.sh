#!/usr/bin/env bash
# hrecord's command line: every argument error pinned (exact message, exit 2), --help on stdout
# with exit 0 and no secrets, an existing recording refused (exit 1) before any connection.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
unset HALTIAN_API_KEY_ID HALTIAN_API_KEY_TOKEN HALTIAN_INTEGRATION_ID
cd "$HKIT_TMP"

usage_error() { # expected-first-line args...
    local want=$1
    shift
    hkit_expect_exit 2 hrecord "$@"
    hkit_assert_eq "hrecord: $want
try 'hrecord --help'" "$ERR" "hrecord $*"
    hkit_assert_eq "" "$OUT" "stdout of hrecord $*"
}
t=(-t 'a/#')
usage_error "invalid value '3' for --qos: must be between 0 and 2" "${t[@]}" -q 3
usage_error "invalid value 'x' for --qos: not a whole number" "${t[@]}" -q x
usage_error "unknown option '--bogus'" "${t[@]}" --bogus
usage_error "unknown option '-Z'" "${t[@]}" -Z
usage_error "option '-t' needs a value" -t
usage_error "option '--note' needs a value" "${t[@]}" --note
usage_error "invalid topic filter 'a/#/b': '#' must be the last level" -t 'a/#/b'
usage_error "invalid value '-1' for --flush-ms: must be between 0 and 3600000" "${t[@]}" --flush-ms -1
usage_error "invalid duration '0' for --duration: must be positive" "${t[@]}" --duration 0
usage_error "invalid duration '5x' for --duration: unknown unit 'x' (use us, ms, s, m, h or d)" \
    "${t[@]}" --duration 5x
usage_error "invalid value '0' for --count: must be between 1 and 9223372036854775807" "${t[@]}" -C 0
usage_error "use either --append or --force, not both" "${t[@]}" --append --force
usage_error "--reconnect-min must not be longer than --reconnect-max" "${t[@]}" \
    --reconnect-min 5s --reconnect-max 1s
usage_error "invalid duration '0' for --reconnect-min: must be between 1ms and 1d" "${t[@]}" \
    --reconnect-min 0
usage_error "unexpected argument 'extra'" "${t[@]}" extra
usage_error "invalid url 'http://x': expected mqtt://host[:port] or mqtts://host[:port]" \
    "${t[@]}" --url http://x
usage_error "use either --url or -h/-p, not both" "${t[@]}" --url mqtt://x -p 1883
usage_error "invalid value '' for --output: must not be empty" "${t[@]}" -o ''
usage_error "invalid value '.' for --output: is a directory" "${t[@]}" -o .
usage_error "the default subscription needs the integration id and API key id (--integration-id and --api-key-id, or HALTIAN_INTEGRATION_ID and HALTIAN_API_KEY_ID); or give -t FILTER"
usage_error "--kind/--type/--device needs the integration id and API key id (--integration-id and --api-key-id, or HALTIAN_INTEGRATION_ID and HALTIAN_API_KEY_ID); or give -t FILTER" \
    "${t[@]}" --kind measurements
usage_error "invalid value 'a/b' for --kind: must be one topic level (non-empty, no '/', '+' or '#')" \
    --integration-id i -u k --kind a/b
usage_error "invalid value '+' for --device: must be one topic level (non-empty, no '/', '+' or '#')" \
    --integration-id i -u k --device +
hkit_expect_exit 2 hrecord "${t[@]}" --token x
hkit_assert_contains "$ERR" "hrecord: a token needs an API key id (--api-key-id or HALTIAN_API_KEY_ID)
try 'hrecord --help'" "token without key id"
usage_error "use either --token or --token-file, not both" "${t[@]}" --token x --token-file y

# --help: stdout, exit 0, the defaults users need, never the token
export HALTIAN_API_KEY_TOKEN=$HKIT_TEST_TOKEN HALTIAN_API_KEY_ID=$HKIT_TEST_API_KEY_ID
hkit_expect_exit 0 hrecord --help
hkit_assert_eq "" "$ERR" "--help stderr"
hkit_assert_contains "$OUT" "Usage: hrecord [OPTIONS]" "--help usage line"
hkit_assert_contains "$OUT" "mqtts://haltian-iot-mqtt.eu.haltian.io:18883" "--help default broker"
hkit_assert_contains "$OUT" "hkit-<UTC time>.db" "--help default output"
hkit_assert_contains "$OUT" "haltian-iot/events/{integration-id}/{api-key-id}/#" "--help default filter"
hkit_assert_contains "$OUT" "Exit status: 0 success" "--help exit codes"
case $OUT in *"$HKIT_TEST_TOKEN"*) hkit_fail "--help shows the token" ;; esac

# an existing file is refused before connecting (the broker here does not even exist)
: >existing.db
hkit_expect_exit 1 hrecord --url mqtt://127.0.0.1:1 -t 'a/#' -o existing.db
hkit_assert_eq "hrecord: 'existing.db' already exists; use --append to add a session to it or --force to replace it" \
    "$ERR" "existing output"

# a token on the command line works but is warned about; the token never shows
hkit_expect_exit 1 hrecord --url mqtt://127.0.0.1:1 -t 'a/#' -o new.db --token "$HKIT_TEST_TOKEN"
hkit_assert_contains "$ERR" "warning: a token on the command line is visible to other users" \
    "--token warning"
case $ERR in *"$HKIT_TEST_TOKEN"*) hkit_fail "stderr shows the token" ;; esac
[ ! -e new.db ] || hkit_fail "failed start created new.db"
printf '%s\n' "$HKIT_TEST_TOKEN" >token
chmod 644 token
hkit_expect_exit 1 hrecord --url mqtt://127.0.0.1:1 -t 'a/#' -o new.db --token-file token
hkit_assert_contains "$ERR" "warning: token file 'token' has mode 0644: its group can read it, other users can read it; run: chmod 600 token" \
    "token file permissions"

#!/usr/bin/env bash
# Misbehaving consumers each get a one-line cause, leave no process behind and end within the
# stated timeouts: one that never subscribes, one subscribed to another integration, one that
# exits at once, one that ignores SIGINT and SIGTERM, one whose child keeps stdout open. Also:
# placeholders in CMD, the token kept out of argv, default signal dispositions.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

hkit_require_paho
C=$HKIT_SOURCE_DIR/fixtures/consumers
cd "$HKIT_TMP"
cp -r "$C/cases" .
CASE=cases/text-environment
MARK=hkit-t0507-$$

# no_orphans: nothing started with the marker in its environment is left (bounded wait)
no_orphans() {
    local i left
    for i in $(seq 1 100); do
        left=$(grep -l "HKIT_MARK=$MARK" /proc/[0-9]*/environ 2>/dev/null | grep -v "/proc/$$/" || true)
        [ -z "$left" ] && return 0
        hkit_sleep 0.05
    done
    hkit_fail "$1: processes left: $(for f in $left; do p=${f#/proc/}; p=${p%/environ}; ps -o pid=,args= -p "$p"; done)"
}
run() { # EXPECTED-EXIT CMD... : hverify with the marker, timed
    local want=$1
    shift
    START=$(date +%s%N)
    hkit_expect_exit "$want" env HKIT_MARK=$MARK hverify "$@"
    SECONDS_TAKEN=$((($(date +%s%N) - START) / 1000000000))
}

# --- never subscribes: the ready timeout, with its stderr -----------------------------------
run 1 --ready-timeout 1s --consumer "echo waiting >&2; sleep 600" $CASE
hkit_assert_contains "$OUT" "ERROR $CASE: consumer not ready after 1s: it never connected to the broker; its stderr: waiting" "never subscribes"
[ "$SECONDS_TAKEN" -le 8 ] || hkit_fail "never-subscribing consumer took ${SECONDS_TAKEN}s"
no_orphans "never subscribes"

# --- subscribed to another integration: the filter named ------------------------------------
run 1 --consumer "HALTIAN_INTEGRATION_ID=other-integration exec python3 $C/tutorial_client.py" $CASE
hkit_assert_contains "$OUT" "consumer subscribed to 'haltian-iot/events/other-integration/" "another integration"
hkit_assert_contains "$OUT" "which match none of the case's topics" "another integration"
no_orphans "another integration"

# --- exits at once ---------------------------------------------------------------------------
run 1 --consumer "echo bad config >&2; exit 2" $CASE
hkit_assert_contains "$OUT" "ERROR $CASE: consumer exited with status 2 before it subscribed; its stderr: bad config" "exits at once"
no_orphans "exits at once"

# --- ignores SIGINT and SIGTERM: killed after the grace periods -------------------------------
run 0 --stop-grace 300ms -v --consumer "trap '' INT TERM; python3 $C/tutorial_client.py" $CASE
hkit_assert_contains "$OUT" "consumer was killed by signal 9 (Killed) killed: it ignored SIGINT and SIGTERM" "ignores signals"
[ "$SECONDS_TAKEN" -le 10 ] || hkit_fail "stubborn consumer took ${SECONDS_TAKEN}s"
no_orphans "ignores SIGINT and SIGTERM"

# --- a child that keeps stdout open (and ignores SIGINT) does not hold the case ---------------
run 0 --consumer "(trap '' INT; exec sleep 600) & exec python3 $C/tutorial_client.py" $CASE
no_orphans "child keeping stdout open"
run 0 --consumer "setsid sleep 601 & exec python3 $C/tutorial_client.py" $CASE
no_orphans "setsid child"

# --- placeholders, token not in argv, default signal state ----------------------------------
run 0 --consumer "echo {port} {api_key_id} {integration_id} >args; cat {token_file} >tok; test -r {cafile} && echo \$HALTIAN_MQTT_URL >url; grep -E '^Sig(Ign|Blk)' /proc/self/status >sig; exec python3 $C/tutorial_client.py" $CASE
read -r port key integ <args
hkit_assert_eq "mqtts://127.0.0.1:$port" "$(cat url)" "url placeholder and environment"
hkit_assert_eq 36 "${#key}" "api key id"
case $(cat tok) in eyJ*.*.*) ;; *) hkit_fail "token file: $(cat tok)" ;; esac
hkit_assert_eq "SigBlk:	0000000000000000
SigIgn:	0000000000000000" "$(cat sig)" "consumer's signal state"

# --- usage errors --------------------------------------------------------------------------
hkit_expect_exit 2 hverify --consumer x --decoder y $CASE
hkit_assert_eq "hverify: --consumer and --decoder cannot be combined" "$(printf '%s' "$ERR" | head -1)" "exclusive"
hkit_expect_exit 2 hverify --timing fast --consumer x $CASE
hkit_assert_eq "hverify: invalid value 'fast' for --timing: expected max, recorded or speed:X" "$(printf '%s' "$ERR" | head -1)" "timing"

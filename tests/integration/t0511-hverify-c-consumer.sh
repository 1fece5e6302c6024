#!/usr/bin/env bash
# hverify --consumer with a C consumer (fixtures/consumers/c_consumer.c: libcore's subscriber,
# plain stdio that block-buffers a pipe) unchanged: its case passes over TLS and over plain MQTT,
# its outputs matched to the inputs for latency, and it is stopped with SIGINT. Piped stdio alone
# would hold every line until exit; hverify's pseudo-terminal makes them arrive as printed.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
trap 'echo "t0511: command failed at line $LINENO" >&2' ERR
CONSUMER=$HKIT_BIN/c_consumer
[ -x "$CONSUMER" ] || hkit_fail "$CONSUMER is missing (built with the tests)"
cd "$HKIT_TMP"
cp -r "$HKIT_SOURCE_DIR/fixtures/consumers/c-cases" .

hkit_expect_exit 0 hverify -v --consumer "$CONSUMER" c-cases
hkit_assert_contains "$OUT" "1 passed, 0 failed" "C consumer over TLS"
hkit_assert_contains "$OUT" "5 inputs sent, 5 output lines" "figures"
hkit_assert_contains "$OUT" "(5 inputs matched)" "latency matched by device id and measured_at"
hkit_assert_contains "$OUT" "consumer stopped after SIGINT" "stopped with SIGINT"
hkit_expect_exit 0 hverify --broker plain --consumer "$CONSUMER 0" c-cases
hkit_assert_contains "$OUT" "1 passed, 0 failed" "C consumer over plain MQTT"
# its own argument check: a bad QoS is a one-line cause with the consumer's stderr
hkit_expect_exit 1 hverify --consumer "$CONSUMER 7" c-cases
hkit_assert_contains "$OUT$ERR" "c_consumer: invalid QoS '7': expected 0, 1 or 2" "stderr tail"
left=$(pgrep -af -- "$CONSUMER" || true)
[ -z "$left" ] || hkit_fail "consumer left behind: $left"
echo "t0511: ok"

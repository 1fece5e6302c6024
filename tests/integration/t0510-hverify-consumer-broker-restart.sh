#!/usr/bin/env bash
# broker-restart: the private broker is killed mid-case and started again on the same ports;
# replay waits until the consumer has subscribed again, then goes on. The tutorial-style client
# (paho's loop_forever reconnects, on_connect subscribes) passes with the clean run's output;
# a consumer that does not reconnect fails with a one-line cause, leaving nothing behind.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

hkit_require_paho
C=$HKIT_SOURCE_DIR/fixtures/consumers
cd "$HKIT_TMP"
cp -r "$C/cases" "$C/latest-cases" .
MARK=hkit-t0510-$$

hkit_expect_exit 0 hverify -v --faults broker-restart --consumer "python3 $C/tutorial_client.py" cases/text-environment
hkit_assert_contains "$OUT" "faults 'broker-restart': 0 applied, broker restarted" "restarted"
hkit_assert_contains "$OUT" "1 passed, 0 failed" "tutorial client reconnects"
hkit_expect_exit 0 hverify --broker plain --faults 'broker-restart=at:20,dup=0.2:after=4' --seed 3 \
    --consumer "python3 $C/latest_correct.py -h {host} -p {port}" latest-cases/clean

# a consumer that never reconnects: paho's loop() without reconnecting
cat >noreconnect.py <<'PY'
import os, sys
import paho.mqtt.client as mqtt
c = mqtt.Client()
c.username_pw_set(os.environ["HALTIAN_API_KEY_ID"], os.environ["HALTIAN_API_KEY_TOKEN"])
c.on_connect = lambda cl, u, f, rc: cl.subscribe("haltian-iot/events/#", 1)
c.on_message = lambda cl, u, m: print(m.topic, flush=True)
c.connect(os.environ["HALTIAN_MQTT_HOST"], int(os.environ["HALTIAN_MQTT_PORT"]))
while c.loop(1.0) == 0:
    pass
import time
time.sleep(600)
PY
hkit_expect_exit 1 env HKIT_MARK=$MARK hverify --broker plain --ready-timeout 2s --stop-grace 200ms \
    --faults broker-restart --consumer "python3 noreconnect.py" latest-cases/clean
hkit_assert_contains "$OUT" "ERROR latest-cases/clean: consumer did not subscribe again within 2s of the broker restart (it did not reconnect)" "no reconnect"
for i in $(seq 1 100); do
    left=$(grep -l "HKIT_MARK=$MARK" /proc/[0-9]*/environ 2>/dev/null | grep -v "/proc/$$/" || true)
    [ -z "$left" ] && break
    hkit_sleep 0.05
done
[ -z "$left" ] || hkit_fail "processes left: $left"
hkit_expect_exit 2 hverify --url mqtt://127.0.0.1:1 --ready x --faults broker-restart --consumer true cases
hkit_assert_contains "$ERR" "broker-restart needs hverify's private broker (no --url)" "url"
echo "t0510 ok"

#!/usr/bin/env bash
# hverify --consumer with real Python paho consumers against its private Mosquitto: the
# tutorial-style client passes its cases (text mode) and the JSON client its own (JSON mode);
# deliberately broken variants fail with exit 3 naming the case, the input and the line.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

# the example consumers are paho-mqtt clients (python3 is HKIT_PY: see scripts/lib.sh)
hkit_require_paho
C=$HKIT_SOURCE_DIR/fixtures/consumers
cd "$HKIT_TMP"
cp -r "$C/cases" "$C/json-cases" .

# --- the tutorial client passes its text cases; the JSON client its JSON cases, over TLS --------
hkit_expect_exit 0 hverify -v --consumer "python3 $C/tutorial_client.py" cases
hkit_assert_contains "$OUT" "2 passed, 0 failed" "tutorial client"
hkit_assert_contains "$OUT" "5 inputs sent, 12 output lines" "figures"
hkit_assert_contains "$OUT" "consumer stopped after SIGINT" "stopped with SIGINT"
hkit_expect_exit 0 hverify --json --consumer "python3 $C/json_client.py" json-cases
hkit_assert_eq 5 "$(printf '%s' "$OUT" | jq '.cases[0].consumer.inputs_sent')" "json figures"
hkit_assert_eq 4 "$(printf '%s' "$OUT" | jq '.cases[0].consumer.latency_matched')" "latency matched"
# plain MQTT for the consumer
hkit_expect_exit 0 env HALTIAN_TLS=0 hverify --broker plain --consumer "python3 $C/json_client.py" json-cases

# --- broken variants: exit 3, naming the case, the input and the differing line ---------------
hkit_expect_exit 3 hverify --consumer "python3 $C/broken_fahrenheit.py" cases/text-environment
hkit_assert_contains "$OUT" "FAIL  cases/text-environment" "case named"
hkit_assert_contains "$OUT" "output line 2 (input 1: ambientTemperature, device 9b2f6c1e-4d3a-4f8b-a1c2-3e4d5f6a7b8c, 2026-02-05T10:30:45.123Z): at expected.txt line 2: expected \"🌡️ Temperature: 23.5°C (74.3°F)\", got \"🌡️ Temperature: 23.5°C (42.3°F)\"" "fahrenheit"
hkit_expect_exit 3 hverify --consumer "python3 $C/broken_drops_humidity.py" cases/text-environment
hkit_assert_contains "$OUT" "(input 2: humidity, device 9b2f6c1e-4d3a-4f8b-a1c2-3e4d5f6a7b8c, 2026-02-05T10:30:45.123Z): at expected.txt line 4: expected \"💧 Humidity: 45.8%\"" "humidity dropped"
hkit_expect_exit 3 hverify --consumer "python3 $C/broken_dies_on_malformed.py" cases/text-malformed-payload
hkit_assert_contains "$OUT" "FAIL  cases/text-malformed-payload" "case named"
hkit_assert_contains "$OUT" "missing output (input 3: ambientTemperature" "input named"
hkit_assert_contains "$OUT" "consumer exited with status 1 by itself before the case ended" "died"
hkit_assert_contains "$OUT" "JSONDecodeError" "stderr tail"
# JSON mode: the differing path
sed 's/"fahrenheit": round(c \* 9 \/ 5 + 32, 2)/"fahrenheit": round(c * 9 \/ 5, 2)/' "$C/json_client.py" >broken_json.py
hkit_expect_exit 3 hverify --consumer "python3 broken_json.py" json-cases/environment
hkit_assert_contains "$OUT" "(input 1: ambientTemperature, device 9b2f6c1e-4d3a-4f8b-a1c2-3e4d5f6a7b8c, 2026-02-05T10:30:45.123Z): at fahrenheit: expected 74.3, got 42.3" "json path"

#!/usr/bin/env bash
# hreplay into a Haltian-like broker (TLS with a CA made for the test, passwords, an ACL): with
# --cafile, -u and --token-file it delivers exactly the recording, rewritten with
# --integration-id/--api-key-id into the prefix the API key user may read, to a subscriber
# logged in as that user. A wrong token or user fails with exit 1 and a message naming the
# credentials; an untrusted CA fails with exit 1 naming TLS; the token never appears on stderr or
# in the report.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
CAP_PID=
trap '[ -z "$CAP_PID" ] || kill "$CAP_PID" 2>/dev/null || true; hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT
unset HALTIAN_API_KEY_ID HALTIAN_INTEGRATION_ID HALTIAN_API_KEY_TOKEN
hkit_broker_start "$HKIT_TMP/broker" tls auth
T=$HKIT_TMP
PORT=$HKIT_BROKER_PORT
URL=mqtts://127.0.0.1:$PORT
CA=$T/broker/ca.crt
printf '%s\n' "$HKIT_TEST_PUBLISHER_PASSWORD" >"$T/token"
printf '%s\n' "not-the-password" >"$T/wrong-token"
chmod 600 "$T/token" "$T/wrong-token"
PREFIX=haltian-iot/events/$HKIT_TEST_INTEGRATION_ID/$HKIT_TEST_API_KEY_ID
no_secret() { # text what
    case $1 in
    *"$HKIT_TEST_PUBLISHER_PASSWORD"* | *not-the-password* | *"$HKIT_TEST_TOKEN"*)
        hkit_fail "$2: a secret was printed: $1" ;;
    esac
}

# a field recording's ids (int-1/key-1) are rewritten into the test integration's prefix
H=haltian-iot/events/int-1/key-1
cat >"$T/rec.jsonl" <<JSONL
{"topic":"$H/measurements/ambientTemperature/dev-a","qos":1,"retain":false,"received_at":"2026-02-05T10:30:00.000Z","payload":"{\"measured_at\":\"2026-02-05T10:29:59.500Z\",\"value\":21.5}"}
{"topic":"$H/measurements/humidity/dev-b","qos":1,"retain":true,"received_at":"2026-02-05T10:30:00.050Z","payload_b64":"AAH/AA=="}
{"topic":"$H/measurements/co2/dev-c","qos":1,"retain":false,"received_at":"2026-02-05T10:30:00.100Z","payload":""}
{"topic":"$H/notifications/deviceOffline","qos":0,"retain":false,"received_at":"2026-02-05T10:30:00.150Z","payload":"{\"device\":\"dev-c\"}"}
JSONL
cat >"$T/want" <<WANT
$PREFIX/measurements/ambientTemperature/dev-a 0 1 $(printf '%s' '{"measured_at":"2026-02-05T10:29:59.500Z","value":21.5}' | xxd -p | tr -d '\n')
$PREFIX/measurements/humidity/dev-b 1 1 0001ff00
$PREFIX/measurements/co2/dev-c 0 1 
$PREFIX/notifications/deviceOffline 0 0 $(printf '%s' '{"device":"dev-c"}' | xxd -p | tr -d '\n')
WANT

# the subscriber is the API key user, over TLS, limited by the ACL to its own prefix
mosquitto_sub -h 127.0.0.1 -p "$PORT" --cafile "$CA" -u "$HKIT_TEST_API_KEY_ID" -P "$HKIT_TEST_TOKEN" \
    -V mqttv5 --retain-as-published -q 2 -t "$PREFIX/#" -F '%t %r %q %x' >"$T/cap.raw" 2>"$T/cap.err" &
CAP_PID=$!
for i in $(seq 1 100); do
    mosquitto_pub -h 127.0.0.1 -p "$PORT" --cafile "$CA" -u "$HKIT_TEST_PUBLISHER" \
        -P "$HKIT_TEST_PUBLISHER_PASSWORD" -t "$PREFIX/hkit-test/ready" -m x
    grep -q "^$PREFIX/hkit-test/ready " "$T/cap.raw" && break
    [ "$i" -lt 100 ] || hkit_fail "subscriber did not start: $(cat "$T/cap.err")"
    hkit_sleep 0.05
done

hkit_expect_exit 0 timeout 30 hreplay --url "$URL" --cafile "$CA" -u "$HKIT_TEST_PUBLISHER" \
    --token-file "$T/token" --integration-id "$HKIT_TEST_INTEGRATION_ID" \
    --api-key-id "$HKIT_TEST_API_KEY_ID" -v --report-json "$T/rep.json" "$T/rec.jsonl"
hkit_assert_contains "$ERR" "sent 4 messages, 0 failed" "report"
no_secret "$ERR" "successful replay (-v)"
no_secret "$(cat "$T/rep.json")" "report json"

mosquitto_pub -h 127.0.0.1 -p "$PORT" --cafile "$CA" -u "$HKIT_TEST_PUBLISHER" \
    -P "$HKIT_TEST_PUBLISHER_PASSWORD" -q 1 -t "$PREFIX/hkit-test/end" -m x
for i in $(seq 1 200); do
    grep -q "^$PREFIX/hkit-test/end " "$T/cap.raw" && break
    hkit_sleep 0.05
done
kill "$CAP_PID" 2>/dev/null || true
wait "$CAP_PID" 2>/dev/null || true
CAP_PID=
grep -v "^$PREFIX/hkit-test/" "$T/cap.raw" >"$T/cap" || true
diff "$T/want" "$T/cap" || hkit_fail "capture over TLS with auth differs from the recording"

# the token may also come from the environment
HALTIAN_API_KEY_TOKEN=$HKIT_TEST_PUBLISHER_PASSWORD hkit_expect_exit 0 timeout 30 hreplay \
    --url "$URL" --cafile "$CA" -u "$HKIT_TEST_PUBLISHER" --max "$T/rec.jsonl"
no_secret "$ERR" "token from the environment"

# wrong token: exit 1, the message names the credentials and the fix
hkit_expect_exit 1 timeout 30 hreplay --url "$URL" --cafile "$CA" -u "$HKIT_TEST_PUBLISHER" \
    --token-file "$T/wrong-token" -v "$T/rec.jsonl"
# (Mosquitto 2 answers a bad password with CONNACK 5, "not authorised")
REFUSED="hreplay: broker '127.0.0.1:$PORT' refused the connection: not authorised (check the API key id and token, and that the key is still valid)"
hkit_assert_eq "$REFUSED" "$ERR" "wrong token"
no_secret "$ERR" "wrong token"

# an unknown user is refused the same way
hkit_expect_exit 1 timeout 30 hreplay --url "$URL" --cafile "$CA" -u nobody --token-file "$T/token" \
    "$T/rec.jsonl"
hkit_assert_eq "$REFUSED" "$ERR" "unknown user"
no_secret "$ERR" "unknown user"

# untrusted CA: exit 1, the message names TLS, the reason and the fix
hkit_expect_exit 1 timeout 30 hreplay --url "$URL" --cafile "$T/broker/other-ca.crt" \
    -u "$HKIT_TEST_PUBLISHER" --token-file "$T/token" "$T/rec.jsonl"
hkit_assert_eq "hreplay: tls handshake with '127.0.0.1:$PORT' failed: certificate verify failed: unknown CA 'hkit test CA' (use --cafile to trust the broker's CA, or --insecure)" \
    "$ERR" "untrusted CA"
no_secret "$ERR" "untrusted CA"

# plain MQTT to a TLS listener fails clearly too (no hang)
hkit_expect_exit 1 timeout 30 hreplay --url "mqtt://127.0.0.1:$PORT" -u "$HKIT_TEST_PUBLISHER" \
    --token-file "$T/token" "$T/rec.jsonl"
hkit_assert_contains "$ERR" "hreplay: cannot connect to '127.0.0.1:$PORT'" "plain MQTT to a TLS port"
no_secret "$ERR" "plain MQTT to a TLS port"
echo "t0206 ok"

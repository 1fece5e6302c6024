#!/usr/bin/env bash
# Fatal connection errors stop hrecord at once with exit 1 and a message naming the cause and
# the fix: wrong token, untrusted CA, refused subscription, a broker that is not there. Then
# --insecure connects with a warning. Nothing is left behind by a failed start.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker" tls auth

url=mqtts://127.0.0.1:$HKIT_BROKER_PORT
ca=$HKIT_TMP/broker/ca.crt
export HALTIAN_API_KEY_ID=$HKIT_TEST_API_KEY_ID HALTIAN_INTEGRATION_ID=$HKIT_TEST_INTEGRATION_ID
export HALTIAN_API_KEY_TOKEN=wrong-token-value
no_token_anywhere() {
    case $ERR$OUT in *"$HKIT_TEST_TOKEN"* | *wrong-token-value*) hkit_fail "token printed" ;; esac
}

hkit_expect_exit 1 timeout 20 hrecord --url "$url" --cafile "$ca" -o "$HKIT_TMP/a.db"
hkit_assert_contains "$ERR" "hrecord: bad credentials" "wrong token"
hkit_assert_contains "$ERR" "check the API key id and token" "wrong token: the fix"
no_token_anywhere
[ ! -e "$HKIT_TMP/a.db" ] || hkit_fail "a failed start left a recording behind"

export HALTIAN_API_KEY_TOKEN=$HKIT_TEST_TOKEN
hkit_expect_exit 1 timeout 20 hrecord --url "$url" --cafile "$HKIT_TMP/broker/other-ca.crt" \
    -o "$HKIT_TMP/a.db"
hkit_assert_contains "$ERR" "tls handshake with '127.0.0.1:$HKIT_BROKER_PORT' failed" "untrusted CA"
hkit_assert_contains "$ERR" "certificate verify failed" "untrusted CA: reason"
hkit_assert_contains "$ERR" "--cafile" "untrusted CA: the fix"
no_token_anywhere
[ ! -e "$HKIT_TMP/a.db" ] || hkit_fail "a failed start left a recording behind"

# A refused subscription (SUBACK 0x80). Mosquitto 2.0 grants filters its acl_file denies and
# then delivers nothing, so a minimal broker stand-in that refuses every filter plays the part.
if command -v python3 >/dev/null; then
    fport=$(hkit_free_port)
    cat >"$HKIT_TMP/refuser.py" <<'PY'
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(1); srv.settimeout(20)
def packet():
    head = conn.recv(1)
    if not head: return None, b""
    mult, length = 1, 0
    while True:
        b = conn.recv(1)[0]; length += (b & 127) * mult; mult *= 128
        if not b & 128: break
    body = b""
    while len(body) < length: body += conn.recv(length - len(body))
    return head[0] >> 4, body
while True:                                  # skip the readiness probe's empty connection
    conn, _ = srv.accept(); conn.settimeout(20)
    kind, _ = packet()
    if kind == 1: break                       # CONNECT
conn.sendall(bytes([0x20, 2, 0, 0]))          # CONNACK accepted
kind, body = packet(); assert kind == 8       # SUBSCRIBE
conn.sendall(bytes([0x90, 3]) + body[:2] + bytes([0x80]))  # SUBACK: failure
packet(); conn.close()
PY
    python3 "$HKIT_TMP/refuser.py" "$fport" &
    fake=$!
    for i in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$fport") 2>/dev/null && break; hkit_sleep 0.05; done
    hkit_expect_exit 1 timeout 20 hrecord --url "mqtt://127.0.0.1:$fport" -t 'not/mine/#' \
        -o "$HKIT_TMP/a.db"
    wait $fake || true
    hkit_assert_contains "$ERR" "broker refused subscription 'not/mine/#'" "refused filter"
    hkit_assert_contains "$ERR" "may read it" "refused filter: the fix"
    [ ! -e "$HKIT_TMP/a.db" ] || hkit_fail "a refused subscription left a recording behind"
fi

# --insecure: connects without verifying, with a warning
hkit_expect_exit 0 timeout 20 hrecord --url "$url" --insecure --duration 0.3s -o "$HKIT_TMP/b.db"
hkit_assert_contains "$ERR" "warning: --insecure: the broker's certificate is not verified" \
    "--insecure warning"
hkit_assert_eq "1|duration reached" "$(sqlite3 "$HKIT_TMP/b.db" \
    "select count(*), end_reason from sessions")" "--insecure recording"
no_token_anywhere

# nothing listening: a clear message at once, not endless retries
port=$(hkit_free_port)
start=$(date +%s)
hkit_expect_exit 1 timeout 20 hrecord --url "mqtt://127.0.0.1:$port" -o "$HKIT_TMP/c.db"
hkit_assert_contains "$ERR" "cannot connect to '127.0.0.1:$port'" "dead broker"
hkit_assert_contains "$ERR" "is the broker running and reachable?" "dead broker: the fix"
hkit_assert_contains "$ERR" "--retry-connect" "dead broker: how to keep trying"
[ $(($(date +%s) - start)) -lt 5 ] || hkit_fail "dead broker took too long to report"
[ ! -e "$HKIT_TMP/c.db" ] || hkit_fail "a failed start left a recording behind"

# --retry-connect keeps trying; SIGINT during the backoff exits 0 at once
timeout 20 hrecord --url "mqtt://127.0.0.1:$port" --retry-connect --reconnect-min 5s \
    --reconnect-max 10s -o "$HKIT_TMP/c.db" 2>"$HKIT_TMP/retry.err" &
rec=$!
for i in $(seq 1 100); do
    grep -q "retrying in" "$HKIT_TMP/retry.err" && break
    hkit_sleep 0.05
done
kill -INT $rec
wait $rec && rc=0 || rc=$?
hkit_assert_eq 0 "$rc" "SIGINT during backoff"
hkit_assert_contains "$(cat "$HKIT_TMP/retry.err")" "connection attempt 1 failed" "retry logged"

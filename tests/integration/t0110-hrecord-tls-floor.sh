#!/usr/bin/env bash
# hkit's TLS floor and the reasons it gives. Every TLS verification failure is fatal at once,
# also with --retry-connect, and names what failed; a broker below the floor (TLS older than
# 1.2, a CA-signed 1024-bit RSA key) is refused before the password is sent; a plain port and
# an unresolvable host say so. Weak servers are real `openssl s_server` processes.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

export HALTIAN_API_KEY_ID=$HKIT_TEST_API_KEY_ID HALTIAN_INTEGRATION_ID=$HKIT_TEST_INTEGRATION_ID
export HALTIAN_API_KEY_TOKEN=$HKIT_TEST_TOKEN
certs=$HKIT_TMP/certs
hkit_make_certs "$certs"
ca=$certs/ca.crt

# sign KEYBITS CN SAN OUT: a server certificate from the test CA
sign() {
    openssl req -newkey "rsa:$1" -nodes -subj "/CN=$2" -keyout "$4.key" -out "$4.csr" \
        >/dev/null 2>&1
    printf 'subjectAltName=%s\n' "$3" >"$4.ext"
    openssl x509 -req -in "$4.csr" -CA "$ca" -CAkey "$certs/ca.key" -CAcreateserial -days 2 \
        -extfile "$4.ext" -out "$4.crt" >/dev/null 2>&1
}
no_token() { # text what
    case $1 in *"$HKIT_TEST_TOKEN"*) hkit_fail "$2: token printed" ;; esac
}

# --- a certificate for another host: fatal at once, even with --retry-connect ---------------
sign 2048 wrong.example DNS:wrong.example "$certs/wrong"
mkdir -p "$HKIT_TMP/bw"
cp "$ca" "$HKIT_TMP/bw/ca.crt"
cp "$certs/wrong.crt" "$HKIT_TMP/bw/server.crt"
cp "$certs/wrong.key" "$HKIT_TMP/bw/server.key"
chmod 644 "$HKIT_TMP/bw/server.key"
hkit_broker_start "$HKIT_TMP/bw" tls
hkit_expect_exit 1 timeout 20 hrecord --url "mqtts://localhost:$HKIT_BROKER_PORT" --cafile "$ca" \
    --retry-connect -o "$HKIT_TMP/a.db"
hkit_assert_contains "$ERR" "certificate is for 'wrong.example', not 'localhost'" "wrong host"
case $ERR in *"retrying in"* | *"refused or timed out"*) hkit_fail "wrong host retried: $ERR" ;; esac
[ "$(printf '%s\n' "$ERR" | grep -c 'failed')" = 1 ] || hkit_fail "wrong host: not one error: $ERR"
hkit_expect_exit 1 timeout 20 hrecord --url "mqtts://127.0.0.1:$HKIT_BROKER_PORT" --cafile "$ca" \
    --retry-connect -o "$HKIT_TMP/a.db"
hkit_assert_contains "$ERR" "certificate is for 'wrong.example', not '127.0.0.1'" "wrong ip"
# hreplay and hgen stop at once as well
printf '{"topic":"a/b","payload":"x"}\n' >"$HKIT_TMP/one.jsonl"
hkit_expect_exit 1 timeout 20 hreplay --url "mqtts://localhost:$HKIT_BROKER_PORT" --cafile "$ca" \
    "$HKIT_TMP/one.jsonl"
hkit_assert_contains "$ERR" "certificate is for 'wrong.example', not 'localhost'" "hreplay wrong host"
[ ! -e "$HKIT_TMP/a.db" ] || hkit_fail "a failed start left a recording behind"

# --- TLS to a plain MQTT port ---------------------------------------------------------------
hkit_broker_stop
hkit_broker_start "$HKIT_TMP/plain"
hkit_expect_exit 1 timeout 20 hrecord --url "mqtts://127.0.0.1:$HKIT_BROKER_PORT" --cafile "$ca" \
    --retry-connect -o "$HKIT_TMP/a.db"
hkit_assert_contains "$ERR" "it is a plain MQTT port, not TLS (use mqtt://127.0.0.1:$HKIT_BROKER_PORT" \
    "tls to a plain port"
no_token "$ERR" "plain port"
grep -q "$HKIT_TEST_API_KEY_ID" "$HKIT_TMP/plain/mosquitto.log" &&
    hkit_fail "credentials went to the plain port"
hkit_broker_stop

# --- an unresolvable host -------------------------------------------------------------------
hkit_expect_exit 1 timeout 30 hrecord --url "mqtts://no-such-host.invalid:8883" -o "$HKIT_TMP/a.db"
hkit_assert_contains "$ERR" "cannot resolve host 'no-such-host.invalid'" "unresolvable (tls)"
hkit_expect_exit 1 timeout 30 hrecord --url "mqtt://no-such-host.invalid:1883" -o "$HKIT_TMP/a.db"
hkit_assert_contains "$ERR" "cannot resolve host 'no-such-host.invalid'" "unresolvable (plain)"

# --- servers below the floor: openssl s_server, which prints what it receives ----------------
# s_server quits at the end of its standard input: a fifo this shell holds open keeps it up.
SERVER_PID=
server_start() { # OUT ARGS...
    local out=$1 i
    shift
    SERVER_PORT=$(hkit_free_port)
    rm -f "$HKIT_TMP/fifo"
    mkfifo "$HKIT_TMP/fifo"
    openssl s_server -accept "127.0.0.1:$SERVER_PORT" "$@" <"$HKIT_TMP/fifo" >"$out" 2>&1 &
    SERVER_PID=$!
    exec 7>"$HKIT_TMP/fifo"
    for i in $(seq 1 100); do
        grep -q '^ACCEPT' "$out" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || hkit_fail "s_server did not start: $(cat "$out")"
        hkit_sleep 0.05
    done
    hkit_fail "s_server did not start"
}
server_stop() {
    exec 7>&-
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
trap 'server_stop; hkit_capture_kill; hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT

# a CA-signed 1024-bit RSA key
sign 1024 localhost "IP:127.0.0.1,DNS:localhost" "$certs/weak"
server_start "$HKIT_TMP/weak.out" -cert "$certs/weak.crt" -key "$certs/weak.key" \
    -cipher 'DEFAULT:@SECLEVEL=0'
hkit_expect_exit 1 timeout 20 hrecord --url "mqtts://127.0.0.1:$SERVER_PORT" --cafile "$ca" \
    --retry-connect -o "$HKIT_TMP/a.db"
hkit_assert_contains "$ERR" "weak key: server certificate 'localhost' has a 1024-bit RSA key" \
    "1024-bit key"
server_stop
no_token "$(cat "$HKIT_TMP/weak.out")" "the weak-key server received the password"
grep -q "$HKIT_TEST_API_KEY_ID" "$HKIT_TMP/weak.out" && hkit_fail "weak-key server got the user name"

# TLS 1.0 and 1.1 only
for proto in tls1 tls1_1; do
    server_start "$HKIT_TMP/$proto.out" -cert "$certs/server.crt" -key "$certs/server.key" \
        "-$proto" -cipher 'DEFAULT:@SECLEVEL=0'
    hkit_expect_exit 1 timeout 20 hrecord --url "mqtts://127.0.0.1:$SERVER_PORT" --cafile "$ca" \
        --retry-connect -o "$HKIT_TMP/a.db"
    hkit_assert_contains "$ERR" "old protocol" "$proto only"
    hkit_assert_contains "$ERR" "TLS 1.2 or newer" "$proto only: the floor"
    server_stop
    no_token "$(cat "$HKIT_TMP/$proto.out")" "the $proto server received the password"
done

# (a good broker through the same probe: t0103, t0206)
[ ! -e "$HKIT_TMP/a.db" ] || hkit_fail "a failed start left a recording behind"

# Shell helpers shared by scripts/demo, scripts/bench and tests/integration: free loopback ports,
# a private Mosquitto broker (optionally set up like Haltian's: TLS with a CA made here, password
# auth with a UUID user name and a JWT-shaped token, an ACL limiting that user to its own topic
# prefix), and small assertions. Source it; it defines functions only.

# hkit_free_port: prints a TCP port on 127.0.0.1 that nothing listens on (random, checked; a
# race with another process remains, so hkit_broker_start retries on 'Address already in use').
hkit_free_port() {
    local port i
    for ((i = 1; i <= 50; i++)); do
        # below the kernel's ephemeral range (32768-60999), where client sockets take ports
        port=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# Identities used by the Haltian-like broker.
HKIT_TEST_INTEGRATION_ID=3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44
HKIT_TEST_API_KEY_ID=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
# JWT-shaped (header.payload.signature, base64url); not a real token.
HKIT_TEST_TOKEN='eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhMWIyYzNkNC1lNWY2LTRhN2ItOGM5ZC0wZTFmMmEzYjRjNWQiLCJleHAiOjE4MDAwMDAwMDB9.c2lnbmF0dXJlLW5vdC1yZWFs'
HKIT_TEST_PUBLISHER=hkit-publisher
HKIT_TEST_PUBLISHER_PASSWORD=publisher-secret

# hkit_make_certs DIR: a CA and a server certificate for 127.0.0.1/localhost in DIR, and a second,
# unrelated CA. With HKIT_TEST_CACHE set (ctest sets it to a directory of the build) they are made
# once there and copied: three RSA keys are most of a TLS test's start-up. Made anew when a day
# old; they are valid for two.
hkit_make_certs() {
    local dir=$1 cache=${HKIT_TEST_CACHE:+$HKIT_TEST_CACHE/certs}
    [ -n "$cache" ] || { hkit__make_certs "$dir"; return; }
    mkdir -p "$dir" "$HKIT_TEST_CACHE" || return 1
    (
        flock 9 || exit 1
        if [ ! -f "$cache/complete" ] || [ -n "$(find "$cache/complete" -mmin +1440)" ]; then
            rm -rf "$cache" && hkit__make_certs "$cache" && : >"$cache/complete"
        fi
    ) 9>"$cache.lock" || return 1
    cp "$cache"/*.crt "$cache"/*.key "$dir"/
}
hkit__make_certs() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hkit test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1 || return 1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1 || return 1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/server.crt" >/dev/null 2>&1 || return 1
    # a second, unrelated CA for "untrusted CA" tests
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" \
        -keyout "$dir/other-ca.key" -out "$dir/other-ca.crt" >/dev/null 2>&1 || return 1
    chmod 644 "$dir"/*.key
}

# hkit_broker_start DIR [tls] [auth] [stock]: starts mosquitto in the background with its config
# and log in DIR; sets HKIT_BROKER_PORT and HKIT_BROKER_PID. With "tls" it listens with TLS (certs
# from hkit_make_certs in DIR); with "auth" it requires passwords and applies the ACL; with
# "stock" it keeps Mosquitto's default queue and in-flight limits. HKIT_BROKER_EXTRA_CONF adds
# configuration lines. HKIT_BROKER_DIR names DIR; its mosquitto.log also logs each subscription
# ("<client id> <qos> <filter>"), which hkit_wait_subscribed waits for.
# Known queue limits so a slow consumer is never silently dropped by the broker's defaults.
hkit_broker_start() {
    local attempt rc
    for attempt in 1 2 3 4 5; do
        hkit__broker_start_once "$@" && return 0
        rc=$?
        # another process took the free port between the check and the bind: pick another
        [ $rc = 2 ] && [ -z "${HKIT_BROKER_PORT_WANTED:-}" ] || break
        rm -f "$1/mosquitto.out" "$1/mosquitto.log"
    done
    echo "mosquitto failed to start:" >&2
    cat "$1/mosquitto.out" "$1/mosquitto.log" >&2 2>/dev/null
    return 1
}

hkit__broker_start_once() {
    local dir=$1 mode_tls=no mode_auth=no mode_stock=no arg
    shift
    for arg in "$@"; do
        case $arg in
        tls) mode_tls=yes ;;
        auth) mode_auth=yes ;;
        stock) mode_stock=yes ;;
        esac
    done
    mkdir -p "$dir"
    HKIT_BROKER_DIR=$dir
    HKIT_BROKER_PORT=${HKIT_BROKER_PORT_WANTED:-$(hkit_free_port)}
    {
        echo "listener $HKIT_BROKER_PORT 127.0.0.1"
        echo "persistence false"
        if [ $mode_stock = no ]; then
            echo "max_queued_messages 0"
            echo "max_queued_bytes 0"
            echo "max_inflight_messages 0"
            echo "message_size_limit 0"
        fi
        # extra configuration lines for one test (e.g. a low max_packet_size)
        [ -z "${HKIT_BROKER_EXTRA_CONF:-}" ] || printf '%s\n' "$HKIT_BROKER_EXTRA_CONF"
        echo "log_dest file $dir/mosquitto.log"
        echo "log_type error"
        echo "log_type warning"
        echo "log_type notice"
        echo "log_type information"
        echo "log_type subscribe"
        [ "$EUID" = 0 ] && echo "user root"
        if [ $mode_tls = yes ]; then
            [ -f "$dir/server.crt" ] || hkit_make_certs "$dir" || return 1
            echo "cafile $dir/ca.crt"
            echo "certfile $dir/server.crt"
            echo "keyfile $dir/server.key"
            echo "tls_version tlsv1.2"
        fi
        if [ $mode_auth = yes ]; then
            echo "allow_anonymous false"
            echo "password_file $dir/passwd"
            echo "acl_file $dir/acl"
        else
            echo "allow_anonymous true"
        fi
    } >"$dir/mosquitto.conf"
    if [ $mode_auth = yes ]; then
        : >"$dir/passwd"
        mosquitto_passwd -b "$dir/passwd" "$HKIT_TEST_API_KEY_ID" "$HKIT_TEST_TOKEN" || return 1
        mosquitto_passwd -b "$dir/passwd" "$HKIT_TEST_PUBLISHER" "$HKIT_TEST_PUBLISHER_PASSWORD" || return 1
        chmod 600 "$dir/passwd"
        cat >"$dir/acl" <<ACL
user $HKIT_TEST_API_KEY_ID
topic read haltian-iot/events/$HKIT_TEST_INTEGRATION_ID/$HKIT_TEST_API_KEY_ID/#

user $HKIT_TEST_PUBLISHER
topic readwrite #
ACL
        chmod 600 "$dir/acl"
    fi
    mosquitto -c "$dir/mosquitto.conf" >>"$dir/mosquitto.out" 2>&1 &
    HKIT_BROKER_PID=$!
    echo "$HKIT_BROKER_PID" >"$dir/mosquitto.pid"
    # Wait (bounded) until our mosquitto says it is running: a connection test alone could reach
    # another process that took the port while ours failed to bind it.
    local i
    for ((i = 1; i <= 100; i++)); do
        if grep -qs " running$" "$dir/mosquitto.log" && kill -0 "$HKIT_BROKER_PID" 2>/dev/null &&
            (exec 3<>"/dev/tcp/127.0.0.1/$HKIT_BROKER_PORT") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$HKIT_BROKER_PID" 2>/dev/null; then
            wait "$HKIT_BROKER_PID" 2>/dev/null || true
            HKIT_BROKER_PID=
            grep -qs "Address already in use" "$dir/mosquitto.out" "$dir/mosquitto.log" && return 2
            return 1
        fi
        hkit_sleep 0.05
    done
    echo "mosquitto did not start listening on port $HKIT_BROKER_PORT" >&2
    kill "$HKIT_BROKER_PID" 2>/dev/null || true
    return 1
}

# hkit_broker_stop: stops the broker this shell started (that pid only).
hkit_broker_stop() {
    if [ -n "${HKIT_BROKER_PID:-}" ]; then
        kill "$HKIT_BROKER_PID" 2>/dev/null || true
        wait "$HKIT_BROKER_PID" 2>/dev/null || true
        HKIT_BROKER_PID=
    fi
}

# Assertions for integration tests: each failure prints the reason and exits 1.
hkit_fail() {
    echo "FAIL: $*" >&2
    exit 1
}
hkit_assert_eq() { # expected actual what
    [ "$1" = "$2" ] || hkit_fail "$3: expected '$1', got '$2'"
}
hkit_assert_contains() { # haystack needle what
    case $1 in *"$2"*) ;; *) hkit_fail "$3: expected to contain '$2', got: $1" ;; esac
}
# hkit_fake_broker MODE: starts tests/brokers/fake_broker.py in MODE (a misbehaving broker
# Mosquitto cannot play) and waits until it listens. Sets FAKE_PID (the caller stops it),
# FAKE_PORT, FAKE_LOG (a line per connection) and FAKE_PUB (a line per PUBLISH received), files
# $HKIT_TMP/port.MODE.log and .pub.
hkit_fake_broker() {
    local port=$HKIT_TMP/port.$1
    rm -f "$port" "$port.log" "$port.pub"
    python3 "$HKIT_SOURCE_DIR/tests/brokers/fake_broker.py" "$1" "$port" &
    FAKE_PID=$!
    hkit_wait_for 100 0.05 "fake broker $1" "[ -s '$port' ]"
    FAKE_PORT=$(<"$port")
    FAKE_LOG=$port.log
    FAKE_PUB=$port.pub
}
# hkit_report FILE KEY: a top-level member of a JSON report (--report-json), as Python prints it
# (null: None, true: True).
hkit_report() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
# hkit_expect_exit CODE CMD...: runs CMD capturing stdout/stderr into $OUT/$ERR.
hkit_expect_exit() {
    local want=$1 got
    shift
    OUT=$("$@" 2>"$HKIT_TMP/stderr") && got=0 || got=$?
    ERR=$(<"$HKIT_TMP/stderr")
    [ "$got" = "$want" ] || hkit_fail "'$*' exited $got, expected $want; stderr: $ERR"
}

# hkit_sleep SECONDS: waits without starting a process, as bash's read with a timeout on a FIFO
# that nobody writes to. Poll loops call it often, and each process start costs milliseconds of
# CPU. The FIFO is opened once per shell (hkit_test_setup does it; a subshell calling this first
# opens its own) and unlinked at once; falls back to sleep(1) if that fails.
HKIT__SLEEP_FD=
hkit_sleep() {
    if [ -z "$HKIT__SLEEP_FD" ] || [ "${HKIT__SLEEP_PID:-}" != "$BASHPID" ]; then
        local fifo
        fifo=$(mktemp -u "${HKIT_TMP:-${TMPDIR:-/tmp}}/.sleep.XXXXXX")
        if mkfifo -m 600 "$fifo" && exec {HKIT__SLEEP_FD}<>"$fifo"; then
            HKIT__SLEEP_PID=$BASHPID
            rm -f "$fifo"
        else
            HKIT__SLEEP_FD=
            sleep "$1"
            return 0
        fi
    fi
    read -r -t "$1" -u "$HKIT__SLEEP_FD" _ || true
}

# hkit_wait_for TRIES DELAY WHAT CONDITION: evaluates the shell CONDITION until it holds, at most
# TRIES times DELAY seconds apart (redis's wait_for_condition); fails the test naming WHAT when it
# never does. Tests wait for a condition (a log line, a count, a file), never a fixed time.
hkit_wait_for() {
    hkit_poll "$1" "$2" "$4" || hkit_fail "timed out waiting for $3 ($1 tries, ${2}s apart)"
}
# hkit_wait_cmd WHAT SECONDS COMMAND...: as hkit_wait_for, for a command with its arguments:
# runs it every 50 ms until it succeeds, for at most SECONDS.
hkit_wait_cmd() {
    local what=$1 secs=$2
    shift 2
    hkit_wait_for $((secs * 20)) 0.05 "$what" "$(printf '%q ' "$@")"
}
# hkit_poll TRIES DELAY CONDITION: as hkit_wait_for, but returns 1 instead of failing.
hkit_poll() {
    local tries=$1 delay=$2 condition=$3 i
    for ((i = 1; i <= tries; i++)); do
        eval "$condition" && return 0
        [ "$i" = "$tries" ] || hkit_sleep "$delay"
    done
    return 1
}
# hkit_wait_subscribed CLIENT_ID FILTER: until the broker logged that CLIENT_ID subscribed to
# FILTER (10 s at most).
hkit_wait_subscribed() {
    hkit_wait_for 200 0.05 "'$1' to subscribe to '$2'" "$(printf 'hkit__subscribed %q %q' "$1" "$2")"
}
hkit__subscribed() { # CLIENT_ID FILTER
    grep -qF -e ": $1 0 $2" -e ": $1 1 $2" -e ": $1 2 $2" "$HKIT_BROKER_DIR/mosquitto.log"
}

# hkit_wait_disconnected CLIENT_ID: until the broker logged the end of CLIENT_ID's connection.
# The broker reads a connection's packets in order, so everything that client published has
# been routed by then: an end marker published afterwards arrives after it.
hkit_wait_disconnected() {
    hkit_wait_for 200 0.05 "'$1' to disconnect" \
        "$(printf 'grep -qE %q %q' "Client $1 (disconnected|closed its connection)" \
            "$HKIT_BROKER_DIR/mosquitto.log")"
}

# hkit_sub_start FILE FORMAT MOSQUITTO_SUB_ARGS...: an independent subscriber (mosquitto_sub at
# QoS 1 on the broker's port unless the arguments say otherwise: later -q/-p win) printing FORMAT
# (-F) into FILE, also subscribed to the marker topics hkit-test/#. Returns once it receives;
# sets HKIT_SUB_PID. Several may run at once.
hkit_sub_start() {
    local file=$1 format=$2
    shift 2
    mosquitto_sub -h 127.0.0.1 -p "${HKIT_BROKER_PORT:-1883}" -q 1 "$@" -t 'hkit-test/#' -F "$format" \
        >"$file" 2>"$file.err" &
    HKIT_SUB_PID=$!
    hkit_wait_for 100 0.05 "the subscriber writing '$file' to start" \
        "$(printf 'hkit__sub_probe %q %q' "$file" "$*")"
}
hkit__sub_probe() { # FILE ARGS: the port from ARGS' last -p, else the broker's
    local port=${HKIT_BROKER_PORT:-1883} prev= a
    for a in $2; do
        [ "$prev" != -p ] || port=$a
        prev=$a
    done
    mosquitto_pub -h 127.0.0.1 -p "$port" -t hkit-test/ready -m x 2>/dev/null || true
    grep -q 'hkit-test/ready' "$1"
}
# hkit_sub_flush FILE [PORT]: publishes an end marker at QoS 1 and waits (10 s at most) until the
# subscriber writing FILE has it: what reached the broker before at QoS 1 has arrived too.
hkit_sub_flush() {
    mosquitto_pub -h 127.0.0.1 -p "${2:-$HKIT_BROKER_PORT}" -q 1 -t hkit-test/end -m x
    hkit_wait_for 200 0.05 "the end marker in '$1'" "$(printf 'grep -q hkit-test/end %q' "$1")"
}

# An independent subscriber for checking what a tool published: mosquitto_sub at QoS 2 with
# retain flags as published, one line "topic retain qos hexpayload" per message.
# hkit_capture_start FILE FILTER: captures FILTER (plus marker topics) into FILE.raw; returns once
# the subscriber is receiving. hkit_capture_stop FILE: publishes an end marker, waits for it and
# for the capture to stop growing (MQTT orders messages only within one QoS level, so a QoS 2
# message may follow the marker), stops the subscriber and writes the lines without markers to
# FILE. One capture at a time; hkit_test_setup's exit trap stops a capture left running.
# Keep QoS 2 traffic into it to a few hundred messages: Mosquitto 2.0.11's MQTT 5 subscriber
# drops its connection ("protocol error") after a few hundred QoS 2 messages, whoever publishes
# them: pass mqttv311 as a third argument for those (retain flags then read 0).
HKIT_CAPTURE_PID=
hkit_capture_start() { # FILE FILTER [mqttv311: no retain-as-published, for many QoS 2 messages]
    local proto=(-V mqttv5 --retain-as-published)
    [ "${3:-}" != mqttv311 ] || proto=(-V mqttv311)
    hkit_sub_start "$1.raw" '%t %r %q %x' "${proto[@]}" -q 2 -t "$2"
    HKIT_CAPTURE_PID=$HKIT_SUB_PID
}
hkit_capture_stop() {
    local i before=-1 now
    mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -q 1 -t hkit-test/end -m x
    hkit_poll 200 0.05 "grep -q '^hkit-test/end ' '$1.raw'" || true
    for ((i = 1; i <= 20; i++)); do
        now=$(wc -l <"$1.raw")
        [ "$now" = "$before" ] && break
        before=$now
        hkit_sleep 0.2
    done
    hkit_capture_kill
    grep -v '^hkit-test/' "$1.raw" >"$1" || true
}
hkit_capture_kill() {
    if [ -n "${HKIT_CAPTURE_PID:-}" ]; then
        kill "$HKIT_CAPTURE_PID" 2>/dev/null || true
        wait "$HKIT_CAPTURE_PID" 2>/dev/null || true
        HKIT_CAPTURE_PID=
    fi
}

# HKIT_PY: the Python that tests, benchmarks and the demo run, Debian's /usr/bin/python3 (where
# scripts/setup installs python3-paho-mqtt for the example consumers), else the python3 on PATH.
# Chosen once, by path: a version manager's python3 shim on PATH costs a quarter of a second of
# CPU per start, which was most of the integration tests' CPU time.
if [ -x /usr/bin/python3 ]; then HKIT_PY=/usr/bin/python3; else HKIT_PY=$(command -v python3 || echo python3); fi

# hkit_require_paho: fails the test unless HKIT_PY can import paho-mqtt.
hkit_require_paho() {
    python3 -c 'import paho.mqtt.client' ||
        hkit_fail "$HKIT_PY lacks paho-mqtt: install python3-paho-mqtt (scripts/setup does)"
}

# hkit_test_setup: a temp dir ($HKIT_TMP) removed at exit together with the broker; PATH starts
# with the build's tools and a python3 that is HKIT_PY, so "python3" means the same everywhere,
# also in the commands hverify and hreplay run (--consumer, --decoder).
hkit_test_setup() {
    HKIT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/hkit-test.XXXXXX")
    trap 'hkit_capture_kill; hkit_broker_stop; rm -rf "$HKIT_TMP"' EXIT
    : "${HKIT_BIN:?HKIT_BIN must point at the bin directory of a build}"
    mkdir "$HKIT_TMP/.bin"
    ln -s "$HKIT_PY" "$HKIT_TMP/.bin/python3"
    export PATH="$HKIT_BIN:$HKIT_TMP/.bin:$PATH"
    hkit_sleep 0
    # hverify behaves differently under CI (it never writes fixtures): a test that wants that
    # says CI=true itself, so the suite means the same inside and outside CI
    unset CI
}

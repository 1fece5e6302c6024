#!/usr/bin/env bash
# hkit-test: serial (asserts a median lateness: run alone, labelled timing)
# Messages leave hreplay when they are due, not only when hreplay's publish call returns: a
# message due 5 ms after a QoS 0 message must not wait for the broker's TCP acknowledgement of
# that one (Nagle's algorithm holds a small write while earlier data is unacknowledged, and the
# broker's kernel delays that acknowledgement by ~40 ms when it has nothing to send back, which
# is the case after QoS 0). Same for the PUBREL that completes a QoS 2 message. hreplay's own
# lateness report cannot see this (it measures the publish call), so an independent subscriber
# timestamps arrivals (mosquitto_sub %U), against a broker with set_tcp_nodelay so that only
# hreplay's side is measured. Over plain MQTT and over TLS.
#
# Groups 150 ms apart: A QoS 1 (+0), B QoS 0 (+5 ms), C QoS 1 (+10 ms), D QoS 2 (+15 ms). Each
# message's lateness is taken relative to A of its group (same clock: the subscriber's); the
# median over the groups must stay under 15 ms (on time is < 1 ms here; held back is ~40 ms).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
CAP_PID=
BROKER=
trap '[ -z "$CAP_PID" ] || kill "$CAP_PID" 2>/dev/null || true
    [ -z "$BROKER" ] || kill "$BROKER" 2>/dev/null || true; rm -rf "$HKIT_TMP"' EXIT
T=$HKIT_TMP

# a broker like lib.sh's plus set_tcp_nodelay (lib.sh has no switch for it), TLS on a second port
hkit_make_certs "$T/certs"
PORT=$(hkit_free_port)
TLS_PORT=$(hkit_free_port)
cat >"$T/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous true
persistence false
set_tcp_nodelay true
max_queued_messages 0
max_inflight_messages 0
log_dest file $T/mosquitto.log
listener $PORT 127.0.0.1
listener $TLS_PORT 127.0.0.1
cafile $T/certs/ca.crt
certfile $T/certs/server.crt
keyfile $T/certs/server.key
CONF
[ "$(id -u)" = 0 ] && echo "user root" >>"$T/mosquitto.conf"
mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.out" 2>&1 &
BROKER=$!
hkit_poll 100 0.05 "(exec 3<>/dev/tcp/127.0.0.1/$TLS_PORT) 2>/dev/null" ||
    hkit_fail "broker did not start: $(cat "$T/mosquitto.out" "$T/mosquitto.log")"

python3 - >"$T/groups.jsonl" <<'PY'
import json
for g in range(8):
    for k, (off, qos) in enumerate([(0, 1), (5, 0), (10, 1), (15, 2)]):
        ms = 1000 + g * 150 + off
        print(json.dumps({"topic": f"wt/{g}/{'ABCD'[k]}", "qos": qos,
                          "received_at": "2026-02-05T10:30:%02d.%03dZ" % (ms // 1000, ms % 1000),
                          "payload": f"{g}{'ABCD'[k]}"}))
PY

FAILED=()
# sub_start NAME / sub_stop NAME: an independent subscriber stamping arrivals into $T/NAME.raw
sub_start() {
    hkit_sub_start "$T/$1.raw" '%U %t' -p "$PORT" -q 2 -t 'wt/#'
    CAP_PID=$HKIT_SUB_PID
}
sub_stop() {
    hkit_sub_flush "$T/$1.raw" "$PORT"
    kill "$CAP_PID" 2>/dev/null || true
    wait "$CAP_PID" 2>/dev/null || true
    CAP_PID=
}
# measure NAME URL [TLS options]: replays the groups, reports median lateness of B, C, D.
measure() {
    local name=$1 url=$2
    shift 2
    sub_start "$name"
    timeout 30 hreplay --url "$url" "$@" "$T/groups.jsonl" 2>"$T/$name.err" ||
        hkit_fail "$name: hreplay failed: $(cat "$T/$name.err")"
    sub_stop "$name"
    python3 - "$T/$name.raw" "$name" <<'PY' || FAILED+=("$name")
import sys, statistics
at = {}
for line in open(sys.argv[1]):
    ts, topic = line.split()
    if topic.startswith("wt/"):
        at[topic] = float(ts)
offsets = {"B": 5, "C": 10, "D": 15}
bad = []
for k, off in offsets.items():
    late = sorted((at[f"wt/{g}/{k}"] - at[f"wt/{g}/A"]) * 1000 - off for g in range(8))
    med = statistics.median(late)
    print(f"{sys.argv[2]}: message {k}: median lateness {med:.1f} ms, max {late[-1]:.1f} ms")
    if med >= 15:
        bad.append(k)
if bad:
    sys.exit(f"{sys.argv[2]}: messages {' '.join(bad)} arrive late: held back on hreplay's socket")
PY
}
measure plain "mqtt://127.0.0.1:$PORT"
measure tls "mqtts://127.0.0.1:$TLS_PORT" --cafile "$T/certs/ca.crt"

# --max from a pipe that trickles (a producer feeding hreplay live): each line must leave when it
# is read, not when a batch fills or the next 100 ms tick flushes it. The writer stamps each line
# with the same wall clock as the subscriber's %U.
sub_start pipe
python3 -u - "$T/written.txt" <<'PY' | timeout 30 hreplay --url "mqtt://127.0.0.1:$PORT" --max -q 0 - \
    2>"$T/pipe.err" || hkit_fail "pipe: hreplay failed: $(cat "$T/pipe.err")"
import json, sys, time
with open(sys.argv[1], "w") as log:
    for i in range(12):
        time.sleep(0.04)
        log.write(f"{time.time():.6f} wt/p/{i}\n")
        log.flush()
        print(json.dumps({"topic": f"wt/p/{i}", "payload": str(i)}), flush=True)
PY
sub_stop pipe
python3 - "$T/written.txt" "$T/pipe.raw" <<'PY' || FAILED+=(pipe)
import sys, statistics
written = dict(reversed(l.split()) for l in open(sys.argv[1]))
at = {l.split()[1]: float(l.split()[0]) for l in open(sys.argv[2]) if " wt/p/" in l}
late = sorted((at[t] - float(w)) * 1000 for t, w in written.items())
med = statistics.median(late)
print(f"pipe: median {med:.1f} ms from written to received, max {late[-1]:.1f} ms")
if med >= 15:
    sys.exit("pipe: lines read from a trickling pipe are held back in hreplay's batch")
PY
[ ${#FAILED[@]} = 0 ] || hkit_fail "late on the wire: ${FAILED[*]}"
echo "t0208 ok"

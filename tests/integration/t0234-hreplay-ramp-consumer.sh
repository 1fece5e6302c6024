#!/usr/bin/env bash
# hkit-test: serial
# hreplay --ramp --consumer CMD: hreplay starts the consumer itself against its private
# Mosquitto (TLS, the consumer's settings in HALTIAN_* and in placeholders), starts the ramp once
# the broker's log shows it subscribed, takes its stdout lines as outputs, and stops and reaps it
# at the end. fixtures/consumers/slow_env.py (5 ms of work per message, capacity about 150-200
# msg/s here) is found limited by the consumer, latency matched by device id and measured_at,
# broker evidence in every step. Misbehaving consumers end the run with a one-line cause and no
# process left behind. Serial: it measures rates. Small rates and 1 s holds (scripts/bench and
# t0231 carry the full capacity measurement).
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
trap 'echo "t0234: command failed at line $LINENO" >&2' ERR
T=$HKIT_TMP
C=$HKIT_SOURCE_DIR/fixtures/consumers

# the example consumers are paho-mqtt clients (python3 is HKIT_PY: see scripts/lib.sh)
hkit_require_paho
# the consumer runs from the test's directory: a process left behind shows up by that path
cp "$C/slow_env.py" "$T/slow_env.py"
no_orphans() { # what
    local left
    left=$(pgrep -af -- "$T/" || true)
    [ -z "$left" ] || hkit_fail "$1: processes left behind: $left"
}

python3 - "$T/in.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(200):
        s, us = divmod(i * 10000, 1000000)
        f.write(json.dumps({
            "topic": "haltian-iot/events/int/key/measurements/ambientTemperature/dev-%03d" % (i % 50),
            "received_at": "2026-02-05T10:%02d:%02d.%06dZ" % (s // 60, s % 60, (us + 800) % 1000000),
            "payload": {"measured_at": "2026-02-05T10:%02d:%02d.%06dZ" % (s // 60, s % 60, us),
                        "value": 20 + i % 7}}) + "\n")
PY

# --- usage -------------------------------------------------------------------------------------
hkit_expect_exit 2 hreplay --consumer "python3 x.py" "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: --consumer needs --ramp" "--consumer alone"
hkit_expect_exit 2 hreplay --ramp 50:50:1s --observe "file:$T/o" --broker plain "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: --broker needs --consumer" "--broker alone"
hkit_expect_exit 2 hreplay --url mqtt://127.0.0.1:1 --ramp 50:50:1s --consumer "python3 x.py" "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: --consumer starts its own broker: it cannot be combined with --url" "--url"
hkit_expect_exit 2 hreplay --ramp 50:50:1s --consumer "python3 x.py" --ready-timeout 0s "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: invalid value '0s' for --ready-timeout: must be above 0" "timeout"
hkit_expect_exit 2 hreplay --ramp 50:50:1s --consumer "python3 x.py" --broker tcp "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: invalid value 'tcp' for --broker: expected plain or tls" "broker"

# --- the slow consumer, over TLS and over plain MQTT, at QoS 0 and 1 ---------------------------
for run in "tls 0" "plain 1"; do
    set -- $run
    hkit_expect_exit 0 hreplay -q "$2" --broker "$1" --ramp 60:40:1s:420 \
        --consumer "python3 $T/slow_env.py --qos $2" --report-json "$T/r-$1.json" "$T/in.jsonl"
    printf '%s\n' "$OUT"
    no_orphans "after the $1 ramp"
    hkit_assert_contains "$ERR" "waiting for its subscription" "readiness"
    python3 - "$T/r-$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("%s: max sustainable %s msg/s, limited by %s (%s)"
      % (sys.argv[2], r["max_sustainable_rate"], r["limited_by"], r["limit_reason"]))
assert r["observe"].startswith("stdout:"), r["observe"]
assert r["consumer"].endswith("slow_env.py --qos " + ("0" if sys.argv[2] == "tls" else "1"))
assert r["matching"] == "device_id+measured_at", r["matching_note"]
assert r["broker_evidence"] is True
# QoS 0: the consumer; QoS 1: the consumer, or (near its capacity) the broker's acknowledgements
# holding hreplay back on a busy machine; never the generator
allowed = ("consumer",) if sys.argv[2] == "tls" else ("consumer", "broker")
assert r["limited_by"] in allowed, r["limited_by"] + ": " + r["limit_reason"]
# 5 ms of work: at most 200 msg/s; Python and the machine take their share
assert r["max_sustainable_rate"] is not None and 60 <= r["max_sustainable_rate"] <= 220, r
for s in r["steps"]:
    assert "broker_drop_notices" in s and s["broker_dropped"] is not None, s
    assert s["verdict"] != "not observed", s
PY
done

# --- a {placeholder} command, and outputs observed in a file the consumer writes --------------
hkit_expect_exit 0 hreplay --ramp 50:50:1s:100 --observe "file:$T/out.jsonl" \
    --consumer "exec python3 $T/slow_env.py --sleep 0 >>$T/out.jsonl # {host} {port} {cafile}" \
    --report-json "$T/r-file.json" "$T/in.jsonl"
no_orphans "after the file ramp"
hkit_assert_eq "device_id+measured_at" "$(jq -r .matching "$T/r-file.json")" "file matching"
hkit_assert_eq 100 "$(jq -r .max_sustainable_rate "$T/r-file.json")" "file: both steps kept up"

# --- misbehaving consumers: a one-line cause, exit 1, nothing left behind ----------------------
hkit_expect_exit 1 hreplay --ramp 50:50:1s --consumer "echo broken >&2; exit 4" "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: the consumer exited with status 4 before it subscribed; its stderr: broken" "exits at once"
cat >"$T/never.py" <<'PY'
import time
while True:
    time.sleep(1)
PY
hkit_expect_exit 1 hreplay --ramp 50:50:1s --ready-timeout 1s --consumer "python3 $T/never.py" "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: the consumer was not ready after 1s: it never connected to the broker" "never subscribes"
no_orphans "after a consumer that never subscribed"
sed 's|"haltian-iot/events/%s/%s/#"|"haltian-iot/events/%s/%s/other/#"|' "$T/slow_env.py" >"$T/other.py"
hkit_expect_exit 1 hreplay --ramp 50:50:1s --ready-timeout 1s --consumer "python3 $T/other.py" "$T/in.jsonl"
hkit_assert_contains "$ERR" "it subscribed only to filters matching none of the input's topics: 'haltian-iot/events/" "other filter"
# dies during the ramp: the run ends at once and names it
sed 's|time.sleep(args.sleep)  # the work|sys.exit(7) if data.get("value") == 24 else None|' "$T/slow_env.py" >"$T/dies.py"
hkit_expect_exit 1 hreplay --ramp 50:50:1s --consumer "python3 $T/dies.py" "$T/in.jsonl"
hkit_assert_contains "$ERR" "hreplay: the consumer exited with status 7 during the ramp" "dies during the ramp"
no_orphans "after a consumer that died"
echo "t0234: ok"

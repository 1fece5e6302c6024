#!/usr/bin/env bash
# hkit-test: serial
# Shards that start together and reports that merge:
# - two `hreplay --shard K/2 --start-at T` processes started at different moments send their
#   first messages at T (each within 5 ms, from an independent subscriber's timestamps), and
#   together every message exactly once;
# - `hreplay --merge-reports` of the two reports has the same totals as a single run of the
#   whole recording, and percentiles within one histogram bucket of one computed from both
#   shards' lateness logs;
# - --start-at in the past and bad values are usage errors; a report without a histogram is
#   refused with its name.
# Serial: it measures when messages leave.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
trap 'echo "t0220: command failed at line $LINENO" >&2' ERR
T=$HKIT_TMP
# Nagle on the broker would hold deliveries to the subscriber back (up to 40 ms)
HKIT_BROKER_EXTRA_CONF="set_tcp_nodelay true" hkit_broker_start "$T/broker"
URL="mqtt://127.0.0.1:$HKIT_BROKER_PORT"
# 60 devices, one message each per 100 ms of recorded time, 600 messages
python3 - "$T/in.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(600):
        t = 1770000000000 + i * 10  # ms: one message every 10 ms
        f.write(json.dumps({"topic": "sh/dev-%02d" % (i % 60),
                            "received_at": "%s.%03dZ" % (__import__("time").strftime(
                                "%Y-%m-%dT%H:%M:%S", __import__("time").gmtime(t // 1000)), t % 1000),
                            "qos": 1, "payload": str(i)}) + "\n")
PY

hkit_expect_exit 2 hreplay --url "$URL" --start-at 2020-01-01T00:00:00Z "$T/in.jsonl"
hkit_assert_contains "$ERR" "in the past" "--start-at in the past"
hkit_expect_exit 2 hreplay --url "$URL" --start-at soon "$T/in.jsonl"
hkit_assert_contains "$ERR" "expected an RFC 3339 time or +DURATION" "--start-at soon"
hkit_expect_exit 2 hreplay --merge-reports
hkit_assert_contains "$ERR" "needs the report files" "--merge-reports without files"

mosquitto_sub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -q 1 -t 'sh/#' -t 'hkit-test/ready' \
    -F '%U %t %p' >"$T/sub" 2>/dev/null &
SUB=$!
for _ in $(seq 1 100); do
    mosquitto_pub -h 127.0.0.1 -p "$HKIT_BROKER_PORT" -t hkit-test/ready -m 1
    grep -q hkit-test/ready "$T/sub" && break
    hkit_sleep 0.05
done
start=$(python3 -c 'import time; t=time.time()+3; print(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6))')
hreplay --url "$URL" -i shard-1 --shard 1/2 --start-at "$start" --report-json "$T/r1.json" \
    --lateness-log "$T/l1" "$T/in.jsonl" 2>"$T/e1" &
P1=$!
hreplay --url "$URL" -i shard-2 --shard 2/2 --start-at "$start" --report-json "$T/r2.json" \
    --lateness-log "$T/l2" "$T/in.jsonl" 2>"$T/e2" &
P2=$!
wait $P1 || hkit_fail "shard 1: $(cat "$T/e1")"
wait $P2 || hkit_fail "shard 2: $(cat "$T/e2")"
for _ in $(seq 1 100); do [ "$(grep -c '^[0-9.]* sh/' "$T/sub")" -ge 600 ] && break; hkit_sleep 0.05; done
kill $SUB
python3 - "$T/sub" "$start" <<'PY'
import sys, datetime
lines = [l.split(" ", 2) for l in open(sys.argv[1]) if " sh/" in l]
start = datetime.datetime.strptime(sys.argv[2], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
    tzinfo=datetime.timezone.utc).timestamp()
payloads = sorted(int(p) for _, _, p in lines)
assert payloads == list(range(600)), "not every message exactly once: %d lines" % len(lines)
# per-device order
last = {}
for _, topic, p in lines:
    assert int(p) > last.get(topic, -1), "order broken on " + topic
    last[topic] = int(p)
# the first message of each shard: the earliest arrival of the devices it holds
first = min(float(t) for t, _, p in lines)
late_ms = (first - start) * 1000
assert -1 <= late_ms <= 5, "first message %.2f ms after the common start" % late_ms
# message i is due at start + 10 ms * i: both shards keep one schedule
worst = max(abs(float(t) - (start + int(p) * 0.010)) for t, _, p in lines[:50])
assert worst < 0.050, "early messages up to %.2f ms off their due times" % (worst * 1000)
PY

# One run of the whole recording, and the merge of the two shards' reports.
hreplay --url "$URL" --speed 10 --report-json "$T/whole.json" "$T/in.jsonl" 2>/dev/null
hreplay --merge-reports --report-json "$T/merged.json" "$T/r1.json" "$T/r2.json"
python3 - "$T/whole.json" "$T/merged.json" "$T/l1" "$T/l2" <<'PY'
import json, sys
whole, merged = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for k in ("sent", "failed", "resent", "qos0_maybe_lost"):
    assert whole[k] == merged[k], (k, whole[k], merged[k])
assert merged["shards"] == 2
lat = sorted(int(x) for f in sys.argv[3:5] for x in open(f))
assert merged["lateness_us"]["count"] == len(lat) == 600
for q, key in ((0.5, "p50"), (0.99, "p99")):
    import math
    exact = lat[max(0, math.ceil(q * len(lat)) - 1)] / 1000.0
    got = merged["lateness_us"][key]
    # one log-linear bucket: 1/128 of the value, or 1 ns below 128 ns
    assert exact <= got <= exact * (1 + 1 / 128.0) + 0.001, (key, exact, got)
assert merged["lateness_us"]["max"] == lat[-1] / 1000.0
PY
echo '{"sent": 1}' >"$T/old.json"
hkit_expect_exit 1 hreplay --merge-reports "$T/r1.json" "$T/old.json"
hkit_assert_contains "$ERR" "old.json' is not an hreplay report" "a report that is not one"
echo ok

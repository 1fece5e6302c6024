#!/usr/bin/env bash
# hreplay --faults, the kinds that change the stream itself (drop with bursts, dup with :after,
# reorder with a window and :scope=device, delay, backlog, stale, future, skew, corrupt,
# retain), each checked with an independent subscriber (mosquitto_sub -F '%t %r %q %x') that
# must agree exactly with --fault-log: count, which messages, where they landed, bytes changed
# (t0213-faults-check.py). Then determinism: the same seed twice gives identical captures,
# another seed another; and the counts in --report-json.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
hkit_broker_start "$HKIT_TMP/broker"
URL=mqtt://127.0.0.1:$HKIT_BROKER_PORT
T=$HKIT_TMP
CHECK="$HKIT_SOURCE_DIR/tests/integration/t0213-faults-check.py"

# 200 messages of 4 devices, 100 ms apart, QoS 0, each payload distinct (the value is the index)
python3 - "$T/in.jsonl" <<'PY'
import json, sys
H = "haltian-iot/events/int-1/key-1/measurements"
with open(sys.argv[1], "w") as f:
    for i in range(200):
        ms = i * 100
        t = "2026-02-05T10:%02d:%02d.%03dZ" % (ms // 60000, ms // 1000 % 60, ms % 1000)
        p = json.dumps({"measured_at": t, "value": 400 + i}, separators=(",", ":"))
        f.write(json.dumps({"topic": f"{H}/co2/dev-{i % 4}", "qos": 0, "retain": False,
                            "received_at": t, "payload": p}) + "\n")
PY

# run NAME SPEC KIND...: replay with the spec, capture, check the capture against the log
run() {
    local name=$1 spec=$2
    shift 2
    hkit_capture_start "$T/$name.cap" 'haltian-iot/#'
    timeout 60 hreplay --url "$URL" --max --faults "$spec" --seed "${SEED:-7}" \
        --fault-log "$T/$name.log" --report-json "$T/$name.json" "$T/in.jsonl" 2>"$T/$name.err" ||
        hkit_fail "$name: hreplay failed: $(cat "$T/$name.err")"
    hkit_capture_stop "$T/$name.cap"
    python3 "$CHECK" "$T/in.jsonl" "$T/$name.log" "$T/$name.cap" "$@" >"$T/$name.check" ||
        hkit_fail "$name ($spec)"
}

run drop 'drop=0.2:burst=3' drop
# bursts: some drops follow a drop
grep -q '"in_burst":true' "$T/drop.log" || hkit_fail "drop with :burst made no burst"
run dup 'dup=0.1:after=3' dup
# a copy lands after three further originals: its position is 4 after the original's
python3 - "$T/dup.log" "$T/dup.cap" <<'PY' || hkit_fail "dup :after=3"
import json, sys
cap = [l.split() for l in open(sys.argv[2])]
for e in map(json.loads, open(sys.argv[1])):
    copy = cap[e["position"] - 1]
    first = min(i for i, c in enumerate(cap, 1) if c == copy)
    between = e["position"] - first - 1
    # other copies may land in between; originals exactly 3 (fewer only at the end)
    assert between >= 3 or e["position"] > len(cap) - 4, (e, first, between)
PY
run reorder 'reorder=0.1:window=3' reorder
run reorder-device 'reorder=0.2:scope=device' reorder
# scope=device: the partner is of the same device
python3 - "$T/in.jsonl" "$T/reorder-device.log" <<'PY' || hkit_fail "reorder scope=device swapped across devices"
import json, sys
inp = [json.loads(l) for l in open(sys.argv[1])]
for e in map(json.loads, open(sys.argv[2])):
    if e["with"] is not None:
        assert inp[e["with"] - 1]["topic"] == inp[e["seq"] - 1]["topic"], e
PY
run delay 'delay=0.05:by=1s' delay
# held back 1 s of recording time = 10 messages: it lands 10 places later
python3 - "$T/delay.log" <<'PY' || hkit_fail "delay landed elsewhere"
import json, sys
for e in map(json.loads, open(sys.argv[1])):
    assert e["position"] >= e["seq"] + 5, e
PY
run backlog 'backlog=0.02:hold=2s' backlog
run stale 'stale=0.1:by=1h' stale
run future 'future=0.1:by=365d' future
grep -q '"before":"2026-02-05T10:0.:..\....Z","after":"2027-02-05T' "$T/future.log" ||
    hkit_fail "future: a year ahead"
run skew 'skew=10m' skew
# one offset per device: 4 devices, 4 offsets at most, each within 10 minutes
hkit_assert_eq 4 "$(grep -o '"offset_ns":-\?[0-9]*' "$T/skew.log" | sort -u | wc -l)" "skew offsets"
run corrupt 'corrupt=0.3' corrupt
for how in truncated member-removed wrong-type invalid-utf8 not-json; do
    grep -q "\"how\":\"$how\"" "$T/corrupt.log" || hkit_fail "corrupt never chose $how"
done

# --- scope: only co2 of dev-1 is faulted -------------------------------------------------------
run scoped 'stale=1:by=1h' stale
hkit_assert_eq 200 "$(grep -c '"kind":"stale"' "$T/scoped.log")" "unscoped stale=1"
hkit_capture_start "$T/scope2.cap" 'haltian-iot/#'
timeout 60 hreplay --url "$URL" --max --faults 'stale=1:by=1h' --fault-device dev-1 \
    --fault-type CO2 --fault-log "$T/scope2.log" "$T/in.jsonl" 2>/dev/null
hkit_capture_stop "$T/scope2.cap"
python3 "$CHECK" "$T/in.jsonl" "$T/scope2.log" "$T/scope2.cap" stale >/dev/null || hkit_fail "scoped"
hkit_assert_eq 50 "$(grep -c '"kind":"stale"' "$T/scope2.log")" "--fault-device dev-1"
grep -v '/dev-1"' "$T/scope2.log" && hkit_fail "a message outside --fault-device was faulted"

# --- determinism ----------------------------------------------------------------------------
ALL='drop=0.05:burst=2,dup=0.05:after=2,reorder=0.05:window=4,delay=0.03:by=700ms,stale=0.05:by=1h,future=0.05:by=1d,skew=1m,corrupt=0.05,backlog=0.01:hold=1s'
SEED=11 run all-a "$ALL" drop dup reorder delay stale future skew corrupt
SEED=11 run all-b "$ALL"
SEED=12 run all-c "$ALL"
cmp -s "$T/all-a.cap" "$T/all-b.cap" || hkit_fail "the same seed gave different captures"
cmp -s "$T/all-a.log" "$T/all-b.log" || hkit_fail "the same seed gave different fault logs"
cmp -s "$T/all-a.cap" "$T/all-c.cap" && hkit_fail "another seed gave the same capture"
# the report: counts agree with the log; sent = what the subscriber saw
python3 - "$T/all-a.json" "$T/all-a.log" "$T/all-a.cap" <<'PY' || hkit_fail "report counts"
import json, sys
r = json.load(open(sys.argv[1]))
log = [json.loads(l) for l in open(sys.argv[2])]
cap = open(sys.argv[3]).read().splitlines()
f = r["faults"]
assert f["seed"] == 11 and f["spec"].startswith("drop=0.05:burst=2,dup="), f
for k, n in f["applied"].items():
    assert n == sum(1 for e in log if e["kind"] == k), (k, n)
assert f["dropped"] == f["applied"]["drop"] and f["duplicates"] == f["applied"]["dup"], f
assert r["sent"] == len(cap) == 200 - f["dropped"] + f["duplicates"], (r["sent"], len(cap))
assert r["failed"] == 0
PY
grep -q "faults (seed 11): drop " "$T/all-a.err" || hkit_fail "stderr report: $(cat "$T/all-a.err")"

# --- retain (last: it leaves retained messages on the broker) ---------------------------------
run retain 'retain=0.1' retain
echo "t0214 ok"

#!/usr/bin/env bash
# Benchmark part: hreplay. End to end at QoS 0 --max (until one mosquitto_sub -C N has every
# message) next to mosquitto_pub -l with the same payloads, same run; QoS 1 rate and loss (also
# mosquitto_pub -l's own loss); peak RSS; lateness at --speed 1 and --speed 100 on a recording
# with realistic gaps, including the first 1% against the last 1% of messages (drift). Each
# throughput row is the median of HKIT_BENCH_REPEAT runs (default 3). Prints a Markdown section.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh 2>/dev/null || true
N=${HKIT_BENCH_MESSAGES:-1000000}
REPEAT=${HKIT_BENCH_REPEAT:-3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hkit-bench-replay.XXXXXX")
stop_sub() {
    if [ -s "$TMP/sub.pid" ]; then
        kill "$(cat "$TMP/sub.pid")" 2>/dev/null || true
        rm -f "$TMP/sub.pid"
    fi
}
trap 'stop_sub; hkit_broker_stop; rm -rf "$TMP"' EXIT
hkit_broker_start "$TMP/broker" >/dev/null
P=$HKIT_BROKER_PORT
URL=mqtt://127.0.0.1:$P

# Haltian-sized messages: 161-byte topic, 59-byte JSON payload; 1000 devices; 100 µs apart.
python3 - "$N" "$TMP" <<'PY'
import sys, datetime
n, tmp = int(sys.argv[1]), sys.argv[2]
base = "haltian-iot/events/3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d/measurements/ambientTemperature/"
t0 = 1770287445_000000000
with open(f"{tmp}/max.jsonl", "w") as j, open(f"{tmp}/pub.txt", "w") as t:
    for i in range(n):
        dev = "%08x-0000-4000-8000-%012x" % (i % 1000, i % 1000)
        payload = '{"measured_at":"2026-02-05T10:30:45.123Z","value":%7.2f}' % (20 + (i % 1000) / 100)
        s, f = divmod(t0 + i * 100000, 10**9)
        stamp = datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        j.write('{"topic":"%s%s","qos":0,"retain":false,"received_at":"%s.%09dZ","payload":%s}\n'
                % (base, dev, stamp, f, '"' + payload.replace('"', '\\"') + '"'))
        t.write(payload + "\n")
PY
topic_one="haltian-iot/events/3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d/measurements/ambientTemperature/00000000-0000-4000-8000-000000000000"

now() { date +%s%N; }
# e2e CMD...: "rate received" where rate = received messages per second from the command's
# start until the subscriber's last message. The subscriber exits by itself at N messages (its
# exit time is the end); a publisher that lost messages leaves it short, so it is stopped once
# nothing arrived for 2 s (the end is then the last time its count grew).
e2e() {
    local t0 t1 got last=-1 idle=0
    rm -f "$TMP/sub.end" "$TMP/sub.pid"
    (
        mosquitto_sub -h 127.0.0.1 -p "$P" -t 'haltian-iot/#' -q "${QOS:-0}" -C "$N" -W 600 \
            >"$TMP/sub.out" &
        echo $! >"$TMP/sub.pid"
        wait $! || true
        now >"$TMP/sub.end"
    ) &
    sleep 0.5
    t0=$(now)
    "$@" >/dev/null 2>"$TMP/cmd.err" || true
    t1=$(now)
    while [ ! -s "$TMP/sub.end" ]; do
        got=$(wc -l <"$TMP/sub.out")
        if [ "$got" != "$last" ]; then
            last=$got idle=0 t1=$(now)
        elif [ $((idle += 1)) -ge 20 ]; then
            stop_sub
            break
        fi
        sleep 0.1
    done
    wait
    got=$(wc -l <"$TMP/sub.out")
    [ "$got" -eq "$N" ] && t1=$(cat "$TMP/sub.end")
    rm -f "$TMP/sub.pid"
    echo "$((got * 1000000000 / (t1 - t0))) $got"
}
# alone CMD...: "rate" of the command with no subscriber: its publish rate (what the broker
# accepted and, at QoS 1, acknowledged); the figure paho's publisher rates compare with
alone() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>"$TMP/cmd.err" || true
    t1=$(now)
    echo "$((N * 1000000000 / (t1 - t0))) -"
}
# median e2e|alone CMD...: REPEAT runs; prints the line of the median run by rate
median() {
    local i how=$1
    shift
    for ((i = 0; i < REPEAT; i++)); do "$how" "$@"; done | sort -n | sed -n "$(((REPEAT + 1) / 2))p"
}
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }
loss() { python3 -c "print(f'{100*($N-$1)/$N:.1f}%')"; }

echo "## hreplay ($N messages, Haltian-sized, local Mosquitto, median of $REPEAT)"
echo
echo "| path | msg/s | received | vs mosquitto_pub -l | note |"
echo "| --- | --- | --- | --- | --- |"
read -r rp gp < <(median e2e sh -c "mosquitto_pub -h 127.0.0.1 -p $P -t '$topic_one' -q 0 -l <'$TMP/pub.txt'")
read -r r g < <(median e2e /usr/bin/time -f '%M' -o "$TMP/rss0" "$HKIT_BIN/hreplay" --url "$URL" --max -q 0 --quiet "$TMP/max.jsonl")
read -r r2 g2 < <(median e2e "$HKIT_BIN/hreplay" --url "$URL" --max -q 0 --quiet --connections 2 "$TMP/max.jsonl")
echo "| mosquitto_pub -l, QoS 0, end to end (peer) | $rp | $gp/$N | 1.00x | lost $(loss "$gp") |"
echo "| hreplay --max, QoS 0, 1 connection, end to end | $r | $g/$N | $(ratio "$r" "$rp") | peak RSS $(($(cat "$TMP/rss0") / 1024)) MB |"
echo "| hreplay --max, QoS 0, --connections 2, end to end | $r2 | $g2/$N | $(ratio "$r2" "$rp") | |"
export QOS=1
read -r rq gq < <(median e2e sh -c "mosquitto_pub -h 127.0.0.1 -p $P -t '$topic_one' -q 1 -l <'$TMP/pub.txt'")
read -r r1 g1 < <(median e2e /usr/bin/time -f '%M' -o "$TMP/rss1" "$HKIT_BIN/hreplay" --url "$URL" --max -q 1 --quiet --report-json "$TMP/q1.json" "$TMP/max.jsonl")
f1=$(python3 -c "import json;r=json.load(open('$TMP/q1.json'));print(r['failed'])")
read -r r12 g12 < <(median e2e "$HKIT_BIN/hreplay" --url "$URL" --max -q 1 --quiet --connections 2 "$TMP/max.jsonl")
unset QOS
read -r ra _ < <(median alone "$HKIT_BIN/hreplay" --url "$URL" --max -q 1 --quiet "$TMP/max.jsonl")
echo "| mosquitto_pub -l, QoS 1, end to end (peer) | $rq | $gq/$N | 1.00x | lost $(loss "$gq"), exit status 0 |"
echo "| hreplay --max, QoS 1, 1 connection, end to end | $r1 | $g1/$N | $(ratio "$r1" "$rq") | lost $(loss "$g1"), failed $f1, peak RSS $(($(cat "$TMP/rss1") / 1024)) MB |"
echo "| hreplay --max, QoS 1, --connections 2, end to end | $r12 | $g12/$N | $(ratio "$r12" "$rq") | lost $(loss "$g12") |"
echo "| hreplay --max, QoS 1, 1 connection, acknowledged by the broker, no subscriber | $ra | | | paho's sync publisher: ~63k |"
echo
echo "End to end at QoS 1, the subscriber (mosquitto_sub -q 1) acknowledges every message too: broker,"
echo "subscriber and publisher then share the machine's cores."

# Lateness: a recording with realistic gaps (exponential, mean 2 ms => ~500 msg/s at speed 1).
M=$((N < 20000 ? N : 20000))
python3 - "$M" "$TMP" <<'PY'
import sys, random
m, tmp = int(sys.argv[1]), sys.argv[2]
random.seed(7)
t = 1770287445_000000000
with open(f"{tmp}/gaps.jsonl", "w") as j:
    for i in range(m):
        t += int(random.expovariate(1 / 2e6))
        s, f = divmod(t, 10**9)
        j.write('{"topic":"haltian-iot/events/i/k/measurements/co2/dev-%d","qos":0,"received_at":"2026-02-05T%02d:%02d:%02d.%09dZ","payload":"{}"}\n'
                % (i % 100, (s // 3600) % 24, (s // 60) % 60, s % 60, f))
PY
echo
echo "| timing ($M messages, exponential gaps, mean 2 ms) | p50 µs | p99 µs | max µs | first 1% p50/p99 µs | last 1% p50/p99 µs | kept |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for speed in 1 100; do
    "$HKIT_BIN/hreplay" --url "$URL" --speed $speed --quiet --report-json "$TMP/s.json" \
        --lateness-log "$TMP/late.txt" "$TMP/gaps.jsonl"
    python3 - "$TMP/s.json" "$TMP/late.txt" "$speed" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
late = [int(x) / 1000 for x in open(sys.argv[2])]
k = max(1, len(late) // 100)
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(q * len(v)))]
first, last = late[:k], late[-k:]
L = r["lateness_us"]
print(f"| --speed {sys.argv[3]} | {L['p50']:.0f} | {L['p99']:.0f} | {L['max']:.0f} | "
      f"{pct(first, .5):.0f}/{pct(first, .99):.0f} | {pct(last, .5):.0f}/{pct(last, .99):.0f} | "
      f"{'yes' if r['schedule_kept'] else 'no'} |")
PY
done
echo
echo "Load while measuring: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; $(nproc) cores)."
echo
echo "Targets (issue 4): ≥150k msg/s QoS 0 --max end to end and ≥1.0× mosquitto_pub -l; ≥60k msg/s"
echo "QoS 1 with zero loss; peak RSS < 50 MB; lateness p50 < 100 µs, p99 < 500 µs; last 1% no"
echo "later than the first 1%."

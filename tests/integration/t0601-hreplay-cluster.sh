#!/usr/bin/env bash
# hreplay and hrecord beyond one broker: a real 3-node RabbitMQ cluster on loopback
# (scripts/cluster), three hreplay shards (--shard K/3, QoS 1), each connected to a different
# node with its own client id, replaying an hgen recording together. Checked by independent
# peers and real files:
# - one mosquitto_sub per node, each subscribed to everything: every message of the recording
#   arrived exactly once at every node (nothing lost, nothing doubled), in per-device order, and
#   the three reports' "sent" add up to what each subscriber saw;
# - three hrecord processes, one per node, each recording a third of the devices: hcat merges
#   their recordings into one that holds exactly the published messages, per-device order kept.
# Then RabbitMQ 3.10's MQTT limits that README's "Beyond one machine" documents, on the same
# cluster: a QoS 2 publish is answered with PUBACK (hreplay -q 2 exits 1 at once, naming it);
# QoS 2 subscriptions are granted QoS 1; retained messages stay on their node; client ids are
# cluster-wide; MQTT 5 is refused.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
T=$HKIT_TMP
export HKIT_CLUSTER_DIR=$T/cluster
export HKIT_CLUSTER_OWNER_PID=$$ # a SIGKILLed test still takes its cluster down
CLUSTER=$HKIT_SOURCE_DIR/scripts/cluster
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] ||
    hkit_fail "rabbitmq-server is not installed (scripts/setup installs it)"

# Everything started here is a child of this shell: stopped and reaped on every path, then the
# cluster (scripts/cluster down stops its nodes and epmd by pid).
CHILDREN=()
stop_children() {
    local pid
    for pid in "${CHILDREN[@]+"${CHILDREN[@]}"}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${CHILDREN[@]+"${CHILDREN[@]}"}"; do wait "$pid" 2>/dev/null || true; done
    CHILDREN=()
}
on_exit() {
    local rc=$? f
    stop_children
    if [ "$rc" != 0 ]; then # the peers' and the brokers' side of a failure
        for f in "$T"/sub?.raw; do
            [ -f "$f" ] || continue
            echo "--- $(basename "$f"): $(wc -l <"$f") lines; markers:" >&2
            grep '^hkit-test/' "$f" | cut -d' ' -f1 | sort | uniq -c | tr '\n' ' ' >&2
            cat "${f%.raw}.err" >&2
            echo >&2
        done
        for f in "$HKIT_CLUSTER_DIR"/node*/log/*@localhost.log; do
            [ -f "$f" ] && { echo "--- last lines of $(basename "$f")" >&2; tail -n 40 "$f" >&2; }
        done
    fi
    "$CLUSTER" down 2>"$T/down.err" || cat "$T/down.err" >&2
    rm -rf "$T"
}
trap on_exit EXIT

# rec_count K WHERE: messages in hrecord K's recording matching WHERE (fails while the file does
# not exist yet or is busy; -readonly never creates it)
rec_count() {
    [ -s "$T/part$1.db" ] && sqlite3 -readonly "$T/part$1.db" "select count(*) from messages_v where $2" 2>/dev/null
}

start=$SECONDS
timeout 300 "$CLUSTER" up 3 >"$T/urls" 2>"$T/up.err" ||
    hkit_fail "scripts/cluster up 3 failed: $(cat "$T/up.err")"
mapfile -t URL <"$T/urls"
hkit_assert_eq 3 "${#URL[@]}" "one URL per node"
PORT=()
for k in 0 1 2; do
    case ${URL[$k]} in mqtt://127.0.0.1:[0-9]*) ;; *) hkit_fail "bad URL '${URL[$k]}'" ;; esac
    PORT[$k]=${URL[$k]##*:}
done
echo "cluster up in $((SECONDS - start))s" >&2
# RabbitMQ 3.10 speaks MQTT 3.1.1 only. Arrays, not functions, so '&' and timeout start the
# client itself and its pid is the one recorded.
sub=(mosquitto_sub -V mqttv311 -h 127.0.0.1)
pub=(mosquitto_pub -V mqttv311 -h 127.0.0.1)

# --- the recording: hgen, 99 devices, 3000 messages over 2 simulated hours -------------------
hgen -o "$T/rec.db" --duration 2h --count 3000 --quiet
N=$(sqlite3 "$T/rec.db" 'select count(*) from messages_v')
hkit_assert_eq 3000 "$N" "messages in the recording"
# what subscribers must see, "topic hexpayload" per line, in recording order
sqlite3 "$T/rec.db" "select topic || ' ' || lower(hex(payload)) from messages_v order by seq" >"$T/want"

# --- subscribers, one per node, each subscribed to everything ---------------------------------
for k in 0 1 2; do
    "${sub[@]}" -p "${PORT[$k]}" -i "hkit-t0601-sub-$k" -q 1 -t 'haltian-iot/#' -t 'hkit-test/#' \
        -F '%t %x' >"$T/sub$k.raw" 2>"$T/sub$k.err" &
    CHILDREN+=($!)
done

# --- hrecord, one per node, each recording a third of the devices -----------------------------
# plus a hkit-test/ready/K filter of its own, so readiness is seen in the recording itself.
mapfile -t DEVICES < <(sqlite3 "$T/rec.db" 'select distinct device_id from messages_v order by 1')
for k in 0 1 2; do
    filters=(-t "hkit-test/ready/$k")
    for ((d = k; d < ${#DEVICES[@]}; d += 3)); do
        filters+=(-t "haltian-iot/events/+/+/+/+/${DEVICES[$d]}")
    done
    hrecord --url "${URL[$k]}" -i "hkit-t0601-rec-$k" "${filters[@]}" -o "$T/part$k.db" \
        --flush-ms 50 --quiet 2>"$T/rec$k.err" &
    CHILDREN+=($!)
    REC_PID[$k]=$!
done

# Readiness through the cluster: every subscriber sees a probe published on every node, and
# every hrecord has recorded its own probe published on another node.
probe_seen() { # K J
    "${pub[@]}" -p "${PORT[$2]}" -q 1 -t "hkit-test/ready/$1/$2" -m x
    grep -q "^hkit-test/ready/$1/$2 " "$T/sub$1.raw"
}
rec_seen() { # K
    "${pub[@]}" -p "${PORT[$((($1 + 1) % 3))]}" -q 1 -t "hkit-test/ready/$1" -m x
    local n
    n=$(rec_count "$1" "topic = 'hkit-test/ready/$1'") && [ "$n" -gt 0 ]
}
for k in 0 1 2; do
    for j in 0 1 2; do hkit_wait_cmd "subscriber on node $((k + 1)) (probe from node $((j + 1)))" 30 probe_seen $k $j; done
    hkit_wait_cmd "hrecord on node $((k + 1))" 30 rec_seen $k
done

# --- three shards, one per node, started together, QoS 1 --------------------------------------
# 2 simulated hours at 2400x: about 3 s of traffic in which all three overlap.
start=$SECONDS
# one common start for the three schedules (--start-at), a few seconds ahead
at=$(python3 -c 'import time; t=time.time()+4; print(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6))')
for k in 0 1 2; do
    timeout 120 hreplay --url "${URL[$k]}" -i "hkit-t0601-shard-$((k + 1))" -q 1 --start-at "$at" \
        --shard "$((k + 1))/3" --speed 2400 --quiet --report-json "$T/shard$k.json" "$T/rec.db" \
        2>"$T/shard$k.err" &
    SHARD_PID[$k]=$!
    CHILDREN+=($!)
done
for k in 0 1 2; do
    wait "${SHARD_PID[$k]}" || hkit_fail "shard $((k + 1)) failed: $(cat "$T/shard$k.err")"
done
echo "shards done in $((SECONDS - start))s" >&2
SENT=0
for k in 0 1 2; do
    sent=$(jq -r '.sent' "$T/shard$k.json")
    hkit_assert_eq "0 0 0" "$(jq -r '"\(.failed) \(.resent) \(.reconnects)"' "$T/shard$k.json")" \
        "shard $((k + 1)): failed, resent, reconnects"
    [ "$sent" -gt 0 ] || hkit_fail "shard $((k + 1)) sent nothing"
    SENT=$((SENT + sent))
done
hkit_assert_eq "$N" "$SENT" "sum of the shards' sent"
hreplay --merge-reports --report-json "$T/merged.json" "$T/shard0.json" "$T/shard1.json" \
    "$T/shard2.json" || hkit_fail "--merge-reports failed"
hkit_assert_eq "$N 0 3" "$(jq -r '"\(.sent) \(.failed) \(.shards)"' "$T/merged.json")" \
    "the merged report's totals"

# Every shard's messages were acknowledged (routed to every queue) before these end markers
# were published, so a subscriber that has all three markers has every message.
# The bound is generous: once, on a loaded machine, one node delivered the last markers to its
# subscriber more than 60 s after they were acknowledged (all of them did arrive). A timeout
# still fails the test, and on_exit shows how far each subscriber got.
for k in 0 1 2; do "${pub[@]}" -p "${PORT[$k]}" -q 1 -t "hkit-test/end/$k" -m x; done
ends_at() { # K: the subscriber on node K+1 has all three end markers
    [ "$(grep -c '^hkit-test/end/' "$T/sub$1.raw")" -ge 3 ]
}
start=$SECONDS
for k in 0 1 2; do
    hkit_wait_cmd "end markers at subscriber $((k + 1))" 240 ends_at $k
done
echo "end markers seen by all subscribers in $((SECONDS - start))s" >&2
# hrecord's end: an "end" marker on its own ready topic; recorded and committed once it is there
end_recorded() { # K
    local n
    n=$(rec_count "$1" "topic = 'hkit-test/ready/$1' and payload_text = 'end'") && [ "$n" -gt 0 ]
}
for k in 0 1 2; do
    "${pub[@]}" -p "${PORT[$k]}" -q 1 -t "hkit-test/ready/$k" -m end
    hkit_wait_cmd "hrecord $((k + 1))'s end marker" 60 end_recorded $k
    kill -TERM "${REC_PID[$k]}"
    wait "${REC_PID[$k]}" || hkit_fail "hrecord $((k + 1)) exited $?: $(cat "$T/rec$k.err")"
done
stop_children

# check_stream WANT GOT WHAT: GOT ("topic hex" lines) holds exactly WANT's lines, each once, and
# for each device (the last topic level) in WANT's order.
check_stream() {
    python3 - "$1" "$2" "$3" <<'PY' || hkit_fail "$3"
import sys, collections
want = [l.rstrip("\n") for l in open(sys.argv[1])]
got = [l.rstrip("\n") for l in open(sys.argv[2])]
what = sys.argv[3]
cw, cg = collections.Counter(want), collections.Counter(got)
missing = cw - cg
extra = cg - cw
dups = [l for l, c in cg.items() if c > 1]
if missing or extra or dups:
    print(f"{what}: {len(got)} messages, {len(want)} expected; {sum(missing.values())} missing,"
          f" {sum(extra.values())} unexpected, {len(dups)} seen more than once;"
          f" first missing: {next(iter(missing), None)}; first extra: {next(iter(extra), None)}",
          file=sys.stderr)
    sys.exit(1)
def per_device(lines):
    d = collections.defaultdict(list)
    for l in lines:
        d[l.split(" ", 1)[0].rsplit("/", 1)[-1]].append(l)
    return d
pw, pg = per_device(want), per_device(got)
for dev in pw:
    if pw[dev] != pg[dev]:
        i = next(i for i, (a, b) in enumerate(zip(pw[dev], pg[dev])) if a != b)
        print(f"{what}: device {dev}: order differs at its message {i + 1}", file=sys.stderr)
        sys.exit(1)
PY
}

# --- what the subscribers saw --------------------------------------------------------------------
for k in 0 1 2; do
    grep -v '^hkit-test/' "$T/sub$k.raw" >"$T/sub$k" || true
    check_stream "$T/want" "$T/sub$k" "subscriber on node $((k + 1))"
    hkit_assert_eq "$SENT" "$(wc -l <"$T/sub$k")" "subscriber on node $((k + 1)): messages = sum of sent"
done

# --- hrecord's shares merged by hcat -------------------------------------------------------------
for k in 0 1 2; do
    hkit_assert_eq 1 "$(sqlite3 "$T/part$k.db" 'select count(*) from sessions')" "recording $((k + 1)): one session"
done
hcat -t 'haltian-iot/#' -o "$T/merged.db" --quiet "$T/part0.db" "$T/part1.db" "$T/part2.db" ||
    hkit_fail "hcat could not merge the three recordings"
sqlite3 "$T/merged.db" "select topic || ' ' || lower(hex(payload)) from messages_v order by seq" >"$T/merged"
check_stream "$T/want" "$T/merged" "hcat's merge of the three hrecord shares"
# merged in arrival order
hkit_assert_eq 0 "$(sqlite3 "$T/merged.db" 'select count(*) from messages a join messages b
    on b.seq = a.seq + 1 where b.received_at_ns < a.received_at_ns')" "merge in arrival order"
hkit_assert_eq 0 "$(sqlite3 "$T/merged.db" 'select count(*) from messages where qos <> 1')" \
    "recorded QoS"

# --- RabbitMQ 3.10's limits ---------------------------------------------------------------------
# A QoS 2 publish is answered with PUBACK: hreplay says so and exits 1, promptly.
hkit_expect_exit 1 timeout 30 hreplay --url "${URL[0]}" -i hkit-t0601-qos2 -q 2 --max --limit 50 \
    --quiet "$T/rec.db"
hkit_assert_contains "$ERR" "does not support publishing at QoS 2 (it answered with PUBACK); use -q 1" \
    "hreplay -q 2 against RabbitMQ"
# ...and every one of the 50 messages counts as failed: none was confirmed
hkit_expect_exit 1 timeout 30 hreplay --url "${URL[0]}" -i hkit-t0601-qos2b -q 2 --max --limit 50 \
    --quiet --report-json "$T/qos2.json" "$T/rec.db"
hkit_assert_eq 50 "$(jq -r .failed "$T/qos2.json")" "QoS 2 against RabbitMQ: failed messages"

# A QoS 2 subscription is granted QoS 1.
out=$(timeout 30 "${sub[@]}" -p "${PORT[1]}" -i hkit-t0601-q2sub -q 2 -t 'hkit-test/q2' -E -d 2>&1) ||
    hkit_fail "QoS 2 subscription: $out"
hkit_assert_contains "$out" "Subscribed (mid: 1): 1" "QoS 2 subscription granted QoS 1"

# Retained messages are node-local, and only a subscription to their exact topic gets them (no
# wildcard matching). A new subscriber is sent a retained message right after SUBACK, by its
# connection's own process, ahead of any live message: so the first message a new subscriber
# sees, while live ones are published on its node until it sees one, tells whether it got the
# retained one.
"${pub[@]}" -p "${PORT[0]}" -q 1 -r -t hkit-test/retained/r -m kept
first_message() { # K FILTER: the first message a new subscriber to FILTER on node K sees
    local k=$1 filter=$2 pid i
    : >"$T/ret$k"
    "${sub[@]}" -p "${PORT[$k]}" -i "hkit-t0601-ret-$k" -q 1 -t "$filter" -C 1 -W 30 \
        -F '%t %p' >"$T/ret$k" 2>&1 &
    pid=$!
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null && [ ! -s "$T/ret$k" ] || break
        "${pub[@]}" -p "${PORT[$k]}" -q 1 -t hkit-test/retained/r -m live
        hkit_sleep 0.1
    done
    wait "$pid" || { echo "subscriber on node $((k + 1)) failed: $(cat "$T/ret$k")"; return; }
    cat "$T/ret$k"
}
hkit_assert_eq "hkit-test/retained/r kept" "$(first_message 0 hkit-test/retained/r)" \
    "retained message, subscriber on its node"
hkit_assert_eq "hkit-test/retained/r live" "$(first_message 1 hkit-test/retained/r)" \
    "retained message, subscriber on another node"
hkit_assert_eq "hkit-test/retained/r live" "$(first_message 0 'hkit-test/retained/#')" \
    "retained message, wildcard subscriber on its node"
"${pub[@]}" -p "${PORT[0]}" -q 1 -r -t hkit-test/retained/r -n # clear it

# Client ids are cluster-wide: a second client with hrecord's id on another node takes over.
# (hrecord asks for QoS 2 and is told what it was granted.)
hrecord --url "${URL[0]}" -i hkit-t0601-same -q 2 -t hkit-test/same -o "$T/same.db" \
    --reconnect-min 60s 2>"$T/same.err" &
CHILDREN+=($!)
hkit_wait_cmd "hrecord connected" 30 grep -q "connected to .* as 'hkit-t0601-same'" "$T/same.err"
hkit_wait_cmd "hrecord's warning about the granted QoS" 10 grep -qF \
    "warning: broker granted QoS 1 instead of 2 for 'hkit-test/same'" "$T/same.err"
timeout 30 "${sub[@]}" -p "${PORT[2]}" -i hkit-t0601-same -t hkit-test/same -E ||
    hkit_fail "second client with the same id on node 3"
hkit_wait_cmd "hrecord on node 1 losing its connection" 30 grep -q "connection to .* lost" "$T/same.err"
stop_children

# Only MQTT 3.1/3.1.1: an MQTT 5 CONNECT is dropped without CONNACK.
hkit_expect_exit 7 timeout 30 mosquitto_pub -V mqttv5 -h 127.0.0.1 -p "${PORT[0]}" -t hkit-test/v5 -m x
hkit_assert_contains "$ERR" "connection was lost" "MQTT 5 refused"

start=$SECONDS
"$CLUSTER" down 2>"$T/down.err" || hkit_fail "scripts/cluster down: $(cat "$T/down.err")"
echo "cluster down in $((SECONDS - start))s" >&2
[ ! -e "$HKIT_CLUSTER_DIR" ] || hkit_fail "scripts/cluster down left $HKIT_CLUSTER_DIR"
echo "ok" >&2

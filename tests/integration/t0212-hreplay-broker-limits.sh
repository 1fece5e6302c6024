#!/usr/bin/env bash
# What a real Mosquitto does at its limits, and that hreplay never turns it into silent loss:
# - a stock broker (max_inflight_messages 20) acknowledges QoS 2 messages beyond its limit with
#   PUBREC and PUBCOMP and drops them: hreplay keeps its QoS 2 window within the broker's limit
#   (MQTT 5 Receive Maximum, asked on a probe connection), so all 1000 arrive; QoS 1 too;
# - a message over the broker's max_packet_size closes the connection: at QoS 1 it fails after
#   two connections, the rest arrive, exit 1; as the last QoS 0 message it is counted as
#   possibly lost (the final ping shows the broker did not read everything);
# - invalid topics (wildcards) are never sent: each fails, the rest arrive, exit 1; options that
#   would make invalid topics are usage errors;
# - --remap matches whole topic levels, with filter syntax;
# - an empty selection with --loop 0 ends at once;
# - --report-json to an unwritable path fails before connecting; with nothing sent, lateness and
#   schedule_kept are null.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
trap 'echo "t0212: command failed at line $LINENO" >&2' ERR
T=$HKIT_TMP

hkit_broker_start "$T/stock" stock
URL="mqtt://127.0.0.1:$HKIT_BROKER_PORT"
for i in $(seq 1 1000); do printf '{"topic":"lim/dev-%d","qos":2,"payload":"%d"}\n' $((i % 7)) "$i"; done >"$T/q2.jsonl"
for qos in 2 1; do
    for inflight in default 1000; do
        args=()
        [ $inflight = default ] || args=(--inflight "$inflight")
        hkit_capture_start "$T/cap.$qos.$inflight" 'lim/#' mqttv311
        timeout 60 hreplay --url "$URL" --max -q $qos "${args[@]}" --report-json "$T/r.json" \
            "$T/q2.jsonl" 2>"$T/err" || hkit_fail "QoS $qos --inflight $inflight: $(cat "$T/err")"
        hkit_capture_stop "$T/cap.$qos.$inflight"
        hkit_assert_eq 1000 "$(wc -l <"$T/cap.$qos.$inflight")" \
            "QoS $qos, --inflight $inflight: messages a stock Mosquitto delivered"
        hkit_assert_eq 0 "$(hkit_report "$T/r.json" failed)" "QoS $qos: failed"
    done
done
hkit_broker_stop

# A broker with a low max_packet_size closes the connection on a larger message.
HKIT_BROKER_EXTRA_CONF="max_packet_size 2000" hkit_broker_start "$T/small"
URL="mqtt://127.0.0.1:$HKIT_BROKER_PORT"
big=$(head -c 5000 /dev/zero | tr '\0' 'x')
for i in $(seq 1 200); do
    p=$i
    [ "$i" = 100 ] && p=$big
    printf '{"topic":"lim/dev-1","qos":1,"payload":"%s"}\n' "$p"
done >"$T/big1.jsonl"
hkit_capture_start "$T/cap.big1" 'lim/#'
rc=0
timeout 60 hreplay --url "$URL" --rate 2000 -q 1 --report-json "$T/r.big1.json" "$T/big1.jsonl" \
    2>"$T/err.big1" || rc=$?
hkit_capture_stop "$T/cap.big1"
hkit_assert_eq 1 "$rc" "oversized QoS 1 message: exit status ($(tail -2 "$T/err.big1"))"
hkit_assert_eq 1 "$(hkit_report "$T/r.big1.json" failed)" "oversized QoS 1 message: failed"
hkit_assert_eq 199 "$(sort -u "$T/cap.big1" | wc -l)" "oversized QoS 1 message: the others arrive"
rec=$(hkit_report "$T/r.big1.json" reconnects)
[ "$rec" -ge 2 ] && [ "$rec" -le 8 ] || hkit_fail "oversized QoS 1 message: $rec reconnects (a tight loop makes hundreds)"
hkit_assert_contains "$(cat "$T/err.big1")" "alone in flight" "oversized: the reason"

# ...and as the last QoS 0 message of a run: the final ping finds the closed connection.
{ for i in $(seq 1 50); do printf '{"topic":"lim/dev-1","qos":0,"payload":"%d"}\n' "$i"; done
  printf '{"topic":"lim/dev-1","qos":0,"payload":"%s"}\n' "$big"; } >"$T/big0.jsonl"
timeout 60 hreplay --url "$URL" --max -q 0 --report-json "$T/r.big0.json" "$T/big0.jsonl" \
    2>"$T/err.big0" || true
lost=$(hkit_report "$T/r.big0.json" qos0_maybe_lost)
[ "$lost" -ge 1 ] || hkit_fail "oversized last QoS 0 message: qos0_maybe_lost is $lost"

# Invalid topics in the input fail one by one; the rest arrive.
printf '%s\n' '{"topic":"lim/a","payload":"1"}' '{"topic":"lim/+/x","payload":"2"}' \
    '{"topic":"lim/b","payload":"3"}' '{"topic":"lim/#","payload":"4"}' \
    '{"topic":"lim/c","payload":"5"}' >"$T/bad.jsonl"
for qos in 0 1; do
    hkit_capture_start "$T/cap.bad.$qos" 'lim/#'
    rc=0
    timeout 30 hreplay --url "$URL" --max -q $qos --report-json "$T/r.bad.json" "$T/bad.jsonl" \
        2>"$T/err.bad" || rc=$?
    hkit_capture_stop "$T/cap.bad.$qos"
    hkit_assert_eq 1 "$rc" "invalid topics at QoS $qos: exit status"
    hkit_assert_eq 2 "$(hkit_report "$T/r.bad.json" failed)" "invalid topics at QoS $qos: failed"
    hkit_assert_eq 3 "$(wc -l <"$T/cap.bad.$qos")" "invalid topics at QoS $qos: delivered"
    hkit_assert_eq 0 "$(hkit_report "$T/r.bad.json" reconnects)" "invalid topics: reconnects"
    hkit_assert_contains "$(cat "$T/err.bad")" "invalid topic 'lim/+/x': wildcards are not allowed" \
        "invalid topics: the message"
done
# A line whose topic MQTT forbids (U+0000, here) fails alone too.
printf '%s\n' '{"topic":"lim/a","payload":"1"}' '{"topic":"lim/\u0000","payload":"2"}' \
    '{"topic":"lim/c","payload":"3"}' >"$T/nul.jsonl"
hkit_capture_start "$T/cap.nul" 'lim/#'
rc=0
timeout 30 hreplay --url "$URL" --max --report-json "$T/r.nul.json" "$T/nul.jsonl" 2>"$T/err.nul" ||
    rc=$?
hkit_capture_stop "$T/cap.nul"
hkit_assert_eq 1 "$rc" "a NUL in a topic: exit status"
hkit_assert_eq 1 "$(hkit_report "$T/r.nul.json" failed)" "a NUL in a topic: failed"
hkit_assert_eq 2 "$(wc -l <"$T/cap.nul")" "a NUL in a topic: the others arrive"
hkit_expect_exit 2 hreplay --url "$URL" --remap 'lim=a/+' "$T/bad.jsonl"
hkit_assert_contains "$ERR" "invalid TO for --remap" "--remap to a wildcard"
hkit_expect_exit 2 hreplay --url "$URL" --integration-id 'a+b' "$T/bad.jsonl"
hkit_assert_contains "$ERR" "--integration-id" "--integration-id with a wildcard"
hkit_expect_exit 2 hreplay --url "$URL" --api-key-id 'a/b' "$T/bad.jsonl"
hkit_assert_contains "$ERR" "more than one topic level" "--api-key-id with a slash"

# --remap: whole levels and filter syntax.
H=haltian-iot/events/INT1/KEY1/measurements/co2/dev-1
printf '{"topic":"%s","payload":"1"}\n{"topic":"haltian-iot/events/INT10/KEY1/measurements/co2/dev-2","payload":"2"}\n' \
    "$H" >"$T/remap.jsonl"
hkit_capture_start "$T/cap.remap" '#'
timeout 30 hreplay --url "$URL" --max --remap haltian-iot/ev=zz --remap haltian-iot/events/INT1=one \
    --remap 'haltian-iot/events/+/+/#=rest' "$T/remap.jsonl" 2>"$T/err.remap"
hkit_capture_stop "$T/cap.remap"
topics=$(cut -d' ' -f1 "$T/cap.remap" | tr '\n' ' ')
hkit_assert_eq "one/KEY1/measurements/co2/dev-1 rest/measurements/co2/dev-2 " "$topics" "--remap"

# An empty selection with --loop 0 ends at once with a warning (a pass at one instant repeating
# once a second is pinned in test_sched.c, with an injected clock).
rc=0
timeout 10 hreplay --url "$URL" --loop 0 --type nosuch "$T/remap.jsonl" 2>"$T/err.empty" || rc=$?
hkit_assert_eq 0 "$rc" "empty selection with --loop 0: exit status"
hkit_assert_contains "$(cat "$T/err.empty")" "the selection is empty" "empty selection: warning"
# --report-json: checked up front; null lateness when nothing was sent.
hkit_expect_exit 1 hreplay --url "mqtt://127.0.0.1:1" --report-json /proc/nope/r.json "$T/remap.jsonl"
hkit_assert_contains "$ERR" "cannot write '/proc/nope/r.json'" "unwritable --report-json"
timeout 30 hreplay --url "$URL" --speed 1 --type nosuch --report-json "$T/r.none.json" \
    "$T/remap.jsonl" 2>/dev/null
hkit_assert_eq None "$(hkit_report "$T/r.none.json" schedule_kept)" "nothing sent: schedule_kept"
hkit_assert_eq None "$(hkit_report "$T/r.none.json" lateness_us)" "nothing sent: lateness"
echo ok

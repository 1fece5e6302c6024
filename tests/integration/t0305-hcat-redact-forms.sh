#!/usr/bin/env bash
# Redaction that holds (issue 11 items 6-8): every form of an id is replaced, ids the meta names
# are learnt even when the cut selected none of their messages, numbers and other tokens are
# never cut, and masks null every duplicate while leaving the other bytes as they were.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

I=3f6c1d2a-8b4e-4c7a-9e21-5d0f7a9b1c44
K=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
D1=9d1e2f3a-4b5c-4d6e-8f70-a1b2c3d4e5f6
D3=c3c3c3c3-1111-4222-8333-444444444444 # only in a subscription filter and the note
DU=$(printf '%s' "$D1" | tr a-f A-F)
DH=$(printf '%s' "$D1" | tr -d -)
DP=${D1//-/%2D}
DE=${D1//-/\\\\u002d}
T="haltian-iot/events/$I/$K/measurements"
cat >in.jsonl <<J
{"received_at":"2026-02-05T10:30:00Z","topic":"$T/ambientTemperature/$D1","payload":"{\"value\":81234567,\"at\":\"2026-02-05T10:30:51.1234567Z\"}"}
{"received_at":"2026-02-05T10:30:01Z","topic":"haltian-iot/events/$I/$K/payloads/wirepas/$D1","payload":"{\"value\":{\"mqtt_topic\":\"haltian-iot\\\\/wirepas\\\\/gw-event\\\\/received_data\\\\/BS225000789\\\\/sink1\\\\/1234567\\\\/21\\\\/21\",\"gatewayId\":\"GW-A-0001\",\"gateway_id\":\"GW-B-0002\"}}"}
{"received_at":"2026-02-05T10:30:02Z","topic":"$T/co2/$D1","payload":"{\"u\":\"$DU\",\"h\":\"$DH\",\"p\":\"$DP\",\"e\":\"$DE\",\"n\":1234567,\"secret\":\"one\",\"w\":0.30000000000000004,\"secret\":\"two\",\"big\":12345678901234567890,\"f\":1.0}"}
J
hkit_expect_exit 0 hcat in.jsonl -o in.db --note "gateway BS225000789 at site $D3"
sqlite3 in.db "insert or replace into meta values('subscriptions','[{\"filter\":\"haltian-iot/events/$I/$K/measurements/+/$D3\",\"qos\":1,\"granted_qos\":1}]')"
head -c 32 /dev/urandom >key
hkit_expect_exit 0 hcat in.db --redact-key key --mask secret -o out.db
hkit_expect_exit 0 hcat out.db
dump=$(sqlite3 out.db .dump)
for id in "$I" "$K" "$D1" "$D3" "$DU" "$DH" "$DP" "${D1:0:8}" "${DU:0:8}" BS225000789 GW-A-0001 GW-B-0002 \
    '"secret":"one"' '"secret":"two"'; do
    hkit_assert_eq 0 "$(printf '%s' "$dump$OUT" | grep -c -F -- "$id" || true)" "'$id' left"
done
# the gateway id also left the note and the subscriptions meta
hkit_assert_eq 0 "$(grep -c -a -F -- "$D3" out.db || true)" "subscription-only id in the file"
p1=$(sqlite3 out.db "select device_id from messages where seq = 1")
p3=$(sqlite3 out.db "select cast(payload as text) from messages where seq = 3")
hkit_assert_contains "$p3" "\"u\":\"$p1\",\"h\":\"$p1\",\"p\":\"$p1\",\"e\":\"$p1\"" "all forms, one pseudonym"
hkit_assert_contains "$p3" '"n":1234567,"secret":null,"w":0.30000000000000004,"secret":null,"big":12345678901234567890,"f":1.0}' "numbers kept, every duplicate masked"
hkit_assert_eq '{"value":81234567,"at":"2026-02-05T10:30:51.1234567Z"}' \
    "$(sqlite3 out.db 'select cast(payload as text) from messages where seq = 1')" "no number or time cut"
echo ok

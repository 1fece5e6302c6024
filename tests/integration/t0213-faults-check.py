#!/usr/bin/env python3
"""Checks what an independent subscriber saw against hreplay's --fault-log (used by
t0214-t0216). Arguments: INPUT.jsonl FAULT-LOG CAPTURE [KIND...]

CAPTURE holds mosquitto_sub -F '%t %r %q %x' lines, in arrival order, of one replay over one
connection at one QoS level (so the broker keeps the order). Every input message carries a
distinct payload. Checked, exactly:
  - the count: inputs - dropped - lost + duplicates (dup copies and redeliveries);
  - each event's message sits at the logged position (1-based in the capture), with the bytes
    the log says (payload_hex) or else the input's bytes; retain events arrive retained;
  - every other line is an input message in input order (only faulted messages and reorder
    partners move), and no input is missing unless logged as dropped or lost;
  - each KIND given was applied at least once (so a test cannot pass vacuously).
Prints a one-line summary; exits 1 naming the first disagreement.
"""
import base64
import json
import sys


def payload_of(o):
    if "payload_b64" in o:
        return base64.b64decode(o["payload_b64"]).hex()
    return o.get("payload", "").encode().hex()


def main():
    inputs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    events = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    capture = [l.rstrip("\n").split(" ") for l in open(sys.argv[3]) if l.strip()]
    kinds = sys.argv[4:]
    want = {i + 1: (o["topic"], payload_of(o)) for i, o in enumerate(inputs)}
    by_payload = {}
    for seq, (topic, hexp) in want.items():
        by_payload[(topic, hexp)] = seq

    def fail(msg):
        sys.exit("FAIL: " + msg)

    for k in kinds:
        if not any(e["kind"] == k for e in events):
            fail(f"no {k} fault was applied")
    dropped = sum(1 for e in events if e["kind"] == "drop")
    lost = sum(1 for e in events if e["kind"] == "disconnect" and e["lost"])
    dups = sum(1 for e in events if e["kind"] in ("dup", "redeliver"))
    expect_n = len(inputs) - dropped - lost + dups
    if len(capture) != expect_n:
        fail(f"subscriber saw {len(capture)} messages, the log says {len(inputs)} - {dropped} "
             f"dropped - {lost} lost + {dups} duplicates = {expect_n}")
    explained = {}  # position -> input seq
    gone = set()
    for e in events:
        seq = e["seq"]
        if e["position"] is None:
            if e["kind"] not in ("drop", "disconnect"):
                fail(f"event without position: {e}")
            gone.add(seq)
            continue
        for pos in [e["position"]] + ([e["position2"]] if e["kind"] == "redeliver" else []):
            if not 1 <= pos <= len(capture):
                fail(f"seq {seq} {e['kind']}: position {pos} outside the capture")
            topic, retain, qos, hexp = (capture[pos - 1] + [""])[:4]
            wanted_hex = e.get("payload_hex")
            if wanted_hex is None:
                # another event of the same message may have changed its bytes
                for o in events:
                    if o["seq"] == seq and o.get("position") == e["position"] and "payload_hex" in o:
                        wanted_hex = o["payload_hex"]
                if wanted_hex is None:
                    wanted_hex = want[seq][1]
            if topic != e["topic"] or hexp != wanted_hex:
                fail(f"seq {seq} {e['kind']}: position {pos} holds {topic} {hexp}, the log says "
                     f"{e['topic']} {wanted_hex}")
            if e["kind"] == "retain" and retain != "1":
                fail(f"seq {seq} retain: position {pos} arrived with retain {retain}")
            explained[pos] = seq
        if e["kind"] == "reorder" and e["with"] is not None:
            # the partner went first: it is the input `with`, and sits before the chosen one
            # (found by its own events when its bytes changed, else by its bytes)
            partner = [o["position"] for o in events
                       if o["seq"] == e["with"] and o["kind"] != "dup" and o["position"]]
            partner = partner or [i for i, c in enumerate(capture, 1)
                                  if by_payload.get((c[0], c[3])) == e["with"]]
            if not partner or partner[0] > e["position"]:
                fail(f"seq {seq} reorder: partner {e['with']} is not before position {e['position']}")
            explained[partner[0]] = e["with"]
    last = 0
    seen = set()
    for pos, c in enumerate(capture, 1):
        if pos in explained:
            seen.add(explained[pos])
            continue
        seq = by_payload.get((c[0], c[3]))
        if seq is None:
            fail(f"position {pos}: {c[0]} {c[3]} is no input message and no event explains it")
        if seq <= last:
            fail(f"position {pos}: input {seq} after input {last}, and no event moved it")
        if c[1] != "0" and not inputs[seq - 1].get("retain"):
            fail(f"position {pos}: input {seq} arrived retained")
        last = seq
        seen.add(seq)
    missing = sorted(set(want) - seen - gone)
    if missing:
        fail(f"inputs {missing[:10]} never arrived and the log does not say why")
    counts = {}
    for e in events:
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    print(f"{len(capture)} messages agree with {len(events)} fault events {counts}")


main()

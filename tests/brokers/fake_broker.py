#!/usr/bin/env python3
"""A misbehaving MQTT 3.1.1 broker for failure-path tests: cases Mosquitto cannot produce.

Usage: fake_broker.py MODE PORTFILE
Listens on a free loopback port, writes it to PORTFILE once listening, and serves every
connection (one at a time, as many as come) in MODE until killed:

  noack        CONNACK 0 and PINGRESP to every PINGREQ; never acknowledges a PUBLISH
  ack-unknown  answers each QoS 1 PUBLISH with a PUBACK for another packet id
  ack-zero     answers each QoS 1 PUBLISH with a PUBACK for packet id 0
  ack-short    answers each QoS 1 PUBLISH with a 1-byte PUBACK
  noread       CONNACK 0, then never reads again and sends unasked PINGRESPs, once a second
  silent       reads the CONNECT and never answers it

Each accepted connection is logged to PORTFILE.log, one line each, and each PUBLISH received
to PORTFILE.pub.
"""
import os
import socket
import sys
import time

MODE, PORTFILE = sys.argv[1], sys.argv[2]


def read_packet(conn, buf):
    """Returns (first byte, body, rest of buf), or None when the peer closed."""
    while True:
        if len(buf) >= 2:
            length, mult, i = 0, 1, 1
            while i < len(buf) and i <= 4:
                b = buf[i]
                length += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    if len(buf) >= i + length:
                        return buf[0], buf[i:i + length], buf[i + length:]
                    break
        data = conn.recv(65536)
        if not data:
            return None
        buf += data


def serve(conn):
    buf = b""
    got = read_packet(conn, buf)
    if got is None or got[0] >> 4 != 1:
        return
    buf = got[2]
    if MODE == "silent":
        while conn.recv(65536):
            pass
        return
    conn.sendall(b"\x20\x02\x00\x00")
    if MODE == "noread":
        while True:
            conn.sendall(b"\xd0\x00")
            time.sleep(1)
    while True:
        got = read_packet(conn, buf)
        if got is None:
            return
        first, body, buf = got
        kind, qos = first >> 4, (first >> 1) & 3
        if kind == 3:
            with open(PORTFILE + ".pub", "a") as log:
                log.write("publish\n")
        if kind == 12:  # PINGREQ
            conn.sendall(b"\xd0\x00")
        elif kind == 3 and qos == 1 and MODE != "noack":
            tlen = body[0] << 8 | body[1]
            pid = body[2 + tlen] << 8 | body[3 + tlen]
            if MODE == "ack-unknown":
                pid = (pid + 1000) & 0xFFFF or 1
                conn.sendall(bytes([0x40, 2, pid >> 8, pid & 0xFF]))
            elif MODE == "ack-zero":
                conn.sendall(b"\x40\x02\x00\x00")
            elif MODE == "ack-short":
                conn.sendall(b"\x40\x01\x00")
        elif kind == 14:  # DISCONNECT
            return


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if MODE == "noread":
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few KB
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    with open(PORTFILE + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(PORTFILE + ".tmp", PORTFILE)
    while True:
        conn, _ = srv.accept()
        with open(PORTFILE + ".log", "a") as log:
            log.write("connection\n")
        try:
            serve(conn)
        except OSError:
            pass
        conn.close()


main()

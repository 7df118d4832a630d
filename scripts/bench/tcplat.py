#!/usr/bin/env python3
"""TCP connect + 1-byte echo latency, for scripts/bench/network.sh.

  tcplat.py server PORT [ADDR]        echo server: answers every byte it reads, until EOF
  tcplat.py client ADDR PORT COUNT    COUNT times: connect, send 1 byte, read it back, close;
                                      prints {"n", "failed", "p50_ms", "p99_ms"} as JSON
"""
import json
import socket
import sys
import threading
import time


def serve(port, addr="0.0.0.0"):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, port))
    listener.listen(128)

    def echo(conn):
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def client(addr, port, count):
    times, failed = [], 0
    for _ in range(count):
        start = time.perf_counter()
        try:
            with socket.create_connection((addr, port), timeout=5) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(b"x")
                if s.recv(1) != b"x":
                    raise OSError("no echo")
        except OSError:
            failed += 1
            continue
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    pick = lambda q: round(times[min(len(times) - 1, int(q * len(times)))], 3) if times else None
    print(json.dumps({"n": len(times), "failed": failed, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]), *(sys.argv[3:4]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))

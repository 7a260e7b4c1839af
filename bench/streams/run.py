#!/usr/bin/env python3
"""bench/streams: the gateway's memory with N streams open at once.

Starts the provider simulator on a virtual clock so every stream sends its
first chunks and then waits, opens N streamed calls through the release
gateway, reads the gateway's resident memory (VmRSS) while all are open,
then lets the streams finish and checks every one ended with [DONE] and a
ledger row. Prints figures; asserts nothing else. Usage: run.py [N]
"""
import os
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "tests", "e2e"))
import harness  # noqa: E402
from gateway import Gateway  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    os.environ.setdefault("TOLLGATE_BIN",
                          os.path.join(harness.ROOT, "tollgate"))
    import gateway
    gateway.BIN = os.environ["TOLLGATE_BIN"]
    sim = harness.Sim(["--clock", "virtual", "--key", "sim-secret",
                       "--default-latency", "0,1000"])
    gw = Gateway(sim.url + "/v1").start()
    idle = rss_mib(gw.proc.pid)
    body = (b'{"model":"fast","stream":true,"messages":[{"role":"user",'
            b'"content":"stream please sim:words=40"}]}')
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
           b"Authorization: Bearer tg-key-alpha\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
           % len(body)) + body
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
        s.sendall(req)
        socks.append(s)
    for s in socks:                  # every stream has started
        got = b""
        while b'"role":"assistant"' not in got:
            got += s.recv(65536)
    open_rss = rss_mib(gw.proc.pid)
    sim.advance(60000)               # let every answer finish
    done = 0
    for s in socks:
        got = b""
        while b"[DONE]" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        done += b"[DONE]" in got
        s.close()
    gw.wait_written(n, timeout=60)
    after = rss_mib(gw.proc.pid)
    gw.stop()
    sim.stop()
    rows = sqlite3.connect(gw.ledger).execute(
        "SELECT count(*) FROM outcomes WHERE streamed = 1 AND "
        "cost_status = 'priced'").fetchone()[0]
    print(f"bench/streams: {n} concurrent streams through {gateway.BIN}")
    print(f"  gateway RSS: idle {idle:.1f} MiB, with {n} streams open "
          f"{open_rss:.1f} MiB, after {after:.1f} MiB")
    print(f"  streams ended with [DONE]: {done}/{n}; priced ledger rows: "
          f"{rows}")


if __name__ == "__main__":
    main()

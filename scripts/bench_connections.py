#!/usr/bin/env python3
"""Many idle client connections held by one broker: RSS and file descriptors per connection.

Not a test: a measurement tool for closing notes and the README. It starts one broker on a
127.0.0.1 ephemeral port in a temp dir (killed by PID at the end), then opens
`--connections` TCP connections, each sending one ApiVersions (v0) request and reading the
answer, and leaves them all open and idle. It reports the broker's RSS and open file
descriptors before and after (in all and per connection), how long opening took, and
whether the broker still answers a new connection and a Metadata request while holding
them all, sampled again after `--hold` seconds.

The soft RLIMIT_NOFILE of this process (and so of the broker it starts) is raised to the
hard limit. Run it from the repository root (plain Python; STROM_BIN picks the binary):

    STROM_BIN=target/release/strom python3 scripts/bench_connections.py --connections 10000
"""

import argparse
import json
import os
import resource
import socket
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "compat"))

from strom_compat.broker import Broker  # noqa: E402


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def process_stats(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of `pid`."""
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def request(api_key: int, version: int, correlation_id: int, body: bytes = b"") -> bytes:
    client_id = b"bench-connections"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the broker")
            data += chunk
        return data
    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


def api_versions(sock: socket.socket, correlation_id: int) -> None:
    sock.sendall(request(18, 0, correlation_id))
    frame = read_frame(sock)
    got_id, error = struct.unpack(">ih", frame[:6])
    if got_id != correlation_id or error != 0:
        raise RuntimeError(f"ApiVersions answer {got_id}/{error}")


def metadata_ok(port: int) -> bool:
    """A new connection still gets ApiVersions and Metadata (v1, all topics) answered."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            api_versions(sock, 1)
            sock.sendall(request(3, 1, 2, struct.pack(">i", -1)))
            return struct.unpack(">i", read_frame(sock)[:4])[0] == 2
    except (OSError, RuntimeError, ConnectionError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--hold", type=int, default=30, help="seconds to hold them idle")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    nofile = raise_nofile()
    if nofile < args.connections + 100:
        raise SystemExit(f"RLIMIT_NOFILE {nofile} is too low for {args.connections} connections")
    broker = Broker("connections", {
        "max.connections": str(args.connections + 1000),
        "max.connections.per.ip": str(args.connections + 1000),
    })
    broker.start()
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    pid = broker.process.pid
    figures: dict = {"connections": args.connections, "nofile": nofile}
    sockets: list[socket.socket] = []
    try:
        time.sleep(1)
        rss0, fds0 = process_stats(pid)
        figures["before"] = {"rss_mib": round(rss0, 1), "fds": fds0}
        started = time.monotonic()
        for i in range(args.connections):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            api_versions(sock, i)
            sockets.append(sock)
            if (i + 1) % 1000 == 0:
                print(f"\r{i + 1:>6} connections ({time.monotonic() - started:5.1f} s)", end="", flush=True)
        print()
        figures["open_s"] = round(time.monotonic() - started, 1)
        time.sleep(2)
        for label in ("after_open", "after_hold"):
            if label == "after_hold":
                time.sleep(args.hold)
            rss, fds = process_stats(pid)
            figures[label] = {
                "rss_mib": round(rss, 1), "fds": fds,
                "rss_kib_per_connection": round((rss - rss0) * 1024 / args.connections, 1),
                "fds_per_connection": round((fds - fds0) / args.connections, 2),
                "broker_alive": broker.alive(),
                "new_connection_answered": metadata_ok(port),
            }
        # Every held connection is still open and answered (none was dropped).
        answered = 0
        for i, sock in enumerate(sockets):
            try:
                api_versions(sock, i)
                answered += 1
            except (OSError, RuntimeError, ConnectionError):
                pass
        figures["held_connections_still_answered"] = answered
    finally:
        for sock in sockets:
            sock.close()
        broker.close()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

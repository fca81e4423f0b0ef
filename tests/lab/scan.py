"""Port scans run inside a lab namespace by the tests (`python -m tests.lab.scan ...`): prints one
JSON object with what answered."""

from __future__ import annotations

import errno
import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor


def tcp(host: str, port: int, timeout: float) -> str:
    with socket.socket() as sock:
        sock.settimeout(timeout)
        code = sock.connect_ex((host, port))
    if code == 0:
        return "open"
    if code == errno.ECONNREFUSED:
        return "refused"  # something answered with a reset
    return "filtered"


def udp(host: str, port: int, timeout: float) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        try:
            sock.send(b"probe")
            sock.recv(1024)
            return "open"
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "filtered"


def main() -> None:
    kind, host, first, last, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    probe = tcp if kind == "tcp" else udp
    ports = range(first, last + 1)
    with ThreadPoolExecutor(max_workers=64) as pool:
        states = list(pool.map(lambda p: probe(host, p, timeout), ports))
    print(json.dumps({str(p): s for p, s in zip(ports, states, strict=True) if s != "filtered"}))


if __name__ == "__main__":
    main()

"""The lab's Internet host: an HTTP server and a UDP echo that both tell the caller which address
they see, so a test (or a curious admin) can tell which gateway's NAT a VM's traffic left through.

    python -m cloudgw.lab.internet [--http 80] [--udp 7]
"""

from __future__ import annotations

import argparse
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    server_version = "cloudgw-lab-internet"

    def do_GET(self) -> None:
        body = f"hello from the internet\nyou are {self.client_address[0]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"http {self.client_address[0]} {format % args}", flush=True)


def udp_echo(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        data, (host, source_port) = sock.recvfrom(65535)
        sock.sendto(f"you are {host}:{source_port}; ".encode() + data, (host, source_port))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", type=int, default=80)
    parser.add_argument("--udp", type=int, default=7)
    args = parser.parse_args()
    threading.Thread(target=udp_echo, args=(args.udp,), daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", args.http), Handler).serve_forever()


if __name__ == "__main__":
    main()

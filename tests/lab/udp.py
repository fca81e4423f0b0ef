"""Tiny UDP tools run inside lab namespaces by the tests (`python -m tests.lab.udp ...`)."""

from __future__ import annotations

import socket
import struct
import sys
import time


def listen(port: int, seconds: float) -> None:
    """Print 'ready', then one line per datagram (source address), until `seconds` pass."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, (host, _) = sock.recvfrom(65535)
        except TimeoutError:
            break
        print(f"from {host} {data[:20]!r}", flush=True)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def ip_udp_packet(src: str, dst: str, port: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + udp


def send_spoofed(src: str, dst: str, port: int, count: int) -> None:
    """Send UDP datagrams with a forged source address (raw socket, IP header included)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for index in range(count):
        sock.sendto(ip_udp_packet(src, dst, port, f"spoofed {index}".encode()), (dst, 0))


def send_udp(dst: str, port: int, payload_hex: str, count: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(count):
        sock.sendto(bytes.fromhex(payload_hex), (dst, port))


def echo(port: int, seconds: float) -> None:
    """Print 'ready', then answer every datagram with its length, until `seconds` pass."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, source = sock.recvfrom(65535)
        except TimeoutError:
            break
        sock.sendto(str(len(data)).encode(), source)


IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_RECVERR = 10, 2, 11


def sweep(dst: str, port: int, sizes: list[int]) -> None:
    """For each UDP payload size, with DF set: print 'SIZE delivered' (the echo confirmed it),
    'SIZE fragneeded' (the path said it is too large: EMSGSIZE, from our link or from an ICMP
    "fragmentation needed" answer), or 'SIZE lost' (neither, within two seconds: a black hole)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    sock.connect((dst, port))
    for size in sizes:
        outcome = "lost"
        deadline = time.monotonic() + 2.0
        while outcome == "lost" and time.monotonic() < deadline:
            try:
                sock.send(bytes(size))
                sock.settimeout(0.2)
                if sock.recv(100) == str(size).encode():
                    outcome = "delivered"
            except OSError as exc:
                if exc.errno == 90:  # EMSGSIZE
                    outcome = "fragneeded"
                # an ICMP error is reported once on the socket (ECONNREFUSED, EMSGSIZE) or times out:
                # send again until the deadline
        print(f"{size} {outcome}", flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "listen":
        listen(int(args[0]), float(args[1]))
    elif command == "spoof":
        send_spoofed(args[0], args[1], int(args[2]), int(args[3]))
    elif command == "send":
        send_udp(args[0], int(args[1]), args[2], int(args[3]))
    elif command == "echo":
        echo(int(args[0]), float(args[1]))
    elif command == "sweep":
        sweep(args[0], int(args[1]), [int(a) for a in args[2:]])

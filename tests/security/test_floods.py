"""Anonymous floods against a real `cloudgw controller serve` process (TLS, SQLite), with a low
descriptor limit (prlimit) so the limit itself is reached: large bodies, trickled headers, many idle
connections, and connections that never finish their TLS handshake. Through all of them /healthz and
an authenticated GET from another address keep answering, the process stays up, its memory stays
bounded and its log does not flood. The figures are printed (run with -s) and quoted in
docs/security.md."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_for

PER_SOURCE = 100
NOFILE = 400  # the cap becomes 400 - 128 = 272 connections


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    ca: str
    token: str
    log: Path

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def get(self, path: str, source: str = "127.0.0.2", token: str | None = None) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=source, verify=ssl.create_default_context(cafile=self.ca))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(transport=transport, base_url=f"https://127.0.0.1:{self.port}", timeout=10) as client:
            return client.get(path, headers=headers)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("flood")
    init = subprocess.run(
        [sys.executable, "-m", "cloudgw", "controller", "init", "--data-dir", str(data), "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = json.loads(init.stdout)["admin_token"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = data / "controller.log"
    env = {
        **os.environ,
        "CLOUDGW_HEADER_TIMEOUT": "1",
        "CLOUDGW_MAX_CONNECTIONS_PER_SOURCE": str(PER_SOURCE),
        "CLOUDGW_LOG_LEVEL": "info",
    }
    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit (util-linux) is part of the image"
    command = [prlimit, f"--nofile={NOFILE}:{NOFILE}", sys.executable, "-m", "cloudgw", "controller", "serve"]
    command += ["--data-dir", str(data), "--listen", f"127.0.0.1:{port}"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    running = Served(process, port, str(data / "ca.pem"), token, log)
    try:
        wait_for(lambda: healthy(running), 30, what="the controller to serve")
        yield running
    finally:
        process.terminate()
        process.wait(timeout=20)


def healthy(served: Served, source: str = "127.0.0.2") -> bool:
    try:
        return served.get("/healthz", source).status_code == 200
    except httpx.HTTPError:
        return False


def answering(served: Served) -> bool:
    return healthy(served) and served.get("/api/v1/sites", token=served.token).status_code == 200


def tls_socket(served: Served, source: str = "127.0.0.1") -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", served.port), timeout=10, source_address=(source, 0))
    return ssl.create_default_context(cafile=served.ca).wrap_socket(raw, server_hostname="127.0.0.1")


def test_large_anonymous_bodies_are_refused_unread(served):
    before = served.rss_mib()
    sockets = []
    for _ in range(8):
        conn = tls_socket(served)
        conn.sendall(b"POST /api/v1/sites HTTP/1.1\r\nHost: x\r\nContent-Length: 44040192\r\n\r\n" + b"x" * 65536)
        sockets.append(conn)
    answers = [conn.recv(200) for conn in sockets]
    for conn in sockets:
        conn.close()
    assert all(a.startswith(b"HTTP/1.1 413") or a.startswith(b"HTTP/1.1 401") for a in answers), answers
    grown = served.rss_mib() - before
    print(f"\n8 anonymous 42 MiB POSTs: RSS {before:.0f} -> {before + grown:.0f} MiB")
    assert grown < 20 and answering(served)


def test_a_trickled_header_is_cut_off(served):
    conn = tls_socket(served)
    conn.sendall(b"GET /api/v1/sites HTTP/1.1\r\n")
    started = time.monotonic()
    closed_after = None
    while time.monotonic() - started < 8:
        try:
            conn.sendall(b"X")
            conn.settimeout(0.3)
            if conn.recv(100) == b"":
                closed_after = time.monotonic() - started
                break
        except TimeoutError:
            continue
        except OSError:
            closed_after = time.monotonic() - started
            break
    conn.close()
    print(f"\ntrickled header closed after {closed_after:.1f} s (header timeout 1 s)")
    assert closed_after is not None and closed_after < 4
    assert answering(served)


def test_many_idle_connections_from_one_address_are_capped(served):
    before = served.rss_mib()
    sockets, refused = [], 0
    for _ in range(PER_SOURCE + 50):
        conn = tls_socket(served)
        conn.setblocking(False)
        sockets.append(conn)
    wait_for(lambda: answering(served), 10, what="/healthz and a GET from another address")
    for conn in sockets:
        conn.settimeout(3)
        try:
            answer = conn.recv(300)
        except (TimeoutError, OSError):
            answer = b""
        if answer.startswith(b"HTTP/1.1 503") and b"limit per address" in answer:
            refused += 1
        conn.close()
    peak = served.rss_mib()
    count = PER_SOURCE + 50
    print(f"\n{count} idle TLS connections from one address: {refused} refused, RSS {before:.0f} -> {peak:.0f} MiB")
    assert refused >= 50
    assert peak - before < 40  # idle ones are closed by the header deadline, the rest never admitted
    wait_for(lambda: served.descriptors() < 40, 10, what="the connections' descriptors to be released")


def test_at_the_descriptor_limit_health_recovers_and_the_log_stays_small(served):
    size_before = served.log.stat().st_size
    floods = []
    for _ in range(NOFILE + 50):  # bare TCP that never says ClientHello: no limit of ours sees it yet
        try:
            floods.append(socket.create_connection(("127.0.0.1", served.port), timeout=5))
        except OSError:
            break
    assert served.process.poll() is None
    for conn in floods:
        conn.close()
    wait_for(lambda: answering(served), 15, what="/healthz after the flood")
    grown = served.log.stat().st_size - size_before
    print(f"\n{len(floods)} bare connections at a {NOFILE}-descriptor limit: log grew {grown} bytes")
    assert grown < 20_000  # one line a minute for accept errors, not a traceback per attempt

"""Demand signals against real servers on 127.0.0.1: a real Prometheus (Debian's) scraping a small
exporter whose load the test sets, and an HTTP endpoint answering numbers in every accepted form and
every way a signal goes wrong; the pool signal from a topology."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

import httpx
import pytest

from cloudgw.controller.signals import SignalError, pool_usage, read_signal
from cloudgw.mapping.index import TopologyIndex
from cloudgw.model.addr import AddressRange
from cloudgw.model.burst import Signal
from cloudgw.model.topology import Announcement, Gateway, Network, Pool, Site, Topology
from tests.helpers import wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Exporter:
    """An HTTP server whose answers the test sets: /metrics for Prometheus, any other path as is."""

    def __init__(self) -> None:
        self.load = 0.0
        self.started = time.monotonic()
        self.idle_share = 0.25  # node_cpu_seconds_total{mode="idle"} grows at this share of wall time
        self.answers: dict[str, tuple[int, bytes, float]] = {}  # path -> (status, body, delay)
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body = (
                        f"# TYPE app_load gauge\napp_load {exporter.load}\n"
                        f"# TYPE node_cpu_seconds_total counter\n"
                        f'node_cpu_seconds_total{{cpu="0",mode="idle"}} {exporter.idle_seconds()}\n'
                    ).encode()
                    status, delay = 200, 0.0
                else:
                    status, body, delay = exporter.answers.get(self.path, (404, b"no such path", 0.0))
                time.sleep(delay)  # the test's slow server: the reader's timeout is what is tested
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def idle_seconds(self) -> float:
        return (time.monotonic() - self.started) * self.idle_share

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    running = Exporter()
    yield running
    running.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not os.path.exists(PROMETHEUS):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI must have prometheus (scripts/install-system.sh installs it)")
        pytest.skip("no prometheus; scripts/install-system.sh installs it")
    work = tmp_path_factory.mktemp("prometheus")
    target = exporter.url.removeprefix("http://")
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "prometheus.log", "wb"),  # noqa: SIM115 - the child keeps it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), 30, what="Prometheus to be ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def read(signal: Signal) -> float:
    with httpx.Client() as client:
        return read_signal(signal, Topology(), TopologyIndex(), client)


def test_prometheus_query_follows_the_load_the_exporter_reports(prometheus, exporter):
    signal = Signal(kind="prometheus", url=prometheus, query="app_load")
    exporter.load = 0.42
    wait_for(lambda: _value(signal) == 0.42, 30, what="Prometheus to scrape load 0.42")
    exporter.load = 0.91
    wait_for(lambda: _value(signal) == 0.91, 30, what="the new load 0.91")
    with pytest.raises(SignalError, match="returned no sample"):
        read(Signal(kind="prometheus", url=prometheus, query="no_such_metric"))
    with pytest.raises(SignalError, match="answered 400"):
        read(Signal(kind="prometheus", url=prometheus, query="app_load{"))
    assert read(Signal(kind="prometheus", url=prometheus, query="scalar(app_load) * 2")) == pytest.approx(1.82)


def test_cpu_signal_is_the_busy_share_from_node_exporter_counters(prometheus, exporter):
    # idle seconds have grown by a quarter of wall time since the exporter started: 75 % busy
    signal = Signal(kind="cpu", url=prometheus, window=5)
    wait_for(lambda: (v := _value(signal)) is not None and abs(v - 0.75) < 0.02, 60, what="busy share 0.75")


def _value(signal: Signal) -> float | None:
    try:
        return read(signal)
    except SignalError:
        return None


@pytest.mark.parametrize(
    ("body", "value"),
    [(b"0.5\n", 0.5), (b"17", 17.0), (b'{"value": 0.25}', 0.25), (b'"3.5"', 3.5), (b"-1e2", -100.0)],
    ids=["text", "integer", "object", "json-string", "exponent"],
)
def test_http_signal_reads_a_number(exporter, body, value):
    exporter.answers["/load"] = (200, body, 0.0)
    assert read(Signal(kind="http", url=f"{exporter.url}/load")) == value


@pytest.mark.parametrize(
    ("answer", "timeout", "message"),
    [
        ((200, b"lots", 0.0), 5, "is not a number"),
        ((200, b"nan", 0.0), 5, "not a finite number"),
        ((200, b'{"load": 1}', 0.0), 5, "without 'value'"),
        ((200, b"[1, 2]", 0.0), 5, "is not a number"),
        ((503, b"down for maintenance", 0.0), 5, "answered 503: down for maintenance"),
        ((200, b"0.5", 2.0), 0.3, "did not answer within 0.3 s"),
        ((200, b"9" * 70_000, 0.0), 5, "more than 64 KiB"),
    ],
    ids=["words", "nan", "object-without-value", "list", "http-error", "slow", "huge"],
)
def test_http_signal_failures_say_why(exporter, answer, timeout, message):
    exporter.answers["/bad"] = answer
    with pytest.raises(SignalError, match=message):
        read(Signal(kind="http", url=f"{exporter.url}/bad", timeout=timeout))


def test_an_unreachable_signal_says_so():
    with pytest.raises(SignalError, match=re.escape("cannot read http://127.0.0.1:9/")):
        read(Signal(kind="http", url="http://127.0.0.1:9/", timeout=2))


def test_pool_usage_counts_effective_endpoints_in_the_pool():
    topo = Topology(
        sites={"private": Site("private")},
        networks={"lab": Network("lab", IPv4Network("192.168.1.0/24"))},
        gateways={"gw": Gateway("gw", "private")},
        pools={"private-lab": Pool("private-lab", "lab", "private", AddressRange.parse("192.168.1.1-192.168.1.10"))},
    )
    for last in (1, 2, 3, 9, 30):  # .30 is outside the pool: not effective, not counted
        ip = IPv4Address(f"192.168.1.{last}")
        topo.announcements[("lab", ip, "gw")] = Announcement("lab", ip, "gw")
    assert pool_usage("private-lab", topo, TopologyIndex.build(topo)) == pytest.approx(0.4)
    with pytest.raises(SignalError, match="no longer exists"):
        pool_usage("gone", topo, TopologyIndex.build(topo))

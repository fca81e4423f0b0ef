"""Test helpers: waiting on conditions with a deadline, sample documents, namespaces. Test-only code
lives here, never in the production import path."""

from __future__ import annotations

import base64
import contextlib
import copy
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(1, 33))).decode()
KEY_C = base64.b64encode(bytes(range(2, 34))).decode()
RUN_TAG = f"{os.getpid() % 65536:04x}"  # distinguishes parallel runs' namespaces


def wait_for(
    condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll until condition() is truthy; fail with `what` after timeout. Never a bare sleep."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def sample_document(**overrides: Any) -> dict[str, Any]:
    """A valid two-site document for gateway gw-a (site a), as plain data."""
    doc: dict[str, Any] = {
        "version": 1,
        "revision": 3,
        "gateway": {"name": "gw-a", "site": "a", "wan_interface": "wan0"},
        "networks": [
            {
                "name": "net1",
                "cidr": "192.168.1.0/24",
                "lan_interface": "lan0",
                "lan_address": "192.168.1.254",
                "pools": [
                    {"site": "a", "range": "192.168.1.1-192.168.1.10"},
                    {"site": "b", "range": "192.168.1.11-192.168.1.20"},
                ],
                "remote_endpoints": [
                    {"ip": "192.168.1.11", "gateway": "gw-b"},
                    {"ip": "192.168.1.12", "gateway": "gw-b", "mac": "02:00:00:00:00:12"},
                ],
            }
        ],
        "peers": [
            {
                "name": "gw-b",
                "site": "b",
                "public_key": KEY_B,
                "endpoint": "203.0.113.20:51820",
                "lan_addresses": ["192.168.1.253"],
            }
        ],
    }
    for path, value in overrides.items():
        set_path(doc, path, value)
    return doc


def set_path(data: Any, path: str, value: Any) -> None:
    """set_path(doc, "networks.0.pools.1.range", "x"); value None deletes the key."""
    parts = path.split(".")
    target = data
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is None:
        target.pop(last, None)
    else:
        target[last] = value


def deep(data: Any) -> Any:
    return copy.deepcopy(data)


def run(
    cmd: list[str], netns: str | None = None, check: bool = True, timeout: float = 60, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    result = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr}{result.stdout}")
    return result


def reap_zombie_children() -> int:
    """Reap our zombie children (processes re-parented to pytest, the subreaper, then stopped)."""
    me = os.getpid()
    reaped = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            try:
                os.waitpid(int(entry), os.WNOHANG)
                reaped += 1
            except ChildProcessError:
                pass
    return reaped


@contextlib.contextmanager
def json_server(answer: Callable[[str], Any], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A stand-in HTTP(S) server on 127.0.0.1 answering every GET with 200 and answer(path) as JSON
    (another controller version, an impostor); yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the standard library's name
            body = json.dumps(answer(self.path)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

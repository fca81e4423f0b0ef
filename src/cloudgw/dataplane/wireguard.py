"""WireGuard through wireguard-go and its UAPI socket.

Design notes
- The agent starts `wireguard-go -f IFNAME` in its own session, so the tunnel outlives an agent
  restart: a restarted agent finds the socket, reads the device back and changes nothing.
- Configuration goes through the UAPI text protocol (keys in hex), never by parsing `wg` output. All
  peer changes of one reconcile are one `set` transaction.
- wireguard-go puts its socket in /var/run/wireguard, shared by every network namespace. Where several
  gateways share one machine (the lab), each is given its own socket directory: wireguard-go then runs
  in a private mount namespace with that directory bound over /run/wireguard.
- The kernel module speaks the same model; wireguard-go also runs on kernels that have it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from cloudgw.dataplane.kernelstate import Secret, WgDevice, WgPeer
from cloudgw.errors import DataplaneError, MissingDependency
from cloudgw.model.keys import hex_to_key, key_to_hex
from cloudgw.procs import stop_pids

DEFAULT_SOCKET_DIR = "/var/run/wireguard"


@dataclass
class PeerStats:
    public_key: str
    endpoint: str | None
    rx_bytes: int = 0
    tx_bytes: int = 0
    last_handshake: float = 0.0  # unix time; 0 = never
    allowed_ips: list[str] = field(default_factory=list)


class Uapi:
    """Client of one wireguard-go UAPI socket."""

    def __init__(self, path: str | Path, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def _connect(self, sock: socket.socket) -> None:
        """AF_UNIX paths are limited to 107 bytes; a longer socket directory (a deep state or run
        directory) is reached through a descriptor of the directory instead."""
        if len(os.fsencode(self.path)) < 100:
            sock.connect(self.path)
            return
        directory = os.open(os.path.dirname(self.path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.connect(f"/proc/self/fd/{directory}/{os.path.basename(self.path)}")
        finally:
            os.close(directory)

    def _exchange(self, request: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                self._connect(sock)
                sock.sendall(request.encode())
                buffer = b""
                while not buffer.endswith(b"\n\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buffer += chunk
        except OSError as exc:
            raise DataplaneError(f"WireGuard UAPI {self.path}: {exc.strerror or exc}") from None
        return buffer.decode()

    def get(self) -> list[tuple[str, str]]:
        reply = self._exchange("get=1\n\n")
        pairs = [tuple(line.split("=", 1)) for line in reply.splitlines() if "=" in line]
        result = [(k, v) for k, v in pairs]
        if ("errno", "0") not in result:
            raise DataplaneError(f"WireGuard UAPI get failed: {reply.strip()!r}")
        return result

    def set(self, lines: list[str]) -> None:
        reply = self._exchange("set=1\n" + "".join(f"{line}\n" for line in lines) + "\n")
        if "errno=0" not in reply:
            raise DataplaneError(f"WireGuard refused the configuration ({reply.strip()})")

    def alive(self) -> bool:
        try:
            self.get()
        except DataplaneError:
            return False
        return True


def parse_device(pairs: list[tuple[str, str]], link: str) -> tuple[WgDevice | None, list[WgPeer], list[PeerStats]]:
    device: dict[str, str] = {}
    peers: list[dict[str, Any]] = []
    for key, value in pairs:
        if key == "public_key":
            peers.append({"public_key": value, "allowed_ip": []})
        elif peers:
            if key == "allowed_ip":
                peers[-1]["allowed_ip"].append(value)
            else:
                peers[-1][key] = value
        else:
            device[key] = value
    wg_device = None
    if "private_key" in device:
        wg_device = WgDevice(link, int(device.get("listen_port", "0")), Secret(hex_to_key(device["private_key"])))
    wg_peers, stats = [], []
    for peer in peers:
        public_key = hex_to_key(peer["public_key"])
        allowed = tuple(sorted(IPv4Network(a) for a in peer["allowed_ip"] if ":" not in a))
        endpoint = peer.get("endpoint") or None
        wg_peers.append(WgPeer(link, public_key, endpoint, allowed, int(peer.get("persistent_keepalive_interval", 0))))
        handshake = int(peer.get("last_handshake_time_sec", 0)) + int(peer.get("last_handshake_time_nsec", 0)) / 1e9
        stats.append(
            PeerStats(
                public_key,
                endpoint,
                int(peer.get("rx_bytes", 0)),
                int(peer.get("tx_bytes", 0)),
                handshake,
                [str(a) for a in allowed],
            )
        )
    return wg_device, wg_peers, stats


def device_lines(device: WgDevice) -> list[str]:
    return [f"private_key={key_to_hex(device.private_key)}", f"listen_port={device.listen_port}"]


_UAPI_ENDPOINT = re.compile(r"^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$")


def peer_lines(peer: WgPeer) -> list[str]:
    """UAPI lines for one peer, built only from checked values: a newline or '=' smuggled into a
    value would add keys of its own (another peer's, say) to the transaction."""
    lines = [f"public_key={key_to_hex(peer.public_key)}"]
    if peer.endpoint:
        if not _UAPI_ENDPOINT.match(peer.endpoint):
            raise DataplaneError(f"peer {peer.public_key[:8]}…: endpoint {peer.endpoint[:60]!r} is not ADDRESS:PORT")
        lines.append(f"endpoint={peer.endpoint}")
    lines.append(f"persistent_keepalive_interval={peer.keepalive}")
    lines.append("replace_allowed_ips=true")
    lines.extend(f"allowed_ip={network}" for network in peer.allowed_ips)
    return lines


def remove_peer_lines(public_key: str) -> list[str]:
    return [f"public_key={key_to_hex(public_key)}", "remove=true"]


def wireguard_go_env(base: Mapping[str, str], gogc: int) -> dict[str, str]:
    """The environment wireguard-go starts with: the agent's, its log level (CLOUDGW_WG_LOG_LEVEL,
    default error), and GOGC from the agent's setting unless the environment already names one
    (an admin's own GOGC wins). Under an hour of churn wireguard-go's heap crept up 7-13 % with
    Go's default GOGC=100; a lower GOGC keeps the heap it reaches closer to what it uses."""
    env = {**base, "LOG_LEVEL": base.get("CLOUDGW_WG_LOG_LEVEL", "error")}
    if gogc > 0:
        env.setdefault("GOGC", str(gogc))
    return env


class WireguardGo:
    """Find or start the wireguard-go process that serves one interface."""

    def __init__(
        self,
        ifname: str,
        socket_dir: str = DEFAULT_SOCKET_DIR,
        run_dir: str | Path = "/run/cloudgw",
        binary: str = "wireguard-go",
        gogc: int = 0,
    ) -> None:
        self.ifname = ifname
        self.socket_dir = socket_dir
        self.run_dir = Path(run_dir)
        self.binary = binary
        self.gogc = gogc

    @property
    def socket_path(self) -> Path:
        return Path(self.socket_dir) / f"{self.ifname}.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"wireguard-go-{self.ifname}.pid"

    def uapi(self) -> Uapi:
        return Uapi(self.socket_path)

    def present(self) -> bool:
        """Something to read back: the UAPI socket exists (it may be stale; reading says)."""
        return self.socket_path.exists()

    def running(self) -> bool:
        return self.socket_path.exists() and self.uapi().alive()

    def _command(self) -> list[str]:
        binary = shutil.which(self.binary)
        if binary is None:
            raise MissingDependency(f"'{self.binary}' not found; install it (scripts/install-system.sh does)")
        if os.path.realpath(self.socket_dir) == os.path.realpath(DEFAULT_SOCKET_DIR):
            return [binary, "-f", self.ifname]
        # A private /run/wireguard for this instance; unshare and sh both exec, so the pid stays ours.
        script = 'mount --bind "$1" /run/wireguard && exec "$2" -f "$3"'
        return [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            self.socket_dir,
            binary,
            self.ifname,
        ]

    def start(self, timeout: float = 5.0) -> int:
        Path(self.socket_dir).mkdir(parents=True, exist_ok=True)
        Path("/run/wireguard").mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.run_dir / f"wireguard-go-{self.ifname}.log", "ab")  # noqa: SIM115 - handed to the child
        env = wireguard_go_env(os.environ, self.gogc)
        process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            # Its own process group (a Ctrl-C or a signal to the agent's group does not reach it, and
            # it outlives an agent restart) but the agent's session: a new session is a new scheduler
            # autogroup, and on a busy 2-core gateway that cost a fifth of TCP and a third of UDP
            # against the same wireguard-go started without one (docs/benchmarks.md, issue 17).
            process_group=0,
        )
        log.close()
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DataplaneError(
                    f"wireguard-go for {self.ifname} exited with {process.returncode}; see "
                    f"{self.run_dir}/wireguard-go-{self.ifname}.log"
                )
            if self.socket_path.exists() and self.uapi().alive():
                return process.pid
            time.sleep(0.02)
        raise DataplaneError(
            f"wireguard-go for {self.ifname}: no UAPI socket at {self.socket_path} after {timeout:.0f}s"
        )

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return None
        return pid if b"wireguard-go" in cmdline and self.ifname.encode() in cmdline else None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process we started (by its recorded pid); its interface goes with it."""
        pid = self.pid()
        if pid is None:
            return
        stop_pids([pid], timeout)
        self.pid_file.unlink(missing_ok=True)

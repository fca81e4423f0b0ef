"""WireGuard in the kernel, for gateways whose kernel has the module (most cloud images do): the same
device model as wireguard-go, configured with the `wg` tool instead of the UAPI socket.

Design notes
- The agent speaks UAPI lines (wireguard.py builds them from checked values); `wg_commands` turns
  one UAPI transaction into `wg set` invocations, so both backends share every line of the
  reconcile logic above them. Reading back is `wg show IF dump`, turned into UAPI pairs for the same
  `parse_device`.
- The private key never appears in a command line (`private-key /dev/stdin`); neither does any
  other secret (there are none).
- One argument may hold at most 128 KiB (the kernel's MAX_ARG_STRLEN). A peer whose allowed IPs
  are longer than one argument gets the first part with `wg set ... allowed-ips` (which replaces
  the list) and the rest with `wg addconf IF /dev/stdin` (which adds to it): for that instant the
  peer holds only the first part. That needs more than about 5,000 addresses behind one peer.
  (wireguard-tools from 2025 on can add and remove single allowed IPs with `+`/`-`; Debian 12's
  1.0.20210914 cannot.)
- The interface is a kernel link (`ip link add IF type wireguard`): no process, so nothing to
  restart; an agent restart finds the link and reads it back.
- `available()` is true when the module is loaded or loads (`modprobe wireguard`). This machine's
  kernel has no module: here everything up to the `wg` and `ip` commands is tested (the exact
  commands and their input, with stand-in `wg` and `ip` programs), nothing past them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cloudgw.errors import DataplaneError, MissingDependency

MAX_ARGUMENT = 120 * 1024  # below MAX_ARG_STRLEN (128 KiB)
MAX_COMMAND = 512 * 1024  # arguments of one `wg set`, well below ARG_MAX


def _b64(hex_key: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(hex_key)).decode()
    except ValueError:
        raise DataplaneError(f"not a hex key: {hex_key[:8]}…") from None


def _hex(b64_key: str) -> str:
    try:
        return base64.b64decode(b64_key, validate=True).hex()
    except (binascii.Error, ValueError):
        raise DataplaneError(f"`wg show` printed a key that is not base64: {b64_key[:8]}…") from None


@dataclass
class _Peer:
    key: str  # base64
    remove: bool = False
    endpoint: str | None = None
    keepalive: str | None = None
    allowed: list[str] | None = None  # None: leave as is; []: none

    def args(self, allowed: list[str] | None) -> list[str]:
        args = ["peer", self.key]
        if self.remove:
            return [*args, "remove"]
        if self.endpoint:
            args += ["endpoint", self.endpoint]
        if self.keepalive is not None:
            args += ["persistent-keepalive", self.keepalive if self.keepalive != "0" else "off"]
        if allowed is not None:
            args += ["allowed-ips", ",".join(allowed)]
        return args


@dataclass
class Command:
    argv: list[str]
    stdin: str | None = None  # what the command reads from /dev/stdin (a key, or a config)


@dataclass
class _Transaction:
    private_key: str | None = None
    listen_port: str | None = None
    peers: list[_Peer] = field(default_factory=list)


def _parse(lines: list[str]) -> _Transaction:
    tx = _Transaction()
    for line in lines:
        key, _, value = line.partition("=")
        if key == "public_key":
            tx.peers.append(_Peer(_b64(value)))
        elif tx.peers:
            peer = tx.peers[-1]
            if key == "remove" and value == "true":
                peer.remove = True
            elif key == "endpoint":
                peer.endpoint = value
            elif key == "persistent_keepalive_interval":
                peer.keepalive = value
            elif key == "replace_allowed_ips" and value == "true":
                peer.allowed = []
            elif key == "allowed_ip":
                peer.allowed = [*(peer.allowed or []), value]
            else:
                raise DataplaneError(f"no kernel equivalent for the UAPI line {key}=…")
        elif key == "private_key":
            tx.private_key = _b64(value)
        elif key == "listen_port":
            tx.listen_port = value
        else:
            raise DataplaneError(f"no kernel equivalent for the UAPI line {key}=…")
    return tx


def wg_commands(ifname: str, lines: list[str], wg: str = "wg") -> list[Command]:
    """The `wg` invocations that apply one UAPI transaction to a kernel interface."""
    tx = _parse(lines)
    commands: list[Command] = []
    if tx.private_key is not None or tx.listen_port is not None:
        argv = [wg, "set", ifname]
        if tx.listen_port is not None:
            argv += ["listen-port", tx.listen_port]
        if tx.private_key is not None:
            argv += ["private-key", "/dev/stdin"]
        commands.append(Command(argv, tx.private_key + "\n" if tx.private_key else None))
    batch: list[str] = []
    size = 0
    later: list[Command] = []
    for peer in tx.peers:
        allowed = peer.allowed
        rest: list[str] = []
        if allowed is not None and len(",".join(allowed)) > MAX_ARGUMENT:
            first, used = [], 0
            for index, network in enumerate(allowed):
                if used + len(network) + 1 > MAX_ARGUMENT:
                    rest = allowed[index:]
                    break
                first.append(network)
                used += len(network) + 1
            allowed = first
        args = peer.args(allowed)
        weight = sum(len(a) + 1 for a in args)
        if batch and size + weight > MAX_COMMAND:
            commands.append(Command([wg, "set", ifname, *batch]))
            batch, size = [], 0
        batch += args
        size += weight
        if rest:
            config = f"[Peer]\nPublicKey = {peer.key}\nAllowedIPs = {', '.join(rest)}\n"
            later.append(Command([wg, "addconf", ifname, "/dev/stdin"], config))
    if batch:
        commands.append(Command([wg, "set", ifname, *batch]))
    return commands + later


def dump_pairs(text: str) -> list[tuple[str, str]]:
    """`wg show IF dump` as UAPI pairs (keys in hex), for `parse_device`."""
    pairs: list[tuple[str, str]] = []
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    if not rows:
        return pairs
    device = rows[0]
    if len(device) != 4:
        raise DataplaneError(f"`wg show dump` printed an unexpected first line ({len(device)} fields)")
    if device[0] != "(none)":
        pairs.append(("private_key", _hex(device[0])))
    pairs.append(("listen_port", device[2]))
    for row in rows[1:]:
        if len(row) != 8:
            raise DataplaneError(f"`wg show dump` printed an unexpected peer line ({len(row)} fields)")
        key, _psk, endpoint, allowed, handshake, rx, tx, keepalive = row
        pairs.append(("public_key", _hex(key)))
        if endpoint != "(none)":
            pairs.append(("endpoint", endpoint))
        pairs.append(("last_handshake_time_sec", handshake))
        pairs.append(("rx_bytes", rx))
        pairs.append(("tx_bytes", tx))
        pairs.append(("persistent_keepalive_interval", "0" if keepalive == "off" else keepalive))
        if allowed != "(none)":
            pairs.extend(("allowed_ip", network) for network in allowed.split(","))
    return pairs


def _run(command: Command) -> str:
    try:
        done = subprocess.run(command.argv, input=command.stdin, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise MissingDependency(f"'{command.argv[0]}' not found; install wireguard-tools") from None
    except subprocess.TimeoutExpired:
        raise DataplaneError(f"{' '.join(command.argv[:3])} did not finish in 30 s") from None
    if done.returncode != 0:
        raise DataplaneError(f"{' '.join(command.argv[:3])} failed: {done.stderr.strip()[:300]}")
    return done.stdout


class WgTool:
    """The UAPI-like get/set of one kernel WireGuard interface, through `wg`."""

    def __init__(self, ifname: str, wg: str = "wg") -> None:
        self.ifname = ifname
        self.wg = wg

    def get(self) -> list[tuple[str, str]]:
        return dump_pairs(_run(Command([self.wg, "show", self.ifname, "dump"])))

    def set(self, lines: list[str]) -> None:
        for command in wg_commands(self.ifname, lines, self.wg):
            _run(command)

    def alive(self) -> bool:
        try:
            self.get()
        except DataplaneError:
            return False
        return True


class KernelWireguard:
    """A kernel WireGuard link: the same surface as wireguard.WireguardGo, with no process."""

    def __init__(self, ifname: str, wg: str = "wg", ip: str = "ip") -> None:
        self.ifname = ifname
        self.wg = wg
        self.ip = ip

    def uapi(self) -> WgTool:
        return WgTool(self.ifname, self.wg)

    def running(self) -> bool:
        uevent = Path(f"/sys/class/net/{self.ifname}/uevent")
        try:
            return "DEVTYPE=wireguard" in uevent.read_text()
        except OSError:
            return False

    def present(self) -> bool:
        return self.running()

    def start(self, timeout: float = 5.0) -> int:
        _run(Command([self.ip, "link", "add", "dev", self.ifname, "type", "wireguard"]))
        return 0  # no process: the kernel serves the link

    def stop(self, timeout: float = 5.0) -> None:
        if self.running():
            _run(Command([self.ip, "link", "del", "dev", self.ifname]))

    def pid(self) -> int | None:
        return None


@functools.cache
def available() -> bool:
    """Whether this kernel has WireGuard: the module is loaded, or loads now."""
    if Path("/sys/module/wireguard").exists():
        return True
    modprobe = shutil.which("modprobe")
    if modprobe is None:
        return False
    subprocess.run([modprobe, "-q", "wireguard"], capture_output=True, timeout=30, check=False)
    return Path("/sys/module/wireguard").exists()

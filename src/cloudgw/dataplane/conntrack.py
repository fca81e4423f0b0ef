"""NAT sessions from the kernel's connection tracking, read with `conntrack -L` (conntrack-tools)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Session:
    protocol: str
    state: str  # TCP state, or "" for UDP/ICMP
    source: str  # "ip:port" as the VM (or the Internet host, for a forward) sent it
    destination: str
    translated: str  # "ip:port" the other side sees: the public side of the NAT
    kind: str  # "snat" (a VM going out) or "dnat" (a port forward coming in)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse(line: str, kind: str) -> Session | None:
    """One line of `conntrack -L` output."""
    tokens = line.split()
    if len(tokens) < 4:
        return None
    protocol = tokens[0]
    fields = [t for t in tokens if "=" in t]
    state = next((t for t in tokens[3:6] if t.isupper() and "=" not in t and not t.startswith("[")), "")
    first: dict[str, str] = {}
    reply: dict[str, str] = {}
    for token in fields:
        key, _, value = token.partition("=")
        target = first if key not in first else reply
        if key in ("src", "dst", "sport", "dport"):
            target.setdefault(key, value)
    if "src" not in first or "src" not in reply:
        return None

    def endpoint(side: dict[str, str], host: str, port: str) -> str:
        return f"{side[host]}:{side[port]}" if port in side else side[host]

    source = endpoint(first, "src", "sport")
    destination = endpoint(first, "dst", "dport")
    # for SNAT the reply goes to our public address; for DNAT it comes from the VM
    translated = endpoint(reply, "dst", "dport") if kind == "snat" else endpoint(reply, "src", "sport")
    if translated == (source if kind == "snat" else destination):
        return None  # passed the NAT hooks without being translated (conntrack lists those too)
    return Session(protocol, state, source, destination, translated, kind)


def nat_sessions(limit: int = 100) -> tuple[int, list[Session]]:
    """(how many NAT sessions, the first `limit` of them) in this network namespace."""
    if shutil.which("conntrack") is None:
        return 0, []
    total, sessions = 0, []
    for flag, kind in (("--src-nat", "snat"), ("--dst-nat", "dnat")):
        result = subprocess.run(["conntrack", "-L", flag], capture_output=True, text=True, check=False)
        for line in result.stdout.splitlines():
            parsed = parse(line, kind)
            if parsed is None:
                continue
            total += 1
            if len(sessions) < limit:
                sessions.append(parsed)
    return total, sessions

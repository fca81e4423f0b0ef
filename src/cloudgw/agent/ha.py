"""An HA pair's decisions (pure): who of a site's gateways is active, from what the gateway hears.

The rule (docs/ha.md, "Who is active"):

1. Every gateway of a pair sends a signed hello to its partners every `interval_ms`, on the LAN and
   over the WAN (two paths, so one broken link is not mistaken for a dead partner). A hello says its
   role, priority, epoch and how many of its tunnels have a live WireGuard session.
2. A standby takes the active role when no active partner has been heard for `dead_ms` on either
   path, or when the active partner reports no live tunnel while it has some (it lost its WAN).
   Of several standbys, only the one of highest (priority, name) claims.
3. A claim goes to the controller, which grants a lease when no other gateway of the site holds
   one (controller/roles.py): two gateways that cannot hear each other but both reach the
   controller never both become active. Only when the controller cannot be reached does the
   standby take over on its own (tie-breaker: a partner silent on both paths is presumed dead).
4. An active gateway that hears another active one (after a partition heals) keeps the role only
   if its (epoch, priority, name) is the greater; the other steps down at once.
5. A gateway starts as standby and listens for `dead_ms` before it may claim: a gateway that comes
   back never takes the role from a working partner, unless the site asks for failback (then a
   partner of lower priority hands over after hearing it for three dead times, so a flapping
   gateway does not take the role back and forth).

Hellos are signed with a key that both gateways derive from their own WireGuard private key and
the partner's public key (X25519, then HKDF): no secret is shared or sent, and a forged or replayed
hello is dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HELLO_MAX_BYTES = 512
MAX_SKEW_S = 30.0  # a hello stamped further from our clock is refused (replays of old hellos)


def pair_key(private_key: str, partner_public: str, names: tuple[str, str]) -> bytes:
    """The key two gateways of a pair share without ever sending it: HKDF over their X25519 secret."""
    own = X25519PrivateKey.from_private_bytes(base64.b64decode(private_key))
    shared = own.exchange(X25519PublicKey.from_public_bytes(base64.b64decode(partner_public)))
    info = b"cloudgw ha hello v1 " + "|".join(sorted(names)).encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


@dataclass(frozen=True)
class Hello:
    gateway: str
    role: str  # active or standby
    priority: int
    epoch: int
    healthy: int  # tunnels with a live session
    boot: int  # random per agent start: a sequence restarts with it
    seq: int
    sent: float  # the sender's wall clock


def encode_hello(hello: Hello, key: bytes) -> bytes:
    body = json.dumps(vars(hello), separators=(",", ":"), sort_keys=True).encode()
    return body + b"." + hmac.new(key, body, hashlib.sha256).hexdigest().encode()


def decode_hello(data: bytes, keys: dict[str, bytes], now: float) -> Hello | None:
    """A hello from a known partner with a valid signature and a fresh stamp, else None."""
    if len(data) > HELLO_MAX_BYTES or b"." not in data:
        return None
    body, _, mac = data.rpartition(b".")
    try:
        fields: Any = json.loads(body)
        sender = fields["gateway"]
        key = keys.get(sender) if isinstance(sender, str) else None
        if key is None or not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).hexdigest().encode()):
            return None
        hello = Hello(
            gateway=sender,
            role=str(fields["role"]),
            priority=int(fields["priority"]),
            epoch=int(fields["epoch"]),
            healthy=int(fields["healthy"]),
            boot=int(fields["boot"]),
            seq=int(fields["seq"]),
            sent=float(fields["sent"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if hello.role not in ("active", "standby") or abs(now - hello.sent) > MAX_SKEW_S:
        return None
    return hello


@dataclass
class Heard:
    hello: Hello
    at: float  # our monotonic clock
    paths: set[str] = field(default_factory=set)  # lan, wan: where recent hellos came from
    since: float = 0.0  # first heard (for failback's hold time)


@dataclass(frozen=True)
class Want:
    role: str
    reason: str


class PairState:
    """One gateway's view of its pair (pure: time is passed in)."""

    def __init__(
        self,
        name: str,
        priority: int,
        partners: dict[str, int],
        dead_s: float,
        failback: bool,
        now: float,
    ) -> None:
        self.name = name
        self.priority = priority
        self.partners = dict(partners)  # name -> priority
        self.dead_s = dead_s
        self.failback = failback
        self.role = "standby"
        self.epoch = 0  # of this gateway's own role: its rank among actives after a partition
        self.seen_epoch = 0  # the newest epoch of the site it has heard of (a claim goes past it)
        self.started = now
        self.heard: dict[str, Heard] = {}
        self._last_seq: dict[str, tuple[int, int]] = {}  # sender -> (boot, seq)
        self._last_sent: dict[str, float] = {}
        self._unhealthy_since: float | None = None

    def rank(self) -> tuple[int, int, str]:
        return (self.epoch, self.priority, self.name)

    def next_epoch(self) -> int:
        return max(self.epoch, self.seen_epoch) + 1

    def hear(self, hello: Hello, path: str, now: float) -> bool:
        """Record a (signed, fresh) hello; False for a replay or an unknown sender."""
        if hello.gateway not in self.partners:
            return False
        last = self._last_seq.get(hello.gateway)
        if last is not None and last[0] == hello.boot and hello.seq < last[1]:
            return False  # older than one already heard: a replay
        if last == (hello.boot, hello.seq) and hello.gateway in self.heard:
            self.heard[hello.gateway].paths.add(path)  # the same hello by the other path
            return True
        previous_sent = self._last_sent.get(hello.gateway)
        if previous_sent is not None and hello.sent <= previous_sent:
            return False  # an older hello of an earlier boot: a replay
        self._last_sent[hello.gateway] = hello.sent
        self._last_seq[hello.gateway] = (hello.boot, hello.seq)
        previous = self.heard.get(hello.gateway)
        since = previous.since if previous is not None and now - previous.at <= self.dead_s else now
        self.heard[hello.gateway] = Heard(hello, now, {path}, since)
        self.seen_epoch = max(self.seen_epoch, hello.epoch)
        return True

    def alive(self, now: float) -> list[Heard]:
        return [h for h in self.heard.values() if now - h.at <= self.dead_s]

    def decide(self, now: float, healthy: int, peers: int) -> Want | None:
        """What this gateway should be now; None: stay as it is."""
        alive = self.alive(now)
        if self.role == "active":
            for heard in alive:
                other = heard.hello
                if other.role == "active" and (other.epoch, other.priority, other.gateway) > self.rank():
                    return Want(
                        "standby", f"'{other.gateway}' is active too, with epoch {other.epoch}: it keeps the role"
                    )
            if peers and healthy == 0 and any(h.hello.healthy > 0 for h in alive):
                if self._unhealthy_since is None:
                    self._unhealthy_since = now
                if now - self._unhealthy_since >= self.dead_s:
                    partner = max(alive, key=lambda h: h.hello.healthy).hello.gateway
                    return Want("standby", f"no tunnel has a live session here; '{partner}' has some")
            else:
                self._unhealthy_since = None
            if self.failback:
                better = [
                    h
                    for h in alive
                    if h.hello.role == "standby"
                    and (h.hello.priority, h.hello.gateway) > (self.priority, self.name)
                    and now - h.since >= 3 * self.dead_s
                ]
                if better:
                    return Want("standby", f"failback: '{better[0].hello.gateway}' has the higher priority")
            return None
        if now - self.started < self.dead_s:
            return None  # just started: listen first, never take the role from a working partner
        if peers and healthy == 0:
            return None  # no peer reachable from here: taking the role would serve nobody
        active = [h for h in alive if h.hello.role == "active"]
        if active:
            lost = [h for h in active if peers and h.hello.healthy == 0 and healthy > 0]
            if not lost or len(lost) < len(active):
                return None
            reason = f"'{lost[0].hello.gateway}' has no live tunnel; {healthy} here"
        else:
            better = [
                h
                for h in alive
                if h.hello.role == "standby"
                and (h.hello.priority, h.hello.gateway) > (self.priority, self.name)
                and (h.hello.healthy > 0 or not peers)
            ]
            if better:
                return None  # the better standby claims (one that can reach the peers)
            silent = sorted(set(self.partners) - {h.hello.gateway for h in alive})
            if silent:
                reason = f"no hello from {', '.join(repr(s) for s in silent)} for {self.dead_s:g} s (LAN and WAN)"
            else:
                reason = "no active gateway in the site; this one has the highest priority"
        return Want("active", reason)

"""Render the `inet cloudgw` nftables table (pure).

Design notes
- One table, rebuilt whole in one atomic batch (`add table; delete table; add table; ...`): the kernel
  applies all of it or none, so a bad rule never leaves a half-filtered gateway.
- Forward chain, policy accept: cloudgw only adds the drops it needs and leaves other forwarding on the
  machine alone.
  * lan-spoof: a packet arriving from the LAN whose source is not in this site's pool is dropped and
    counted (counter `lan_spoofed`).
  * tunnel-spoof: a packet arriving from the tunnel whose source is not a remote site's address is
    dropped and counted (`tunnel_spoofed`). WireGuard's allowed-ips already drop a source that is not
    the *sending peer's*; this rule is the second lock and gives the count.
  * mss: TCP SYNs get their MSS clamped to the route MTU, so 1500-MTU VMs move bulk TCP through the
    1420-MTU tunnel with no PMTU black hole.
- Chain `meta` has no hook; its single rule carries the fingerprint of the rendered table in its
  comment, which lets the agent see "already applied" without parsing rules back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cloudgw.dataplane.desired import NFT_FAMILY, NFT_TABLE, NftRuleset
from cloudgw.model.addr import AddressRange

FINGERPRINT_PREFIX = "cloudgw-fingerprint="
COUNTERS = ("lan_spoofed", "tunnel_spoofed")


@dataclass(frozen=True)
class LanFilter:
    interface: str
    allowed_sources: tuple[AddressRange, ...]  # this site's pools (empty: nothing from here is forwarded)


@dataclass(frozen=True)
class TunnelFilter:
    interface: str
    allowed_sources: tuple[AddressRange, ...]  # every remote site's pools and peer LAN addresses


def _obj(kind: str, **fields: Any) -> dict[str, Any]:
    return {kind: {"family": NFT_FAMILY, "table": NFT_TABLE, **fields}}


def _rule(chain: str, comment: str, expr: list[Any]) -> dict[str, Any]:
    return {"add": _obj("rule", chain=chain, comment=comment, expr=expr)}


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _source_set(ranges: Sequence[AddressRange]) -> Any:
    items: list[Any] = []
    for item in ranges:
        items.append(str(item.first) if item.size == 1 else {"range": [str(item.first), str(item.last)]})
    return {"set": items}


def _saddr() -> dict[str, Any]:
    return {"payload": {"protocol": "ip", "field": "saddr"}}


def _iif(name: str) -> dict[str, Any]:
    return _match({"meta": {"key": "iifname"}}, name)


def forward_rules(lan_filters: Sequence[LanFilter], tunnel: TunnelFilter | None) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for lan in lan_filters:
        drop_spoofed: list[Any] = [_iif(lan.interface)]
        if lan.allowed_sources:
            drop_spoofed.append(_match(_saddr(), _source_set(lan.allowed_sources), "!="))
        else:
            drop_spoofed.append(_match({"meta": {"key": "nfproto"}}, "ipv4"))
        rules.append(
            _rule("forward", f"lan-spoof {lan.interface}", [*drop_spoofed, {"counter": "lan_spoofed"}, {"drop": None}])
        )
    if tunnel is not None:
        drop_spoofed = [_iif(tunnel.interface)]
        if tunnel.allowed_sources:
            drop_spoofed.append(_match(_saddr(), _source_set(tunnel.allowed_sources), "!="))
        else:
            drop_spoofed.append(_match({"meta": {"key": "nfproto"}}, "ipv4"))
        rules.append(
            _rule(
                "forward",
                f"tunnel-spoof {tunnel.interface}",
                [*drop_spoofed, {"counter": "tunnel_spoofed"}, {"drop": None}],
            )
        )
    rules.append(
        _rule(
            "forward",
            "mss",
            [
                _match({"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["syn", "rst"]]}, "syn"),
                {
                    "mangle": {
                        "key": {"tcp option": {"name": "maxseg", "field": "size"}},
                        "value": {"rt": {"key": "mtu"}},
                    }
                },
            ],
        )
    )
    return rules


def build_ruleset(body: Sequence[dict[str, Any]]) -> NftRuleset:
    """Wrap rule commands into the full atomic batch, with chains, counters and the fingerprint."""
    head: list[dict[str, Any]] = [
        {"add": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
        {"delete": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
        {"add": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
    ]
    objects: list[dict[str, Any]] = [{"add": _obj("counter", name=name)} for name in COUNTERS]
    chains = sorted({cmd["add"]["rule"]["chain"] for cmd in body})
    hooks = {
        "forward": {"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"},
        "prerouting": {"type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"},
        "postrouting": {"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"},
        "input": {"type": "filter", "hook": "input", "prio": 0, "policy": "accept"},
    }
    for chain in chains:
        objects.append({"add": _obj("chain", name=chain, **hooks.get(chain, {}))})
    objects.append({"add": _obj("chain", name="meta")})
    digest = hashlib.sha256(json.dumps([objects, list(body)], sort_keys=True).encode()).hexdigest()[:20]
    marker = _rule("meta", FINGERPRINT_PREFIX + digest, [{"counter": None}])
    commands = (*head, *objects, *body, marker)
    rule_ids = _by_chain((cmd["add"]["rule"]["chain"], cmd["add"]["rule"]["comment"]) for cmd in (*body, marker))
    return NftRuleset(fingerprint=digest, rule_ids=rule_ids, commands=commands)


def _by_chain(ids: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Group by chain (stable), the order in which nft lists rules back."""
    return tuple(sorted(ids, key=lambda item: item[0]))


def delete_table_batch() -> dict[str, Any]:
    return {
        "nftables": [
            {"add": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
            {"delete": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
        ]
    }


def ruleset_from_listing(listing: dict[str, Any]) -> tuple[NftRuleset | None, dict[str, int]]:
    """Read back `nft -j list table inet cloudgw`: the ruleset identity and the named counters."""
    fingerprint = ""
    rule_ids: list[tuple[str, str]] = []
    counters: dict[str, int] = {}
    for item in listing.get("nftables", []):
        if "rule" in item:
            rule = item["rule"]
            comment = rule.get("comment", "")
            rule_ids.append((rule.get("chain", ""), comment))
            if comment.startswith(FINGERPRINT_PREFIX):
                fingerprint = comment[len(FINGERPRINT_PREFIX) :]
        elif "counter" in item and "name" in item["counter"]:
            counters[item["counter"]["name"]] = int(item["counter"].get("packets", 0))
    if not rule_ids and not counters:
        return None, counters
    return NftRuleset(fingerprint=fingerprint, rule_ids=_by_chain(rule_ids)), counters

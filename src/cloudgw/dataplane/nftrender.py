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
  * mss: TCP SYNs (and SYN-ACKs: before the state rule) get their MSS clamped to the route MTU, so
    1500-MTU VMs move bulk TCP through the 1420-MTU tunnel with no PMTU black hole.
  * stateful: established/related traffic passes; from the WAN only port forwards (ct status dnat)
    start a flow, everything else new is dropped and counted (`wan_dropped`), so unsolicited inbound
    never reaches a VM. Egress `none` and `via` pools may not leave by the WAN, and a peer may leave by
    our WAN only for the pools it was given as transit (`egress_blocked`).
- Input chain: from the WAN the gateway itself accepts only its tunnel port, ping, established
  traffic and its open TCP ports (ssh by default); the rest is dropped (`wan_dropped`), so a port
  scan of the gateway's public address finds nothing.
- Raw chains (priority -300) exempt from connection tracking what no rule needs it for: the tunnel's
  UDP on the WAN and packets whose source and destination are both in a stretched network (they are
  never NATed, and the stateful rules only concern the WAN). Only Internet flows are tracked.
- NAT: port forwards are DNAT in prerouting; masquerade in postrouting for the pools that leave to
  the Internet here, never for traffic to a stretched network.
- IPv6 is not filtered by the drop rules (they match IPv4 only): cloudgw does not route IPv6 yet, and
  dropping neighbour discovery on the WAN would cut the gateway off.
- Chain `fingerprint-marker` has no hook (its name is no nft keyword, so `nft list ruleset` output loads
  back with `nft -f`; `meta` did not); its single rule carries the fingerprint of the rendered table in its
  comment, which lets the agent see "already applied" without parsing rules back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from cloudgw.dataplane.kernelstate import NFT_FAMILY, NFT_TABLE, NftRuleset
from cloudgw.model.addr import AddressRange, merge_ranges

BRIDGE_FAMILY = "bridge"  # the L2 mode's rules on bridged frames (MSS clamp, LAN sources)
FINGERPRINT_PREFIX = "cloudgw-fingerprint="
MARKER_CHAIN = "fingerprint-marker"
COUNTERS = ("lan_spoofed", "tunnel_spoofed", "wan_dropped", "egress_blocked")


@dataclass(frozen=True)
class Filters:
    """Everything the ruleset depends on, extracted from the document."""

    wan: str
    tunnel: str
    listen_port: int
    wan_open_ports: tuple[int, ...]  # TCP ports of the gateway itself open on the WAN
    lan_sources: tuple[tuple[str, tuple[AddressRange, ...]], ...]  # (LAN interface, this site's pools)
    remote_sources: tuple[AddressRange, ...]  # every remote site's pools and peer LAN addresses
    internal: tuple[IPv4Network, ...]  # the stretched networks: never NAT traffic to them
    masquerade: tuple[AddressRange, ...] = ()  # sources leaving to the Internet here (local + transit)
    via_sources: tuple[AddressRange, ...] = ()  # local pools whose Internet traffic goes through a peer
    blocked_sources: tuple[AddressRange, ...] = ()  # local pools with no Internet access
    transit: tuple[AddressRange, ...] = ()  # peers' pools that may leave through our WAN
    forwards: tuple[tuple[str, int, IPv4Address, int], ...] = ()  # (protocol, public port, target, port)
    control: tuple[tuple[IPv4Address, int], ...] = ()  # the controller (address, TCP port) the agent talks to
    ha_port: int | None = None  # an HA pair's hellos (UDP), open on the WAN to the partners' addresses only
    ha_from: tuple[IPv4Address, ...] = ()
    extra: tuple[dict[str, Any], ...] = ()  # rules a data-plane mode adds (dataplane/modes), any family
    # L2 bridges: frames they forward between their own ports (which br_netfilter shows to these hooks
    # as in and out of the bridge) are not routed traffic; the L2 mode filters them in the bridge family
    bridged: tuple[str, ...] = ()


def _obj(kind: str, family: str = NFT_FAMILY, **fields: Any) -> dict[str, Any]:
    return {kind: {"family": family, "table": NFT_TABLE, **fields}}


def _rule(chain: str, comment: str, expr: list[Any], family: str = NFT_FAMILY) -> dict[str, Any]:
    return {"add": _obj("rule", family, chain=chain, comment=comment, expr=expr)}


rule = _rule  # for the data-plane modes (dataplane/modes), which add rules of their own


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _source_set(ranges: Sequence[AddressRange]) -> Any:
    items: list[Any] = []
    # one range is matched with a compare instead of a set lookup (cheaper on every packet): a remote
    # site's pool and its gateway's LAN address inside it become one
    for item in merge_ranges(ranges):
        items.append(str(item.first) if item.size == 1 else {"range": [str(item.first), str(item.last)]})
    return {"set": items}


def _prefix_set(networks: Sequence[IPv4Network]) -> Any:
    return {"set": [{"prefix": {"addr": str(n.network_address), "len": n.prefixlen}} for n in networks]}


def _saddr() -> dict[str, Any]:
    return {"payload": {"protocol": "ip", "field": "saddr"}}


def _daddr() -> dict[str, Any]:
    return {"payload": {"protocol": "ip", "field": "daddr"}}


def _iif(name: str) -> dict[str, Any]:
    return _match({"meta": {"key": "iifname"}}, name)


def _oif(name: str) -> dict[str, Any]:
    return _match({"meta": {"key": "oifname"}}, name)


IPV4 = _match({"meta": {"key": "nfproto"}}, "ipv4")
ESTABLISHED = _match({"ct": {"key": "state"}}, ["established", "related"], "in")


def _drop(counter: str) -> list[Any]:
    return [{"counter": counter}, {"drop": None}]


def _not_from(ranges: Sequence[AddressRange]) -> Any:
    """Sources outside these ranges (all IPv4 if there are none)."""
    return _match(_saddr(), _source_set(ranges), "!=") if ranges else IPV4


def gateway_rules(f: Filters) -> list[dict[str, Any]]:
    """Every rule of a gateway's table, the forward chain dispatched on the input interface."""
    return dispatch_forward(flat_rules(f))


def flat_rules(f: Filters) -> list[dict[str, Any]]:
    """The rules with one flat forward chain, in the order a packet meets them."""
    rules: list[dict[str, Any]] = []
    # raw: connection tracking only where a rule needs it (NAPT, port forwards, the WAN's stateful
    # filter). The tunnel's own UDP and traffic inside the stretched networks are never NATed nor
    # filtered by state: tracking them filled the conntrack table (and the NAT session count) with
    # flows that are not NAT sessions
    # Each raw rule ends the chain once it has untracked its packet (accept ends this hook's chain
    # only), and the stretched rule comes first: most packets are stretched traffic, and its address
    # compare is cheaper than loading the input interface's name (measured: docs/benchmarks.md)
    udp_port = {"payload": {"protocol": "udp", "field": "dport"}}
    if f.internal:
        inside = [_match(_saddr(), _prefix_set(f.internal)), _match(_daddr(), _prefix_set(f.internal))]
        rules.append(_rule("raw-prerouting", "notrack stretched", [*inside, {"notrack": None}, {"accept": None}]))
    rules.append(
        _rule(
            "raw-prerouting",
            "notrack tunnel",
            [_iif(f.wan), _match(udp_port, f.listen_port), {"notrack": None}, {"accept": None}],
        )
    )
    rules.append(
        _rule(
            "raw-output",
            "notrack tunnel",
            [_oif(f.wan), _match({"payload": {"protocol": "udp", "field": "sport"}}, f.listen_port), {"notrack": None}],
        )
    )
    # forward: anti-spoofing first, then MSS clamping (SYN-ACKs too), then state
    for bridge in f.bridged:
        rules.append(_rule("forward", f"l2-bridged {bridge}", [_iif(bridge), _oif(bridge), {"accept": None}]))
    for lan, pools in f.lan_sources:
        rules.append(_rule("forward", f"lan-spoof {lan}", [_iif(lan), _not_from(pools), *_drop("lan_spoofed")]))
    tunnel_spoof: list[Any] = [_iif(f.tunnel), _not_from(f.remote_sources)]
    if f.via_sources and f.internal:  # the Internet answers through the tunnel; our own networks may not
        tunnel_spoof.append(_match(_saddr(), _prefix_set(f.internal)))
    rules.append(_rule("forward", f"tunnel-spoof {f.tunnel}", [*tunnel_spoof, *_drop("tunnel_spoofed")]))
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
    rules.append(_rule("forward", "established", [ESTABLISHED, {"accept": None}]))
    if f.forwards:
        rules.append(
            _rule(
                "forward", "forwarded", [_iif(f.wan), _match({"ct": {"key": "status"}}, "dnat", "in"), {"accept": None}]
            )
        )
    rules.append(_rule("forward", "wan-inbound", [_iif(f.wan), IPV4, *_drop("wan_dropped")]))
    if f.blocked_sources:
        rules.append(
            _rule(
                "forward",
                "egress-none",
                [_oif(f.wan), _match(_saddr(), _source_set(f.blocked_sources)), *_drop("egress_blocked")],
            )
        )
    if f.via_sources:
        rules.append(
            _rule(
                "forward",
                "egress-via",
                [_oif(f.wan), _match(_saddr(), _source_set(f.via_sources)), *_drop("egress_blocked")],
            )
        )
    rules.append(
        _rule("forward", "transit", [_iif(f.tunnel), _oif(f.wan), _not_from(f.transit), *_drop("egress_blocked")])
    )
    # input: the gateway itself answers on its WAN only for the tunnel, ping and its open ports. The
    # tunnel's rule comes first: nearly every packet the WAN delivers here is the tunnel's (the
    # accepts before the final drop may come in any order)
    rules.append(
        _rule(
            "input",
            "wan-tunnel",
            [_iif(f.wan), _match({"payload": {"protocol": "udp", "field": "dport"}}, f.listen_port), {"accept": None}],
        )
    )
    rules.append(_rule("input", "wan-established", [_iif(f.wan), ESTABLISHED, {"accept": None}]))
    for address, port in f.control:
        # The agent's connection to its controller was opened before this table existed; connection
        # tracking picks it up mid-stream and calls the controller's next packet "new". Without this
        # rule that packet is dropped and a long-poll answer waits out the client's timeout (~35 s).
        rules.append(
            _rule(
                "input",
                f"wan-control {address}:{port}",
                [
                    _iif(f.wan),
                    _match(_saddr(), str(address)),
                    _match({"payload": {"protocol": "tcp", "field": "sport"}}, port),
                    {"accept": None},
                ],
            )
        )
    if f.ha_port is not None and f.ha_from:
        partners: Any = str(f.ha_from[0]) if len(f.ha_from) == 1 else {"set": [str(a) for a in f.ha_from]}
        rules.append(
            _rule(
                "input",
                "wan-ha",
                [
                    _iif(f.wan),
                    _match(_saddr(), partners),
                    _match({"payload": {"protocol": "udp", "field": "dport"}}, f.ha_port),
                    {"accept": None},
                ],
            )
        )
    rules.append(
        _rule(
            "input",
            "wan-ping",
            [_iif(f.wan), _match({"payload": {"protocol": "icmp", "field": "type"}}, "echo-request"), {"accept": None}],
        )
    )
    if f.wan_open_ports:
        ports: Any = f.wan_open_ports[0] if len(f.wan_open_ports) == 1 else {"set": list(f.wan_open_ports)}
        rules.append(
            _rule(
                "input",
                "wan-open",
                [_iif(f.wan), _match({"payload": {"protocol": "tcp", "field": "dport"}}, ports), {"accept": None}],
            )
        )
    rules.append(_rule("input", "wan-input", [_iif(f.wan), IPV4, *_drop("wan_dropped")]))
    rules.extend(f.extra)
    # NAT: port forwards in, masquerade out (never towards a stretched network)
    for protocol, public_port, target, target_port in f.forwards:
        rules.append(
            _rule(
                "prerouting",
                f"forward {protocol}/{public_port}",
                [
                    _iif(f.wan),
                    _match({"payload": {"protocol": protocol, "field": "dport"}}, public_port),
                    {"counter": None},
                    {"dnat": {"family": "ip", "addr": str(target), "port": target_port}},
                ],
            )
        )
    if f.masquerade:
        napt: list[Any] = [_oif(f.wan), _match(_saddr(), _source_set(f.masquerade))]
        if f.internal:
            napt.append(_match(_daddr(), _prefix_set(f.internal), "!="))
        rules.append(_rule("postrouting", "napt", [*napt, {"counter": None}, {"masquerade": None}]))
    return rules


def _iif_of(rule: dict[str, Any]) -> str | None:
    """The input interface a rule's first match requires, if any."""
    expr = rule["add"]["rule"]["expr"]
    match = expr[0].get("match") if expr else None
    if match and match["op"] == "==" and match["left"] == {"meta": {"key": "iifname"}}:
        return str(match["right"])
    return None


def dispatch_forward(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The forward chain as one dispatch on the input interface: a packet from interface X goes to
    chain `from-X` holding, in the original order, X's rules (without their now needless interface
    match) and the rules for any interface; packets from elsewhere stay in `forward` for the latter.
    Same verdicts as the flat chain, but a packet no longer walks every other interface's rules: in
    the UDP benchmark the flat table's rules were ~6% of the machine's CPU (docs/benchmarks.md)."""
    forward: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for rule in rules:
        body = rule["add"]["rule"]
        (forward if body["chain"] == "forward" and body["family"] == NFT_FAMILY else others).append(rule)
    required = [_iif_of(rule) for rule in forward]
    interfaces = list(dict.fromkeys(name for name in required if name is not None))
    if not interfaces:
        return rules
    rest = [rule for rule, name in zip(forward, required, strict=True) if name is None]
    chains: list[dict[str, Any]] = []
    for name in interfaces:
        for rule, needs in zip(forward, required, strict=True):
            body = rule["add"]["rule"]
            if needs == name:
                chains.append(_rule(f"from-{name}", body["comment"], body["expr"][1:]))
            elif needs is None:
                chains.append(_rule(f"from-{name}", body["comment"], body["expr"]))
    table = [[name, {"goto": {"target": f"from-{name}"}}] for name in interfaces]
    dispatch = _rule("forward", "dispatch", [{"vmap": {"key": {"meta": {"key": "iifname"}}, "data": {"set": table}}}])
    return [dispatch, *rest, *chains, *others]


def build_ruleset(body: Sequence[dict[str, Any]]) -> NftRuleset:
    """Wrap rule commands into the full atomic batch, with chains, counters and the fingerprint.
    Rules of the bridge family (the L2 mode's) go to a `bridge cloudgw` table in the same batch; the
    batch always removes that table first, so it exists only while some rule needs it."""
    head: list[dict[str, Any]] = [
        {"add": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
        {"delete": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
        {"add": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
        *_bridge_table_removal(),
    ]
    objects: list[dict[str, Any]] = [{"add": _obj("counter", name=name)} for name in COUNTERS]
    if any(cmd["add"]["rule"]["family"] == BRIDGE_FAMILY for cmd in body):
        objects.append({"add": {"table": {"family": BRIDGE_FAMILY, "name": NFT_TABLE}}})
        bridge_chains = sorted({c["add"]["rule"]["chain"] for c in body if c["add"]["rule"]["family"] == BRIDGE_FAMILY})
        for chain in bridge_chains:
            hook = {"type": "filter", "hook": chain, "prio": 0, "policy": "accept"}
            objects.append({"add": _obj("chain", BRIDGE_FAMILY, name=chain, **hook)})
        body = [c for c in body if c["add"]["rule"]["family"] != BRIDGE_FAMILY] + [
            c for c in body if c["add"]["rule"]["family"] == BRIDGE_FAMILY
        ]
    chains = sorted({cmd["add"]["rule"]["chain"] for cmd in body if cmd["add"]["rule"]["family"] == NFT_FAMILY})
    hooks: dict[str, dict[str, Any]] = {
        "forward": {"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"},
        "prerouting": {"type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"},
        "postrouting": {"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"},
        "input": {"type": "filter", "hook": "input", "prio": 0, "policy": "accept"},
        "raw-prerouting": {"type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"},
        "raw-output": {"type": "filter", "hook": "output", "prio": -300, "policy": "accept"},
    }
    for chain in chains:
        objects.append({"add": _obj("chain", name=chain, **hooks.get(chain, {}))})
    objects.append({"add": _obj("chain", name=MARKER_CHAIN)})
    digest = hashlib.sha256(json.dumps([objects, list(body)], sort_keys=True).encode()).hexdigest()[:20]
    marker = _rule(MARKER_CHAIN, FINGERPRINT_PREFIX + digest, [{"counter": None}])
    commands = (*head, *objects, *body, marker)
    rule_ids = _by_chain(
        (cmd["add"]["rule"]["chain"], cmd["add"]["rule"]["comment"])
        for cmd in (*body, marker)
        if cmd["add"]["rule"]["family"] == NFT_FAMILY  # what reading the inet table back gives
    )
    return NftRuleset(fingerprint=digest, rule_ids=rule_ids, commands=commands)


def _by_chain(ids: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Group by chain (stable), the order in which nft lists rules back."""
    return tuple(sorted(ids, key=lambda item: item[0]))


def _bridge_table_removal() -> list[dict[str, Any]]:
    return [
        {"add": {"table": {"family": BRIDGE_FAMILY, "name": NFT_TABLE}}},
        {"delete": {"table": {"family": BRIDGE_FAMILY, "name": NFT_TABLE}}},
    ]


def delete_table_batch() -> dict[str, Any]:
    return {
        "nftables": [
            {"add": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
            {"delete": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
            *_bridge_table_removal(),
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

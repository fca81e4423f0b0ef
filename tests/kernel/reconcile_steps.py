"""One reconcile scenario, run against a data plane: the in-memory fake (in the test process) or the
real kernel (`ip netns exec NS python -m tests.kernel.reconcile_steps kernel DIR`, in a namespace with
lan0 and wan0). Prints, per step, what the data plane observes afterwards, as canonical JSON, so the
two can be compared line by line with each other and with what render() wanted. Test-only code."""

from __future__ import annotations

import json
import sys
from typing import Any

from cloudgw.agent.reconcile import Reconciler
from cloudgw.dataplane.base import Dataplane
from cloudgw.dataplane.kernelstate import KernelState
from cloudgw.dataplane.render import LocalFacts
from cloudgw.model.document import load_document
from tests.helpers import KEY_A, KEY_C, sample_document


def documents() -> list[tuple[str, dict[str, Any], LocalFacts]]:
    base = sample_document()
    more = sample_document()
    more["networks"][0]["remote_endpoints"].append({"ip": "192.168.1.15", "gateway": "gw-b"})
    fewer = sample_document()
    fewer["networks"][0]["remote_endpoints"] = [{"ip": "192.168.1.11", "gateway": "gw-b"}]
    fewer["peers"][0]["keepalive"] = 10
    third = sample_document()
    third["peers"].append({"name": "gw-c", "site": "c", "public_key": KEY_C, "endpoint": "203.0.113.30:51820"})
    third["networks"][0]["pools"].append({"site": "c", "range": "192.168.1.30-192.168.1.39"})
    via = sample_document()
    via["networks"][0]["egress"] = "via"
    via["networks"][0]["egress_via"] = "gw-b"
    empty = sample_document()
    empty["networks"], empty["peers"] = [], []
    return [
        ("base", base, LocalFacts()),
        ("an endpoint more", more, LocalFacts()),
        ("endpoints fewer, keepalive changed", fewer, LocalFacts()),
        ("a path of 1400 bytes", fewer, LocalFacts(peer_mtu={"gw-b": 1328})),
        ("a third site", third, LocalFacts()),
        ("egress through a peer", via, LocalFacts()),
        ("nothing left", empty, LocalFacts()),
    ]


def canonical(state: KernelState, sysctl_keys: set[str]) -> dict[str, Any]:
    return {
        "links": sorted((link.name, link.mtu) for link in state.links.values()),
        "devices": sorted((d.link, d.listen_port) for d in state.devices.values()),
        "peers": sorted(
            (p.public_key, p.endpoint, [str(n) for n in p.allowed_ips], p.keepalive) for p in state.peers.values()
        ),
        "routes": sorted((r.table, str(r.dst), r.dev, str(r.src), r.mtu) for r in state.routes.values()),
        "neighbours": sorted(str(n) for n in state.neighbours),
        "rules": sorted(str(r) for r in state.rules),
        "nft": state.nft.fingerprint if state.nft else None,
        "sysctls": sorted((k, v) for k, v in state.sysctls.items() if k in sysctl_keys),
    }


def run(dataplane: Dataplane) -> list[dict[str, Any]]:
    facts = LocalFacts()
    reconciler = Reconciler(dataplane, KEY_A, resolver=lambda e: e, facts=lambda: facts)
    lines = []
    for label, data, step_facts in documents():
        facts = step_facts
        doc = load_document(data)
        reconciler.reconcile(doc, full=True)
        desired = reconciler.desired(doc, facts)
        keys = set(desired.sysctls)
        observed = dataplane.observe(keys).state
        lines.append({"step": label, "observed": canonical(observed, keys), "desired": canonical(desired, keys)})
    return lines


if __name__ == "__main__":
    from cloudgw.dataplane.kernel import KernelDataplane

    kind, workdir = sys.argv[1], sys.argv[2]
    assert kind == "kernel"
    for line in run(KernelDataplane(socket_dir=f"{workdir}/wg", run_dir=f"{workdir}/run")):
        print(json.dumps(line), flush=True)

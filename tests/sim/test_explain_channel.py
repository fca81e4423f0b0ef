"""Explain asks the gateways through the channel they hold open (the document watch): each answers
about its own kernel, a route deleted by hand is found at the right gateway, and a gateway that does
not answer is a finding, not an error. Real controller and agents, the in-memory data plane."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from cloudgw.model.defaults import TUNNEL_INTERFACE
from tests.clouds.test_two_clouds import CloudGateway
from tests.controllers import start_controller
from tests.helpers import wait_for

TOPOLOGY = {
    "sites": [{"name": "left"}, {"name": "right"}],
    "networks": [{"name": "net", "cidr": "10.9.0.0/24"}],
    "pools": [
        {"network": "net", "site": "left", "range": "10.9.0.1-10.9.0.10"},
        {"network": "net", "site": "right", "range": "10.9.0.11-10.9.0.20"},
    ],
    # no LAN addresses: no probe is sent (this test runs outside any namespace and sends no packet)
    "gateways": [
        {"name": "left-gw", "site": "left", "endpoint": "192.0.2.1:51820", "lan_interface": "eth1"},
        {"name": "right-gw", "site": "right", "endpoint": "192.0.2.2:51820", "lan_interface": "eth1"},
    ],
    "connections": [{"network": "net", "site_a": "left", "site_b": "right"}],
}


def test_gateways_answer_about_their_kernel(tmp_path):
    controller = start_controller(tmp_path / "c", f"sqlite:///{tmp_path}/c.db", offline_after=60)
    gateways: dict[str, CloudGateway] = {}
    try:
        admin = controller.client()
        admin.json("PUT", "/api/v1/topology", json=TOPOLOGY)
        for name, endpoint, answers in (("left-gw", "192.0.2.1:51820", True), ("right-gw", "192.0.2.2:51820", True)):
            token = admin.create("tokens", {"name": f"join-{name}", "role": "join", "gateway": name})["token"]
            gateways[name] = CloudGateway(name, controller.url, tmp_path / "gw", token, endpoint, answers=answers)
        for name, ip in (("left-gw", "10.9.0.1"), ("right-gw", "10.9.0.11")):
            gateways[name].agent.table.seen("net", IPv4Address(ip), "02:00:00:00:00:01", "arp", 1.0)
            gateways[name].reporter.wake()
        wait_for(
            lambda: all(admin.resolve("net", ip)["state"] == "effective" for ip in ("10.9.0.1", "10.9.0.11")),
            20,
            what="both VMs in the mapping",
        )
        wait_for(
            lambda: all(g["applied_revision"] == g["doc_revision"] for g in admin.list("gateways")),
            20,
            what="both documents applied",
        )

        def kernel_hops():
            result = admin.json("POST", "/api/v1/explain", json={"src": "10.9.0.1", "dst": "10.9.0.11"})
            return {h["hop"]: h for h in result["hops"] if h["hop"].startswith("kernel ")}, result

        hops, result = kernel_hops()
        assert hops["kernel left-gw"]["state"] == "ok" and hops["kernel right-gw"]["state"] == "ok", result
        assert result["took_ms"] < 2000

        # a route deleted by hand on right-gw (its timer would put it back; here the timer sleeps)
        right = gateways["right-gw"].dataplane
        lost = next(
            k for k, r in right.state.routes.items() if IPv4Address("10.9.0.1") in r.dst and r.dev == TUNNEL_INTERFACE
        )
        routes = dict(right.state.routes)
        del routes[lost]
        right.state = type(right.state)(**{**vars(right.state), "routes": routes})
        hops, result = kernel_hops()
        # (the tunnel hops are broken throughout: the in-memory data plane makes no handshakes)
        broken = [h for h in result["hops"] if h["state"] == "broken" and h["hop"].startswith("kernel ")]
        assert [h["hop"] for h in broken] == ["kernel right-gw"] and "no route for 10.9.0.1" in broken[0]["detail"]
        assert hops["kernel left-gw"]["state"] == "ok"
        assert IPv4Network("10.9.0.1/32") not in {r.dst for r in right.state.routes.values()}

        # a gateway whose agent does not answer (an older one): a finding, not an error
        gateways["right-gw"].source.on_question = None
        wait_for(
            lambda: kernel_hops()[0]["kernel right-gw"]["state"] == "unknown",
            30,
            interval=0.5,
            what="the silent gateway to be reported",
        )
        hops, _ = kernel_hops()
        assert "did not answer" in hops["kernel right-gw"]["detail"]
    finally:
        for gateway in gateways.values():
            gateway.stop()
        controller.stop()

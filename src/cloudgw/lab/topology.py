"""Build a scenario's namespaces and links (the lab's "physical" network).

    <site>-vmN  eth0 ──┐
                       ├── br0 in <site>-lan ── lan0  <gateway>  wan0 ── siteI ┐
    <site>-vmM  eth0 ──┘                                                       ├─ wan ── inet0 ── eth0 internet
                                           (other sites the same way)  ────────┘

- `wan` is the Internet between the clouds. Each gateway's WAN address 10.(100+I).0.2 is reachable
  from outside only through its public address (203.0.113.x), a 1:1 NAT on `wan` like an OpenStack
  floating IP or an AWS Elastic IP. Private WAN addresses are not routed between sites.
- VMs get their address, a deterministic MAC and a default route via their own gateway.
- Nothing here connects to the machine's real network: every link joins two lab namespaces, and no
  namespace has a route that leads out of the lab.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface

from cloudgw.agent.learn import build_garp
from cloudgw.dataplane import nft
from cloudgw.dataplane.kernelstate import Route
from cloudgw.dataplane.netlink import Netlink
from cloudgw.errors import LabError
from cloudgw.lab.netns import bridge_port_forwarding, create_namespace, send_frames
from cloudgw.lab.runstate import LabPaths
from cloudgw.lab.scenario import (
    LAN_BRIDGE,
    PUBLIC_NET,
    LabSite,
    Scenario,
    controller_router,
    default_gateway,
    host_address,
    hosts,
    internet_router,
    site_gateways,
    vms,
    wan_link,
)

Progress = Callable[[str], None]
ROUTER = "wan"
INTERNET = "internet"
CONTROLLER = "controller"
CONTROLLER_PORT = 8443


def node_names(scenario: Scenario) -> dict[str, str]:
    """Every node of the scenario -> its kind."""
    nodes = {ROUTER: "router", INTERNET: "internet", CONTROLLER: "controller"}
    for site in scenario.sites:
        nodes[f"{site.name}-lan"] = "switch"
        for gateway in site_gateways(site):
            nodes[gateway.name] = "gateway"
    for vm in vms(scenario):
        nodes[vm.name] = "vm"
    for host in hosts(scenario):
        nodes[host.name] = "host"
    return nodes


def ns_sysctl(namespace: str, *settings: str) -> None:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", *settings], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LabError(f"sysctl in {namespace}: {result.stderr.strip()}")


def _default_route(link: Netlink, via: IPv4Interface) -> None:
    link.replace_route(Route(IPv4Interface("0.0.0.0/0").network, ""), proto=4, gateway=str(via.ip))


def router_ruleset(scenario: Scenario) -> str:
    lines = ["table inet cgwlab {", " chain prerouting { type nat hook prerouting priority dstnat; policy accept;"]
    for index, site in enumerate(scenario.sites):
        for member, gateway in enumerate(site_gateways(site)):
            lines.append(f"  ip daddr {gateway.public_address} dnat ip to {wan_link(index, member)[0].ip}")
    lines.append(" }")
    lines.append(" chain postrouting { type nat hook postrouting priority srcnat; policy accept;")
    for index, site in enumerate(scenario.sites):
        for member, gateway in enumerate(site_gateways(site)):
            lines.append(f"  ip saddr {wan_link(index, member)[0].ip} snat ip to {gateway.public_address}")
    lines.append(" }")
    lines.append(" chain forward { type filter hook forward priority 0; policy drop;")
    lines.append("  ct state established,related accept")
    lines.append('  ct status dnat accept comment "to a public address"')
    lines.append('  oifname "inet0" accept comment "out to the internet host"')
    lines.append('  oifname "ctl0" accept comment "gateways and the internet to the controller"')
    lines.append(" }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def build(scenario: Scenario, paths: LabPaths, progress: Progress = lambda _msg: None) -> list[str]:
    """Create every namespace and link. Returns the namespaces created (for cleanup on failure)."""
    nodes = node_names(scenario)
    created: list[str] = []
    progress(f"creating {len(nodes)} namespaces")
    for node in nodes:
        namespace = paths.namespace(node)
        create_namespace(namespace)
        created.append(namespace)
        with Netlink(namespace) as link:
            link.set_link("lo", up=True)
        # IPv6 is not used by the lab; turning it off keeps captures free of neighbour discovery noise.
    for namespace in created:
        ns_sysctl(namespace, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")

    progress("wiring the WAN and the internet host")
    router_ns, internet_ns = paths.namespace(ROUTER), paths.namespace(INTERNET)
    with Netlink(router_ns) as router:
        router.add_veth("inet0", "eth0", peer_netns=internet_ns)
        router.add_address("inet0", internet_router())
        router.set_link("inet0", up=True)
    with Netlink(internet_ns) as internet:
        internet.add_address("eth0", IPv4Interface(f"{scenario.internet_address}/24"))
        internet.set_link("eth0", up=True)
        internet.replace_route(Route(PUBLIC_NET, ""), proto=4, gateway=str(internet_router().ip))
    ns_sysctl(router_ns, "net.ipv4.ip_forward=1")

    progress("wiring the controller")
    controller_ns = paths.namespace(CONTROLLER)
    with Netlink(router_ns) as router:
        router.add_veth("ctl0", "eth0", peer_netns=controller_ns)
        router.add_address("ctl0", controller_router(scenario))
        router.set_link("ctl0", up=True)
    with Netlink(controller_ns) as controller:
        controller.add_address("eth0", IPv4Interface(f"{scenario.controller_address}/24"))
        controller.set_link("eth0", up=True)
        controller.replace_route(Route(PUBLIC_NET, ""), proto=4, gateway=str(controller_router(scenario).ip))

    for index, site in enumerate(scenario.sites):
        names = " and ".join(g.name for g in site_gateways(site))
        progress(f"building site {site.name} ({site.vms} VMs, gateway {names})")
        switch_ns = paths.namespace(f"{site.name}-lan")
        with Netlink(switch_ns) as switch:
            switch.add_bridge("br0")
            switch.set_link("br0", up=True)
        for member in range(len(site_gateways(site))):
            _build_gateway(scenario, paths, index, member)
        with Netlink(switch_ns) as switch:
            switch.set_link("br0", mtu=site.lan_mtu)
        for vm in (vm for vm in vms(scenario) if vm.site == site.name):
            add_vm(paths, scenario, vm.name, site.name, vm.address, vm.mac, create=False)
        for index, host in enumerate(h for h in hosts(scenario) if h.site == site.name):
            _add_host(paths, site, host.name, index)

    progress("programming the WAN's 1:1 NAT")
    nft.apply_text(router_ruleset(scenario), netns=router_ns)
    return created


def gateway_port(member: int) -> str:
    """The gateway's port on its site's LAN switch (a pair's second gateway: gw1)."""
    return "gw" if member == 0 else f"gw{member}"


def _build_gateway(scenario: Scenario, paths: LabPaths, index: int, member: int) -> None:
    """One gateway of site #index: its WAN link to the `wan` router, its LAN port on the switch."""
    site = scenario.sites[index]
    gw = site_gateways(site)[member]
    address, router_address, router_port = wan_link(index, member)
    gateway_ns, switch_ns, router_ns = (
        paths.namespace(gw.name),
        paths.namespace(f"{site.name}-lan"),
        paths.namespace(ROUTER),
    )
    port = gateway_port(member)
    with Netlink(gateway_ns) as gateway:
        gateway.add_veth("wan0", router_port, peer_netns=router_ns)
        gateway.add_address("wan0", address)
        gateway.set_link("wan0", mtu=site.wan_mtu, up=True)
        gateway.add_veth("lan0", port, peer_netns=switch_ns)
        lan_net = site.routed if site.kind == "external" and site.routed is not None else scenario.network.cidr
        lan_address = IPv4Interface(f"{gw.lan_address}/{lan_net.prefixlen}")
        gateway.set_link("lan0", mtu=site.lan_mtu, up=True)
        if gw.lan_bridge:
            # like a hypervisor host or a gateway VM with a bridged LAN: br_netfilter hands the
            # bridge's IPv4 frames to the inet hooks (bridge-nf-call-iptables=1, the default)
            gateway.add_bridge(LAN_BRIDGE)
            gateway.set_link("lan0", master=LAN_BRIDGE)
            gateway.set_link(LAN_BRIDGE, mtu=site.lan_mtu, up=True)
            gateway.add_address(LAN_BRIDGE, lan_address)
        else:
            gateway.add_address("lan0", lan_address)
        _default_route(gateway, router_address)
    if gw.lan_bridge:
        ns_sysctl(gateway_ns, "net.bridge.bridge-nf-call-iptables=1")
    with Netlink(router_ns) as router:
        router.add_address(router_port, router_address)
        router.set_link(router_port, mtu=site.wan_mtu, up=True)
    with Netlink(switch_ns) as switch:
        switch.set_link(port, master="br0", mtu=site.lan_mtu, up=True)


def _add_host(paths: LabPaths, site: LabSite, name: str, index: int) -> None:
    """A host behind an external site's router, in its routed network (no cloudgw there at all)."""
    host_ns, switch_ns = paths.namespace(name), paths.namespace(f"{site.name}-lan")
    port = f"h{index + 1}"
    with Netlink(host_ns) as host:
        host.add_veth("eth0", port, peer_netns=switch_ns)
    with Netlink(switch_ns) as switch:
        switch.set_link(port, master="br0", up=True)
    with Netlink(host_ns) as host:
        host.add_address("eth0", host_address(site, index))
        host.set_link("eth0", up=True)
        _default_route(host, IPv4Interface(f"{site.gateway.lan_address}/32"))


def restore_default_route(scenario: Scenario, paths: LabPaths, node: str) -> None:
    """A gateway's default route to the `wan` router (gone while its WAN link was down)."""
    for index, site in enumerate(scenario.sites):
        for member, gateway in enumerate(site_gateways(site)):
            if gateway.name == node:
                with Netlink(paths.namespace(node)) as link:
                    _default_route(link, wan_link(index, member)[1])


def add_vm(
    paths: LabPaths, scenario: Scenario, name: str, site_name: str, address: IPv4Address, mac: str, create: bool = True
) -> float:
    """A VM: its namespace, a veth into its site's switch, address, MAC, default route via its gateway.
    Once its switch port forwards, it announces itself with a gratuitous ARP, as a booting VM's DHCP
    client does (RFC 5227). Returns the time its interface came up: from then on it can answer (its
    gateway's ARP probes may find it before its announcement does, so that is the zero of any
    convergence measured from here)."""
    site = next(s for s in scenario.sites if s.name == site_name)
    vm_ns, switch_ns = paths.namespace(name), paths.namespace(f"{site_name}-lan")
    if create:
        create_namespace(vm_ns)
        with Netlink(vm_ns) as host:
            host.set_link("lo", up=True)
        ns_sysctl(vm_ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    port = f"vm{int(address) - int(scenario.network.cidr.network_address)}"
    with Netlink(vm_ns) as host:
        host.add_veth("eth0", port, peer_netns=switch_ns)
    with Netlink(switch_ns) as switch:
        switch.set_link(port, master="br0", mtu=site.lan_mtu, up=True)
    with Netlink(vm_ns) as host:
        host.set_link("eth0", mac=mac, mtu=site.lan_mtu)
        host.add_address("eth0", IPv4Interface(f"{address}/{scenario.network.cidr.prefixlen}"))
        up_at = time.time()
        host.set_link("eth0", up=True)
        _default_route(host, IPv4Interface(f"{default_gateway(site)}/32"))
    deadline = time.monotonic() + 5
    while not bridge_port_forwarding(port, switch_ns) and time.monotonic() < deadline:
        time.sleep(0.005)
    send_frames("eth0", [build_garp(mac, address)], vm_ns)
    return up_at

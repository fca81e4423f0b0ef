"""The netlink module against a real kernel, each test in its own namespace."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from cloudgw.dataplane.desired import RT_PROTO, ProxyNeighbour, Route
from cloudgw.dataplane.netlink import Netlink
from cloudgw.errors import DataplaneError
from tests.helpers import run

pytestmark = pytest.mark.root


@pytest.fixture
def ns(make_netns):
    name = make_netns("nl")
    run(["ip", "-n", name, "link", "add", "lan0", "type", "veth", "peer", "name", "lanp"])
    for dev in ("lan0", "lanp"):
        run(["ip", "-n", name, "link", "set", dev, "up"])
    run(["ip", "-n", name, "addr", "add", "192.168.1.254/24", "dev", "lan0"])
    return name


def test_owned_routes_are_listed_foreign_ones_are_not(ns):
    with Netlink(ns) as netlink:
        netlink.replace_route(Route(IPv4Network("192.168.1.11/32"), "lanp", IPv4Address("192.168.1.254")))
        run(["ip", "-n", ns, "route", "add", "10.9.0.0/16", "dev", "lanp"])  # someone else's
        routes = netlink.routes()
    assert routes == [Route(IPv4Network("192.168.1.11/32"), "lanp", IPv4Address("192.168.1.254"))]
    shown = run(["ip", "-n", ns, "route", "show", "proto", str(RT_PROTO)]).stdout
    assert "192.168.1.11 dev lanp" in shown


def test_proxy_neighbours_are_marked_and_only_ours_listed(ns):
    with Netlink(ns) as netlink:
        netlink.add_proxy_neighbour(ProxyNeighbour(IPv4Address("192.168.1.11"), "lan0"))
        run(["ip", "-n", ns, "neigh", "add", "proxy", "192.168.1.99", "dev", "lan0"])  # not ours
        assert netlink.proxy_neighbours() == {ProxyNeighbour(IPv4Address("192.168.1.11"), "lan0")}
        assert len(netlink.proxy_neighbours(proto=None)) == 2


def test_delete_that_finds_nothing_is_success(ns):
    with Netlink(ns) as netlink:
        netlink.delete_route(IPv4Network("192.168.1.77/32"))
        netlink.delete_proxy_neighbour(ProxyNeighbour(IPv4Address("192.168.1.77"), "lan0"))
        netlink.delete_proxy_neighbour(ProxyNeighbour(IPv4Address("192.168.1.77"), "nosuchdev"))
        netlink.delete_link("nosuchdev")


def test_errors_become_dataplane_errors_naming_the_operation(ns):
    with Netlink(ns) as netlink:
        with pytest.raises(DataplaneError, match="no interface 'nosuchdev'"):
            netlink.set_link("nosuchdev", up=True)
        with pytest.raises(DataplaneError, match=r"replace route 10\.5\.0\.0/16.*unreachable"):
            netlink.replace_route(Route(IPv4Network("10.5.0.0/16"), ""), gateway="10.77.0.1")


def test_missing_namespace_is_an_error_not_a_new_namespace():
    with pytest.raises(DataplaneError, match="does not exist"):
        Netlink("cgwt-no-such-namespace")
    assert "cgwt-no-such-namespace" not in run(["ip", "netns", "list"]).stdout

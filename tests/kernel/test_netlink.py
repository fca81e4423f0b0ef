"""The netlink package against a real kernel, each test in its own namespace."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from cloudgw.dataplane.kernelstate import EGRESS_TABLE, RT_PROTO, ProxyNeighbour, Route
from cloudgw.dataplane.netlink import Netlink
from cloudgw.dataplane.netlink.bulk import bulk_in_namespace
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


def bulk(ns):
    with Netlink(ns) as netlink:
        names = {link.name: link.index for link in netlink.links()}
    return bulk_in_namespace(ns, names)


def test_bulk_writes_and_dumps_only_our_routes(ns):
    ours = [Route(IPv4Network(f"192.168.1.{i}/32"), "lanp", IPv4Address("192.168.1.254")) for i in range(10, 60)]
    ours.append(Route(IPv4Network("0.0.0.0/0"), "lanp", None, EGRESS_TABLE))
    with bulk(ns) as b:
        b.run([b.replace_route(r) for r in ours])
        run(["ip", "-n", ns, "route", "add", "10.9.0.0/16", "dev", "lanp"])  # someone else's
        run(["ip", "-n", ns, "route", "add", "10.8.0.0/16", "dev", "lanp", "table", "207"])  # not ours either
        assert sorted(b.routes(254), key=lambda r: r.dst) == ours[:-1]
        assert b.routes(EGRESS_TABLE) == ours[-1:]
        b.run([b.delete_route(r) for r in ours[:5]])
        assert len(b.routes(254)) == 45
    shown = run(["ip", "-n", ns, "route", "show", "proto", str(RT_PROTO)]).stdout
    assert "192.168.1.10 dev lanp" not in shown and "192.168.1.59 dev lanp scope link src 192.168.1.254" in shown
    assert "10.9.0.0/16 dev lanp" in run(["ip", "-n", ns, "route"]).stdout


def test_proxy_neighbours_are_marked_and_only_ours_listed(ns):
    with bulk(ns) as b:
        b.run([b.add_proxy_neighbour(ProxyNeighbour(IPv4Address("192.168.1.11"), "lan0"))])
        run(["ip", "-n", ns, "neigh", "add", "proxy", "192.168.1.99", "dev", "lan0"])  # not ours
        assert b.proxy_neighbours() == {ProxyNeighbour(IPv4Address("192.168.1.11"), "lan0")}
    assert "192.168.1.11 dev lan0 proxy proto 207" in run(["ip", "-n", ns, "neigh", "show", "proxy"]).stdout


def test_delete_that_finds_nothing_is_success(ns):
    with bulk(ns) as b:
        b.run(
            [
                b.delete_route(Route(IPv4Network("192.168.1.77/32"), "lanp")),
                b.delete_proxy_neighbour(ProxyNeighbour(IPv4Address("192.168.1.77"), "lan0")),
                b.delete_proxy_neighbour(ProxyNeighbour(IPv4Address("192.168.1.77"), "nosuchdev")),
            ]
        )
    with Netlink(ns) as netlink:
        netlink.delete_link("nosuchdev")


def test_a_failed_request_names_itself_and_the_rest_of_the_batch_is_applied(ns):
    with bulk(ns) as b:
        good = Route(IPv4Network("192.168.1.40/32"), "lanp")
        bad = Route(IPv4Network("192.168.1.41/32"), "lanp", IPv4Address("10.99.99.99"))  # not a local address
        with pytest.raises(DataplaneError, match=r"replace route 192\.168\.1\.41/32"):
            b.run([b.replace_route(good), b.replace_route(bad)])
        assert b.routes(254) == [good]
        with pytest.raises(DataplaneError, match="no interface 'nosuch'"):
            b.replace_route(Route(IPv4Network("192.168.1.42/32"), "nosuch"))


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


def test_route_mtu_is_written_and_read_back(ns):
    routes = [
        Route(IPv4Network("192.168.1.11/32"), "lanp", IPv4Address("192.168.1.254"), mtu=1340),
        Route(IPv4Network("192.168.1.12/32"), "lanp", IPv4Address("192.168.1.254")),
    ]
    with bulk(ns) as b:
        b.run([b.replace_route(r) for r in routes])
        assert sorted(b.routes(254), key=lambda r: r.dst) == routes
        b.run([b.replace_route(Route(routes[0].dst, "lanp", routes[0].src, mtu=None))])  # MTU removed again
        assert all(r.mtu is None for r in b.routes(254))
    assert "mtu" not in run(["ip", "-n", ns, "route", "show", "proto", str(RT_PROTO)]).stdout


def test_virtual_addresses_are_marked_and_only_ours_listed_or_removed(ns):
    from ipaddress import IPv4Interface

    from cloudgw.dataplane.kernelstate import LanAddress

    virtual = LanAddress(IPv4Interface("192.168.1.250/24"), "lan0")
    with Netlink(ns) as netlink:
        assert netlink.owned_addresses() == set()  # the interface's own address is not ours
        netlink.add_owned_address(virtual)
        netlink.add_owned_address(virtual)  # idempotent
        assert netlink.owned_addresses() == {virtual}
        listing = run(["ip", "-n", ns, "-4", "addr", "show", "dev", "lan0"]).stdout
        assert "192.168.1.250/24" in listing and "192.168.1.254/24" in listing
        netlink.delete_address(virtual)
        netlink.delete_address(virtual)  # gone already: fine
        assert netlink.owned_addresses() == set()
        assert "192.168.1.254/24" in run(["ip", "-n", ns, "-4", "addr", "show", "dev", "lan0"]).stdout

"""`cloudgw agent run --once` in a fresh namespace, against the real kernel and wireguard-go."""

import json
import os
import sys

import pytest
import yaml

from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.dataplane.wireguard import Uapi
from tests.helpers import deep, run, sample_document

pytestmark = pytest.mark.root


@pytest.fixture
def gateway(make_netns, tmp_path):
    ns = make_netns("gw")
    for dev, peer, address in (("lan0", "lanp", "192.168.1.254/24"), ("wan0", "wanp", "10.100.0.2/24")):
        run(["ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peer])
        run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "-n", ns, "link", "set", peer, "up"])
        run(["ip", "-n", ns, "addr", "add", address, "dev", dev])
    dirs = {name: tmp_path / name for name in ("state", "run", "wg")}
    return ns, dirs, tmp_path


def agent(gateway, *args, check=False):
    ns, dirs, _ = gateway
    return run(
        [
            sys.executable,
            "-m",
            "cloudgw",
            "agent",
            *args,
            "--run-dir",
            str(dirs["run"]),
            "--wg-socket-dir",
            str(dirs["wg"]),
        ],
        netns=ns,
        check=check,
    )


def write_doc(gateway, data, name="doc.yaml"):
    path = gateway[2] / name
    path.write_text(yaml.safe_dump(data))
    return path


def snapshot(ns):
    """Everything an agent could change, as text."""
    parts = [
        run(["ip", "-j", "-n", ns, "link"]).stdout,
        run(["ip", "-4", "-j", "-n", ns, "route", "show", "table", "all"]).stdout,
        run(["ip", "-j", "-n", ns, "neigh", "show", "proxy"]).stdout,
        run(["nft", "-j", "list", "ruleset"], netns=ns).stdout,
        run(["sysctl", "-n", "net.ipv4.ip_forward"], netns=ns).stdout,
    ]
    return parts


def valid_doc():
    data = sample_document()
    data["peers"][0]["public_key"] = public_key_of(generate_private_key())
    return data


def test_apply_is_real_and_idempotent_then_teardown_removes_only_ours(gateway):
    ns, dirs, _ = gateway
    run(["ip", "-n", ns, "route", "add", "10.9.0.0/16", "dev", "lanp"])  # a route that is not ours
    doc = write_doc(gateway, valid_doc())
    first = agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--once", check=True)
    assert "applied" in first.stdout and "for revision 3" in first.stdout

    routes = run(["ip", "-n", ns, "route", "show", "proto", "207"]).stdout
    assert "192.168.1.11 dev cgw0" in routes and "192.168.1.16/30 dev cgw0" in routes
    assert "192.168.1.11 dev lan0 proxy" in run(["ip", "-n", ns, "neigh", "show", "proxy"]).stdout
    # wireguard-go outlives the agent in a process group of its own, but in the agent's session: a
    # session of its own would be a scheduler autogroup of its own (a third of UDP on 2 cores)
    wg_pid = int((dirs["run"] / "wireguard-go-cgw0.pid").read_text())
    assert os.getpgid(wg_pid) == wg_pid and os.getsid(wg_pid) == os.getsid(0)
    assert run(["sysctl", "-n", "net.ipv4.ip_forward"], netns=ns).stdout.strip() == "1"
    table = json.loads(run(["nft", "-j", "list", "table", "inet", "cloudgw"], netns=ns).stdout)
    comments = {r["rule"].get("comment") for r in table["nftables"] if "rule" in r}
    assert {"lan-spoof lan0", "tunnel-spoof cgw0", "mss"} <= comments
    pairs = Uapi(dirs["wg"] / "cgw0.sock").get()
    assert ("endpoint", "203.0.113.20:51820") in pairs
    assert ("allowed_ip", "192.168.1.12/30") in pairs
    assert "private.key" in {p.name for p in dirs["state"].iterdir()}
    private = (dirs["state"] / "private.key").read_text().strip()
    assert private not in first.stdout + first.stderr  # never printed

    before = snapshot(ns)
    second = agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--once", check=True)
    assert "applied 0 change(s)" in second.stdout
    assert snapshot(ns) == before  # nothing touched, nft handles and counters included

    removed = agent(gateway, "teardown", check=True)
    assert "removed" in removed.stdout
    assert "cgw0" not in run(["ip", "-n", ns, "link"]).stdout
    assert run(["ip", "-n", ns, "route", "show", "proto", "207"]).stdout.strip() == ""
    assert run(["ip", "-n", ns, "neigh", "show", "proxy"]).stdout.strip() == ""
    assert "cloudgw" not in run(["nft", "list", "tables"], netns=ns).stdout
    assert "10.9.0.0/16 dev lanp" in run(["ip", "-n", ns, "route"]).stdout  # foreign route survived


def test_dry_run_prints_the_plan_and_changes_nothing(gateway):
    ns, dirs, _ = gateway
    before = snapshot(ns)
    doc = write_doc(gateway, valid_doc())
    result = agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--dry-run", check=True)
    assert "add route 192.168.1.11/32" in result.stdout and "would apply" in result.stdout
    assert snapshot(ns) == before


BAD = [
    ("overlapping-pools", "networks.0.pools.1.range", "192.168.1.5-192.168.1.20", "networks[0].pools[1].range"),
    ("pool-outside-network", "networks.0.pools.1.range", "10.0.0.1-10.0.0.9", "networks[0].pools[1].range"),
    ("malformed-key", "peers.0.public_key", "abc", "peers[0].public_key"),
    ("unknown-interface", "networks.0.lan_interface", "eth7", "networks[0].lan_interface"),
]


@pytest.mark.parametrize(("path", "value", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_document_refused_and_kernel_untouched(gateway, path, value, field):
    ns, dirs, _ = gateway
    before = snapshot(ns)
    data = deep(valid_doc())
    parts = path.split(".")
    target = data
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[parts[-1]] = value
    doc = write_doc(gateway, data)
    result = agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--once")
    assert result.returncode == 78, result.stderr
    assert field in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(ns) == before


def test_egress_via_peer_programs_policy_rules_idempotently(gateway):
    ns, dirs, _ = gateway
    data = valid_doc()
    data["networks"][0]["egress"] = "via"
    data["networks"][0]["egress_via"] = "gw-b"
    data["forwards"] = [
        {"name": "web", "protocol": "tcp", "public_port": 8080, "target_ip": "192.168.1.5", "target_port": 80}
    ]
    doc = write_doc(gateway, data)
    agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--once", check=True)
    rules = run(["ip", "-n", ns, "rule"]).stdout
    assert "20700:\tfrom all lookup main suppress_prefixlength 0 proto 207" in rules
    assert "from 192.168.1.8/31 lookup 207 proto 207" in rules
    assert "default dev cgw0 proto 207" in run(["ip", "-n", ns, "route", "show", "table", "207"]).stdout
    ruleset = run(["nft", "list", "table", "inet", "cloudgw"], netns=ns).stdout
    assert "dnat ip to 192.168.1.5:80" in ruleset and 'comment "egress-via"' in ruleset
    assert "masquerade" not in ruleset  # this site's traffic leaves through the peer
    second = agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--once", check=True)
    assert "applied 0 change(s)" in second.stdout
    data["networks"][0]["egress"] = "local"
    data["networks"][0].pop("egress_via")
    back = write_doc(gateway, data, "local.yaml")
    agent(gateway, "run", "--state", str(back), "--state-dir", str(dirs["state"]), "--once", check=True)
    assert "proto 207" not in run(["ip", "-n", ns, "rule"]).stdout
    assert run(["ip", "-n", ns, "route", "show", "table", "207"]).stdout.strip() == ""
    assert "masquerade" in run(["nft", "list", "table", "inet", "cloudgw"], netns=ns).stdout


def mac_of(ns, link):
    return json.loads(run(["ip", "-j", "-n", ns, "link", "show", link]).stdout)[0]["address"]


def l2_data(lan_interface):
    data = valid_doc()
    net = data["networks"][0]
    net.update(mode="l2", vni=4242, l2_sites=["b"], lan_interface=lan_interface)
    net["remote_endpoints"][0]["mac"] = "02:00:00:00:00:11"
    return data


def test_l2_document_builds_the_vxlan_port_idempotently_and_teardown_removes_it(gateway):
    ns, dirs, _ = gateway
    run(["ip", "-n", ns, "link", "add", "br-lan", "type", "bridge"])
    run(["ip", "-n", ns, "link", "set", "lan0", "master", "br-lan"])
    run(["ip", "-n", ns, "link", "set", "br-lan", "up"])
    # the LAN port's address is higher than any the VXLAN port could get: unpinned, the bridge would
    # take the VXLAN port's address and the VMs' ARP entries for the gateway would go stale
    run(["ip", "-n", ns, "link", "set", "lan0", "address", "fe:ff:ff:ff:ff:fe"])
    bridge_mac = mac_of(ns, "br-lan")
    assert bridge_mac == "fe:ff:ff:ff:ff:fe"
    doc = write_doc(gateway, l2_data("br-lan"))
    agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--once", check=True)
    assert mac_of(ns, "br-lan") == bridge_mac
    assert "vxlan id 4242 local 192.168.1.254" in run(["ip", "-d", "-n", ns, "link", "show", "cgwvx4242"]).stdout
    fdb = run(["bridge", "-n", ns, "fdb", "show", "dev", "cgwvx4242"]).stdout
    assert "02:00:00:00:00:11 dst 192.168.1.253 self permanent" in fdb
    assert "02:00:00:00:00:12 sticky master br-lan static" in fdb
    assert (
        "lladdr 02:00:00:00:00:12 PERMANENT proto 207" in run(["ip", "-n", ns, "neigh", "show", "192.168.1.12"]).stdout
    )
    assert "mtu 1500" in run(["ip", "-n", ns, "link", "show", "br-lan"]).stdout  # the LAN keeps its MTU
    assert "l2-mss-out cgwvx4242" in run(["nft", "list", "table", "bridge", "cloudgw"], netns=ns).stdout
    again = agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--once", check=True)
    assert "applied 0 change(s)" in again.stdout
    agent(gateway, "teardown", check=True)
    assert "cgwvx4242" not in run(["ip", "-n", ns, "link"]).stdout
    assert mac_of(ns, "br-lan") == bridge_mac
    assert "proto 207" not in run(["ip", "-n", ns, "neigh"]).stdout
    assert run(["nft", "list", "table", "bridge", "cloudgw"], netns=ns, check=False).returncode != 0


def test_l2_on_a_lan_that_is_no_bridge_says_how_and_applies_the_rest(gateway):
    ns, dirs, _ = gateway
    doc = write_doc(gateway, l2_data("lan0"))
    result = agent(gateway, "run", "--state", str(doc), "--state-dir", str(dirs["state"]), "--once")
    said = result.stdout + result.stderr
    assert "needs 'lan0' to be a Linux bridge" in said and "ip link add lan0 type bridge" in said, said
    assert "cgwvx4242" not in run(["ip", "-n", ns, "link"]).stdout
    assert "table inet cloudgw" in run(["nft", "list", "ruleset"], netns=ns).stdout  # the rest is in place
    assert "192.168.1.253 dev cgw0" in run(["ip", "-n", ns, "route"]).stdout

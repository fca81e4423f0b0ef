"""Declarative topology: apply, export, round trip, dry run."""

from __future__ import annotations

import yaml

from cloudgw.lab.scenario import builtin_topology


def topology(uid: str, public_range: str = "192.168.1.11-192.168.1.20", extra_site: bool = False) -> str:
    data = {
        "version": 1,
        "sites": [{"name": f"p-{uid}", "provider": "openstack"}, {"name": f"q-{uid}", "provider": "aws"}],
        "networks": [{"name": f"net-{uid}", "cidr": "192.168.1.0/24"}],
        "pools": [
            {"network": f"net-{uid}", "site": f"p-{uid}", "range": "192.168.1.4-192.168.1.10"},
            {"network": f"net-{uid}", "site": f"q-{uid}", "range": public_range},
        ],
        "gateways": [
            {
                "name": f"pg-{uid}",
                "site": f"p-{uid}",
                "endpoint": "203.0.113.10:51820",
                "lan_addresses": ["192.168.1.254"],
            }
        ],
        "connections": [{"network": f"net-{uid}", "site_a": f"p-{uid}", "site_b": f"q-{uid}"}],
    }
    if extra_site:
        data["sites"].append({"name": f"r-{uid}"})
        data["pools"].append({"network": f"net-{uid}", "site": f"r-{uid}", "range": "192.168.1.100-192.168.1.110"})
        data["connections"].append({"network": f"net-{uid}", "site_a": f"p-{uid}", "site_b": f"r-{uid}"})
    return yaml.safe_dump(data)


def mine(exported: dict, uid: str) -> dict:
    """The part of an export that belongs to this test (the controller is shared)."""

    def keep(item: dict) -> bool:
        return uid in yaml.safe_dump(item)

    return {
        kind: [i for i in exported.get(kind, []) if keep(i)]
        for kind in ("sites", "networks", "pools", "gateways", "connections")
    }


def test_apply_export_apply_round_trip(cli, tmp_path, uid):
    # apply prunes what the file does not hold, so this test owns the whole controller's topology:
    # start from what exists and add to it
    base = yaml.safe_load(cli("export").out)
    ours = yaml.safe_load(topology(uid))
    for kind in ("sites", "networks", "pools", "gateways", "connections"):
        base[kind] = base.get(kind, []) + ours[kind]
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(base))
    first = cli("apply", "-f", str(path), "--yes")
    assert first.code == 0 and "applied" in first.out and f"+ create site p-{uid}" in first.out
    again = cli("apply", "-f", str(path))
    assert again.code == 0 and "nothing to change" in again.out
    exported = tmp_path / "exported.yaml"
    assert cli("export", "-f", str(exported)).code == 0
    assert (
        cli("apply", "-f", str(exported))
        .out.strip()
        .endswith("nothing to change: the controller already matches the file")
    )
    assert mine(yaml.safe_load(exported.read_text()), uid) == mine(yaml.safe_load(path.read_text()), uid)
    as_json = cli("export", "-o", "json").json()
    assert mine(as_json, uid)["gateways"][0]["lan_addresses"] == ["192.168.1.254"]


def test_dry_run_changes_nothing(cli, tmp_path, uid):
    base = yaml.safe_load(cli("export").out)
    ours = yaml.safe_load(topology(uid, extra_site=True))
    for kind in ("sites", "networks", "pools", "gateways", "connections"):
        base[kind] = base.get(kind, []) + ours[kind]
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(base))
    before = cli("status", "-o", "json").json()["revision"]
    planned = cli("apply", "-f", str(path), "--dry-run")
    assert planned.code == 0 and "dry run: nothing changed" in planned.out and "to create" in planned.out
    assert cli("status", "-o", "json").json()["revision"] == before
    assert f"r-{uid}" not in cli("site", "list").out
    as_json = cli("apply", "-f", str(path), "--dry-run", "-o", "json").json()
    assert as_json["dry_run"] is True and any(s["name"] == f"r-{uid}" for s in as_json["steps"])


def test_update_and_delete_through_the_file(cli, tmp_path, uid):
    base = yaml.safe_load(cli("export").out)
    grown = yaml.safe_load(topology(uid, extra_site=True))
    shrunk = yaml.safe_load(topology(uid, public_range="192.168.1.11-192.168.1.40"))
    path = tmp_path / "t.yaml"
    for version in (grown, shrunk):
        data = {
            kind: base.get(kind, []) + version[kind]
            for kind in ("sites", "networks", "pools", "gateways", "connections")
        }
        path.write_text(yaml.safe_dump(data))
        result = cli("apply", "-f", str(path), "--yes")
        assert result.code == 0, result.err
    assert f"- delete site r-{uid}" in result.out and f"~ update pool q-{uid}-net-{uid}" in result.out
    assert f"r-{uid}" not in cli("site", "list").out
    assert cli("pool", "show", f"q-{uid}-net-{uid}", "-o", "json").json()["size"] == 30


def test_shipped_seed_topology_is_a_valid_apply_file(cli, tmp_path):
    text = builtin_topology("seed")
    assert text is not None
    path = tmp_path / "seed.topology.yaml"
    path.write_text(text)
    planned = cli("apply", "-f", str(path), "--dry-run", "-o", "json").json()
    names = {(s["op"], s["kind"], s["name"]) for s in planned["steps"]}
    assert {
        ("create", "sites", "private"),
        ("create", "gateways", "public-gw"),
        ("create", "connections", "private-public-lab"),
    } <= names

"""Every command, through the real API."""

from __future__ import annotations

import pytest

from cloudgw.agent.keys import generate_private_key, public_key_of


def build(cli, uid: str) -> dict[str, str]:
    """Two sites, a network, pools, gateways and a connection, made with the CLI."""
    names = {"a": f"a-{uid}", "b": f"b-{uid}", "net": f"n-{uid}", "gwa": f"gwa-{uid}", "gwb": f"gwb-{uid}"}
    steps = [
        ("site", "add", names["a"], "--provider", "openstack"),
        ("site", "add", names["b"], "--provider", "aws"),
        ("network", "add", names["net"], "--cidr", "192.168.1.0/24"),
        ("pool", "add", "--network", names["net"], "--site", names["a"], "--range", "192.168.1.4-192.168.1.10"),
        ("pool", "add", "--network", names["net"], "--site", names["b"], "--range", "192.168.1.11-192.168.1.20"),
        (
            "gateway",
            "add",
            names["gwa"],
            "--site",
            names["a"],
            "--endpoint",
            "203.0.113.10:51820",
            "--lan-address",
            "192.168.1.254",
            "--lan-interface",
            "lan0",
            "--wan-interface",
            "wan0",
        ),
        (
            "gateway",
            "add",
            names["gwb"],
            "--site",
            names["b"],
            "--endpoint",
            "203.0.113.20:51820",
            "--lan-address",
            "192.168.1.253",
        ),
        ("connection", "add", "--network", names["net"], "--site-a", names["a"], "--site-b", names["b"]),
    ]
    for step in steps:
        result = cli(*step)
        assert result.code == 0, (step, result.err)
        assert "created" in result.out
    return names


def test_build_list_show_and_outputs(cli, uid):
    names = build(cli, uid)
    table = cli("site", "list")
    assert names["a"] in table.out and "openstack" in table.out and "PROVIDER" in table.out
    as_json = cli("site", "list", "-o", "json").json()
    assert {item["name"] for item in as_json} >= {names["a"], names["b"]}
    assert cli("network", "show", names["net"], "-o", "yaml").yaml()["cidr"] == "192.168.1.0/24"
    pools = cli("pool", "list", "--network", names["net"], "-o", "json").json()
    assert sorted(p["size"] for p in pools) == [7, 10]
    gateway = cli("gateway", "show", names["gwa"], "-o", "json").json()
    assert gateway["lan_addresses"] == ["192.168.1.254"] and gateway["public_key"] is None
    connection = cli("connection", "list", "-o", "json").json()
    mine = next(c for c in connection if c["network"] == names["net"])
    assert mine["health"]["state"] == "pending"
    assert "pending" in cli("connection", "list").out


def test_update_and_delete_with_confirmation(cli, uid):
    names = build(cli, uid)
    assert "updated: description" in cli("site", "update", names["a"], "--description", "Paris").out
    assert cli("site", "show", names["a"], "-o", "json").json()["description"] == "Paris"
    pool = f"{names['b']}-{names['net']}"
    assert cli("pool", "update", pool, "--range", "192.168.1.11-192.168.1.30").code == 0
    assert cli("pool", "show", pool, "-o", "json").json()["size"] == 20
    connection = f"{names['a']}-{names['b']}-{names['net']}"
    assert cli("connection", "update", connection, "--disable").code == 0
    assert cli("connection", "show", connection, "-o", "json").json()["health"]["state"] == "disabled"
    nothing = cli("site", "update", names["a"])
    assert nothing.code == 2 and "nothing to update" in nothing.err
    # destructive commands ask; without a terminal they refuse instead of hanging
    refused = cli("connection", "delete", connection)
    assert refused.code == 2 and "--yes" in refused.err
    declined = cli("gateway", "delete", names["gwb"], input="n\n")
    assert declined.code in (1, 2) and cli("gateway", "show", names["gwb"]).code == 0
    assert cli("connection", "delete", connection, "--yes").code == 0
    blocked = cli("site", "delete", names["a"], "--yes")
    assert blocked.code == 0  # no connections left
    assert cli("site", "delete", names["b"], "--cascade", "--yes").code == 0
    assert cli("gateway", "show", names["gwb"]).code == 1
    assert cli("network", "delete", names["net"], "--cascade", "--yes").code == 0


def test_gateway_join_token_document_endpoints(cli, controller, uid):
    names = build(cli, uid)
    joined = cli("gateway", "join-token", names["gwb"])
    token = joined.out.split()[0]
    assert token.startswith("cgwj_") and f"--token {token}" in joined.out
    # the CLI talks to 127.0.0.1, which no gateway can use: never printed as the controller's address
    assert "--controller https://CONTROLLER-ADDRESS:" in joined.out and "loopback" in joined.err
    with controller.agent(token) as agent:
        credential = agent.join(public_key_of(generate_private_key())).credential
    with controller.agent(credential) as agent:
        agent.announce(names["net"], [{"ip": "192.168.1.12", "mac": "02:00:00:00:00:12"}])
    endpoints = cli("endpoint", "list", "--site", names["b"])
    assert "192.168.1.12" in endpoints.out and "02:00:00:00:00:12" in endpoints.out
    resolved = cli("endpoint", "resolve", names["net"], "192.168.1.12")
    assert "effective" in resolved.out and names["gwb"] in resolved.out
    assert cli("endpoint", "show", names["net"], "192.168.1.12", "-o", "json").json()["gateway"] == names["gwb"]
    dropped = cli("endpoint", "validate", names["gwa"], "192.168.1.15", "--network", names["net"])
    assert dropped.code == 1 and "dropped" in dropped.out and names["b"] in dropped.out
    assert cli("endpoint", "validate", names["gwa"], "192.168.1.5").code == 0
    document = cli("gateway", "show", names["gwa"], "--document").yaml()
    assert document["gateway"]["name"] == names["gwa"] and document["peers"][0]["name"] == names["gwb"]
    assert cli("gateway", "list").out.count(uid) >= 2


def test_tokens_status_audit(cli, uid):
    created = cli("token", "add", f"ro-{uid}", "--role", "readonly")
    token = created.out.strip()
    assert token.startswith("cgw_") and "shown once" in created.err
    listing = cli("token", "list")
    assert f"ro-{uid}" in listing.out and token.split("_")[2] not in listing.out
    readonly = cli("site", "add", f"x-{uid}", env_overrides={"CLOUDGW_TOKEN": token})
    assert readonly.code == 1 and "read-only" in readonly.err
    assert cli("token", "delete", f"ro-{uid}", "--yes").code == 0
    assert cli("site", "list", env_overrides={"CLOUDGW_TOKEN": token}).code == 1
    build(cli, uid)
    status = cli("status")
    assert "gateways" in status.out and "connections" in status.out and f"gwa-{uid}" in status.out
    assert cli("status", "-o", "json").json()["revision"] > 0
    audit = cli("audit", "--kind", "site", "--limit", "5")
    assert f"create site b-{uid}" in audit.out and "admin" in audit.out


def test_config_show_and_save(cli, controller, tmp_path):
    shown = cli("config", "show")
    assert controller.url in shown.out and controller.admin_token not in shown.out and "environment" in shown.out
    saved = cli("config", "save")
    assert saved.code == 0
    path = tmp_path / "config.yaml"
    assert path.stat().st_mode & 0o077 == 0
    only_file = {"CLOUDGW_URL": None, "CLOUDGW_TOKEN": None, "CLOUDGW_CA": None}
    assert cli("site", "list", env_overrides=only_file).code == 0
    assert str(path) in cli("config", "show", env_overrides=only_file).out


@pytest.mark.parametrize(
    "args",
    [
        ["site", "list", "-o", "xml"],
        ["pool", "add", "--network", "n"],
        ["site", "nope"],
        ["endpoint", "resolve", "lab"],
    ],
    ids=["bad-output", "missing-option", "unknown-command", "missing-argument"],
)
def test_usage_errors_exit_2(cli, args):
    result = cli(*args)
    assert result.code == 2
    assert "Traceback" not in result.out + result.err


def test_version_and_completion(cli):
    assert cli("--version").out.strip().startswith("cloudgw ")
    completion = cli("--show-completion", "bash")
    assert completion.code == 0 and "complete" in completion.out and "cloudgw" in completion.out.lower()


def _leaves(command, path=()):
    sub = getattr(command, "commands", None)
    if not sub:
        yield path, command
        return
    for name, child in sub.items():
        yield from _leaves(child, (*path, name))


def test_every_command_has_help_with_an_example():
    import typer

    from cloudgw.cli.main import app

    missing = [
        " ".join(path)
        for path, command in _leaves(typer.main.get_command(app))
        if "Example" not in (command.help or "")
    ]
    assert missing == []


def test_nat_egress_forward_and_sessions(cli, controller, uid):
    names = build(cli, uid)
    token = cli("gateway", "join-token", names["gwb"]).out.split()[0]
    with controller.agent(token) as agent:
        credential = agent.join(public_key_of(generate_private_key())).credential
    set_via = cli("nat", "egress", "set", names["b"], names["net"], "via", "--via", names["a"])
    assert set_via.code == 0 and f"egress via {names['a']}" in set_via.out
    assert cli("nat", "egress", "set", names["b"], names["net"], "none").code == 0  # an update this time
    listing = cli("nat", "egress", "list", "-o", "json").json()
    assert any(e["site"] == names["b"] and e["mode"] == "none" for e in listing)
    assert cli("nat", "egress", "reset", names["b"], names["net"]).code == 0
    added = cli(
        "nat",
        "forward",
        "add",
        f"web-{uid}",
        "--gateway",
        names["gwb"],
        "--public-port",
        "8080",
        "--to",
        "192.168.1.11:80",
    )
    assert added.code == 0 and "tcp/203.0.113.20:8080 -> 192.168.1.11:80" in added.out
    assert "203.0.113.20:8080" in cli("nat", "forward", "list").out
    bad = cli(
        "nat", "forward", "add", f"bad-{uid}", "--gateway", names["gwb"], "--public-port", "8081", "--to", "192.168.1.3"
    )
    assert bad.code == 2 and "--to" in bad.err
    assert cli("nat", "forward", "delete", f"web-{uid}", "--yes").code == 0
    with controller.agent(credential) as agent:
        agent.heartbeat(
            {
                "nat_sessions": 1,
                "sessions": [
                    {
                        "kind": "snat",
                        "protocol": "tcp",
                        "state": "ESTABLISHED",
                        "source": "192.168.1.11:40000",
                        "destination": "198.51.100.10:80",
                        "translated": "10.101.0.2:40000",
                    }
                ],
            }
        )
    sessions = cli("nat", "sessions", names["b"])
    assert f"{names['gwb']}: 1 NAT session(s)" in sessions.out and "198.51.100.10:80" in sessions.out


def test_ha_pair_priority_timing_and_role_column(cli, uid):
    names = build(cli, uid)
    added = cli(
        "gateway", "add", f"gwa2-{uid}", "--site", names["a"], "--lan-address", "192.168.1.252", "--priority", "50"
    )
    assert added.code == 0, added.err
    assert cli("gateway", "show", f"gwa2-{uid}", "-o", "json").json()["priority"] == 50
    listed = {g["name"]: g for g in cli("gateway", "list", "--site", names["a"], "-o", "json").json()}
    assert listed[f"gwa2-{uid}"]["role"] is None  # no agent has taken a role yet (the ROLE column shows them)
    assert cli("site", "update", names["a"], "--ha-dead", "1500", "--failback").code == 0
    assert cli("site", "show", names["a"], "-o", "json").json()["ha"] == {
        "interval_ms": 200,
        "dead_ms": 1500,
        "failback": True,
        "addresses": [],
    }
    assert cli("site", "update", names["a"], "--ha-interval", "100").code == 0  # the rest is kept
    assert cli("site", "show", names["a"], "-o", "json").json()["ha"]["dead_ms"] == 1500
    refused = cli("site", "update", names["a"], "--ha-interval", "600")
    assert refused.code != 0 and "dead_ms" in refused.err + refused.out
    bad = cli("gateway", "update", f"gwa2-{uid}", "--priority", "300")
    assert bad.code != 0 and "priority" in bad.err + bad.out

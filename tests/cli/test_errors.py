"""The error paths the issue names: each with its message and exit code, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.cli.test_commands import build


def test_unknown_site(cli, uid):
    result = cli("pool", "add", "--network", "nope", "--site", f"ghost-{uid}", "--range", "10.0.0.1")
    assert result.code == 1
    assert f"site: unknown site 'ghost-{uid}'" in result.err and "network: unknown network 'nope'" in result.err


def test_overlapping_pool(cli, uid):
    names = build(cli, uid)
    result = cli(
        "pool",
        "add",
        "--network",
        names["net"],
        "--site",
        names["a"],
        "--range",
        "192.168.1.15-192.168.1.25",
        "--name",
        f"extra-{uid}",
    )
    assert result.code == 1
    assert "range: 192.168.1.15-192.168.1.25 overlaps pool" in result.err and "fix:" in result.err


def test_second_pool_without_a_name_says_to_name_it(cli, uid):
    names = build(cli, uid)
    second = ("pool", "add", "--network", names["net"], "--site", names["a"], "--range", "192.168.1.41-192.168.1.45")
    result = cli(*second)
    default = f"{names['a']}-{names['net']}"
    assert result.code == 1 and "choose another name" not in result.err
    assert f"default name '{default}'" in result.err and f"--name {default}-2" in result.err
    assert cli("pool", "show", default).code == 0  # the first pool is untouched
    assert cli(*second, "--name", f"{default}-2").code == 0


def test_unreachable_controller_is_one_line(cli):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("site", "list", env_overrides={"CLOUDGW_URL": f"https://127.0.0.1:{port}"})
    assert result.code == 1
    assert result.err.strip().count("\n") == 0
    assert f"cannot reach the controller at https://127.0.0.1:{port}" in result.err


def test_bad_token(cli):
    result = cli("site", "list", env_overrides={"CLOUDGW_TOKEN": "cgw_000000000000_" + "x" * 32})
    assert result.code == 1 and "refused the token: invalid token" in result.err


def test_wrong_ca(cli, tmp_path, controller):
    from cloudgw.controller.tls import make_ca

    make_ca(tmp_path / "other")
    result = cli("site", "list", env_overrides={"CLOUDGW_CA": str(tmp_path / "other" / "ca.pem")})
    assert result.code == 1 and "not signed by the CA we trust" in result.err


def test_malformed_yaml_gives_the_line(cli, tmp_path):
    bad = tmp_path / "topology.yaml"
    bad.write_text("version: 1\nsites:\n  - name: a\n   provider: aws\n")
    result = cli("apply", "-f", str(bad))
    assert result.code == 1
    assert "line 4" in result.err and "malformed YAML" in result.err


def test_invalid_file_is_refused_before_anything_changes(cli, tmp_path, uid):
    before = cli("status", "-o", "json").json()["revision"]
    bad = tmp_path / "topology.yaml"
    bad.write_text(f"sites:\n  - name: s-{uid}\npools:\n  - network: nowhere\n    site: s-{uid}\n    range: 10.0.0.1\n")
    result = cli("apply", "-f", str(bad))
    assert result.code == 1 and "pools[0].network (line 4): unknown network 'nowhere'" in result.err
    assert cli("status", "-o", "json").json()["revision"] == before
    assert f"s-{uid}" not in cli("site", "list").out


def test_missing_file_is_a_usage_error(cli, tmp_path):
    result = cli("apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.code == 2 and "no file" in result.err


def test_real_entry_point_exit_codes(controller, tmp_path):
    env = {
        "CLOUDGW_URL": controller.url,
        "CLOUDGW_TOKEN": "cgw_000000000000_" + "x" * 32,
        "CLOUDGW_CA": controller.ca,
        "CLOUDGW_CONFIG": str(tmp_path / "none.yaml"),
        "CLOUDGW_LAB": "cgwnolab",
        "PATH": "/usr/bin:/bin",
    }
    bad_token = subprocess.run(
        [sys.executable, "-m", "cloudgw", "site", "list"], env=env, capture_output=True, text=True
    )
    assert bad_token.returncode == 1 and "Traceback" not in bad_token.stderr
    usage = subprocess.run([sys.executable, "-m", "cloudgw", "site", "add"], env=env, capture_output=True, text=True)
    assert usage.returncode == 2

"""Kernel WireGuard, up to the kernel: the exact `wg` and `ip` commands (and what they read on
stdin) for every UAPI transaction the agent makes, the dump read back into the same device model,
and the backend choice. This machine's kernel has no WireGuard module; stand-in `wg` and `ip`
programs record what would have run."""

from __future__ import annotations

import base64
import os
import stat
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from cloudgw.dataplane.kernel import KernelDataplane, choose_backend
from cloudgw.dataplane.kernelstate import Secret, WgDevice, WgPeer
from cloudgw.dataplane.wgkernel import MAX_ARGUMENT, KernelWireguard, dump_pairs, wg_commands
from cloudgw.dataplane.wireguard import WireguardGo, device_lines, parse_device, peer_lines, remove_peer_lines
from cloudgw.errors import DataplaneError, MissingDependency
from tests.helpers import KEY_A, KEY_B, KEY_C

NETS = (IPv4Network("10.0.0.0/24"), IPv4Network("192.168.1.11/32"))


def test_a_device_and_its_peers_become_wg_set_with_the_key_on_stdin():
    lines = device_lines(WgDevice("cgw0", 51820, Secret(KEY_A)))
    lines += peer_lines(WgPeer("cgw0", KEY_B, "203.0.113.2:51820", NETS, 25))
    lines += peer_lines(WgPeer("cgw0", KEY_C, None, (), 0))
    lines += remove_peer_lines(KEY_A)
    commands = wg_commands("cgw0", lines)
    assert [(c.argv, c.stdin) for c in commands] == [
        (["wg", "set", "cgw0", "listen-port", "51820", "private-key", "/dev/stdin"], KEY_A + "\n"),
        (
            [
                "wg", "set", "cgw0",
                "peer", KEY_B, "endpoint", "203.0.113.2:51820", "persistent-keepalive", "25",
                "allowed-ips", "10.0.0.0/24,192.168.1.11/32",
                "peer", KEY_C, "persistent-keepalive", "off", "allowed-ips", "",
                "peer", KEY_A, "remove",
            ],
            None,
        ),
    ]  # fmt: skip
    assert all(KEY_A not in " ".join(c.argv[:7]) for c in commands[:1])  # the private key is never an argument


def test_a_peer_with_more_addresses_than_one_argument_holds_gets_the_rest_by_addconf():
    many = tuple(IPv4Network(f"10.{i >> 8}.{i & 255}.1/32") for i in range(12_000))
    commands = wg_commands("cgw0", peer_lines(WgPeer("cgw0", KEY_B, None, many, 0)))
    first = commands[0].argv[commands[0].argv.index("allowed-ips") + 1].split(",")
    assert len(commands[0].argv[-1]) <= MAX_ARGUMENT and commands[1].argv == ["wg", "addconf", "cgw0", "/dev/stdin"]
    rest = commands[1].stdin.split("AllowedIPs = ")[1].strip().split(", ")
    assert commands[1].stdin.startswith(f"[Peer]\nPublicKey = {KEY_B}\n")
    assert first + rest == [str(n) for n in many]  # every address once, in order


def test_many_peers_are_split_into_commands_that_fit():
    peers = [WgPeer("cgw0", base64.b64encode(i.to_bytes(2, "big") * 16).decode(), None, NETS, 0) for i in range(20_000)]
    commands = wg_commands("cgw0", [line for p in peers for line in peer_lines(p)])
    assert len(commands) > 1 and all(sum(len(a) + 1 for a in c.argv) < 600_000 for c in commands)
    assert sum(c.argv.count("peer") for c in commands) == 20_000


def test_an_unknown_uapi_line_is_refused():
    with pytest.raises(DataplaneError, match="no kernel equivalent"):
        wg_commands("cgw0", ["fwmark=1"])


def test_the_dump_reads_back_into_the_same_model():
    hexkey = lambda k: base64.b64decode(k).hex()  # noqa: E731
    dump = (
        f"{KEY_A}\t{KEY_B}\t51820\toff\n"
        f"{KEY_B}\t(none)\t203.0.113.2:51820\t10.0.0.0/24,192.168.1.11/32\t1700000000\t100\t200\t25\n"
        f"{KEY_C}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n"
    )
    device, peers, stats = parse_device(dump_pairs(dump), "cgw0")
    assert device == WgDevice("cgw0", 51820, Secret(KEY_A))
    assert peers == [WgPeer("cgw0", KEY_B, "203.0.113.2:51820", NETS, 25), WgPeer("cgw0", KEY_C, None, (), 0)]
    assert (stats[0].rx_bytes, stats[0].tx_bytes, stats[0].last_handshake) == (100, 200, 1700000000)
    assert dump_pairs(dump)[0] == ("private_key", hexkey(KEY_A))
    with pytest.raises(DataplaneError, match="unexpected"):
        dump_pairs("just one field\n")


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """`wg` and `ip` programs that record argv and stdin, and answer `wg show dump` from a file."""
    log = tmp_path / "calls.log"
    for name in ("wg", "ip"):
        script = tmp_path / name
        script.write_text(
            "#!/bin/sh\n"
            f'echo "{name} $*" >> {log}\n'
            f'if [ "$1" = "show" ]; then cat {tmp_path}/dump; exit 0; fi\n'
            f'for a in "$@"; do if [ "$a" = /dev/stdin ]; then echo "stdin: $(cat)" >> {log}; fi; done\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return tmp_path, log


def test_the_kernel_backend_runs_those_commands(stand_ins):
    tmp_path, log = stand_ins
    wireguard = KernelWireguard("cgwtest0")
    assert wireguard.start() == 0 and wireguard.pid() is None
    wireguard.uapi().set(device_lines(WgDevice("cgwtest0", 51820, Secret(KEY_A))))
    (tmp_path / "dump").write_text(f"{KEY_A}\t{KEY_B}\t51820\toff\n")
    device, peers, _ = parse_device(wireguard.uapi().get(), "cgwtest0")
    assert device is not None and device.listen_port == 51820 and peers == []
    assert log.read_text().splitlines() == [
        "ip link add dev cgwtest0 type wireguard",
        "wg set cgwtest0 listen-port 51820 private-key /dev/stdin",
        f"stdin: {KEY_A}",
        "wg show cgwtest0 dump",
    ]


def test_a_failing_wg_says_why(tmp_path, monkeypatch):
    script = tmp_path / "wg"
    script.write_text("#!/bin/sh\necho 'Unable to modify interface: Protocol not supported' >&2\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(DataplaneError, match="Protocol not supported"):
        KernelWireguard("cgwtest0").uapi().set(["listen_port=1"])
    assert KernelWireguard("cgwtest0").uapi().alive() is False


@pytest.mark.parametrize(
    ("wanted", "module", "chosen"),
    [
        ("auto", True, "kernel"),
        ("auto", False, "wireguard-go"),
        ("kernel", True, "kernel"),
        ("wireguard-go", True, "wireguard-go"),
    ],
)
def test_backend_choice(wanted, module, chosen):
    assert choose_backend(wanted, lambda: module) == chosen
    backend = KernelDataplane(wg_backend=wanted, kernel_has_wireguard=lambda: module).wireguard("cgw0")
    assert isinstance(backend, KernelWireguard if chosen == "kernel" else WireguardGo)


def test_kernel_backend_without_the_module_is_a_clear_error():
    with pytest.raises(MissingDependency, match="no WireGuard module"):
        choose_backend("kernel", lambda: False)
    with pytest.raises(MissingDependency, match="unknown WireGuard backend"):
        choose_backend("boringtun", lambda: True)


def test_availability_is_whether_the_module_is_there_after_trying_to_load_it():
    from cloudgw.dataplane import wgkernel

    assert wgkernel.available() == Path("/sys/module/wireguard").exists()

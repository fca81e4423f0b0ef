import logging
import os
import stat

import pytest

from cloudgw.agent import keys
from cloudgw.errors import InvalidInput
from cloudgw.lab.scenario import find_scenario, load_scenario, vm_mac, vms
from cloudgw.logs import format_event, log_event
from cloudgw.model.keys import check_key, hex_to_key, key_to_hex


def test_log_lines_are_event_and_fields():
    assert format_event("reconcile.applied", gateway="gw-a", rev=42) == "reconcile.applied gateway=gw-a rev=42"
    assert format_event("x", reason="two words") == 'x reason="two words"'


@pytest.mark.parametrize("field", ["private_key", "token", "join_token", "secret", "password"])
def test_secret_fields_are_redacted(field, caplog):
    with caplog.at_level(logging.INFO):
        log_event(logging.getLogger("t"), "evt", **{field: "s3cr3t-value"})
    assert "s3cr3t-value" not in caplog.text
    assert "<redacted>" in caplog.text


def test_public_key_is_not_redacted():
    assert "abc" in format_event("evt", public_key="abc")


def test_key_file_is_private_and_stable(tmp_path):
    first = keys.load_or_create(tmp_path / "state")
    path = tmp_path / "state" / keys.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.load_or_create(tmp_path / "state") == first
    public = keys.public_key_of(first)
    assert public != first and check_key(public) == public
    assert hex_to_key(key_to_hex(public)) == public


def test_loose_key_file_is_tightened(tmp_path):
    keys.load_or_create(tmp_path)
    (tmp_path / keys.KEY_FILE).chmod(0o644)
    keys.load_or_create(tmp_path)
    assert stat.S_IMODE((tmp_path / keys.KEY_FILE).stat().st_mode) == 0o600


def test_seed_scenario_contract():
    scenario = find_scenario("seed")
    names = [vm.name for vm in vms(scenario)]
    assert names[:2] == ["private-vm1", "private-vm2"] and names[-1] == "public-vm20"
    assert len(names) == 20
    assert vm_mac(vms(scenario)[0].address) == "02:c6:c0:a8:01:01"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name: x\nnetwork: {cidr: 10.0.0.0/24}\nsites: []\n", "sites"),
        (
            "name: x\nnetwork: {cidr: 10.0.0.0/24}\nsites:\n"
            " - {name: a, pool: 10.0.0.1-10.0.0.5, vms: 9, gateway: {name: ga, lan_address: 10.0.0.250, "
            "public_address: 203.0.113.1}}\n"
            " - {name: b, pool: 10.0.0.6-10.0.0.9, vms: 1, gateway: {name: gb, lan_address: 10.0.0.251, "
            "public_address: 203.0.113.2}}\n",
            "sites[0].vms",
        ),
    ],
    ids=["too-few-sites", "vms-do-not-fit"],
)
def test_bad_scenarios_refused(text, field):
    with pytest.raises(InvalidInput) as caught:
        load_scenario(text)
    assert any(p.field == field for p in caught.value.problems), caught.value


def test_unknown_scenario_lists_builtins():
    with pytest.raises(InvalidInput, match="seed"):
        find_scenario("nope")


def test_controller_sockets_are_tcp_so_asyncio_disables_nagle(tmp_path):
    """asyncio sets TCP_NODELAY only when a socket's proto is IPPROTO_TCP; with proto 0 every small
    response waited ~40 ms for a delayed ACK (bench/scale.py found it)."""
    import socket

    from cloudgw.controller.serve import bound_sockets
    from cloudgw.controller.settings import ControllerSettings
    from cloudgw.lab.netns import listening_socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ControllerSettings(data_dir=str(tmp_path), listen=f"127.0.0.1:{port}")
    [own] = bound_sockets(settings, [])
    handed = listening_socket("127.0.0.1", 0)  # how the lab hands sockets in (--listen-fd)
    [adopted] = bound_sockets(settings, [handed.fileno()])
    try:
        assert own.proto == socket.IPPROTO_TCP and adopted.proto == socket.IPPROTO_TCP
    finally:
        own.close()
        adopted.close()


def test_uapi_reaches_a_socket_whose_path_is_longer_than_af_unix_allows(tmp_path):
    import socket
    import threading

    from cloudgw.dataplane.wireguard import Uapi

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "cgw0.sock"
    assert len(str(path)) > 108
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    directory = os.open(deep, os.O_RDONLY)
    server.bind(f"/proc/self/fd/{directory}/cgw0.sock")
    os.close(directory)
    server.listen(1)

    def answer():
        connection, _ = server.accept()
        connection.recv(100)
        connection.sendall(b"listen_port=51820\nerrno=0\n\n")
        connection.close()

    thread = threading.Thread(target=answer)
    thread.start()
    assert ("listen_port", "51820") in Uapi(path).get()
    thread.join(5)
    server.close()


def test_freed_memory_goes_back_to_the_system_after_a_burst():
    from cloudgw.memory import Trimmer, rss_kib, trim

    assert trim() is True  # glibc: malloc_trim exists here
    trimmer = Trimmer(threshold_kib=8 * 1024)
    assert trimmer.maybe_trim() is False  # nothing grew
    # ~80 MiB in blocks, each followed by a small object that stays: freeing the blocks leaves holes
    # glibc keeps (no automatic trim at the top of the heap), as a burst of connections does
    pairs = [(bytearray(4096), bytearray(64)) for _ in range(20_000)]
    kept = [small for _big, small in pairs]
    del pairs
    held = rss_kib()
    assert trimmer.maybe_trim() is True
    assert rss_kib() < held - 40 * 1024 and len(kept) == 20_000  # most of it returned


@pytest.mark.parametrize(
    ("base", "gogc", "expected"),
    [
        ({}, 50, {"LOG_LEVEL": "error", "GOGC": "50"}),
        ({"GOGC": "200"}, 50, {"LOG_LEVEL": "error", "GOGC": "200"}),  # the admin's own GOGC wins
        ({"CLOUDGW_WG_LOG_LEVEL": "debug"}, 0, {"CLOUDGW_WG_LOG_LEVEL": "debug", "LOG_LEVEL": "debug"}),
    ],
    ids=["setting", "admin-env-wins", "go-default"],
)
def test_wireguard_go_environment(base, gogc, expected):
    from cloudgw.dataplane.wireguard import wireguard_go_env

    assert wireguard_go_env(base, gogc) == expected


def test_agent_gives_wireguard_go_its_gogc_setting(monkeypatch):
    from cloudgw.agent.settings import AgentSettings
    from cloudgw.dataplane.kernel import KernelDataplane

    monkeypatch.setenv("CLOUDGW_AGENT_WG_GOGC", "75")
    settings = AgentSettings()
    assert AgentSettings.model_fields["wg_gogc"].default == 50 and settings.wg_gogc == 75
    assert KernelDataplane(wg_gogc=settings.wg_gogc).wireguard("cgw0").gogc == 75


def test_tune_gc_raises_the_young_generation_threshold():
    import gc

    from cloudgw.memory import GC_THRESHOLDS, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > before[0]
    finally:
        gc.set_threshold(*before)

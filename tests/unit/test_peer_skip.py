"""A peer WireGuard refuses is skipped, the others are applied (kernel data plane, fake UAPI)."""

import pytest

from cloudgw.dataplane import kernel
from cloudgw.dataplane.kernelstate import WgPeer
from cloudgw.dataplane.plan import Action
from cloudgw.errors import DataplaneError, PartialApply
from tests.helpers import KEY_A, KEY_B, KEY_C


class FakeUapi:
    def __init__(self, refuse: str):
        self.refuse = refuse
        self.applied: list[list[str]] = []

    def set(self, lines):
        if any(self.refuse in line for line in lines):
            raise DataplaneError("WireGuard refused the configuration (errno=-22)")
        self.applied.append(lines)


class FakeWireguard:
    def __init__(self, uapi):
        self._uapi = uapi

    def uapi(self):
        return self._uapi


@pytest.mark.parametrize("bad_endpoint", [False, True], ids=["refused-by-wireguard", "endpoint-not-an-address"])
def test_one_refused_peer_is_skipped_and_the_rest_applied(monkeypatch, bad_endpoint):
    from cloudgw.model.keys import key_to_hex

    uapi = FakeUapi(refuse="never" if bad_endpoint else key_to_hex(KEY_B))
    dataplane = kernel.KernelDataplane()
    monkeypatch.setattr(dataplane, "wireguard", lambda _link: FakeWireguard(uapi))
    peers = [
        WgPeer("cgw0", KEY_A, "203.0.113.1:51820", (), 25),
        WgPeer("cgw0", KEY_B, "gw.example\nx=1:51820" if bad_endpoint else "203.0.113.2:51820", (), 25),
        WgPeer("cgw0", KEY_C, "203.0.113.3:51820", (), 25),
    ]
    skipped = dataplane._apply_peers([Action("add", "peer", p.public_key, p, None) for p in peers])
    assert list(skipped) == [KEY_B]
    applied = [line for lines in uapi.applied for line in lines]
    assert f"public_key={key_to_hex(KEY_A)}" in applied and f"public_key={key_to_hex(KEY_C)}" in applied
    assert not any(key_to_hex(KEY_B) in line or "\n" in line for line in applied)
    assert "x=1" not in "".join(applied)
    error = PartialApply(skipped)
    assert KEY_B[:8] in str(error)

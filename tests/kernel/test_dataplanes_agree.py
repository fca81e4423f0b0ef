"""The in-memory data plane used by the simulations cannot drift from the kernel: the same reconcile
scenario (tests/kernel/reconcile_steps.py) runs against both, and after every step each observes
exactly what render() wanted, the kernel in a fresh namespace with wireguard-go."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cloudgw.dataplane.fake import FakeDataplane
from tests.helpers import run
from tests.kernel.reconcile_steps import run as run_steps

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parents[2]


def test_fake_and_kernel_observe_the_same_state_after_every_step(make_netns, tmp_path):
    ns = make_netns("agree")
    for a, b in (("lan0", "lanp"), ("wan0", "wanp")):
        run(["ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b])
        run(["ip", "-n", ns, "link", "set", a, "up"])
    run(["ip", "-n", ns, "addr", "add", "192.168.1.254/24", "dev", "lan0"])
    result = run([sys.executable, "-m", "tests.kernel.reconcile_steps", "kernel", str(tmp_path)], netns=ns, cwd=REPO)
    kernel = [json.loads(line) for line in result.stdout.splitlines()]
    fake = json.loads(json.dumps(run_steps(FakeDataplane(interfaces=("lan0", "wan0")))))  # as the kernel side
    assert [line["step"] for line in kernel] == [line["step"] for line in fake] and len(kernel) == 7
    for kernel_step, fake_step in zip(kernel, fake, strict=True):
        assert kernel_step["observed"] == kernel_step["desired"], kernel_step["step"]
        assert fake_step["observed"] == fake_step["desired"], fake_step["step"]
        assert kernel_step["observed"] == fake_step["observed"], kernel_step["step"]

"""One peer that cannot be configured must not take the others down: three sites, one gateway's
endpoint set to a name that does not resolve. Its peers report it and keep every other tunnel; the
gateway itself still reaches them (it has their endpoints and calls them)."""

from __future__ import annotations

import pytest

from cloudgw.lab import controlplane
from tests.helpers import RUN_TAG, run, wait_for
from tests.lab.conftest import running_lab

pytestmark = [pytest.mark.root, pytest.mark.lab]


def reaches(lab, node: str, address: str) -> bool:
    return run(["ping", "-c", "1", "-W", "1", address], netns=lab.ns(node), check=False).returncode == 0


def test_a_peer_whose_endpoint_does_not_resolve_is_skipped_and_reported():
    with running_lab(f"cgwb{RUN_TAG}", "three-sites") as lab:
        with controlplane.lab_client(lab.paths) as api:
            api.update("gateways", "paris-gw", {"endpoint": "paris-gw.invalid:51820"})

            def reported():
                berlin = api.get("gateways", "berlin-gw")
                return [p for p in berlin["problems"] if p["peer"] == "paris-gw" and "does not resolve" in p["problem"]]

            wait_for(reported, 30, what="berlin-gw to report paris-gw's endpoint")
            assert api.get("gateways", "madrid-gw")["applied_revision"] is not None
        for source, target in (
            ("berlin-vm21", "10.20.0.41"),
            ("madrid-vm41", "10.20.0.21"),
            ("paris-vm1", "10.20.0.21"),
        ):
            wait_for(lambda s=source, t=target: reaches(lab, s, t), 20, what=f"{source} -> {target}")
        log = (lab.paths.logs / "berlin-gw.log").read_text()
        assert "endpoint.unresolved" in log and "Traceback" not in log

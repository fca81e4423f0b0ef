"""The soak, short (CI): two minutes of the churn of bench/soak.py on the three-sites lab, then the
exact invariants, never a timing: every kernel object each gateway owns is what its document renders
to, descriptors are back to their baseline, no churn action failed, and the long-lived ping lost
nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers import RUN_TAG, reap_zombie_children, run

pytestmark = [pytest.mark.root, pytest.mark.lab]
REPO = Path(__file__).resolve().parents[2]


def test_two_minutes_of_churn_leave_exactly_what_the_topology_needs(tmp_path):
    name = f"cgwk{RUN_TAG}"
    try:
        result = run(
            [sys.executable, str(REPO / "bench" / "soak.py"), "--minutes", "2", "--name", name, "--out", str(tmp_path)],
            check=False,
            timeout=600,
        )
    finally:
        run([sys.executable, "-m", "cloudgw", "lab", "down", "--name", name], check=False)
        reap_zombie_children()
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["problems"] == [] and report["ok"], (report["problems"], result.stderr[-2000:])
    assert report["error_count"] == 0, report["errors"]
    assert set(report["actions"]) == {"vm", "napt", "connection", "watchers", "pool", "agent", "controller"}
    assert ", 0% packet loss" in report["ping"], report["ping"]
    assert (tmp_path / "soak.csv").read_text().count("\n") >= 4  # header, baseline, samples, final

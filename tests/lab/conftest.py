"""One seed lab for the whole session (about 5 s to build), named for this run so it never collides
with a developer's demo lab."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from cloudgw.lab.runstate import LabPaths
from cloudgw.lab.scenario import Scenario, find_scenario
from tests.helpers import RUN_TAG, reap_zombie_children, run


@dataclass
class Lab:
    name: str
    paths: LabPaths
    scenario: Scenario

    def cli(self, *args: str, check: bool = True, timeout: float = 180):
        return run([sys.executable, "-m", "cloudgw", "lab", *args, "--name", self.name], check=check, timeout=timeout)

    def ns(self, node: str) -> str:
        return self.paths.namespace(node)


def start_lab(name: str, scenario: str) -> Lab:
    lab = Lab(name, LabPaths(name), find_scenario(scenario))
    result = lab.cli("up", "--scenario", scenario, check=False)
    if result.returncode != 0:
        lab.cli("down", check=False)
        raise AssertionError(f"lab up failed: {result.stdout}{result.stderr}")
    return lab


@contextmanager
def running_lab(name: str, scenario: str) -> Iterator[Lab]:
    """A lab for the duration of a block; taken down (and its children reaped) whatever happens."""
    lab = start_lab(name, scenario)
    try:
        yield lab
    finally:
        lab.cli("down", check=False)
        reap_zombie_children()


@pytest.fixture(scope="session")
def seed_lab() -> Iterator[Lab]:
    with running_lab(f"cgwt{RUN_TAG}", "seed") as lab:
        yield lab

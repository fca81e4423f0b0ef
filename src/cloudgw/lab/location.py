"""Where a lab keeps its files (pure: no namespaces touched), so the admin CLI can find a running
lab's controller without importing the lab itself."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LAB = "cgw"


def lab_root() -> Path:
    return Path(os.environ.get("CLOUDGW_LAB_DIR", "/run/cloudgw/lab"))


def cli_config_path(name: str) -> Path:
    """The CLI settings (url, token, ca) a running lab writes for `cloudgw` to use."""
    return lab_root() / name / "cli.json"

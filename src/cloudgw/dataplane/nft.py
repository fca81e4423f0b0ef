"""Apply and read nftables through `nft -j -f -` (one atomic transaction per call)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from cloudgw.dataplane.kernelstate import NFT_FAMILY, NFT_TABLE
from cloudgw.errors import DataplaneError, MissingDependency


def _nft(args: list[str], netns: str | None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("nft") is None:
        raise MissingDependency("'nft' not found; install nftables (scripts/install-system.sh does)")
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, "nft", *args], input=stdin, text=True, capture_output=True, check=False)


def apply_batch(commands: list[Any] | tuple[Any, ...], netns: str | None = None) -> None:
    """All or nothing: nft refuses the whole batch if one command is bad."""
    result = _nft(["-j", "-f", "-"], netns, json.dumps({"nftables": list(commands)}))
    if result.returncode != 0:
        raise DataplaneError(f"nftables refused the ruleset: {result.stderr.strip()}")


def apply_text(text: str, netns: str | None = None) -> None:
    result = _nft(["-f", "-"], netns, text)
    if result.returncode != 0:
        raise DataplaneError(f"nftables refused the ruleset: {result.stderr.strip()}")


def list_table(family: str = NFT_FAMILY, table: str = NFT_TABLE, netns: str | None = None) -> dict[str, Any] | None:
    result = _nft(["-j", "list", "table", family, table], netns)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return None
        raise DataplaneError(f"nft list table {family} {table}: {result.stderr.strip()}")
    data: dict[str, Any] = json.loads(result.stdout)
    return data

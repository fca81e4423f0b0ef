"""Files that hold secrets: created private, and made private again if an older version, a copy or a
hand edit left them readable by others (a 0644 token file or database stays 0644 otherwise); and
JSON files replaced whole (a reader never sees half of one)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any


def tighten(path: str | Path, mode: int) -> None:
    """Take away every permission beyond `mode` (never add any); missing files are fine."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        os.chmod(path, current & mode)


def private_dir(path: str | Path) -> Path:
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tighten(directory, 0o700)
    return directory


def write_private(path: str | Path, data: bytes | str) -> None:
    """Write a file only its owner may read, whatever it was before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)


def write_json_atomic(path: str | Path, data: Any, mode: int = 0o644) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True, default=str)
    os.chmod(temporary, mode)
    os.replace(temporary, target)

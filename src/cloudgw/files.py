"""Files that hold secrets: created private, and made private again if an older version, a copy or a
hand edit left them readable by others (a 0644 token file or database stays 0644 otherwise)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


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

"""The agent's status file: what it last applied and what it sees. Read by `cloudgw lab status`,
tests and (later) the heartbeat. Written atomically; never contains a private key."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def write_json_atomic(path: str | Path, data: Any, mode: int = 0o644) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True, default=str)
    os.chmod(temporary, mode)
    os.replace(temporary, target)


def read_json(path: str | Path) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def status_record(**fields: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), "updated_at": time.time(), **fields}

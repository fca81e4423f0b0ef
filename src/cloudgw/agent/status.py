"""The agent's status file: what it last applied and what it sees. Read by `cloudgw lab status`,
tests and (later) the heartbeat. Written atomically; never contains a private key."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from cloudgw.files import write_json_atomic as write_json_atomic  # where it lives now; kept here for its users


def read_json(path: str | Path) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def status_record(**fields: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), "updated_at": time.time(), **fields}

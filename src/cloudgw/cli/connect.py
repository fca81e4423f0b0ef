"""Where the CLI finds its controller: --url/--token/--ca, else CLOUDGW_URL/CLOUDGW_TOKEN/CLOUDGW_CA,
else the config file (CLOUDGW_CONFIG or ~/.config/cloudgw/config.yaml), else the default lab when one
is running on this machine."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from cloudgw import exitcodes
from cloudgw.client import Client
from cloudgw.errors import CloudgwError


class UsageError(CloudgwError):
    exit_code = exitcodes.USAGE


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None
    ca: str | None
    source: str  # where the settings came from, for `cloudgw config show`


def config_path() -> Path:
    return Path(os.environ.get("CLOUDGW_CONFIG") or Path.home() / ".config" / "cloudgw" / "config.yaml")


def _from_file(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected url, token and ca keys")
    return {k: str(v) for k, v in data.items() if v is not None}


def _from_lab() -> dict[str, str]:
    from cloudgw.lab.location import DEFAULT_LAB, cli_config_path

    try:
        data = json.loads(cli_config_path(os.environ.get("CLOUDGW_LAB", DEFAULT_LAB)).read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items() if v is not None} if isinstance(data, dict) else {}


def resolve(url: str | None = None, token: str | None = None, ca: str | None = None) -> Connection:
    layers = [
        ("flags", {"url": url, "token": token, "ca": ca}),
        (
            "environment",
            {
                "url": os.environ.get("CLOUDGW_URL"),
                "token": os.environ.get("CLOUDGW_TOKEN"),
                "ca": os.environ.get("CLOUDGW_CA"),
            },
        ),
        (str(config_path()), _from_file(config_path())),
    ]
    chosen: dict[str, str | None] = {"url": None, "token": None, "ca": None}
    sources = []
    for name, values in layers:
        for key in chosen:
            if chosen[key] is None and values.get(key):
                chosen[key] = values[key]
                sources.append(name)
    if chosen["url"] is None:
        lab = _from_lab()
        if lab:
            chosen = {k: chosen[k] or lab.get(k) for k in chosen}
            sources.append("the running lab")
    if not chosen["url"]:
        raise UsageError(
            "no controller configured: pass --url, set CLOUDGW_URL, or write url/token/ca to "
            f"{config_path()} (`cloudgw config save --url ... --token ...`)"
        )
    return Connection(str(chosen["url"]), chosen["token"], chosen["ca"], ", ".join(dict.fromkeys(sources)))


def client(connection: Connection, timeout: float = 15.0) -> Client:
    if not connection.token:
        raise UsageError("no token configured: pass --token or set CLOUDGW_TOKEN")
    return Client(connection.url, token=connection.token, ca=connection.ca, timeout=timeout)


def save(connection: Connection, path: Path | None = None) -> Path:
    target = path or config_path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump({"url": connection.url, "token": connection.token, "ca": connection.ca}, handle)
    return target

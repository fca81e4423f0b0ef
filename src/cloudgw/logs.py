"""Structured logging: an event name followed by key=value fields.

    reconcile.applied gateway=gw-a rev=42 adds=3 dels=1

Values of fields whose name says they hold a secret are replaced by "<redacted>", so a key or token
passed by mistake never reaches a log line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_SECRET_WORDS = ("key", "token", "secret", "password", "credential")
_PUBLIC_OK = ("public_key", "pubkey")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    if any(lowered.endswith(ok) for ok in _PUBLIC_OK):
        return False
    return any(word in lowered for word in _SECRET_WORDS)


def _format_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c.isspace() for c in text) or "=" in text or '"' in text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def format_event(event: str, **fields: Any) -> str:
    parts = [event]
    for name, value in fields.items():
        shown = "<redacted>" if _is_secret(name) else _format_value(value)
        parts.append(f"{name}={shown}")
    return " ".join(parts)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, format_event(event, **fields))


def setup(level: str = "info") -> None:
    """Log to stderr, one line per event, with a timestamp; idempotent."""
    root = logging.getLogger()
    if any(getattr(h, "_cloudgw", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler._cloudgw = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())

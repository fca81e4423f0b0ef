"""Where the agent's desired-state document comes from. Each source returns the newest *valid*
document; an invalid one is reported and the previous one stays in force."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

from cloudgw.errors import InvalidInput
from cloudgw.logs import log_event
from cloudgw.model.document import GatewayDocument, parse_document

log = logging.getLogger("cloudgw.agent")


class DocumentSource(Protocol):
    def poll(self) -> GatewayDocument | None:
        """The newest valid document, or None if there is none yet."""
        ...

    @property
    def error(self) -> str | None: ...


class FileSource:
    """A YAML/JSON file on disk, re-read when its modification time or size changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._document: GatewayDocument | None = None
        self._error: str | None = None

    @property
    def error(self) -> str | None:
        return self._error

    def load(self) -> GatewayDocument:
        """Read now; raises InvalidInput or OSError."""
        return parse_document(self.path.read_text(), source=str(self.path))

    def poll(self) -> GatewayDocument | None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._error = f"{self.path}: no such file"
            return self._document
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return self._document
        self._stamp = stamp
        try:
            self._document = self.load()
            self._error = None
        except InvalidInput as exc:
            self._error = str(exc)
            log_event(
                log,
                "document.refused",
                logging.ERROR,
                source=self.path,
                problems="; ".join(str(p) for p in exc.problems),
            )
        except OSError as exc:
            self._error = f"{self.path}: {exc.strerror}"
        return self._document

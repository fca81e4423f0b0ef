"""Questions to gateways, answered through the channel they already hold open: a gateway's document
watch returns them (202, when it asked for them with ?questions=true) and the gateway posts each
answer back. No port opens on a gateway. Questions live in this process only and expire after a few
seconds: a gateway watching another replica does not hear them, and explain says it did not answer."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EXPIRE_S = 10.0


@dataclass
class Question:
    id: str
    gateway: str
    body: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    delivered: bool = False
    answer: dict[str, Any] | None = None
    took_ms: float | None = None  # from asking to the answer
    done: threading.Event = field(default_factory=threading.Event)


class Questions:
    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Question] = {}
        self.wake = wake  # wakes the waiting document watches (RevisionBus.nudge)

    def ask(self, gateway: str, body: dict[str, Any]) -> Question:
        question = Question(uuid.uuid4().hex, gateway, body)
        with self._lock:
            self._expire()
            self._open[question.id] = question
        self.wake()
        return question

    def take(self, gateway: str) -> list[Question]:
        """The gateway's questions not yet delivered (its watch returns them now)."""
        with self._lock:
            self._expire()
            found = [q for q in self._open.values() if q.gateway == gateway and not q.delivered]
            for question in found:
                question.delivered = True
            return found

    def pending(self, gateway: str) -> bool:
        with self._lock:
            return any(q.gateway == gateway and not q.delivered for q in self._open.values())

    def answer(self, gateway: str, question_id: str, answer: dict[str, Any]) -> bool:
        """False when there is no such question for this gateway (expired, or not its own)."""
        with self._lock:
            question = self._open.pop(question_id, None)
            if question is None or question.gateway != gateway:
                if question is not None:
                    self._open[question_id] = question  # another gateway's: leave it
                return False
        question.answer = answer
        question.took_ms = round((time.monotonic() - question.created) * 1000, 1)
        question.done.set()
        return True

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, q in self._open.items() if now - q.created > EXPIRE_S]:
            self._open.pop(key).done.set()

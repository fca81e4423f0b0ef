"""Requests the typed client would refuse to send: raw bodies, wrong types, odd paths (test-only)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx


def call(controller: Any, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    context = ssl.create_default_context(cafile=controller.ca)
    with httpx.Client(base_url=controller.url, verify=context, timeout=30) as client:
        return client.request(method, path, headers=headers, **kwargs)


def fields(response: httpx.Response) -> list[str]:
    return [problem["field"] for problem in response.json().get("problems", [])]

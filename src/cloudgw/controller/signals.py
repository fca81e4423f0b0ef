"""Reading a burst policy's demand signal. Every failure is a `SignalError` with a reason a person
can act on ("Prometheus answered 400: parse error at char 5"), never an exception that escapes and
never a number made up: the decision loop then holds and says why.

- prometheus: an instant query (`GET URL/api/v1/query?query=...`); the first sample of a vector,
  or a scalar, is the demand. No sample is an error, not zero.
- cpu: the same, with the busy share of the node exporter's CPUs over the last `window` seconds
  (one `instance`, or all of them averaged).
- http: the URL answers one number: plain text, a JSON number, or JSON {"value": n}.
- pool: the share of a pool's addresses in the mapping (effective endpoints), read from the
  controller's own snapshot: no I/O.
Answers are read up to a bound (64 KiB; a Prometheus vector up to 1 MiB), so a signal cannot make
the controller hold a large body.
"""

from __future__ import annotations

import bisect
import json
import math
from typing import Any

import httpx

from cloudgw.mapping.index import TopologyIndex
from cloudgw.model.burst import Signal
from cloudgw.model.topology import Topology

MAX_ANSWER = 64 * 1024
MAX_PROMETHEUS_ANSWER = 1024 * 1024


class SignalError(Exception):
    """The demand could not be read; the message says why."""


def cpu_query(instance: str | None, window: int = 60) -> str:
    selector = f'mode="idle",instance="{instance}"' if instance else 'mode="idle"'
    return f"1 - avg(rate(node_cpu_seconds_total{{{selector}}}[{window}s]))"


def read_signal(signal: Signal, topo: Topology, index: TopologyIndex, client: httpx.Client) -> float:
    if signal.kind == "pool":
        return pool_usage(signal.pool or "", topo, index)
    assert signal.url is not None  # rules.check_burst: every URL signal has one
    if signal.kind == "http":
        return _number(_get(client, signal.url, {}, signal.timeout, MAX_ANSWER), signal.url)
    query = signal.query if signal.kind == "prometheus" else cpu_query(signal.instance, signal.window)
    assert query is not None
    url = signal.url.rstrip("/") + "/api/v1/query"
    return _prometheus_value(_get(client, url, {"query": query}, signal.timeout, MAX_PROMETHEUS_ANSWER), query)


def pool_usage(name: str, topo: Topology, index: TopologyIndex) -> float:
    pool = topo.pools.get(name)
    if pool is None:
        raise SignalError(f"pool '{name}' no longer exists")
    effective = index.effective.get((pool.network, pool.site), [])
    addresses = [int(ip) for ip, _ in effective]  # sorted by address (TopologyIndex)
    first, last = int(pool.range.first), int(pool.range.last)
    used = bisect.bisect_right(addresses, last) - bisect.bisect_left(addresses, first)
    return used / pool.range.size


def _get(client: httpx.Client, url: str, params: dict[str, str], timeout: float, limit: int) -> bytes:
    try:
        with client.stream("GET", url, params=params, timeout=timeout) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise SignalError(f"{url} answered more than {limit // 1024} KiB")
            if response.status_code >= 400:
                detail = _error_detail(body)
                raise SignalError(f"{url} answered {response.status_code}{': ' + detail if detail else ''}")
            return body
    except httpx.TimeoutException:
        raise SignalError(f"{url} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise SignalError(f"cannot read {url}: {exc.__class__.__name__}: {exc}"[:300]) from None


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace").strip()
    return str(data.get("error", ""))[:200] if isinstance(data, dict) else ""


def _finite(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SignalError(f"{where} is not a number: {str(value)[:60]!r}") from None
    if not math.isfinite(number):
        raise SignalError(f"{where} is {number}, not a finite number")
    return number


def _number(body: bytes, url: str) -> float:
    text = body.decode(errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return _finite(text, f"the answer of {url}")
    if isinstance(data, dict):
        if "value" not in data:
            raise SignalError(f"the answer of {url} is a JSON object without 'value'")
        data = data["value"]
    if isinstance(data, bool) or not isinstance(data, int | float | str):
        raise SignalError(f"the answer of {url} is not a number")
    return _finite(data, f"the answer of {url}")


def _prometheus_value(body: bytes, query: str) -> float:
    try:
        data = json.loads(body)
        result = data["data"]
        kind, values = result["resultType"], result["result"]
    except (ValueError, KeyError, TypeError):
        raise SignalError("Prometheus answered something that is not a query result") from None
    if kind == "scalar":
        return _finite(values[1], f"the result of {query}")
    if kind != "vector":
        raise SignalError(f"the query {query} gives a {kind}; use one that gives a number (an instant vector)")
    if not values:
        raise SignalError(f"the query {query} returned no sample (nothing scraped yet, or a wrong name)")
    return _finite(values[0]["value"][1], f"the result of {query}")

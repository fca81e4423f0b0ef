"""HTTP plumbing and error mapping: a refused request becomes InvalidInput with the controller's
problems, an unreachable controller or a bad token one clear message, never a traceback."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cloudgw import exitcodes
from cloudgw.api.schemas import (
    Announce,
    AnnounceResult,
    Heartbeat,
    JoinRequest,
    JoinResponse,
    PathAnswer,
    QuestionList,
    RoleAnswer,
    RoleRequest,
)
from cloudgw.errors import CloudgwError, InvalidInput, NotFound, Problem

STREAM_TYPE = "application/x-ndjson"  # the streamed watch: one JSON object per line


class ApiError(CloudgwError):
    """The controller answered with an error. `status` is the HTTP status, `error` the kind the body
    names ("unauthorized", "forbidden", ...), `reason` the short word of an authentication refusal
    ("invalid", "expired", "used", ...): callers decide on these, never on the message text."""

    def __init__(self, status: int, message: str, error: str = "", reason: str = "") -> None:
        self.status = status
        self.error = error
        self.reason = reason
        super().__init__(message)


class Unreachable(CloudgwError):
    """No answer. `timed_out`: the request was sent and no answer came in time (it may have arrived)."""

    exit_code = exitcodes.FAILED

    def __init__(self, message: str, timed_out: bool = False) -> None:
        self.timed_out = timed_out
        super().__init__(message)


def _verify(ca: str | None, verify: bool) -> ssl.SSLContext | bool:
    if not verify:
        return False
    if ca:
        # this CA alone: given a CA, create_default_context loads no system store, so a certificate
        # from any public CA for the controller's name is refused (and a client is made in a tenth of
        # the time: the store's parse was three quarters of a simulated gateway's join)
        if "-----BEGIN" in ca:
            return ssl.create_default_context(cadata=ca)
        return ssl.create_default_context(cafile=ca)
    return True


class Client:
    def __init__(
        self, url: str, token: str | None = None, ca: str | None = None, verify: bool = True, timeout: float = 10.0
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["User-Agent"] = "cloudgw-client"
        self._http = httpx.Client(base_url=self.url, headers=headers, verify=_verify(ca, verify), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        try:
            kwargs: dict[str, Any] = {"json": json}
            given = {k: v for k, v in (params or {}).items() if v is not None}
            if given:  # httpx replaces a path's own query (a Link header's) with params, even empty ones
                kwargs["params"] = given
            if timeout is not None:
                kwargs["timeout"] = timeout
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _unreachable(self, exc: httpx.HTTPError) -> Unreachable:
        if isinstance(exc, httpx.ConnectError):
            return Unreachable(f"cannot reach the controller at {self.url}: {_reason(exc)}")
        if isinstance(exc, httpx.TimeoutException):
            return Unreachable(f"the controller at {self.url} did not answer in time", timed_out=True)
        return Unreachable(f"cannot talk to the controller at {self.url}: {_reason(exc)}")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    # resources ---------------------------------------------------------------------------------
    def pages(
        self, path: str, params: dict[str, Any] | None = None, limit: int = 1000, cursor: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every page of a list from `cursor` on, one request per page, as they are read (a
        caller that prints each page and drops it stays flat in memory)."""
        while True:
            page: dict[str, Any] = self.json("GET", path, params={**(params or {}), "limit": limit, "cursor": cursor})
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def list(self, kind: str, **params: Any) -> list[dict[str, Any]]:
        """The whole list (page by page): for lists that are small or filtered."""
        return [item for page in self.pages(f"/api/v1/{kind}", params) for item in page["items"]]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/api/v1/{kind}/{name}")
        return result

    def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.json("POST", f"/api/v1/{kind}", json=body)
        return result

    def update(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.json("PATCH", f"/api/v1/{kind}/{name}", json=body)
        return result

    def delete(self, kind: str, name: str, cascade: bool = False) -> None:
        self.request("DELETE", f"/api/v1/{kind}/{name}", params={"cascade": "true"} if cascade else None)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", "/api/v1/status")
        return result

    def endpoints(self, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", "/api/v1/endpoints", params=params)
        return result

    def resolve(self, network: str, ip: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", "/api/v1/mapping/resolve", params={"network": network, "ip": ip})
        return result

    def validate(self, gateway: str, source: str, network: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.json(
            "GET", "/api/v1/mapping/validate", params={"gateway": gateway, "source": source, "network": network}
        )
        return result

    def document(self, gateway: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/api/v1/gateways/{gateway}/document")
        return result


class AgentClient(Client):
    """The calls a gateway agent makes with its join token, then its own credential."""

    def join(self, public_key: str, endpoint: str | None = None, version: str | None = None) -> JoinResponse:
        body = JoinRequest(public_key=public_key, endpoint=endpoint, version=version)
        return JoinResponse.model_validate(self.json("POST", "/api/v1/agent/join", json=body.model_dump(mode="json")))

    def watch(self, after: int, wait: float = 25.0, questions: bool = False) -> dict[str, Any] | None:
        """The document if its revision is past `after`, else None after up to `wait` seconds. With
        `questions`, the controller's questions may come instead ({"questions": [...]}, HTTP 202)."""
        params: dict[str, Any] = {"after": after, "wait": wait}
        if questions:
            params["questions"] = "true"
        response = self.request("GET", "/api/v1/agent/document", params=params, timeout=wait + 10)
        return _watch_answer(response)

    def stream(self, after: int, wait: float = 25.0, questions: bool = False) -> Iterator[dict[str, Any] | None]:
        """The streamed watch, on one response: yields every document newer than `after` as it
        comes, {"questions": [...]} when asked, and None for a keep-alive (the controller sends one
        at once and after `wait` seconds of silence); ends when the controller closes the stream.
        A controller that does not stream answers as `watch` does: that one answer, then the end."""
        params: dict[str, Any] = {"after": after, "wait": wait, "stream": "true"}
        if questions:
            params["questions"] = "true"
        try:
            timeout = httpx.Timeout(10.0, read=wait + 10)  # a silent stream is a dead one
            with self._http.stream("GET", "/api/v1/agent/document", params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                if not response.headers.get("content-type", "").startswith(STREAM_TYPE):
                    response.read()
                    yield _watch_answer(response)
                    return
                for line in response.iter_lines():
                    if not line.strip():
                        yield None
                        continue
                    try:
                        data = json.loads(line)
                    except ValueError:
                        raise Unreachable(f"the controller at {self.url} sent a line that is not JSON") from None
                    if not isinstance(data, dict):
                        raise Unreachable(f"the controller at {self.url} sent a line that is not an object")
                    if "questions" in data:
                        data = {"questions": QuestionList.model_validate(data).model_dump(mode="json")["questions"]}
                    yield data
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def answer(self, question_id: str, answer: dict[str, Any]) -> None:
        body = PathAnswer.model_validate(answer)
        self.request("POST", f"/api/v1/agent/answers/{question_id}", json=body.model_dump(mode="json"))

    def announce(self, network: str, endpoints: list[dict[str, Any]]) -> AnnounceResult:
        body = Announce.model_validate({"network": network, "endpoints": endpoints})
        answer = self.json("PUT", "/api/v1/agent/endpoints", json=body.model_dump(mode="json", exclude_none=True))
        return AnnounceResult.model_validate(answer)

    def request_role(self, role: str, epoch: int, reason: str) -> RoleAnswer:
        """An HA pair's lease: ask for, renew or leave the site's active role."""
        body = RoleRequest(role=role, epoch=epoch, reason=reason[:200])  # type: ignore[arg-type]
        return RoleAnswer.model_validate(self.json("POST", "/api/v1/agent/role", json=body.model_dump(mode="json")))

    def heartbeat(self, status: Heartbeat | dict[str, Any]) -> None:
        """A typed heartbeat (a dict is checked against the schema first: a bad one never leaves)."""
        body = status if isinstance(status, Heartbeat) else Heartbeat.model_validate(status)
        self.request("POST", "/api/v1/agent/heartbeat", json=body.model_dump(mode="json"))


def ca_fingerprint(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def fetch_ca(url: str, fingerprint: str, timeout: float = 10.0) -> str:
    """First contact: read the controller's CA without trusting it, and accept it only if it is the
    one the join token names. Everything after that verifies the controller against this CA."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/api/v1/agent/ca", verify=False, timeout=timeout)
    except httpx.HTTPError as exc:
        raise Unreachable(f"cannot reach the controller at {url}: {_reason(exc)}") from None
    if response.status_code != 200:
        raise ApiError(
            response.status_code, f"the controller at {url} has no CA to offer (HTTP {response.status_code})"
        )
    pem = response.text
    try:
        seen = ca_fingerprint(pem)
    except ValueError:
        raise ApiError(502, f"the controller at {url} sent something that is not a certificate") from None
    if seen != fingerprint:
        raise ApiError(
            495,
            f"the controller's CA (sha256 {seen[:16]}…) does not match the join token's "
            f"({fingerprint[:16]}…): refusing to trust it",
        )
    return pem


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "its TLS certificate is not signed by the CA we trust (wrong --ca?)"
    return text.split("\n")[0][:200]


def _watch_answer(response: httpx.Response) -> dict[str, Any] | None:
    """A long-poll's answer: the document (200), nothing new (204), or questions (202)."""
    if response.status_code == 204:
        return None
    if response.status_code == 202:
        return {"questions": QuestionList.model_validate(response.json()).model_dump(mode="json")["questions"]}
    result: dict[str, Any] = response.json()
    return result


def _error(response: httpx.Response) -> CloudgwError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    status = response.status_code
    problems = [
        Problem(p.get("field", ""), p.get("message", ""), p.get("fix", ""), status == 409)
        for p in body.get("problems", [])
        if isinstance(p, dict)
    ]
    if status in (401, 403, 429):
        what = {401: "refused the token", 403: "does not allow this with this token"}.get(status, "is throttling us")
        return ApiError(
            status,
            f"the controller {what}: {body.get('message', response.reason_phrase)}",
            error=str(body.get("error", "")),
            reason=str(body.get("reason", "")),
        )
    if status == 404 and problems:
        return NotFound(problems[0].field, str(body.get("name", "")))
    if problems:
        return InvalidInput(problems, what="request")
    return ApiError(status, f"the controller answered HTTP {status}: {body.get('message', response.text[:200])}")


def read_text(path: str | Path) -> str:
    return Path(path).read_text()

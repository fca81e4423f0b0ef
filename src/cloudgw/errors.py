"""The project's exceptions. Every layer raises these; the CLI and the API turn them into exit codes
and 4xx bodies. A refusal always names the field and, where there is one, the fix."""

from __future__ import annotations

from dataclasses import dataclass

from cloudgw import exitcodes


@dataclass(frozen=True)
class Problem:
    """One reason an input was refused."""

    field: str  # dotted path into the input, e.g. "networks[0].pools[1].range"
    message: str  # what is wrong, in the user's terms
    fix: str = ""  # what to change; empty when the message says it already
    conflict: bool = False  # clashes with what exists (HTTP 409) rather than being malformed (422)

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"{text} (fix: {self.fix})" if self.fix else text

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "fix": self.fix}


class CloudgwError(Exception):
    """Base of every error cloudgw raises on purpose."""

    exit_code = exitcodes.FAILED


class InvalidInput(CloudgwError):
    """Input refused before anything changed."""

    exit_code = exitcodes.CONFIG

    def __init__(self, problems: list[Problem], what: str = "input") -> None:
        self.problems = list(problems)
        self.what = what
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{what} refused:\n{lines}")


class DataplaneError(CloudgwError):
    """The kernel (netlink, nftables, WireGuard) refused or failed an operation."""

    exit_code = exitcodes.FAILED


class PartialApply(DataplaneError):
    """Everything was applied except some peers, which the kernel or WireGuard refused; the rest of
    the data plane works. `skipped` maps a peer's public key to why."""

    def __init__(self, skipped: dict[str, str]) -> None:
        self.skipped = dict(skipped)
        super().__init__(
            "; ".join(f"{key if ' ' in key else f'peer {key[:8]}…'}: {why}" for key, why in self.skipped.items())
        )


class MissingDependency(CloudgwError):
    """A program or kernel feature cloudgw needs is not on this machine."""

    exit_code = exitcodes.UNAVAILABLE


class LabError(CloudgwError):
    """The lab could not be built, inspected or removed."""


class NotFound(CloudgwError):
    """A named resource does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"no {kind} '{name}'")


class Unauthorized(CloudgwError):
    """No valid credential (HTTP 401), a valid one without the right (HTTP 403), or an address that
    failed too often (HTTP 429). `reason` is a short word for logs and metrics, never the secret."""

    def __init__(self, message: str, status: int = 401, reason: str = "forbidden") -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)

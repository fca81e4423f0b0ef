"""Token text: `cgw_<id>_<secret>`, and join tokens `cgwj_<id>_<secret>_<ca-sha256>` which also carry
the fingerprint of the controller's CA, so an agent can pin it on first contact (like kubeadm's
discovery token). Only sha256(secret) is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

TOKEN_RE = re.compile(r"^cgw(?P<join>j?)_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9]{32})(?:_(?P<ca>[0-9a-f]{64}))?$")
ROLES = ("admin", "readonly", "join", "gateway")


@dataclass(frozen=True)
class ParsedToken:
    id: str
    secret: str
    ca_fingerprint: str | None  # join tokens only


def new_secret() -> tuple[str, str]:
    token_id = secrets.token_hex(6)
    secret = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(32))
    return token_id, secret


def format_token(token_id: str, secret: str, ca_fingerprint: str | None = None) -> str:
    if ca_fingerprint:
        return f"cgwj_{token_id}_{secret}_{ca_fingerprint}"
    return f"cgw_{token_id}_{secret}"


def parse_token(text: str) -> ParsedToken | None:
    match = TOKEN_RE.match(text.strip())
    if not match:
        return None
    return ParsedToken(match["id"], match["secret"], match["ca"])


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)

"""WireGuard key text: 32 bytes, base64. Validation and conversion only (generation needs entropy and
lives with the agent, which is the only place a private key exists)."""

from __future__ import annotations

import base64
import binascii

KEY_BYTES = 32


def check_key(text: str) -> str:
    """Return the key unchanged if it is 32 bytes of standard base64; else raise ValueError."""
    raw = str(text).strip()
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "not a WireGuard key: expected 44 characters of base64 (as printed by 'cloudgw agent init' or 'wg pubkey')"
        ) from None
    if len(decoded) != KEY_BYTES:
        raise ValueError(f"not a WireGuard key: decodes to {len(decoded)} bytes, expected {KEY_BYTES}")
    return raw


def key_to_hex(text: str) -> str:
    """WireGuard's UAPI speaks hex, the rest of the world base64."""
    return base64.b64decode(check_key(text)).hex()


def hex_to_key(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()

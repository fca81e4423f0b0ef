"""The gateway's WireGuard key pair. The private key is generated here, stored 0600, and never leaves
this machine: only the public key is ever printed, logged or sent."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloudgw.errors import CloudgwError
from cloudgw.files import private_dir
from cloudgw.model.keys import check_key

KEY_FILE = "private.key"


def public_key_of(private_key: str) -> str:
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(check_key(private_key)))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def generate_private_key() -> str:
    raw = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def load_or_create(state_dir: str | Path) -> str:
    """Return the private key in state_dir, creating it (mode 0600) on first use."""
    directory = private_dir(state_dir)
    path = directory / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)  # tighten rather than refuse: the key is still only ours
        text = path.read_text().strip()
        try:
            return check_key(text)
        except ValueError as exc:
            raise CloudgwError(f"{path}: {exc}; move it away to generate a new key") from None
    with os.fdopen(fd, "w") as handle:
        key = generate_private_key()
        handle.write(key + "\n")
    return key

"""Encryption at rest for signing secrets and custom header values (AES-256-GCM).

The master key is 32 bytes, given base64-encoded in ``HOOKRUNTIME_MASTER_KEY``.
On the embedded SQLite default with no key set, one is generated into a file beside
the database (mode 0600), so a copied database alone does not reveal secrets;
PostgreSQL deployments must set the variable.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigurationError, StoreError

__all__ = ["SecretBox", "generate_master_key", "load_key_file"]

log = logging.getLogger("hookruntime.store")
_VERSION = "v1:"


def generate_master_key() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class SecretBox:
    """Seals and opens short strings; the ciphertext is ``v1:<base64(nonce ‖ sealed)>``."""

    def __init__(self, master_key: str) -> None:
        try:
            key = base64.b64decode(master_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError("HOOKRUNTIME_MASTER_KEY is not base64") from exc
        if len(key) != 32:
            raise ConfigurationError(
                f"HOOKRUNTIME_MASTER_KEY must be 32 bytes base64-encoded, not {len(key)} bytes"
            )
        self._aead = AESGCM(key)

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return _VERSION + base64.b64encode(nonce + sealed).decode()

    def open(self, ciphertext: str) -> str:
        if not ciphertext.startswith(_VERSION):
            raise StoreError("stored secret has an unknown format")
        raw = base64.b64decode(ciphertext[len(_VERSION) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except InvalidTag as exc:
            raise StoreError(
                "cannot decrypt a stored secret: HOOKRUNTIME_MASTER_KEY differs from the one "
                "that encrypted it"
            ) from exc


def load_key_file(path: Path) -> str:
    """The master key kept in ``path``, created (mode 0600) on first use."""
    try:
        if path.exists():
            return path.read_text().strip()
        key = generate_master_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read or create the master key file {str(path)!r} ({exc.strerror}); "
            "set HOOKRUNTIME_MASTER_KEY instead"
        ) from exc
    log.warning(
        "generated a master key in %s; set HOOKRUNTIME_MASTER_KEY to manage it yourself", path
    )
    return key

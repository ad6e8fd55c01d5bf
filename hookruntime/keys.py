"""API keys: created for an org with scopes, shown once, stored as a SHA-256 hash.

A key reads ``hrk_<prefix>_<secret>``. The prefix is public and finds the row; the
whole key is hashed, and only the hash is stored. Keys are high-entropy random
strings, so a fast hash is the right one (a slow KDF protects guessable passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import insert, select, update

from .arguments import check_ids
from .catalog import Catalog
from .errors import FieldError, NotFoundError, ValidationError
from .ids import new_id
from .store.engine import Database
from .store.models import API_KEYS
from .store.orgs import ensure_org, valid_org

__all__ = ["KEY_SCOPES", "ApiKeyInfo", "CreatedKey", "Keys"]

#: Scopes of the runtime itself; topics add their own (see ``Topic.scopes``).
KEY_SCOPES = ("webhooks:manage", "events:emit", "hooks:call", "deliveries:read")
_KEY = re.compile(r"^hrk_([a-z0-9]{12})_([A-Za-z0-9_-]{20,})$")


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    org: str
    scopes: tuple[str, ...]
    prefix: str
    name: str | None
    created_at: float
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "scopes": list(self.scopes)}


@dataclass(frozen=True)
class CreatedKey(ApiKeyInfo):
    """A new key; ``key`` is the plaintext, available only here."""

    key: str = ""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(row: Mapping[Any, Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row["id"],
        org=row["org_id"],
        scopes=tuple(row["scopes"]),
        prefix=row["prefix"],
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class Keys:
    """``runtime.keys``: create, authenticate, list and revoke API keys."""

    def __init__(self, database: Database, catalog: Catalog) -> None:
        self._db = database
        self._catalog = catalog

    def known_scopes(self) -> set[str]:
        return set(KEY_SCOPES) | self._catalog.scopes()

    async def create(
        self, *, org: str, scopes: Iterable[str], name: str | None = None
    ) -> CreatedKey:
        errors = []
        if not valid_org(org):
            errors.append(FieldError("org", f"org {org!r} must be 1 to 64 letters, digits, . _ -"))
        wanted: tuple[str, ...] = ()
        if isinstance(scopes, str | bytes) or not isinstance(scopes, Iterable):
            errors.append(FieldError("scopes", "must be a list of scope names"))
        else:
            wanted = tuple(dict.fromkeys(scopes))
            known = self.known_scopes()
            errors.extend(
                FieldError("scopes", f"unknown scope {s!r}; known: {', '.join(sorted(known))}")
                for s in wanted
                if s not in known
            )
            if not wanted:
                errors.append(FieldError("scopes", "give at least one scope"))
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            errors.append(FieldError("name", "a string of at most 200 characters"))
        if errors:
            raise ValidationError(errors)
        prefix = secrets.token_hex(6)
        key = f"hrk_{prefix}_{secrets.token_urlsafe(32)}"
        row = {
            "id": new_id("key"),
            "org_id": org,
            "prefix": prefix,
            "hash": _hash(key),
            "scopes": list(wanted),
            "name": name,
            "created_at": time.time(),
            "revoked_at": None,
        }
        async with self._db.writing(), self._db.session() as session, session.begin():
            await ensure_org(session, org)
            await session.execute(insert(API_KEYS).values(row))
        return CreatedKey(**asdict(_info(row)), key=key)

    async def authenticate(self, key: str) -> ApiKeyInfo | None:
        """The key's record when ``key`` is valid and not revoked, else None."""
        if not isinstance(key, str):
            return None
        match = _KEY.match(key.strip())
        if match is None:
            return None
        async with self._db.session() as session:
            query = select(API_KEYS).where(API_KEYS.c.prefix == match.group(1))
            row = (await session.execute(query)).mappings().one_or_none()
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["hash"], _hash(key.strip())):
            return None
        return _info(row)

    async def list(self, *, org: str) -> list[ApiKeyInfo]:
        check_ids(org)
        query = select(API_KEYS).where(API_KEYS.c.org_id == org).order_by(API_KEYS.c.id)
        async with self._db.session() as session:
            return [_info(row) for row in (await session.execute(query)).mappings()]

    async def revoke(self, key_id: str, *, org: str) -> None:
        check_ids(org, key_id=key_id)
        table = API_KEYS
        async with self._db.writing(), self._db.session() as session, session.begin():
            result = await session.execute(
                update(table)
                .where(table.c.id == key_id, table.c.org_id == org, table.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFoundError(f"no active API key {key_id!r} in org {org!r}")

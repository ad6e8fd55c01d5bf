"""Orgs come into being on first use; every query is scoped by one."""

from __future__ import annotations

import re
import time

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from . import models

__all__ = ["ensure_org", "valid_org"]

_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def valid_org(org: object) -> bool:
    # fullmatch: "$" would let a trailing newline through.
    return isinstance(org, str) and _ORG.fullmatch(org) is not None


async def ensure_org(session: AsyncSession, org: str) -> None:
    """Create the org row unless it exists, inside the caller's transaction."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(models.ORGS).values(id=org, created_at=time.time()).on_conflict_do_nothing()
    )

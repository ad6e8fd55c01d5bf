"""Repository functions for registrations: read one in its org, compare-and-set on ``rev``,
and the topic index rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import ConflictError, NotFoundError
from .models import REGISTRATION_TOPICS as _TOPICS
from .models import REGISTRATIONS as _REGISTRATIONS

__all__ = ["check_rev", "compare_and_set", "load", "write_topics"]


async def load(session: AsyncSession, registration_id: str, org: str) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                select(_REGISTRATIONS).where(
                    _REGISTRATIONS.c.id == registration_id, _REGISTRATIONS.c.org_id == org
                )
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(f"no registration {registration_id!r} in org {org!r}")
    return dict(row)


def check_rev(current: Mapping[str, Any], rev: str) -> None:
    if rev != current["rev"]:
        raise ConflictError(
            f"rev {rev!r} is stale: registration {current['id']!r} is at rev "
            f"{current['rev']!r}; read it again and retry"
        )


async def compare_and_set(
    session: AsyncSession, registration_id: str, org: str, rev: str, values: dict[str, Any]
) -> None:
    result = await session.execute(
        update(_REGISTRATIONS)
        .where(
            _REGISTRATIONS.c.id == registration_id,
            _REGISTRATIONS.c.org_id == org,
            _REGISTRATIONS.c.rev == rev,
        )
        .values(values)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise ConflictError(f"registration {registration_id!r} changed meanwhile; read it again")


async def write_topics(
    session: AsyncSession, registration_id: str, org: str, topics: Iterable[str]
) -> None:
    await session.execute(
        insert(_TOPICS),
        [{"registration_id": registration_id, "topic": t, "org_id": org} for t in topics],
    )

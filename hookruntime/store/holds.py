"""Holding and resuming a registration's waiting deliveries: statements that both the
control plane (disable, enable) and the queue (automatic disable) run, so they live with
the store rather than in either."""

from __future__ import annotations

from sqlalchemy import Update, update

from .models import DELIVERIES

__all__ = ["hold", "resume"]


def hold(registration_id: str) -> Update:
    """Take a registration's waiting deliveries out of the claim's scan while it is
    inactive (left in it, every claim would walk them all)."""
    return (
        update(DELIVERIES)
        .where(
            DELIVERIES.c.registration_id == registration_id,
            DELIVERIES.c.status.in_(("pending", "failed")),
        )
        .values(next_at=None)
    )


def resume(registration_id: str, now: float) -> Update:
    """Make a re-enabled registration's held deliveries due at once."""
    return (
        update(DELIVERIES)
        .where(
            DELIVERIES.c.registration_id == registration_id,
            DELIVERIES.c.status.in_(("pending", "failed")),
            DELIVERIES.c.next_at.is_(None),
        )
        .values(next_at=now, updated_at=now)
    )

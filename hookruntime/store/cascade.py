"""Deleting deliveries' attempts along with the deliveries. The attempt log keeps no
foreign key to its delivery: the key's check cost every recorded attempt a lookup and a
lock on its delivery's row (see the README's Performance section). So whoever deletes
deliveries (a deleted registration, pruning) deletes their attempts first, through
these statements, in the same transaction."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Delete, Select, delete, select

from .models import ATTEMPTS, DELIVERIES

__all__ = ["attempts_of", "lock_deliveries"]


def lock_deliveries(where: ColumnElement[bool]) -> Select[tuple[str]]:
    """Lock the deliveries about to be deleted (PostgreSQL; SQLite has one writer):
    a result being recorded for one of them meanwhile is then either committed before
    :func:`attempts_of` runs, and deleted by it, or finds its delivery gone and is
    dropped (:mod:`hookruntime.queue.records`)."""
    return select(DELIVERIES.c.id).where(where).with_for_update()


def attempts_of(where: ColumnElement[bool]) -> Delete:
    """Delete the attempts of the deliveries matching ``where``."""
    return delete(ATTEMPTS).where(ATTEMPTS.c.delivery_id.in_(select(DELIVERIES.c.id).where(where)))

"""What the database's failures mean, as :class:`~hookruntime.errors.StoreError`\\ s.

SQLAlchemy, its drivers (asyncpg, sqlite3) and the socket layer each raise their own
errors; :func:`store_errors` is the one place that turns them into ours, naming the
database URL without its password, with the original kept as ``__cause__``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, SQLAlchemyError

from ..errors import ConflictError, StoreError, StoreLocked, StoreUnavailable

__all__ = ["DRIVER_ERRORS", "public_url", "store_error", "store_errors"]

#: Everything a database access can raise that is not already ours.
DRIVER_ERRORS = (
    SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
)

# SQLSTATE classes that mean "no usable connection": connection exceptions, refused
# logins, unknown database, too many connections, a server shutting down or starting up.
_UNAVAILABLE_STATES = ("08", "28", "3D", "53", "57P")
_SQLITE_LOCKED = ("database is locked", "database table is locked", "database is busy")


def public_url(url: URL) -> str:
    """The URL as a person may read it: the plain scheme, no password."""
    plain = url.set(drivername=url.get_backend_name())
    return plain.render_as_string(hide_password=True)


def store_error(exc: BaseException, url: URL) -> StoreError | ConflictError:
    """Our error for ``exc``, one of :data:`DRIVER_ERRORS` raised by the database at ``url``."""
    where = public_url(url)
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    detail = _first_line(orig)
    if isinstance(exc, IntegrityError):
        return ConflictError(f"the write conflicts with existing data: {detail}")
    if isinstance(exc, OSError):
        return StoreUnavailable(f"cannot reach the database {where}: {detail}")
    if any(marker in detail for marker in _SQLITE_LOCKED):
        return StoreLocked(
            f"the database {where} stayed locked by another process longer than the busy "
            f"wait: {detail}"
        )
    state = str(getattr(orig, "sqlstate", None) or "")
    if (
        (isinstance(exc, DBAPIError) and exc.connection_invalidated)
        or isinstance(exc, InterfaceError | asyncpg.InterfaceError)
        or isinstance(orig, OSError | asyncpg.PostgresConnectionError)
        or state.startswith(_UNAVAILABLE_STATES)
        or "unable to open database file" in detail
    ):
        return StoreUnavailable(f"cannot use the database {where}: {detail}")
    return StoreError(f"the database {where} failed: {detail}")


@contextmanager
def store_errors(url: URL, *, integrity: bool = True) -> Iterator[None]:
    """Raise driver, SQLAlchemy and socket errors from the block as our own.

    ``integrity=False`` lets an :class:`~sqlalchemy.exc.IntegrityError` through for a
    caller that knows what the constraint means (the outbox's idempotency key)."""
    try:
        yield
    except IntegrityError as exc:
        if not integrity:
            raise
        raise store_error(exc, url) from exc
    except DRIVER_ERRORS as exc:
        raise store_error(exc, url) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]

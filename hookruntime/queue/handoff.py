"""What an ``emit`` inside a host's session hands to this process's worker, and when:
only on the outermost commit, and never what a rollback undid.

SQLAlchemy fires ``after_commit`` for a SAVEPOINT's release as well as for the real
commit, and a rollback removes no listener, so a listener per emit would hand over
too early, or hand over rows that no longer exist. Instead each emit is filed under
the session transaction it ran in (the innermost SAVEPOINT, else the root). A
released SAVEPOINT passes its emits on to the transaction around it; the root's
commit hands them over; whatever a transaction still holds when it ends was rolled
back (or closed uncommitted) and is dropped.

A host's plain ``Connection`` (:func:`wake_on_commit`) needs less: its ``commit``
event fires only for the outermost commit (a released SAVEPOINT is another event),
and what it hands over is a wake-up, which costs nothing when it finds no work.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, SessionTransaction

from .claim import Claimed

__all__ = ["CommitHandOff", "wake_on_commit"]

#: Called once per outermost commit with the deliveries its emits wrote already claimed.
OnCommit = Callable[[list[Claimed]], None]


class CommitHandOff:
    """Pending hand-offs, per session and per transaction, for one outbox."""

    def __init__(self, on_commit: OnCommit) -> None:
        self._on_commit = on_commit

    def add(self, session: Session, direct: list[Claimed]) -> None:
        """File one emit's deliveries under the transaction it just wrote in."""
        transaction = _current(session)
        if transaction is None:  # not in a transaction: nothing was written
            return
        if not event.contains(session, "after_commit", self._after_commit):
            event.listen(session, "after_commit", self._after_commit)
            event.listen(session, "after_transaction_end", self._after_end)
        # Kept in the session's own ``info`` so that it goes when the session goes.
        pending: dict[SessionTransaction, list[Claimed]] = session.info.setdefault(self, {})
        # Present even when empty: the commit must still wake the idle workers.
        pending.setdefault(transaction, []).extend(direct)

    def _held(self, session: Session) -> dict[SessionTransaction, list[Claimed]] | None:
        held: dict[SessionTransaction, list[Claimed]] | None = session.info.get(self)
        return held

    def _after_commit(self, session: Session) -> None:
        # Dispatched while the committing transaction is still the session's current one.
        transaction = _current(session)
        pending = self._held(session)
        if transaction is None or pending is None or transaction not in pending:
            return
        direct = pending.pop(transaction)
        parent = transaction.parent
        if transaction.nested and parent is not None:
            pending.setdefault(parent, []).extend(direct)
        else:
            self._on_commit(direct)

    def _after_end(self, session: Session, transaction: SessionTransaction) -> None:
        pending = self._held(session)
        if pending is not None:
            pending.pop(transaction, None)  # still here: not committed, so never sent


def _current(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


def wake_on_commit(connection: Connection, listener: Callable[[Connection], None]) -> None:
    """Have ``listener`` called after each commit of ``connection``, once however many
    emits ran in it: pass the same ``listener`` object every time."""
    if not event.contains(connection, "commit", listener):
        event.listen(connection, "commit", listener)

"""Waking on a host connection's commit: once per commit, never on a savepoint or a rollback."""

from __future__ import annotations

from sqlalchemy import create_engine

from hookruntime.queue.handoff import wake_on_commit


def test_a_connection_wakes_once_per_commit_not_on_a_savepoint_or_a_rollback() -> None:
    engine = create_engine("sqlite://")
    wakes: list[object] = []

    def listener(conn: object) -> None:
        wakes.append(conn)

    with engine.connect() as conn:
        for _ in range(3):  # three emits in one transaction
            wake_on_commit(conn, listener)
        conn.begin()
        conn.begin_nested().commit()
        assert wakes == []
        conn.commit()
        assert len(wakes) == 1
        conn.begin()
        conn.rollback()
        assert len(wakes) == 1
    engine.dispose()

"""Compiled hot-path statements take rows of a NamedTuple whose fields name the columns."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, null, select

from hookruntime.store.compiled import inserting, updating

_META = MetaData()
_T = Table(
    "t",
    _META,
    Column("id", String, primary_key=True),
    Column("name", String),
    Column("score", Float),
    Column("note", String),
)


class _New(NamedTuple):
    id: str
    name: str
    score: float


class _Shuffled(NamedTuple):
    score: float
    id: str


class _Rename(NamedTuple):
    name: str
    id: str


class _KeyFirst(NamedTuple):
    id: str
    name: str


def test_a_compiled_insert_puts_each_field_in_the_column_it_names() -> None:
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    with engine.begin() as conn:
        assert inserting(_T, _New).run(conn, [_New("a", "first", 0.5)]) == 1
        changed = updating(_T, _Rename, ("id",), {"note": null()}).run(conn, [_Rename("x", "a")])
        assert changed == 1
        assert conn.execute(select(_T)).all() == [("a", "x", 0.5, None)]


def test_an_update_row_must_end_with_its_keys() -> None:
    with pytest.raises(TypeError, match="must end with its keys"):
        updating(_T, _KeyFirst, ("id",), {})


def test_an_insert_row_must_list_its_columns_in_the_tables_order() -> None:
    with pytest.raises(TypeError, match="in t's order"):
        inserting(_T, _Shuffled)

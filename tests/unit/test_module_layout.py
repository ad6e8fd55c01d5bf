"""The package's shape: one class per name, table classes named for their rows, small
modules, and public import paths that survive a module being split."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import hookruntime
from hookruntime.store.models import Stored

PACKAGE = Path(hookruntime.__file__).parent


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_no_two_modules_define_a_public_class_of_the_same_name() -> None:
    defined: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                defined[node.name].append(str(path.relative_to(PACKAGE)))
    assert {name: where for name, where in defined.items() if len(where) > 1} == {}


def test_every_table_class_is_named_for_its_row() -> None:
    tables = [mapper.class_ for mapper in Stored._sa_registry.mappers]
    assert len(tables) == len(Stored.metadata.tables)
    assert [t.__name__ for t in tables if not t.__name__.endswith("Row")] == []
    assert {t.__name__ for t in tables}.isdisjoint(hookruntime.__all__)


def test_no_module_passes_400_lines() -> None:
    lines = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in _modules()
    }
    assert {name: n for name, n in lines.items() if n > 400} == {}


def test_the_testing_module_keeps_every_public_name_of_the_loopback_receiver() -> None:
    from hookruntime import loopback, testing

    assert sorted(testing.__all__) == [
        "Delivered",
        "DrainTimeout",
        "LoopbackReceiver",
        "Received",
        "Reply",
        "assert_delivered",
        "drain",
        "eventually",
        "read_request",
        "signed_request",
    ]
    for name in loopback.__all__:
        assert getattr(testing, name) is getattr(loopback, name)

"""JSON Merge Patch (RFC 7386), and how several receivers' patches combine.

A merge patch writes *leaf paths*: every key whose value is not a non-empty object
(``null`` deletes). Two patches conflict where one writes a path equal to, inside
or above a path the other writes; the patch earlier in registration order keeps
it. A reserved path is touched in the same sense.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Conflict", "apply_merge_patch", "combine", "leaf_paths", "touches"]

Path = tuple[str, ...]


@dataclass(frozen=True)
class Conflict:
    """``path`` was written by ``kept_by`` and, later in order, by ``dropped_from``."""

    path: str
    kept_by: str
    dropped_from: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "kept_by": self.kept_by, "dropped_from": self.dropped_from}


def pointer(path: Path) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


def parse_pointer(text: str) -> Path:
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in text.split("/")[1:])


def leaf_paths(patch: Mapping[str, Any], prefix: Path = ()) -> list[Path]:
    paths: list[Path] = []
    for key, value in patch.items():
        here = (*prefix, key)
        if isinstance(value, dict) and value:
            paths.extend(leaf_paths(value, here))
        else:
            paths.append(here)
    return paths


def _related(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def touches(patch: Mapping[str, Any], reserved: Iterable[str]) -> str | None:
    """The first reserved pointer ``patch`` writes at, inside or above, or None."""
    paths = leaf_paths(patch)
    for text in reserved:
        guarded = parse_pointer(text)
        if any(_related(path, guarded) for path in paths):
            return text
    return None


def _without(patch: Mapping[str, Any], drop: Path) -> dict[str, Any]:
    head, rest = drop[0], drop[1:]
    result = dict(patch)
    if not rest:
        result.pop(head, None)
    elif isinstance(result.get(head), dict):
        inner = _without(result[head], rest)
        if inner:
            result[head] = inner
        else:
            result.pop(head)
    return result


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and value:
            existing = target.get(key)
            if not isinstance(existing, dict):
                existing = target[key] = {}
            _merge(existing, value)
        else:
            target[key] = copy.deepcopy(value)


def combine(
    patches: Iterable[tuple[str, Mapping[str, Any]]],
) -> tuple[dict[str, Any], list[Conflict]]:
    """Merge ``(owner, patch)`` pairs given in registration order into one patch.

    A later patch's leaves that collide with an earlier one's are dropped and reported.
    """
    merged: dict[str, Any] = {}
    written: list[tuple[Path, str]] = []
    conflicts: list[Conflict] = []
    for owner, patch in patches:
        kept = dict(patch)
        mine: list[Path] = []
        for path in leaf_paths(patch):
            clash = next((who for seen, who in written if _related(seen, path)), None)
            if clash is None:
                mine.append(path)
            else:
                conflicts.append(Conflict(pointer(path), clash, owner))
                kept = _without(kept, path)
        _merge(merged, kept)
        written.extend((path, owner) for path in mine)
    return merged, conflicts


def apply_merge_patch(document: Any, patch: Any) -> Any:
    """RFC 7386: return ``document`` with ``patch`` applied; the input is not changed."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result

"""Plugins: packages that declare topics, found through the ``hookruntime.plugins`` entry points.

A plugin is any object with a ``name`` and a sequence of ``topics``. The built-in
plugins are installed through the same entry points a third party uses::

    [project.entry-points."hookruntime.plugins"]
    crm = "crm_hooks:plugin"

Each plugin is validated as it loads; a broken one raises :class:`PluginError`
naming it, at start-up, not at first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from .catalog import Catalog, Topic
from .errors import PluginError
from .operational import OPERATIONAL_TOPICS

__all__ = ["ENTRY_POINT_GROUP", "Plugin", "SimplePlugin", "build_catalog", "discover"]

ENTRY_POINT_GROUP = "hookruntime.plugins"
CORE = "hookruntime"


@runtime_checkable
class Plugin(Protocol):
    """What a plugin provides: its name and the topics it declares."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> Sequence[Topic]: ...


@dataclass(frozen=True)
class SimplePlugin:
    """The plain way to declare a plugin: ``plugin = SimplePlugin("crm", [Topic(...), ...])``."""

    name: str
    topics: Sequence[Topic]


def discover() -> list[Plugin]:
    """Load every plugin installed under the entry-point group, in name order."""
    plugins: list[Plugin] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        try:
            loaded = ep.load()
        except Exception as exc:
            raise PluginError(ep.name, f"cannot import {ep.value!r}: {exc!r}") from exc
        if not isinstance(loaded, Plugin):
            raise PluginError(ep.name, f"{ep.value!r} has no 'name' and 'topics'")
        if loaded.name != ep.name:
            raise PluginError(
                ep.name, f"entry point names it {ep.name!r}, plugin says {loaded.name!r}"
            )
        plugins.append(loaded)
    return plugins


def build_catalog(plugins: Iterable[Plugin], profiles: Iterable[str]) -> Catalog:
    """The catalog of the core's operational topics plus every plugin's, each validated."""
    names = list(profiles)
    catalog = Catalog()
    catalog.add(CORE, OPERATIONAL_TOPICS, names)
    for plugin in plugins:
        try:
            topics = list(plugin.topics)
        except Exception as exc:
            raise PluginError(plugin.name, f"cannot list its topics: {exc!r}") from exc
        catalog.add(plugin.name, topics, names)
    return catalog

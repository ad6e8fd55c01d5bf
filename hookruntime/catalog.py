"""Topics and the catalog that holds them.

A :class:`Topic` is declared by a plugin and validated when the plugin loads, so a
bad schema or a sample that does not fit its own schema fails at start-up with the
plugin's name rather than at first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import jsonschema_rs

from .errors import FieldError, PluginError, UnknownTopicError, ValidationError

__all__ = ["Catalog", "FailurePolicy", "Mode", "Topic", "refuse_runtime_topic"]

Mode = Literal["blocking", "queued"]
FailurePolicy = Literal["ignore", "deny"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
#: Longest name a lookup compares with the known ones for "did you mean".
_LONGEST = 100
_POINTER = re.compile(r"^(/([^/~]|~[01])*)+$")


def refuse_runtime_topic(name: object) -> None:
    """``webhook.*`` topics announce the runtime's own changes: only it emits them."""
    if isinstance(name, str) and name.startswith("webhook."):
        raise ValidationError.single(
            "topic", f"{name!r} is emitted by hookruntime itself, not from outside"
        )


@dataclass(frozen=True)
class Topic:
    """One event type.

    ``deadline`` (seconds) and ``on_failure`` are the defaults of a blocking call;
    ``reserved`` lists JSON Pointers (``/id``) into the result document that no
    receiver's patch may touch; ``profile`` is the wire format a registration gets
    when it names none.
    """

    name: str
    mode: Mode
    schema: Mapping[str, Any]
    sample: Mapping[str, Any]
    scopes: tuple[str, ...] = ()
    description: str = ""
    deadline: float | None = None
    on_failure: FailurePolicy = "ignore"
    reserved: tuple[str, ...] = ()
    profile: str = "standard"
    plugin: str = field(default="", compare=False)

    @property
    def blocking(self) -> bool:
        return self.mode == "blocking"

    def problems(self, profiles: Iterable[str]) -> list[str]:
        """Everything wrong with this declaration; empty when it is sound."""
        found: list[str] = []
        if not _NAME.match(self.name):
            found.append(f"topic name {self.name!r} must be dotted lower-case words")
        if self.mode not in ("blocking", "queued"):
            found.append(f"{self.name}: mode must be 'blocking' or 'queued', not {self.mode!r}")
        if self.blocking and (self.deadline is None or not 0 < self.deadline <= 30):
            found.append(f"{self.name}: a blocking topic needs a deadline in (0, 30] seconds")
        if not self.blocking and self.deadline is not None:
            found.append(f"{self.name}: a queued topic has no deadline")
        if self.on_failure not in ("ignore", "deny"):
            found.append(f"{self.name}: on_failure must be 'ignore' or 'deny'")
        if self.profile not in set(profiles):
            found.append(f"{self.name}: unknown default profile {self.profile!r}")
        found.extend(
            f"{self.name}: reserved path {path!r} is not a JSON Pointer"
            for path in self.reserved
            if not _POINTER.match(path)
        )
        found.extend(
            f"{self.name}: scope {scope!r} must be a non-empty word without spaces"
            for scope in self.scopes
            if not scope or " " in scope
        )
        try:
            validator = jsonschema_rs.validator_for(dict(self.schema))
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            reason = str(exc).splitlines()[0]
            found.append(f"{self.name}: invalid JSON schema: {reason}")
            return found
        for error in list(validator.iter_errors(self.sample))[:1]:
            where = "/".join(map(str, error.instance_path)) or "(root)"
            found.append(f"{self.name}: sample does not fit the schema at {where}: {error.message}")
        return found

    @cached_property
    def _validator(self) -> Any:
        return jsonschema_rs.validator_for(dict(self.schema))

    def validate(self, data: Any, field_name: str = "data") -> None:
        """Raise :class:`ValidationError` listing where ``data`` breaks this topic's schema."""
        if self._validator.is_valid(data):
            return
        errors = list(self._validator.iter_errors(data))[:20]
        raise ValidationError(
            FieldError(".".join([field_name, *map(str, e.instance_path)]), e.message)
            for e in errors
        )


class Catalog(Mapping[str, Topic]):
    """Every known topic by name, each stamped with the plugin that declared it."""

    def __init__(self) -> None:
        self._topics: dict[str, Topic] = {}

    def add(self, plugin: str, topics: Iterable[Topic], profiles: Iterable[str]) -> None:
        """Add a plugin's topics, all or none; raise :class:`PluginError` naming it."""
        profile_names = list(profiles)
        staged: dict[str, Topic] = {}
        problems: list[str] = []
        for topic in topics:
            if not isinstance(topic, Topic):
                problems.append(f"{topic!r} is not a hookruntime.Topic")
                continue
            problems.extend(topic.problems(profile_names))
            owner = self._topics.get(topic.name) or staged.get(topic.name)
            if owner is not None:
                problems.append(f"topic {topic.name!r} is already declared by {owner.plugin!r}")
            staged[topic.name] = replace(topic, plugin=plugin)
        if problems:
            raise PluginError(plugin, "; ".join(problems))
        self._topics.update(staged)

    def get_topic(self, name: str, field_name: str = "topic") -> Topic:
        """The topic called ``name``, or :class:`UnknownTopicError` with close matches."""
        if not isinstance(name, str):
            raise ValidationError.single(field_name, "must be a topic name (a string)")
        try:
            return self._topics[name]
        except KeyError:
            # Matching costs time in the length of the name: no name is longer than this.
            shown = name if len(name) <= _LONGEST else name[:_LONGEST] + "…"
            raise UnknownTopicError(shown, self._topics, field_name) from None

    def hidden_from(self, scopes: Iterable[str] | None) -> frozenset[str]:
        """Names of the topics needing a scope outside ``scopes``; None trusts (none)."""
        if scopes is None:
            return frozenset()
        granted = set(scopes)
        return frozenset(
            name for name, topic in self._topics.items() if not granted.issuperset(topic.scopes)
        )

    def scopes(self) -> set[str]:
        return {scope for topic in self._topics.values() for scope in topic.scopes}

    def __getitem__(self, name: str) -> Topic:
        return self._topics[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._topics))

    def __len__(self) -> int:
        return len(self._topics)

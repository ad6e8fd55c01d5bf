"""hookruntime's own namespace in a shared database: every table, index and constraint
name starts with a prefix (``hookruntime_`` by default, ``HOOKRUNTIME_TABLE_PREFIX``),
and on PostgreSQL the tables may live in a schema of their own (``HOOKRUNTIME_SCHEMA``).

Read once, when this module is first imported: the tables are module-level objects and
the hot-path statements are compiled once from them, so the namespace is the process's,
not a runtime's. A bad value does not break the import; it is raised as a
ConfigurationError by :meth:`Namespace.check`, which Settings and the store call.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

__all__ = ["DEFAULT_PREFIX", "NAMESPACE", "Namespace"]

DEFAULT_PREFIX = "hookruntime_"
PREFIX_VARIABLE = "HOOKRUNTIME_TABLE_PREFIX"
SCHEMA_VARIABLE = "HOOKRUNTIME_SCHEMA"
# Lower case only: PostgreSQL folds unquoted names, and no name then needs quoting.
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
# The longest name built from the prefix (a foreign key of registration_topics, 40
# characters) must stay within PostgreSQL's 63.
_MAX_PREFIX = 23


@dataclass(frozen=True)
class Namespace:
    prefix: str = DEFAULT_PREFIX
    schema: str | None = None
    error: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Namespace:
        schema = environ.get(SCHEMA_VARIABLE) or None
        # In a schema of its own the tables need no prefix, unless one is asked for.
        prefix = environ.get(PREFIX_VARIABLE, "" if schema else DEFAULT_PREFIX)
        problem = _problem(prefix, schema)
        if problem is not None:
            return cls(error=problem)
        return cls(prefix, schema)

    def check(self) -> None:
        """Raise the ConfigurationError of a bad HOOKRUNTIME_TABLE_PREFIX or _SCHEMA."""
        if self.error is not None:
            raise ConfigurationError(self.error)

    def name(self, bare: str) -> str:
        """A table, index or constraint name in this namespace: ``events`` ->
        ``hookruntime_events``."""
        return self.prefix + bare

    def ref(self, column: str) -> str:
        """A foreign key's target: ``orgs.id`` -> ``[schema.]hookruntime_orgs.id``."""
        return self.table(column)

    def table(self, bare: str) -> str:
        """A table's name as written in SQL, with its schema when there is one."""
        qualified = self.name(bare)
        return qualified if self.schema is None else f"{self.schema}.{qualified}"

    def holds(self, name: str | None, kind: str, parents: Mapping[Any, str | None]) -> bool:
        """Whether a schema or table seen in the database is hookruntime's (Alembic's
        ``include_name``): comparing with the models passes over the host's tables."""
        if kind == "schema":
            return name == self.schema
        if kind == "table":
            return (
                name is not None
                and name.startswith(self.prefix)
                and name != self.version_table
                and parents.get("schema_name") == self.schema
            )
        return True

    @property
    def version_table(self) -> str:
        """Alembic's version table of hookruntime's own migrations."""
        return self.name("alembic_version")


def _problem(prefix: str, schema: str | None) -> str | None:
    if schema is not None and not _NAME.match(schema):
        return (
            f"{SCHEMA_VARIABLE}={schema!r} is not a plain lower-case name (letters, digits and _)"
        )
    if prefix and (not _NAME.match(prefix) or len(prefix) > _MAX_PREFIX):
        return (
            f"{PREFIX_VARIABLE}={prefix!r} must be lower-case letters, digits and _, "
            f"at most {_MAX_PREFIX} characters, not starting with a digit"
        )
    if not prefix and schema in (None, "public"):
        return (
            f"an empty {PREFIX_VARIABLE} needs a {SCHEMA_VARIABLE} of hookruntime's own "
            "(not public): the tables would collide with the host's"
        )
    return None


#: The process's namespace, from the environment at import.
NAMESPACE = Namespace.from_env(os.environ)

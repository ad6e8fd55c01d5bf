"""The namespace of hookruntime's tables: one prefix on every name, checked settings, and no
table in a host's SQLModel metadata."""

from __future__ import annotations

import pytest

from hookruntime import ConfigurationError
from hookruntime.config import Settings
from hookruntime.store.models import metadata
from hookruntime.store.namespace import NAMESPACE, Namespace

PREFIX = NAMESPACE.prefix


def test_every_table_index_and_named_constraint_carries_the_prefix() -> None:
    names = [table.name for table in metadata.tables.values()]
    for table in metadata.tables.values():
        names += [index.name for index in table.indexes if index.name is not None]
        names += [c.name for c in table.constraints if isinstance(c.name, str)]
    assert names and all(name.startswith(PREFIX) for name in names)


def test_a_prefix_other_than_the_imported_one_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="before the import"):
        Settings.from_env({"HOOKRUNTIME_TABLE_PREFIX": "other_"})
    assert Settings.from_env({"HOOKRUNTIME_TABLE_PREFIX": PREFIX}).namespace == NAMESPACE


@pytest.mark.parametrize(
    "environ",
    [
        {"HOOKRUNTIME_TABLE_PREFIX": "Bad-Prefix"},
        {"HOOKRUNTIME_TABLE_PREFIX": ""},
        {"HOOKRUNTIME_TABLE_PREFIX": "", "HOOKRUNTIME_SCHEMA": "public"},
        {"HOOKRUNTIME_SCHEMA": "my schema"},
    ],
)
def test_a_bad_namespace_is_a_configuration_error(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Namespace.from_env(environ).check()


def test_a_hosts_sqlmodel_metadata_holds_none_of_hookruntimes_tables() -> None:
    # A host that autogenerates its Alembic history from SQLModel.metadata must not
    # find hookruntime's tables there (its migration would create them).
    from sqlmodel import SQLModel

    assert not set(SQLModel.metadata.tables) & set(metadata.tables)

"""The store's configuration: the master key that seals secrets, and the database URLs it takes."""

from __future__ import annotations

import pytest

from hookruntime import ConfigurationError, StoreError
from hookruntime.store import Database, SecretBox
from hookruntime.store.crypto import generate_master_key


def test_secret_box_refuses_a_foreign_key() -> None:
    sealed = SecretBox(generate_master_key()).seal("s3cret")
    with pytest.raises(StoreError, match="MASTER_KEY differs"):
        SecretBox(generate_master_key()).open(sealed)


@pytest.mark.parametrize("key", ["not base64!", "c2hvcnQ="])
def test_a_bad_master_key_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ConfigurationError, match="HOOKRUNTIME_MASTER_KEY"):
        SecretBox(key)


@pytest.mark.parametrize("url", ["mysql://root@localhost/x", "not a url", "redis://localhost"])
def test_unsupported_database_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Database(url)

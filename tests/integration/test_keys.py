"""API keys: shown once, stored hashed, found by prefix, revocable, scoped."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from hookruntime import HookRuntime, NotFoundError, ValidationError
from hookruntime.store.models import API_KEYS

pytestmark = pytest.mark.anyio


async def test_a_key_authenticates_and_only_its_hash_is_stored(runtime: HookRuntime) -> None:
    created = await runtime.keys.create(org="acme", scopes=["webhooks:manage", "customers"])
    assert created.key.startswith("hrk_")
    info = await runtime.keys.authenticate(created.key)
    assert info is not None and info.org == "acme"
    assert info.scopes == ("webhooks:manage", "customers")
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(text(f"SELECT * FROM {API_KEYS.fullname}"))).mappings().all()
    assert created.key not in repr([dict(r) for r in rows])
    secret_part = created.key.split("_", 2)[2]
    assert secret_part not in repr([dict(r) for r in rows])


async def test_wrong_malformed_and_revoked_keys_do_not_authenticate(runtime: HookRuntime) -> None:
    created = await runtime.keys.create(org="acme", scopes=["events:emit"])
    forged = created.key[:-4] + ("AAAA" if not created.key.endswith("AAAA") else "BBBB")
    for attempt in (forged, "", "Bearer x", "hrk_short_x", created.key + "x"):
        assert await runtime.keys.authenticate(attempt) is None
    await runtime.keys.revoke(created.id, org="acme")
    assert await runtime.keys.authenticate(created.key) is None
    with pytest.raises(NotFoundError):
        await runtime.keys.revoke(created.id, org="acme")


async def test_keys_are_per_org(runtime: HookRuntime) -> None:
    created = await runtime.keys.create(org="acme", scopes=["events:emit"])
    with pytest.raises(NotFoundError):
        await runtime.keys.revoke(created.id, org="globex")
    assert await runtime.keys.list(org="globex") == []
    assert [k.id for k in await runtime.keys.list(org="acme")] == [created.id]


async def test_unknown_scopes_and_orgs_are_refused(runtime: HookRuntime) -> None:
    with pytest.raises(ValidationError, match="unknown scope 'root'"):
        await runtime.keys.create(org="acme", scopes=["root"])
    with pytest.raises(ValidationError, match="at least one scope"):
        await runtime.keys.create(org="acme", scopes=[])
    with pytest.raises(ValidationError, match="org"):
        await runtime.keys.create(org="", scopes=["events:emit"])

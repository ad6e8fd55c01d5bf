"""What the attempt log keeps of a delivery's response headers (bounded, redacted), read
back on the delivery page, through the in-process lanes and a sender process alike."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from test_ui import ALL, client, dead_delivery, runtime_ui, sign_in

from hookruntime import HookRuntime
from hookruntime.store.models import ATTEMPTS
from hookruntime.testing import LoopbackReceiver, Reply

pytestmark = pytest.mark.anyio
__all__ = ["runtime_ui"]
ANSWER = Reply(
    500,
    b"overloaded",
    {
        "X-Receiver-Build": "build-7f3a",
        "Set-Cookie": "sid=cookie-secret-value; HttpOnly",
        "X-Api-Token": "token-secret-value",
    },
)


async def stored_headers(runtime: HookRuntime, delivery_id: str) -> list[list[str]]:
    query = select(ATTEMPTS.c.response_headers).where(ATTEMPTS.c.delivery_id == delivery_id)
    async with runtime.database.engine.connect() as conn:
        raw = (await conn.execute(query)).scalar_one()
    kept: list[list[str]] = json.loads(raw)
    return kept


async def test_delivery_page_shows_each_attempts_response_headers_with_secrets_redacted(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver(lambda _r: ANSWER) as receiver:
        delivery_id = await dead_delivery(runtime_ui, receiver, "acme")
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            page = await http.get(f"/ui/deliveries/{delivery_id}")
    assert page.status_code == 200
    # Header names as the client gave them: some clients (pyreqwest) lower-case them.
    shown = page.text.lower()
    assert "x-receiver-build: build-7f3a" in shown
    assert "set-cookie: [redacted]" in shown and "x-api-token: [redacted]" in shown
    assert "cookie-secret-value" not in page.text and "token-secret-value" not in page.text
    assert "Response headers are not kept" not in page.text


async def test_a_sender_process_carries_response_headers_to_the_attempt_log(
    database_url: str, master_key: str
) -> None:
    runtime = HookRuntime(
        database_url,
        master_key=master_key,
        allow_private_targets=True,
        workers=1,
        sender_process=True,
    )
    async with runtime, LoopbackReceiver(lambda _r: ANSWER) as receiver:
        delivery_id = await dead_delivery(runtime, receiver, "acme")
        await runtime.attempts.flush()
        # Names as the sender's client gave them: pyreqwest lower-cases them.
        kept = {name.lower(): value for name, value in await stored_headers(runtime, delivery_id)}
    assert kept["x-receiver-build"] == "build-7f3a"
    assert kept["set-cookie"] == "[redacted]" and kept["x-api-token"] == "[redacted]"

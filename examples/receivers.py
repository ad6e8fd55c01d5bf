"""One receiver per wire profile, each verifying what it gets with
`hookruntime.receiver.verify`: standard (Standard Webhooks), jws (seed 001),
servicehook (seed 000) and envelope (seed 002).

Run: python examples/receivers.py
"""

from __future__ import annotations

import tempfile
from contextlib import AsyncExitStack

import anyio

from hookruntime import HookRuntime
from hookruntime.receiver import verify
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

EVENTS = {  # topic: (profile, secret; None lets hookruntime generate one)
    "customers.created": ("standard", None),
    "profile_updated": ("jws", "signature_secret"),
    "punch.create": ("servicehook", "WEBHOOK SECRET OF THE ORG"),
    "liveness.completed": ("envelope", "your-secret-key-min-32-chars-ok!"),
}


async def main() -> None:
    verified: list[str] = []
    secrets: dict[str, str] = {}

    def receiver_for(topic: str, profile: str) -> LoopbackReceiver:
        def answer(request: Received) -> Reply:
            message = verify(profile, request.headers, request.body, secrets[topic])
            verified.append(f"{profile:<11} {topic:<20} event {message.event_id}")
            return Reply(200)

        return LoopbackReceiver(answer)

    with tempfile.TemporaryDirectory() as folder:
        async with AsyncExitStack() as stack:
            runtime = await stack.enter_async_context(
                HookRuntime(f"sqlite:///{folder}/hooks.db", allow_private_targets=True)
            )
            for topic, (profile, secret) in EVENTS.items():
                receiver = await stack.enter_async_context(receiver_for(topic, profile))
                reg = await runtime.registrations.create(
                    org="acme", topics=[topic], url=receiver.url, secret=secret
                )
                assert reg.profile == profile and reg.secret is not None
                secrets[topic] = reg.secret  # shown once, on creation
                await runtime.emit(topic, runtime.catalog[topic].sample, org="acme")
            await eventually(lambda: len(verified) == len(EVENTS))
    print("\n".join(sorted(verified)))


if __name__ == "__main__":
    anyio.run(main)

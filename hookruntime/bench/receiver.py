"""The benchmarks' receiver: ``/hang`` never answers, anything else answers allow at once.
Prints its port on the first line of stdout, then serves until terminated."""

from __future__ import annotations

import asyncio

from ..testing import LoopbackReceiver, Received, Reply

ALLOW = Reply(200, b'{"ok":true}', {"Content-Type": "application/json"})


def answer(request: Received) -> Reply:
    return Reply.hang() if request.path.startswith("/hang") else ALLOW


async def main() -> None:
    receiver = LoopbackReceiver(answer, keep=False)
    await receiver.start()
    print(receiver.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())

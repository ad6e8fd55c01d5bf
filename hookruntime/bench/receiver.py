"""The benchmarks' receiver: ``/hang`` never answers, ``/slow`` answers allow after 50 ms,
``/count`` answers how many other requests it has answered (for senders outside this
package, such as the Celery baseline), anything else answers allow at once. Prints its
port on the first line of stdout, then serves until terminated."""

from __future__ import annotations

import asyncio

from ..testing import LoopbackReceiver, Received, Reply

ALLOW = Reply(200, b'{"ok":true}', {"Content-Type": "application/json"})
SLOW = Reply(200, b'{"ok":true}', {"Content-Type": "application/json"}, delay=0.05)
answered = 0


def answer(request: Received) -> Reply:
    global answered
    if request.path.startswith("/hang"):
        return Reply.hang()
    if request.path.startswith("/count"):
        return Reply(200, str(answered).encode(), {"Content-Type": "text/plain"})
    answered += 1
    return SLOW if request.path.startswith("/slow") else ALLOW


async def main() -> None:
    receiver = LoopbackReceiver(answer, keep=False)
    await receiver.start()
    print(receiver.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())

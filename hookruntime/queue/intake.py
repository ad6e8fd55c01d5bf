"""The intake: the ledger of what one worker holds, written by the parts that bring
deliveries in and read by those that take them on.

The outbox (:mod:`hookruntime.queue.outbox`) asks it for :meth:`Intake.room`, writes new
deliveries already claimed under its :attr:`~Intake.id` and :attr:`~Intake.lease`, and
hands them over with :meth:`~Intake.accept` on commit; the worker's claim loop
(:mod:`hookruntime.queue.worker`) adds what it claims, takes the incoming list to sign,
and notes what it hands to the lanes; the recorder (:mod:`hookruntime.queue.recorder`)
takes each answer's delivery back out with :meth:`~Intake.finish`, which is how the
claim loop learns it has room again. Built before all of them, it refers to none.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections import defaultdict

import anyio

from ..ids import new_id
from ..profiles import RetryPolicy
from .claim import Claimed
from .lanes import Unrecorded
from .settings import WorkerSettings
from .wake import Dues, Wakeup

__all__ = ["Intake", "Sent"]

#: What deciding a sent request's outcome needs: the delivery, its retry policy and its
#: registration's attempt limit.
Sent = tuple[Claimed, RetryPolicy, int | None]


class Intake:
    """Claimed deliveries, per-registration counts, the incoming list, and the requests
    under way, of the worker named :attr:`id`. A registration with three rounds of its
    cap claimed and unfinished is saturated: it gets no more until it drains, so a slow
    one cannot fill the worker."""

    def __init__(self, wakeup: Wakeup, settings: WorkerSettings) -> None:
        #: The worker's name on the rows it holds (and on its heartbeat).
        self.id = f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-6:]}"
        self.lease = settings.lease
        self._wakeup = wakeup
        self._ceiling = settings.ceiling
        self._worth = settings.batch // 2
        self.saturation = 3 * settings.cap
        #: Held, by delivery id: claimed (or handed over) and not yet finished.
        self.claimed: dict[str, Claimed] = {}
        #: Held and not yet given back by the lanes, per registration.
        self.outstanding: defaultdict[str, int] = defaultdict(int)
        #: Held, waiting for their targets to be looked up and their requests signed.
        self._incoming: list[Claimed] = []
        self._arrived = anyio.Event()
        #: Handed to the lanes, by request key.
        self.sent: dict[int, Sent] = {}
        self._keys = itertools.count()
        self.unrecorded = Unrecorded(settings.concurrency)
        #: Retries this worker scheduled, soonest first: the claim loop sleeps until the
        #: first of them (or the poll), whatever it held when they were written.
        self.dues = Dues()
        self._has_room = anyio.Event()
        self.stopping = False
        self.closed = False

    # -- the outbox's side ------------------------------------------------------------

    def room(self) -> int:
        """How many more deliveries the worker would take now."""
        if self.stopping:
            return 0
        return max(0, self._ceiling - len(self.claimed))

    def accept(self, items: list[Claimed]) -> None:
        """Take deliveries the outbox wrote as claimed by this worker."""
        if self.closed:
            return  # stopping: their leases lapse and they are redone
        self.add(items)

    # -- the claim side ---------------------------------------------------------------

    def free(self) -> int:
        return self._ceiling - len(self.claimed)

    def saturated(self) -> list[str]:
        return [rid for rid, n in self.outstanding.items() if n >= self.saturation]

    def add(self, items: list[Claimed]) -> None:
        claimed, outstanding = self.claimed, self.outstanding
        for item in items:
            claimed[item.id] = item
            outstanding[item.registration_id] += 1
        self._incoming.extend(items)
        self._arrived.set()

    async def incoming(self) -> list[Claimed]:
        """What arrived since the last call, once there is some."""
        await self._arrived.wait()
        self._arrived = anyio.Event()
        items, self._incoming = self._incoming, []
        return items

    def send(self, item: Claimed, policy: RetryPolicy, max_attempts: int | None) -> int:
        """Note a request for ``item`` handed to the lanes; its key."""
        key = next(self._keys)
        self.sent[key] = (item, policy, max_attempts)
        return key

    async def room_made(self) -> None:
        """Return once a claim is worth making again (or the worker is stopping)."""
        self._has_room = anyio.Event()
        await self._has_room.wait()

    def stop(self) -> None:
        """Claim no more; the outbox hands over no more."""
        self.stopping = True
        self._wakeup.notify()
        self._has_room.set()

    def close(self) -> None:
        """Take no more: what the outbox hands over now is left to its lease."""
        self.closed = True

    # -- the recorder's side ----------------------------------------------------------

    def answered(self, key: int) -> Sent:
        """The request of ``key`` came back from the lanes."""
        return self.sent.pop(key)

    def finish(self, item: Claimed) -> None:
        """``item`` is no longer held: answered, or given up on before it was sent."""
        # Not another copy of it, claimed again after this one's lease ran out.
        if self.claimed.get(item.id) is item:
            del self.claimed[item.id]
        rid = item.registration_id
        left = self.outstanding[rid] - 1
        if left:
            self.outstanding[rid] = left
        else:
            del self.outstanding[rid]
        if left == self.saturation - 1:
            # No longer saturated: claim more of its work now, not when its lanes run dry
            # (outcomes arrive in batches, and a claim takes a while to reach the lanes).
            self._wakeup.notify()
        # Wake the claim loop only when a claim is worth making (or to finish stopping).
        if self.stopping or self._ceiling - len(self.claimed) >= self._worth:
            self._has_room.set()

"""The blocking path: every active registration of the topic called at once, under one
deadline timer, each receiver tried (and retried once when there is time) over HTTP.
The call's bookkeeping and the reduction of its answers into one :class:`CallResult`
are in :mod:`.call`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from ..catalog import Catalog
from ..errors import (
    ConnectError,
    ReentrancyError,
    RequestTimeout,
    ResponseTooLarge,
    TargetBlocked,
    ValidationError,
)
from ..http import DEFAULT_MAX_BODY, HttpClient
from ..ids import new_id
from ..observe import Observer
from ..store.attempts import AttemptLog, CallAttempt
from ..targets import Directory, Target
from .answer import InvalidAnswer, read_answer
from .breaker import Breakers
from .call import CallUnderWay, call_budget, call_detail, reduce_outcomes
from .depth import current_depth
from .merge import touches
from .result import CallResult, Outcome

__all__ = ["BlockingCaller"]

#: A retry needs this much time left beyond what the first try took.
_RETRY_MARGIN = 0.010


def _settle(decided: asyncio.Future[None]) -> None:
    """The call's deadline: whatever is still running no longer counts."""
    if not decided.done():
        decided.set_result(None)


class BlockingCaller:
    def __init__(
        self,
        catalog: Catalog,
        directory: Directory,
        client: HttpClient,
        attempts: AttemptLog,
        breakers: Breakers | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        observer: Observer | None = None,
    ) -> None:
        self._catalog = catalog
        self._directory = directory
        self._client = client
        self._attempts = attempts
        self.breakers = breakers or Breakers()
        self._max_body = max_body
        self._observer = observer or Observer()
        self._unwinding: set[asyncio.Task[None]] = set()

    async def call(
        self,
        topic_name: str,
        data: Any,
        *,
        org: str,
        deadline: float | None = None,
        only: str | None = None,
    ) -> CallResult:
        tracing = self._observer.tracing
        if tracing is None:
            return await self._call(topic_name, data, org=org, deadline=deadline, only=only)
        run = partial(self._call, topic_name, data, org=org, deadline=deadline, only=only)
        return await tracing.call(topic_name, org, run)

    async def _call(
        self,
        topic_name: str,
        data: Any,
        *,
        org: str,
        deadline: float | None = None,
        only: str | None = None,
    ) -> CallResult:
        started = time.perf_counter()
        topic = self._catalog.get_topic(topic_name)
        if not topic.blocking:
            raise ValidationError.single(
                "topic", f"{topic_name!r} is a queued topic: use emit(), not call()"
            )
        if current_depth() > 0:
            raise ReentrancyError(
                f"refusing call({topic_name!r}) while serving a blocking hook: the chain "
                "would wait on itself"
            )
        budget = call_budget(topic, deadline)
        topic.validate(data)
        targets = await self._directory.targets(org, topic_name)
        if only is not None:  # a test call of one registration
            targets = tuple(t for t in targets if t.registration_id == only)
        loop = asyncio.get_running_loop()
        end = loop.time() + budget - (time.perf_counter() - started)
        call = CallUnderWay(new_id("call"), topic, targets, data, end)
        result: CallResult | None = None
        try:
            if len(targets) == 1:  # nothing to fan out: spare the task and the timer
                with anyio.move_on_at(end):
                    await self._attempt(call, 0)
            elif targets:
                await self._fan_out(call, loop)
            finished = [
                outcome or self._unfinished(call, index)
                for index, outcome in enumerate(call.outcomes)
            ]
            result = reduce_outcomes(
                topic, targets, finished, call.id, data, time.perf_counter() - started
            )
        finally:
            # The decision, conflicts and deadline go with the call's first row, so the
            # dashboard shows the call as it was decided, not as re-derived later.
            rows, call.rows = call.rows, None
            if rows:
                rows[0] = rows[0]._replace(call_detail=call_detail(result, budget, deadline))
                self._attempts.extend(rows)
        self._observer.called(org, result)
        return result

    async def _fan_out(self, call: CallUnderWay, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until every receiver answered, the result is decided, or the deadline
        passes, whichever comes first. The deadline is one timer for the whole call.
        Attempts still running then are cancelled and left to unwind after the call has
        returned: under load (hundreds of calls reaching their deadline together)
        waiting for connections to be torn down delayed each return by many times the
        work of the call, and a cancel scope per call cost more than the rest of it."""
        call.decided = decided = loop.create_future()
        tasks = [loop.create_task(self._attempt(call, index)) for index in range(len(call.targets))]
        timer = loop.call_at(call.end, _settle, decided)
        try:
            await decided
        finally:
            timer.cancel()
            for task in tasks:
                if not task.done():
                    task.cancel()
                    # Held until it has unwound: the loop keeps only weak references.
                    self._unwinding.add(task)
                    task.add_done_callback(self._unwinding.discard)

    def _unfinished(self, call: CallUnderWay, index: int) -> Outcome:
        """The outcome of a receiver still running when the call ended."""
        target = call.targets[index]
        breaker = self.breakers[target.registration_id]
        if asyncio.get_running_loop().time() >= call.end:
            breaker.record(False)
            outcome = Outcome(
                target.registration_id, "timeout", detail="no answer before the call's deadline"
            )
        else:
            breaker.release()
            outcome = Outcome(
                target.registration_id, "cancelled", detail="the result was already decided"
            )
        self._log(call, target, outcome)
        return outcome

    async def _attempt(self, call: CallUnderWay, index: int) -> None:
        """Receiver ``index``'s part in the call, its outcome put in its place."""
        target = call.targets[index]
        tracing = self._observer.tracing
        try:
            if tracing is None:
                outcome = await self._tries(call, target)
            else:
                run = partial(self._tries, call, target)
                outcome = await tracing.receiver(target.registration_id, run)
        except Exception as exc:  # a fault here, not the receiver's: the caller raises it
            if call.decided is None:
                raise
            if not call.decided.done():
                call.decided.set_exception(exc)
            return
        call.arrived(index, outcome)

    async def _tries(self, call: CallUnderWay, target: Target) -> Outcome:
        breaker = self.breakers[target.registration_id]
        if not breaker.allow():
            outcome = Outcome(
                target.registration_id,
                "circuit_open",
                detail="circuit open after repeated failures; not called",
            )
            self._log(call, target, outcome)
            return outcome
        clock = asyncio.get_running_loop().time
        number = 0
        while True:
            number += 1
            outcome, retry = await self._try_once(call, target, number, clock)
            self._log(call, target, outcome)
            left = call.end - clock()
            if not (retry and number == 1 and left > outcome.latency + _RETRY_MARGIN):
                breaker.record(outcome.status in ("ok", "deny"))
                return outcome

    async def _try_once(
        self, call: CallUnderWay, target: Target, number: int, clock: Callable[[], float]
    ) -> tuple[Outcome, bool]:
        """One HTTP try; the flag says whether it may be retried (connect error, 429, 5xx)."""
        rid = target.registration_id
        topic = call.topic
        left = call.end - clock()
        # The call's deadline is one timer over the whole fan-out: a request gets a timer
        # of its own only when its registration's timeout ends sooner.
        own = target.timeout
        timeout = own if own is not None and own < left else left if left <= 0 else math.inf
        extra = call.extra
        if self._observer.tracing is not None:
            extra = dict(extra)
            self._observer.tracing.inject(extra)
        request = target.request(topic.name, call.id, call.data, extra=extra, raw=call.raw)
        started = time.perf_counter()
        try:
            response = await self._client.post(
                target.url, request.headers, request.body, timeout=timeout, max_body=self._max_body
            )
        except RequestTimeout as exc:
            return Outcome(
                rid, "timeout", None, time.perf_counter() - started, str(exc), number
            ), False
        except ResponseTooLarge as exc:
            return Outcome(
                rid, "invalid", None, time.perf_counter() - started, str(exc), number
            ), False
        except ConnectError as exc:
            return Outcome(
                rid, "error", None, time.perf_counter() - started, str(exc), number
            ), True
        except TargetBlocked as exc:
            detail = f"receiver address refused: {exc}"
            return Outcome(rid, "error", None, time.perf_counter() - started, detail, number), False
        latency = response.elapsed
        status = response.status
        if not 200 <= status < 300:
            detail = f"receiver answered HTTP {status}"
            if 300 <= status < 400:
                detail += " (redirects are not followed)"
            return Outcome(rid, "error", status, latency, detail, number), (
                status == 429 or status >= 500
            )
        try:
            answer = read_answer(
                status,
                response.body,
                target.secrets if target.signed_responses else None,
                request_id=call.id,
            )
        except InvalidAnswer as exc:
            return Outcome(rid, "invalid", status, latency, str(exc), number), False
        if answer.decision == "deny":
            return Outcome(
                rid,
                "deny",
                status,
                latency,
                answer.reason,
                number,
                answer.reason,
                answer.user_message,
            ), False
        if answer.patch and (path := touches(answer.patch, topic.reserved)):
            detail = f"patch touches reserved path {path}; dropped whole"
            return Outcome(rid, "invalid", status, latency, detail, number), False
        return Outcome(rid, "ok", status, latency, None, number, patch=answer.patch), False

    def _log(self, call: CallUnderWay, target: Target, outcome: Outcome) -> None:
        row = CallAttempt(
            target.org,
            target.registration_id,
            call.id,
            call.topic.name,
            max(outcome.attempts, 1),
            outcome.status,
            outcome.http_status,
            outcome.latency * 1000,
            (outcome.detail or "")[:1000] or None,
            None,
            time.time(),
        )
        if call.rows is None:
            self._attempts.extend((row,))
        else:
            call.rows.append(row)

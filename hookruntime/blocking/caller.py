"""The blocking path: every active registration of the topic called at once, under one
deadline, their answers reduced in registration order into one :class:`CallResult`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from functools import partial
from typing import Any

import anyio

from ..catalog import Catalog, Topic
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
from ..store.attempts import AttemptLog
from ..targets import Directory, Target
from .answer import InvalidAnswer, read_answer
from .breaker import Breakers
from .depth import HOOK_DEPTH_HEADER, current_depth
from .merge import combine, touches
from .result import CallResult, Outcome

__all__ = ["BlockingCaller"]

#: A retry needs this much time left beyond what the first try took.
_RETRY_MARGIN = 0.010


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
        #: Attempt rows of the calls under way, written once each call is decided.
        self._held: dict[str, list[dict[str, Any]]] = {}
        self.breakers = breakers or Breakers()
        self._max_body = max_body
        self._observer = observer or Observer()
        self._unwinding: set[asyncio.Task[Outcome]] = set()

    async def call(
        self,
        topic_name: str,
        data: Any,
        *,
        org: str,
        deadline: float | None = None,
        only: str | None = None,
    ) -> CallResult:
        run = partial(self._call, topic_name, data, org=org, deadline=deadline, only=only)
        tracing = self._observer.tracing
        return await (run() if tracing is None else tracing.call(topic_name, org, run))

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
        budget = _budget(topic, deadline)
        topic.validate(data)
        targets = await self._directory.targets(org, topic_name)
        if only is not None:  # a test call of one registration
            targets = tuple(t for t in targets if t.registration_id == only)
        call_id = new_id("call")
        end = anyio.current_time() + budget - (time.perf_counter() - started)
        outcomes: list[Outcome | None] = [None] * len(targets)
        held = self._held[call_id] = []
        result: CallResult | None = None
        try:
            if len(targets) == 1:  # nothing to fan out: spare the tasks
                with anyio.move_on_at(end):
                    outcomes[0] = await self._attempt(topic, targets[0], call_id, data, end)
            elif targets:
                await self._fan_out(topic, targets, call_id, data, end, outcomes)
            finished = [
                outcome or self._unfinished(topic, target, call_id, end)
                for target, outcome in zip(targets, outcomes, strict=True)
            ]
            result = _reduce(topic, targets, finished, call_id, data, time.perf_counter() - started)
        finally:
            # The decision, conflicts and deadline go with the call's first row, so the
            # dashboard shows the call as it was decided, not as re-derived later. (Rows of
            # receivers that unwind after the call returned are recorded as they come.)
            del self._held[call_id]
            if held:
                held[0]["call_detail"] = _detail(result, budget, deadline)
            for row in held:
                self._attempts.record(**row)
        self._observer.called(org, result)
        return result

    async def _fan_out(
        self,
        topic: Topic,
        targets: tuple[Target, ...],
        call_id: str,
        data: Any,
        end: float,
        outcomes: list[Outcome | None],
    ) -> None:
        """Fill ``outcomes`` until every receiver answered, the result is decided, or
        the deadline passes. Attempts still running then are cancelled and left to
        unwind on their own: the call returns at its deadline, not after its
        connections are torn down, which under load (hundreds of calls reaching their
        deadline together) delayed the return by many times the work of the call."""
        loop = asyncio.get_running_loop()
        decided: asyncio.Future[None] = loop.create_future()

        def done(index: int, task: asyncio.Task[Outcome]) -> None:
            if task.cancelled():
                return
            error = task.exception()  # taken even when unwanted, or asyncio logs it
            if decided.done():
                return
            if error is not None:
                decided.set_exception(error)
            else:
                outcomes[index] = task.result()
                if _decided(topic, targets, outcomes):
                    decided.set_result(None)

        tasks = []
        for index, target in enumerate(targets):
            task = loop.create_task(self._attempt(topic, target, call_id, data, end))
            task.add_done_callback(partial(done, index))
            tasks.append(task)
        try:
            with anyio.move_on_at(end):
                await decided
        finally:
            for index, task in enumerate(tasks):
                if task.done():
                    # Finished, but its done callback (scheduled, not yet run) came late.
                    late = outcomes[index] is None and not task.cancelled()
                    if late and task.exception() is None:
                        outcomes[index] = task.result()
                else:
                    task.cancel()
                    # Held until it has unwound: the loop keeps only weak references.
                    self._unwinding.add(task)
                    task.add_done_callback(self._unwinding.discard)

    def _unfinished(self, topic: Topic, target: Target, call_id: str, end: float) -> Outcome:
        """The outcome of a receiver still running when the call ended."""
        breaker = self.breakers[target.registration_id]
        if anyio.current_time() >= end:
            breaker.record(False)
            outcome = Outcome(
                target.registration_id, "timeout", detail="no answer before the call's deadline"
            )
        else:
            breaker.release()
            outcome = Outcome(
                target.registration_id, "cancelled", detail="the result was already decided"
            )
        self._log(topic, target, call_id, outcome)
        return outcome

    async def _attempt(
        self, topic: Topic, target: Target, call_id: str, data: Any, end: float
    ) -> Outcome:
        run = partial(self._attempt_untraced, topic, target, call_id, data, end)
        tracing = self._observer.tracing
        return await (run() if tracing is None else tracing.receiver(target.registration_id, run))

    async def _attempt_untraced(
        self, topic: Topic, target: Target, call_id: str, data: Any, end: float
    ) -> Outcome:
        breaker = self.breakers[target.registration_id]
        if not breaker.allow():
            outcome = Outcome(
                target.registration_id,
                "circuit_open",
                detail="circuit open after repeated failures; not called",
            )
            self._log(topic, target, call_id, outcome)
            return outcome
        number = 0
        while True:
            number += 1
            outcome, retry = await self._try_once(topic, target, call_id, data, end, number)
            self._log(topic, target, call_id, outcome)
            left = end - anyio.current_time()
            if not (retry and number == 1 and left > outcome.latency + _RETRY_MARGIN):
                breaker.record(outcome.status in ("ok", "deny"))
                return outcome

    async def _try_once(
        self, topic: Topic, target: Target, call_id: str, data: Any, end: float, number: int
    ) -> tuple[Outcome, bool]:
        """One HTTP try; the flag says whether it may be retried (connect error, 429, 5xx)."""
        rid = target.registration_id
        left = end - anyio.current_time()
        # The call's deadline is one timer over the whole fan-out: a request gets a timer
        # of its own only when its registration's timeout ends sooner. A timer per
        # request, all firing with the call's, made the call wait for each request to
        # unwind before it could return.
        own = target.timeout
        timeout = own if own is not None and own < left else left if left <= 0 else math.inf
        extra = {HOOK_DEPTH_HEADER: str(current_depth() + 1)}
        if self._observer.tracing is not None:
            self._observer.tracing.inject(extra)
        request = target.request(topic.name, call_id, data, extra=extra)
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
                request_id=call_id,
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

    def _log(self, topic: Topic, target: Target, call_id: str, outcome: Outcome) -> None:
        row = {
            "org_id": target.org,
            "registration_id": target.registration_id,
            "call_id": call_id,
            "topic": topic.name,
            "number": max(outcome.attempts, 1),
            "outcome": outcome.status,
            "status_code": outcome.http_status,
            "latency_ms": outcome.latency * 1000,
            "error": (outcome.detail or "")[:1000] or None,
            "created_at": time.time(),
            "call_detail": None,  # every row of a batch insert has the same columns
        }
        held = self._held.get(call_id)
        if held is None:
            self._attempts.record(**row)
        else:
            held.append(row)


def _detail(result: CallResult | None, budget: float, requested: float | None) -> str:
    """The call's outcome as its attempt log keeps it (no decision when it was cut off)."""
    detail: dict[str, Any] = {
        "deadline_ms": round(budget * 1000, 3),
        "requested_deadline_ms": None if requested is None else round(requested * 1000, 3),
    }
    if result is not None:
        detail["allowed"] = result.allowed
        detail["reason"] = result.reason
        detail["partial"] = result.partial
        detail["conflicts"] = [c.to_dict() for c in result.conflicts]
    return json.dumps(detail, ensure_ascii=False)


def _budget(topic: Topic, deadline: float | None) -> float:
    assert topic.deadline is not None
    if deadline is None:
        return topic.deadline
    if (
        isinstance(deadline, bool)
        or not isinstance(deadline, int | float)
        or not (math.isfinite(deadline) and deadline > 0)
    ):
        raise ValidationError.single("deadline", "must be a positive number of seconds")
    return min(float(deadline), topic.deadline)


def _denies(topic: Topic, target: Target, outcome: Outcome) -> bool:
    if outcome.status == "deny":
        return True
    return outcome.failed and (target.on_failure or topic.on_failure) == "deny"


def _decided(topic: Topic, targets: tuple[Target, ...], outcomes: list[Outcome | None]) -> bool:
    """True once nothing still running can change the result: every receiver is done,
    or one denies and every receiver before it in order is done."""
    for target, outcome in zip(targets, outcomes, strict=True):
        if outcome is None:
            return False
        if _denies(topic, target, outcome):
            return True
    return True


def _reduce(
    topic: Topic,
    targets: tuple[Target, ...],
    outcomes: list[Outcome],
    call_id: str,
    data: Any,
    elapsed: float,
) -> CallResult:
    allowed, reason, user_message, partial = True, None, None, False
    for target, outcome in zip(targets, outcomes, strict=True):
        if _denies(topic, target, outcome):
            if allowed:
                allowed, user_message = False, outcome.user_message
                reason = (
                    outcome.reason or f"denied by registration {target.registration_id}"
                    if outcome.status == "deny"
                    else f"registration {target.registration_id} failed ({outcome.status}: "
                    f"{outcome.detail}) and its failure policy is deny"
                )
        elif outcome.failed:
            partial = True
    patch: dict[str, Any] = {}
    conflicts: list[Any] = []
    if allowed:
        patch, conflicts = combine(
            (o.registration_id, o.patch) for o in outcomes if o.status == "ok" and o.patch
        )
    return CallResult(
        call_id,
        topic.name,
        allowed,
        reason,
        user_message,
        patch,
        tuple(outcomes),
        partial,
        tuple(conflicts),
        elapsed,
        data,
    )

"""Hooks for a workflow written with `python-statemachine`: blocking topics guard
transitions, and every transition emits a queued topic in the host's own transaction.

::

    hooks = WorkflowHooks(
        runtime, org="acme", subject="booking", changed="booking_state_changed",
        guards={"confirm": "before_confirmation"},
        document=lambda booking: booking.to_document(),
        update=lambda booking, doc: booking.update_from(doc),
    )
    machine = BookingMachine(model=booking, listeners=[hooks])
    async with session.begin():
        await machine.send("confirm", session=session)   # TransitionDenied on a deny

The listener runs before the state changes (the guard's call, whose merged patch is
applied to the model) and after it (the emit, which joins ``session``). A deny raises
:class:`TransitionDenied` from the machine's ``before`` step, so the state stays as it
was and nothing is emitted; a host that rolls back after the emit loses both together.

python-statemachine is used rather than `transitions`: its workflow is a typed class
that leaves the model alone (it only writes the model's ``state`` field, while
`transitions` adds trigger methods and helpers to the model object, awkward on an
ORM-mapped row); its callbacks may be coroutines awaited in order by the machine, an
exception from one propagates unchanged and leaves the state as it was; and a listener
is a plain object whose callbacks receive by name what they ask for, ``send``'s keyword
arguments included (``session``), so one listener serves every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import HookRuntimeError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from .blocking import CallResult
    from .runtime import HookRuntime

__all__ = ["TransitionDenied", "WorkflowHooks"]

Document = dict[str, Any]


class TransitionDenied(HookRuntimeError):
    """A blocking hook denied a transition; the state did not change.

    ``reason`` is for logs, ``user_message`` for the person who asked; ``result`` is
    the whole call (outcomes per receiver included)."""

    def __init__(self, transition: str, topic: str, result: CallResult) -> None:
        self.transition = transition
        self.topic = topic
        self.result = result
        self.reason: str | None = result.reason
        self.user_message: str | None = result.user_message
        super().__init__(f"{topic} denied {transition!r}: {result.reason or 'no reason given'}")


class WorkflowHooks:
    """A python-statemachine listener that calls ``guards[event]`` (a blocking topic)
    before that event's transition and emits ``changed`` (a queued topic) after every
    transition, as ``{subject: document, "transition": {"name", "from", "to"}}`` keyed
    by the document's ``id``.

    ``document(model)`` gives the model as the topics' JSON document; ``update(model,
    patched)`` writes a guard's patched document back to the model. Pass the host's
    ``AsyncSession`` to ``machine.send(event, session=session)``: the event is written
    in that session's transaction, so it exists if and only if the host commits.
    """

    def __init__(
        self,
        runtime: HookRuntime,
        *,
        org: str,
        subject: str,
        changed: str,
        guards: Mapping[str, str],
        document: Callable[[Any], Document],
        update: Callable[[Any, Document], None],
        deadline: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.org = org
        self.subject = subject
        self.changed = changed
        self.guards = dict(guards)
        self.document = document
        self.update = update
        self.deadline = deadline

    # python-statemachine finds these by name and passes the arguments they name.

    async def before_transition(
        self, event: Any, model: Any, session: AsyncSession | None = None
    ) -> None:
        name = str(event.id)
        if session is None:
            # Checked before the state changes: without the host's session the event
            # could outlive a rolled-back change.
            raise HookRuntimeError(
                f"send {name!r} with session=: {self.changed} joins the host's transaction"
            )
        topic = self.guards.get(name)
        if topic is None:
            return
        result = await self.runtime.call(
            topic, self.document(model), org=self.org, deadline=self.deadline
        )
        if not result.allowed:
            raise TransitionDenied(name, topic, result)
        if result.patch:
            self.update(model, result.apply(self.document(model)))

    async def after_transition(
        self, event: Any, source: Any, target: Any, model: Any, session: AsyncSession | None = None
    ) -> None:
        assert session is not None  # before_transition refused a send without it
        doc = self.document(model)
        payload = {
            self.subject: doc,
            "transition": {"name": str(event.id), "from": source.value, "to": target.value},
        }
        await self.runtime.emit(self.changed, payload, org=self.org, key=doc["id"], session=session)

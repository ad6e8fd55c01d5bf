"""Registrations: an org's subscriptions of topics to a receiver URL, with a signing secret.

``runtime.registrations`` validates every field with a precise message, encrypts
secrets and custom header values, and guards every write with ``rev``: a write
that names a stale ``rev`` is a :class:`~hookruntime.errors.ConflictError`.

This module holds the operations on the store. :class:`Registration`, the view they
return, is in :mod:`hookruntime.registration_view`; ``EDITABLE``, the argument checks
and the sealing of checked values into a row are in :mod:`hookruntime.registration_input`.
Both names stay importable from here.
"""

from __future__ import annotations

import builtins
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .catalog import Catalog
from .errors import NotFoundError, ValidationError
from .ids import new_id, new_rev
from .observe.tracing import current_traceparent
from .operational import registration_summary
from .profiles import get_profile
from .registration_input import (
    EDITABLE,
    MAX_GRACE,
    check_editable,
    check_rotation,
    editable_values,
    sealed_row,
)
from .registration_view import Registration, open_headers, open_secrets, view
from .store.cascade import attempts_of, lock_deliveries
from .store.crypto import SecretBox
from .store.engine import Database
from .store.holds import hold, resume
from .store.models import DELIVERIES as _DELIVERIES
from .store.models import REGISTRATION_TOPICS as _TOPICS
from .store.models import REGISTRATIONS as _REGISTRATIONS
from .store.notices import write_notice
from .store.orgs import ensure_org
from .store.registrations import check_rev, compare_and_set, load, write_topics
from .validation import check_registration, secret_problem

__all__ = ["EDITABLE", "MAX_GRACE", "MAX_PER_ORG", "Registration", "Registrations"]

log = logging.getLogger("hookruntime")
#: Registrations one org may hold.
MAX_PER_ORG = 100


class Waker(Protocol):
    """What wakes this process's idle workers (:class:`hookruntime.queue.wake.Wakeup`)."""

    def notify(self) -> None: ...


class Registrations:
    """``runtime.registrations``: create, get, list, update, delete, rotate_secret.

    Each change writes its ``webhook.created``/``updated``/``deleted`` notice to the
    org's subscribers in its own transaction (:mod:`hookruntime.store.notices`); on
    commit, ``wakeup`` (when given) wakes this process's idle workers to deliver it.
    """

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        box: SecretBox,
        allow_private: bool = False,
        *,
        wakeup: Waker | None = None,
    ) -> None:
        self._db = database
        self._catalog = catalog
        self._box = box
        self._allow_private = allow_private
        self._listeners: builtins.list[Callable[[str], None]] = []
        self._wakeup = wakeup

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(org)`` after every write to one of the org's registrations."""
        self._listeners.append(listener)

    def _changed(self, org: str, notices: int) -> None:
        for listener in self._listeners:
            listener(org)
        if notices and self._wakeup is not None:
            self._wakeup.notify()

    @staticmethod
    async def _notice(session: AsyncSession, topic: str, registration: Registration) -> int:
        """Write ``topic``'s notice of ``registration`` in ``session``'s transaction."""
        summary = registration_summary(
            registration.id,
            registration.url,
            builtins.list(registration.topics),
            registration.active,
            time.time(),
        )
        # Read here, in the caller's context, not inside the synchronous part.
        traceparent = current_traceparent()
        return await session.run_sync(
            lambda sync: write_notice(
                sync.connection(), registration.org, topic, summary, traceparent=traceparent
            )
        )

    async def create(
        self,
        *,
        org: str,
        topics: Iterable[str] | str,
        url: str,
        profile: str | None = None,
        secret: str | None = None,
        priority: int = 0,
        on_failure: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the receiver's, not this call's
        ordered: bool = False,
        headers: Mapping[str, str] | None = None,
        retry_schedule: Iterable[float] | None = None,
        max_attempts: int | None = None,
        signed_responses: bool = False,
        active: bool = True,
        description: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> Registration:
        """Create a registration. ``secret=None`` generates one fitting the profile; it is
        returned on the result, once. ``scopes`` (the API caller's) must cover every
        topic's required scopes; the trusted Python caller passes none."""
        values = check_registration(
            self._catalog,
            self._allow_private,
            {
                "org": org,
                "topics": topics,
                "url": url,
                "profile": profile,
                "secret": secret,
                "priority": priority,
                "on_failure": on_failure,
                "timeout": timeout,
                "ordered": ordered,
                "headers": headers or {},
                "retry_schedule": retry_schedule,
                "max_attempts": max_attempts,
                "signed_responses": signed_responses,
                "active": active,
                "description": description,
            },
            scopes,
        )
        now = time.time()
        registration_id = new_id("reg")
        row = {
            **sealed_row(self._box, values),
            "id": registration_id,
            "org_id": org,
            "rev": new_rev(),
            "integration_id": str(uuid.uuid4()),
            "created_at": now,
            "updated_at": now,
        }
        async with self._db.writing(), self._db.session() as session, session.begin():
            await ensure_org(session, org)
            held = (
                await session.execute(select(func.count()).where(_REGISTRATIONS.c.org_id == org))
            ).scalar_one()
            if held >= MAX_PER_ORG:
                raise ValidationError.single(
                    "org", f"org {org!r} holds {held} registrations, the limit; delete one first"
                )
            await session.execute(insert(_REGISTRATIONS).values(row))
            await write_topics(session, registration_id, org, values["topics"])
            created = view(self._box, row, reveal=True)
            notices = await self._notice(session, "webhook.created", created)
        self._changed(org, notices)
        return created

    async def get(
        self, registration_id: str, *, org: str, scopes: Iterable[str] | None = None
    ) -> Registration:
        """One registration; with ``scopes`` (an API caller's), one carrying a topic they
        do not cover is not found, as another org's."""
        async with self._db.session() as session:
            return view(self._box, await self._load(session, registration_id, org, scopes))

    async def list(
        self,
        *,
        org: str,
        topic: str | None = None,
        active: bool | None = None,
        limit: int = 100,
        after: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> list[Registration]:
        """Registrations of ``org`` in creation order; ``after`` (an id) continues a page.
        With ``scopes``, those carrying a topic they do not cover are left out."""
        if not 1 <= limit <= 1000:
            raise ValidationError.single("limit", "must be between 1 and 1000")
        query = select(_REGISTRATIONS).where(_REGISTRATIONS.c.org_id == org)
        hidden = self._catalog.hidden_from(scopes)
        if hidden:
            query = query.where(
                _REGISTRATIONS.c.id.not_in(
                    select(_TOPICS.c.registration_id).where(
                        _TOPICS.c.org_id == org, _TOPICS.c.topic.in_(hidden)
                    )
                )
            )
        if topic is not None:
            query = query.where(
                _REGISTRATIONS.c.id.in_(
                    select(_TOPICS.c.registration_id).where(
                        _TOPICS.c.org_id == org, _TOPICS.c.topic == topic
                    )
                )
            )
        if active is not None:
            query = query.where(_REGISTRATIONS.c.active == active)
        if after is not None:
            query = query.where(_REGISTRATIONS.c.id > after)
        query = query.order_by(_REGISTRATIONS.c.id).limit(limit)
        async with self._db.session() as session:
            rows = (await session.execute(query)).mappings().all()
        return [view(self._box, dict(row)) for row in rows]

    async def update(
        self,
        registration_id: str,
        *,
        org: str,
        rev: str,
        scopes: Iterable[str] | None = None,
        **changes: Any,
    ) -> Registration:
        """Change some fields; ``rev`` must be the current one. A new ``secret`` is
        returned on the result."""
        check_editable(changes)
        async with self._db.writing(), self._db.session() as session, session.begin():
            current = await self._load(session, registration_id, org, scopes)
            check_rev(current, rev)
            merged = {**editable_values(self._box, current), **changes, "org": org}
            if "secret" not in changes:
                merged["secret"] = self._box.open(current["secret"])
            values = check_registration(self._catalog, self._allow_private, merged, scopes)
            row = {
                **sealed_row(self._box, values),
                "rev": new_rev(current["rev"]),
                "updated_at": time.time(),
            }
            if "secret" not in changes:
                del row["secret"]
            await compare_and_set(session, registration_id, org, rev, row)
            if values["active"] != current["active"]:
                now = row["updated_at"]
                await session.execute(
                    resume(registration_id, now) if values["active"] else hold(registration_id)
                )
            if "topics" in changes:
                await session.execute(
                    delete(_TOPICS).where(_TOPICS.c.registration_id == registration_id)
                )
                await write_topics(session, registration_id, org, values["topics"])
            updated = view(self._box, {**current, **row}, reveal="secret" in changes)
            notices = await self._notice(session, "webhook.updated", updated)
        self._changed(org, notices)
        return updated

    async def rotate_secret(
        self,
        registration_id: str,
        *,
        org: str,
        rev: str | None = None,
        secret: str | None = None,
        grace: float = 86_400.0,
        scopes: Iterable[str] | None = None,
    ) -> Registration:
        """Replace the signing secret; the old one keeps signing beside it for ``grace``
        seconds where the profile can carry two signatures (``standard``)."""
        check_rotation(grace, rev)
        async with self._db.writing(), self._db.session() as session, session.begin():
            current = await self._load(session, registration_id, org, scopes)
            if rev is not None:
                check_rev(current, rev)
            profile = get_profile(current["profile"])
            new_secret = profile.generate_secret() if secret is None else secret
            if problem := secret_problem(profile, new_secret):
                raise ValidationError.single("secret", problem)
            now = time.time()
            row = {
                "secret": self._box.seal(new_secret),
                "previous_secret": current["secret"] if grace > 0 else None,
                "previous_secret_until": now + grace if grace > 0 else None,
                "rev": new_rev(current["rev"]),
                "updated_at": now,
            }
            await compare_and_set(session, registration_id, org, current["rev"], row)
            rotated = view(self._box, {**current, **row}, reveal=True)
            notices = await self._notice(session, "webhook.updated", rotated)
        self._changed(org, notices)
        return rotated

    async def delete(
        self,
        registration_id: str,
        *,
        org: str,
        rev: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> None:
        async with self._db.writing(), self._db.session() as session, session.begin():
            current = await self._load(session, registration_id, org, scopes)
            if rev is not None:
                check_rev(current, rev)
            theirs = _DELIVERIES.c.registration_id == registration_id
            (await session.execute(lock_deliveries(theirs))).all()
            await session.execute(attempts_of(theirs))
            await session.execute(
                delete(_REGISTRATIONS).where(
                    _REGISTRATIONS.c.id == registration_id,
                    _REGISTRATIONS.c.org_id == org,
                    _REGISTRATIONS.c.rev == current["rev"],
                )
            )
            deleted = view(self._box, {**current, "active": False})
            notices = await self._notice(session, "webhook.deleted", deleted)
        self._changed(org, notices)

    async def secret_matches(self, registration_id: str, *, org: str, secret: str) -> bool:
        """Whether ``secret`` is the registration's current signing secret (compared in
        constant time; the secret itself is never returned after creation)."""
        async with self._db.session() as session:
            row = await load(session, registration_id, org)
        stored = self._box.open(row["secret"])
        return hmac.compare_digest(
            stored.encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass")
        )

    def secrets(self, row: Mapping[str, Any], now: float | None = None) -> builtins.list[str]:
        """The plaintext secrets that sign for ``row``: current first, then a rotated-out
        one while its grace period lasts."""
        return open_secrets(self._box, row, now)

    def headers(self, row: Mapping[str, Any]) -> dict[str, str]:
        return open_headers(self._box, row)

    # -- internals ---------------------------------------------------------------

    async def _load(
        self, session: Any, registration_id: str, org: str, scopes: Iterable[str] | None
    ) -> dict[str, Any]:
        """The row, unless ``scopes`` miss one of its topics' scopes: then not found, so
        that a key cannot learn what it may not touch."""
        row = await load(session, registration_id, org)
        if self._catalog.hidden_from(scopes).intersection(row["topics"]):
            raise NotFoundError(f"no registration {registration_id!r} in org {org!r}")
        return row

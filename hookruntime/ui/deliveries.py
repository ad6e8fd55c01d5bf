"""Deliveries: a filtered, paginated list; one delivery with its attempts and the
request as sent; retry one; retry every match, confirmed first, with progress."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from ..errors import HookRuntimeError, NotFoundError, ValidationError
from ..queue.deliveries import STATUSES
from .mount import base_of
from .queries import (
    COUNT_CAP,
    DeliveryFilter,
    attempt_headers,
    capped_count,
    delivery_page,
    matching_topics,
    registration_urls,
)
from .render import page, query_string, read_form, redirect, runtime_of
from .sessions import Session
from .wire import rendered_request

__all__ = ["DeliveryViews"]

RETRYABLE = ("dead", "failed", "delivered")


@dataclass
class Job:
    org: str
    wanted: DeliveryFilter
    total: int = 0
    done: int = 0
    finished: bool = False
    error: str | None = None
    started: float = field(default_factory=time.time)


class DeliveryViews:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    async def listing(self, request: Request, session: Session) -> Response:
        runtime = runtime_of(request)
        wanted = DeliveryFilter.parse(request.query_params)
        hidden = session.hidden(runtime.catalog)
        session.check_topics(runtime.catalog, [wanted.topic] if wanted.topic else [])
        rows, following = await delivery_page(
            runtime, session.org, wanted, request.query_params.get("before"), hidden
        )
        urls = await registration_urls(runtime, session.org, [r["registration_id"] for r in rows])
        return page(
            request,
            "deliveries.html",
            session,
            rows=rows,
            urls=urls,
            wanted=wanted,
            statuses=STATUSES,
            topics=sorted(set(runtime.catalog) - hidden),
            next_url=None
            if following is None
            else base_of(request)
            + "/ui/deliveries"
            + query_string(**wanted.params(), before=following),
            retry_url=base_of(request) + "/ui/deliveries/retry" + query_string(**wanted.params()),
        )

    async def detail(self, request: Request, session: Session) -> Response:
        runtime = runtime_of(request)
        found = await runtime.deliveries.get(request.path_params["id"], org=session.org)
        session.check_topics(runtime.catalog, [found.topic])
        wire = await rendered_request(runtime, session.org, found.registration_id, found.event_id)
        urls = await registration_urls(runtime, session.org, [found.registration_id])
        headers = await attempt_headers(runtime, session.org, found.id)
        headers += [None] * (len(found.attempt_log) - len(headers))
        return page(
            request,
            "delivery.html",
            session,
            delivery=found,
            # Newest first, each with the response headers it kept.
            attempts=list(zip(found.attempt_log, headers, strict=False))[::-1],
            wire=wire,
            url=urls.get(found.registration_id),
            retried=request.query_params.get("retried") == "1",
        )

    async def retry(self, request: Request, session: Session) -> Response:
        await read_form(request, session.csrf)
        delivery_id = request.path_params["id"]
        runtime = runtime_of(request)
        found = await runtime.deliveries.get(delivery_id, org=session.org)
        session.check_topics(runtime.catalog, [found.topic])
        await runtime.deliveries.retry(delivery_id, org=session.org)
        return redirect(request, f"/ui/deliveries/{delivery_id}?retried=1")

    async def confirm_retry_all(self, request: Request, session: Session) -> Response:
        wanted = DeliveryFilter.parse(request.query_params)
        if wanted.status is None:
            wanted = DeliveryFilter(**{**vars(wanted), "status": "dead"})
        self._retryable(wanted, session, request)
        runtime = runtime_of(request)
        count = await capped_count(runtime, session.org, wanted, session.hidden(runtime.catalog))
        return page(
            request,
            "retry_all.html",
            session,
            wanted=wanted,
            count=count,
            capped=count > COUNT_CAP,
            cap=COUNT_CAP,
        )

    async def retry_all(self, request: Request, session: Session) -> Response:
        fields = await read_form(request, session.csrf)
        wanted = DeliveryFilter.parse(fields)
        self._retryable(wanted, session, request)
        job_id = secrets.token_urlsafe(12)
        job = self.jobs[job_id] = Job(session.org, wanted)
        self._forget_old()
        runtime = runtime_of(request)
        hidden = session.hidden(runtime.catalog)

        async def run() -> None:
            try:
                assert wanted.status is not None
                # retry_many cannot leave topics out: a key that may not see some goes
                # topic by topic over the visible ones that have matches.
                topics: list[str | None] = [wanted.topic]
                if wanted.topic is None and hidden:
                    topics = [*await matching_topics(runtime, session.org, wanted, hidden)]
                job.total = await capped_count(runtime, session.org, wanted, hidden, cap=None)
                for topic in topics:
                    base = job.done

                    def progress(done: int, _total: int, base: int = base) -> None:
                        job.done = base + done

                    await runtime.deliveries.retry_many(
                        org=session.org,
                        status=wanted.status,
                        topic=topic,
                        registration_id=wanted.registration_id,
                        since=wanted.since,
                        until=wanted.until,
                        progress=progress,
                    )
            except HookRuntimeError as exc:
                job.error = str(exc)
            finally:
                job.finished = True

        return redirect_with_task(request, f"/ui/jobs/{job_id}", run)

    async def job(self, request: Request, session: Session) -> Response:
        job = self.jobs.get(request.path_params["id"])
        if job is None or job.org != session.org:
            raise NotFoundError("no such retry job")
        return page(request, "job.html", session, job=job)

    @staticmethod
    def _retryable(wanted: DeliveryFilter, session: Session, request: Request) -> None:
        catalog = runtime_of(request).catalog
        session.check_topics(catalog, [wanted.topic] if wanted.topic else [])
        if wanted.status not in RETRYABLE:
            raise ValidationError.single("status", f"only {', '.join(RETRYABLE)} can be retried")
        if wanted.event_id is not None:
            raise ValidationError.single("event_id", "retry one event's deliveries one by one")

    def _forget_old(self) -> None:
        cutoff = time.time() - 3600
        for key in [k for k, j in self.jobs.items() if j.finished and j.started < cutoff]:
            del self.jobs[key]


def redirect_with_task(
    request: Request, path: str, work: Callable[[], Awaitable[None]]
) -> Response:
    """Redirect at once, then run ``work`` (the page redirected to shows its progress)."""
    response = redirect(request, path)
    response.background = BackgroundTask(work)
    return response

"""The overview page: the window's numbers, a time-series chart as inline SVG, disabled
registrations and open circuit breakers."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from .queries import COUNT_CAP
from .render import page, runtime_of
from .sessions import Session
from .stats import WINDOWS, Bucket, collect

__all__ = ["Bar", "bars", "overview"]

CHART_W, CHART_H = 1000.0, 140.0


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_h: float
    bad_y: float
    bad_h: float
    label: str


def bars(buckets: list[Bucket]) -> list[Bar]:
    """Stacked bars (delivered under failed + dead) scaled to the chart's box."""
    peak = max([b.delivered + b.failing for b in buckets] + [1])
    width = CHART_W / max(len(buckets), 1)
    found = []
    for index, bucket in enumerate(buckets):
        ok_h = CHART_H * bucket.delivered / peak
        bad_h = CHART_H * bucket.failing / peak
        found.append(
            Bar(
                x=index * width + 2,
                width=max(width - 4, 1),
                ok_y=CHART_H - ok_h,
                ok_h=ok_h,
                bad_y=CHART_H - ok_h - bad_h,
                bad_h=bad_h,
                label=f"{bucket.delivered} delivered, {bucket.failing} failed or dead",
            )
        )
    return found


async def overview(request: Request, session: Session) -> Response:
    window = request.query_params.get("window", "hour")
    if window not in WINDOWS:
        window = "hour"
    runtime = runtime_of(request)
    stats = None
    if session.can("deliveries:read"):
        stats = await collect(runtime, session.org, window, session.hidden(runtime.catalog))
    registrations = []
    if session.can("webhooks:manage"):
        hidden = session.hidden(runtime.catalog)
        registrations = [
            r
            for r in await runtime.registrations.list(org=session.org, limit=1000)
            if not hidden & set(r.topics)
        ]
    disabled = [r for r in registrations if not r.active]
    open_breakers = [
        (r, runtime.breakers[r.id].state)
        for r in registrations
        if r.active and runtime.breakers[r.id].state != "closed"
    ]
    return page(
        request,
        "overview.html",
        session,
        window=window,
        windows=list(WINDOWS),
        stats=stats,
        bars=bars(stats.buckets) if stats else [],
        chart=(CHART_W, CHART_H),
        urls={r.id: r.url for r in registrations},
        disabled=disabled,
        open_breakers=open_breakers,
        manage=session.can("webhooks:manage"),
        cap=COUNT_CAP,
    )

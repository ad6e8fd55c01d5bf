"""The delivery dashboard at ``/ui/``: server-rendered pages over the same runtime as the
API, behind a sign-in with an API key (see :mod:`.auth`)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .auth import Guard
from .calls import CallViews
from .deliveries import DeliveryViews
from .docs import docs
from .mount import UI, Prefixed
from .overview import overview
from .registrations import RegistrationViews
from .render import HERE, safe
from .topics import topics

__all__ = ["dashboard_routes"]

READ = "deliveries:read"
MANAGE = "webhooks:manage"


def dashboard_routes() -> list[BaseRoute]:
    """The routes of ``/ui`` and ``/docs``, for an app whose ``state.runtime`` is the runtime."""
    guard = Guard()
    deliveries = DeliveryViews()
    registrations = RegistrationViews()
    calls = CallViews()

    routes: list[BaseRoute] = [
        Route("/", guard()(overview), methods=["GET"]),
        Route("/signin", safe(guard.signin), methods=["POST"]),
        Route("/signout", guard()(guard.signout), methods=["POST"]),
        Route("/deliveries", guard(READ)(deliveries.listing), methods=["GET"]),
        Route("/deliveries/retry", guard(MANAGE)(deliveries.confirm_retry_all), methods=["GET"]),
        Route("/deliveries/retry", guard(MANAGE)(deliveries.retry_all), methods=["POST"]),
        Route("/deliveries/{id}", guard(READ)(deliveries.detail), methods=["GET"]),
        Route("/deliveries/{id}/retry", guard(MANAGE)(deliveries.retry), methods=["POST"]),
        Route("/registrations", guard(MANAGE)(registrations.listing), methods=["GET"]),
        Route("/registrations/{id}", guard(MANAGE)(registrations.show), methods=["GET"]),
        Route("/registrations/{id}/active", guard(MANAGE)(registrations.toggle), methods=["POST"]),
        Route(
            "/registrations/{id}/rotate-secret",
            guard(MANAGE)(registrations.rotate),
            methods=["POST"],
        ),
        Route("/registrations/{id}/test", guard(MANAGE)(registrations.test), methods=["POST"]),
        Route("/calls", guard(READ)(calls.listing), methods=["GET"]),
        Route("/calls/{id}", guard(READ)(calls.detail), methods=["GET"]),
        Route("/topics", guard()(topics), methods=["GET"]),
        Route("/jobs/{id}", guard(MANAGE)(deliveries.job), methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static"),
    ]
    return [Mount(UI, app=Prefixed(routes)), Route("/docs", safe(docs), methods=["GET"])]

"""The same assertions for every HTTP client backend (aiohttp, httpx, pyreqwest): the
outcomes, the deadline, the body cap, redirects and the SSRF guard; then what is
particular to the pyreqwest backend (its per-name address pinning)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hookruntime import HookRuntime
from hookruntime.errors import (
    ConnectError,
    RequestTimeout,
    ResponseTooLarge,
    TargetBlocked,
    TransportError,
)
from hookruntime.http import HttpClient, pins
from hookruntime.http.httpx_client import HttpxClient
from hookruntime.http.reqwest_client import ReqwestClient
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio

BACKENDS = ("aiohttp", "httpx", "reqwest")
# What a deadline may be overrun by on a shared, loaded machine.
MARGIN = 0.5


class Answers(AbstractResolver):
    """Answers every name with one address and remembers the names asked; usable as an
    aiohttp resolver and as the ``resolve`` callable of the other backends."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return [self.address]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host, host=self.address, port=port, family=family, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


Make = Callable[..., HttpClient]


def _maker(backend: str) -> Make:
    def make(*, allow_private: bool, answers: Answers | None = None) -> HttpClient:
        if backend == "aiohttp":
            return HttpClient(allow_private=allow_private, resolver=answers)
        if backend == "httpx":
            return HttpxClient(allow_private=allow_private, resolve=answers)
        return ReqwestClient(allow_private=allow_private, resolve=answers)

    return make


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest) -> Make:
    return _maker(request.param)


@pytest.fixture
async def client(make: Make) -> AsyncIterator[HttpClient]:
    opened = make(allow_private=True)
    await opened.open()
    yield opened
    await opened.aclose()


async def test_a_2xx_answer_comes_back_with_its_body_and_the_custom_headers_went_out(
    client: HttpClient,
) -> None:
    async with LoopbackReceiver(lambda _r: Reply.json({"decision": "allow"}, status=201)) as rx:
        response = await client.post(
            rx.url, {"Content-Type": "application/json", "X-Test": "1"}, b'{"a":1}', timeout=2
        )
    assert response.status == 201 and response.body == b'{"decision": "allow"}'
    assert response.headers["Content-Type"] == response.headers["content-type"]
    assert response.elapsed > 0
    [request] = rx.received
    assert request.body == b'{"a":1}' and request.headers["x-test"] == "1"
    assert request.headers["user-agent"].startswith("hookruntime/")
    assert request.headers["host"] == f"127.0.0.1:{rx.port}"


async def test_a_non_2xx_answer_is_a_response_not_an_error(client: HttpClient) -> None:
    async with LoopbackReceiver(lambda _r: Reply.json({"error": "busy"}, status=503)) as rx:
        response = await client.post(rx.url, {}, b"{}", timeout=2)
    assert response.status == 503 and response.body == b'{"error": "busy"}'


@pytest.mark.parametrize(
    "reply", [Reply.hang(), Reply.trickle(interval=0.05)], ids=["hang", "trickle"]
)
async def test_a_hanging_or_trickling_receiver_times_out_at_the_deadline(
    client: HttpClient, reply: Reply
) -> None:
    async with LoopbackReceiver(lambda _r: reply) as rx:
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            await client.post(rx.url, {}, b"{}", timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 0.3 + MARGIN


async def test_a_callers_own_deadline_cancels_the_request_as_its_own(
    client: HttpClient,
) -> None:
    # As the blocking caller's deadline over a fan-out does: the caller's scope, not
    # the request, ends it, and nothing escapes as a bare cancellation.
    async with LoopbackReceiver(lambda _r: Reply.hang()) as rx:
        started = time.monotonic()
        with anyio.move_on_after(0.2) as scope:
            await client.post(rx.url, {}, b"{}", timeout=5)
        assert scope.cancelled_caught
        assert time.monotonic() - started < 0.2 + MARGIN


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
async def test_a_body_over_the_cap_is_refused_before_the_deadline(
    client: HttpClient, declared: bool
) -> None:
    reply = Reply.huge(size=1024 * 1024, declared=declared)
    async with LoopbackReceiver(lambda _r: reply) as rx:
        started = time.monotonic()
        with pytest.raises(ResponseTooLarge):
            await client.post(rx.url, {}, b"{}", timeout=3, max_body=64 * 1024)
        assert time.monotonic() - started < 3


async def test_a_redirect_is_returned_not_followed(client: HttpClient) -> None:
    async with (
        LoopbackReceiver() as inner,
        LoopbackReceiver(lambda _r: Reply(302, headers={"Location": inner.url})) as outer,
    ):
        response = await client.post(outer.url, {}, b"{}", timeout=2)
    assert response.status == 302 and inner.received == []


async def test_a_refused_port_is_a_connect_error(client: HttpClient, refused_port: int) -> None:
    with pytest.raises(ConnectError):
        await client.post(f"http://127.0.0.1:{refused_port}/hook", {}, b"{}", timeout=2)


async def test_posting_before_open_is_a_transport_error(make: Make) -> None:
    with pytest.raises(TransportError, match="not open"):
        await make(allow_private=False).post("https://example.com/", {}, b"", timeout=1)


async def test_the_guard_refuses_loopback_literals_names_and_legacy_spellings(
    make: Make,
) -> None:
    answers = Answers("127.0.0.1")
    async with LoopbackReceiver() as rx:
        client = make(allow_private=False, answers=answers)
        await client.open()
        try:
            for url in (
                rx.url,
                f"http://localhost:{rx.port}/hook",
                f"http://0x7f.1:{rx.port}/hook",
                f"http://[::ffff:127.0.0.1]:{rx.port}/hook",
            ):
                with pytest.raises(TargetBlocked):
                    await client.post(url, {}, b"{}", timeout=2)
            with pytest.raises(TargetBlocked, match="127.0.0.1 is loopback"):
                await client.post(rx.url, {}, b"{}", timeout=2)
            with pytest.raises(TargetBlocked, match="four decimal numbers"):
                await client.post(f"http://0x7f.1:{rx.port}/hook", {}, b"{}", timeout=2)
            with pytest.raises(TargetBlocked, match=r"inward\.example resolves to 127\.0\.0\.1"):
                await client.post(f"http://inward.example:{rx.port}/hook", {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    assert answers.asked == ["inward.example"]
    assert rx.received == []


async def test_a_name_goes_to_the_address_it_resolved_to_and_keeps_its_host_header(
    make: Make,
) -> None:
    # The system's DNS does not know inward.example: only the client's resolver does.
    answers = Answers("127.0.0.1")
    async with LoopbackReceiver() as rx:
        client = make(allow_private=True, answers=answers)
        await client.open()
        try:
            response = await client.post(
                f"http://Inward.Example:{rx.port}/hook", {}, b"{}", timeout=2
            )
        finally:
            await client.aclose()
    assert response.status == 200
    assert rx.received[0].headers["host"].lower() == f"inward.example:{rx.port}"
    assert answers.asked == ["inward.example"]


# -- the pyreqwest backend's own ----------------------------------------------------------


def _lenient_once(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Loopback passes the guard's first judgement (it stands for a public address
    there) and is judged truly from then on."""
    real = pins.blocked_reason
    judged: list[object] = []

    def lenient(address: object) -> str | None:
        judged.append(address)
        return None if len(judged) == 1 else real(address)  # type: ignore[arg-type]

    monkeypatch.setattr(pins, "blocked_reason", lenient)
    return judged


async def test_reqwest_refuses_a_name_that_turns_inward_on_its_next_resolution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _lenient_once(monkeypatch)
    answers = Answers("127.0.0.1")
    async with LoopbackReceiver() as rx:
        client = ReqwestClient(resolve=answers, dns_ttl=0)
        await client.open()
        url = f"http://rebind.example:{rx.port}/hook"
        try:
            assert (await client.post(url, {}, b"{}", timeout=2)).status == 200
            for _ in range(2):
                with pytest.raises(TargetBlocked, match="rebind.example resolves to 127.0.0.1"):
                    await client.post(url, {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    assert answers.asked == ["rebind.example"] * 3
    assert len(rx.received) == 1


async def test_reqwest_keeps_a_checked_address_for_its_ttl_without_resolving_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judged = _lenient_once(monkeypatch)
    answers = Answers("127.0.0.1")
    async with LoopbackReceiver() as rx:
        client = ReqwestClient(resolve=answers, dns_ttl=60)
        await client.open()
        try:
            for _ in range(3):
                await client.post(f"http://pinned.example:{rx.port}/hook", {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    assert answers.asked == ["pinned.example"] and len(judged) == 1
    assert len(rx.received) == 3


async def test_reqwest_follows_a_name_to_its_new_address_after_the_ttl() -> None:
    answers = Answers("127.0.0.1")
    async with LoopbackReceiver() as rx:
        client = ReqwestClient(allow_private=True, resolve=answers, dns_ttl=0)
        await client.open()
        url = f"http://moving.example:{rx.port}/hook"
        try:
            assert (await client.post(url, {}, b"{}", timeout=2)).status == 200
            answers.address = "127.0.0.2"  # nothing listens there
            with pytest.raises(ConnectError):
                await client.post(url, {}, b"{}", timeout=2)
            answers.address = "127.0.0.1"
            assert (await client.post(url, {}, b"{}", timeout=2)).status == 200
        finally:
            await client.aclose()
    assert len(rx.received) == 2


async def test_reqwest_lets_a_request_in_flight_finish_when_its_name_moves() -> None:
    answers = Answers("127.0.0.1")
    outcomes: list[BaseException] = []
    async with LoopbackReceiver(lambda _r: Reply.hang()) as rx:
        client = ReqwestClient(allow_private=True, resolve=answers, dns_ttl=0)
        await client.open()
        url = f"http://moving.example:{rx.port}/hook"

        async def hanging() -> None:
            try:
                await client.post(url, {}, b"{}", timeout=0.5)
            except RequestTimeout as exc:
                outcomes.append(exc)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(hanging)
                await eventually(lambda: bool(rx.received), timeout=2)
                answers.address = "127.0.0.2"  # retires the client the first one is on
                with pytest.raises(ConnectError):
                    await client.post(url, {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    # Timed out as a hanging request does, not cut off by its client being closed.
    assert [type(outcome) for outcome in outcomes] == [RequestTimeout]


async def test_reqwest_judges_the_host_as_reqwest_reads_it_even_past_check_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stands for any URL the shared check reads differently from reqwest: what reqwest
    # would connect to is judged again, and a name is never left to reqwest's own DNS.
    from hookruntime.http import client as shared

    monkeypatch.setattr(shared, "check_url", lambda _url: None)  # the check every backend runs
    async with LoopbackReceiver() as rx:
        client = ReqwestClient()
        await client.open()
        try:
            for url in (rx.url, f"http://localhost:{rx.port}/hook"):
                with pytest.raises(TargetBlocked, match="loopback"):
                    await client.post(url, {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    assert rx.received == []


async def test_a_runtime_on_reqwest_delivers_and_calls(
    tmp_path, master_key, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    posted: list[str] = []
    post = ReqwestClient.post

    async def counted(self: ReqwestClient, url: str, *args: object, **kwargs: object) -> object:
        posted.append(url)
        return await post(self, url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ReqwestClient, "post", counted)
    async with (
        LoopbackReceiver(lambda _r: Reply.json({"decision": "deny", "reason": "no"})) as rx,
        HookRuntime(
            f"sqlite:///{tmp_path / 'r.db'}",
            master_key=master_key,
            allow_private_targets=True,
            http_client="reqwest",
            environ={},
        ) as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["profile_updated", "user_logged_in"], url=rx.url
        )
        await runtime.emit("profile_updated", {"id": "u1"}, org="acme")

        async def delivered() -> bool:
            return bool(await runtime.deliveries.list(org="acme", status="delivered"))

        await eventually(delivered, timeout=5)
        result = await runtime.call("user_logged_in", {"id": "u1"}, org="acme")
    assert not result.allowed and result.reason == "no"
    assert posted == [rx.url, rx.url] and len(rx.received) == 2


def test_bench_clients_measures_each_backend_side_by_side() -> None:
    from hookruntime.bench import clients

    # On a thread of its own, as the CLI runs it: the bench starts its own event loop,
    # which anyio refuses where an earlier test's loop left this thread marked as in one.
    with ThreadPoolExecutor(1) as pool:
        results = pool.submit(
            clients.run, n=200, repeats=2, backends=["aiohttp", "reqwest"]
        ).result()
    for backend in ("aiohttp", "reqwest"):
        assert len(results["runs"][backend]) == 2
        assert results[backend]["per_second"] > 0
        assert results[backend]["loop_cpu_us_per_request"] > 0
    assert "reqwest / aiohttp" in clients.render(results)

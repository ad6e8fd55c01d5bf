"""The outbound HTTP client: one small interface (:class:`HttpClient`, :class:`Response`),
implemented here on aiohttp. The httpx and pyreqwest backends (:mod:`.httpx_client`,
:mod:`.reqwest_client`) subclass it and keep its outcomes; every backend starts a request
with :func:`admit`. ``HOOKRUNTIME_HTTP_CLIENT`` chooses the backend (``auto``: pyreqwest
where installed, else aiohttp); the README's Performance section has the measurements
behind that default.

With the guard on (the default), each request's host is judged as the client will
connect to it, names are resolved through :class:`GuardedResolver`, and every socket is
checked against the address it is about to connect to (:func:`guarded_socket`).

Every request runs under one time limit covering connect, send, headers and
body; the body is read in chunks up to a cap, so a receiver that hangs, trickles
or streams a huge body costs at most the time limit and the cap. Redirects are
never followed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import anyio
from aiohttp.abc import AbstractResolver

from ..errors import ConnectError, RequestTimeout, ResponseTooLarge, TargetBlocked, TransportError
from .guard import GuardedResolver, PeerRefused, check_url, guarded_socket

__all__ = ["DEFAULT_MAX_BODY", "HttpClient", "Response"]

DEFAULT_MAX_BODY = 256 * 1024
_CHUNK = 64 * 1024
USER_AGENT = "hookruntime/0.1"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float


def admit(url: str, timeout: float, allow_private: bool) -> None:
    """What every backend checks before any I/O: time left for the request, and (unless
    private targets are allowed) the host the URL names, as the client will read it."""
    if timeout <= 0:
        raise RequestTimeout("no time left for the request")
    if not allow_private:
        check_url(url)


class HttpClient:
    """A pooled client. Open it once per process; ``post`` is safe to call concurrently.

    ``resolver`` answers name look-ups (the system's by default); unless ``allow_private``
    its answers pass the guard like the system's would.
    """

    def __init__(
        self,
        *,
        limit: int = 512,
        limit_per_host: int = 0,
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.limit = limit
        self._limit_per_host = limit_per_host
        self.allow_private = allow_private
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        guarded = not self.allow_private
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._resolver) if guarded else self._resolver,
            socket_factory=guarded_socket if guarded else None,
            limit=self.limit,
            limit_per_host=self._limit_per_host,
            ttl_dns_cache=60,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with anyio.CancelScope(shield=True):
                await session.close()

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - the request's own limit, enforced inside
        max_body: int = DEFAULT_MAX_BODY,
    ) -> Response:
        """POST ``body`` and read the whole answer within ``timeout`` seconds.

        Raises :class:`RequestTimeout`, :class:`ConnectError`, :class:`ResponseTooLarge`
        or :class:`TargetBlocked`; any HTTP status is a :class:`Response`.
        """
        session = self._session
        if session is None:
            raise TransportError("the HTTP client is not open")
        started = time.perf_counter()
        admit(url, timeout, self.allow_private)
        try:
            with anyio.fail_after(timeout):
                async with session.post(
                    url, data=body, headers=headers, allow_redirects=False
                ) as answer:
                    declared = answer.content_length
                    if declared is not None and declared > max_body:
                        raise ResponseTooLarge(
                            f"response declares {declared} bytes, over the {max_body}-byte cap"
                        )
                    content = await _read_capped(answer.content, max_body)
                    return Response(
                        answer.status,
                        answer.headers,
                        content,
                        time.perf_counter() - started,
                    )
        except TimeoutError as exc:
            raise RequestTimeout(f"no complete response within {timeout * 1000:.0f} ms") from exc
        except aiohttp.ClientPayloadError as exc:
            raise ConnectError(f"response body broken off: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PeerRefused):
                raise TargetBlocked(exc.os_error.strerror or str(exc.os_error)) from exc
            raise ConnectError(_describe(exc)) from exc
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            raise ConnectError(_describe(exc)) from exc


async def _read_capped(stream: aiohttp.StreamReader, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge(f"response body is over the {cap}-byte cap")
        chunks.append(chunk)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the receiver closed the connection without answering"
    return f"{type(exc).__name__}: {exc}"

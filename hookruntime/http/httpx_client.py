"""The same outbound client on httpx, for hosts whose tests mock HTTP with pytest-httpx.

Selected with ``HOOKRUNTIME_HTTP_CLIENT=httpx`` (or ``HookRuntime(http_client="httpx")``),
never by default: aiohttp and pyreqwest send many times as many requests per second (the
README's Performance section). This one exists so that a host whose test suite
intercepts outbound HTTP with ``pytest-httpx`` intercepts hookruntime's requests too:
pytest-httpx patches :class:`httpx.AsyncHTTPTransport`, and every request here goes
through one.

The outcomes are the aiohttp client's: any HTTP status is a :class:`Response`; a
request raises :class:`RequestTimeout`, :class:`ConnectError`, :class:`ResponseTooLarge`
or :class:`TargetBlocked`; one time limit covers connect, send, headers and body; the
body is read in chunks up to a cap; redirects are never followed; proxies from the
environment are ignored (a proxy would connect on our behalf, past the guard).

The guard (unless ``allow_private``): :func:`check_url` judges the host of every request
before anything is sent; then :class:`PinnedBackend`, the httpcore network backend under
the transport, resolves the name once, refuses it if any address it resolves to is not
public, connects to the checked address itself (so DNS cannot answer differently
between the check and the connection: the address is pinned, not best effort), and
checks the peer of the connected socket once more. TLS still verifies the certificate
against the host name, which httpcore passes as the server name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import anyio
import httpcore
import httpx

from ..errors import ConnectError, RequestTimeout, ResponseTooLarge, TargetBlocked, TransportError
from .client import DEFAULT_MAX_BODY, USER_AGENT, HttpClient, Response, admit
from .guard import Resolve, blocked_reason, literal_address, system_resolve

__all__ = ["HttpxClient", "PinnedBackend"]

_CHUNK = 64 * 1024
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once and connects to the very addresses it resolved to; with
    ``guarded``, refuses a host any of whose addresses is not public."""

    def __init__(self, *, guarded: bool, resolve: Resolve | None = None) -> None:
        self._guarded = guarded
        self._resolve = resolve or system_resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = literal_address(host)
        addresses = [str(literal)] if literal is not None else list(await self._resolve(host, port))
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        if self._guarded:
            for address in addresses:
                parsed = literal_address(address)
                reason = blocked_reason(parsed) if parsed else f"{address!r}, not an IP address"
                if reason:
                    raise TargetBlocked(f"{host} resolves to {reason}")
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            if self._guarded:
                await self._check_peer(stream)
            return stream
        assert failure is not None
        raise failure

    @staticmethod
    async def _check_peer(stream: httpcore.AsyncNetworkStream) -> None:
        peer = stream.get_extra_info("server_addr")
        address = literal_address(str(peer[0])) if peer else None
        reason = blocked_reason(address) if address is not None else "an unknown peer"
        if reason:
            await stream.aclose()
            raise TargetBlocked(f"connection refused after connecting: {reason}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetBlocked("a receiver is never a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (so pytest-httpx's patch of it applies) over a
    :class:`PinnedBackend`; httpx takes no network backend, so the pool is built here."""

    def __init__(self, *, limit: int, guarded: bool, resolve: Resolve | None) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limit,
            max_keepalive_connections=limit,
            keepalive_expiry=5.0,
            network_backend=PinnedBackend(guarded=guarded, resolve=resolve),
        )


class HttpxClient(HttpClient):
    """:class:`HttpClient`'s interface and outcomes on httpx. A subclass only so that it
    is accepted wherever the client is; every method is its own, none touches aiohttp.

    ``resolve`` answers name look-ups (the system's by default); unless ``allow_private``
    its answers pass the guard like the system's would. httpx has no per-host
    connection limit: ``limit_per_host`` is accepted and ignored.
    """

    def __init__(
        self,
        *,
        limit: int = 512,
        limit_per_host: int = 0,
        allow_private: bool = False,
        resolve: Resolve | None = None,
    ) -> None:
        super().__init__(limit=limit, limit_per_host=limit_per_host, allow_private=allow_private)
        self._resolve = resolve
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        transport = PinnedTransport(
            limit=self.limit, guarded=not self.allow_private, resolve=self._resolve
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=None,
            trust_env=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.aclose()

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
        client = self._client
        if client is None:
            raise TransportError("the HTTP client is not open")
        started = time.perf_counter()
        admit(url, timeout, self.allow_private)
        try:
            with anyio.fail_after(timeout):
                request = client.build_request("POST", url, content=body, headers=dict(headers))
                answer = await client.send(request, stream=True)
                try:
                    content = await _read_capped(answer, max_body)
                finally:
                    with anyio.CancelScope(shield=True):
                        await answer.aclose()
                return Response(
                    answer.status_code, answer.headers, content, time.perf_counter() - started
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise RequestTimeout(f"no complete response within {timeout * 1000:.0f} ms") from exc
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise ConnectError(_describe(exc)) from exc


async def _read_capped(answer: httpx.Response, cap: int) -> bytes:
    declared = answer.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise ResponseTooLarge(f"response declares {declared} bytes, over the {cap}-byte cap")
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.aiter_raw(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge(f"response body is over the {cap}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the receiver broke the HTTP exchange: {exc}"
    return f"{type(exc).__name__}: {exc}"

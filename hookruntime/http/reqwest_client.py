"""The same outbound client on pyreqwest (Rust reqwest; HTTP runs in a native thread).

Selected with ``HOOKRUNTIME_HTTP_CLIENT=reqwest`` (the ``reqwest`` extra installs
pyreqwest). It spends far less of the event loop per request than aiohttp; the README's
Performance section gives the numbers and the default they led to.

The outcomes are the aiohttp client's: any HTTP status is a :class:`Response`; a
request raises :class:`RequestTimeout`, :class:`ConnectError`, :class:`ResponseTooLarge`
or :class:`TargetBlocked`; one time limit covers resolving, connect, send, headers and
body (a name is resolved under it, then what is left of it is reqwest's own total
timeout); the body is read chunk by chunk up to a cap; redirects are never followed;
proxies from the environment are ignored; nothing is decompressed.

The guard (unless ``allow_private``). reqwest resolves names itself and takes no
resolver callback, only a fixed map from name to address per client, and a name missing
from the map silently goes to the system's DNS. So this client never lets reqwest look
a name up:

- :func:`check_url` judges every URL first; then the host is taken from reqwest's own
  parse of the URL (:class:`pyreqwest.http.Url`), the very string its map is keyed by,
  and judged again as reqwest reads it.
- A strict IP literal is checked and goes to a client with an empty map (a literal is
  never looked up); anything else is a name.
- A name is resolved here (:data:`Resolve`, the system's by default), every address it
  resolves to must be public, and the request goes through a client built for that one
  name, whose map sends it to the first checked address (Host header and TLS server name
  stay the name); :class:`~hookruntime.http.pins.Pins` keeps it for ``dns_ttl`` seconds,
  then resolves and checks the name again (DNS rebinding is refused then).

Limits: one address per name (no fallback to a second address when the first does not
answer); for up to ``dns_ttl`` seconds a name keeps the address it was checked at,
whatever its DNS says meanwhile (as with aiohttp's DNS cache); there is no check of the
connected socket's peer (reqwest connects in Rust; the address it connects to is the one
in the map). ``limit`` and ``limit_per_host`` bound each name's client (reqwest's
``max_connections``), not all of them together.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache

import anyio
import anyio.lowlevel
from pyreqwest import exceptions as rq
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.http import Url
from pyreqwest.response import Response as ReqwestResponse

from ..errors import ConnectError, RequestTimeout, ResponseTooLarge, TargetBlocked, TransportError
from .client import DEFAULT_MAX_BODY, USER_AGENT, HttpClient, Response, admit
from .guard import Resolve, blocked_reason
from .pins import Pin, Pins

__all__ = ["ReqwestClient"]


class ReqwestClient(HttpClient):
    """:class:`HttpClient`'s interface and outcomes on pyreqwest. A subclass only so that
    it is accepted wherever the client is; every method is its own, none touches aiohttp.

    ``resolve`` answers name look-ups (the system's by default); unless ``allow_private``
    its answers pass the guard like the system's would. With ``allow_private`` and no
    ``resolve``, reqwest resolves names itself.
    """

    def __init__(
        self,
        *,
        limit: int = 512,
        limit_per_host: int = 0,
        allow_private: bool = False,
        resolve: Resolve | None = None,
        dns_ttl: float = 60.0,
    ) -> None:
        super().__init__(limit=limit, limit_per_host=limit_per_host, allow_private=allow_private)
        self._resolve = resolve
        self._pinning = resolve is not None or not allow_private
        self._dns_ttl = dns_ttl
        self._direct: Client | None = None
        self._pins: Pins | None = None

    def _build(self, host: str | None = None, address: str | None = None) -> Client:
        builder = (
            ClientBuilder()
            .follow_redirects(False)
            .no_proxy()
            .referer(False)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .user_agent(USER_AGENT)
            .default_headers({"Accept-Encoding": "identity"})
            .max_connections(self._limit_per_host or self.limit)
        )
        if host is not None and address is not None:
            builder = builder.resolve(host, address, 0)
        return builder.build()

    async def open(self) -> None:
        self._direct = self._build()
        self._pins = Pins(
            self._build, guarded=not self.allow_private, resolve=self._resolve, ttl=self._dns_ttl
        )

    async def aclose(self) -> None:
        direct, self._direct = self._direct, None
        pins, self._pins = self._pins, None
        with anyio.CancelScope(shield=True):
            if direct is not None:
                await direct.close()
            if pins is not None:
                await pins.aclose()

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
        direct, pins = self._direct, self._pins
        if direct is None or pins is None:
            raise TransportError("the HTTP client is not open")
        started = time.perf_counter()
        admit(url, timeout, self.allow_private)
        host, port, literal = _parsed(url)
        pin: Pin | None = None
        try:
            if literal is not None and not self.allow_private:
                if reason := blocked_reason(literal):
                    raise TargetBlocked(reason)
            elif literal is None and self._pinning:
                with anyio.fail_after(timeout):
                    pin = await pins.acquire(host, port)
            client = pin.client if pin is not None else direct
            # The deadline of the exchange is reqwest's own total timeout, timed in its
            # thread (1-2 ms late, measured): a cancel scope around it would cost the
            # event loop ~18 us per request, as much as the rest of this method.
            left = timeout - (time.perf_counter() - started)
            if left <= 0:
                raise TimeoutError
            builder = client.post(url).headers(dict(headers)).body_bytes(body)
            if math.isfinite(left):  # no limit of its own: the caller's deadline governs
                builder = builder.timeout(timedelta(seconds=left))
            request = builder.build_streamed()
            try:
                async with request as answer:
                    content = await _read_capped(answer, max_body)
                    return Response(
                        answer.status, answer.headers, content, time.perf_counter() - started
                    )
            except asyncio.CancelledError:
                # pyreqwest answers a cancellation with a CancelledError of its own,
                # which anyio's cancel scopes do not take for theirs (a caller's
                # deadline would escape as a bare cancellation); at a checkpoint the
                # scope that cancelled delivers its own.
                await anyio.lowlevel.checkpoint()
                raise
        except (TimeoutError, rq.RequestTimeoutError) as exc:
            raise RequestTimeout(f"no complete response within {timeout * 1000:.0f} ms") from exc
        except rq.PyreqwestError as exc:
            raise ConnectError(_describe(exc)) from exc
        finally:
            if pin is not None:
                await pins.release(pin)


# Parsed once per URL: reqwest's parse and the literal check cost ~20 us per request,
# and a process sends to few distinct URLs.
@lru_cache(maxsize=4096)
def _parsed(url: str) -> tuple[str, int, ipaddress.IPv4Address | ipaddress.IPv6Address | None]:
    """The host (as reqwest will look it up), the port, and the host as an IP literal."""
    host, port = _host_and_port(url)
    return host, port, _ip_literal(host)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address only when it is one as reqwest reads it (strictly:
    anything else is resolved and checked here, never looked up by reqwest)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _host_and_port(url: str) -> tuple[str, int]:
    """The host as reqwest will look it up (its map is keyed by this very string)."""
    try:
        parsed = Url(url)
    except (ValueError, rq.PyreqwestError) as exc:
        raise TargetBlocked(f"URL is malformed: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetBlocked(f"a receiver's URL is http or https, not {parsed.scheme}")
    host, port = parsed.host_str, parsed.port_or_known_default
    if not host or port is None:
        raise TargetBlocked("URL has no host")
    return host.strip("[]"), port


async def _read_capped(answer: ReqwestResponse, cap: int) -> bytes:
    declared = answer.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise ResponseTooLarge(f"response declares {declared} bytes, over the {cap}-byte cap")
    if declared.isdigit():
        # Framed by its declared length, within the cap: read whole in one await, not a
        # chunk at a time (~10 us less of the event loop per request, measured).
        return bytes(await answer.bytes())
    reader = answer.body_reader
    chunks: list[bytes] = []
    size = 0
    while (chunk := await reader.read_chunk()) is not None:
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge(f"response body is over the {cap}-byte cap")
        chunks.append(bytes(chunk))
    return b"".join(chunks)


def _describe(exc: rq.PyreqwestError) -> str:
    causes = getattr(exc, "details", {}).get("causes") or []
    detail = "; ".join(cause["message"] for cause in causes)
    if isinstance(exc, rq.ConnectError):
        return f"cannot connect: {detail or exc.message}"
    return f"{type(exc).__name__}: {exc.message}" + (f" ({detail})" if detail else "")

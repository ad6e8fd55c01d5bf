"""Per-name clients for the pyreqwest backend, each sending its name to one checked address.

reqwest takes no resolver callback, only a fixed name-to-address map per client, and a
name missing from the map goes to the system's DNS. :class:`Pins` resolves each name
itself, checks every address it resolves to, and keeps one client per name whose map
holds the first of them, for ``ttl`` seconds; then the name is resolved and checked
again. A name that now fails its check is refused (DNS rebinding); a name that moved
gets a new client, and the old one closes when its last request ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from pyreqwest.client import Client

from ..errors import ConnectError, TargetBlocked
from .guard import Resolve, blocked_reason, literal_address, system_resolve

__all__ = ["Pin", "Pins"]

#: How many names keep a client of their own; past it, idle expired ones are closed.
MAX_PINNED = 1024


@dataclass(eq=False)
class Pin:
    """One name's client, sending to the one address the name was checked at."""

    host: str
    address: str
    client: Client
    expires: float
    in_flight: int = 0
    retired: bool = False


class Pins:
    """The clients of the names in use. ``build(host, address)`` makes a client whose
    map sends ``host`` to ``address``; with ``guarded``, every address must be public."""

    def __init__(
        self,
        build: Callable[[str, str], Client],
        *,
        guarded: bool,
        resolve: Resolve | None = None,
        ttl: float = 60.0,
    ) -> None:
        self._build = build
        self._guarded = guarded
        self._resolve = resolve or system_resolve
        self._ttl = ttl
        self._pins: dict[str, Pin] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._closing: set[Client] = set()

    async def acquire(self, host: str, port: int) -> Pin:
        """The pin for ``host``, resolved and checked at most ``ttl`` seconds ago; hand it
        back with :meth:`release` once its request is over."""
        pin = self._pins.get(host)
        if pin is None or pin.expires <= time.monotonic():
            pin = await self._renewed(host, port)
        pin.in_flight += 1
        return pin

    async def release(self, pin: Pin) -> None:
        pin.in_flight -= 1
        if pin.retired and pin.in_flight == 0:
            self._closing.discard(pin.client)
            await _close(pin.client)

    async def aclose(self) -> None:
        pins, self._pins = self._pins, {}
        closing, self._closing = self._closing, set()
        for client in [*(pin.client for pin in pins.values()), *closing]:
            await _close(client)

    async def _renewed(self, host: str, port: int) -> Pin:
        async with self._locks.setdefault(host, anyio.Lock()):
            pin = self._pins.get(host)
            if pin is not None and pin.expires > time.monotonic():
                return pin
            try:
                address = await self._checked_address(host, port)
            except BaseException:
                if pin is not None:  # a name that now fails its check is not sent to
                    await self._retire(pin)
                raise
            if pin is not None and pin.address == address:
                pin.expires = time.monotonic() + self._ttl
                return pin
            if pin is not None:
                await self._retire(pin)
            await self._prune()
            fresh = Pin(host, address, self._build(host, address), time.monotonic() + self._ttl)
            self._pins[host] = fresh
            return fresh

    async def _checked_address(self, host: str, port: int) -> str:
        addresses = list(await self._resolve(host, port))
        if not addresses:
            raise ConnectError(f"{host} resolves to no address")
        checked = []
        for address in addresses:
            parsed = literal_address(address)
            if parsed is None:
                raise TargetBlocked(f"{host} resolves to {address!r}, not an IP address")
            if self._guarded and (reason := blocked_reason(parsed)):
                raise TargetBlocked(f"{host} resolves to {reason}")
            checked.append(parsed)
        return str(checked[0])

    async def _retire(self, pin: Pin) -> None:
        if self._pins.get(pin.host) is pin:
            del self._pins[pin.host]
        pin.retired = True
        if pin.in_flight == 0:
            await _close(pin.client)
        else:
            self._closing.add(pin.client)

    async def _prune(self) -> None:
        if len(self._pins) < MAX_PINNED:
            return
        now = time.monotonic()
        for pin in [p for p in self._pins.values() if p.expires <= now and p.in_flight == 0]:
            await self._retire(pin)
            self._locks.pop(pin.host, None)


async def _close(client: Client) -> None:
    with anyio.CancelScope(shield=True):
        await client.close()

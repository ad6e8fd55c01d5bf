"""A worker's settings, read by each of its parts (:mod:`hookruntime.queue.intake`,
:mod:`hookruntime.queue.worker`, :mod:`hookruntime.queue.recorder`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..observe import Observer
from .records import DisablePolicy

__all__ = ["WorkerSettings"]


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 128
    registration_concurrency: int = 64
    batch: int = 256
    lease: float = 60.0
    poll: float = 1.0
    grace: float = 30.0
    #: Seconds between heartbeats, and after how long without one a worker's deliveries
    #: are taken back (:mod:`hookruntime.queue.heartbeat`).
    heartbeat: float = 1.0
    stale: float = 5.0
    health: DisablePolicy = field(default_factory=DisablePolicy)
    #: Send from a process of its own (:mod:`hookruntime.queue.sender_link`), with this
    #: backend (``Settings.http_client``).
    sender_process: bool = False
    http_client: str = "aiohttp"
    observer: Observer = field(default_factory=Observer)

    @property
    def cap(self) -> int:
        """At most this many requests to one registration at once."""
        return self.registration_concurrency

    @property
    def ceiling(self) -> int:
        """Deliveries a worker holds at most: what its lanes send at once, and batches
        beyond, so that they never wait on a claim (two; four for a sender process,
        whose work passes more hands on its way)."""
        return self.concurrency + (4 if self.sender_process else 2) * self.batch

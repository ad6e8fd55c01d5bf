"""The one-way layering, checked on a fresh interpreter per import: the blocking path and
the queued path never load each other, the core never loads the vendor plugins, and the
control plane loads neither path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded(*modules: str) -> list[str]:
    script = (
        f"import sys, json\nimport {', '.join(modules)}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('hookruntime', 'plugins'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout))


def _under(loaded: list[str], package: str) -> list[str]:
    return [m for m in loaded if m == package or m.startswith(package + ".")]


QUEUE = (
    "hookruntime.queue.worker",
    "hookruntime.queue.outbox",
    "hookruntime.queue.deliveries",
    "hookruntime.queue.sender_link",
    "hookruntime.queue.sender",
)
CONTROL_PLANE = ("hookruntime.registrations", "hookruntime.keys", "hookruntime.static")


def test_the_blocking_path_does_not_load_the_queue() -> None:
    assert _under(_loaded("hookruntime.blocking"), "hookruntime.queue") == []


def test_the_queue_does_not_load_the_blocking_path() -> None:
    assert _under(_loaded(*QUEUE), "hookruntime.blocking") == []


@pytest.mark.parametrize("path", ["hookruntime.blocking", "hookruntime.queue"])
def test_the_control_plane_loads_neither_path(path: str) -> None:
    assert _under(_loaded(*CONTROL_PLANE), path) == []


def test_the_core_does_not_load_the_vendor_plugins() -> None:
    core = ("hookruntime", "hookruntime.runtime", "hookruntime.api", "hookruntime.cli")
    assert _under(_loaded(*core), "plugins") == []


# The queued path reads in one direction: each part loads only what comes after it.
DOWNSTREAM = {
    "hookruntime.queue.intake": ("worker", "recorder", "outbox", "sender_link"),
    "hookruntime.queue.outbox": ("worker", "recorder", "sender_link"),
    "hookruntime.queue.lanes": ("worker", "recorder", "intake", "outbox"),
    "hookruntime.queue.sender_link": ("worker", "recorder", "intake", "outbox"),
    "hookruntime.queue.recorder": ("worker", "outbox", "sender_link"),
    "hookruntime.queue.records": ("worker", "recorder", "intake", "outbox", "lanes"),
}


@pytest.mark.parametrize("module", sorted(DOWNSTREAM))
def test_a_part_of_the_queued_path_does_not_load_those_before_it(module: str) -> None:
    loaded = _loaded(module)
    before = [f"hookruntime.queue.{name}" for name in DOWNSTREAM[module]]
    assert [m for m in loaded if m in before] == []

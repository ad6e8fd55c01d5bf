"""One SyncHookRuntime for the process, opened on first use, closed at exit."""

from __future__ import annotations

import atexit
import threading

from hookruntime.sync import SyncHookRuntime

_lock = threading.Lock()
_hooks: SyncHookRuntime | None = None


def hooks() -> SyncHookRuntime:
    global _hooks
    with _lock:
        if _hooks is None:
            opened = SyncHookRuntime()  # configured by HOOKRUNTIME_* variables
            opened.open()
            atexit.register(opened.close)
            _hooks = opened
        return _hooks

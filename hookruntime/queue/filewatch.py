"""Waiting for a file to be written, without polling: Linux's inotify, through ctypes.

:class:`FileWrites` watches the file's folder (SQLite deletes and recreates its ``-wal``
file, which a watch on the file itself would not survive) and answers whether the named
file was written since the last look. Where inotify is missing (not Linux, or the
per-user limit of watches reached), :func:`file_writes` answers None and the caller
polls instead.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import struct
import threading
from pathlib import Path

__all__ = ["FileWrites", "file_writes"]

log = logging.getLogger("hookruntime.worker")

# <sys/inotify.h>
_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; the name follows


class FileWrites:
    """Writes to one file, read from an inotify watch on its folder."""

    def __init__(self, fd: int, name: bytes) -> None:
        self._fd = fd
        self._name = name
        self._woken, self._wake = os.pipe()
        # interrupt() comes from another thread than close(): never a write to a closed
        # descriptor, whose number may already be another file's.
        self._lock = threading.Lock()
        self._closed = False
        # poll, not select: a host with over 1,024 open files gives descriptors select
        # cannot take.
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._poll.register(self._woken, select.POLLIN)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds, or until :meth:`interrupt`; True once the file
        was written (or created)."""
        ready = [fd for fd, _ in self._poll.poll(timeout * 1000)]
        if self._woken in ready or self._fd not in ready:
            return False
        data = os.read(self._fd, 64 * 1024)
        offset, written = 0, False
        while offset + _EVENT.size <= len(data):
            _wd, _mask, _cookie, size = _EVENT.unpack_from(data, offset)
            start = offset + _EVENT.size
            name = data[start : start + size].rstrip(b"\0")
            written = written or name == self._name
            offset = start + size
        return written

    def interrupt(self) -> None:
        """End a :meth:`wait` under way (from another thread), and every one after."""
        with self._lock:
            if not self._closed:
                os.write(self._wake, b"x")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for fd in (self._fd, self._woken, self._wake):
                os.close(fd)


def file_writes(path: Path) -> FileWrites | None:
    """A watch on the writes to ``path``, or None where inotify cannot give one."""
    try:
        # The symbols already loaded into this process, libc's among them (no search
        # for the library, which would start a process).
        libc = ctypes.CDLL(None, use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
    add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    add.restype = ctypes.c_int
    fd = init(_IN_CLOEXEC)
    if fd < 0:
        reason = os.strerror(ctypes.get_errno())
        log.info("inotify unavailable (%s): the SQLite watch polls", reason)
        return None
    folder = os.fsencode(path.parent)
    if add(fd, folder, _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO) < 0:
        log.info("no inotify watch (%s): the SQLite watch polls", os.strerror(ctypes.get_errno()))
        os.close(fd)
        return None
    return FileWrites(fd, os.fsencode(path.name))

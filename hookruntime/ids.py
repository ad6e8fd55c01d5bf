"""Identifiers: a short prefix naming the kind, then a time-ordered 26-character body.

The body is a ULID in lower-case Crockford base32 (48 bits of milliseconds, 80 random
bits), so ids sort by creation time, which keeps B-tree inserts at the right edge and
gives ordered deliveries their order.
"""

from __future__ import annotations

import os
import time

__all__ = ["new_id", "new_rev"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Every 10-bit value as two characters: a ULID body is 13 look-ups.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


_last = 0


def new_id(prefix: str) -> str:
    """``evt_01jd…``: a prefix and a ULID body (two zero bits, 48 of time, 80 random).

    Within a process ids strictly increase, even within one millisecond (the random
    part of the previous id plus one), so emit order is id order.
    """
    global _last
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    if value <= _last:
        value = _last + 1
    _last = value
    pairs = _PAIRS
    return prefix + "_" + "".join([pairs[(value >> shift) & 1023] for shift in range(120, -1, -10)])


def new_rev(previous: str | None = None) -> str:
    """The next opaque revision string: a write counter and a random tag, e.g. ``3-9f2c41ab``."""
    count = 1
    if previous:
        head = previous.split("-", 1)[0]
        count = int(head) + 1 if head.isdigit() else 1
    return f"{count}-{os.urandom(4).hex()}"

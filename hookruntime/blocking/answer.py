"""Reading a receiver's 2xx answer: ``{"decision","reason","user_message","patch"}``.

Every field is optional; an empty body, ``204`` or ``{"ok": true}`` allows with no
patch. A registration that requires signed responses gets only a compact JWS
(HS256, its shared secret) whose payload is that JSON document bound to the call:
``webhook_request_id`` is the id the request carried and ``iat`` (seconds since the
epoch) is within :data:`ANSWER_TOLERANCE` of now, so that no validly signed answer to
another call (an ``allow`` with a role patch, say) can be replayed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import VerificationError
from ..profiles.jws import jws_verify

__all__ = ["ALLOW", "ANSWER_TOLERANCE", "Answer", "InvalidAnswer", "read_answer"]

_TEXT_LIMIT = 1000
#: How far a signed answer's ``iat`` may be from now, in seconds, either way.
ANSWER_TOLERANCE = 300.0


class InvalidAnswer(Exception):
    """The answer is not one we can act on; the message says precisely why."""


@dataclass(frozen=True)
class Answer:
    decision: Literal["allow", "deny"]
    reason: str | None = None
    user_message: str | None = None
    patch: dict[str, Any] | None = None


ALLOW = Answer("allow")


def read_answer(
    status: int,
    body: bytes,
    signed_with: Sequence[str] | None = None,
    *,
    request_id: str | None = None,
    now: float | None = None,
) -> Answer:
    """The answer in a 2xx response body; ``signed_with`` lists the secrets a signed
    response must verify with (None when the registration does not require one), and
    ``request_id`` the id the call's request carried, which a signed answer must name."""
    if signed_with is not None:
        if not body.strip():
            raise InvalidAnswer("a signed response is required but the body is empty")
        try:
            body = jws_verify(body, signed_with)
        except VerificationError as exc:
            raise InvalidAnswer(f"response signature: {exc}") from None
    elif status == 204 or not body.strip():
        return ALLOW
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidAnswer(f"response is not JSON: {_excerpt(body)}") from None
    if not isinstance(document, dict):
        raise InvalidAnswer(f"response must be a JSON object, not {type(document).__name__}")
    if signed_with is not None:
        _check_binding(document, request_id, time.time() if now is None else now)
    return _shape(document)


def _check_binding(document: dict[str, Any], request_id: str | None, now: float) -> None:
    answered = document.get("webhook_request_id")
    if not isinstance(answered, str):
        raise InvalidAnswer("signed response lacks webhook_request_id (the request's id)")
    if answered != request_id:
        raise InvalidAnswer(
            f"signed response answers request {answered[:64]!r}, not this call's "
            f"{request_id!r}: an answer to another call is not accepted"
        )
    iat = document.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
        raise InvalidAnswer("signed response lacks a numeric iat (seconds since the epoch)")
    if abs(now - iat) > ANSWER_TOLERANCE:
        raise InvalidAnswer(
            f"signed response iat is {now - iat:.0f} s from now; "
            f"at most {ANSWER_TOLERANCE:.0f} s is accepted"
        )


def _shape(document: dict[str, Any]) -> Answer:
    decision = document.get("decision", "allow")
    if decision not in ("allow", "deny"):
        raise InvalidAnswer(f"decision must be 'allow' or 'deny', not {decision!r}")
    texts = {}
    for name in ("reason", "user_message"):
        value = document.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidAnswer(f"{name} must be a string, not {type(value).__name__}")
        texts[name] = value[:_TEXT_LIMIT] if value else None
    patch = document.get("patch")
    if patch is not None and not isinstance(patch, dict):
        raise InvalidAnswer(f"patch must be a JSON object (a merge patch), not {patch!r:.80}")
    return Answer(decision, texts["reason"], texts["user_message"], patch or None)


def _excerpt(body: bytes) -> str:
    text = body[:120].decode("utf-8", "replace")
    return repr(text) + ("…" if len(body) > 120 else "")

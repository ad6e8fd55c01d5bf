"""Reading a receiver's 2xx answer: ``{"decision","reason","user_message","patch"}``.

Every field is optional; an empty body, ``204`` or ``{"ok": true}`` allows with no
patch. A registration that requires signed responses gets only a compact JWS
(HS256, its shared secret) whose payload is that JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import VerificationError
from ..profiles.jws import jws_verify

__all__ = ["ALLOW", "Answer", "InvalidAnswer", "read_answer"]

_TEXT_LIMIT = 1000


class InvalidAnswer(Exception):
    """The answer is not one we can act on; the message says precisely why."""


@dataclass(frozen=True)
class Answer:
    decision: Literal["allow", "deny"]
    reason: str | None = None
    user_message: str | None = None
    patch: dict[str, Any] | None = None


ALLOW = Answer("allow")


def read_answer(status: int, body: bytes, signed_with: Sequence[str] | None = None) -> Answer:
    """The answer in a 2xx response body; ``signed_with`` lists the secrets a signed
    response must verify with (None when the registration does not require one)."""
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
    return _shape(document)


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

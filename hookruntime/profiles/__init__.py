"""Wire profiles: how a payload becomes headers + body, signed, for each vendor contract.

==============  ==========================================================
``standard``    Standard Webhooks (``webhook-*`` headers, ``whsec_`` secrets)
``jws``         compact JWS HS256 body (seed 001)
``servicehook`` raw body, ``X-ServiceHook-*`` HMAC headers (seed 000)
``envelope``    ``{"event_type",…,"signature"}`` + ``X-Signature-SHA256`` (seed 002)
==============  ==========================================================
"""

from __future__ import annotations

from ..errors import ValidationError
from .base import Message, Profile, RetryPolicy, SignedRequest, Verified
from .envelope import EnvelopeProfile
from .jws import JWSProfile
from .servicehook import ServiceHookProfile
from .standard import StandardProfile

__all__ = [
    "PROFILES",
    "Message",
    "Profile",
    "RetryPolicy",
    "SignedRequest",
    "Verified",
    "get_profile",
]

PROFILES: dict[str, Profile] = {
    p.name: p for p in (StandardProfile(), JWSProfile(), ServiceHookProfile(), EnvelopeProfile())
}


def get_profile(name: str, field: str = "profile") -> Profile:
    """The profile called ``name``, or a :class:`ValidationError` listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValidationError.single(field, f"unknown profile {name!r}; known: {known}") from None

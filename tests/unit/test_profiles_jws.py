"""The JWS decoder is strict: exactly three parts of canonical, unpadded base64url.
Anything else would give one signed token many accepted spellings."""

from __future__ import annotations

import pytest

from hookruntime import VerificationError
from hookruntime.profiles.jws import jws_sign, jws_verify

SECRET = "signature_secret"


def signed(payload: bytes = b'{"id":"u1"}') -> bytes:
    return jws_sign(payload, SECRET)


def with_signature(token: bytes, signature: bytes) -> bytes:
    return token.rsplit(b".", 1)[0] + b"." + signature


def test_a_well_formed_token_verifies() -> None:
    assert jws_verify(signed(), [SECRET]) == b'{"id":"u1"}'


@pytest.mark.parametrize(
    "spoil",
    [
        # Four at a time: the lenient decoder drops them and the length still fits.
        pytest.param(lambda s: s[:10] + b"!*$!" + s[10:], id="junk-characters"),
        pytest.param(lambda s: s[:10] + b"    " + s[10:], id="spaces-inside"),
        pytest.param(lambda s: s[:20] + b"\r\n\r\n" + s[20:], id="newlines-inside"),
        pytest.param(lambda s: s + b"=", id="padding"),
        pytest.param(lambda s: s + b"==", id="double-padding"),
    ],
)
def test_junk_in_the_signature_is_refused(spoil) -> None:  # type: ignore[no-untyped-def]
    token = signed()
    signature = token.rsplit(b".", 1)[1]
    with pytest.raises(VerificationError, match="base64url"):
        jws_verify(with_signature(token, spoil(signature)), [SECRET])


def test_spare_bits_in_the_last_character_are_refused() -> None:
    token = signed()
    signature = token.rsplit(b".", 1)[1]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1:])
    # 32 bytes in 43 characters leave two spare bits in the last one.
    twin = signature[:-1] + alphabet[last ^ 1 : (last ^ 1) + 1]
    with pytest.raises(VerificationError, match="canonical"):
        jws_verify(with_signature(token, twin), [SECRET])


def test_the_standard_alphabet_is_not_base64url() -> None:
    token = next(
        t
        for t in (signed(b'{"id":%d}' % n) for n in range(1000))
        if b"-" in t.rsplit(b".", 1)[1] or b"_" in t.rsplit(b".", 1)[1]
    )
    signature = token.rsplit(b".", 1)[1]
    standard = signature.replace(b"-", b"+").replace(b"_", b"/")
    with pytest.raises(VerificationError, match="base64url"):
        jws_verify(with_signature(token, standard), [SECRET])


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda t: t + b".", id="four-parts"),
        pytest.param(lambda t: t.replace(b".", b"..", 1), id="empty-part"),
        pytest.param(lambda t: t.rsplit(b".", 1)[0], id="two-parts"),
    ],
)
def test_anything_but_three_parts_is_refused(token) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VerificationError):
        jws_verify(token(signed()), [SECRET])

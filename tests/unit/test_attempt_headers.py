"""The response headers kept in the attempt log: bounded in count and size, secrets redacted."""

from __future__ import annotations

import json

from hookruntime.store.attempts import EXCERPT_MAX_BYTES, EXCERPT_MAX_HEADERS, headers_excerpt


def test_headers_excerpt_is_bounded_in_count_and_size() -> None:
    many = [(f"X-Header-{i}", "v") for i in range(50)]
    assert len(json.loads(headers_excerpt(many) or "[]")) == EXCERPT_MAX_HEADERS
    huge = [(f"X-Big-{i}", "x" * 5000) for i in range(10)]
    excerpt = headers_excerpt(huge) or ""
    assert 0 < len(excerpt.encode()) <= EXCERPT_MAX_BYTES
    assert all(len(v) <= 257 for _, v in json.loads(excerpt))
    escaped = headers_excerpt([(f"X-Quoted-{i}", '"\\' * 45) for i in range(20)]) or ""
    assert 0 < len(escaped.encode()) <= EXCERPT_MAX_BYTES  # JSON escapes counted too
    assert headers_excerpt([]) is None
    redacted = dict(
        json.loads(headers_excerpt([("Authorization", "Bearer abc"), ("WWW-Authenticate", "x")]))
    )
    assert redacted == {"Authorization": "[redacted]", "WWW-Authenticate": "[redacted]"}

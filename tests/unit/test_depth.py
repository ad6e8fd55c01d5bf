"""The hook depth a blocking call is made at, read from the X-Hook-Depth header of the hook
being served."""

from __future__ import annotations

import pytest

from hookruntime.blocking import serving_hook


@pytest.mark.parametrize("value", ["²", "\u0661", "-1", "x", ""])
def test_a_hook_depth_header_that_is_not_ascii_digits_counts_as_one(value: str) -> None:
    from hookruntime.blocking.depth import current_depth

    with serving_hook({"X-Hook-Depth": value}):
        assert current_depth() == 1

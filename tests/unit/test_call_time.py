"""The calls page reads a call's time out of its id."""

from __future__ import annotations

from hookruntime.ui.calls import call_time


def test_call_time_reads_the_time_out_of_a_call_id() -> None:
    import time

    from hookruntime.ids import new_id

    before = time.time()
    moment = call_time(new_id("call"))
    assert moment is not None and before - 0.01 <= moment <= time.time() + 0.01
    assert call_time("dlv_01m8npjmvxzmjnakrj5m49tset") is None
    assert call_time("call_not-a-ulid") is None

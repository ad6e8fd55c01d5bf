"""Requests and outcomes cross to and from the sender process field by field."""

from __future__ import annotations

import pickle

from hookruntime.queue.lanes import Request, SendResult
from hookruntime.queue.sender_link import RequestFrame, ResultFrame, request_frame, result_frame


def test_a_request_comes_out_of_its_frame_as_it_went_in() -> None:
    request = Request(
        key=7,
        delivery_id="dlv_1",
        registration_id="reg_1",
        url="http://127.0.0.1:9/hook",
        headers={"content-type": "application/json"},
        body=b"{}",
        timeout=5.0,
        send_by=100.0,
    )
    values = pickle.loads(pickle.dumps(request_frame(request)))
    assert type(values) is tuple
    assert Request(*values) == request
    assert RequestFrame(*values).url == request.url


def test_an_outcome_comes_out_of_its_frame_as_it_went_in() -> None:
    outcome = SendResult(
        status=503,
        error=None,
        retry_after="30",
        response="busy",
        latency=0.25,
        at=1_700_000_000.0,
        headers="retry-after: 30",
    )
    values = pickle.loads(pickle.dumps(result_frame(outcome)))
    assert SendResult(*values) == outcome
    assert ResultFrame(*values).retry_after == "30"

"""The blocking path: fan-out under one deadline, answers, merge, circuit breakers."""

from .breaker import BreakerPolicy, Breakers
from .caller import BlockingCaller
from .depth import HOOK_DEPTH_HEADER, current_depth, serving_hook
from .merge import Conflict, apply_merge_patch
from .result import CallResult, Outcome

__all__ = [
    "HOOK_DEPTH_HEADER",
    "BlockingCaller",
    "BreakerPolicy",
    "Breakers",
    "CallResult",
    "Conflict",
    "Outcome",
    "apply_merge_patch",
    "current_depth",
    "serving_hook",
]

"""A registration's field checks, shared by the control plane's entry points: each
``*_problem`` returns what is wrong with one field or None (``header_problems`` a list);
:func:`check_registration` runs them all and raises every problem in one
:class:`~hookruntime.errors.ValidationError`."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .catalog import Catalog
from .errors import FieldError, TargetBlocked, ValidationError
from .http.guard import check_url, host_problem
from .profiles import PROFILES
from .profiles.base import Profile
from .store.orgs import valid_org

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_DELAY",
    "MAX_DESCRIPTION",
    "MAX_HEADERS",
    "MAX_HEADER_VALUE",
    "MAX_PRIORITY",
    "MAX_SCHEDULE",
    "MAX_TIMEOUT",
    "MAX_TOPICS",
    "MAX_URL",
    "RESERVED_HEADERS",
    "check_registration",
    "header_problems",
    "schedule_problem",
    "secret_problem",
    "text_problem",
    "url_problem",
]

MAX_URL = 2048
MAX_HEADERS = 20
MAX_TOPICS = 100
#: Unknown topics of one request that get "did you mean" suggestions.
_SUGGESTED = 3
MAX_DELAY = 7 * 86_400.0
MAX_TIMEOUT = 60.0
MAX_HEADER_VALUE = 1024
#: Longest retry schedule (delays) and most attempts a registration may ask for.
MAX_SCHEDULE = 30
MAX_ATTEMPTS = 100
#: Largest priority either way (lower first).
MAX_PRIORITY = 10_000
MAX_DESCRIPTION = 500

#: Headers a registration may not set: transport framing and every profile's signature.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-servicehook-event",
        "x-servicehook-timestamp",
        "x-servicehook-uuid",
        "x-servicehook-signature",
        "x-servicehook-id",
        "x-signature-sha256",
        "x-hook-depth",
    }
)
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def secret_problem(profile: Profile, secret: Any) -> str | None:
    """Why ``secret`` cannot sign for ``profile``: not text, blank, holding control
    characters, or outside the profile's own rules (its length)."""
    if not isinstance(secret, str):
        return "must be a string"
    if not secret.strip():
        return "must not be blank"
    if _CONTROL.search(secret) or text_problem(secret):
        return "must be printable text, without control characters"
    return profile.secret_problem(secret)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored or sent: NUL (PostgreSQL refuses it) or a lone
    surrogate (no encoding can carry it); None when it can."""
    if "\x00" in text:
        return "must not contain NUL characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain lone surrogates (not valid Unicode)"
    return None


def url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return "give the receiver's URL"
    if len(url) > MAX_URL:
        return f"URL is longer than {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"URL is malformed: {exc}"
    if parts.scheme not in ("http", "https"):
        return "URL must start with http:// or https://"
    if not parts.hostname:
        return "URL has no host"
    if parts.username or parts.password:
        return "URL must not carry credentials; send them as a custom header"
    if parts.fragment:
        return "URL must not have a #fragment"
    if port == 0:
        return "URL port must be between 1 and 65535"
    if any(ch.isspace() for ch in url):
        return "URL must not contain whitespace"
    # The host the client will connect to, judged as it will parse it (yarl, not urlsplit).
    return host_problem(url)


def header_problems(headers: Any) -> list[tuple[str, str]]:
    """(field, message) pairs for a custom-headers mapping."""
    if not isinstance(headers, Mapping):
        return [("headers", "must be an object of header name → value")]
    if len(headers) > MAX_HEADERS:
        return [("headers", f"at most {MAX_HEADERS} custom headers")]
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in headers.items():
        where = f"headers.{name}"
        if not isinstance(name, str) or not _TOKEN.match(name):
            found.append((where, "header name must be an HTTP token (letters, digits, -)"))
            continue
        if name.lower() in RESERVED_HEADERS:
            found.append((where, f"{name} is set by hookruntime and cannot be overridden"))
        if name.lower() in seen:
            found.append((where, "header given twice"))
        seen.add(name.lower())
        if not isinstance(value, str) or not value:
            found.append((where, "header value must be a non-empty string"))
        elif len(value) > MAX_HEADER_VALUE or not _HEADER_VALUE.fullmatch(value):
            found.append(
                (
                    where,
                    f"header value must be printable ASCII and at most {MAX_HEADER_VALUE} "
                    "characters",
                )
            )
    return found


def schedule_problem(schedule: Any) -> str | None:
    if not isinstance(schedule, list | tuple) or len(schedule) > MAX_SCHEDULE:
        return f"must be a list of at most {MAX_SCHEDULE} delays in seconds"
    for delay in schedule:
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not 0 <= delay <= MAX_DELAY  # before isfinite(), which overflows on huge ints
            or not math.isfinite(delay)
        ):
            return f"each delay must be a number of seconds from 0 to {MAX_DELAY:g}"
    return None


def timeout_problem(timeout: Any) -> str | None:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT  # before isfinite(), which overflows on huge ints
        or not math.isfinite(timeout)
    ):
        return f"must be a number of seconds in (0, {MAX_TIMEOUT:g}]"
    return None


def check_registration(
    catalog: Catalog, allow_private: bool, values: dict[str, Any], scopes: Iterable[str] | None
) -> dict[str, Any]:
    """Validate every field of a registration at once; return them normalised.

    ``scopes`` (an API caller's) must cover each topic's required scopes; None trusts.
    """
    errors: list[FieldError] = []

    def bad(field: str, message: str) -> None:
        errors.append(FieldError(field, message))

    if not valid_org(values["org"]):
        bad("org", "must be 1 to 64 letters, digits, . _ -")
    topic_names, topic_errors = _topic_names(values["topics"])
    errors.extend(topic_errors)
    granted = None if scopes is None else set(scopes)
    topics = []
    unknown = 0
    for index, name in enumerate(topic_names):
        if name not in catalog:
            unknown += 1
            # Close matches cost a string comparison per known topic: only for a few.
            if unknown <= _SUGGESTED:
                errors.extend(_catalog_errors(catalog, name, f"topics.{index}"))
            else:
                bad(f"topics.{index}", f"unknown topic {name[:100]!r}")
            continue
        topic = catalog[name]
        topics.append(topic)
        missing = [s for s in topic.scopes if granted is not None and s not in granted]
        if missing:
            bad(f"topics.{index}", f"topic {name!r} needs scope(s) {', '.join(missing)}")
    url = values["url"]
    problem = (isinstance(url, str) and text_problem(url)) or url_problem(url)
    if problem is None and not allow_private:
        try:
            check_url(values["url"])
        except TargetBlocked as exc:
            problem = (
                f"{exc}; receivers must be public addresses "
                "(HOOKRUNTIME_ALLOW_PRIVATE_TARGETS=1 allows private ones, for development)"
            )
    if problem:
        bad("url", problem)
    profile_name = values["profile"]
    if profile_name is None:
        defaults = {t.profile for t in topics}
        profile_name = defaults.pop() if len(defaults) == 1 else "standard"
    profile = PROFILES.get(profile_name) if isinstance(profile_name, str) else None
    if profile is None:
        bad("profile", f"unknown profile {profile_name!r}; known: {', '.join(sorted(PROFILES))}")
    else:
        if values["secret"] is None:
            values["secret"] = profile.generate_secret()
        if problem := secret_problem(profile, values["secret"]):
            bad("secret", problem)
    priority = values["priority"]
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_PRIORITY:
        bad("priority", f"must be an integer from -{MAX_PRIORITY} to {MAX_PRIORITY}")
    if values["on_failure"] not in (None, "ignore", "deny"):
        bad("on_failure", "must be 'ignore' or 'deny'")
    if values["timeout"] is not None and (problem := timeout_problem(values["timeout"])):
        bad("timeout", problem)
    for flag in ("ordered", "signed_responses", "active"):
        if not isinstance(values[flag], bool):
            bad(flag, "must be true or false")
    errors.extend(FieldError(f, m) for f, m in header_problems(values["headers"]))
    schedule = values["retry_schedule"]
    if schedule is not None:
        schedule = list(schedule) if isinstance(schedule, list | tuple) else schedule
        if problem := schedule_problem(schedule):
            bad("retry_schedule", problem)
    attempts = values["max_attempts"]
    if attempts is not None and (
        isinstance(attempts, bool)
        or not isinstance(attempts, int)
        or not 1 <= attempts <= MAX_ATTEMPTS
    ):
        bad("max_attempts", f"must be an integer from 1 to {MAX_ATTEMPTS}")
    description = values["description"]
    if description is not None and (
        not isinstance(description, str)
        or len(description) > MAX_DESCRIPTION
        or text_problem(description)
    ):
        bad("description", f"must be text of at most {MAX_DESCRIPTION} characters")
    if errors:
        raise ValidationError(errors)
    return {
        **values,
        "topics": topic_names,
        "profile": profile_name,
        "retry_schedule": schedule,
    }


def _topic_names(raw: Any) -> tuple[list[str], list[FieldError]]:
    """The distinct topic names of ``raw`` (one name or a list), or why there are none.
    Typed and counted before any name is looked up."""
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, Mapping | bytes) or not isinstance(raw, Iterable):
        return [], [FieldError("topics", "must be a list of topic names")]
    names = list(raw)
    if not names:
        return [], [FieldError("topics", "give at least one topic")]
    if len(names) > MAX_TOPICS:
        return [], [FieldError("topics", f"at most {MAX_TOPICS} topics per registration")]
    wrong = [
        FieldError(f"topics.{i}", "must be a topic name (a string)")
        for i, name in enumerate(names)
        if not isinstance(name, str)
    ]
    return ([], wrong) if wrong else (list(dict.fromkeys(names)), [])


def _catalog_errors(catalog: Catalog, name: str, field: str) -> tuple[FieldError, ...]:
    try:
        catalog.get_topic(name, field)
    except ValidationError as exc:
        return exc.errors
    return ()

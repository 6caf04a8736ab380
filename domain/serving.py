"""Where a registry version answers calls: its serving target.

A target names the upstream model and either an upstream configured on the server (by name: its
base URL and credential stay in the server's settings) or a base URL. A base URL is only where to
send a call, never a secret: it takes no user:password, query or fragment, and the gateway sends a
server credential only to a configured upstream's own URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from domain.errors import InvalidInput
from domain.values import name_text

#: an upstream's name in the server's settings
UPSTREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_URL = 2000


@dataclass(frozen=True)
class ServingTarget:
    """The upstream's model name, and the configured upstream or the base URL that serves it."""

    model: str
    upstream: str | None = None
    base_url: str | None = None

    @classmethod
    def validate(cls, value: Any, *, field: str = "serving") -> ServingTarget:
        example = (f'{field} is {{"upstream": "NAME", "model": "..."}} (an upstream configured on the server) or '
                   f'{{"base_url": "https://host/v1", "model": "..."}}')  # fmt: skip
        if not isinstance(value, dict):
            raise InvalidInput(f"{example}.")
        unknown = sorted(set(value) - {"model", "upstream", "base_url"})
        if unknown:
            raise InvalidInput(f"{field} has unknown fields {', '.join(map(repr, unknown))}: {example}.")
        upstream, base_url = value.get("upstream"), value.get("base_url")
        if (upstream is None) == (base_url is None):
            raise InvalidInput(f"{field} names an upstream or a base_url, exactly one: {example}.")
        model = name_text(f"{field}.model", value.get("model"))
        if upstream is not None:
            if not isinstance(upstream, str) or not UPSTREAM_NAME.fullmatch(upstream):
                raise InvalidInput(f"{field}.upstream must be an upstream's name (letters, digits, '.', '_', '-'; "
                                   "at most 64), as configured in FT_UPSTREAMS.")  # fmt: skip
            return cls(model=model, upstream=upstream)
        return cls(model=model, base_url=base_url_of(base_url, f"{field}.base_url"))

    def as_dict(self) -> dict[str, str]:
        where = {"upstream": self.upstream} if self.upstream is not None else {"base_url": self.base_url}
        return where | {"model": self.model}  # type: ignore[return-value]


def base_url_of(value: Any, field: str) -> str:
    """An http(s) base URL with a host and nothing secret in it, without a trailing slash."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_URL:
        raise InvalidInput(f"{field} must be an http(s) URL such as https://host/v1 (at most {MAX_URL} characters).")
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{field} {value[:200]!r} is not an http(s) URL with a host, such as https://host/v1.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput(f"{field} takes no user:password, query or fragment: a URL is recorded with the version, "
                           "so a credential belongs in the server's upstream settings.")  # fmt: skip
    return value.rstrip("/")

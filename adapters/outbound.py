"""The one rule for every outbound call the server makes on a client's request.

Live evaluations, publishing to Ollama (and later the gateway's upstreams and webhooks) call a URL
the server chose from its configuration. Anything else must not reach the server's own machine, its
private network or a cloud metadata service (server-side request forgery): its host is resolved and
every address it resolves to must be public. An endpoint the operator configured is trusted as it is,
and FT_ALLOW_PRIVATE_ENDPOINTS=true lets private addresses through for development and tests
(metadata addresses stay refused: no development setup needs them).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from domain.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: cloud instance metadata services (AWS, GCP, Azure, OpenStack; AWS's IPv6; Alibaba)
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
Resolver = Callable[[str], list[str]]
SLUG = "outbound-refused"
METADATA_REASON = "a cloud metadata address"


def _resolve(host: str) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})


def refusal(address: Address) -> str | None:
    """Why an address may not be called (None: it is a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA:
        return METADATA_REASON
    for why, hit in (("a loopback", address.is_loopback), ("an unspecified", address.is_unspecified),
                     ("a link-local", address.is_link_local), ("a multicast", address.is_multicast),
                     ("a private", address.is_private), ("a reserved", address.is_reserved)):  # fmt: skip
        if hit:
            return f"{why} address"
    return None if address.is_global else "not a public address"


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def check_url(url: str, *, configured: Iterable[str] = (), allow_private: bool = False,
              resolve: Resolver = _resolve) -> str:  # fmt: skip
    """Returns `url` if the server may call it; raises InvalidInput (422) saying why not and what to do."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{url[:200]!r} is not an http(s) URL with a host.", slug=SLUG)
    if origin(url) in {origin(c) for c in configured}:
        return url  # the operator's own choice
    host = parts.hostname
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host)]
        except (OSError, UnicodeError, ValueError):
            raise InvalidInput(f"The host {host!r} of {url[:200]!r} cannot be resolved.", slug=SLUG) from None
        if not addresses:
            raise InvalidInput(f"The host {host!r} of {url[:200]!r} has no address.", slug=SLUG) from None
    for address in addresses:
        why = refusal(address)
        if why is not None and (not allow_private or why == METADATA_REASON):
            raise InvalidInput(
                f"Refusing to call {url[:200]!r}: {host} is {address}, {why}. The server calls only public "
                "addresses and the endpoints configured on it (FT_ENDPOINTS); for development on one machine, "
                "set FT_ALLOW_PRIVATE_ENDPOINTS=true.", slug=SLUG,
            )  # fmt: skip
    return url

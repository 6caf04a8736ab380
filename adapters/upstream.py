"""The gateway's HTTP client for OpenAI-compatible upstreams: keep-alive connections, streamed bodies.

One aiohttp session serves every upstream. (httpx's pool looks at every open connection on every
request, which at a few dozen concurrent calls cost more than the rest of the gateway together.)
A call's body is sent as the gateway rewrote it; only the headers built here go upstream (content
type, the upstream's own key where the server holds one, and the call id), never the caller's.
Server-sent events are split incrementally as bytes arrive, so a chunk leaves for the client as soon
as it came.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

#: a Retry-After the gateway honours at most (longer ones fail over at once)
DEFAULT_MAX_RETRY_AFTER = 2.0


@dataclass(frozen=True)
class UpstreamFailed(Exception):
    """An upstream that did not answer, or answered 429 or 5xx, before the first byte of an answer."""

    kind: str  # connect_error | timeout | rate_limited | upstream_error | protocol_error
    status_code: int | None = None
    retry_after: float | None = None
    body: bytes = b""

    def __str__(self) -> str:
        return self.kind if self.status_code is None else f"{self.kind} ({self.status_code})"


class StreamBroken(Exception):
    """The upstream's answer stopped before its end (a dropped connection, a read timeout)."""


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, at.timestamp() - time.time())


class UpstreamResponse:
    """An upstream's answer whose status and headers have arrived, its body not yet read."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as e:
            raise StreamBroken(type(e).__name__) from None

    async def events(self) -> AsyncIterator[bytes]:
        """The answer's server-sent events, each with its blank-line terminator, as they arrive."""
        buffer = b""
        try:
            async for piece in self._response.content.iter_any():
                buffer += piece
                while True:
                    end, width = buffer.find(b"\n\n"), 2
                    crlf = buffer.find(b"\r\n\r\n")
                    if crlf != -1 and (end == -1 or crlf < end):
                        end, width = crlf, 4
                    if end == -1:
                        break
                    yield buffer[: end + width]
                    buffer = buffer[end + width :]
        except (TimeoutError, aiohttp.ClientError) as e:
            raise StreamBroken(type(e).__name__) from None
        if buffer.strip():
            yield buffer

    def close(self) -> None:
        """Frees the connection: back to the pool when the body was read whole, else closed."""
        self._response.release() if self._response.content.at_eof() else self._response.close()


class UpstreamClient:
    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 600.0, max_connections: int = 1000):
        self.connect_timeout, self.read_timeout, self.max_connections = connect_timeout, read_timeout, max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        # made in the server's event loop, at its first call
        connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout, sock_read=self.read_timeout)
        # trust_env=False: a proxy from the environment must not see the upstream's key
        return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False, auto_decompress=True)

    async def open(self, url: str, body: bytes, *, key: str | None, call_id: str) -> UpstreamResponse:
        """Sends the call and returns the answer with its status and headers read, its body not yet.
        Raises UpstreamFailed for what fails over: no connection, a timeout, 429 and 5xx."""
        if self._session is None:
            self._session = self._open_session()
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "X-FT-Call-Id": call_id}  # fmt: skip
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            response = await self._session.post(url, data=body, headers=headers, allow_redirects=False)
        except TimeoutError:
            raise UpstreamFailed("timeout") from None
        except (aiohttp.ClientConnectionError, OSError):
            raise UpstreamFailed("connect_error") from None
        except aiohttp.ClientError:
            raise UpstreamFailed("protocol_error") from None
        if response.status == 429 or response.status >= 500:
            try:
                content = await response.read()
            except (TimeoutError, aiohttp.ClientError):
                content = b""
            finally:
                response.release()
            kind = "rate_limited" if response.status == 429 else "upstream_error"
            raise UpstreamFailed(kind, response.status, retry_after_seconds(response.headers.get("retry-after")),
                                 content[:4096])  # fmt: skip
        return UpstreamResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

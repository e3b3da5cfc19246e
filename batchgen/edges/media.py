"""Image downloads: the media policy (`mediaurl`) enforced on the wire.

The session given here carries no credentials (see `client.py`). On top of that, every fetch:

* checks the URL, then follows redirects *by hand* (at most `MAX_REDIRECTS`), checking each hop
  with the same policy: a CDN redirecting to another CDN is fine, one redirecting to
  169.254.169.254 or to `file://` is refused before any connection is made;
* resolves host names through `GuardedResolver`, which drops forbidden addresses, so a name
  (or a decimal form such as `http://2852039166/`) that leads to a forbidden address is refused
  at connect time as well: the check and the connection use the same addresses;
* stops reading past `max_bytes` (declared or not) and gives the whole fetch, redirects
  included, one total deadline, so a body that trickles forever costs at most that deadline.

Refusals are `MediaRefused` with the failure kind the job records; other HTTP answers and
connection trouble stay `ApiError` / `TransportError`, which the engine retries per policy.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from batchgen.core.errors import ApiError, MediaRefused, TransportError
from batchgen.core.mediaurl import address_problem, host_scope, media_url_problem

__all__ = ["MAX_REDIRECTS", "GuardedResolver", "fetch_media"]

MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CHUNK: Final = 1 << 16


class UnsafeAddress(OSError):
    """A host name resolved only to addresses the media policy forbids."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, minus the addresses media may not come from (see `mediaurl`)."""

    def __init__(self, api_root: str, *, allow_private: bool = False) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._api_root = api_root
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed, problem = [], None
        for info in found:
            why = address_problem(
                host_scope(info["host"]), self._api_root, allow_private=self._allow_private
            )
            if why is None:
                allowed.append(info)
            else:
                problem = problem or f"{host} resolves to {info['host']}, {why}"
        if not allowed:
            raise UnsafeAddress(problem or f"{host} does not resolve")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _shown(url: str) -> str:
    """A URL for a message: short (a data: URL can be megabytes) and without its query."""
    text = url.split("?", 1)[0]
    return text if len(text) <= 100 else text[:99] + "…"


async def fetch_media(
    session: aiohttp.ClientSession,
    url: str,
    *,
    api_root: str,
    allow_private: bool,
    max_bytes: int,
    deadline: float,
    connect: float,
) -> bytes:
    """GET the image at `url` under the media policy, the size cap and one total deadline."""
    try:
        async with asyncio.timeout(deadline):
            return await _follow(session, url, api_root, allow_private, max_bytes, connect)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, UnsafeAddress):
            raise MediaRefused("unsafe_url", f"image URL refused: {exc.os_error}") from None
        raise TransportError(f"media download: {type(exc).__name__}", maybe_sent=False) from None
    except aiohttp.InvalidURL:  # e.g. http://2852039166/, which some resolvers read as an IP
        raise MediaRefused("unsafe_url", f"the image URL is malformed: {_shown(url)}") from None
    except aiohttp.ConnectionTimeoutError:
        raise TransportError("media download: connect timed out", maybe_sent=False) from None
    except TimeoutError:
        message = f"the image did not arrive within {deadline:g} s"
        raise MediaRefused("timeout", message) from None
    except aiohttp.ClientError as exc:
        raise TransportError(f"media download: {type(exc).__name__}", maybe_sent=True) from None


async def _follow(
    session: aiohttp.ClientSession,
    url: str,
    api_root: str,
    allow_private: bool,
    max_bytes: int,
    connect: float,
) -> bytes:
    timeout = aiohttp.ClientTimeout(total=None, connect=connect)
    for _ in range(MAX_REDIRECTS + 1):
        problem = media_url_problem(url, api_root, allow_private=allow_private)
        if problem is not None:
            raise MediaRefused("unsafe_url", f"{problem}: {_shown(url)}")
        async with session.get(url, allow_redirects=False, timeout=timeout) as resp:
            if resp.status in _REDIRECTS:
                location = resp.headers.get("Location")
                if not location:
                    raise ApiError(resp.status, "a redirect without a Location")
                try:
                    url = str(resp.url.join(URL(location)))
                except ValueError:
                    raise MediaRefused("unsafe_url", "a redirect to a malformed URL") from None
                continue
            if resp.status != 200:
                raise ApiError(resp.status, f"the image URL answered {resp.status}")
            return await _read_capped(resp, max_bytes)
    raise MediaRefused("unsafe_url", f"more than {MAX_REDIRECTS} redirects: {_shown(url)}")


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = resp.content_length
    if declared is not None and declared > max_bytes:
        raise MediaRefused(
            "too_large", f"the image is {declared:,} bytes, over the {max_bytes:,} cap"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise MediaRefused("too_large", f"the image is over the {max_bytes:,}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)

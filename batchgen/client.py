"""The transport: one aiohttp session for the API, one without credentials for media.

One method is one HTTP call. There are no retry loops here (they live in the engine, driven by
`policy`), and aiohttp's exceptions do not leak past this module: they become `TransportError`
(no usable answer; `maybe_sent` says whether a POST may have reached the server) or `ApiError`
(an answer we did not want). The API key goes only to the API's own origin: poll URLs on another
origin are re-rooted onto it, and media is always fetched by the credential-free session.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from batchgen import __version__
from batchgen.errors import ApiError, TransportError
from batchgen.policy import rate_limit_wait
from batchgen.wire import (
    API_KEY_HEADER,
    V1_HEADERS,
    Poll,
    Submitted,
    SyncImage,
    decode_base64,
    error_text,
    origin,
    parse_poll,
    parse_submit,
)

__all__ = ["DEFAULT_API_ROOT", "ApiClient", "Timeouts"]

DEFAULT_API_ROOT = "https://api.segmind.com"
USER_AGENT = f"batchgen/{__version__}"


@dataclass(frozen=True)
class Timeouts:
    """Deadlines per kind of call. Media has a total deadline, not only a per-read one, so a
    server trickling bytes cannot hold a download slot forever."""

    submit: float = 120.0
    poll: float = 30.0
    media: float = 300.0
    sync: float = 600.0
    connect: float = 15.0


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return self.body.decode("utf-8", "replace")


class ApiClient:
    """Async client of a Segmind-style API rooted at `api_root` (``/v1`` and ``/v2`` appended)."""

    def __init__(
        self,
        api_key: str,
        api_root: str = DEFAULT_API_ROOT,
        *,
        timeouts: Timeouts | None = None,
        max_image_bytes: int = 64 * 1024 * 1024,
        connections: int = 100,
    ) -> None:
        self._key = api_key
        self.api_root = api_root.rstrip("/")
        self._origin = origin(self.api_root)
        self.timeouts = timeouts or Timeouts()
        self.max_image_bytes = max_image_bytes
        self._connections = connections
        self._api: aiohttp.ClientSession | None = None
        self._media: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never show the key, even in a traceback's locals
        return f"ApiClient(api_root={self.api_root!r})"

    async def __aenter__(self) -> ApiClient:
        n = self._connections
        self._api = aiohttp.ClientSession(
            headers={API_KEY_HEADER: self._key, "User-Agent": USER_AGENT},
            connector=aiohttp.TCPConnector(limit=n, limit_per_host=n),
        )
        self._media = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            connector=aiohttp.TCPConnector(limit=n, limit_per_host=n),
        )
        for session in (self._api, self._media):
            _no_hidden_retries(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for session in (self._api, self._media):
            if session is not None:
                await session.close()
        self._api = self._media = None

    # -- calls -----------------------------------------------------------------------------------

    async def submit(self, model: str, params: dict[str, Any]) -> Submitted:
        """POST /v2/{model}. A 2xx without a readable request id is the ambiguous case."""
        answer = await self._send(
            "POST", f"{self.api_root}/v2/{model}", json_body=params, deadline=self.timeouts.submit
        )
        if not 200 <= answer.status < 300:
            raise self._api_error(answer)
        try:
            return parse_submit(answer.json(), self.api_root)
        except ValueError as exc:
            raise TransportError(
                f"the server accepted the submit but its answer is unreadable: {exc}",
                maybe_sent=True,
            ) from None

    async def poll(self, url: str) -> Poll:
        """GET a status or result URL; raises ApiError unless the answer is a poll answer."""
        answer = await self._send("GET", self._on_api_origin(url), deadline=self.timeouts.poll)
        poll = parse_poll(answer.status, answer.json())
        if poll is None:
            raise self._api_error(answer)
        return poll

    async def download(self, url: str) -> bytes:
        """GET an image from its (public) URL without credentials, within size and time caps."""
        assert self._media is not None, "use `async with ApiClient(...)`"
        timeout = aiohttp.ClientTimeout(total=self.timeouts.media, connect=self.timeouts.connect)
        try:
            async with self._media.get(url, timeout=timeout) as resp:
                if resp.status != 200:
                    body = await resp.content.read(4096)
                    raise self._api_error(_Answer(resp.status, dict(resp.headers), body))
                declared = resp.content_length
                if declared is not None and declared > self.max_image_bytes:
                    raise ApiError(200, f"image of {declared} bytes exceeds the size cap")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > self.max_image_bytes:
                        raise ApiError(200, "image exceeds the size cap")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport(exc, "media download", maybe_sent=True) from None

    async def run_sync(self, model: str, params: dict[str, Any]) -> SyncImage:
        """POST /v1/{model}: one blocking call that answers with the image (or base64 JSON)."""
        answer = await self._send(
            "POST", f"{self.api_root}/v1/{model}", json_body=params, deadline=self.timeouts.sync
        )
        if answer.status != 200:
            raise self._api_error(answer)
        headers = {k.lower(): v for k, v in answer.headers.items()}
        content_type = headers.get("content-type", "").split(";")[0].strip()
        data = answer.body
        if content_type == "application/json":
            data, content_type = _base64_image(answer.json()), "application/octet-stream"
        return SyncImage(
            data=data,
            content_type=content_type,
            request_id=headers.get(V1_HEADERS["request_id"]),
            seed=_number(headers.get(V1_HEADERS["seed"]), int),
            cost=_number(headers.get(V1_HEADERS["cost"]), float),
            generation_time=_number(headers.get(V1_HEADERS["generation_time"]), float),
        )

    # -- plumbing --------------------------------------------------------------------------------

    def _on_api_origin(self, url: str) -> str:
        """`url` if on the API's origin, else its path re-rooted there (the key stays home)."""
        if origin(url) == self._origin:
            return url
        parts = urlsplit(url)
        root = urlsplit(self.api_root)
        return urlunsplit((root.scheme, root.netloc, parts.path, parts.query, ""))

    async def _send(
        self, method: str, url: str, *, deadline: float, json_body: Any = None
    ) -> _Answer:
        assert self._api is not None, "use `async with ApiClient(...)`"
        client_timeout = aiohttp.ClientTimeout(total=deadline, connect=self.timeouts.connect)
        try:
            async with self._api.request(
                method, url, json=json_body, timeout=client_timeout, allow_redirects=False
            ) as resp:
                return _Answer(resp.status, dict(resp.headers), await resp.read())
        except aiohttp.ClientConnectorError as exc:
            raise _transport(exc, f"{method} {urlsplit(url).path}", maybe_sent=False) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport(exc, f"{method} {urlsplit(url).path}", maybe_sent=True) from None

    @staticmethod
    def _api_error(answer: _Answer) -> ApiError:
        retry_after = None
        if answer.status == 429:
            retry_after = rate_limit_wait(answer.headers, time.time())
        message = error_text(answer.json(), f"HTTP {answer.status} without a message")
        return ApiError(answer.status, message, retry_after=retry_after)


def _no_hidden_retries(session: aiohttp.ClientSession) -> None:
    """Stop aiohttp from silently re-sending a GET whose kept-alive connection was reset.

    That resend skips the throttle (an unpaced request, which counts against the limit when
    polls do) and the engine's retry policy and counters: the chaos soak saw the server get one
    request more than the runner sent per reset poll. One method is one HTTP call. (The
    attribute is private; aiohttp's own test client turns it off the same way.)
    """
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False


def _transport(exc: BaseException, what: str, *, maybe_sent: bool) -> TransportError:
    kind = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
    return TransportError(f"{what}: {kind}", maybe_sent=maybe_sent)


def _base64_image(body: Any) -> bytes:
    text = body.get("image") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise ApiError(200, "JSON answer without an 'image' field")
    try:
        return decode_base64(text)
    except ValueError:
        raise ApiError(200, "the 'image' field is not valid base64") from None


def _number(text: str | None, kind: type[int] | type[float]) -> Any:
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        return None

"""The transport: one aiohttp session for the API, one without credentials for media.

One method is one HTTP call. There are no retry loops here (they live in the engine, driven by
`policy`), and aiohttp's exceptions do not leak past this module: they become `TransportError`
(no usable answer; `maybe_sent` says whether a POST may have reached the server) or `ApiError`
(an answer we did not want). The API key goes only to the API's own origin: poll URLs on another
origin are re-rooted onto it, and media is always fetched by the credential-free session,
under the media policy of `mediaurl` (enforced by `media.fetch_media` and its resolver guard).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from batchgen.core.errors import ApiError, TransportError
from batchgen.core.policy import rate_limit_wait
from batchgen.core.version import __version__
from batchgen.core.wire import (
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
from batchgen.edges.crashpoints import crashpoint
from batchgen.edges.media import GuardedResolver, fetch_media

__all__ = ["DEFAULT_API_ROOT", "ApiClient", "Timeouts"]

DEFAULT_API_ROOT = "https://api.segmind.com"
USER_AGENT = f"batchgen/{__version__}"
ANSWER_LIMIT = 4 * 1024 * 1024  # bytes of a submit/poll answer: they are a few hundred


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
        allow_private_media: bool = False,
    ) -> None:
        if any(not 32 <= ord(c) != 127 for c in api_key):
            # aiohttp would refuse it per request, deep in a run: say it once, and never echo it.
            raise ValueError("the API key contains a line break or control character")
        self._key = api_key
        self.api_root = api_root.rstrip("/")
        self._origin = origin(self.api_root)
        self.timeouts = timeouts or Timeouts()
        self.max_image_bytes = max_image_bytes
        self.allow_private_media = allow_private_media  # see mediaurl: off unless the API is local
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
        resolver = GuardedResolver(self.api_root, allow_private=self.allow_private_media)
        self._media = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            connector=aiohttp.TCPConnector(limit=n, limit_per_host=n, resolver=resolver),
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
            accepted = parse_submit(answer.json(), self.api_root)
        except ValueError as exc:
            raise TransportError(
                f"the server accepted the submit but its answer is unreadable: {exc}",
                maybe_sent=True,
            ) from None
        crashpoint("post-sent")  # test hook, off in production: paid, not yet recorded
        return accepted

    async def poll(self, url: str) -> Poll:
        """GET a status or result URL; raises ApiError unless the answer is a poll answer."""
        answer = await self._send("GET", self._on_api_origin(url), deadline=self.timeouts.poll)
        poll = parse_poll(answer.status, answer.json())
        if poll is None:
            raise self._api_error(answer)
        return poll

    async def download(self, url: str) -> bytes:
        """GET an image from its (public) URL without credentials, under the media policy, the
        size cap and one total deadline; MediaRefused says why one was refused."""
        assert self._media is not None, "use `async with ApiClient(...)`"
        return await fetch_media(
            self._media,
            url,
            api_root=self.api_root,
            allow_private=self.allow_private_media,
            max_bytes=self.max_image_bytes,
            deadline=self.timeouts.media,
            connect=self.timeouts.connect,
        )

    async def run_sync(self, model: str, params: dict[str, Any]) -> SyncImage:
        """POST /v1/{model}: one blocking call that answers with the image (or base64 JSON)."""
        answer = await self._send(
            "POST",
            f"{self.api_root}/v1/{model}",
            json_body=params,
            deadline=self.timeouts.sync,
            limit=self.max_image_bytes * 4 // 3 + 4096,  # an image, maybe as base64 JSON
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

    async def post_json(self, url: str, body: Any, deadline: float) -> tuple[int, Any]:
        """One credentialed POST to `url` (the API or the upload host only: the caller's URL
        carries the key), answered as (status, JSON or text). For `uploads.upload_files`."""
        answer = await self._send("POST", url, json_body=body, deadline=deadline)
        if not 200 <= answer.status < 300:
            raise self._api_error(answer)
        return answer.status, answer.json()

    # -- plumbing --------------------------------------------------------------------------------

    def _on_api_origin(self, url: str) -> str:
        """`url` if on the API's origin, else its path re-rooted there (the key stays home)."""
        if origin(url) == self._origin:
            return url
        parts = urlsplit(url)
        root = urlsplit(self.api_root)
        return urlunsplit((root.scheme, root.netloc, parts.path, parts.query, ""))

    async def _send(
        self, method: str, url: str, *, deadline: float, json_body: Any = None, limit: int = 0
    ) -> _Answer:
        """One call; the answer is read up to `limit` bytes (default ANSWER_LIMIT): a server
        or proxy answering gigabytes costs a TransportError, not the machine's memory."""
        assert self._api is not None, "use `async with ApiClient(...)`"
        client_timeout = aiohttp.ClientTimeout(total=deadline, connect=self.timeouts.connect)
        try:
            async with self._api.request(
                method, url, json=json_body, timeout=client_timeout, allow_redirects=False
            ) as resp:
                cap = limit or ANSWER_LIMIT
                body = await _read_at_most(resp, cap)
                if body is None:
                    what = f"{method} {urlsplit(url).path}: an answer over {cap:,} bytes"
                    raise TransportError(what, maybe_sent=True)
                return _Answer(resp.status, dict(resp.headers), body)
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


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed `limit` bytes."""
    if resp.content_length is not None and resp.content_length > limit:
        return None
    body = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


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

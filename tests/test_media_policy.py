"""The media policy (`mediaurl`) as a table, and its resolver guard on a real name lookup."""

from __future__ import annotations

import pytest

from batchgen.core.errors import ApiError, MediaRefused, TransportError
from batchgen.core.mediaurl import Scope, host_scope, media_url_problem
from batchgen.core.policy import Action, decide_media
from batchgen.edges.media import GuardedResolver, UnsafeAddress
from batchgen.edges.sinks import InvalidImage

PUBLIC_API = "https://api.segmind.com"
LOCAL_API = "http://127.0.0.1:8765"
LAN_API = "http://10.1.2.3:8080"


@pytest.mark.parametrize(
    ("url", "api", "allow", "problem"),
    [
        ("https://cdn.segmind.com/a.png", PUBLIC_API, False, None),  # a CDN on another host
        ("http://93.184.216.34/a.png", PUBLIC_API, False, None),
        ("HTTPS://CDN.example/a.png", PUBLIC_API, False, None),
        ("file:///etc/passwd", PUBLIC_API, False, "uses 'file'"),
        ("ftp://cdn.example/a.png", PUBLIC_API, False, "uses 'ftp'"),
        ("data:image/png;base64,AAAA", PUBLIC_API, False, "uses 'data'"),
        ("gopher://x/", PUBLIC_API, False, "uses 'gopher'"),
        ("//cdn.example/a.png", PUBLIC_API, False, "uses 'no scheme'"),
        ("http:///a.png", PUBLIC_API, False, "has no host"),
        ("http://user:pw@cdn.example/a.png", PUBLIC_API, False, "user name or password"),
        ("http://cdn.example:99999/a.png", PUBLIC_API, False, "malformed"),
        ("http://169.254.169.254/latest/meta-data/", PUBLIC_API, False, "link-local"),
        ("http://169.254.169.254/", LOCAL_API, True, "link-local"),  # never, even if allowed
        ("http://[fe80::1]/a.png", LOCAL_API, True, "link-local"),
        ("http://[fe80::1%25eth0]/a.png", LOCAL_API, True, "link-local"),
        ("http://[::ffff:169.254.169.254]/a.png", LOCAL_API, True, "link-local"),
        ("http://0.0.0.0/a.png", LOCAL_API, True, "unspecified"),
        ("http://224.0.0.1/a.png", LOCAL_API, True, "multicast"),
        ("http://10.0.0.1/a.png", PUBLIC_API, False, "a private address"),
        ("http://192.168.1.1/a.png", PUBLIC_API, False, "a private address"),
        ("http://100.64.0.1/a.png", PUBLIC_API, False, "a private address"),
        ("http://[fd00::1]/a.png", PUBLIC_API, False, "a private address"),
        ("http://127.0.0.1/a.png", PUBLIC_API, False, "a loopback address"),
        ("http://localhost/a.png", PUBLIC_API, False, "a loopback address"),
        ("http://[::1]/a.png", PUBLIC_API, False, "a loopback address"),
        ("http://127.0.0.2:9/a.png", LOCAL_API, False, None),  # the emulator's media origin
        ("http://[::1]/a.png", LOCAL_API, False, None),
        ("http://10.0.0.1/a.png", LOCAL_API, False, "a private address"),  # not the same kind
        ("http://10.9.9.9/a.png", LAN_API, False, None),  # a gateway on the LAN, media too
        ("http://127.0.0.1/a.png", LAN_API, False, "a loopback address"),
        ("http://10.0.0.1/a.png", PUBLIC_API, True, None),  # explicitly allowed
        ("http://127.0.0.1/a.png", PUBLIC_API, True, None),
    ],
)
def test_media_url_policy(url: str, api: str, allow: bool, problem: str | None):
    """Only http(s); metadata/link-local never; private/loopback only like the API's or allowed."""
    found = media_url_problem(url, api, allow_private=allow)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_host_scope_leaves_names_to_the_resolver():
    assert host_scope("cdn.segmind.com") is None
    assert host_scope("LOCALHOST.") is Scope.LOOPBACK
    assert host_scope("8.8.8.8") is Scope.PUBLIC


async def test_the_resolver_guard_refuses_names_that_lead_to_forbidden_addresses():
    """A name is checked where it resolves: `localhost` is refused for a public API."""
    guard = GuardedResolver(PUBLIC_API)
    with pytest.raises(UnsafeAddress, match=r"localhost resolves to 127\.0\.0\.1, a loopback"):
        await guard.resolve("localhost", 80)
    allowed = await GuardedResolver(LOCAL_API).resolve("localhost", 80)
    assert {info["host"] for info in allowed} >= {"127.0.0.1"}
    await guard.close()


@pytest.mark.parametrize(
    ("exc", "action", "kind"),
    [
        (MediaRefused("unsafe_url", "x"), Action.FAIL_JOB, "unsafe_url"),
        (MediaRefused("too_large", "x"), Action.FAIL_JOB, "too_large"),
        (MediaRefused("timeout", "x"), Action.FAIL_JOB, "timeout"),
        (InvalidImage("expected png, got jpeg"), Action.FAIL_JOB, "bad_image"),
        (ValueError("bad base64"), Action.FAIL_JOB, "bad_image"),
        (ApiError(404, "gone"), Action.FAIL_JOB, "download"),
        (ApiError(503, "busy"), Action.RETRY, "download"),
        (TransportError("reset", maybe_sent=True), Action.RETRY, "download"),
    ],
)
def test_media_failures_have_a_kind_and_refusals_are_not_retried(
    exc: Exception, action: Action, kind: str
):
    decision, got = decide_media(exc)
    assert (decision.action, got) == (action, kind)

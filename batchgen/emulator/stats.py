"""What clients did to the emulator, counted so tests assert on the server's view.

A client's own counters can lie (that is what is under test); these cannot. The figures later
issues rely on: paid submits per (model, params) fingerprint and the duplicates among them, polls
per request, requests refused by the rate limit, peak jobs in flight, faults injected.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stats", "fingerprint"]


def fingerprint(model: str, params: Mapping[str, Any]) -> str:
    """Identity of a paid request's content: two equal fingerprints mean a job paid twice."""
    blob = json.dumps([model, params], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # by route
    responses: Counter[int] = field(default_factory=Counter)  # by HTTP status
    submits_accepted: int = 0  # v2 submits that created a job (billed unless it FAILS)
    sync_accepted: int = 0  # v1 calls that created a job
    paid: Counter[str] = field(default_factory=Counter)  # fingerprint -> accepted count
    polls: Counter[str] = field(default_factory=Counter)  # request_id -> status+result GETs
    status_polls: int = 0
    result_polls: int = 0
    not_found_polls: int = 0  # 404 on a poll: expired or unknown id
    media_downloads: int = 0
    media_with_api_key: int = 0  # downloads that carried x-api-key: a leaked secret
    asset_downloads: int = 0  # GETs of uploaded assets' URLs
    inputs_refused: int = 0  # submits refused for an image input that is not one of our assets
    images_made: int = 0  # output images of completed jobs (several per job when asked)
    rate_limited: Counter[str] = field(default_factory=Counter)  # by route, refused by the limit
    faults: Counter[str] = field(default_factory=Counter)  # "route:kind"
    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    credits_spent: float = 0.0

    def job_started(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def job_finished(self, ok: bool) -> None:
        self.in_flight -= 1
        if ok:
            self.completed += 1
        else:
            self.failed += 1

    def snapshot(self, *, remaining_credits: float, detail: bool = True) -> dict[str, Any]:
        """JSON-ready view; `detail` adds the per-request and per-fingerprint maps."""
        duplicates = {fp: n - 1 for fp, n in self.paid.items() if n > 1}
        polls = list(self.polls.values())
        view: dict[str, Any] = {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "submits_accepted": self.submits_accepted,
            "sync_accepted": self.sync_accepted,
            "paid_submits": sum(self.paid.values()),
            "duplicate_paid_submits": sum(duplicates.values()),
            "status_polls": self.status_polls,
            "result_polls": self.result_polls,
            "not_found_polls": self.not_found_polls,
            "polls_max_per_request": max(polls, default=0),
            "media_downloads": self.media_downloads,
            "media_with_api_key": self.media_with_api_key,
            "asset_downloads": self.asset_downloads,
            "inputs_refused": self.inputs_refused,
            "images_made": self.images_made,
            "rate_limited": sum(self.rate_limited.values()),
            "rate_limited_by_route": dict(self.rate_limited),
            "faults": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "completed": self.completed,
            "failed": self.failed,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "credits_spent": round(self.credits_spent, 6),
            "remaining_credits": round(remaining_credits, 6),
        }
        if detail:
            view["duplicates"] = duplicates
            view["polls_by_request"] = dict(self.polls)
        return view

"""The human summary printed by `batchgen validate`: plain lines, so tests can read them."""

from __future__ import annotations

import json

from batchgen.estimate import estimate, format_duration
from batchgen.jobs import Job
from batchgen.manifest import Manifest, Scan

__all__ = ["summary_lines"]


def _job_line(job: Job) -> str:
    params = json.dumps(dict(job.params), ensure_ascii=False)
    extra = " (seed chosen by batchgen)" if job.seed_resolved else ""
    return f"  {job.id}  {job.model}  {params}{extra}"


def summary_lines(manifest: Manifest, scan: Scan) -> list[str]:
    """Job count, sample jobs, cost and duration estimates for a valid manifest."""
    s = manifest.settings
    est = estimate(scan.count, s, manifest.schema)
    lines = [f"{manifest.path}: valid, {scan.count:,} job(s), model {manifest.model}"]
    if scan.sample:
        lines.append(f"first {len(scan.sample)} job(s):")
        lines.extend(_job_line(job) for job in scan.sample)
    if est.cost_usd is None:
        lines.append("estimated cost: unknown (set price_per_image or --price-per-image)")
    else:
        lines.append(
            f"estimated cost: ${est.cost_usd:,.2f} ({scan.count:,} x ${est.price_per_image:.3f})"
        )
    polls = "polls count against the limit" if s.count_polls else "polls not counted"
    lines.append(
        f"estimated duration: {format_duration(est.seconds)} at {s.rpm:g} requests/min "
        f"({polls}), concurrency {s.concurrency}, ~{est.latency_seconds:g} s per image "
        f"=> {est.jobs_per_minute:.1f} images/min"
    )
    if s.budget_usd is not None and est.cost_usd is not None and est.cost_usd > s.budget_usd:
        lines.append(f"note: budget_usd = {s.budget_usd:g} stops the run before it completes")
    lines.append(f"output: {s.output}/  (nothing was sent)")
    return lines

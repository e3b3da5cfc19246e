"""Human summaries printed by `batchgen validate` and `batchgen run`: plain lines, so tests can
read them."""

from __future__ import annotations

import json

from batchgen.estimate import estimate, format_duration
from batchgen.jobs import Job
from batchgen.manifest import Manifest, Scan
from batchgen.runner import RunResult

__all__ = ["run_summary_lines", "summary_lines"]


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


def run_summary_lines(result: RunResult) -> list[str]:
    """The short end-of-run report: outcomes, API calls per job, charges to check, where."""
    st = result.stats
    failed = sum(st.failed.values())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(st.failed.items()))
    lines = [
        f"{st.jobs:,} job(s) run: {st.completed:,} completed, {failed:,} failed"
        + (f" ({kinds})" if kinds else "")
        + (f", {st.released:,} left for a rerun" if st.released else "")
        + (f"; {result.skipped:,} already done" if result.skipped else ""),
        f"API calls per job: {st.api_calls_per_job:.2f} "
        f"(submits {st.calls['submit']}, polls {st.calls['poll'] + st.calls['result']}), "
        f"retries {st.retries}, 429s {st.rate_limited}, resubmits after expiry {st.resubmits}",
    ]
    resumed = result.resumed
    if resumed.runs:
        lines.append(
            f"resumed (run {resumed.runs + 1} in this folder): {st.reattached} paid request(s) "
            f"polled again, {st.refetched} lost image(s) downloaded again"
            + (
                f", {resumed.failed} earlier failure(s) left (--retry-failed)"
                if resumed.failed
                else ""
            )
            + (f", {resumed.removed} job(s) no longer in the manifest" if resumed.removed else "")
        )
    if st.possible_double_charges:
        lines.append(
            f"possible double charges: {st.possible_double_charges} "
            "(a submit was sent but its answer was lost; see 'unknown' in the ledger)"
        )
    if st.stop_reason:
        lines.append(f"stopped: {st.stop_reason}")
    out = result.out_dir
    lines.append(f"output: {out}/ (images, metadata.jsonl, ledger.jsonl)")
    return lines

"""Human summaries printed by `batchgen validate` and `batchgen run`: plain lines, so tests can
read them."""

from __future__ import annotations

import json
from collections import Counter

from batchgen.core.jobs import Job
from batchgen.manifest.estimate import Estimate, ModelShare, estimate, format_duration
from batchgen.manifest.loader import Manifest, Scan
from batchgen.run.resumeplan import IMAGES_KEY, PAY_KEY
from batchgen.run.runner import RunResult

__all__ = ["dry_run_lines", "run_summary_lines", "summary_lines"]


def _job_line(job: Job) -> str:
    params = json.dumps(dict(job.params), ensure_ascii=False)
    extra = " (seed chosen by batchgen)" if job.seed_resolved else ""
    return f"  {job.id}  {job.model}  {params}{extra}"


def summary_lines(manifest: Manifest, scan: Scan) -> list[str]:
    """Job count, sample jobs, cost and duration estimates for a valid manifest: each job
    priced and timed by its own model."""
    s = manifest.settings
    est = estimate(scan.models or {manifest.model: scan.count}, s, images=scan.images)
    models = est.models
    named = (
        f"model {models[0].model}"
        if len(models) == 1
        else "models " + ", ".join(f"{m.model} ({m.jobs:,})" for m in models)
    )
    lines = [f"{manifest.path}: valid, {scan.count:,} job(s), {named}"]
    if scan.sample:
        lines.append(f"first {len(scan.sample)} job(s):")
        lines.extend(_job_line(job) for job in scan.sample)
    lines.append(f"estimated cost: {_cost(est)}")
    polls = "polls count against the limit" if s.count_polls else "polls not counted"
    rpm = f"{s.rpm:g}" if s.fixed_rpm else f"auto (from {est.limits.by_rate:g})"
    lines.append(
        f"estimated duration: {format_duration(est.seconds)} at {rpm} requests/min "
        f"({polls}), concurrency {_concurrency(est)}, ~{est.latency_seconds:.3g} s per image "
        f"=> {est.jobs_per_minute:.1f} images/min"
    )
    lines.append(_binding_line(est))
    if s.fixed_rpm is None:
        lines.append(
            f"rate: auto, planned at the lowest plan's {s.planned_rpm:g}/min; the run learns "
            "the real limit from 429s (and a resume starts from what it learned)"
        )
    if s.budget_usd is not None and est.cost_usd is not None and est.cost_usd > s.budget_usd:
        lines.append(f"note: budget_usd = {s.budget_usd:g} stops the run before it completes")
    lines.append(f"output: {s.output}/  (nothing was sent)")
    return lines


def _cost(est: Estimate) -> str:
    """'$1.60 (8 x $0.200)', by model when there are several, or why it is unknown."""
    if est.cost_usd is None:
        which = f"no price for {', '.join(est.unpriced)}; " if len(est.models) > 1 else ""
        return f"unknown ({which}set price_per_image or --price-per-image)"
    if len(est.models) == 1:
        (only,) = est.models
        return f"${est.cost_usd:,.2f} ({_images(only)} x ${est.price_per_image:.3f})"
    parts = " + ".join(f"{_images(m)} x ${m.price_per_image:.3f} {m.model}" for m in est.models)
    return f"${est.cost_usd:,.2f} ({parts})"


def _images(share: ModelShare) -> str:
    """'8', or '24 images' where jobs ask for several each (the price is per image)."""
    n = share.priced_images
    return f"{n:,}" if n == share.jobs else f"{n:,} images"


def _concurrency(est: Estimate) -> str:
    pace = est.limits
    return f"auto (~{pace.concurrency} in flight)" if pace.auto else str(pace.concurrency)


def _binding_line(est: Estimate) -> str:
    """Which limit sets the pace, and what would lift it."""
    pace = est.limits
    if pace.binding == "rate":
        what = f"the rate limit binds ({pace.by_rate:.1f} images/min)"
    else:
        what = (
            f"concurrency binds ({pace.by_concurrency:.1f} images/min of the "
            f"{pace.by_rate:.1f} the rate allows)"
        )
    return f"limit: {what}; {pace.lift()}"


def run_summary_lines(result: RunResult) -> list[str]:
    """The short end-of-run report: outcomes, API calls per job, charges to check, where."""
    st = result.stats
    failed = sum(st.failed.values())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(st.failed.items()))
    lines = [
        f"{st.jobs:,} job(s) run: {st.completed:,} completed, {failed:,} failed"
        + (f" ({kinds})" if kinds else "")
        + (f", {st.released:,} left for a rerun" if st.released else "")
        + (f"; {result.skipped:,} already done" if result.skipped else "")
        + (
            f"; {st.reused:,} reused from the catalogue (saved ${st.saved:,.2f})"
            if st.reused
            else ""
        ),
        f"API calls per job: {st.api_calls_per_job:.2f} ({_calls(st.calls)}), "
        f"retries {st.retries}, 429s {st.rate_limited}"
        + (
            f" ({st.rate_limited_probing} while learning the rate)"
            if st.rate_limited_probing
            else ""
        )
        + f", resubmits after expiry {st.resubmits}",
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
    summary = result.summary
    total = summary["latency_seconds"]["total"]
    if total["p50"] is not None:
        lines.append(
            f"latency p50/p95: {total['p50']:.2f}/{total['p95']:.2f} s end to end; "
            f"spend ${summary['spend_usd']:.2f}; wall {summary['wall_seconds']:.1f} s"
            + (
                f" (floor {summary['floor_seconds']:.1f} s)"
                if summary["floor_seconds"] is not None
                else ""
            )
        )
    if st.stop_reason:
        lines.append(f"stopped: {st.stop_reason}")
    for kind, group in summary["failures"].items():
        for example in group["examples"][:2]:
            lines.append(f"  failed ({kind}) {example['job']}: {example['error']}")
    out = result.out_dir
    left = summary["outcome"]["failed"] + result.resumed.failed
    if left and result.written:
        lines.append(
            f"{left:,} failed job(s) in the folder: run the same command with --retry-failed "
            f"to retry them (they are listed in {out}/failed.jsonl)"
        )
    if not result.written:
        lines.append(f"nothing was written: no job was accepted, so {out}/ was not kept")
    else:
        extra = ", failed.jsonl" if left else ""
        lines.append(f"output: {out}/ (images, metadata.jsonl, ledger.jsonl, summary.json{extra})")
    return lines


def _calls(calls: Counter[str]) -> str:
    """The API calls by kind: a sync run makes one kind, a queue run two."""
    polls = calls["poll"] + calls["result"]
    kinds = [f"submits {calls['submit']}", f"polls {polls}"] if calls["submit"] or polls else []
    if calls["sync"] or not kinds:
        kinds.append(f"sync calls {calls['sync']}")
    return ", ".join(kinds)


_NOT_JOBS = ("removed", "saved_cents")
_BY_MODEL = (PAY_KEY, IMAGES_KEY)  # the same jobs again, counted by model


def dry_run_lines(
    manifest: Manifest,
    steps: Counter[str],
    *,
    latency_seconds: float | None = None,
    window: float = 60.0,
) -> list[str]:
    """What `run` would do now, from the resume plan: counts per step, cost and time to go
    (`latency_seconds`: the server's typical latency when it is not the model's)."""
    to_pay = steps["submit"] + steps["resubmit_unknown"] + steps["resubmit_expired"]
    by_model = {k[len(PAY_KEY) :]: v for k, v in steps.items() if k.startswith(PAY_KEY)}
    images = {k[len(IMAGES_KEY) :]: v for k, v in steps.items() if k.startswith(IMAGES_KEY)}
    if not by_model or sum(by_model.values()) != to_pay:  # no counts by model: the manifest's
        by_model, images = {manifest.model: to_pay}, {}
    est = estimate(by_model, manifest.settings, images=images, latency_seconds=latency_seconds,
                   window=window)  # fmt: skip
    jobs = sum(v for k, v in steps.items() if k not in _NOT_JOBS and not k.startswith(_BY_MODEL))
    lines = [
        f"{manifest.path}: {jobs:,} job(s)",
        f"  already done            {steps['done']:,}",
        f"  reuse from catalogue    {steps['reuse']:,}  (not paid: saves "
        f"${steps['saved_cents'] / 100:,.2f})",
        f"  failed, left alone      {steps['failed']:,}  (--retry-failed to retry)",
        f"  in flight, re-attach    {steps['attach']:,}  (polled, not paid again)",
        f"  lost images, re-fetch   {steps['refetch']:,}",
        f"  to submit               {steps['submit']:,}",
        f"  to submit again         {steps['resubmit_unknown'] + steps['resubmit_expired']:,}"
        f"  ({steps['resubmit_unknown']} possible double charge(s))",
    ]
    if steps["removed"]:
        lines.append(f"  no longer in manifest   {steps['removed']:,}  (left alone)")
    cost = "unknown" if est.cost_usd is None else f"${est.cost_usd:,.2f}"
    asked = sum(m.priced_images for m in est.models)
    paid = f"{to_pay:,} image(s)" if asked == to_pay else f"{to_pay:,} job(s), {asked:,} images"
    lines.append(f"to pay for: {paid}, {cost}, about {format_duration(est.seconds)}")
    if len(est.models) > 1:
        lines.append("  by model: " + ", ".join(f"{m.model} {m.jobs:,}" for m in est.models))
    lines.append(_binding_line(est))
    lines.append("dry run: nothing was sent")
    return lines

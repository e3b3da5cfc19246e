"""One poll plan per model: a run that mixes models learns each one's latency apart.

A sweep over `model: [qwen-image, seedream-4.5]`, or a JSONL with a model per row, mixes jobs
whose latencies differ several-fold. One plan fitted on the mixture serves neither: under its
poll budget it either polls the fast model's jobs late (a slot held seconds after the image is
ready) or polls the slow model's jobs early and again (calls spent on "still running"). So each
model gets its own `PollPlanner`, made on the model's first job (a run of one model has one),
starting from that model's expected latency (`priors`: the caller's figure per model, from the
model tables, the emulator or a flag) or, for a model it has no figure for, `fallback`.

Pure, like `pollplan`: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from batchgen.core.pollplan import PROBE_JOBS, PollPlanner

__all__ = ["PollPlans"]


class PollPlans:
    """The run's poll plans by model, made lazily (see the module docstring)."""

    def __init__(
        self,
        fallback: float,
        priors: Mapping[str, float] | None = None,
        *,
        probes: int = PROBE_JOBS,
    ) -> None:
        self.fallback = fallback
        self.priors = dict(priors or {})
        self.probes = probes  # each new planner's probe jobs (see `PollPlanner.probe`)
        self._planners: dict[str, PollPlanner] = {}

    def of(self, model: str) -> PollPlanner:
        """`model`'s planner, made from its prior on first use."""
        planner = self._planners.get(model)
        if planner is None:
            planner = PollPlanner(self.priors.get(model, self.fallback))
            planner.probes_left = self.probes
            self._planners[model] = planner
        return planner

    def seed(self, known: Mapping[str, Sequence[float]]) -> None:
        """Latencies earlier runs learned, by model (a resume): each to its own model's plan."""
        for model, latencies in known.items():
            if latencies:
                self.of(model).seed(latencies)

    def __iter__(self) -> Iterator[tuple[str, PollPlanner]]:
        return iter(self._planners.items())

    def __len__(self) -> int:
        return len(self._planners)

    @property
    def version(self) -> int:
        """Moves with every new planner and every new plan: when the in-flight cap needs a
        refit."""
        return len(self._planners) + sum(p.version for p in self._planners.values())

    def fit(self) -> tuple[float, float] | None:
        """(latency high, poll delay) for the in-flight cap: the slowest model's, i.e. the
        planner whose jobs hold a slot longest (None before any planner exists).

        The slowest, not a job-weighted mean: by Little's law the slots needed are rate x the
        mean time a slot is held over the jobs in flight *now*, and that mix is not the run's
        mix: a JSONL grouped by model sends its slow jobs together, a sweep interleaves them.
        Sizing for the slowest model is the mix's upper bound; erring high costs only memory
        (a spare slot waits for a rate token, `core.littles`), erring low leaves rate unused
        whenever the slow model's jobs cluster.
        """
        figures = [(p.latency_high(), p.poll_delay()) for p in self._planners.values()]
        return max(figures, key=sum) if figures else None

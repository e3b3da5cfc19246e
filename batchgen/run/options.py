"""How to run a manifest, as one frozen object: `RunOptions` (what `run_manifest` takes), the media
limits, and the defaults a person sees in `--help` and on a run's first line.

One object instead of eighteen keyword arguments: the CLI, the tests and library users build it
once, can pass it around and compare it, and a new option is one field with its default here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from batchgen.core.shard import Shard
from batchgen.edges.client import DEFAULT_API_ROOT
from batchgen.edges.storage import Store
from batchgen.emulator import EmulatorConfig
from batchgen.models.registry import schema_for, typical_seconds_of
from batchgen.run.reuse import CatalogOption

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_STATUS_INTERVAL",
    "MediaLimits",
    "RunOptions",
    "expected_seconds",
    "model_seconds",
]

DEFAULT_GRACE: Final = 120.0  # seconds in-flight jobs get to finish after the first Ctrl-C
DEFAULT_STATUS_INTERVAL: Final = 30.0  # seconds between JSON status lines when not on a terminal


@dataclass(frozen=True)
class MediaLimits:
    """What an image download may cost: bytes, seconds (redirects included), and whether
    private addresses are allowed when the API is not on one (see `mediaurl`)."""

    max_bytes: int = 64 * 1024 * 1024
    deadline: float = 300.0
    allow_private: bool = False


@dataclass(frozen=True)
class RunOptions:
    """Everything `run_manifest` can be told besides the manifest (all optional).

    `status_stream`: where progress goes (a live line on a terminal, JSON lines elsewhere); None,
    the library default, sends the JSON status lines to the `batchgen` logger at INFO instead,
    so a program that does not configure logging hears nothing. `quiet`: no progress at all.
    `shard`: run only the jobs whose id hashes to it, with the shard's own ledger (`layout.py`).
    `out` may be an fsspec URL (`s3://bucket/prefix`, with `ledger_dir` and `storage_options`).
    """

    api_key: str | None = field(default=None, repr=False)  # a secret: never in a repr
    out: Path | str | None = None
    model: str | None = None
    base_url: str = DEFAULT_API_ROOT
    overrides: Mapping[str, Any] | None = None
    emulator: bool | EmulatorConfig = False
    retry_failed: bool = False
    handle_signals: bool = False
    grace: float = DEFAULT_GRACE
    expect_seconds: float | None = None
    quiet: bool = False
    status_interval: float = DEFAULT_STATUS_INTERVAL
    status_stream: TextIO | None = None
    shard: Shard | None = None
    ledger_dir: Path | None = None
    storage_options: Mapping[str, Any] | None = None
    media: MediaLimits | None = None
    # Called once with the limits line (`limits.py`) when the manifest has passed its checks,
    # before anything is sent: the CLI prints it as the run's first line.
    on_start: Callable[[str], None] | None = None
    # `watch(root, store, sample)` is called once in the run's loop when it starts (the dashboard).
    watch: Callable[[Path, Store, Callable[[], dict[str, Any]]], None] | None = None
    # `catalog` (default file, a path, or False), `reuse_from`, `reuse`: see `reuse.py`.
    catalog: CatalogOption = None
    reuse_from: Sequence[Path | str] = ()
    reuse: bool = True
    # Where local image inputs are uploaded (edges/uploads.py: upload_root_for); None: default.
    upload_url: str | None = None


def expected_seconds(
    model: str,
    emulator: bool | EmulatorConfig,
    expect_seconds: float | None,
) -> tuple[float, str]:
    """When a job is expected to be done (the first polls), and where that figure comes from."""
    if expect_seconds is not None:
        return expect_seconds, "flag"
    if emulator is not False:
        config = emulator if isinstance(emulator, EmulatorConfig) else EmulatorConfig()
        return config.latency, "default: the emulator's latency"
    known = schema_for(model) is not None
    return typical_seconds_of(model), f"default: {model}'s typical time" if known else "default"


def model_seconds(
    models: Iterable[str], emulator: bool | EmulatorConfig, expect_seconds: float | None
) -> dict[str, float]:
    """Each model's expected seconds, where its poll plan starts (`core.pollplans`): the flag
    for every model, else the emulator's latency for that model (it may scale each model's
    typical time), else the model's table (`UNKNOWN_MODEL_SECONDS` for a pass-through slug)."""
    if expect_seconds is not None:
        return dict.fromkeys(models, expect_seconds)
    if emulator is not False:
        config = emulator if isinstance(emulator, EmulatorConfig) else EmulatorConfig()
        return {model: config.latency_of(model)[0] for model in models}
    return {model: typical_seconds_of(model) for model in models}

"""`batchgen emulator`: serve the built-in emulator of Segmind's API from the command line.

Its thirty-odd scenario flags map one to one onto `EmulatorConfig` and share nothing with the
commands that run or inspect batches, so they live here; `cli.py` registers the command.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import click

from batchgen.cli.options import RPM_HELP
from batchgen.core.wire import REQUEST_RETENTION
from batchgen.emulator import EmulatorConfig, parse_fault, serve
from batchgen.emulator.config import FaultRule, parse_outage
from batchgen.models.registry import typical_seconds_of

__all__ = ["emulator"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, help="Port; 0 lets the OS choose.")
@click.option(
    "--key", "keys", multiple=True, help="Accepted API key (repeatable). [default: emulator-key]"
)
@click.option("--seed", default=0, show_default=True, help="Seed for every random decision.")
@click.option(
    "--model", "models", multiple=True, help="Extra model served with any parameters (repeatable)."
)
@click.option("--retired-model", multiple=True, help="Model answered with 410 (repeatable).")
@click.option("--forbidden-model", multiple=True, help="Model answered with 403 (repeatable).")
@click.option(
    "--accept-invalid", is_flag=True, help="Accept invalid bodies, then FAIL the job (422)."
)
@click.option(
    "--workers", default=8, show_default=True, help="Jobs processed at once; the rest stay QUEUED."
)
@click.option("--latency", default=0.05, show_default=True, help="Mean processing seconds per job.")
@click.option(
    "--latency-jitter", default=0.02, show_default=True, help="Uniform +/- seconds around the mean."
)
@click.option(
    "--realistic",
    is_flag=True,
    help="Each model's page timing (qwen-image 28 +/- 4 s, seedream 32 s, ...) per job.",
)
@click.option(
    "--model-latency-scale",
    type=float,
    default=None,
    help="Each model's page timing times this (e.g. 0.01), jitter as --latency-jitter/--latency.",
)
@click.option("--fail-rate", default=0.0, show_default=True, help="Seeded probability a job FAILS.")
@click.option(
    "--fail-marker", default="[fail]", show_default=True, help="Prompts containing it always FAIL."
)
@click.option(
    "--retention",
    default=REQUEST_RETENTION,
    show_default=True,
    help="Seconds a request record lives.",
)
@click.option(
    "--id-format",
    type=click.Choice(["hex32", "uuid", "sequential"]),
    default="hex32",
    show_default=True,
)
@click.option(
    "--early-result",
    type=click.Choice(["status", "404", "425"]),
    default="status",
    show_default=True,
    help="What GET /v2/requests/{id} answers before completion.",
)
@click.option("--full-size", is_flag=True, help="Native-resolution images instead of 1/8 size.")
@click.option("--credits", default=10_000.0, show_default=True, help="Account balance in USD.")
@click.option(
    "--cost-per-image",
    type=float,
    default=None,
    help="USD billed per image made. [default: the model's price, else 0.12]",
)
@click.option(
    "--credits-status", type=click.Choice(["402", "406"]), default="406", show_default=True
)
@click.option(
    "--rpm",
    type=int,
    default=None,
    metavar="N",
    help=f"{RPM_HELP} The minute lasts --rate-window seconds; counted per API key, strictly "
    "(sliding window). [default: no limit]",
)
@click.option("--rate-window", default=60.0, show_default=True, help="Window of --rpm, in seconds.")
@click.option("--count-polls", is_flag=True, help="Status/result/credits GETs count against --rpm.")
@click.option("--count-uploads", is_flag=True, help="POST /upload-asset counts against --rpm.")
@click.option("--retry-after", is_flag=True, help="Send Retry-After with 429s.")
@click.option("--no-reset-header", is_flag=True, help="Omit x-rate-limit-reset-at-utc from 429s.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    help="ROUTE:KIND=P[xN], e.g. status:503=0.05, upload:short=1x1 (repeatable).",
)
@click.option("--slow-seconds", default=1.0, show_default=True, help="Delay of a 'slow' fault.")
@click.option("--hang-seconds", default=3600.0, show_default=True, help="Delay of a 'hang' fault.")
@click.option(
    "--outage",
    default=None,
    help="START:SECONDS: every API route answers 503 for SECONDS, START s after the first request.",
)
@click.option("--log-requests", is_flag=True, help="Record arrivals (GET /_emulator/requests).")
@click.option(
    "--media-origin", is_flag=True, help="Serve media from a second origin (another port)."
)
@click.option("--media-host", default=None, help="Host of that second origin, e.g. 127.0.0.2.")
@click.option(
    "--hostile-marker", default="[hostile:", show_default=True, help="[hostile:KIND] traps."
)
@click.option("--hostile-bytes", default=80 << 20, show_default=True, help="Oversized trap size.")
@click.option(
    "--listed-models-only",
    is_flag=True,
    help="Serve only qwen-image and --model, not every model with a table (edit models).",
)
@click.option(
    "--lose-upload-answers",
    type=int,
    default=0,
    help="The first N uploads are stored but their answer is lost (connection reset).",
)
@click.option(
    "--short-uploads",
    type=int,
    default=0,
    help="The first N uploads are stored but answered with one URL fewer than files sent.",
)
@click.option(
    "--one-image",
    type=int,
    default=0,
    help="The first N submits return one image however many they ask for (max_images).",
)
def emulator(**opts: Any) -> None:
    """Serve a local emulator of Segmind's API (v1 sync, v2 queue, media, uploads, credits)."""
    try:
        config = _emulator_config(opts)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, announce=lambda line: click.echo(line, nl=True)))


def _emulator_config(opts: dict[str, Any]) -> EmulatorConfig:
    realistic = opts.pop("realistic")
    keys = opts.pop("keys") or ("emulator-key",)
    models = ("qwen-image", *opts.pop("models"))
    if realistic:
        opts["latency"], opts["latency_jitter"] = typical_seconds_of("qwen-image"), 4.0
        if opts.get("model_latency_scale") is None:
            opts["model_latency_scale"] = 1.0
    faults = tuple(parse_fault(text) for text in opts.pop("faults")) + _edit_faults(opts)
    opts["known_models"] = not opts.pop("listed_models_only", False)
    outage = opts.pop("outage", None)
    if outage is not None:
        opts["outage_start"], opts["outage_seconds"] = parse_outage(outage)
    return EmulatorConfig(
        keys=tuple(keys),
        models=models,
        retired_models=tuple(opts.pop("retired_model")),
        forbidden_models=tuple(opts.pop("forbidden_model")),
        credits_status=int(opts.pop("credits_status")),  # type: ignore[arg-type]
        reset_header=not opts.pop("no_reset_header"),
        faults=faults,
        **opts,
    )


def _edit_faults(opts: dict[str, Any]) -> tuple[FaultRule, ...]:
    """The upload and several-images faults of the convenience flags, as fault rules."""
    shorthand = (
        ("lose_upload_answers", "upload", "accepted-reset"),
        ("short_uploads", "upload", "short"),
        ("one_image", "submit", "one-image"),
    )
    rules = []
    for name, route, kind in shorthand:
        count = opts.pop(name, 0) or 0
        if count < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {count}")
        if count:
            rules.append(FaultRule(route, kind, 1.0, count))
    return tuple(rules)

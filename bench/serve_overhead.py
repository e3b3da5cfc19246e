"""What `batchgen run --serve` costs a run: the same run without and with the live dashboard.

    python bench/serve_overhead.py [--jobs 300] [--concurrency 50] [--rounds 3] [--thumbs 8]

Each measurement is a fresh `batchgen emulator` process (workers = C, latency L +/- J, no rpm
limit) and a fresh `batchgen run MANIFEST --quiet` process over N distinct prompts, with
`BATCHGEN_CATALOG=off` so no image is reused. "with" adds `--serve 0 --no-serve-linger` and two
clients attached for the whole run: an active page (GET /, both assets, /api/state, then the
event stream, fetching the thumbnails of the newest items of every event as a browser's gallery
would) and a slow one (opens the event stream with a tiny receive buffer and never reads). The
variants alternate (ABAB...) so a change in the machine's load falls on both.

Measured per run: wall seconds of the `batchgen run` process (spawn to exit) and the run's own
`wall_seconds` from summary.json; CPU = user + sys of that process (getrusage(RUSAGE_CHILDREN)
delta around its wait: the emulator is waited for later, so its CPU is not counted); API calls per
job as the emulator counted them (submit + status + result, media excluded); images completed.
The clients run in this process, on the same cores, as a browser on the same machine would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

KEY = "serve-bench-key"
DASHBOARD = re.compile(r"batchgen dashboard on (http://\S+)")
LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class Seen:
    """What the dashboard clients got: a stream that ended early would show fewer images."""

    events: int = 0
    images: set[str] = field(default_factory=set)
    thumbs: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Row:
    variant: str
    round: int
    wall_s: float
    run_wall_s: float
    cpu_s: float
    calls_per_job: float
    completed: int
    exit_code: int
    seen: Seen | None = None


async def start_emulator(args: argparse.Namespace, seed: int) -> tuple[Any, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "batchgen", "emulator", "--port", "0", "--key", KEY,
        "--seed", str(seed), "--workers", str(args.concurrency),
        "--latency", str(args.latency), "--latency-jitter", str(args.jitter),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    match = LISTENING.search(line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, match[1]


async def active_client(session: aiohttp.ClientSession, url: str, thumbs: int, seen: Seen) -> None:
    """A browser tab: the page, its assets, the state, then the stream until the server ends it."""
    for path in ("", "static/page.css", "static/page.js", "api/state"):
        async with session.get(url + path) as resp:
            await resp.read()
            if resp.status != 200:
                seen.errors.append(f"{path or '/'}: {resp.status}")
    async with session.get(url + "events") as resp:
        data: list[str] = []
        async for raw in resp.content:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("data: "):
                data.append(line[6:])
            elif not line and data:
                payload = json.loads("\n".join(data))
                data = []
                seen.events += 1
                await absorb(session, url, payload, thumbs, seen)


async def absorb(
    session: aiohttp.ClientSession, url: str, payload: dict[str, Any], thumbs: int, seen: Seen
) -> None:
    items = [item for item in payload.get("items", []) if item.get("thumb")]
    seen.images.update(str(item["id"]) for item in items)
    for item in items[-thumbs:] if thumbs else []:  # the newest: the top of the gallery
        async with session.get(url + item["thumb"]) as resp:
            await resp.read()
            seen.thumbs += resp.status == 200


async def slow_client(url: str) -> socket.socket:
    """A browser that opened the stream and stopped reading (a tab in the background, a phone
    that lost the network): a small receive buffer, and nothing ever read."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    request = f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    await asyncio.get_running_loop().sock_sendall(sock, request.encode())
    return sock


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def measure(args: argparse.Namespace, serve: bool, round_no: int, tmp: Path) -> Row:
    variant = "with" if serve else "without"
    folder = tmp / f"{round_no}-{variant}"
    folder.mkdir()
    manifest = folder / "jobs.jsonl"
    manifest.write_text(
        "".join(json.dumps({"prompt": f"serve bench {round_no} {i}"}) + "\n"
                for i in range(args.jobs))
    )  # fmt: skip
    emulator, base = await start_emulator(args, seed=round_no)
    command = [sys.executable, "-m", "batchgen", "run", str(manifest), "--base-url", base,
               "--out", str(folder / "out"), "--concurrency", str(args.concurrency),
               "--rpm", "100000", "--expect-seconds", str(args.latency), "--quiet"]  # fmt: skip
    if serve:
        command += ["--serve", "0", "--no-serve-linger"]
    env = {**os.environ, "SEGMIND_API_KEY": KEY, "BATCHGEN_CATALOG": "off"}
    seen = Seen() if serve else None
    cpu_before = children_cpu()
    started = time.monotonic()
    run = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert run.stderr is not None
    tasks: list[asyncio.Task[Any]] = []
    slow: socket.socket | None = None
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
    try:
        if seen is not None:
            line = (await run.stderr.readline()).decode()
            match = DASHBOARD.search(line)
            if match is None:
                raise RuntimeError(f"no dashboard line on stderr: {line!r}")
            slow = await slow_client(match[1])
            tasks.append(asyncio.create_task(active_client(session, match[1], args.thumbs, seen)))
        stderr = await run.stderr.read()
        exit_code = await run.wait()
        wall = time.monotonic() - started
        cpu = children_cpu() - cpu_before
        for task in tasks:  # the stream ends when the run's server stops; give it a moment
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 5)
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task
        async with session.get(f"{base}/_emulator/stats", params={"detail": "0"}) as resp:
            stats = await resp.json()
    finally:
        await session.close()
        if slow is not None:
            slow.close()
        emulator.terminate()
        await emulator.wait()
    if exit_code != 0:
        sys.stderr.write(stderr.decode(errors="replace"))
    summary = json.loads((folder / "out" / "summary.json").read_text())
    api_calls = stats["requests_total"] - stats["requests"].get("media", 0)
    return Row(variant, round_no, wall, float(summary["wall_seconds"]), cpu,
               api_calls / args.jobs, int(summary["outcome"]["completed"]), exit_code,
               seen)  # fmt: skip


def table(rows: list[Row], jobs: int) -> list[str]:
    lines = ["| round | variant | wall s | run wall s | CPU s | API calls/job | completed | exit "
             "| SSE events | images seen | thumbs |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        sse = (f"{r.seen.events} | {len(r.seen.images)}/{jobs} | {r.seen.thumbs}"
               if r.seen is not None else "- | - | -")  # fmt: skip
        lines.append(f"| {r.round} | {r.variant} | {r.wall_s:.2f} | {r.run_wall_s:.2f} | "
                     f"{r.cpu_s:.2f} | {r.calls_per_job:.3f} | {r.completed} | {r.exit_code} "
                     f"| {sse} |")  # fmt: skip
    lines.append("")
    for label, key in (("wall", "wall_s"), ("run wall", "run_wall_s"), ("CPU", "cpu_s")):
        a = statistics.median(getattr(r, key) for r in rows if r.variant == "without")
        b = statistics.median(getattr(r, key) for r in rows if r.variant == "with")
        lines.append(f"- median {label}: without {a:.2f} s, with {b:.2f} s, "
                     f"ratio with/without {b / a:.3f}")  # fmt: skip
    for row in rows:
        if row.seen is not None and row.seen.errors:
            lines.append(f"- round {row.round} client errors: {row.seen.errors}")
    return lines


async def main(args: argparse.Namespace) -> None:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as name:
        for round_no in range(1, args.rounds + 1):
            for serve in (False, True):
                row = await measure(args, serve, round_no, Path(name))
                rows.append(row)
                print(f"round {round_no} {row.variant}: {row.wall_s:.2f} s, CPU {row.cpu_s:.2f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
    print(f"N={args.jobs}, C={args.concurrency}, L={args.latency}±{args.jitter} s, "
          f"{args.thumbs} thumbnails fetched per event\n")  # fmt: skip
    print("\n".join(table(rows, args.jobs)))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--jitter", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--thumbs", type=int, default=8, help="thumbnails fetched per event")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))

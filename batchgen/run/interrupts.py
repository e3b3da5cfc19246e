"""Ctrl-C and SIGTERM during a run: the first stops submitting and lets the jobs in flight
(already paid for) finish within a grace period; the second, or the grace running out, exits at
once. Either way the ledger is durable and the same command resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any, Final

from batchgen.engine.pipeline import Engine

__all__ = ["EXIT_INTERRUPTED", "INTERRUPTED", "signals"]

EXIT_INTERRUPTED: Final = 130
INTERRUPTED: Final = "interrupted; run the same command to resume"

log = logging.getLogger("batchgen")


@contextlib.asynccontextmanager
async def signals(engine: Engine, enabled: bool, grace: float) -> AsyncIterator[Any]:
    """First SIGINT/SIGTERM: stop submitting, let paid jobs finish for up to `grace` seconds.
    Second (or the grace running out): exit at once. Every ledger append is durable when it
    returns, so an exit at any point leaves a ledger the next run resumes from."""
    seen = [0]
    timers: list[asyncio.TimerHandle] = []
    if not enabled:
        yield lambda: False
        return
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        seen[0] += 1
        if seen[0] == 1:
            # The hint matters now, not in the summary once the run is over.
            log.warning(
                "interrupted: finishing the jobs in flight for up to %g s "
                "(press Ctrl-C again to quit now)",
                grace,
            )
            engine.stop(INTERRUPTED)
            timers.append(loop.call_later(grace, _exit_now))
        else:
            _exit_now()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        yield lambda: seen[0] > 0
    finally:
        for timer in timers:  # the run ended within its grace period: no late exit
            timer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _exit_now() -> None:
    sys.stderr.write("batchgen: stopped at once; run the same command to resume\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)

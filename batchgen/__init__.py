"""batchgen: resumable asyncio batch runner for submit-then-poll image APIs.

The public surface: `run_manifest` (a whole manifest, with rate limit, ledger and resume) and
its `RunOptions`, `Client` (one job at a time, shaped like the official SDK), `load_manifest`,
and the errors. As a library it is quiet: it logs to the `batchgen` logger (a NullHandler is
attached), and configuring logging is the caller's choice.
"""

from __future__ import annotations

import logging

from batchgen.core.errors import (
    ApiError,
    BatchgenError,
    InferenceFailed,
    InferenceTimeout,
    LedgerError,
    ManifestError,
    MediaRefused,
    TransportError,
)
from batchgen.core.version import __version__
from batchgen.manifest.loader import load_manifest
from batchgen.run.runner import MediaLimits, RunOptions, RunResult, run_manifest
from batchgen.sdk import AsyncJob, Client

__all__ = [
    "ApiError",
    "AsyncJob",
    "BatchgenError",
    "Client",
    "InferenceFailed",
    "InferenceTimeout",
    "LedgerError",
    "ManifestError",
    "MediaLimits",
    "MediaRefused",
    "RunOptions",
    "RunResult",
    "TransportError",
    "__version__",
    "load_manifest",
    "run_manifest",
]

logging.getLogger("batchgen").addHandler(logging.NullHandler())

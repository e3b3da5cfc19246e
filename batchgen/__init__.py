"""batchgen: resumable asyncio batch runner for submit-then-poll image APIs.

The public surface: `run_manifest` (a whole manifest, with rate limit, ledger and resume),
`Client` (one job at a time, shaped like the official SDK), `load_manifest`, and the errors.
"""

from __future__ import annotations

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
from batchgen.run.runner import MediaLimits, RunResult, run_manifest
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
    "RunResult",
    "TransportError",
    "__version__",
    "load_manifest",
    "run_manifest",
]

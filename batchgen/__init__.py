"""batchgen: resumable asyncio batch runner for submit-then-poll image APIs."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"

"""A run that was accepted nowhere leaves nothing behind: a refused key (401) on a new folder
should not leave a folder that looks like a run, with a ledger and a lock and no images.
"""

from __future__ import annotations

from typing import Final

from batchgen.core.folder import LEDGER_NAME, LOCK_NAME, METADATA_NAME
from batchgen.run.layout import Layout

__all__ = ["remove_unused"]

_STATE_FILES: Final = frozenset({LEDGER_NAME, METADATA_NAME, LOCK_NAME})


def remove_unused(layout: Layout) -> bool:
    """Remove a folder this run created and used for nothing but its own bookkeeping (the lock
    is held meanwhile, so no other run is in it). Anything else found there keeps it."""
    folder = layout.state_dir
    names = {p.name for p in folder.iterdir()}
    if not names <= _STATE_FILES:
        return False
    for name in [*sorted(names - {LOCK_NAME}), LOCK_NAME]:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        return False
    return True

"""A compact map from 64-bit digests to small integers, for streaming a million jobs.

Two streaming checks need to remember every job seen so far: "is this explicit id a duplicate,
and on which line was the first one?" and "how many identical rows came before this one?"; the
end of a run, each generated id's final state (`finalstate`, keyed by the id's own 64 bits). A
Python `dict` of a million string keys costs well over 100 MB; this open-addressing table keeps
8 bytes of key and 4 bytes of value per slot in two flat arrays (at most half full: ~24 MB
at a million entries).

Keys are digests, so two different inputs can share a key with probability about n²/2⁶⁵
(3·10⁻⁸ for a million entries); callers treat a hit as "seen before" and say so in their docs.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator

__all__ = ["DigestMap", "digest64"]

_EMPTY = 0
_MASK64 = (1 << 64) - 1


def digest64(data: bytes) -> int:
    """A non-zero 64-bit digest of `data` (zero marks an empty slot)."""
    key = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    return key or 1


class DigestMap:
    """Linear-probing map of non-zero 64-bit ints to uint32 (counts, line numbers)."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity * 2:
            size *= 2
        self._keys = array("Q", [0]) * size
        self._values = array("I", [0]) * size
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _slot(self, key: int) -> int:
        keys, mask = self._keys, self._mask
        i = (key ^ (key >> 29)) & mask
        while True:
            k = keys[i]
            if k in (key, _EMPTY):
                return i
            i = (i + 1) & mask

    def get(self, key: int) -> int | None:
        """The value stored under `key`, or None."""
        i = self._slot(key)
        return self._values[i] if self._keys[i] == key else None

    def setdefault(self, key: int, value: int) -> int | None:
        """Store `value` under `key` unless present; return the earlier value, or None if new."""
        i = self._slot(key)
        if self._keys[i] == key:
            return self._values[i]
        self._insert(i, key, value)
        return None

    def set(self, key: int, value: int) -> None:
        """Store `value` under `key`, replacing what was there."""
        i = self._slot(key)
        if self._keys[i] == key:
            self._values[i] = value
        else:
            self._insert(i, key, value)

    def items(self) -> Iterator[tuple[int, int]]:
        """Every (key, value), in no particular order."""
        for k, v in zip(self._keys, self._values, strict=True):
            if k != _EMPTY:
                yield k, v

    def increment(self, key: int) -> int:
        """Add one to the count under `key` and return the count before (0 for a new key)."""
        i = self._slot(key)
        if self._keys[i] == key:
            before = self._values[i]
            self._values[i] = before + 1
            return before
        self._insert(i, key, 1)
        return 0

    def _insert(self, i: int, key: int, value: int) -> None:
        if not 0 < key <= _MASK64:
            raise ValueError("DigestMap keys are non-zero 64-bit integers")
        if (self._count + 1) * 2 > len(self._keys):
            self._grow()
            i = self._slot(key)
        self._keys[i] = key
        self._values[i] = value
        self._count += 1

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        size = len(old_keys) * 2
        self._keys = array("Q", [0]) * size
        self._values = array("I", [0]) * size
        self._mask = size - 1
        for k, v in zip(old_keys, old_values, strict=True):
            if k != _EMPTY:
                i = self._slot(k)
                self._keys[i] = k
                self._values[i] = v

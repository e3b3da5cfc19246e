"""Placing an image that already exists elsewhere into this run's store, checked on the way.

The source must still hash to the sha256 the catalogue recorded; if it does not (gone, edited,
truncated), nothing is placed and the caller generates the image instead. The cheapest copy
the two stores allow is used:

* folder to folder: a hard link (no bytes copied; on another file system, a copy);
* object store to the same object store: a server-side copy (S3 CopyObject keeps the object's
  sha256 user metadata, so resume still trusts it with one HEAD);
* anything else: the bytes are read, checked and written with the target's atomic `put`.

Every path ends with the image complete under its final name, or absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from typing import Final

from batchgen.core.folder import PART_SUFFIX
from batchgen.edges.storage import FsspecStore, LocalStore, Store

__all__ = ["SourceUnavailable", "looks_like_image", "place_image", "read_verified"]

LINK: Final = "link"
COPY: Final = "copy"
SERVER: Final = "server-copy"


async def place_image(
    source: Store, file: str, sha256: str, target: Store, name: str
) -> str | None:
    """Put `source/file` at `target/name` if it still has `sha256`; how it was done, or None
    when the source is gone or changed (SourceUnavailable when it cannot be read now)."""
    if isinstance(source, LocalStore) and isinstance(target, LocalStore):
        linked = await asyncio.to_thread(_link, source, file, sha256, target, name)
        if linked is not False:
            return LINK if linked else None
    if isinstance(source, FsspecStore) and isinstance(target, FsspecStore):
        copied = await asyncio.to_thread(_server_copy, source, file, sha256, target, name)
        if copied is not False:
            return SERVER if copied else None
    data = await asyncio.to_thread(read_verified, source, file, sha256)
    if data is None:
        return None
    await target.put(name, data, sha256)
    return COPY


class SourceUnavailable(Exception):
    """The source could not be read for a reason other than being gone (a network error): the
    row may still be right, so it is kept, and the job is generated this time."""


def read_verified(store: Store, file: str, sha256: str) -> bytes | None:
    """The bytes of `file` if they hash to `sha256`, else None (gone or changed).

    Raises SourceUnavailable when the store cannot answer."""
    try:
        data = store.read(file)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except Exception as exc:  # permissions, a network error, botocore: not proof it is gone
        raise SourceUnavailable(f"{store.url}/{file}: {type(exc).__name__}") from None
    if data is None or not looks_like_image(data) or hashlib.sha256(data).hexdigest() != sha256:
        return None
    return data


def looks_like_image(head: bytes) -> bool:
    """The file starts like a PNG, JPEG, WebP or GIF. A catalogue shared with others (or edited)
    could name any file with its sha256; only images are ever placed in an output."""
    return head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    )


def _link(source: LocalStore, file: str, sha256: str, target: LocalStore, name: str) -> bool | None:
    """Hard-link, then hash the link (the same inode: no window for a change in between).

    True: placed; None: the source is stale; False: links are not possible here (copy instead).
    """
    src, dst = source.path(file), target.path(name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    mark = f"{target.tag}-" if target.tag else ""
    temp = dst.parent / f".{dst.name}.{mark}{secrets.token_hex(4)}{PART_SUFFIX}"
    try:
        os.link(src, temp)
    except FileNotFoundError:
        return None
    except OSError:  # another file system (EXDEV), no links (EPERM), too many links (EMLINK)
        return False
    try:
        if not _hashes_to(temp, sha256):
            return None
        if src.resolve() == dst.resolve():
            return True  # reusing a folder's own image: already in place
        os.replace(temp, dst)
        fd = os.open(dst.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return True
    finally:
        temp.unlink(missing_ok=True)


def _hashes_to(path: os.PathLike[str], sha256: str) -> bool:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            chunk = handle.read(1 << 20)
            if not looks_like_image(chunk):
                return False
            while chunk:
                digest.update(chunk)
                chunk = handle.read(1 << 20)
    except OSError:
        return False
    return digest.hexdigest() == sha256


def _server_copy(
    source: FsspecStore, file: str, sha256: str, target: FsspecStore, name: str
) -> bool | None:
    """A copy inside one object store. True: placed; None: stale; False: not possible here."""
    if type(source.fs) is not type(target.fs) or not source._s3:
        return False  # different stores, or no sha256 metadata to copy: bytes instead
    if not source.intact(file, sha256):
        return None
    try:
        source.fs.copy(source.full(file), target.full(name))
    except (NotImplementedError, TypeError):
        return False
    except Exception:  # botocore: another account, another endpoint; try the bytes
        return False
    with contextlib.suppress(Exception):
        if target.intact(name, sha256):
            return True
    return False

"""Where images (and the derived dataset files) go: a local folder, or an fsspec URL (S3, ...).

One seam so the writer, resume and merge never ask "is this S3?": both stores keep the same
contract, which is the crash-safety contract of the whole tool.

* `put(name, data, sha256)` is all-or-nothing: when it returns, the object is complete under its
  final name; before, it is absent (or the old one). Locally that is temp file + fsync + rename
  (`sinks.store_atomic`). On S3 a PUT is atomic per object (and a multipart upload is invisible
  until completed), so the bytes are uploaded straight from memory: no local copy. The ledger
  records `completed` only after `put` returns ("upload, then record").
* `intact(name, sha256)` is what resume trusts. Locally the file is hashed. On S3 the sha256 is
  stored with the object as user metadata (`x-amz-meta-sha256`) at upload, and `intact` compares
  it with one HEAD request: hashing a terabyte again on every resume costs more than it protects
  (S3 checks transfers itself), and an object overwritten by anything else lacks the field, so it
  is downloaded again. Other fsspec stores are read back and hashed.

fsspec and s3fs are the optional `batchgen[s3]` extra: batchgen runs without them, and names the
extra when an URL needs it. Credentials and the endpoint come from the standard AWS variables
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, ...) or storage options; they
are handed to fsspec and never logged, recorded or shown (`FsspecStore` prints as its URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from batchgen.core.errors import BatchgenError
from batchgen.core.folder import PART_SUFFIX
from batchgen.edges.sinks import file_intact, remove_partials, store_atomic

__all__ = [
    "FsspecStore",
    "LocalStore",
    "StorageError",
    "Store",
    "is_remote",
    "open_store",
    "parse_storage_options",
]

SHA_KEY = "sha256"  # the object's user metadata field (x-amz-meta-sha256)


class StorageError(BatchgenError, ValueError):
    """An output location that cannot be used as given (exit code 3)."""


class Store(Protocol):
    """An output location: images by name, plus the small dataset files merge reads."""

    url: str  # shown to people: a path or an URL, never credentials
    remote: bool

    async def put(self, name: str, data: bytes, sha256: str | None = None) -> None: ...
    def intact(self, name: str, sha256: str | None) -> bool: ...
    def read(self, name: str) -> bytes | None: ...
    def open_read(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def write(self, name: str, chunks: Iterable[bytes]) -> None: ...
    def upload(self, name: str, path: Path) -> None: ...
    def delete(self, name: str) -> None: ...
    def listdir(self, name: str) -> list[str]: ...
    def remove_partials(self, tag: str = "") -> int: ...


def is_remote(out: str | Path) -> bool:
    """An URL with a scheme other than file:// (a Windows drive letter is not a scheme)."""
    text = str(out)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme != "file"


def parse_storage_options(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`key=value` strings -> fsspec storage options; `endpoint_url` goes where s3fs wants it."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise StorageError(f"--storage-option {key.strip() or pair!r}: expected KEY=VALUE")
        key = key.strip()
        if key == "endpoint_url":
            options.setdefault("client_kwargs", {})["endpoint_url"] = value
        elif value.lower() in ("true", "false"):
            options[key] = value.lower() == "true"
        else:
            options[key] = value
    return options


def open_store(
    out: str | Path, options: Mapping[str, Any] | None = None, *, tag: str = ""
) -> Store:
    """The store for `--out`: a LocalStore for a path, an FsspecStore for an URL.

    `tag` names this process's temp files, so one shard cleaning up after a crash never removes
    another shard's upload in progress in the shared folder.
    """
    if not is_remote(out):
        text = str(out).removeprefix("file://")
        return LocalStore(Path(text), tag=tag)
    return FsspecStore(str(out), dict(options or {}))


class LocalStore:
    """A folder: today's behaviour (atomic files, hashed on resume), byte for byte."""

    remote = False

    def __init__(self, root: Path, tag: str = "") -> None:
        self.root = root
        self.url = str(root)
        self.tag = tag

    def path(self, name: str) -> Path:
        return self.root.joinpath(*PurePosixPath(name).parts)

    async def put(self, name: str, data: bytes, sha256: str | None = None) -> None:
        await store_atomic(self.path(name), data, tag=self.tag)

    def intact(self, name: str, sha256: str | None) -> bool:
        return file_intact(self.path(name), sha256)

    def read(self, name: str) -> bytes | None:
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            return None

    def open_read(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self.path(name).open("rb")

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        """Replace `name` with the chunks, streamed (temp file + rename: never half a file)."""
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.parent / f".{path.name}.write{PART_SUFFIX}"
        with temp.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        temp.replace(path)

    def upload(self, name: str, path: Path) -> None:
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f".{target.name}.upload{PART_SUFFIX}"
        shutil.copyfile(path, temp)
        temp.replace(target)

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def listdir(self, name: str) -> list[str]:
        folder = self.path(name)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def remove_partials(self, tag: str = "") -> int:
        return remove_partials(self.root, tag or self.tag)


class FsspecStore:
    """Any fsspec URL (`s3://bucket/prefix`, `gcs://...`, `memory://...`)."""

    remote = True

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        try:
            # The optional extra, imported only when an URL asks for it.
            from fsspec.core import url_to_fs
        except ImportError:
            raise StorageError(
                f"--out {url}: object storage needs the s3 extra: pip install 'batchgen[s3]'"
            ) from None
        try:
            # A fresh instance: fsspec's cache keys on the options, not on the AWS_* variables
            # that may have changed since (another endpoint, other credentials).
            self.fs, root = url_to_fs(url, **{"skip_instance_cache": True, **options})
        except ImportError as exc:  # fsspec knows the scheme, its backend (s3fs, gcsfs) is missing
            raise StorageError(
                f"--out {url}: {exc.msg if hasattr(exc, 'msg') else exc} "
                "(for s3:// URLs: pip install 'batchgen[s3]')"
            ) from None
        except (ValueError, TypeError) as exc:
            raise StorageError(
                f"--out {url}: {type(exc).__name__} in the storage options"
            ) from None
        self.root = str(root).rstrip("/")
        self.url = url.rstrip("/")
        protocol = self.fs.protocol
        self._s3 = "s3" in (protocol if isinstance(protocol, tuple | list) else (protocol,))

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"  # never the options: they may hold credentials

    def full(self, name: str) -> str:
        return f"{self.root}/{PurePosixPath(name).as_posix()}" if name else self.root

    async def put(self, name: str, data: bytes, sha256: str | None = None) -> None:
        await asyncio.to_thread(self._put, name, data, sha256)

    def _put(self, name: str, data: bytes, sha256: str | None) -> None:
        extra: dict[str, Any] = {}
        if self._s3 and sha256 is not None:
            extra["Metadata"] = {SHA_KEY: sha256}
        try:
            self.fs.pipe_file(self.full(name), data, **extra)
        except OSError:
            raise
        except Exception as exc:  # botocore and friends: the engine stops on OSError
            raise OSError(f"cannot store {name} in {self.url}: {type(exc).__name__}") from None

    def intact(self, name: str, sha256: str | None) -> bool:
        if sha256 is None:
            return False
        path = self.full(name)
        try:
            if self._s3:
                self.fs.invalidate_cache(path)
                return bool(self.fs.metadata(path).get(SHA_KEY) == sha256)
            digest = hashlib.sha256()
            with self.fs.open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            return digest.hexdigest() == sha256
        except (OSError, KeyError):
            return False

    def read(self, name: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(self.full(name)))
        except FileNotFoundError:
            return None

    def open_read(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        handle: Any = self.fs.open(self.full(name), "rb")
        return contextlib.closing(handle) if not hasattr(handle, "__enter__") else handle

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        """Streamed; the object appears only when complete (one PUT, or a multipart upload)."""
        with self.fs.open(self.full(name), "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)

    def upload(self, name: str, path: Path) -> None:
        self.fs.put_file(str(path), self.full(name))  # streamed: a ledger can be large

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.full(name))

    def listdir(self, name: str) -> list[str]:
        path = self.full(name)
        self.fs.invalidate_cache(path)
        try:
            entries = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        return sorted(PurePosixPath(str(entry)).name for entry in entries)

    def remove_partials(self, tag: str = "") -> int:
        return 0  # a PUT leaves nothing half-written; see the module docstring


def iter_lines(store: Store, name: str) -> Iterator[bytes]:
    """The lines of a stored file, streamed (a shard's ledger can be hundreds of MB)."""
    with store.open_read(name) as handle:
        yield from handle

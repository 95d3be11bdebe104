"""Blob storage of artifacts: content-addressed by SHA-256, streamed in chunks.

Two stores, one per kind of backend:

- :class:`FileBlobs` (LMDB): one file per blob beside the store, ``blobs/sha256/ab/<sha256>``
  (the path comes from the digest only, never from a name). A put streams the data into a
  temporary file ``blobs/tmp/<pid>-<uuid>.part``, fsyncs it, hard-links it to its content
  path and fsyncs the directory - all *before* the event naming it commits; inside the write
  transaction the content path is checked again (and re-linked from the temporary file if a
  collection removed it meanwhile), and the temporary file is removed after the commit.
  Collection removes a blob only inside a write transaction (the writer lock of every
  process) and only when no record refers to it, so a SIGKILL at any point leaves neither a
  record without its blob nor garbage that the next sweep (on open, after a delete) misses:
  an unreferenced blob, or the temporary file of a process that is gone.
- :class:`KVBlobs` (memory, PostgreSQL): the blob in the ``blobs`` table, in the same
  transaction as its event: ``sha256`` (32 bytes) → size (``>Q``), and ``sha256 + >Q i`` →
  chunk ``i`` (1 MiB each). A delete removes the chunks in the delete's own transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from eventlog.errors import ArtifactTooLargeError, CopyMismatchError, CorruptRecordError
from eventlog.storage.hashing import StreamHash
from eventlog.storage.keys import pack_u64
from eventlog.storage.kv import KVBackend, KVTxn

__all__ = [
    "CHUNK",
    "BlobSource",
    "FileBlobs",
    "KVBlobs",
    "Readable",
    "Staged",
    "VerifyingReader",
    "blob_chunks",
    "blob_sink",
    "check_content",
    "chunks_of",
    "copy_blobs",
    "file_blobs_of",
    "open_binary",
    "referenced_shas",
]

#: Bytes per chunk read from a source, written to a file or stored as one KV value.
CHUNK = 1 << 20


class Readable(Protocol):
    """A binary file object: anything with ``read(n)`` returning bytes."""

    def read(self, size: int, /) -> bytes | None:
        """Up to ``size`` bytes; ``b""`` at the end."""
        ...


#: What ``put`` accepts: bytes, or a binary file object (anything with ``read(n)``).
BlobSource = bytes | bytearray | memoryview | Readable


#: A piece of content: bytes, or a view into the caller's bytes (no copy).
Chunk = bytes | memoryview


def chunks_of(data: BlobSource, name: str, limit: int) -> Iterator[Chunk]:
    """The chunks of ``data``; :class:`ArtifactTooLargeError` as soon as it passes ``limit``."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data).cast("B")
        if view.nbytes > limit:
            raise ArtifactTooLargeError(name, view.nbytes, limit)
        for start in range(0, view.nbytes, CHUNK):
            yield view[start : start + CHUNK]  # a view: the content is not copied
        return
    read = getattr(data, "read", None)
    if not callable(read):
        raise TypeError(
            f"artifact {name!r}: data must be bytes or a binary file object, "
            f"got {type(data).__name__}"
        )
    total = 0
    while True:
        chunk = read(CHUNK)
        if not isinstance(chunk, bytes | bytearray):
            raise TypeError(
                f"artifact {name!r}: data.read() returned {type(chunk).__name__}, not bytes: "
                "open the file in binary mode ('rb')"
            )
        if not chunk:
            return
        total += len(chunk)
        if total > limit:
            raise ArtifactTooLargeError(name, total, limit)
        yield bytes(chunk)


@dataclass
class Staged:
    """A blob written (files) or spooled (KV) and hashed, before its event commits."""

    sha256: str
    size: int
    temp: Path | None = None  # FileBlobs: the temporary hard link, removed after the commit
    spool: IO[bytes] | None = None  # KVBlobs: the spooled content, written in the transaction

    def discard(self) -> None:
        """Remove the temporary file or spool (after the commit, or after a failure)."""
        if self.temp is not None:
            with contextlib.suppress(FileNotFoundError):
                self.temp.unlink()
            self.temp = None
        if self.spool is not None:
            self.spool.close()
            self.spool = None


class VerifyingReader(io.RawIOBase):
    """A binary file object over a blob's chunks that checks its SHA-256 at the end.

    Reading past the last byte of content that does not hash to the record raises
    :class:`CorruptRecordError` naming the artifact (``what``), as does a short blob.
    """

    def __init__(self, chunks: Iterator[bytes], sha256: str, size: int, what: str) -> None:
        super().__init__()
        self._chunks = chunks
        self._hash = hashlib.sha256()
        self._buffer = b""
        self._seen = 0
        self._sha = sha256
        self._size = size
        self._what = what
        self._done = False

    def readable(self) -> bool:
        """Always True."""
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``b`` from the blob; the digest is checked when the content ends."""
        while not self._buffer and not self._done:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._finish()
                break
            self._hash.update(chunk)
            self._seen += len(chunk)
            self._buffer = chunk
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def _finish(self) -> None:
        self._done = True
        check_content(self._what, self._seen, self._hash.hexdigest(), self._size, self._sha)


def check_content(what: str, size: int, sha256: str, want_size: int, want_sha: str) -> None:
    """``CorruptRecordError`` naming ``what`` unless the content read is the one recorded."""
    if size != want_size or sha256 != want_sha:
        raise CorruptRecordError(
            f"{what}: its content does not match its record (size {size}, expected "
            f"{want_size}; sha256 {sha256[:16]}..., expected {want_sha[:16]}...): the blob is "
            "damaged; restore it from a backup or delete the artifact"
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FileBlobs:
    """Blobs as files in ``root`` (``<store>/blobs``), fsynced before their events commit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.content = root / "sha256"
        self.tmp = root / "tmp"

    def path_of(self, sha256: str) -> Path:
        """The content path of a blob (from its hex digest only)."""
        return self.content / sha256[:2] / sha256

    def _mkdirs(self, path: Path) -> None:
        if not path.is_dir():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            _fsync_dir(path.parent)

    def stage(self, chunks: Iterable[Chunk]) -> Staged:
        """Write ``chunks`` to a temporary file, fsync it, link it to its content path."""
        self._mkdirs(self.tmp)
        temp = self.tmp / f"{os.getpid()}-{uuid.uuid4().hex}.part"
        digest = StreamHash()  # large content: hashed while it is written and synced
        size = 0
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for chunk in chunks:
                digest.update(chunk)  # the bytes hashed are the bytes written (one view)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.close(fd)
            fd = -1
            staged = Staged(digest.hexdigest(), size, temp=temp)
            self.publish(staged)
        except BaseException:
            digest.close()
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        return staged

    def publish(self, staged: Staged) -> None:
        """Make the content path exist (a hard link of the staged file) and sync its directory.

        Called before the write transaction and again inside it (a collection may have removed
        an unreferenced blob of the same content in between).
        """
        final = self.path_of(staged.sha256)
        if final.exists():
            return
        if staged.temp is None:
            raise RuntimeError("publish needs a staged temporary file")
        self._mkdirs(final.parent)
        with contextlib.suppress(FileExistsError):
            os.link(staged.temp, final)
        _fsync_dir(final.parent)

    def exists(self, sha256: str) -> bool:
        """Whether the blob's file exists."""
        return self.path_of(sha256).exists()

    def size_of(self, sha256: str) -> int | None:
        """The blob file's size (None: missing)."""
        try:
            return self.path_of(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def chunks(self, sha256: str) -> Iterator[bytes]:
        """The blob's content in chunks (``FileNotFoundError`` when it is missing)."""
        handle = self.path_of(sha256).open("rb")

        def gen() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        return gen()

    def remove(self, sha256: str) -> None:
        """Remove the blob (call it inside a write transaction, when nothing refers to it)."""
        path = self.path_of(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def shas(self) -> Iterator[str]:
        """The digests of every blob file."""
        if not self.content.is_dir():
            return
        for shard in sorted(self.content.iterdir()):
            for entry in sorted(shard.iterdir()):
                yield entry.name

    def sweep(self, referenced: Callable[[str], bool]) -> int:
        """Remove every blob nothing refers to and dead processes' temporary files.

        Call it inside a write transaction (``referenced`` reads the index in it).
        """
        removed = 0
        for sha in list(self.shas()):
            if not referenced(sha):
                self.remove(sha)
                removed += 1
        if self.tmp.is_dir():
            for entry in self.tmp.iterdir():
                pid, _, _ = entry.name.partition("-")
                if not (pid.isdigit() and _pid_alive(int(pid))):
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()
                    removed += 1
        return removed


class KVBlobs:
    """Blobs in the ``blobs`` table, written in the transaction of the event naming them."""

    #: content smaller than this is kept in memory until the transaction, larger is spooled
    SPOOL = 8 << 20

    def stage(self, chunks: Iterable[Chunk]) -> Staged:
        """Hash ``chunks`` and keep them (in memory up to 8 MiB, else in a temporary file)."""
        digest = hashlib.sha256()
        size = 0
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=self.SPOOL)  # noqa: SIM115
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
        except BaseException:
            spool.close()
            raise
        return Staged(digest.hexdigest(), size, spool=spool)

    @classmethod
    def write(cls, txn: KVTxn, staged: Staged) -> None:
        """Store the staged blob in ``txn`` unless the same content is already there."""
        spool = staged.spool
        if spool is None:
            raise RuntimeError("write needs a staged spool")
        spool.seek(0)
        cls.write_chunks(txn, staged.sha256, iter(partial(spool.read, CHUNK), b""))

    @staticmethod
    def write_chunks(txn: KVTxn, sha256: str, chunks: Iterable[bytes]) -> None:
        """Store a blob's chunks (of :data:`CHUNK` bytes, the last one shorter) and its size."""
        key = bytes.fromhex(sha256)
        if txn.get("blobs", key) is not None:
            return  # deduplicated
        send_now = getattr(txn, "send_now", None)
        size = 0
        for i, chunk in enumerate(chunks):
            txn.put("blobs", key + pack_u64(i), chunk)
            size += len(chunk)
            if send_now is not None and i % 16 == 15:
                send_now("blobs")  # PostgreSQL: do not buffer a whole large blob
        txn.put("blobs", key, pack_u64(size))

    @staticmethod
    def size_of(txn: KVTxn, sha256: str) -> int | None:
        """The stored blob's size (None: missing)."""
        raw = txn.get("blobs", bytes.fromhex(sha256))
        return None if raw is None else int.from_bytes(raw, "big")

    @staticmethod
    def chunk(txn: KVTxn, sha256: str, i: int) -> bytes | None:
        """Chunk ``i`` of a blob (None: missing)."""
        return txn.get("blobs", bytes.fromhex(sha256) + pack_u64(i))

    @staticmethod
    def remove(txn: KVTxn, sha256: str) -> None:
        """Delete the blob's header and chunks (inside the delete's transaction)."""
        key = bytes.fromhex(sha256)
        raw = txn.get("blobs", key)
        if raw is None:
            return
        size = int.from_bytes(raw, "big")
        for i in range((size + CHUNK - 1) // CHUNK):
            txn.delete("blobs", key + pack_u64(i))
        txn.delete("blobs", key)

    @staticmethod
    def shas(txn: KVTxn) -> Iterator[str]:
        """The digests of every stored blob (the 32-byte header keys)."""
        for key, _ in txn.scan("blobs", b""):
            if len(key) == 32:
                yield key.hex()


def file_blobs_of(path: str | None) -> FileBlobs | None:
    """The file blob store of an LMDB store directory (None: memory or PostgreSQL)."""
    if path is None or not Path(path).is_dir():
        return None
    return FileBlobs(Path(path) / "blobs")


def rechunk(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` regrouped into :data:`CHUNK`-byte pieces (the last one shorter)."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= CHUNK:
            yield buffer[:CHUNK]
            buffer = buffer[CHUNK:]
    if buffer:
        yield buffer


def blob_sink(files: FileBlobs | None) -> Callable[[KVTxn, str, list[bytes]], None]:
    """Where an import writes a blob: a published file (LMDB) or the ``blobs`` table."""

    def sink(txn: KVTxn, sha256: str, chunks: list[bytes]) -> None:
        if files is None:
            KVBlobs.write_chunks(txn, sha256, rechunk(chunks))
        elif not files.exists(sha256):
            files.stage(chunks).discard()  # published before the import commits

    return sink


def blob_chunks(
    read: Callable[[Callable[[KVTxn], bytes | None]], bytes | None],
    files: FileBlobs | None,
    sha256: str,
    size: int,
) -> Iterator[bytes]:
    """A blob's chunks: from its file, or from the ``blobs`` table (a short read per chunk).

    ``FileNotFoundError`` when its file is missing; a missing chunk ends the content early.
    """
    if files is not None:
        return files.chunks(sha256)

    def gen() -> Iterator[bytes]:
        for i in range((size + CHUNK - 1) // CHUNK):
            chunk = read(partial(_chunk_at, sha256, i))
            if chunk is None:
                return
            yield chunk

    return gen()


def _chunk_at(sha256: str, i: int, txn: KVTxn) -> bytes | None:
    return KVBlobs.chunk(txn, sha256, i)


#: Where the artifact index keeps the blobs' references: projections key ``artifacts`` +
#: ``00`` + ``h`` + sha256 (32 bytes) + artifact id (see ``projections/artifacts.py``).
_REFS = b"artifacts\x00h"


def referenced_shas(txn: KVTxn) -> list[str]:
    """The digests of every blob an artifact record refers to."""
    out: dict[str, None] = {}
    for key, _ in txn.scan("projections", _REFS, _REFS[:-1] + b"i"):
        out[key[len(_REFS) : len(_REFS) + 32].hex()] = None
    return list(out)


def copy_blobs(src: KVBackend, dst: KVBackend) -> int:
    """Copy every referenced blob of ``src`` into ``dst`` (files or table, either way).

    Each blob is hashed as it is copied; a blob that does not match its digest, or is missing,
    is a :class:`CopyMismatchError`. Returns how many blobs were copied.
    """
    src_files, dst_files = file_blobs_of(src.path), file_blobs_of(dst.path)
    shas = src.read(referenced_shas)
    for sha in shas:
        size = src.read(partial(_size_in, sha)) if src_files is None else src_files.size_of(sha)
        if size is None:
            raise CopyMismatchError(f"the source's blob {sha} is missing; run verify on it")
        chunks = blob_chunks(src.read, src_files, sha, size)
        if dst_files is not None:
            staged = dst_files.stage(chunks)
            staged.discard()
            got = staged.sha256
        else:
            digest = hashlib.sha256()

            def hashed(chunks: Iterator[bytes] = chunks, digest: Any = digest) -> Iterator[bytes]:
                for chunk in chunks:
                    digest.update(chunk)
                    yield chunk

            dst.write(partial(_write_in, sha, hashed()))
            got = digest.hexdigest()
        if got != sha:
            raise CopyMismatchError(
                f"the source's blob {sha} reads as {got}: it is damaged; run verify on it"
            )
    return len(shas)


def _size_in(sha: str, txn: KVTxn) -> int | None:
    return KVBlobs.size_of(txn, sha)


def _write_in(sha: str, chunks: Iterable[bytes], txn: KVTxn) -> None:
    KVBlobs.write_chunks(txn, sha, chunks)


def open_binary(reader: VerifyingReader) -> BinaryIO:
    """A buffered binary file object over ``reader``."""
    return io.BufferedReader(reader, CHUNK)

"""SHA-256 of streamed content, computed beside the I/O for large content.

Hashing is sequential, but it need not wait for the writes: past the first 4 MiB,
:class:`StreamHash` feeds chunks to one worker thread in order (hashlib releases the GIL for
large buffers), so a put's writes and fsync run while the digest is being computed, and the
put costs about the longer of the two instead of their sum. Small content is hashed inline
(no thread).

>>> h = StreamHash()
>>> for chunk in (b"hello ", b"world"):
...     h.update(chunk)
>>> h.hexdigest()[:16]
'b94d27b9934d3e08'
"""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["StreamHash"]


class StreamHash:
    """SHA-256 of chunks fed in order; large content is hashed in a worker thread."""

    #: content up to this size is hashed inline
    INLINE = 4 << 20
    #: chunks queued for the worker at most (each stays referenced until hashed)
    AHEAD = 4

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._fed = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()

    def update(self, chunk: bytes | memoryview) -> None:
        """Add ``chunk`` (it must not change until :meth:`hexdigest` returns)."""
        self._fed += len(chunk)
        if self._pool is None and self._fed <= self.INLINE:
            self._digest.update(chunk)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="eventlog-sha256")
        self._pending.append(self._pool.submit(self._digest.update, chunk))
        while len(self._pending) > self.AHEAD:
            self._pending.popleft().result()

    def hexdigest(self) -> str:
        """The digest of every chunk fed (waits for the worker)."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self.close()
        return self._digest.hexdigest()

    def close(self) -> None:
        """Stop the worker (idempotent; after an error, the digest is not needed)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._pending.clear()

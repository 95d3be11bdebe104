"""What a PostgreSQL backend knows of the server's committed state, kept between transactions.

:class:`Cache` holds values read or written, and :class:`Tails` the ``last_key`` answers of one
table (empty gaps between known keys). They are valid while no other writer has committed
(the writer token, checked by :class:`eventlog.storage.postgres.backend.PostgresBackend`);
:class:`eventlog.storage.postgres.txn.PgTxn` reads through them and updates them.
"""

from __future__ import annotations

import bisect

__all__ = ["Cache", "Tails"]

_TAILS_MAX = 16_384  # known gaps per table before it is forgotten (~3 MB at most)


class Tails:
    """What is known of one table's keys, for ``last_key``: empty gaps between known keys.

    A gap ``(lo, hi)`` says: ``lo`` is a key (None: no key at all below ``hi``) and no key lies
    strictly between ``lo`` and ``hi`` (None: above ``lo``, i.e. ``lo`` is the greatest key,
    the tail). The largest key below ``b`` is then ``lo`` for any ``lo < b <= hi``. Gaps never
    overlap (they are intervals of the same key set), so a question or a put is one bisection;
    a put splits the gap it lands in. A new stream's head falls in the tail's gap, a stream that
    another put went past keeps its own gap: neither needs the server.
    """

    __slots__ = ("his", "known", "los", "none_hi", "tail")

    def __init__(self) -> None:
        self.los: list[bytes] = []  # sorted
        self.his: dict[bytes, bytes | None] = {}
        self.none_hi: bytes | _Unknown | None = _UNKNOWN  # the gap below the smallest key
        self.known = False  # the tail's gap is known
        self.tail: bytes | None = None

    def answer(self, below: bytes | None) -> tuple[bool, bytes | None]:
        if below is None:
            return self.known, self.tail
        los = self.los
        i = bisect.bisect_left(los, below) - 1
        if i >= 0:
            hi = self.his[los[i]]
            return (True, los[i]) if hi is None or below <= hi else (False, None)
        none_hi = self.none_hi
        if not isinstance(none_hi, _Unknown) and (none_hi is None or below <= none_hi):
            return True, None
        return False, None

    def learn(self, below: bytes | None, key: bytes | None) -> None:
        """The server (and the buffered puts) said: the last key below ``below`` is ``key``."""
        if key is None:
            old = self.none_hi
            if isinstance(old, _Unknown) or (old is not None and (below is None or below > old)):
                self.none_hi = below
            if below is None:
                self.known, self.tail = True, None
            return
        if key not in self.his:
            if len(self.los) >= _TAILS_MAX:
                self.__init__()  # type: ignore[misc]  # start again: a bounded memory
            bisect.insort(self.los, key)
            self.his[key] = below
        else:
            old_hi = self.his[key]
            if old_hi is not None and (below is None or below > old_hi):
                self.his[key] = below
        if below is None:
            self.known, self.tail = True, key

    def put(self, key: bytes) -> None:
        """``key`` now exists: split the gap it fell into."""
        los = self.los
        i = bisect.bisect_left(los, key) - 1
        if i >= 0:
            lo = los[i]
            hi = self.his[lo]
            if hi is None or key < hi:
                self.his[lo] = key
                self.learn(hi, key)
            return
        none_hi = self.none_hi
        if not isinstance(none_hi, _Unknown) and (none_hi is None or key < none_hi):
            self.none_hi = key
            self.learn(none_hi, key)

    def delete(self, key: bytes) -> None:
        """``key`` no longer exists: join the gaps on either side of it (or forget the one above).

        A gap that merely ends at ``key`` stays true: no key appeared inside it.
        """
        his = self.his
        if key not in his:
            return
        hi = his.pop(key)
        los = self.los
        i = bisect.bisect_left(los, key)
        del los[i]
        if i > 0 and his[los[i - 1]] == key:  # the gap below ends at key: join the two
            his[los[i - 1]] = hi
            if hi is None:
                self.known, self.tail = True, los[i - 1]
        elif i == 0 and self.none_hi == key:  # no key below key: now none below hi
            self.none_hi = hi
            if hi is None:
                self.known, self.tail = True, None
        elif self.tail == key:
            self.known, self.tail = False, None


class _Unknown:
    """Marks a gap bound that is not known."""


_UNKNOWN = _Unknown()


class Cache:
    """Values and ``last_key`` answers known to be the server's committed state."""

    __slots__ = ("tails", "values")

    def __init__(self) -> None:
        self.values: dict[tuple[str, bytes], bytes | None] = {}
        self.tails: dict[str, Tails] = {}

    def clear(self) -> None:
        self.values.clear()
        self.tails.clear()

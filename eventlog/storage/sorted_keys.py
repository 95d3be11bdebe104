"""A sorted set of byte keys whose inserts stay cheap at millions of keys (the memory backend's).

One flat sorted list makes every insert move every key after it (``bisect.insort``): at a
million keys that is ~1 ms per insert, so the in-memory store slowed down as it grew. Here the
keys live in chunks of at most ``2 * LOAD`` sorted keys, with each chunk's greatest key in a
separate list: an insert bisects the maxima, then inserts into one chunk (a short move), and a
chunk that grows too long is split in two. Reads walk the chunks in order.

Even that insert touches ~20 keys at random places in memory, which at a million keys are
cache misses. So a key greater than every key is appended at once (tables whose keys grow),
and any other key waits in a set until the next ordered read: then a few waiting keys are
inserted one by one, and many (more than 1/64 of the keys) are merged by one sort of the
whole list (timsort merges two sorted runs in linear time, in C). A table written many times
between two ordered reads - the in-memory store's views while runs are created - pays no
per-key ordering at all.

>>> keys = SortedKeys()
>>> for k in (b"c", b"a", b"b"):
...     keys.add(k)
>>> keys.range(b"a", b"c"), keys.last_below(b"b"), len(keys)
([b'a', b'b'], b'a', 3)
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

__all__ = ["SortedKeys"]


class SortedKeys:
    """Sorted distinct ``bytes`` keys: add, remove, ranges and the last key below a bound."""

    __slots__ = ("_lists", "_maxes", "_sorted", "_waiting")

    #: a chunk is split when it holds more than twice this many keys
    LOAD = 256

    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        """Start with ``keys`` (sorted and distinct)."""
        load = self.LOAD
        self._lists: list[list[bytes]] = [
            list(keys[i : i + load]) for i in range(0, len(keys), load)
        ]
        self._maxes: list[bytes] = [chunk[-1] for chunk in self._lists]
        self._sorted = len(keys)  # keys in the chunks
        self._waiting: set[bytes] = set()  # keys added, not yet in the chunks

    def __len__(self) -> int:
        return self._sorted + len(self._waiting)

    def copy(self) -> SortedKeys:
        """An independent copy."""
        return type(self)(self.range(b""))  # every key is 1+ bytes, so all of them

    def add(self, key: bytes) -> None:
        """Insert ``key`` (the caller knows it is absent)."""
        maxes = self._maxes
        if maxes and key > maxes[-1]:
            chunk = self._lists[-1]  # beyond every key: the common case of growing keys
            chunk.append(key)
            maxes[-1] = key
            self._sorted += 1
            if len(chunk) > 2 * self.LOAD:
                self._split(len(maxes) - 1)
        else:
            self._waiting.add(key)

    def _settle(self) -> None:
        """Put the waiting keys into the chunks (before an ordered read or a removal)."""
        waiting = self._waiting
        if not waiting:
            return
        self._waiting = set()
        if len(waiting) * 64 > self._sorted:  # many: one merge of the whole list
            flat = [key for chunk in self._lists for key in chunk]
            flat += waiting
            flat.sort()
            load = self.LOAD
            self._lists = [flat[i : i + load] for i in range(0, len(flat), load)]
            self._maxes = [chunk[-1] for chunk in self._lists]
            self._sorted = len(flat)
            return
        for key in sorted(waiting):
            self._insert(key)

    def _insert(self, key: bytes) -> None:
        lists, maxes = self._lists, self._maxes
        self._sorted += 1
        if not maxes:
            lists.append([key])
            maxes.append(key)
            return
        if key > maxes[-1]:
            i = len(maxes) - 1
            chunk = lists[i]
            chunk.append(key)
            maxes[i] = key
        else:
            i = bisect_left(maxes, key)
            chunk = lists[i]
            insort(chunk, key)
        if len(chunk) > 2 * self.LOAD:
            self._split(i)

    def _split(self, i: int) -> None:
        lists, maxes = self._lists, self._maxes
        chunk = lists[i]
        if len(chunk) > 2 * self.LOAD:
            tail = chunk[self.LOAD :]
            del chunk[self.LOAD :]
            lists.insert(i + 1, tail)
            maxes[i] = chunk[-1]
            maxes.insert(i + 1, tail[-1])

    def remove(self, key: bytes) -> None:
        """Remove ``key`` (the caller knows it is present)."""
        if key in self._waiting:
            self._waiting.discard(key)
            return
        lists, maxes = self._lists, self._maxes
        i = bisect_left(maxes, key)
        chunk = lists[i]
        del chunk[bisect_left(chunk, key)]
        self._sorted -= 1
        if chunk:
            maxes[i] = chunk[-1]
        else:
            del lists[i]
            del maxes[i]

    def _locate(self, key: bytes) -> tuple[int, int]:
        """(chunk, index in it) of the first key >= ``key`` (chunk = len when there is none)."""
        i = bisect_left(self._maxes, key)
        if i == len(self._maxes):
            return i, 0
        return i, bisect_left(self._lists[i], key)

    def range(self, start: bytes, stop: bytes | None = None) -> list[bytes]:
        """The keys ``start <= key < stop`` (to the end when ``stop`` is None), in order."""
        self._settle()
        lists = self._lists
        i, j = self._locate(start)
        if stop is None:
            hi_i, hi_j = len(lists), 0
        else:
            hi_i, hi_j = self._locate(stop)
        if (i, j) >= (hi_i, hi_j):
            return []
        if i == hi_i:
            return lists[i][j:hi_j]
        out = lists[i][j:]
        for chunk in lists[i + 1 : hi_i]:
            out += chunk
        if hi_i < len(lists):
            out += lists[hi_i][:hi_j]
        return out

    def take(self, start: bytes, n: int) -> list[bytes]:
        """At most ``n`` keys from the first key >= ``start``, in order."""
        self._settle()
        lists = self._lists
        i, j = self._locate(start)
        out: list[bytes] = []
        while i < len(lists) and len(out) < n:
            out += lists[i][j : j + n - len(out)]
            i, j = i + 1, 0
        return out

    def last_below(self, below: bytes | None = None) -> bytes | None:
        """The greatest key < ``below`` (the greatest key when ``below`` is None)."""
        self._settle()
        maxes = self._maxes
        if not maxes:
            return None
        if below is None:
            return maxes[-1]
        i, j = self._locate(below)
        if i < len(maxes) and j:
            return self._lists[i][j - 1]
        return maxes[i - 1] if i else None

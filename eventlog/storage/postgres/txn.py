"""The PostgreSQL key-value transaction: the engine's tables as SQL, writes buffered to the commit.

:class:`PgTxn` implements :class:`eventlog.storage.kv.KVTxn` on one cursor of a transaction that
:class:`eventlog.storage.postgres.backend.PostgresBackend` began: puts and deletes are buffered
(a read sees them) and sent with the commit (:meth:`PgTxn.commit_sql`) as bytea literals in one
simple query; a write transaction reads through the backend's
:class:`~eventlog.storage.postgres.cache.Cache`.
:class:`Queries` is the SQL of one table, composed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql

from eventlog.errors import StoreError
from eventlog.storage.keys import SEQ_END
from eventlog.storage.kv import Followed, follow_by_gets, get_range_by_scan
from eventlog.storage.postgres.cache import Cache, Tails

__all__ = ["Mark", "NeedsSnapshot", "PgTxn", "Queries", "literal"]

_PAGE = 512  # rows per page of a scan
_CACHE_MAX = 50_000  # cached keys before the cache is emptied (tens of MB at most)
#: Tables whose values are not cached: events are written once and rarely read back in a write.
_UNCACHED = frozenset({"events", "positions"})


_UPSERT_TAIL = b" ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;"


def literal(value: bytes) -> bytes:
    """``value`` as a bytea literal (standard_conforming_strings is on: see configure)."""
    return b"'\\x" + value.hex().encode() + b"'::bytea"


def _max_of(
    key: bytes | None, pending: dict[bytes, bytes | None] | None, below: bytes | None
) -> bytes | None:
    """The greater of ``key`` and the buffered puts' keys below ``below``."""
    if pending:
        mine = [k for k, v in pending.items() if v is not None and (below is None or k < below)]
        if mine:
            top = max(mine)
            return top if key is None or top > key else key
    return key


class Queries:
    """The SQL of one table, composed once."""

    def __init__(self, schema: str, table: str) -> None:
        name = sql.Identifier(schema, table).as_string(None)

        def q(text: str) -> bytes:
            return text.replace("{}", name).encode()

        self.get = q("SELECT v FROM {} WHERE k = %b")
        self.get_many = q("SELECT k, v FROM {} WHERE k = ANY(%b::bytea[])")
        self.upsert_head = q("INSERT INTO {} (k, v) VALUES ")
        self.delete_head = q("DELETE FROM {} WHERE k IN (")
        self.last = q("SELECT k FROM {} ORDER BY k DESC LIMIT 1")
        self.last_below = q("SELECT k FROM {} WHERE k < %b ORDER BY k DESC LIMIT 1")
        self.last_both = q(
            "SELECT (SELECT k FROM {} WHERE k < %b ORDER BY k DESC LIMIT 1), "
            "(SELECT k FROM {} ORDER BY k DESC LIMIT 1)"
        )
        self.around = q(
            "SELECT (SELECT k FROM {} WHERE k < %b ORDER BY k DESC LIMIT 1), "
            "(SELECT k FROM {} WHERE k > %b ORDER BY k LIMIT 1), (SELECT v FROM {} WHERE k = %b)"
        )
        self.fwd = q("SELECT k, v FROM {} WHERE k >= %b ORDER BY k LIMIT %b")
        self.fwd_after = q("SELECT k, v FROM {} WHERE k > %b ORDER BY k LIMIT %b")
        self.rev = q("SELECT k, v FROM {} WHERE k < %b ORDER BY k DESC LIMIT %b")
        self.rev_all = q("SELECT k, v FROM {} ORDER BY k DESC LIMIT %b")
        self.name = name.encode()
        self._joins: dict[tuple[object, ...], bytes] = {}

    def _composed(self, key: tuple[object, ...], build: Callable[[], bytes]) -> bytes:
        """The query ``build`` makes, composed once per ``key``."""
        found = self._joins.get(key)
        if found is None:
            found = self._joins[key] = build()
        return found

    def follow(self, target: Queries, owner: Queries) -> bytes:
        """``KVTxn.follow`` of this table as one query.

        The page of the index first (materialized: as a join, the planner may hash both whole
        tables - measured 10x slower on a fresh store), then one primary-key lookup of the
        target per row, and the owners of the page's distinct numbers, read once each (as a
        lookup per row, a small owner table is scanned whole per row: 8-46 ms a page of 1,000
        on 101 streams, against 1.8 ms).
        """
        return self._composed(
            ("follow", target.name, owner.name),
            lambda: (
                b"WITH i AS MATERIALIZED (SELECT k, v FROM " + self.name + b" WHERE k >= %b "
                b"ORDER BY k LIMIT %b), o AS (SELECT k, v FROM " + owner.name + b" WHERE k IN "
                b"(SELECT substr(v, 1, 8) FROM i)) "
                b"SELECT i.k, i.v, (SELECT v FROM " + target.name + b" WHERE k = i.v), o.v "
                b"FROM i LEFT JOIN o ON o.k = substr(i.v, 1, 8) ORDER BY i.k"
            ),
        )

    def around_head(self, events: Queries) -> bytes:
        """:attr:`around` of ``streams``, and the last ``events`` key under the stream's number.

        Every append reads its stream's record and then its head (``last_key`` of ``events``
        below number + ``SEQ_END``): a write that does not know the stream asks both at once.
        """
        return self._composed(
            ("head", events.name),
            lambda: (
                b"SELECT (SELECT k FROM " + self.name + b" WHERE k < %b ORDER BY k DESC "
                b"LIMIT 1), (SELECT k FROM "
                + self.name
                + b" WHERE k > %b ORDER BY k LIMIT 1), s.v, "
                b"(SELECT k FROM "
                + events.name
                + b" WHERE k < substr(s.v, 1, 8) || "
                + literal(SEQ_END)
                + b" ORDER BY k DESC LIMIT 1) "
                b"FROM (SELECT (SELECT v FROM " + self.name + b" WHERE k = %b) AS v) s"
            ),
        )

    def get_range(self, target: Queries, reverse: bool) -> bytes:
        """``KVTxn.get_range`` from this table as one query: a get, then a range under it."""
        return self._composed(
            ("range", target.name, reverse),
            lambda: (
                b"SELECT s.v, r.k, r.v FROM " + self.name + b" s LEFT JOIN LATERAL "
                b"(SELECT k, v FROM " + target.name + b" WHERE k >= substr(s.v, 1, 8) || %b "
                b"AND k < substr(s.v, 1, 8) || %b ORDER BY k"
                + (b" DESC" if reverse else b"")
                + b" LIMIT %b) r ON true WHERE s.k = %b"
            ),
        )


class Mark:
    """What a savepoint must restore of the client-side transaction state."""

    __slots__ = ("seen", "written")

    def __init__(self, seen: dict[tuple[str, bytes], bytes | None], written: int) -> None:
        self.seen = seen
        self.written = written


class NeedsSnapshot(BaseException):
    """A read that sent one statement on its own needs another: rerun it in a snapshot.

    A ``BaseException``, so that no ``except Exception`` between the transaction and the
    backend's ``read`` can take it for the read's own failure.
    """


#: How a transaction sends its statements (see :class:`PgTxn`).
_BEGUN, _LAZY, _SNAPSHOT, _SINGLE = range(4)
_BEGIN_READ = b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


class PgTxn:
    """One transaction: buffered writes, reads through the cache (write transactions only).

    A read transaction begins lazily. When its first statement is a page read
    (:meth:`follow`, :meth:`get_range`), it goes alone, in autocommit: one statement is one
    snapshot, so a read call made of one page costs one round trip, with no ``BEGIN`` and no
    ``ROLLBACK``. If that read then needs a second statement, :class:`NeedsSnapshot` makes the
    backend run it again in a transaction (``single=False``). Any other first statement
    begins a ``REPEATABLE READ READ ONLY`` transaction first.
    """

    __slots__ = (
        "_cache",
        "_cur",
        "_mode",
        "_pending",
        "_q",
        "_seen",
        "_write",
        "sent",
        "written",
    )

    def __init__(
        self,
        cur: psycopg.Cursor[Any],
        queries: dict[str, Queries],
        cache: Cache | None,
        *,
        single: bool = False,
    ) -> None:
        self._cur = cur
        self._q = queries
        self._write = cache is not None
        self._mode = _BEGUN if cache is not None else _LAZY if single else _SNAPSHOT
        self.sent = 0  # statements sent (a failure on the first one may be retried)
        self._cache = cache if cache is not None else Cache()
        self._pending: dict[str, dict[bytes, bytes | None]] = {}
        self._seen: dict[tuple[str, bytes], bytes | None] = {}  # read from the server
        self.written = 0

    # -- reads ---------------------------------------------------------------------------
    def _rows(self, query: bytes, params: tuple[object, ...] = ()) -> list[Any]:
        mode = self._mode
        if mode != _BEGUN:
            if mode == _SINGLE:
                raise NeedsSnapshot
            self.sent += 1
            self._cur.execute(_BEGIN_READ, prepare=False)
            self._mode = _BEGUN
        self.sent += 1
        return self._cur.execute(query, params).fetchall()

    def _page(self, query: bytes, params: tuple[object, ...]) -> list[Any]:
        """A page read: alone in autocommit when it is the read's first statement."""
        if self._mode != _LAZY:
            return self._rows(query, params)
        self._mode = _SINGLE
        self.sent += 1
        return self._cur.execute(query, params).fetchall()

    def follow(self, table: str, start: bytes, n: int, target: str, owner: str) -> list[Followed]:
        if self._write:  # the buffered writes and the cache count: the generic way
            return follow_by_gets(self, table, start, n, target, owner)
        if n <= 0:
            return []
        q = self._q
        rows: list[Followed] = self._page(q[table].follow(q[target], q[owner]), (start, n))
        return rows  # psycopg's rows are already the tuples (bytea loads as bytes)

    def get_range(
        self,
        table: str,
        key: bytes,
        target: str,
        start: bytes,
        stop: bytes,
        n: int | None,
        *,
        reverse: bool = False,
    ) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
        if self._write or n == 0:
            return get_range_by_scan(self, table, key, target, start, stop, n, reverse=reverse)
        q = self._q
        rows = self._page(q[table].get_range(q[target], reverse), (start, stop, n, key))
        if not rows:
            return None, []
        if rows[0][1] is None:
            return rows[0][0], []
        return rows[0][0], [(k, v) for _, k, v in rows]

    def get(self, table: str, key: bytes) -> bytes | None:
        pending = self._pending.get(table)
        if pending is not None and key in pending:
            return pending[key]
        ck = (table, key)
        seen = self._seen
        if ck in seen:
            return seen[ck]
        values = self._cache.values
        if ck in values:
            return values[ck]
        if self._write and table not in _UNCACHED:
            value = seen[ck] = self._get_learning(table, key)
            return value
        rows = self._rows(self._q[table].get, (key,))
        return bytes(rows[0][0]) if rows else None

    def _get_learning(self, table: str, key: bytes) -> bytes | None:
        """A write's get that learns the empty gap around ``key`` (see :class:`Tails`).

        A key inside a gap known to be empty is absent with no query: a projector that looks
        for a key it has not written yet (a new tool call's id) asks the server once per gap,
        not once per key - the gap it learned is split by its own puts and stays known.
        """
        tails = self._tails_of(table)
        known, lo = tails.answer(key + b"\x00")  # the greatest key <= key, if known
        if known and lo != key:
            return None
        if known:  # it exists (its value is not known): a plain get
            rows = self._rows(self._q[table].get, (key,))
            return bytes(rows[0][0]) if rows else None
        q = self._q[table]
        if table != "streams":
            row = self._rows(q.around, (key, key, key))[0]
        else:  # and the stream's head: the append's next question (see Queries.around_head)
            row = self._rows(q.around_head(self._q["events"]), (key, key, key))[0]
        lo, above = row[0], row[1]
        value: bytes | None = row[2]
        # no key lies between lo and the key (or, when it is absent, the next one above)
        tails.learn(key if value is not None else above, lo)
        self._reconcile(tails, table)
        if table == "streams" and value is not None:
            events = self._tails_of("events")
            events.learn(value[:8] + SEQ_END, row[3])
            self._reconcile(events, "events")
        return value

    def _reconcile(self, tails: Tails, table: str) -> None:
        """Make what the server said of ``table``'s keys true of this transaction's writes."""
        pending = self._pending.get(table)
        if pending:
            for k, v in pending.items():
                if v is None:
                    tails.delete(k)
                else:
                    tails.put(k)

    def _writes(self, table: str) -> bytes:
        """The SQL of ``table``'s buffered writes (bytea literals), and forget them.

        Literals, not parameters: the whole commit then travels as one simple query - one
        round trip, no per-statement protocol overhead. Hex literals cannot inject anything.
        """
        pending = self._pending.pop(table, None)
        if not pending:
            return b""
        q = self._q[table]
        gone = [k for k, v in pending.items() if v is None]
        keep = [(k, v) for k, v in pending.items() if v is not None]
        parts = []
        if gone:
            parts.append(q.delete_head + b",".join(map(literal, gone)) + b");")
        if keep:
            rows = b",".join(b"(" + literal(k) + b"," + literal(v) + b")" for k, v in keep)
            parts.append(q.upsert_head + rows + _UPSERT_TAIL)
        if table not in _UNCACHED:
            seen = self._seen
            for k, v in pending.items():
                seen[(table, k)] = v
        return b"".join(parts)

    def prefetch(self, table: str, keys: Sequence[bytes]) -> None:
        """Read the values of ``keys`` not known yet in one query (listings: one per page)."""
        if self._write and table in _UNCACHED:
            return  # what a write reads is merged into the cache, and these tables are not kept
        pending = self._pending.get(table) or {}
        seen, values = self._seen, self._cache.values
        wanted = list(
            {
                k: None
                for k in keys
                if k not in pending and (table, k) not in seen and (table, k) not in values
            }
        )
        if len(wanted) < 2:
            return
        found = dict(self._rows(self._q[table].get_many, (wanted,)))
        for k in wanted:
            v = found.get(k)
            seen[(table, k)] = None if v is None else bytes(v)

    def _flush(self, table: str) -> None:
        """Send ``table``'s buffered writes now (before a range read of it)."""
        statements = self._writes(table)
        if statements:  # a simple query (several statements): through a text cursor
            self._cur.connection.execute(statements, prepare=False)

    def send_now(self, table: str) -> None:
        """Send ``table``'s buffered writes now (a large blob is not held in memory)."""
        self._flush(table)

    def commit_sql(self) -> bytes:
        """Every buffered write, as statements to send with the commit."""
        return b"".join([self._writes(table) for table in list(self._pending)])

    def _tails_of(self, table: str) -> Tails:
        # a write transaction updates the cached answers in place (it holds the backend's
        # write lock); a failed transaction empties the whole cache, a rolled-back savepoint
        # the answers (see Mark)
        tails = self._cache.tails.get(table)
        if tails is None:
            tails = self._cache.tails[table] = Tails()
        return tails

    def last_key(self, table: str, below: bytes | None = None) -> bytes | None:
        if not self._write:
            return self._server_last(table, below)
        tails = self._tails_of(table)
        known, key = tails.answer(below)
        if known:
            return key
        pending = self._pending.get(table)
        if pending is not None and None in pending.values():
            self._flush(table)  # a delete may have removed the server's answer
            pending = None
        if below is not None and not tails.known:
            # learn the table's greatest key in the same round trip: it answers every later
            # question above it (a new stream's head) without asking the server again
            q = self._q[table]
            row = self._rows(q.last_both, (below,))[0]
            key = None if row[0] is None else bytes(row[0])
            tails.learn(None, _max_of(None if row[1] is None else bytes(row[1]), pending, None))
        else:
            key = self._server_last(table, below)
        key = _max_of(key, pending, below)  # the buffered puts count too
        tails.learn(below, key)
        return key

    def _server_last(self, table: str, below: bytes | None) -> bytes | None:
        q = self._q[table]
        rows = self._rows(q.last) if below is None else self._rows(q.last_below, (below,))
        return bytes(rows[0][0]) if rows else None

    def values(self, table: str, start: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        if n <= 0:
            return [], None
        self._flush(table)
        rows = self._rows(self._q[table].fwd, (start, n))
        if not rows:
            return [], None
        return [bytes(v) for _, v in rows], bytes(rows[-1][0])

    def scan(
        self, table: str, start: bytes, stop: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        q = self._q[table]
        if not reverse:
            self._flush(table)
            rows = self._rows(q.fwd, (start, _PAGE))
            while rows:
                for k, v in rows:
                    key = bytes(k)
                    if stop is not None and key >= stop:
                        return
                    yield key, bytes(v)
                if len(rows) < _PAGE:
                    return
                self._flush(table)  # the caller may write while it iterates
                rows = self._rows(q.fwd_after, (key, _PAGE))
            return
        self._flush(table)
        rows = self._rows(q.rev_all, (_PAGE,)) if stop is None else self._rows(q.rev, (stop, _PAGE))
        while rows:
            for k, v in rows:
                key = bytes(k)
                if key < start:
                    return
                yield key, bytes(v)
            if len(rows) < _PAGE:
                return
            self._flush(table)
            rows = self._rows(q.rev, (key, _PAGE))

    # -- writes ------------------------------------------------------------------------
    def put(self, table: str, key: bytes, value: bytes, *, append: bool = False) -> None:
        if not self._write:
            raise StoreError("put in a read transaction: write in backend.write(fn) instead")
        if not key:  # LMDB cannot store one: a store here must stay copyable there
            raise StoreError(f"table {table}: an empty key cannot be stored (keys are 1+ bytes)")
        value = bytes(value)
        self.written += len(value)
        pending = self._pending.get(table)
        if pending is None:
            pending = self._pending[table] = {}
        pending[key] = value
        self._raise_tails(table, key)

    def put_many(
        self, table: str, items: list[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        for key, value in items:
            self.put(table, key, value)

    def _raise_tails(self, table: str, key: bytes) -> None:
        """Keep the remembered ``last_key`` answers of ``table`` true after a put of ``key``."""
        tails = self._cache.tails.get(table)
        if tails is not None:
            tails.put(key)

    def delete(self, table: str, key: bytes) -> bool:
        existed = self.get(table, key) is not None
        self.discard(table, key)
        return existed

    def discard(self, table: str, key: bytes) -> None:
        if not self._write:
            raise StoreError("delete in a read transaction: write in backend.write(fn) instead")
        pending = self._pending.get(table)
        if pending is None:
            pending = self._pending[table] = {}
        pending[key] = None
        tails = self._cache.tails.get(table)
        if tails is not None:  # keep the remembered answers true
            tails.delete(key)

    # -- commit --------------------------------------------------------------------------
    def mark(self) -> Mark:
        """What :meth:`restore` needs to undo the writes and reads after a savepoint."""
        return Mark(dict(self._seen), self.written)

    def restore(self, mark: Mark) -> None:
        """Forget what happened after ``mark`` (the server rolled back to its savepoint)."""
        self._pending.clear()
        self._seen = mark.seen
        self._cache.tails.clear()  # the failed request may have moved answers: forget them
        self.written = mark.written

    def merge_into_cache(self) -> None:
        """After a commit: what this transaction read and wrote is the committed state."""
        cache = self._cache
        if len(cache.values) > _CACHE_MAX:
            cache.values.clear()
        cache.values.update(self._seen)

"""Waking subscribers on PostgreSQL: LISTEN/NOTIFY, across processes and machines.

Every write transaction of :class:`~eventlog.storage.postgres.backend.PostgresBackend` sends
``pg_notify('eventlog_<schema>', '')`` in its commit pipeline; PostgreSQL delivers it to every
listener once the transaction commits (and never for a rolled-back one). This module's
:class:`PgWakeup` is the :class:`~eventlog.storage.wakeup.Wakeup` of such a store: one listener
thread
per store and process (started by the first subscriber that waits) holds its own connection in
``LISTEN`` and sleeps in ``select`` on its socket; a notification bumps the generation and wakes
every waiter, so the no-lost-wake-up argument of :mod:`eventlog.storage.wakeup` holds unchanged (the
``LISTEN`` is in place before the first read, and catch-up always reads the table).

If the listening connection breaks, the thread wakes every waiter (they re-read the log), and
waiters poll (1-40 ms) until a new connection listens again.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time

import psycopg
from psycopg import sql

from eventlog.log import get_logger
from eventlog.storage.wakeup import Wakeup

__all__ = ["PgWakeup"]

log = get_logger("eventlog.postgres")

_RETRY = 1.0  # seconds between two attempts to listen again after a failure


class PgWakeup(Wakeup):
    """A store's wake-up point on PostgreSQL (LISTEN on the schema's channel)."""

    def __init__(self, conninfo: str, channel: str, connect_timeout: int) -> None:
        super().__init__(None, readonly=True)
        self._conninfo = conninfo
        self._channel = channel
        self._connect_timeout = connect_timeout
        self._listen_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._pipe: tuple[int, int] | None = None
        self._next_try = 0.0

    def committed(self) -> None:
        """Wake this process's waiters after its commit (other processes hear the NOTIFY)."""
        self.poke()

    def live(self) -> bool:
        """Listen for other processes' commits; False (poll meanwhile) if that failed."""
        if self._listener is not None:
            return True
        with self._listen_lock:
            if self._listener is not None:
                return True
            if self._closed or time.monotonic() < self._next_try:
                return False
            try:
                conn = psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
                )
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            except psycopg.Error as exc:
                log.warning("listen_failed", channel=self._channel, error=str(exc).strip())
                self._next_try = time.monotonic() + _RETRY
                return False
            self._pipe = os.pipe()
            self._listener = threading.Thread(
                target=self._listen,
                args=(conn, self._pipe[0]),
                name=f"eventlog-listen:{self._channel}",
                daemon=True,
            )
            self._listener.start()
            return True

    def _listen(self, conn: psycopg.Connection[object], stop: int) -> None:
        try:
            fd = conn.fileno()
            while True:
                ready, _, _ = select.select([fd, stop], [], [])
                if stop in ready:
                    return
                for _ in conn.notifies(timeout=0):
                    pass
                self.poke()
        except (psycopg.Error, OSError, ValueError) as exc:
            log.warning("listen_lost", channel=self._channel, error=str(exc).strip())
            with self._listen_lock:
                self._listener = None
                pipe, self._pipe = self._pipe, None
                self._next_try = time.monotonic() + _RETRY
            for end in pipe or ():
                with contextlib.suppress(OSError):
                    os.close(end)
            self.poke()  # waiters re-read the log, then poll until we listen again
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        """Stop listening and wake every waiter."""
        with self._listen_lock:
            self._closed = True
            listener, self._listener = self._listener, None
            pipe, self._pipe = self._pipe, None
        if listener is not None and pipe is not None:
            os.write(pipe[1], b"x")
            listener.join()
        for end in pipe or ():
            with contextlib.suppress(OSError):
                os.close(end)
        super().close()

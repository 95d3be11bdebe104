"""What-if replays as data: an edited run's state beside the real one (``replay --what-if``).

:func:`what_if` asks the store for the replayed state (``store.replay``: nothing written,
nothing executed) and compares it with the real history: the fields that differ (the run
state plus the assistant text and the pending tool calls, as ``eventlog replay --diff``
names them) and the steps that differ (:func:`eventlog.tools.run_diff.diff_events`).
:func:`events_from_json` reads the events a what-if file holds, checked like an import.

>>> from eventlog import RunStore
>>> from eventlog.events import ModelStarted, RunCompleted
>>> store = RunStore.in_memory()
>>> run = store.create_run(store.ensure_session(), provider="p", model="m")
>>> _ = store.append_events(run.id, [ModelStarted("p", "m", 1), RunCompleted("stop", 1)])
>>> [failed] = events_from_json(b'{"type": "RunFailed", "payload": {"error": "quota"}}', "f.json")
>>> result = what_if(store, run.id, replace={2: failed})
>>> result.state.status, [(c.field, c.old, c.new) for c in result.changes][:1]
(<RunStatus.FAILED: 'failed'>, [('status', 'completed', 'failed')])
>>> [(h.op, [s.label for s in h.a], [s.label for s in h.b]) for h in result.hunks][1]
('replace', ['RunCompleted(stop)'], ['RunFailed'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

import msgspec

from eventlog.errors import EventFileError, RunNotFound
from eventlog.model.debug_state import DebugState, FieldChange
from eventlog.model.events import EVENT_TYPES, AnyEvent
from eventlog.model.limits import MAX_NESTING_DEPTH, check_depth
from eventlog.model.registry import registered
from eventlog.model.state import RunState
from eventlog.model.what_if import edit_history
from eventlog.storage.codec import MAX_EVENT_BYTES
from eventlog.tools.run_diff import DiffHunk, diff_events
from eventlog.tools.story import RunReader

__all__ = ["MAX_EVENT_FILE_BYTES", "WhatIf", "WhatIfReader", "events_from_json", "what_if"]

#: the largest what-if file read (a few events at most)
MAX_EVENT_FILE_BYTES = MAX_EVENT_BYTES

#: keys of ``eventlog event --json`` besides type and payload (accepted and ignored)
_RECORD_KEYS = frozenset({"run_id", "seq", "position", "recorded_at", "event_id", "version"})


class WhatIfReader(RunReader, Protocol):
    """What :func:`what_if` reads: a :class:`~eventlog.RunStore`."""

    def replay(
        self,
        run_id: UUID | str,
        *,
        to_seq: int | None = None,
        replace: Mapping[int, AnyEvent] | None = None,
        drop: Iterable[int] | None = None,
        insert: Mapping[int, Sequence[AnyEvent]] | None = None,
    ) -> RunState:
        """The state of the edited history."""
        ...


class WhatIf(msgspec.Struct):
    """A what-if replay: the state it leads to, the real one, and how they differ.

    ``to_seq`` is the last real seq replayed; ``changes`` the fields that differ (real ->
    what-if; ``updated_at`` left out); ``hunks`` the steps aligned (A = real, B = what-if)
    and ``diverges_at`` the index of the first hunk that differs (None: same steps).
    """

    run_id: UUID
    to_seq: int
    state: RunState
    real: RunState
    changes: list[FieldChange]
    hunks: list[DiffHunk]
    diverges_at: int | None


def what_if(
    reader: WhatIfReader,
    run_id: UUID,
    *,
    to_seq: int | None = None,
    replace: Mapping[int, AnyEvent] | None = None,
    drop: Iterable[int] | None = None,
    insert: Mapping[int, Sequence[AnyEvent]] | None = None,
) -> WhatIf:
    """Replay the run with the edits and compare it with its real history up to ``to_seq``."""
    record = reader.get_run(run_id)
    if record is None:
        raise RunNotFound(run_id)
    events = reader.list_events(run_id, to_seq=to_seq)
    upto = events[-1].seq if events else 0  # pinned: appends after this read do not count
    drops = set(drop or ())
    state = reader.replay(run_id, to_seq=upto, replace=replace, drop=drops, insert=insert)
    real = reader.replay(run_id, to_seq=upto)
    edited = edit_history(
        run_id, events, replace=replace, drop=drops, insert=insert, created_at=record.created_at
    )
    before = DebugState.fold(record, events)
    after = DebugState.fold(record, edited)
    before.run, after.run = real, state  # the store's fold, as replay returned it
    old, new = before.fields(), after.fields()
    keys = list(old) + [k for k in new if k not in old]
    changes = [
        FieldChange(k, old.get(k), new.get(k))
        for k in keys
        if old.get(k) != new.get(k) and k != "updated_at"
    ]
    hunks = diff_events(events, edited)
    first = next((i for i, h in enumerate(hunks) if h.op != "equal"), None)
    return WhatIf(run_id, upto, state, real, changes, hunks, first)


def _event_of(item: Any, path: str, n: int | None) -> AnyEvent:
    where = path if n is None else f"{path} item {n}"
    if not isinstance(item, dict):
        raise EventFileError(where, f"found {type(item).__name__}, not a JSON object")
    extra = sorted(set(item) - _RECORD_KEYS - {"type", "payload"})
    if extra:
        raise EventFileError(where, f"unknown key {str(extra[0])[:40]!r}")
    name = item.get("type")
    if not isinstance(name, str) or not name:
        raise EventFileError(where, '"type" must name an event type')
    cls: type[Any] | None = EVENT_TYPES.get(name)
    if cls is None:
        info = registered(name)
        if info is None:
            raise EventFileError(where, f"unknown event type {name[:60]!r}")
        cls = info.cls
    payload = item.get("payload", {})
    if not isinstance(payload, dict):
        raise EventFileError(where, '"payload" must be a JSON object')
    payload = {k: v for k, v in payload.items() if k != "type"}  # the tag, if copied
    try:
        event: AnyEvent = msgspec.convert(payload, type=cls)
    except msgspec.ValidationError as exc:
        raise EventFileError(where, f"payload of {name}: {exc}") from None
    return event


def events_from_json(data: bytes, path: str) -> list[AnyEvent]:
    """The events a what-if file holds: one event object or a list of them, checked.

    Raises :class:`~eventlog.errors.EventFileError` naming the file (and the item) for
    anything else: not JSON, too large, too deeply nested, an unknown type, a bad payload.
    """
    if len(data) > MAX_EVENT_FILE_BYTES:
        raise EventFileError(path, f"{len(data)} bytes is over {MAX_EVENT_FILE_BYTES}")
    try:
        doc = msgspec.json.decode(data)
    except RecursionError:
        raise EventFileError(path, f"nested deeper than {MAX_NESTING_DEPTH} levels") from None
    except msgspec.DecodeError as exc:
        raise EventFileError(path, f"not valid JSON ({exc})") from None
    try:
        check_depth(doc, path, "file")
    except ValueError as exc:
        raise EventFileError(path, str(exc)) from None
    if isinstance(doc, list):
        if not doc:
            raise EventFileError(path, "the list is empty")
        return [_event_of(item, path, n) for n, item in enumerate(doc, 1)]
    return [_event_of(doc, path, None)]

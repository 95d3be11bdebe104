"""Coverage-guided fuzzing of the decoder and of JSONL import (atheris, ``make fuzz``).

``python tests/fuzz/harness.py seed DIR`` writes seed corpora (valid stored events, a valid
export) to ``DIR/decoder`` and ``DIR/import``; ``python tests/fuzz/harness.py decoder
-max_total_time=60 DIR/decoder`` (or ``import``) fuzzes; the arguments after the target go to
libFuzzer, which prints the number of cases run ("Done N runs"). Only the library's
documented errors may come out: a crash is any other exception, which atheris reports with the
input that caused it (saved as crash-*).
atheris is an optional extra (``pip install -e '.[fuzz]'``); without it, the same properties
run under hypothesis in tests/test_fuzz.py.
"""

from __future__ import annotations

import contextlib
import sys
from uuid import UUID

RUN = UUID(int=1)


def decoder_target(data: bytes) -> None:
    """The stored-event and record decoders on arbitrary bytes."""
    from eventlog.errors import CorruptRecordError
    from eventlog.storage.codec import RUN_RECORD, RUN_STATE, SESSION, decode_event, decode_stream

    with contextlib.suppress(CorruptRecordError):
        decode_event(RUN, 1, data)
    with contextlib.suppress(CorruptRecordError):
        decode_stream(RUN, [(b"\0" * 7 + b"\1" + b"\0" * 7 + b"\1", data)])
    for codec in (RUN_STATE, RUN_RECORD, SESSION):
        with contextlib.suppress(CorruptRecordError):
            codec.decode(data, "run", RUN, "state")


def import_target(data: bytes) -> None:
    """JSONL import into an in-memory store: ImportFileError, and then nothing written."""
    from eventlog import ImportFileError, RunStore

    store = RunStore.in_memory()
    try:
        store.import_jsonl(data.splitlines())
    except ImportFileError:
        if store.last_position() or store.count_runs() or store.list_sessions():
            raise AssertionError("a failed import wrote something") from None
        return
    if store.verify():
        raise AssertionError(f"an accepted import is inconsistent: {store.verify()}")


TARGETS = {"decoder": decoder_target, "import": import_target}


def write_seeds(directory: str) -> None:
    """Valid inputs to start from: mutating them reaches deeper than random bytes."""
    from datetime import UTC, datetime
    from pathlib import Path

    from eventlog import RawEvent, RunStore
    from eventlog.events import AnyEvent, ModelStarted, Success, TextDelta, ToolExecutionFinished
    from eventlog.storage.codec import encode_event

    now = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[AnyEvent] = [
        TextDelta("hello"),
        ModelStarted("p", "m", 3),
        ToolExecutionFinished("c", "t", Success({"a": [1]}), 5),
        RawEvent("Future", 2, {"x": 1}),
    ]
    out = Path(directory)
    (out / "decoder").mkdir(parents=True, exist_ok=True)
    (out / "import").mkdir(parents=True, exist_ok=True)
    for n, event in enumerate(events):
        (out / "decoder" / f"seed{n}").write_bytes(encode_event(event, n + 1, now, RUN))
    store = RunStore.in_memory()
    run = store.create_run(store.ensure_session(), provider="p", model="m")
    store.append_events(run.id, events)
    (out / "import" / "seed0").write_text("\n".join(store.export_jsonl()) + "\n")


def main(argv: list[str]) -> None:
    """Run the chosen target under atheris."""
    import atheris

    if len(argv) == 3 and argv[1] == "seed":
        write_seeds(argv[2])
        return
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[argv[1]]
    with atheris.instrument_imports():
        import eventlog.storage.codec
        import eventlog.store.run_store
        import eventlog.tools.jsonl  # noqa: F401

    def one_input(data: bytes) -> None:
        target(data)

    atheris.Setup([argv[0], *argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)

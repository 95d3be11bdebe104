"""The installed ``eventlog`` script run as real processes, its output piped.

``tail --follow`` is watched while another process appends to the store: the test reads the
tail's stdout line by line with ``select`` and a deadline (never a sleep), then stops it with
SIGINT (Ctrl-C) and expects a clean exit.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import pytest

from eventlog import RunStore
from eventlog.events import ModelStarted, RunStarted, TextDelta

DEADLINE = 30.0  # seconds: an upper bound for a wait, never an expectation of speed
ANSI = "\x1b"

# Appends one TextDelta per stdin line to run argv[2] of store argv[1]; prints "seq position".
WRITER = """
import sys
from eventlog import RunStore
from eventlog.events import TextDelta

with RunStore.open(sys.argv[1]) as store:
    for line in sys.stdin:
        record = store.append_event(sys.argv[2], TextDelta(line.rstrip("\\n")))
        print(record.seq, record.position, flush=True)
"""

# Ctrl-C must reach the script as KeyboardInterrupt even when this test process was started
# with SIGINT ignored (as in a background job), which a child would inherit: reset it to the
# default, then exec the installed script itself.
SIGINT_DEFAULT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def eventlog() -> str:
    script = Path(sys.executable).parent / "eventlog"
    if not script.exists():
        pytest.fail(f"the eventlog console script is not installed at {script} (pip install -e .)")
    return str(script)


def child_env() -> dict[str, str]:
    """The environment without what would hide a bug: forced unbuffered output, a store path."""
    env = dict(os.environ)
    for name in ("PYTHONUNBUFFERED", "EVENTLOG_DB", "FORCE_COLOR", "CLICOLOR_FORCE"):
        env.pop(name, None)
    return env


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [eventlog(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=child_env(),
    )


class Lines:
    """Lines of a pipe, each awaited with select() up to a deadline."""

    def __init__(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        self._fd = stream.fileno()
        self._buffer = b""
        self.closed = False

    def next(self, deadline: float) -> str | None:
        """The next line; None when the deadline passes or the pipe closes first."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._fd, 65536)
            if chunk:
                self._buffer += chunk
            else:
                self.closed = True
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def nothing_yet(self) -> bool:
        """True when no output is waiting right now (does not wait)."""
        ready, _, _ = select.select([self._fd], [], [], 0)
        return not self._buffer and not ready

    def rest(self) -> str:
        """Everything left until the pipe closes (call after the process exited)."""
        while not self.closed:
            chunk = os.read(self._fd, 65536)
            self._buffer += chunk
            self.closed = not chunk
        rest, self._buffer = self._buffer, b""
        return rest.decode()


class Tail:
    """``eventlog tail --follow`` running in the background."""

    def __init__(self, *args: str | Path, verbose: bool = False) -> None:
        options = ["-v"] if verbose else []
        command = [eventlog(), *options, "tail", "--follow", *map(str, args)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIGINT_DEFAULT, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)

    def line(self, deadline: float) -> dict[str, Any]:
        line = self.out.next(deadline)
        if line is None:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"tail printed no line in time; stderr: {self.err.rest()!r}")
        assert ANSI not in line
        event: dict[str, Any] = json.loads(line)
        return event

    def interrupt(self) -> tuple[str, str]:
        """Send SIGINT; expect exit code 0 within the deadline; return the rest of out, err."""
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail("tail --follow did not exit after SIGINT")
        out, err = self.out.rest(), self.err.rest()
        assert code == 0, err
        assert "Traceback" not in err
        assert "Aborted" not in err
        return out, err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Writer:
    """Another process with the store open for writing: one TextDelta per call."""

    def __init__(self, db: Path, run_id: UUID) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(run_id)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
        )
        self.out = Lines(self.proc.stdout)

    def append(self, delta: str, deadline: float) -> tuple[int, int]:
        """Append ``delta``; return the new event's (seq, position)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(delta.encode() + b"\n")
        self.proc.stdin.flush()
        ack = self.out.next(deadline)
        assert ack is not None, "the writer process did not append in time"
        seq, position = ack.split()
        return int(seq), int(position)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            assert self.proc.wait(timeout=DEADLINE) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def append_elsewhere(db: str | Path, run_id: UUID, deltas: list[str]) -> list[tuple[int, int]]:
    """Append one TextDelta per item in another process; return their (seq, position)."""
    appended = subprocess.run(
        [sys.executable, "-c", WRITER, str(db), str(run_id)],
        input="".join(f"{d}\n" for d in deltas),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=child_env(),
    )
    assert appended.returncode == 0, appended.stderr
    return [(int(seq), int(pos)) for seq, pos in map(str.split, appended.stdout.splitlines())]


@pytest.fixture
def tail_procs() -> Iterator[list[Tail | Writer]]:
    """Every process a test starts, ended at teardown whatever happened."""
    started: list[Tail | Writer] = []
    yield started
    for proc in started:
        if isinstance(proc, Writer) and proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()
        proc.close()


def _store(db: Path) -> tuple[UUID, UUID]:
    """A store with two running runs; return their ids."""
    with RunStore.open(db) as store:
        sid = store.create_session(title="tail").id
        a = store.create_run(sid, provider="openai", model="gpt-4o").id
        b = store.create_run(sid, provider="openai", model="gpt-4o").id
        for run in (a, b):
            store.append_events(
                run, [RunStarted(sid, "openai", "gpt-4o"), ModelStarted("openai", "gpt-4o", 1)]
            )
    return a, b


def _last_event(db: Path) -> tuple[str, int, int]:
    with RunStore.open(db, readonly=True) as store:
        last = store.read_log()[-1]
    return str(last.run_id), last.seq, last.position


# -- plain runs --------------------------------------------------------------------------------


def test_demo_then_piped_listings_and_verify(tmp_path: Path) -> None:
    db = tmp_path / "data"
    demo = run("demo", "--db", db, "--runs", "4", "--seed", "1")
    assert demo.returncode == 0, demo.stderr
    assert ANSI not in demo.stdout
    with RunStore.open(db, readonly=True) as store:
        runs = {str(r.id): r.status.value for r in store.list_runs_filtered()}
        failed = next(r.id for r in store.list_runs_filtered(status="failed"))
        failed_events = store.list_events(failed)
    assert sorted(runs.values()) == ["cancelled", "completed", "failed", "waiting_for_tools"]

    listed = run("runs", "--db", db, "--nl")
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    assert ANSI not in listed.stdout
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {row["id"]: row["status"] for row in rows} == runs

    table = run("runs", "--db", db)
    assert table.returncode == 0, table.stderr
    assert ANSI not in table.stdout
    for run_id, status in runs.items():
        assert run_id[:8] in table.stdout
        assert status in table.stdout

    events = run("events", failed.hex[:8], "--db", db, "--nl", "--no-payload")
    assert events.returncode == 0, events.stderr
    lines = [json.loads(line) for line in events.stdout.splitlines()]
    assert [(e["seq"], e["type"]) for e in lines] == [(r.seq, r.type) for r in failed_events]
    assert lines[-1]["type"] == "RunFailed"

    verify = run("verify", "--db", db)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout == "ok: the log and every view agree\n"


def test_errors_of_the_script(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = run("runs", "--db", missing)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: no eventlog store at {missing}")
    assert "Traceback" not in result.stderr
    assert not missing.exists()
    usage = run("runs", "--db", missing, "--bogus")
    assert usage.returncode == 2
    assert "No such option" in usage.stderr


# -- tail --follow -----------------------------------------------------------------------------


def test_tail_follow_prints_what_another_process_appends(
    tmp_path: Path, tail_procs: list[Tail | Writer]
) -> None:
    db = tmp_path / "data"
    run_a, _ = _store(db)
    last_run, last_seq, last_position = _last_event(db)
    tail = Tail("--nl", "-n", "1", "--interval", "0.05", "--db", db)
    tail_procs.append(tail)
    deadline = time.monotonic() + DEADLINE
    backlog = tail.line(deadline)  # the last event: the tail is now following
    assert (backlog["run_id"], backlog["seq"], backlog["position"]) == (
        last_run,
        last_seq,
        last_position,
    )

    acks = append_elsewhere(db, run_a, ["alpha", "beta", "gamma"])
    assert [seq for seq, _ in acks] == [3, 4, 5]

    got = [tail.line(deadline) for _ in range(3)]
    assert [(e["run_id"], e["seq"], e["position"], e["type"]) for e in got] == [
        (str(run_a), seq, position, "TextDelta") for seq, position in acks
    ]
    assert [e["payload"]["delta"] for e in got] == ["alpha", "beta", "gamma"]
    assert all(e["payload"]["type"] == "TextDelta" for e in got)

    rest, _ = tail.interrupt()
    assert rest == ""


def test_tail_follow_from_now_prints_nothing_until_an_append(
    tmp_path: Path, tail_procs: list[Tail | Writer]
) -> None:
    db = tmp_path / "data"
    run_a, _ = _store(db)
    tail = Tail("--nl", "-n", "0", "--interval", "0.05", "--db", db, verbose=True)
    tail_procs.append(tail)
    # -v: structlog logs to stderr; "store_opened" means the tail has opened the store
    deadline = time.monotonic() + DEADLINE
    while True:
        line = tail.err.next(deadline)
        assert line is not None, f"tail -v did not log store_opened: {tail.err.rest()!r}"
        assert "Traceback" not in line
        if "store_opened" in line:
            break
    assert tail.out.nothing_yet()

    writer = Writer(db, run_a)
    tail_procs.append(writer)
    # An append that lands before the tail has read the log's end counts as old (-n 0 skips
    # it), so append until the tail prints; every printed event must be one of ours.
    appended: list[tuple[int, str]] = []
    printed: list[dict[str, Any]] = []
    while not printed:
        assert time.monotonic() < deadline, "tail --follow printed nothing"
        delta = f"tick {len(appended) + 1}"
        seq, _ = writer.append(delta, deadline)
        appended.append((seq, delta))
        line = tail.out.next(min(deadline, time.monotonic() + 2.0))
        if line is not None:
            printed.append(json.loads(line))
    while printed[-1]["seq"] != appended[-1][0]:
        printed.append(tail.line(deadline))
    writer.close()

    assert all(e["run_id"] == str(run_a) for e in printed)
    assert all(e["type"] == "TextDelta" for e in printed)
    got = [(e["seq"], e["payload"]["delta"]) for e in printed]
    assert got == appended[len(appended) - len(got) :]  # our latest appends, in order
    assert got[0][0] > 2  # nothing of the backlog
    rest, _ = tail.interrupt()
    assert rest == ""


def test_tail_follow_of_one_run_ignores_the_others(
    tmp_path: Path, tail_procs: list[Tail | Writer]
) -> None:
    db = tmp_path / "data"
    run_a, run_b = _store(db)
    tail = Tail(str(run_a)[:8], "--nl", "-n", "1", "--interval", "0.05", "--db", db)
    tail_procs.append(tail)
    deadline = time.monotonic() + DEADLINE
    first = tail.line(deadline)
    assert (first["run_id"], first["seq"], first["type"]) == (str(run_a), 2, "ModelStarted")

    other, mine = Writer(db, run_b), Writer(db, run_a)
    tail_procs.extend([other, mine])
    other.append("not mine 1", deadline)
    other.append("not mine 2", deadline)
    expected = [mine.append("mine 1", deadline), mine.append("mine 2", deadline)]
    other.append("not mine 3", deadline)
    got = [tail.line(deadline) for _ in expected]
    assert [(e["seq"], e["position"]) for e in got] == expected
    assert [e["payload"]["delta"] for e in got] == ["mine 1", "mine 2"]
    other.close()
    mine.close()
    rest, _ = tail.interrupt()
    assert "not mine" not in rest


def _lines_of(text: str) -> Sequence[Any]:
    return [json.loads(line) for line in text.splitlines()]


def test_tail_without_follow_exits_after_the_backlog(tmp_path: Path) -> None:
    db = tmp_path / "data"
    _store(db)
    with RunStore.open(db, readonly=True) as store:
        log = store.read_log()
    result = run("tail", "-n", "3", "--nl", "--db", db)
    assert result.returncode == 0, result.stderr
    assert [(e["run_id"], e["seq"]) for e in _lines_of(result.stdout)] == [
        (str(r.run_id), r.seq) for r in log[-3:]
    ]


def test_an_appended_text_delta_round_trips_through_tail(tmp_path: Path) -> None:
    db = tmp_path / "data"
    run_a, _ = _store(db)
    with RunStore.open(db) as store:
        store.append_event(run_a, TextDelta('ünïcode ✓ "quoted"\nnewline'))
    result = run("tail", str(run_a), "-n", "1", "--nl", "--db", db)
    assert result.returncode == 0, result.stderr
    [event] = _lines_of(result.stdout)
    assert event["payload"]["delta"] == 'ünïcode ✓ "quoted"\nnewline'

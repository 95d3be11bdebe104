"""The viewer's test support: a seeded store, a real ``eventlog ui`` process, appends from others.

:func:`seed` writes runs of several statuses, models and providers, a running run to append
to, a run whose text is an XSS payload, a run with a fork and a fork of the fork (which has
an unresolved tool call with hostile names), and the hostile store of the CLI sweep. :class:`Server`
starts the installed ``eventlog ui`` script on a free port and waits for ``/healthz``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx

from eventlog import RunStore
from eventlog.events import (
    Failure,
    ModelStarted,
    RunCompleted,
    RunFailed,
    RunStarted,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
)

# the CLI sweep's hostile store, imported as its own tests import it (tests/cli on the path)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from hostile_data import HostileStore, fill

EVENTLOG = str(Path(sys.executable).with_name("eventlog"))
#: Stored in a run's text, tool output and metadata: each would set window.__xss if it ran.
XSS = (
    '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    "\"'><svg onload=window.__xss=3>javascript:window.__xss=4"
)
#: The unresolved call's tool name: the XSS payload and a right-to-left override.
HOSTILE_TOOL = XSS + "\u202edcba"


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` wrote."""

    db: str
    session_id: UUID
    done: UUID  # completed, model gpt-4o, provider openai
    failed: UUID  # failed, model claude, provider anthropic
    live: UUID  # running: the tests append to it
    xss: UUID  # completed, every text an XSS payload
    hostile: HostileStore
    root: UUID  # completed, forked by child at seq 2
    child: UUID  # a fork of root, forked by grandchild at seq 3
    grandchild: UUID  # a fork of child, with an unresolved tool call named HOSTILE_TOOL


def seed(db: str) -> Seeded:
    """Write the viewer's test store at ``db``."""
    with RunStore.open(db, create=True) as store:
        sid = store.ensure_session()

        def run(provider: str, model: str, events: list[object], **meta: object) -> UUID:
            record = store.create_run(sid, provider=provider, model=model, metadata=meta)
            store.append_events(record.id, [RunStarted(sid, provider, model), *events])  # type: ignore[list-item]
            return record.id

        done = run(
            "openai",
            "gpt-4o",
            [
                ModelStarted("openai", "gpt-4o", 1),
                TextDelta("Let me "),
                TextDelta("search."),
                ToolCallCompleted(ToolCall("c1", "search", {"q": "lmdb"})),
                UsageRecorded(TokenUsage(100, 20, 120)),
                ToolExecutionStarted("c1", "search"),
                ToolExecutionFinished("c1", "search", Success("3 hits"), 40),
                RunCompleted("stop", 1),
            ],
        )
        failed = run(
            "anthropic",
            "claude",
            [
                ModelStarted("anthropic", "claude", 1),
                ToolCallCompleted(ToolCall("c2", "run_tests", {"path": "tests/"})),
                ToolExecutionStarted("c2", "run_tests"),
                ToolExecutionFinished("c2", "run_tests", Failure("timed out"), 30000),
                RunFailed("run_tests timed out"),
            ],
        )
        xss = run(
            "openai",
            XSS,
            [
                ModelStarted("openai", XSS, 1),
                TextDelta(XSS),
                ToolCallCompleted(ToolCall("c3", XSS, {"url": XSS})),
                ToolExecutionFinished("c3", XSS, Failure(XSS), 1),
                RunCompleted(XSS, 1),
            ],
            link="javascript:window.__xss=5",
            note=XSS,
        )
        live = run("openai", "gpt-4o-live", [ModelStarted("openai", "gpt-4o-live", 1)])
        root = run(
            "openai", "gpt-4o-root", [TextDelta("root"), RunCompleted("stop", 1)], role="root"
        )
        child = store.fork_run(root, 2, metadata={"role": "child"}).id
        store.append_events(child, [TextDelta("child")], expected_seq=2)
        grandchild = store.fork_run(child, 3, metadata={"role": "grandchild"}).id
        store.append_events(
            grandchild,
            [
                ToolCallCompleted(ToolCall("call-" + XSS, HOSTILE_TOOL, {"cmd": XSS})),
                ToolExecutionStarted("call-" + XSS, HOSTILE_TOOL),
            ],
            expected_seq=3,
        )
        hostile = fill(store)
    return Seeded(db, sid, done, failed, live, xss, hostile, root, child, grandchild)


def append_from_another_process(db: str, run_id: UUID, text: str) -> None:
    """Append one ``TextDelta(text)`` to ``run_id`` from this process (not the server's).

    The server is its own process: this commit reaches it only through the store's
    cross-process wake-up.
    """
    with RunStore.open(db) as store:
        store.append_event(run_id, TextDelta(text))


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``eventlog ui --db DB --port P [args]`` as a subprocess, ready when ``/healthz`` answers."""

    def __init__(self, db: str, *args: str, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [EVENTLOG, "ui", "--db", db, "--host", host, "--port", str(self.port), *args]
        env = {k: v for k, v in os.environ.items() if k != "EVENTLOG_UI_TOKEN"}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.banner = ""

    def wait_ready(self, headers: dict[str, str] | None = None, timeout: float = 20.0) -> None:
        """Poll ``/healthz`` until it answers (or fail naming the server's stderr)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"eventlog ui exited: {self.proc.communicate()[1]}")
            try:
                r = httpx.get(self.base + "/healthz", headers=headers, timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.05)  # the server is starting: poll again
                continue
            if r.status_code in (200, 401):
                return
        raise AssertionError(f"eventlog ui did not answer on {self.base} in {timeout} s")

    def read_banner(self) -> str:
        """The first line the server printed (the URL, with the token if one is required)."""
        assert self.proc.stderr is not None
        self.banner = self.proc.stderr.readline()
        return self.banner

    def stop(self) -> None:
        """Interrupt the server and wait for it."""
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()

"""OpenTelemetry export: the GenAI span mapping, OTLP JSON files, and a real receiver (Phoenix).

The receiver is Arize Phoenix, the local trace viewer people run for agent traces
(``pip install arize-phoenix; phoenix serve``). ``make test`` installs it into its own venv
(``.venv-phoenix``: its dependencies stay out of ours) and these tests start it once per
module on free ports, export through the installed ``eventlog`` script, and read the spans
back through Phoenix's REST API. Without that venv they skip with one line, unless
``EVENTLOG_REQUIRE_PHOENIX=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the [otel] extra is not installed")

from opentelemetry.trace import SpanKind, StatusCode

from eventlog import RunStore
from eventlog.events import (
    Failure,
    ModelStarted,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStatusChanged,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
)
from eventlog.integrations.otel import (
    SCHEMA_URL,
    SEMCONV_VERSION,
    follow,
    otlp_json,
    read_otlp_json,
    run_spans,
    span_id_of,
    trace_id_of,
)
from eventlog.model.status import RunStatus
from eventlog.tools.story import load_run

ROOT = Path(__file__).resolve().parents[2]
PHOENIX = Path(os.environ.get("EVENTLOG_PHOENIX", ROOT / ".venv-phoenix" / "bin" / "phoenix"))
#: model/tool output as it can be: terminal escapes, markup, a bidi override, a NUL, quotes
HOSTILE = "\x1b[31m<script>alert(1)</script>\u202e\x00 \"' javascript:x"
DEADLINE = 60.0  # seconds: an upper bound for a wait, never an expectation of speed


def eventlog_script() -> str:
    script = Path(sys.executable).parent / "eventlog"
    assert script.exists(), f"the eventlog console script is not installed at {script}"
    return str(script)


def wait_for(what: str, check: Callable[[], bool], deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:g}s waiting for {what}")
        time.sleep(0.05)  # polling interval of a condition wait, not a wait for an outcome


def tool_run(store: RunStore, *, fail_tool: bool = False, crash: bool = False) -> UUID:
    """A run with two model calls and a tool (succeeded / failed / started with no result)."""
    sid = store.ensure_session()
    run = store.create_run(sid, provider="openai", model="gpt-4o", metadata={"agent": "coder"})
    events: list[Any] = [
        RunStarted(sid, "openai", "gpt-4o"),
        ModelStarted("openai", "gpt-4o", 1),
        ToolCallCompleted(ToolCall("c1", "search", {"q": "lmdb"})),
        UsageRecorded(TokenUsage(100, 20, 120)),
        ToolExecutionStarted("c1", "search"),
    ]
    if crash:
        store.append_events(run.id, events)
        return run.id
    result = Failure("timed out") if fail_tool else Success({"hits": 3})
    events += [
        ToolExecutionFinished("c1", "search", result, 25),
        ModelStarted("openai", "gpt-4o", 2),
        TextDelta("done"),
        UsageRecorded(TokenUsage(150, 10, 160)),
        RunFailed("search timed out") if fail_tool else RunCompleted("stop", 2),
    ]
    store.append_events(run.id, events)
    return run.id


# -- the mapping ---------------------------------------------------------------------------


def test_a_run_is_one_trace_of_genai_spans() -> None:
    with RunStore.in_memory() as store:
        rid = tool_run(store)
        spans = run_spans(*load_run(store, rid))
    names = [s.name for s in spans]
    assert names == ["invoke_agent coder", "chat gpt-4o", "chat gpt-4o", "execute_tool search"]
    root, chat1, chat2, tool = spans
    assert {s.context.trace_id for s in spans} == {rid.int}
    assert root.parent is None
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in spans[1:])
    assert (root.kind, chat1.kind, tool.kind) == (
        SpanKind.INTERNAL,
        SpanKind.CLIENT,
        SpanKind.INTERNAL,
    )
    assert root.attributes is not None
    assert chat1.attributes is not None
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.agent.name"] == "coder"
    assert root.attributes["gen_ai.usage.input_tokens"] == 250
    assert root.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert chat1.attributes["gen_ai.operation.name"] == "chat"
    assert chat1.attributes["gen_ai.provider.name"] == "openai"
    assert chat1.attributes["gen_ai.request.model"] == "gpt-4o"
    assert chat1.attributes["gen_ai.usage.output_tokens"] == 20
    assert chat1.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert chat2.attributes is not None
    assert chat2.attributes["gen_ai.usage.input_tokens"] == 150
    assert tool.attributes is not None
    assert tool.attributes["gen_ai.tool.name"] == "search"
    assert tool.attributes["gen_ai.tool.call.id"] == "c1"
    assert "gen_ai.tool.call.arguments" not in tool.attributes  # content is opt-in
    assert tool.status.status_code is StatusCode.UNSET
    assert all(s.end_time is not None and s.start_time is not None for s in spans)
    assert all(s.end_time >= s.start_time for s in spans)  # type: ignore[operator]
    assert root.start_time <= tool.start_time <= tool.end_time <= root.end_time  # type: ignore[operator]
    assert root.instrumentation_scope is not None
    assert root.instrumentation_scope.schema_url == SCHEMA_URL
    assert SEMCONV_VERSION in SCHEMA_URL


def test_errors_failures_and_unresolved_tools_are_errors() -> None:
    with RunStore.in_memory() as store:
        failed = run_spans(*load_run(store, tool_run(store, fail_tool=True)))
        crashed = run_spans(*load_run(store, tool_run(store, crash=True)))
    root, tool = failed[0], failed[-1]
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "search timed out"
    assert root.attributes is not None
    assert root.attributes["error.type"] == "RunFailed"
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes is not None
    assert tool.attributes["error.type"] == "ToolFailure"
    unresolved = crashed[-1]
    assert unresolved.name == "execute_tool search"
    assert unresolved.status.status_code is StatusCode.ERROR
    assert unresolved.attributes is not None
    assert unresolved.attributes["error.type"] == "unresolved"
    assert crashed[0].attributes is not None
    assert crashed[0].attributes["eventlog.run.status"] != "completed"


def test_ids_derive_from_run_and_seq_so_a_reexport_is_identical() -> None:
    with RunStore.in_memory() as store:
        rid = tool_run(store)
        first = run_spans(*load_run(store, rid), include_content=True)
        again = run_spans(*load_run(store, rid), include_content=True)
    assert otlp_json(first) == otlp_json(again)
    ids = [s.context.span_id for s in first]
    assert len(set(ids)) == len(ids)
    assert ids[0] == span_id_of(rid, 0)
    assert trace_id_of(rid) == rid.int
    assert ids[1] == span_id_of(rid, 2)  # the ModelStarted at seq 2 opened it
    other = UUID(int=rid.int ^ 1)
    assert span_id_of(other, 2) != span_id_of(rid, 2)


def test_content_is_opt_in_and_hostile_text_stays_exact(tmp_path: Path) -> None:
    with RunStore.in_memory() as store:
        sid = store.ensure_session()
        run = store.create_run(sid, provider="p", model="m")
        hostile = HOSTILE
        store.append_events(
            run.id,
            [
                ModelStarted("p", "m", 1),
                TextDelta(hostile),
                ToolCallCompleted(ToolCall("c", "t", {"x": hostile})),
                ToolExecutionStarted("c", "t"),
                ToolExecutionFinished("c", "t", Success(hostile), 1),
                RunCompleted("stop", 1),
            ],
        )
        spans = run_spans(*load_run(store, run.id), include_content=True)
    path = tmp_path / "out.jsonl"
    path.write_text(otlp_json(spans) + "\n", encoding="utf-8")
    (request,) = read_otlp_json(path)
    parsed = request.resource_spans[0].scope_spans[0].spans
    tool = next(s for s in parsed if s.name == "execute_tool t")
    attrs = {a.key: a.value.string_value for a in tool.attributes}
    assert json.loads(attrs["gen_ai.tool.call.arguments"]) == {"x": hostile}
    assert json.loads(attrs["gen_ai.tool.call.result"]) == hostile


def test_otlp_json_file_from_the_cli_parses_back(tmp_path: Path) -> None:
    db = tmp_path / "store"
    with RunStore.open(db) as store:
        rids = [tool_run(store), tool_run(store, fail_tool=True)]
        expected = {rid: run_spans(*load_run(store, rid)) for rid in rids}
    out = tmp_path / "traces.jsonl"
    done = subprocess.run(
        [eventlog_script(), "otel", "export", *(r.hex[:8] for r in rids), "--file", str(out)],
        env={**os.environ, "EVENTLOG_DB": str(db)},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    assert "exported 2 runs (8 spans)" in done.stderr
    requests = read_otlp_json(out)
    assert len(requests) == 2
    for request, rid in zip(requests, rids, strict=True):
        rs = request.resource_spans[0]
        assert rs.schema_url == SCHEMA_URL
        assert rs.scope_spans[0].schema_url == SCHEMA_URL
        got = [(s.name, int.from_bytes(s.span_id, "big")) for s in rs.scope_spans[0].spans]
        assert got == [(s.name, s.context.span_id) for s in expected[rid]]
        assert {int.from_bytes(s.trace_id, "big") for s in rs.scope_spans[0].spans} == {rid.int}
    # the file format: ids in hex, as OTLP/JSON says
    line = json.loads(out.read_text().splitlines()[0])
    assert line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == rids[0].hex


def test_cli_errors_are_clean(tmp_path: Path) -> None:
    db = tmp_path / "store"
    with RunStore.open(db) as store:
        rid = tool_run(store)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [eventlog_script(), "otel", *args, "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )

    neither = run("export", rid.hex)
    assert neither.returncode == 2
    assert "--endpoint URL or --file PATH" in neither.stderr
    nothing = run("export", "--file", str(tmp_path / "x.jsonl"))
    assert nothing.returncode == 2
    assert "name the runs" in nothing.stderr
    unknown = run("export", "ffffffff", "--file", str(tmp_path / "x.jsonl"))
    assert unknown.returncode == 1
    assert "ffffffff" in unknown.stderr
    assert not (tmp_path / "x.jsonl").exists()  # nothing half-written
    refused = run(
        "export", rid.hex, "--endpoint", f"http://127.0.0.1:{_free_port()}", "--timeout", "2"
    )
    assert refused.returncode == 1
    assert "did not accept the spans" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad_url = run("follow", "--endpoint", "localhost:4318")
    assert bad_url.returncode == 1
    assert "not an http(s) URL" in bad_url.stderr


def test_follow_acknowledges_only_what_was_delivered() -> None:
    from eventlog.errors import TelemetryExportError

    with RunStore.in_memory() as store:
        first, second = tool_run(store), tool_run(store)
        got: list[int] = []

        def deliver_then_fail(spans: Any) -> None:
            if got:
                raise TelemetryExportError("http://receiver", "refused")
            got.append(spans[0].context.trace_id)

        with pytest.raises(TelemetryExportError):
            follow(store, deliver_then_fail, timeout=0)
        assert got == [first.int]
        (consumer,) = store.consumers()
        assert consumer.lag > 0  # the second run is not acknowledged
        again: list[int] = []
        assert follow(store, lambda spans: again.append(spans[0].context.trace_id), timeout=0) == 1
        assert again == [second.int]
        # a status change to a terminal status ends a run too; a non-terminal one does not
        third = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(third.id, RunStatusChanged(RunStatus.CALLING_MODEL))
        assert follow(store, lambda spans: None, timeout=0) == 0
        store.append_event(third.id, RunStatusChanged(RunStatus.CANCELLED))
        assert follow(store, lambda spans: None, timeout=0) == 1
        assert [c.lag for c in store.consumers()] == [0]


# -- a real receiver: Phoenix ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Phoenix:
    """A Phoenix server in a subprocess, and its REST API's span search."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": str(workdir),
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(_free_port()),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        self.log = open(workdir / "phoenix.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(PHOENIX), "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_for("Phoenix to answer /healthz", self._healthy, deadline=120.0)

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"Phoenix exited with {self.proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def spans(self, trace_id: UUID) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = f"trace_id={trace_id.hex}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
            url = f"{self.url}/v1/projects/default/spans/otlpv1?{query}"
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    body = json.load(resp)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # no project yet: nothing received
                    return []
                raise
            found.extend(body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                return found

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    if not PHOENIX.exists():
        reason = f"Phoenix is not installed at {PHOENIX} (make test installs it into .venv-phoenix)"
        if os.environ.get("EVENTLOG_REQUIRE_PHOENIX") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    server = Phoenix(tmp_path_factory.mktemp("phoenix"))
    try:
        yield server
    finally:
        server.close()


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for attr in span["attributes"]:
        value = {k: v for k, v in attr["value"].items() if v is not None}
        out[attr["key"]] = next(iter(value.values()), None)
    return out


def test_phoenix_receives_the_trace_and_a_reexport_adds_nothing(
    phoenix: Phoenix, tmp_path: Path
) -> None:
    db = tmp_path / "store"
    with RunStore.open(db) as store:
        rid = tool_run(store, fail_tool=True)
        expected = run_spans(*load_run(store, rid))
    for _ in range(2):  # the second export sends the same ids
        done = subprocess.run(
            [
                eventlog_script(),
                "otel",
                "export",
                rid.hex,
                "--endpoint",
                phoenix.url,
                "--db",
                str(db),
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        assert done.returncode == 0, done.stderr
    wait_for("Phoenix to store the 4 spans", lambda: len(phoenix.spans(rid)) >= 4)
    spans = phoenix.spans(rid)
    assert sorted(s["span_id"] for s in spans) == sorted(
        f"{s.context.span_id:016x}" for s in expected
    )
    by_name = {s["name"]: s for s in spans}
    root = by_name["invoke_agent coder"]
    assert root.get("parent_span_id") in (None, "")
    assert _attrs(root)["gen_ai.operation.name"] == "invoke_agent"
    assert _attrs(root)["eventlog.run.id"] == str(rid)
    tool = by_name["execute_tool search"]
    assert tool["parent_span_id"] == root["span_id"]
    assert _attrs(tool)["gen_ai.tool.name"] == "search"
    assert tool["status"]["code"] == 2  # ERROR: the tool failed
    chats = [s for s in spans if s["name"] == "chat gpt-4o"]
    assert sorted(_attrs(c)["gen_ai.usage.input_tokens"] for c in chats) in (
        [100, 150],
        ["100", "150"],
    )


FOLLOWER = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])
"""

# Finishes one run per stdin line on store argv[1] (a tool run), printing its id.
FINISHER = """
import sys
from eventlog import RunStore
from eventlog.events import (
    ModelStarted, RunCompleted, Success, ToolExecutionFinished, ToolExecutionStarted,
)
with RunStore.open(sys.argv[1]) as store:
    sid = store.ensure_session()
    for line in sys.stdin:
        run = store.create_run(sid, provider="p", model="m")
        store.append_events(run.id, [ModelStarted("p", "m", 1), ToolExecutionStarted("c", "t"),
            ToolExecutionFinished("c", "t", Success(1), 1), RunCompleted("stop", 1)])
        print(run.id.hex, flush=True)
"""


def test_follow_survives_sigkill_without_losing_or_duplicating_a_span(
    phoenix: Phoenix, tmp_path: Path
) -> None:
    db = tmp_path / "store"
    RunStore.open(db).close()
    env = {**os.environ, "EVENTLOG_DB": str(db)}
    finisher = subprocess.Popen(
        [sys.executable, "-c", FINISHER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert finisher.stdin is not None
    assert finisher.stdout is not None
    runs: list[UUID] = []

    def finish(count: int) -> None:
        for _ in range(count):
            finisher.stdin.write("x\n")  # type: ignore[union-attr]
            finisher.stdin.flush()  # type: ignore[union-attr]
            runs.append(UUID(finisher.stdout.readline().strip()))  # type: ignore[union-attr]

    def start_follower() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                FOLLOWER,
                eventlog_script(),
                "otel",
                "follow",
                "--endpoint",
                phoenix.url,
                "--name",
                "phoenix",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def delivered() -> int:
        return sum(1 for rid in runs if len(phoenix.spans(rid)) == 3)

    rng = random.Random(7)
    try:
        finish(6)
        for _round in range(3):  # kill it mid-stream, more runs finish, restart it
            follower = start_follower()
            target = rng.randint(1, len(runs))
            wait_for(f"{target} runs in Phoenix", lambda: delivered() >= target)  # noqa: B023
            follower.send_signal(signal.SIGKILL)
            follower.wait()
            finish(4)
        follower = start_follower()
        wait_for("every run in Phoenix", lambda: delivered() == len(runs))
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=DEADLINE)
    finally:
        finisher.stdin.close()
        finisher.wait(timeout=DEADLINE)
        finisher.stdout.close()
    counts: Counter[str] = Counter()
    for rid in runs:
        counts.update(s["span_id"] for s in phoenix.spans(rid))
    assert len(counts) == 3 * len(runs) == 3 * 18
    assert set(counts.values()) == {1}  # exactly one copy of each span
    with RunStore.open(db, readonly=True) as store:
        assert [(c.name, c.lag) for c in store.consumers()] == [("phoenix", 0)]

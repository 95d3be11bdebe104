"""The viewer over HTTP: read-only, the token, escaping of hostile data, SSE resume, keyset pages.

Most tests talk to the real ``eventlog ui`` process (the module's ``server``); the token
logic also runs in-process through Starlette's TestClient over the same app.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from starlette.testclient import TestClient

from eventlog import RunStore
from eventlog.ui import run_sections
from eventlog.ui.app import create_app
from eventlog.ui.security import CSP
from eventlog.ui.server import choose_token
from ui.ui_support import HOSTILE_TOOL, XSS, Seeded, Server, append_from_another_process


def get(server: Server, path: str, **kw: object) -> httpx.Response:
    return httpx.get(server.base + path, timeout=10, **kw)  # type: ignore[arg-type]


def test_pages_answer_with_the_security_headers(server: Server, seeded: Seeded) -> None:
    for path in (
        "/",
        f"/runs/{seeded.done}",
        f"/sessions/{seeded.session_id}",
        "/sessions",
        "/streams",
        f"/streams/{seeded.hostile.stream_id}",
        "/health?verify=1",
    ):
        r = get(server, path)
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP
        assert "frame-ancestors 'none'" in CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in r.text  # only <script src=...> from the server
    assert "verified: consistent" in get(server, "/health?verify=1").text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_every_other_method_is_405(server: Server, seeded: Seeded, method: str) -> None:
    for path in ("/", f"/runs/{seeded.done}", "/healthz", "/nowhere"):
        r = httpx.request(method, server.base + path, timeout=10)
        assert r.status_code == 405, (method, path)
        assert r.headers["allow"] == "GET, HEAD"


def test_filters_and_counts(server: Server, seeded: Seeded) -> None:
    page = get(server, "/?status=failed").text
    assert str(seeded.failed)[:8] in page
    assert str(seeded.done)[:8] not in page
    page = get(server, "/?model=gpt-4o&provider=openai").text
    assert str(seeded.done)[:8] in page
    assert str(seeded.failed)[:8] not in page
    counts = get(server, "/").text
    assert re.search(r"failed <b>2</b>", counts), counts  # the seeded one and the hostile one
    found = get(server, "/?q=timed+out").text
    assert 'id="hits"' in found
    assert "result.error" in found
    bad = get(server, "/?q=time(d")
    assert bad.status_code == 400
    assert "pattern" in bad.text


def test_hostile_data_is_escaped_everywhere(server: Server, seeded: Seeded) -> None:
    pages = [
        f"/runs/{seeded.xss}",
        f"/runs/{seeded.hostile.run_id}",
        f"/sessions/{seeded.hostile.session_id}",
        f"/streams/{seeded.hostile.stream_id}",
        "/",
        "/sessions",
        "/streams",
    ]
    for path in pages:
        text = get(server, path).text
        for raw in ("<script>window", "<img src=x", "<svg", 'href="javascript:'):
            assert raw not in text, (path, raw)
        for char in ("\u202e", "\x1b", "\x00"):
            assert char not in text, (path, char)
    run = get(server, f"/runs/{seeded.xss}").text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in run
    assert "&#34;&#39;&gt;&lt;svg onload=window.__xss=3&gt;" in run
    session = get(server, f"/sessions/{seeded.hostile.session_id}").text
    assert '<span class="esc">\\r</span>' in session  # a CR in a message is shown
    assert '<span class="esc">\\n</span>' not in session  # the JSON blocks keep their lines
    hostile = get(server, f"/runs/{seeded.hostile.run_id}").text
    assert '<span class="esc">\\u202e</span>' in hostile
    assert '<span class="esc">\\x1b</span>' in hostile
    # JSON stays exact: the event's stored text comes back as it was
    doc = get(server, f"/streams/{seeded.xss}/events/3").json()
    assert doc["payload"]["delta"] == XSS


def section(page: str, name: str) -> str:
    """The ``<section id=name>`` of a page (fails when it is not there)."""
    found = re.search(rf'<section class="[^"]*" id="{name}">.*?</section>', page, re.S)
    assert found is not None, (name, page[:300])
    return found.group()


def test_lineage_links_parent_ancestors_and_forks(server: Server, seeded: Seeded) -> None:
    root, child, grandchild = seeded.root, seeded.child, seeded.grandchild
    page = get(server, f"/runs/{grandchild}").text
    lineage = section(page, "lineage")
    assert f'id="lineage-parent" href="/runs/{child}"' in lineage
    assert f'href="/runs/{child}?from=1#seq-3">seq 3</a>' in lineage  # the fork point
    ancestors = re.findall(r'class="ancestor" href="/runs/([0-9a-f-]+)"', lineage)
    assert ancestors == [str(root), str(child)]  # root first, up to the parent
    assert "no forks of this run" in lineage
    middle = section(get(server, f"/runs/{child}").text, "lineage")
    assert f'id="lineage-parent" href="/runs/{root}"' in middle
    assert re.findall(r'class="fork-link" href="/runs/([0-9a-f-]+)"', middle) == [str(grandchild)]
    top = section(get(server, f"/runs/{root}").text, "lineage")
    assert "an original run" in top
    assert re.findall(r'class="fork-link" href="/runs/([0-9a-f-]+)"', top) == [str(child)]
    # a run with neither parent nor forks has no lineage section, no unresolved section
    plain = get(server, f"/runs/{seeded.done}").text
    assert 'id="lineage"' not in plain
    assert 'id="unresolved"' not in plain
    # the runs page says which runs are forks, with a link to the parent
    runs = get(server, "/").text
    row = re.search(rf'href="/runs/{grandchild}">.*?</tr>', runs, re.S)
    assert row is not None
    assert f'fork of <a class="parent-link" href="/runs/{child}">' in row.group()


def test_unresolved_tool_calls_flagged_and_escaped(server: Server, seeded: Seeded) -> None:
    page = get(server, f"/runs/{seeded.grandchild}").text
    unresolved = section(page, "unresolved")
    assert "effects unknown" in unresolved
    assert unresolved.count('class="unresolved-call"') == 1
    assert f'href="/runs/{seeded.grandchild}?from=1#seq-5">seq 5</a>' in unresolved  # started
    for raw in ("<script>window", "<img src=x", "<svg", "\u202e"):
        assert raw not in unresolved, raw
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in unresolved  # the tool name, the id
    assert "onerror=\\&#34;window.__xss=2\\&#34;" in unresolved  # the arguments' JSON
    assert '<span class="esc">\\u202e</span>dcba' in unresolved
    assert 'id="unresolved"' not in get(server, f"/runs/{seeded.child}").text
    # the ledger holds the call's exact strings; only the HTML escapes them
    with RunStore.open(seeded.db, readonly=True) as store:
        (call,) = store.unresolved_tool_calls(seeded.grandchild)
    assert (call.tool_name, call.arguments) == (HOSTILE_TOOL, {"cmd": XSS})


def test_runs_page_unresolved_filter_and_marker(server: Server, seeded: Seeded) -> None:
    only = get(server, "/?unresolved=1").text
    listed = re.findall(r'class="run-link" href="/runs/([0-9a-f-]+)"', only)
    assert str(seeded.grandchild) in listed
    assert str(seeded.hostile.run_id) in listed  # the hostile store leaves one executing
    assert str(seeded.done) not in listed
    assert only.count('class="unresolved-mark"') == len(listed)
    assert 'id="f-unresolved" value="1" checked' in only
    every = get(server, "/").text
    marked = re.findall(
        r'href="/runs/([0-9a-f-]+)">[0-9a-f]{8}</a>\s*<span class="unresolved-mark"', every
    )
    assert sorted(marked) == sorted(listed)
    status = get(server, "/?unresolved=1&status=failed").text
    failed = re.findall(r'class="run-link" href="/runs/([0-9a-f-]+)"', status)
    assert failed == [str(seeded.hostile.run_id)]  # filters combine
    assert get(server, "/?unresolved=maybe").status_code == 400


def test_unresolved_marks_past_the_index_walk(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RunStore.open(seeded.db, readonly=True) as store:
        runs = store.list_runs_filtered(limit=100)
        expected = {r.id for r in runs if store.unresolved_tool_calls(r.id)}
        assert expected == {seeded.grandchild, seeded.hostile.run_id}
        assert run_sections.unresolved_marks(store, runs) == expected
        # the walk stops after one such run: the older rows are checked one by one
        monkeypatch.setattr(run_sections, "MARK_WALK", 1)
        assert run_sections.unresolved_marks(store, runs) == expected
        assert run_sections.unresolved_marks(store, runs[:1]) == expected & {runs[0].id}
        assert run_sections.unresolved_marks(store, []) == set()


def test_time_travel_state_and_changes(server: Server, seeded: Seeded) -> None:
    doc = get(server, f"/runs/{seeded.done}/state?seq=4").json()
    assert doc["seq"] == 4
    assert doc["type"] == "TextDelta"
    assert doc["state"]["assistant_text"] == "Let me search."
    assert {"field": "assistant_text", "old": "Let me ", "new": "Let me search."} in doc["changes"]
    start = get(server, f"/runs/{seeded.done}/state?seq=0").json()
    assert start["seq"] == 0
    assert start["changes"] == []
    assert get(server, f"/runs/{seeded.done}/state?seq=x").status_code == 400


def sse(server: Server, path: str, headers: dict[str, str], until: int) -> Iterator[dict[str, str]]:
    """The SSE messages of ``path`` (id and data) until one has id ``until``."""
    with httpx.stream("GET", server.base + path, headers=headers, timeout=15) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        message: dict[str, str] = {}
        for line in r.iter_lines():
            if line == "":
                if "data" in message:
                    yield message
                    if message.get("id") == str(until):
                        return
                message = {}
                continue
            field, _, value = line.partition(": ")
            if field in ("id", "data", "event"):
                message[field] = value


def test_sse_resumes_after_last_event_id_with_no_gap_and_no_duplicate(
    server: Server, seeded: Seeded
) -> None:
    with RunStore.open(seeded.db, readonly=True) as store:
        last = store.read_stream(seeded.hostile.run_id, reverse=True, limit=1)[0].seq
    got = list(sse(server, f"/events/{seeded.hostile.run_id}", {"Last-Event-ID": "2"}, last))
    assert [int(m["id"]) for m in got] == list(range(3, last + 1))
    assert all(m["event"] == "event" for m in got)
    assert json.loads(got[0]["data"])["seq"] == 3
    # ?after= when there is no Last-Event-ID; the header wins when both are there
    again = list(sse(server, f"/events/{seeded.hostile.run_id}?after=5", {}, last))
    assert [int(m["id"]) for m in again] == list(range(6, last + 1))
    path = f"/events/{seeded.hostile.run_id}?after=1"
    both = list(sse(server, path, {"Last-Event-ID": "6"}, last))
    assert [int(m["id"]) for m in both] == list(range(7, last + 1))
    assert get(server, "/events/not-an-id").status_code == 400
    assert get(server, f"/events/{uuid4()}").status_code == 404


def test_sse_delivers_appends_of_another_process(server: Server, seeded: Seeded) -> None:
    with RunStore.open(seeded.db, readonly=True) as store:
        last = store.read_stream(seeded.live, reverse=True, limit=1)[0].seq
    messages = sse(server, f"/events/{seeded.live}", {"Last-Event-ID": str(last)}, last + 2)
    append_from_another_process(seeded.db, seeded.live, "one")
    first = next(messages)  # stored before the stream opened: the catch-up sends it
    append_from_another_process(seeded.db, seeded.live, "two")
    second = next(messages)  # appended while the stream waits: the wake-up sends it
    assert (int(first["id"]), int(second["id"])) == (last + 1, last + 2)
    assert json.loads(second["data"])["payload"]["delta"] == "two"


def test_a_token_is_required_off_loopback(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTLOG_UI_TOKEN", "from-env")
    assert choose_token("0.0.0.0", None) == "from-env"
    assert choose_token("0.0.0.0", "flag") == "flag"
    monkeypatch.delenv("EVENTLOG_UI_TOKEN")
    assert choose_token("127.0.0.1", None) is None
    assert choose_token("::1", None) is None
    assert choose_token("0.0.0.0", None)  # generated
    assert choose_token("127.0.0.1", "given") == "given"
    srv = Server(seeded.db, host="0.0.0.0")
    try:
        banner = srv.read_banner()
        token = re.search(r"\?token=(\S+)", banner)
        assert token is not None, banner
        srv.wait_ready()
        assert get(srv, "/").status_code == 401
        assert get(srv, "/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = get(srv, "/", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert ok.status_code == 200
        assert get(srv, f"/events/{seeded.done}").status_code == 401
    finally:
        srv.stop()


def test_token_cookie_from_a_first_visit(seeded: Seeded) -> None:
    with RunStore.open(seeded.db, readonly=True) as store:
        app = create_app(store, token="s3cret")
        with TestClient(app, base_url="http://192.0.2.1:8765") as client:
            assert client.get("/").status_code == 401
            assert client.get("/?token=nope", follow_redirects=False).status_code == 401
            first = client.get("/?token=s3cret&status=failed", follow_redirects=False)
            assert first.status_code == 303
            assert first.headers["location"] == "/?status=failed"  # the token leaves the URL
            assert "HttpOnly" in first.headers["set-cookie"]
            assert client.get("/?status=failed").status_code == 200  # the cookie is sent
            assert client.get("/", headers={"X-Eventlog-Token": "s3cret"}).status_code == 200
            redirect = client.get("/a//b?token=s3cret", follow_redirects=False)
            assert redirect.headers["location"] == "/a//b"


def test_loopback_without_token_answers_to_loopback_names_only(seeded: Seeded) -> None:
    with RunStore.open(seeded.db, readonly=True) as store:
        app = create_app(store)
        with TestClient(app, base_url="http://localhost:8765") as client:
            assert client.get("/healthz").status_code == 200
            rebound = client.get("/healthz", headers={"Host": "evil.example:8765"})
            assert rebound.status_code == 400


def test_keyset_pages_cover_every_run_once(seeded: Seeded) -> None:
    with RunStore.open(seeded.db, readonly=True) as store:
        every = [r.id for r in store.list_runs_filtered(limit=1000)]
        pages: list[object] = []
        after = None
        while True:
            page = store.list_runs_filtered(limit=2, after=after)
            pages.extend(r.id for r in page)
            if len(page) < 2:
                break
            after = page[-1].id
        assert pages == every
        failed = store.list_runs_filtered(status="failed")
        assert store.list_runs_filtered(status="failed", after=failed[0].id) == failed[1:]


def test_without_the_extra_the_command_names_it(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'uvicorn' else real(n, *a)\n"
        "from eventlog.cli import main\n"
        "sys.argv = ['eventlog', 'ui', '--db', sys.argv[1]]\n"
        "main()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert "pip install 'agent-eventlog[ui]'" in out.stderr
    assert "uvicorn not installed" in out.stderr

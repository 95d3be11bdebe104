"""The viewer's Starlette app: routes, templates and error pages over one open store.

:func:`create_app` takes an open :class:`~eventlog.RunStore` (read-only is enough) and an
optional token, and returns the ASGI app wrapped in :class:`~eventlog.ui.security.Guard`.
Page handlers are plain functions (Starlette runs them in its thread pool: store reads never
block the event loop); the live stream is async (:mod:`eventlog.ui.live`).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import UUID

import jinja2
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from eventlog.errors import EventLogError, QueryError, RunNotFound, StreamNotFound
from eventlog.ui import views
from eventlog.ui.html import href, render, render_multiline
from eventlog.ui.live import resume_point, sse_events
from eventlog.ui.security import Guard

if TYPE_CHECKING:
    from eventlog.store.run_store import RunStore

__all__ = ["create_app"]

HERE = Path(__file__).parent


def _finalize(value: Any) -> Any:
    # every {{ expression }} passes here before autoescape: the one rendering helper
    return render(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["multiline"] = render_multiline
    env.filters["href"] = href
    env.filters["pretty"] = views.pretty
    env.filters["ms"] = _ms
    env.filters["when"] = lambda ts: "" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S")
    env.filters["qs"] = lambda params: urlencode(params)
    env.filters["short"] = lambda value, n=120: _short(value, n)
    env.globals["seq_href"] = views.seq_href
    return env


def _ms(value: int | None) -> str:
    if value is None:
        return "-"
    if value < 1000:
        return f"{value} ms"
    return f"{value / 1000:.1f} s" if value < 60_000 else f"{value / 60_000:.1f} min"


def _short(value: Any, n: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"


class _Viewer:
    """The handlers, bound to one store and one template environment."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.env = _environment()

    def page(self, name: str, status: int = 200, **context: Any) -> Response:
        html = self.env.get_template(name).render(**context)
        return Response(html, status, media_type="text/html; charset=utf-8")

    def error(self, status: int, message: str) -> Response:
        return self.page("error.html", status, title="error", message=message)

    def _run_id(self, text: str) -> UUID:
        try:
            return UUID(text)
        except ValueError:
            found = self.store.find_runs(text, limit=2) if len(text) >= 4 else []
            if len(found) == 1:
                return found[0]
            raise QueryError(
                "run", text, "give a run id or a unique prefix (4+ hex digits)"
            ) from None

    # -- pages -----------------------------------------------------------------------------
    def runs(self, request: Request) -> Response:
        filters = views.RunsFilters.parse(request.query_params)
        page = views.runs_page(self.store, filters)
        return self.page("runs.html", title="runs", page=page, statuses=views.STATUSES)

    def run(self, request: Request) -> Response:
        rid = self._run_id(request.path_params["run_id"])
        raw = request.query_params.get("from", "1")
        page = views.run_page(self.store, rid, first_seq=int(raw) if raw.isdigit() else 1)
        return self.page("run.html", title=f"run {str(rid)[:8]}", page=page)

    def state(self, request: Request) -> Response:
        rid = self._run_id(request.path_params["run_id"])
        raw = request.query_params.get("seq", "0")
        if not raw.isdigit():
            raise QueryError("seq", raw, "give a seq >= 0")
        at = views.state_at(self.store, rid, int(raw))
        return JSONResponse(msgspec.to_builtins(at.__dict__))

    def event(self, request: Request) -> Response:
        sid = _uuid(request.path_params["stream_id"])
        seq = int(request.path_params["seq"])
        found = self.store.read_stream(sid, after_seq=max(seq - 1, 0), to_seq=seq)
        if not found:
            return JSONResponse({"error": f"no event {seq} in stream {sid}"}, 404)
        return JSONResponse(views.event_json(found[0]))

    def sessions(self, request: Request) -> Response:
        return self.page(
            "sessions.html", title="sessions", sessions=views.sessions_list(self.store)
        )

    def session(self, request: Request) -> Response:
        sid = _uuid(request.path_params["session_id"])
        page = views.session_page(self.store, sid)
        if page is None:
            return self.error(404, f"session {sid} not found")
        return self.page("session.html", title=f"session {str(sid)[:8]}", page=page)

    def streams(self, request: Request) -> Response:
        return self.page("streams.html", title="streams", kinds=views.streams_page(self.store))

    def stream(self, request: Request) -> Response:
        sid = _uuid(request.path_params["stream_id"])
        page = views.stream_page(self.store, sid)
        if page is None:
            return self.error(404, f"stream {sid} not found")
        return self.page("stream.html", title=f"stream {str(sid)[:8]}", page=page)

    def health(self, request: Request) -> Response:
        verify = request.query_params.get("verify") == "1"
        page = views.health_page(self.store, verify=verify)
        return self.page("health.html", title="health", page=page)

    async def live(self, request: Request) -> Response:
        try:
            sid = _uuid(request.path_params["stream_id"])
        except QueryError as exc:
            return PlainTextResponse(f"{exc}\n", 400)
        try:  # a stream that does not exist is a 404 before the event stream starts
            await asyncio.to_thread(self.store.read_stream, sid, limit=1)
        except StreamNotFound as exc:
            return PlainTextResponse(f"{exc}\n", 404)
        after = resume_point(
            request.headers.get("last-event-id"), request.query_params.get("after")
        )
        return StreamingResponse(
            sse_events(self.store, sid, after),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise QueryError("id", text, "give a full id") from None


def create_app(store: RunStore, *, token: str | None = None) -> Guard:
    """The viewer over ``store`` (``token``: required on every request when given)."""
    viewer = _Viewer(store)

    def handle(fn: Any) -> Any:
        def endpoint(request: Request) -> Response:
            try:
                response: Response = fn(request)
            except (RunNotFound, StreamNotFound) as exc:
                return viewer.error(404, str(exc))
            except EventLogError as exc:
                return viewer.error(400, str(exc))
            return response

        return endpoint

    routes = [
        Route("/", handle(viewer.runs)),
        Route("/runs/{run_id}", handle(viewer.run)),
        Route("/runs/{run_id}/state", handle(viewer.state)),
        Route("/streams/{stream_id}/events/{seq:int}", handle(viewer.event)),
        Route("/sessions", handle(viewer.sessions)),
        Route("/sessions/{session_id}", handle(viewer.session)),
        Route("/streams", handle(viewer.streams)),
        Route("/streams/{stream_id}", handle(viewer.stream)),
        Route("/health", handle(viewer.health)),
        Route("/healthz", lambda request: PlainTextResponse("ok\n")),
        Route("/events/{stream_id}", viewer.live),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    return Guard(app, token=token)

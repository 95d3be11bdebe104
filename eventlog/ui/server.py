"""Run the viewer: open the store read-only, pick the token, serve with uvicorn.

``eventlog ui`` calls :func:`serve`. On a loopback host no token is needed (unless given);
on any other host a token is required: ``--token``, else ``EVENTLOG_UI_TOKEN``, else a fresh
one, printed in the URL to open.
"""

from __future__ import annotations

import os
import sys
import webbrowser

__all__ = ["TOKEN_ENV", "choose_token", "serve"]

#: The environment variable a token may come from (``--token`` wins).
TOKEN_ENV = "EVENTLOG_UI_TOKEN"


def choose_token(host: str, given: str | None) -> str | None:
    """The token the server requires (None: none, loopback without one given)."""
    from eventlog.ui.security import is_loopback, new_token

    token = given or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        token = new_token()
    return token


def serve(db: str, *, host: str, port: int, open_browser: bool, token: str | None) -> None:
    """Serve the viewer of store ``db`` on ``host:port`` until interrupted."""
    import uvicorn

    from eventlog.store.run_store import RunStore
    from eventlog.ui.app import create_app

    required = choose_token(host, token)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={required}" if required else "")
    with RunStore.open(db, readonly=True) as store:
        app = create_app(store, token=required)
        print(f"eventlog ui: {db} at {url}", file=sys.stderr, flush=True)
        if required:
            print(
                "  every request needs the token (the URL above sets a cookie, or send "
                "Authorization: Bearer <token>)",
                file=sys.stderr,
                flush=True,
            )
        if open_browser:
            webbrowser.open(url)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
            access_log=False,
        )

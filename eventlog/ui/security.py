"""The viewer's guard: read-only methods, a token off loopback, and the security headers.

:class:`Guard` is pure ASGI middleware around the whole app. Every response carries a
Content-Security-Policy that allows scripts from the server only (no inline script, no
``eval``), ``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``. A method other than GET or HEAD is 405. With a token
(always when the server listens on another address than loopback), each request must carry
it: ``Authorization: Bearer T``, the ``X-Eventlog-Token`` header, or the cookie that a first
visit with ``?token=T`` sets (that visit is redirected to the same URL without the token).
Tokens are compared in constant time. Without a token (loopback), the ``Host`` header must
name a loopback host, so that a web page cannot reach the viewer through DNS rebinding.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["COOKIE", "CSP", "Guard", "is_loopback", "new_token"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "eventlog_token"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
_LOCAL_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}


def new_token() -> str:
    """A fresh random token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True if ``host`` (an address or ``localhost``) is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class Guard:
    """The middleware (see the module docstring); ``token=None``: loopback, no token."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on with the security headers added."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        if scope["method"] not in ("GET", "HEAD"):
            await _plain(
                send_with_headers, 405, "read-only viewer: only GET", [(b"allow", b"GET, HEAD")]
            )
            return
        verdict = self._check(scope)
        if verdict == "ok":
            await self.app(scope, receive, send_with_headers)
        elif verdict == "set-cookie":
            await self._set_cookie(scope, send_with_headers)
        elif verdict == "bad-host":
            await _plain(send_with_headers, 400, "this viewer answers to localhost only")
        else:
            await _plain(
                send_with_headers,
                401,
                "token required: open the URL eventlog ui printed (?token=...), or send "
                "Authorization: Bearer <token>",
            )

    def _check(self, scope: Scope) -> str:
        if self.token is None:
            host = (_header(scope, b"host") or "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            return "ok" if name in _LOCAL_NAMES or not host else "bad-host"
        given = _header(scope, b"authorization")
        if given is not None and given.startswith("Bearer "):
            return "ok" if self._same(given[7:]) else "denied"
        given = _header(scope, b"x-eventlog-token")
        if given is not None:
            return "ok" if self._same(given) else "denied"
        query = dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1")))
        if "token" in query:
            return "set-cookie" if self._same(query["token"]) else "denied"
        cookie = SimpleCookie()
        try:
            cookie.load(_header(scope, b"cookie") or "")
        except Exception:  # a malformed cookie header: no token
            return "denied"
        morsel = cookie.get(COOKIE)
        return "ok" if morsel is not None and self._same(morsel.value) else "denied"

    def _same(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _set_cookie(self, scope: Scope, send: Send) -> None:
        assert self.token is not None
        query = [
            (k, v)
            for k, v in parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1"))
            if k != "token"
        ]
        # one leading slash: "//host" would send the browser elsewhere
        path = "/" + str(scope.get("path", "/")).lstrip("/")
        location = path + (f"?{urlencode(query)}" if query else "")
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await _plain(
            send,
            303,
            "token accepted",
            [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
        )


async def _plain(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

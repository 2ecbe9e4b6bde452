"""ASGI middleware: a cap on request bodies, and the security headers of every answer."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.csp import LOCKED, page_policy

CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """413 for a body over `max_bytes`: at once when Content-Length says so, else as soon as
    the streamed (chunked) bytes pass it. The body is read before the app runs, at most
    `max_bytes` plus one chunk of it, so a huge body never reaches memory."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        messages = None if declared and declared > self.max_bytes else await self._read(receive)
        if messages is None:
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)

    async def _read(self, receive: Receive) -> list[Message] | None:
        """The body's messages, or None once they pass the limit (the rest is never read)."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # the client went away: the app sees that
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return messages

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body too large: at most {self.max_bytes} bytes"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


class SecurityHeaders:
    """nosniff everywhere; a Content-Security-Policy (HTML pages: what the page loads,
    anything else: nothing); no-store on answers to a request that carried a key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        keyed = any(name in CREDENTIAL_HEADERS for name, _ in scope["headers"])
        await self.app(scope, receive, _Headed(send, keyed=keyed))


class _Headed:
    """The `send` of one request: adds the headers, holding an HTML page back until its
    body is whole (its policy is read off the page)."""

    def __init__(self, send: Send, *, keyed: bool) -> None:
        self.send = send
        self.keyed = keyed
        self.start: Message | None = None
        self.html: list[bytes] | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._start(message)
        elif message["type"] == "http.response.body" and self.html is not None:
            await self._page_part(message)
        else:
            await self.send(message)

    async def _start(self, message: Message) -> None:
        headers = MutableHeaders(scope=message)
        headers["X-Content-Type-Options"] = "nosniff"
        headers.setdefault("Referrer-Policy", "no-referrer")
        if self.keyed or message["status"] in (401, 403):
            headers["Cache-Control"] = "no-store"
        if headers.get("content-type", "").startswith("text/html"):
            self.start, self.html = message, []
            return
        headers["Content-Security-Policy"] = LOCKED
        await self.send(message)

    async def _page_part(self, message: Message) -> None:
        assert self.html is not None and self.start is not None
        self.html.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        page = b"".join(self.html)
        policy = page_policy(page.decode("utf-8", "replace"))
        MutableHeaders(scope=self.start)["Content-Security-Policy"] = policy
        await self.send(self.start)
        await self.send({"type": "http.response.body", "body": page})

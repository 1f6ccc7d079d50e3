"""What every request and response passes first: the body limit, NUL bytes in the URL,
and the security headers.

A pure ASGI middleware, because the body limit must also hold for a body sent chunked
(no Content-Length): the bytes are counted as the application reads them.
"""

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_BODY_LIMIT = 1 * 2**20
UPLOAD_PATH = "/api/documents"

# No inline script or style anywhere in the UI, so the policy can forbid both.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class _TooLarge(HTTPException):
    """Raised while reading the body; an HTTPException so the framework answers 413 as is."""

    def __init__(self, limit: int):
        super().__init__(413, _too_large(limit))


class Edge:
    """Refuses bodies over the limit (declared or counted) and NUL in the URL; adds headers."""

    def __init__(self, app: ASGIApp, upload_limit: int):
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("raw_path", b"") or b"%00" in scope.get("query_string", b""):
            await _refuse(send, 400, "NUL characters are not allowed in the URL")
            return
        limit = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, _too_large(limit))
            return
        received, started = 0, False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLarge(limit)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = _with_security_headers(message.get("headers", []))
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_headers)
        except _TooLarge:
            if started:
                raise
            await _refuse(send, 413, _too_large(limit))

    def _limit(self, scope: Scope) -> int:
        if scope["path"] == UPLOAD_PATH:
            return self.upload_limit + 2**20  # the file plus the form's other fields
        return JSON_BODY_LIMIT


def _too_large(limit: int) -> str:
    return f"request body over the {limit // 2**20} MiB limit"


def _with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    extra = [h for h in SECURITY_HEADERS if h[0] not in names]
    content_type = dict(headers).get(b"content-type", b"")
    if content_type.startswith(b"text/html") and b"content-security-policy" not in names:
        extra.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
    return [*headers, *extra]


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _with_security_headers(headers),
        }
    )
    await send({"type": "http.response.body", "body": body})

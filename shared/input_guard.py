"""Bounded input at the door of every service: sizes, characters and numbers.

Every request passes here before any route sees it. What is too large is refused by its
size alone (413 body, 414 address, 431 headers); what holds a character no service can
store (a NUL, an unpaired surrogate, bytes that are not UTF-8) or a number JSON does not
carry exactly is refused with a 4xx and the reason, as problem+json in both languages.
Without this, a NUL in a query string reached PostgreSQL, which refuses NUL in text, and
the client saw a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import exact_json
from shared.http import problem_response


@dataclass(frozen=True)
class InputLimits:
    """The most a request may carry. A body becomes events of at most a megabyte."""

    max_body_bytes: int = 1024 * 1024
    max_uri_bytes: int = 8 * 1024
    """The path and the query string together."""
    max_header_bytes: int = 16 * 1024
    """All header names and values together (a token is one or two kilobytes)."""
    max_headers: int = 64


@dataclass(frozen=True)
class _Refusal:
    status: int
    code: str
    detail: str


# RFC 9110 §5.5: a field value holds no NUL, CR, LF or other control character but HTAB.
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09} | {0x7F}


def _undecodable(raw: bytes, what: str) -> _Refusal | None:
    """A refusal if percent-decoded `raw` is not UTF-8 (surrogates included) or holds NUL."""
    decoded = unquote_to_bytes(raw.replace(b"+", b" "))
    if b"\x00" in decoded:
        return _Refusal(400, "invalid_characters", f"the {what} holds a NUL character")
    try:
        decoded.decode("utf-8")  # strict: an encoded surrogate (CESU-8) is refused too
    except UnicodeDecodeError:
        return _Refusal(400, "invalid_characters", f"the {what} is not UTF-8")
    return None


def _judge_head(scope: Scope, limits: InputLimits) -> _Refusal | None:
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    raw_path = raw_path.split(b"?", 1)[0]
    query: bytes = scope.get("query_string", b"")
    if len(raw_path) + len(query) > limits.max_uri_bytes:
        return _Refusal(
            414, "uri_too_long", f"the address is longer than {limits.max_uri_bytes} bytes"
        )
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    if len(headers) > limits.max_headers:
        return _Refusal(431, "headers_too_large", f"more than {limits.max_headers} headers")
    if sum(len(name) + len(value) for name, value in headers) > limits.max_header_bytes:
        return _Refusal(
            431, "headers_too_large", f"the headers exceed {limits.max_header_bytes} bytes"
        )
    for name, value in headers:
        if not _CONTROL_BYTES.isdisjoint(value):
            return _Refusal(
                400, "invalid_characters", f"header {name.decode('latin-1')} holds a control byte"
            )
    return _undecodable(raw_path, "path") or _undecodable(query, "query string")


def _judge_body(body: bytes, content_type: str) -> _Refusal | None:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        return _undecodable(body, "form")
    # FastAPI reads a body without a content type as JSON too.
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        return None
    try:
        exact_json.check(body)
    except exact_json.InexactJson as refusal:
        if refusal.kind == "number":
            return _Refusal(422, "inexact_number", refusal.reason)
        if refusal.kind == "character":
            return _Refusal(400, "invalid_characters", refusal.reason)
        return _Refusal(400, "invalid_request", refusal.reason)
    return None


class InputGuard:
    """ASGI middleware refusing what exceeds `InputLimits` or cannot be stored or read
    exactly, before the app sees it; the body is read (bounded) and handed on intact."""

    def __init__(self, app: ASGIApp, limits: InputLimits | None = None) -> None:
        self.app = app
        self.limits = limits or InputLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _judge_head(scope, self.limits)
        if refusal is not None:
            await _refuse(refusal, scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body: nothing more to judge
            return
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            await _refuse(self._too_large(), scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: no one to answer
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                await _refuse(self._too_large(), scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            refusal = _judge_body(body, headers.get(b"content-type", b"").decode("latin-1"))
            if refusal is not None:
                await _refuse(refusal, scope, receive, send)
                return
        await self.app(scope, _replaying(body, receive), send)

    def _too_large(self) -> _Refusal:
        limit = self.limits.max_body_bytes
        return _Refusal(413, "request_too_large", f"the body exceeds {limit} bytes")


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then whatever follows."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(refusal: _Refusal, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(Request(scope), refusal.status, refusal.code, refusal.detail)
    await response(scope, receive, send)

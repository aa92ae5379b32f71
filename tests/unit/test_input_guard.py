"""Bounded input at the door: sizes, characters and numbers refused before any route.

The guard is driven with raw ASGI messages, so what a polite client library would never
send (a NUL in a header, an encoded surrogate) reaches it exactly as a hostile one sends it.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from shared.http import PROBLEM_JSON, install_problem_handlers
from shared.input_guard import InputGuard, InputLimits
from shared.messages import MESSAGES

LIMITS = InputLimits(max_body_bytes=1000, max_uri_bytes=200, max_header_bytes=600, max_headers=8)


class Note(BaseModel):
    text: str
    count: int = 0


def guarded_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(InputGuard, limits=LIMITS)

    @app.get("/search")
    async def search(q: str = "") -> dict[str, str]:
        return {"q": q}

    @app.post("/notes")
    async def add_note(note: Note) -> dict[str, Any]:
        return note.model_dump()

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return app


APP = guarded_app()


async def call(
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: list[bytes] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """Send one request as raw ASGI messages; (status, headers, decoded JSON body)."""
    pending = list(chunks or [b""])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query,
        "root_path": "",
        "headers": headers or [],
        "server": ("test", 80),
        "client": ("198.51.100.7", 40000),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await APP(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, json.loads(body)


def json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


def assert_problem(
    response: tuple[int, dict[str, str], Any], status: int, code: str
) -> dict[str, Any]:
    got_status, headers, body = response
    assert (got_status, body["code"]) == (status, code), body
    assert headers["content-type"] == PROBLEM_JSON
    assert body["messages"] == MESSAGES[code]
    assert set(body["messages"]) == {"fa", "en"}
    problem: dict[str, Any] = body
    return problem


async def test_a_nul_in_a_query_string_is_a_400_not_a_server_error() -> None:
    problem = assert_problem(
        await call("GET", "/search", query=b"q=%00%C2%AA"), 400, "invalid_characters"
    )
    assert problem["title"] == MESSAGES["invalid_characters"]["fa"]


@pytest.mark.parametrize(
    "query",
    [b"q=%ED%A0%80", b"q=%FF", b"q=a\x00b", b"q=%00", b"x=1&q=ok%00"],
    ids=["encoded-surrogate", "not-utf8", "raw-nul", "encoded-nul", "second-field"],
)
async def test_query_strings_that_no_service_can_store_are_refused(query: bytes) -> None:
    assert_problem(await call("GET", "/search", query=query), 400, "invalid_characters")


async def test_a_nul_in_the_path_is_refused() -> None:
    assert_problem(await call("GET", "/search%00"), 400, "invalid_characters")


async def test_a_control_byte_in_a_header_value_is_refused() -> None:
    headers = [(b"x-request-id", b"abc\x00def")]
    assert_problem(await call("GET", "/search", headers=headers), 400, "invalid_characters")


async def test_too_many_or_too_large_headers_are_a_431() -> None:
    many = [(f"x-h{i}".encode(), b"1") for i in range(9)]
    assert_problem(await call("GET", "/search", headers=many), 431, "headers_too_large")
    large = [(b"authorization", b"Bearer " + b"a" * 700)]
    assert_problem(await call("GET", "/search", headers=large), 431, "headers_too_large")


async def test_an_address_longer_than_the_limit_is_a_414() -> None:
    assert_problem(await call("GET", "/search", query=b"q=" + b"a" * 300), 414, "uri_too_long")


async def test_a_body_declared_larger_than_the_limit_is_a_413_in_both_languages() -> None:
    body = json.dumps({"text": "x" * 2000}).encode()
    problem = assert_problem(
        await call(
            "POST",
            "/notes",
            headers=[*json_headers(body), (b"accept-language", b"en")],
            chunks=[body],
        ),
        413,
        "request_too_large",
    )
    assert problem["title"] == MESSAGES["request_too_large"]["en"]


async def test_a_chunked_body_that_grows_past_the_limit_is_a_413() -> None:
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    chunks = [b'{"text": "', *[b"y" * 300] * 4, b'"}']
    assert_problem(
        await call("POST", "/notes", headers=headers, chunks=chunks), 413, "request_too_large"
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"text": "a", "count": 9007199254740993}', 422, "inexact_number"),
        (b'{"text": "a", "count": NaN}', 422, "inexact_number"),
        (b'{"text": "a", "count": 1e999}', 422, "inexact_number"),
        (b'{"text": "a\\u0000"}', 400, "invalid_characters"),
        (b'{"text": "\\udfff"}', 400, "invalid_characters"),
        (b'{"text": ' + b"[" * 300 + b"]" * 300 + b"}", 400, "invalid_request"),
    ],
    ids=["integer-beyond-2^53", "nan", "overflow", "nul", "lone-surrogate", "deep-nesting"],
)
async def test_json_bodies_with_what_json_does_not_carry_exactly_are_refused(
    body: bytes, status: int, code: str
) -> None:
    assert_problem(
        await call("POST", "/notes", headers=json_headers(body), chunks=[body]), status, code
    )


async def test_a_form_body_with_a_nul_is_refused() -> None:
    body = b"grant_type=password&username=a%00b"
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    assert_problem(
        await call("POST", "/raw", headers=headers, chunks=[body]), 400, "invalid_characters"
    )


async def test_good_requests_reach_their_route_with_the_body_intact() -> None:
    body = json.dumps({"text": "سلام 😀", "count": 9007199254740991}).encode()
    status, _, answer = await call(
        "POST", "/notes", headers=json_headers(body), chunks=[body[:10], body[10:]]
    )
    assert (status, answer) == (200, {"text": "سلام 😀", "count": 9007199254740991})
    status, _, answer = await call("GET", "/search", query=b"q=" + quote("تهران").encode())
    assert (status, answer) == (200, {"q": "تهران"})
    exactly = b"z" * LIMITS.max_body_bytes
    headers = [(b"content-type", b"application/octet-stream")]
    status, _, answer = await call(
        "POST", "/raw", headers=[*headers, (b"content-length", b"1000")], chunks=[exactly]
    )
    assert (status, answer) == (200, {"received": 1000})

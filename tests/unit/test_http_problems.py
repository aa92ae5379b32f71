"""Every HTTP error is a problem document, in Persian and English."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.errors import Conflict, NotFound, TooManyAttempts
from shared.http import PROBLEM_JSON, ProblemError, install_problem_handlers
from shared.messages import MESSAGES, preferred_language, register_messages


class Order(BaseModel):
    count: int


def make_client() -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/orders")
    async def create(order: Order) -> dict[str, int]:
        if order.count > 10:
            raise ProblemError(409, "http_error", "too many")
        return {"count": order.count}

    @app.get("/orders/{number}")
    async def read(number: int) -> None:
        if number == 1:
            raise NotFound("not_found", "no order 1")
        if number == 2:
            raise Conflict("http_error", "order 2 is being changed")
        raise TooManyAttempts(
            "http_error",
            "slow down",
            errors=[{"retry_after_seconds": 30}],
            headers={"retry-after": "30"},
        )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    return TestClient(app, raise_server_exceptions=False)


def test_unknown_path_is_a_problem_in_the_preferred_language() -> None:
    response = make_client().get("/nowhere", headers={"accept-language": "en-US,en;q=0.9"})
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "not_found"
    assert body["title"] == MESSAGES["not_found"]["en"]
    assert body["messages"] == MESSAGES["not_found"]


def test_persian_is_the_default_language() -> None:
    body = make_client().get("/nowhere").json()
    assert body["title"] == MESSAGES["not_found"]["fa"]


def test_invalid_body_is_a_422_naming_the_field() -> None:
    response = make_client().post("/orders", json={"count": "many"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert body["errors"][0]["location"] == ["body", "count"]


def test_malformed_json_is_a_4xx_not_a_500() -> None:
    response = make_client().post(
        "/orders", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_a_raised_problem_keeps_its_status_and_detail() -> None:
    response = make_client().post("/orders", json={"count": 11})
    assert response.status_code == 409
    assert response.json()["detail"] == "too many"


@pytest.mark.allows_error_logs
def test_an_unexpected_error_is_a_500_problem_without_internals() -> None:
    response = make_client().get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert "bug" not in response.text


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "fa"),
        ("en", "en"),
        ("fa-IR,en;q=0.5", "fa"),
        ("de,en;q=0.3,fa;q=0.2", "en"),
        ("en;q=bad", "fa"),
    ],
)
def test_preferred_language(header: str | None, language: str) -> None:
    assert preferred_language(header) == language


def test_every_message_exists_in_persian_and_english() -> None:
    for code, texts in MESSAGES.items():
        assert set(texts) == {"fa", "en"}, code
        assert all(text.strip() for text in texts.values()), code


def test_a_service_registers_its_own_messages_but_cannot_redefine_one() -> None:
    register_messages({"test_only_code": {"fa": "آزمون", "en": "test"}})
    assert MESSAGES["test_only_code"]["en"] == "test"
    register_messages({"test_only_code": {"fa": "آزمون", "en": "test"}})  # same: harmless
    with pytest.raises(ValueError, match="already defined"):
        register_messages({"not_found": {"fa": "دیگر", "en": "other"}})
    with pytest.raises(ValueError, match="Persian and English"):
        register_messages({"half": {"en": "only English"}})


def test_each_kind_of_domain_error_answers_with_its_status_code_and_reason() -> None:
    client = make_client()
    missing = client.get("/orders/1", headers={"accept-language": "en"})
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert missing.json()["detail"] == "no order 1"
    assert missing.headers["content-type"] == PROBLEM_JSON
    assert client.get("/orders/2").status_code == 409
    throttled = client.get("/orders/3")
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "30"
    assert throttled.json()["errors"] == [{"retry_after_seconds": 30}]


def test_a_refinement_of_a_kind_of_domain_error_keeps_its_status() -> None:
    class LockedOut(TooManyAttempts):
        pass

    assert (LockedOut.status, TooManyAttempts.status, NotFound.status) == (429, 429, 404)

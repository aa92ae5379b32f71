"""Only the token endpoint answers other origins, and only those configured."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.identity.cors import TokenEndpointCors

FORM = "http://127.0.0.1:8004"


async def answer(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path})


def client() -> httpx.AsyncClient:
    app = Starlette(
        routes=[
            Route("/oauth/token", answer, methods=["POST"]),
            Route("/operator/agencies/x/clients", answer, methods=["POST"]),
        ]
    )
    wrapped = TokenEndpointCors(app, origins=[FORM])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://id")


def preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }


async def test_the_report_forms_origin_may_ask_for_a_token() -> None:
    async with client() as http:
        allowed = await http.options("/oauth/token", headers=preflight(FORM))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == FORM
        assert "access-control-allow-credentials" not in allowed.headers
        posted = await http.post("/oauth/token", headers={"origin": FORM})
        assert posted.headers["access-control-allow-origin"] == FORM


async def test_other_origins_and_other_paths_get_no_cross_origin_answer() -> None:
    async with client() as http:
        stranger = await http.options("/oauth/token", headers=preflight("https://evil.example"))
        assert stranger.status_code == 400
        assert "access-control-allow-origin" not in stranger.headers
        other_path = await http.post("/operator/agencies/x/clients", headers={"origin": FORM})
        assert "access-control-allow-origin" not in other_path.headers
        preflight_elsewhere = await http.options(
            "/operator/agencies/x/clients", headers=preflight(FORM)
        )
        assert "access-control-allow-origin" not in preflight_elsewhere.headers

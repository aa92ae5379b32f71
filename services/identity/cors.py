"""Cross-origin access to the token endpoint alone.

The provincial directorates' weekly report form is a page of the metrics service: the
browser asks identity for the directorate's token itself, so the secret never passes
through another service. Only `/oauth/token` answers other origins, and only those in
`PANJEREH_IDENTITY_TOKEN_ENDPOINT_ORIGINS`; no cookies are involved (client credentials
travel in the request), so credentials mode stays off.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_PATH = "/oauth/token"


class TokenEndpointCors:
    """CORS (preflight and response headers) for `/oauth/token`; every other path as is."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=["authorization", "content-type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == TOKEN_PATH:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)

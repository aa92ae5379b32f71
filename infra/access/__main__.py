"""`python -m infra.access`: the access manager as a process, with `/health`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import Field, SecretStr, model_validator

from infra.access.manager import AccessManager
from infra.dead_letters import operator_routes
from infra.platform.secrets import SecretStore
from services.identity.settings import DEVELOPMENT_OPERATOR_TOKEN
from shared.http import install_problem_handlers
from shared.input_guard import InputGuard
from shared.logging import configure_logging
from shared.operational_metrics import PROCESS_READY, HttpMetrics, metrics_router
from shared.principals import ADMIN
from shared.runtime import serve
from shared.settings import PlatformSettings


class AccessManagerSettings(PlatformSettings):
    uses_database: ClassVar[bool] = False  # its state is the broker's and its volume's

    http_port: int = Field(default=8005, validation_alias="PANJEREH_ACCESS_MANAGER_PORT")
    home: Path = Field(
        default=Path(".data/dev"),
        validation_alias="PANJEREH_HOME",
        description="Where agencies' secrets and credentials files are kept.",
    )
    operator_token: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_OPERATOR_TOKEN),
        validation_alias="PANJEREH_IDENTITY_OPERATOR_TOKEN",
        description="The platform operators' bearer secret (identity's operator endpoints "
        "take the same): its dead-letter routes need it.",
    )

    @model_validator(mode="after")
    def _real_operator_secret_in_production(self) -> AccessManagerSettings:
        value = self.operator_token.get_secret_value()
        if self.environment == "production" and (
            value == DEVELOPMENT_OPERATOR_TOKEN or len(value) < 32
        ):
            raise ValueError(
                "PANJEREH_IDENTITY_OPERATOR_TOKEN needs a real secret (32+ characters) in "
                "production"
            )
        return self


def build(settings: AccessManagerSettings) -> FastAPI:
    admin = settings.kafka
    if admin.username != ADMIN:
        raise SystemExit(f"the access manager works as {ADMIN}, not {admin.username}")
    manager = AccessManager(
        admin,
        SecretStore(settings.home / "secrets" / "kafka.json"),
        development=settings.environment != "production",
        credentials_dir=settings.home / "credentials",
        durability=settings.durability,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("access-manager", settings)
        task = asyncio.create_task(manager.run(), name="access-manager")
        app.state.task = task
        try:
            yield
        finally:
            await manager.stop()
            await asyncio.wait({task}, timeout=10)

    app = FastAPI(title="Panjereh access manager", lifespan=lifespan)
    app.add_middleware(InputGuard)
    app.add_middleware(HttpMetrics)
    install_problem_handlers(app)
    app.include_router(
        operator_routes(admin, settings.operator_token.get_secret_value(), settings.dedup_horizon)
    )

    def healthy() -> bool:
        return not app.state.task.done() and manager.ready.is_set()

    async def read_readiness() -> None:
        PROCESS_READY.set(1 if healthy() else 0)

    app.include_router(
        metrics_router(
            settings.metrics_token.get_secret_value(),
            open_without_token=settings.environment != "production",
            probes=lambda request: [("readiness", read_readiness)],
        )
    )

    @app.get("/health")
    async def health() -> JSONResponse:
        running = not app.state.task.done()
        body = {
            "service": "access-manager",
            "status": "ok" if healthy() else "failing",
            "checks": {"reconciled": manager.ready.is_set(), "running": running},
            "agencies": sum(manager.agencies.values()),
            "agencies_known": len(manager.agencies),
            # Every agency read from the catalog so far has its channels, user and ACLs.
            "provisioned": manager.provisioned,
        }
        return JSONResponse(body, status_code=200 if healthy() else 503)

    return app


def main() -> None:
    settings = AccessManagerSettings()
    serve(build(settings), settings)


if __name__ == "__main__":
    main()

"""Builds the FastAPI application: services, static files, error handling, the routers."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from enclave.pipeline.retention import purge
from enclave.pipeline.wiring import Enclave
from enclave.server.dependencies import Services
from enclave.server.edge import Edge
from enclave.server.errors import install_error_handling
from enclave.server.routers import (
    admin,
    ask,
    compliance,
    conversations,
    documents,
    openai,
    pages,
    search,
    tokens,
)

log = logging.getLogger("enclave.web")
DAY_S = 24 * 3600


def create_app(enclave: Enclave) -> FastAPI:
    """The FastAPI application serving one Enclave."""
    services = Services.build(enclave)
    # No /docs or /redoc: Swagger UI and ReDoc load from a CDN, and nothing may load from
    # outside. The schema itself stays at /openapi.json for local tools.
    app = FastAPI(
        title="Enclave", version="0.1.0", docs_url=None, redoc_url=None, lifespan=_lifespan
    )
    app.state.services = services
    static = resources.files("enclave.server") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    install_error_handling(app)
    app.add_middleware(Edge, upload_limit=services.upload_limit)
    for module in (
        ask,
        search,
        documents,
        conversations,
        tokens,
        admin,
        compliance,
        openai,
        pages,
    ):
        app.include_router(module.router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.services.enclave.settings
    retention = settings.retain_conversations_days or settings.retain_audit_days
    task = asyncio.create_task(_purge_daily(app.state.services)) if retention else None
    yield
    if task:
        task.cancel()


async def _purge_daily(services: Services) -> None:
    """Apply the retention settings at start and then once a day."""
    while True:
        try:
            await asyncio.to_thread(
                purge, services.enclave.store, services.enclave.settings, None, "server"
            )
        except Exception:  # a failed purge must not stop the next one
            log.exception("retention purge failed")
        await asyncio.sleep(DAY_S)

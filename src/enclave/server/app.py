"""Builds the FastAPI application: services, static files, error handling, the routers."""

from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from enclave.pipeline.wiring import Enclave
from enclave.server.dependencies import Services
from enclave.server.errors import install_error_handling
from enclave.server.routers import (
    admin,
    ask,
    conversations,
    documents,
    openai,
    pages,
    search,
    tokens,
)


def create_app(enclave: Enclave) -> FastAPI:
    """The FastAPI application serving one Enclave."""
    app = FastAPI(title="Enclave", version="0.1.0", docs_url="/docs")
    app.state.services = services = Services.build(enclave)
    static = resources.files("enclave.server") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    install_error_handling(app, services.upload_limit)
    for module in (ask, search, documents, conversations, tokens, admin, openai, pages):
        app.include_router(module.router)
    return app

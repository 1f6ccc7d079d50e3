"""Errors as JSON with a message (never a stack trace)."""

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from enclave.pipeline.access import AccessError
from enclave.pipeline.llm import InputTooLong, LLMError

log = logging.getLogger("enclave.web")


def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    """The one error shape of both APIs: {"error": {"message", "type"}}."""
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def wants_json(request: Request) -> bool:
    """API paths and JSON clients get JSON errors; a browser is sent to the sign-in page."""
    path = request.url.path
    return path.startswith(("/api/", "/v1/")) or "json" in request.headers.get("accept", "")


def install_error_handling(app: FastAPI) -> None:
    """Exception handlers: every error a JSON message with a 4xx/5xx status."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 401 and not wants_json(request):
            return RedirectResponse("/login", status_code=303)
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"invalid request: {where}: {first.get('msg', 'malformed')}")

    @app.exception_handler(AccessError)
    async def access_error(request: Request, exc: AccessError) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(LLMError)
    async def model_unavailable(request: Request, exc: LLMError) -> JSONResponse:
        response = error(503, str(exc), "server_error")
        response.headers["Retry-After"] = "10"
        return response

    @app.exception_handler(PoolTimeout)
    async def database_busy(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("no database connection free for %s: %s", request.url.path, exc)
        response = error(503, "the database is busy; try again shortly", "server_error")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(InputTooLong)
    async def input_too_long(request: Request, exc: InputTooLong) -> JSONResponse:
        return error(413, str(exc))

    @app.exception_handler(psycopg.DataError)
    @app.exception_handler(UnicodeError)
    async def unstorable_input(request: Request, exc: Exception) -> JSONResponse:
        # The edge refuses NUL and lone surrogates in bodies; this catches other spots.
        log.info("refused unstorable input on %s: %s", request.url.path, exc)
        return error(400, "the request holds characters that cannot be stored (NUL, surrogates)")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, "internal server error", "server_error")

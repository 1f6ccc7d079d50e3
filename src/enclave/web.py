"""HTTP server: the native JSON API, the OpenAI-compatible API and the web UI, on one app.

Thin by design: every route authenticates the caller, then calls the same pipeline the CLI
uses with the caller's identity, so permissions are the same everywhere.

No `from __future__ import annotations` here: FastAPI must evaluate the route annotations,
which name dependency aliases local to create_app.
"""

import json
import logging
import re
import secrets
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from enclave.access import AccessError, Principal, check_name
from enclave.accounts import Accounts
from enclave.app import Enclave
from enclave.config import ConfigError
from enclave.conversations import Conversations
from enclave.i18n import LANGUAGES, translator
from enclave.llm import LLMError
from enclave.loaders import LOADERS
from enclave.serialize import answer_json, document_json, hit_json

log = logging.getLogger("enclave.web")

SESSION_COOKIE = "enclave_session"
JSON_BODY_LIMIT = 1 * 2**20
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request and how they proved it."""

    user: str
    is_admin: bool
    csrf_token: str | None  # set for browser sessions; None for bearer tokens


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    search: str | None = Field(default=None, max_length=4000)
    k: int = Field(default=5, ge=1, le=50)
    use_search: bool = True
    stream: bool = True
    conversation_id: int | None = None


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=5, ge=1, le=100)


class AclRequest(BaseModel):
    allow: list[str]


class UserRequest(BaseModel):
    name: str
    groups: list[str] = []
    password: str | None = None
    admin: bool = False


class TokenRequest(BaseModel):
    name: str = Field(default="token", max_length=100)


class LoginThrottle:
    """Refuses sign-ins for a user name after repeated failures (password guessing)."""

    def __init__(self, failures: int = 5, window_s: float = 300.0):
        self.limit, self.window = failures, window_s
        self.recent: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def _prune(self, name: str) -> deque[float]:
        times = self.recent.setdefault(name, deque())
        while times and times[0] < time.monotonic() - self.window:
            times.popleft()
        return times

    def blocked(self, name: str) -> bool:
        with self.lock:
            return len(self._prune(name)) >= self.limit

    def failed(self, name: str) -> None:
        with self.lock:
            self._prune(name).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        with self.lock:
            self.recent.pop(name, None)


def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(enclave: Enclave) -> FastAPI:
    """The FastAPI application serving one Enclave."""
    app = FastAPI(title="Enclave", version="0.1.0", docs_url="/docs")
    accounts = Accounts(enclave.store)
    throttle = LoginThrottle()
    conversations = Conversations(enclave.store)
    uploads = enclave.settings.data_dir / "uploads"
    upload_limit = enclave.settings.max_file_mb * 2**20
    package = resources.files("enclave")
    templates = Jinja2Templates(directory=str(package / "templates"))
    app.mount("/static", StaticFiles(directory=str(package / "static")), name="static")

    # -- errors: JSON with a message, never a stack trace ------------------------------------

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 401 and not _wants_json(request):
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

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, "internal server error", "server_error")

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        declared = request.headers.get("content-length")
        limit = upload_limit + 2**20 if request.url.path == "/api/documents" else JSON_BODY_LIMIT
        if declared and declared.isdigit() and int(declared) > limit:
            return error(413, f"request body over the {limit // 2**20} MiB limit")
        return await call_next(request)

    # -- identity -----------------------------------------------------------------------------

    def authenticate(request: Request) -> Caller | None:
        header = request.headers.get("authorization", "")
        if header:
            user = accounts.user_for_authorization(header)
            return Caller(user, accounts.is_admin(user), None) if user else None
        cookie = request.cookies.get(SESSION_COOKIE)
        session = accounts.session(cookie) if cookie else None
        if session is None:
            return None
        return Caller(session.user, accounts.is_admin(session.user), session.csrf_token)

    async def caller(request: Request) -> Caller:
        found = authenticate(request)
        if found is None:
            raise HTTPException(401, "sign in, or send an API token as 'Authorization: Bearer'")
        if found.csrf_token is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token")
            if sent is None and "form" in request.headers.get("content-type", ""):
                sent = str((await request.form()).get("csrf_token", ""))
            if not sent or not secrets.compare_digest(sent, found.csrf_token):
                raise HTTPException(403, "missing or wrong CSRF token")
        return found

    def admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if not who.is_admin:
            raise HTTPException(403, "admins only")
        return who

    User = Annotated[Caller, Depends(caller)]
    Admin = Annotated[Caller, Depends(admin)]

    def may_manage(who: Caller, document_id: int) -> None:
        if not (who.is_admin or enclave.store.document_owner(document_id) == who.user):
            raise HTTPException(403, "only an admin or the document's owner may do that")

    def visible_or_404(who: Caller, document_id: int) -> tuple[str, str]:
        found = enclave.store.readable_document(enclave.store.viewer(who.user), document_id)
        if found is None:  # 404, not 403: do not confirm that the document exists
            raise HTTPException(404, "no such document")
        return found

    # -- native API ---------------------------------------------------------------------------

    api = APIRouter(prefix="/api")

    @api.get("/me")
    def me(who: User) -> dict[str, Any]:
        return {"user": who.user, "admin": who.is_admin}

    @api.post("/search")
    def search(body: SearchRequest, who: User) -> dict[str, Any]:
        hits = enclave.retriever.search(enclave.store.viewer(who.user), body.query, body.k)
        return {
            "query": body.query,
            "user": who.user,
            "k": body.k,
            "hits": [hit_json(h, n) for n, h in enumerate(hits, 1)],
        }

    @api.post("/ask")
    def ask(body: AskRequest, who: User) -> Any:
        conversation_id = body.conversation_id
        if conversation_id is not None and not conversations.owns(who.user, conversation_id):
            raise HTTPException(404, "no such conversation")
        if conversation_id is None:
            conversation_id = conversations.start(who.user, body.question)
        conversations.add(conversation_id, "user", body.question)
        viewer = enclave.store.viewer(who.user)
        options = {"search": body.search, "k": body.k, "use_search": body.use_search}

        def finish(answer: Any) -> dict[str, Any]:
            result = answer_json(answer, who.user, body.k) | {"conversation_id": conversation_id}
            conversations.add(conversation_id, "assistant", answer.text, result["citations"])
            return result

        if not body.stream:
            return finish(enclave.assistant.ask(viewer, body.question, **options))
        stream = enclave.assistant.stream(viewer, body.question, **options)

        def events() -> Iterator[str]:
            yield sse("conversation", {"conversation_id": conversation_id})
            try:
                while True:
                    yield sse("token", {"text": next(stream)})
            except StopIteration as done:
                yield sse("answer", finish(done.value))
            except (LLMError, ConfigError) as exc:
                yield sse("error", {"message": str(exc)})
            yield sse("done", {})

        return StreamingResponse(events(), media_type="text/event-stream")

    @api.get("/documents")
    def documents(who: User) -> dict[str, Any]:
        docs = enclave.store.visible_documents(enclave.store.viewer(who.user))
        return {"user": who.user, "documents": [document_json(d) for d in docs]}

    @api.get("/documents/{document_id}")
    def document(document_id: int, who: User) -> dict[str, Any]:
        title, body = visible_or_404(who, document_id)
        return {"document_id": document_id, "title": title, "text": body}

    @api.post("/documents", status_code=201)
    def upload(
        who: User,
        file: Annotated[UploadFile, File()],
        allow: Annotated[list[str] | None, Form()] = None,
    ) -> dict[str, Any]:
        name = Path(file.filename or "").name
        if Path(name).suffix.lower() not in LOADERS:
            raise HTTPException(
                415, f"unsupported file type; accepted: {', '.join(sorted(LOADERS))}"
            )
        safe = re.sub(r"[^\w.\- ]", "_", name).strip() or "upload"
        folder = uploads / secrets.token_hex(8)
        folder.mkdir(parents=True)
        target = folder / safe
        size = 0
        with target.open("wb") as out:
            while block := file.file.read(2**20):
                size += len(block)
                if size > upload_limit:
                    shutil.rmtree(folder)
                    raise HTTPException(413, f"file over the {upload_limit // 2**20} MiB limit")
                out.write(block)
        # The uploader can always read what they uploaded.
        acl = sorted({Principal("user", who.user), *(Principal.parse(a) for a in allow or [])})
        report = enclave.ingestor.ingest([target], acl)
        (result,) = report.files
        if result.status == "failed":
            shutil.rmtree(folder)
            raise HTTPException(422, f"{safe}: {result.error}")
        assert result.document_id is not None
        enclave.store.set_owner(result.document_id, who.user)
        return {
            "document_id": result.document_id,
            "file_name": safe,
            "chunks": result.chunks,
            "allow": [str(p) for p in acl],
        }

    @api.delete("/documents/{document_id}")
    def delete(document_id: int, who: User) -> dict[str, Any]:
        if not who.is_admin:
            visible_or_404(who, document_id)
        may_manage(who, document_id)
        source = enclave.store.document_source(document_id)
        enclave.store.delete_document(document_id)
        if source and Path(source).is_relative_to(uploads.resolve()):
            shutil.rmtree(Path(source).parent, ignore_errors=True)
        return {"deleted": document_id}

    @api.post("/documents/{document_id}/reindex")
    def reindex(document_id: int, who: User) -> dict[str, Any]:
        may_manage(who, document_id)
        source = enclave.store.document_source(document_id)
        if source is None or not Path(source).exists():
            raise HTTPException(404, "the document's file is gone")
        enclave.store.forget_hash(document_id)
        (result,) = enclave.ingestor.ingest([Path(source)], None).files
        return {"document_id": document_id, "status": result.status, "chunks": result.chunks}

    @api.get("/documents/{document_id}/acl")
    def get_acl(document_id: int, who: User) -> dict[str, Any]:
        may_manage(who, document_id)
        return {
            "document_id": document_id,
            "allow": [str(p) for p in enclave.store.acl(document_id)],
        }

    @api.put("/documents/{document_id}/acl")
    def put_acl(document_id: int, body: AclRequest, who: User) -> dict[str, Any]:
        may_manage(who, document_id)
        enclave.store.set_acl(document_id, [Principal.parse(a) for a in body.allow])
        return {
            "document_id": document_id,
            "allow": [str(p) for p in enclave.store.acl(document_id)],
        }

    @api.get("/conversations")
    def list_conversations(who: User) -> dict[str, Any]:
        return {"conversations": conversations.list(who.user)}

    @api.get("/conversations/{conversation_id}")
    def get_conversation(conversation_id: int, who: User) -> dict[str, Any]:
        messages = conversations.messages(who.user, conversation_id)
        if messages is None:
            raise HTTPException(404, "no such conversation")
        return {"conversation_id": conversation_id, "messages": messages}

    @api.get("/tokens")
    def list_tokens(who: User) -> dict[str, Any]:
        return {"tokens": [t.__dict__ for t in accounts.tokens(who.user)]}

    @api.post("/tokens", status_code=201)
    def new_token(body: TokenRequest, who: User) -> dict[str, Any]:
        token_id, secret = accounts.create_token(who.user, body.name)
        return {
            "id": token_id,
            "name": body.name,
            "token": secret,
            "note": "shown once: store it now",
        }

    @api.delete("/tokens/{token_id}")
    def revoke(token_id: int, who: User) -> dict[str, Any]:
        if not accounts.revoke_token(who.user, token_id):
            raise HTTPException(404, "no such live token")
        return {"revoked": token_id}

    @api.get("/admin/documents")
    def all_documents(_: Admin) -> dict[str, Any]:
        return {"documents": enclave.store.all_documents()}

    @api.get("/admin/tokens")
    def all_tokens(_: Admin) -> dict[str, Any]:
        return {"tokens": [{"user": u, **t.__dict__} for u, t in accounts.all_tokens()]}

    @api.delete("/admin/tokens/{token_id}")
    def revoke_any(token_id: int, _: Admin) -> dict[str, Any]:
        if not accounts.revoke_any_token(token_id):
            raise HTTPException(404, "no such live token")
        return {"revoked": token_id}

    @api.get("/users")
    def users(_: Admin) -> dict[str, Any]:
        admins = set(accounts.admins())
        return {
            "users": [
                {"user": u["name"], "groups": u["groups"], "admin": u["name"] in admins}
                for u in enclave.store.users()
            ],
            "groups": enclave.store.groups(),
        }

    @api.post("/users", status_code=201)
    def add_user(body: UserRequest, _: Admin) -> dict[str, Any]:
        enclave.store.add_user(check_name(body.name), [check_name(g) for g in body.groups])
        if body.password:
            accounts.set_password(body.name, body.password)
        accounts.set_admin(body.name, body.admin)
        return {"user": body.name, "groups": body.groups, "admin": body.admin}

    @api.delete("/users/{name}/groups/{group}")
    def leave_group(name: str, group: str, _: Admin) -> dict[str, Any]:
        if not enclave.store.remove_from_group(name, group):
            raise HTTPException(404, f"{name} is not in {group}")
        return {"user": name, "removed_from": group}

    app.include_router(api)

    from enclave.openai_api import openai_router

    app.include_router(openai_router(enclave, accounts))

    # -- web UI -------------------------------------------------------------------------------

    def page(request: Request, name: str, who: Caller | None, **context: Any) -> HTMLResponse:
        lang = request.cookies.get("lang") or _accepted_language(request)
        return templates.TemplateResponse(
            request,
            name,
            {"who": who, "t": translator(lang), "lang": lang, "languages": LANGUAGES, **context},
        )

    def signed_in(request: Request) -> Caller:
        who = authenticate(request)
        if who is None or who.csrf_token is None:
            raise HTTPException(401, "sign in")
        return who

    Browser = Annotated[Caller, Depends(signed_in)]

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        return RedirectResponse("/chat" if authenticate(request) else "/login", status_code=303)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request) -> HTMLResponse:
        return page(request, "login.html", None)

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> Any:
        if throttle.blocked(username):
            return error(429, "too many failed sign-ins; try again in a few minutes")
        if not accounts.verify_password(username, password):
            throttle.failed(username)
            response = page(request, "login.html", None, failed=True)
            response.status_code = 401
            return response
        throttle.succeeded(username)
        secret, _ = accounts.create_session(username)
        response = RedirectResponse("/chat", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            secret,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=12 * 3600,
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request, who: User) -> RedirectResponse:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            accounts.end_session(cookie)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/lang/{code}", include_in_schema=False)
    def switch_language(code: str, request: Request) -> RedirectResponse:
        back = request.headers.get("referer", "/")
        response = RedirectResponse(
            back if back.startswith(str(request.base_url)) else "/", status_code=303
        )
        if code in LANGUAGES:
            response.set_cookie("lang", code, samesite="strict", max_age=365 * 24 * 3600)
        return response

    @app.get("/chat", include_in_schema=False)
    def chat_page(request: Request, who: Browser) -> HTMLResponse:
        return page(request, "chat.html", who, conversations=conversations.list(who.user))

    @app.get("/library", include_in_schema=False)
    def library_page(request: Request, who: Browser) -> HTMLResponse:
        docs = enclave.store.visible_documents(enclave.store.viewer(who.user))
        owned = {
            d.document_id for d in docs if enclave.store.document_owner(d.document_id) == who.user
        }
        return page(request, "library.html", who, documents=docs, owned=owned)

    @app.get("/documents/{document_id}", include_in_schema=False)
    def document_page(document_id: int, request: Request, who: Browser) -> HTMLResponse:
        title, body = visible_or_404(who, document_id)
        return page(request, "document.html", who, title=title, body=body, document_id=document_id)

    @app.get("/admin", include_in_schema=False)
    def admin_page(request: Request, who: Browser) -> HTMLResponse:
        if not who.is_admin:
            raise HTTPException(403, "admins only")
        admins = set(accounts.admins())
        return page(
            request,
            "admin.html",
            who,
            users=enclave.store.users(),
            admins=admins,
            groups=enclave.store.groups(),
            documents=enclave.store.all_documents(),
            tokens=accounts.all_tokens(),
        )

    @app.get("/settings", include_in_schema=False)
    def settings_page(request: Request, who: Browser) -> HTMLResponse:
        return page(request, "settings.html", who, tokens=accounts.tokens(who.user))

    return app


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/v1/")) or "json" in request.headers.get("accept", "")


def _accepted_language(request: Request) -> str:
    header = request.headers.get("accept-language", "")
    return "de" if header.lower().startswith("de") else "en"

"""What routes depend on (FastAPI `Depends`): the services, the caller, admin and CSRF checks.

No `from __future__ import annotations`: FastAPI evaluates these annotations at import.
"""

import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from enclave.config import OPERATOR_HEADER
from enclave.pipeline.audit import Event, Interface
from enclave.pipeline.store import Viewer
from enclave.pipeline.wiring import Enclave
from enclave.server.accounts import Accounts
from enclave.server.conversations import Conversations
from enclave.server.throttle import LoginThrottle

SESSION_COOKIE = "enclave_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Services:
    """What the routes work with; one per application, on app.state.services."""

    enclave: Enclave
    accounts: Accounts
    conversations: Conversations
    throttle: LoginThrottle
    templates: Jinja2Templates
    uploads: Path
    upload_limit: int
    # The key of DATA_DIR/server.json: the local CLI's requests on behalf of a user.
    operator_key: str

    @classmethod
    def build(cls, enclave: Enclave) -> "Services":
        package = resources.files("enclave.server")
        return cls(
            enclave=enclave,
            accounts=Accounts(enclave.store),
            conversations=Conversations(enclave.store),
            throttle=LoginThrottle(enclave.store),
            templates=Jinja2Templates(directory=str(package / "templates")),
            uploads=enclave.settings.data_dir / "uploads",
            upload_limit=enclave.settings.max_file_mb * 2**20,
            operator_key=secrets.token_urlsafe(32),
        )

    def record(self, event: Event) -> None:
        """Append to the audit trail."""
        self.enclave.store.record(event)


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request and how they proved it."""

    user: str
    is_admin: bool
    csrf_token: str | None  # set for browser sessions; None for bearer tokens
    via: Interface | None = None  # "cli": the local CLI through the operator key

    @property
    def interface(self) -> Interface:
        if self.via is not None:
            return self.via
        return "web" if self.csrf_token is not None else "api"


def authenticate(request: Request, svc: Services) -> Caller | None:
    """The caller by bearer token or session cookie; None if neither is valid."""
    accounts = svc.accounts
    header = request.headers.get("authorization", "")
    if OPERATOR_HEADER in request.headers:
        return _operator(request, svc, header)
    if header:
        user = accounts.user_for_authorization(header)
        return Caller(user, accounts.is_admin(user), None) if user else None
    cookie = request.cookies.get(SESSION_COOKIE)
    session = accounts.session(cookie) if cookie else None
    if session is None:
        return None
    return Caller(session.user, accounts.is_admin(session.user), session.csrf_token)


def _operator(request: Request, svc: Services, header: str) -> Caller | None:
    """The local CLI acting for a user: the operator key, from loopback only."""
    scheme, _, secret = header.partition(" ")
    loopback = request.client is not None and request.client.host in ("127.0.0.1", "::1")
    if not (loopback and scheme.lower() == "bearer"):
        return None
    if not secrets.compare_digest(secret.strip().encode(), svc.operator_key.encode()):
        return None
    return Caller(request.headers[OPERATOR_HEADER], False, None, via="cli")


async def current_user(request: Request, svc: Svc) -> Caller:
    """The signed-in caller; browser sessions must echo their CSRF token on writes."""
    found = authenticate(request, svc)
    if found is None:
        raise HTTPException(401, "sign in, or send an API token as 'Authorization: Bearer'")
    if found.csrf_token is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token")
        if sent is None and "form" in request.headers.get("content-type", ""):
            sent = str((await request.form()).get("csrf_token", ""))
        if not sent or not secrets.compare_digest(sent, found.csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token")
    return found


User = Annotated[Caller, Depends(current_user)]


def current_admin(who: User) -> Caller:
    if not who.is_admin:
        raise HTTPException(403, "admins only")
    return who


Admin = Annotated[Caller, Depends(current_admin)]


def browser_user(request: Request, svc: Svc) -> Caller:
    """A caller signed in through the web UI (pages are for browsers, not API tokens)."""
    who = authenticate(request, svc)
    if who is None or who.csrf_token is None:
        raise HTTPException(401, "sign in")
    return who


Browser = Annotated[Caller, Depends(browser_user)]


def token_user(request: Request, svc: Svc) -> str:
    """The user of a personal API token (the OpenAI-compatible API takes no cookies)."""
    user = svc.accounts.user_for_authorization(request.headers.get("authorization", ""))
    if user is None:
        raise HTTPException(401, "invalid or missing API token (Authorization: Bearer)")
    return user


TokenUser = Annotated[str, Depends(token_user)]


def viewer_of(svc: Services, who: Caller) -> Viewer:
    return svc.enclave.store.viewer(who.user)


def readable_or_404(svc: Services, who: Caller, document_id: int) -> tuple[str, str]:
    """(title, text) of a document the caller may read; 404 otherwise."""
    found = svc.enclave.store.readable_document(viewer_of(svc, who), document_id)
    if found is None:  # 404, not 403: do not confirm that the document exists
        raise HTTPException(404, "no such document")
    return found


def may_manage(svc: Services, who: Caller, document_id: int) -> None:
    """Only an admin or the document's owner may delete, re-index or share it."""
    if not (who.is_admin or svc.enclave.store.document_owner(document_id) == who.user):
        raise HTTPException(403, "only an admin or the document's owner may do that")

"""The web UI's HTML pages, sign-in and sign-out, and the language switch."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from enclave.pipeline.audit import Event
from enclave.server.dependencies import (
    SESSION_COOKIE,
    Browser,
    Caller,
    Services,
    Svc,
    User,
    authenticate,
    readable_or_404,
    viewer_of,
)
from enclave.server.errors import error
from enclave.server.i18n import LANGUAGES, translator
from enclave.server.routers.compliance import since_param
from enclave.server.validation import Name, Text

router = APIRouter(include_in_schema=False)


def page(request: Request, svc: Services, name: str, who: Caller | None, **context: Any) -> Any:
    """A template rendered in the caller's language (cookie, then Accept-Language)."""
    lang = request.cookies.get("lang") or _accepted_language(request)
    return svc.templates.TemplateResponse(
        request,
        name,
        {"who": who, "t": translator(lang), "lang": lang, "languages": LANGUAGES, **context},
    )


def _accepted_language(request: Request) -> str:
    header = request.headers.get("accept-language", "")
    return "de" if header.lower().startswith("de") else "en"


@router.get("/")
def home(request: Request, svc: Svc) -> RedirectResponse:
    target = "/chat" if authenticate(request, svc) else "/login"
    return RedirectResponse(target, status_code=303)


@router.get("/login")
def login_page(request: Request, svc: Svc) -> HTMLResponse:
    return page(request, svc, "login.html", None)


@router.post("/login")
def login(
    request: Request,
    svc: Svc,
    username: Annotated[Name, Form()],
    password: Annotated[Text, Form(max_length=1000)],
) -> Any:
    address = request.client.host if request.client else "unknown"
    if svc.throttle.blocked(username, address):
        svc.record(
            Event(None, "web", "sign_in_refused", subject=username, detail={"address": address})
        )
        return error(429, "too many failed sign-ins; try again in a few minutes")
    if not svc.accounts.verify_password(username, password):
        svc.throttle.failed(username, address)
        svc.record(
            Event(None, "web", "sign_in_failed", subject=username, detail={"address": address})
        )
        response = page(request, svc, "login.html", None, failed=True)
        response.status_code = 401
        return response
    svc.throttle.succeeded(username, address)
    svc.record(Event(username, "web", "sign_in", detail={"address": address}))
    secret, _ = svc.accounts.create_session(username)
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


@router.post("/logout")
async def logout(request: Request, who: User, svc: Svc) -> RedirectResponse:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        svc.accounts.end_session(cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
def switch_language(code: str, request: Request) -> RedirectResponse:
    back = request.headers.get("referer", "/")
    response = RedirectResponse(
        back if back.startswith(str(request.base_url)) else "/", status_code=303
    )
    if code in LANGUAGES:
        response.set_cookie("lang", code, samesite="strict", max_age=365 * 24 * 3600)
    return response


@router.get("/chat")
def chat_page(request: Request, who: Browser, svc: Svc) -> HTMLResponse:
    return page(request, svc, "chat.html", who, conversations=svc.conversations.list(who.user))


@router.get("/library")
def library_page(request: Request, who: Browser, svc: Svc) -> HTMLResponse:
    store = svc.enclave.store
    docs = store.visible_documents(viewer_of(svc, who))
    owned = {d.document_id for d in docs if store.document_owner(d.document_id) == who.user}
    return page(request, svc, "library.html", who, documents=docs, owned=owned)


@router.get("/documents/{document_id}")
def document_page(document_id: int, request: Request, who: Browser, svc: Svc) -> HTMLResponse:
    title, body = readable_or_404(svc, who, document_id)
    svc.record(Event(who.user, "web", "view", document_ids=(document_id,)))
    return page(request, svc, "document.html", who, title=title, body=body, document_id=document_id)


@router.get("/admin")
def admin_page(request: Request, who: Browser, svc: Svc) -> HTMLResponse:
    if not who.is_admin:
        raise HTTPException(403, "admins only")
    store = svc.enclave.store
    return page(
        request,
        svc,
        "admin.html",
        who,
        users=store.users(),
        admins=set(svc.accounts.admins()),
        groups=store.groups(),
        documents=store.all_documents(),
        tokens=svc.accounts.all_tokens(),
    )


@router.get("/admin/audit")
def audit_page(
    request: Request,
    who: Browser,
    svc: Svc,
    user: str | None = None,
    document: str | None = None,
    since: str | None = None,
    action: str | None = None,
) -> HTMLResponse:
    if not who.is_admin:
        raise HTTPException(403, "admins only")
    # Empty form fields arrive as empty strings: no filter.
    filters = {"user": user, "document": document, "since": since, "action": action}
    filters = {k: v.strip() for k, v in filters.items() if v and v.strip()}
    if "document" in filters and not filters["document"].isdigit():
        raise HTTPException(422, "document: give a document id")
    store = svc.enclave.store
    entries = store.audit_entries(
        filters.get("user"),
        int(filters["document"]) if "document" in filters else None,
        since_param(filters.get("since")),
        filters.get("action"),
        limit=500,
    )
    check = store.verify_audit()
    return page(request, svc, "audit.html", who, entries=entries, filters=filters, check=check)


@router.get("/settings")
def settings_page(request: Request, who: Browser, svc: Svc) -> HTMLResponse:
    return page(request, svc, "settings.html", who, tokens=svc.accounts.tokens(who.user))

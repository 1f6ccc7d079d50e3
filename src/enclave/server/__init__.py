"""The HTTP server: native JSON API, OpenAI-compatible API and web UI on one FastAPI app.

app.py builds the application; routers/ holds one APIRouter per resource; dependencies.py
authenticates callers (session cookie + CSRF, or bearer token); accounts.py and
conversations.py keep credentials and chat history; templates/ and static/ are the UI.

May import: enclave.config and enclave.pipeline. Never imports enclave.cli or
enclave.workshop. Routes stay thin: authenticate, call the pipeline as the caller, serialise.
"""

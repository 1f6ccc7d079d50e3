"""One APIRouter per resource; server/app.py includes them all."""

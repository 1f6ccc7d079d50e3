"""Which language a text is in (German or English), and so which stemmer fits it."""

from __future__ import annotations

from functools import cache
from typing import Any

# ISO code -> PostgreSQL text-search configuration. Both stemmers ship with PostgreSQL.
TEXT_SEARCH_CONFIGS = {"en": "english", "de": "german"}


@cache
def _identifier() -> Any:
    # Loading the model takes half a second: only when a text is first classified.
    import py3langid

    # Only languages we have stemmers for: a short German passage must not be called Dutch.
    py3langid.set_languages(list(TEXT_SEARCH_CONFIGS))
    return py3langid


def language_of(text: str) -> str:
    """ "de" or "en" (the default for empty text and anything else)."""
    if not text.strip():
        return "en"
    code, _ = _identifier().classify(text)
    return code if code in TEXT_SEARCH_CONFIGS else "en"


def text_search_config(text: str) -> str:
    """The stemmer for this text: German or English (the default for anything else)."""
    return TEXT_SEARCH_CONFIGS[language_of(text)]

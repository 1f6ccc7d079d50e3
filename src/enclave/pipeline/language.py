"""Which language a text is in (German or English), and so which stemmer fits it."""

from __future__ import annotations

import threading
from typing import Any

# ISO code -> PostgreSQL text-search configuration. Both stemmers ship with PostgreSQL.
TEXT_SEARCH_CONFIGS = {"en": "english", "de": "german"}
LANGUAGE_OF_CONFIG = {config: code for code, config in TEXT_SEARCH_CONFIGS.items()}


_loading = threading.Lock()
_loaded: list[Any] = []


def _identifier() -> Any:
    """py3langid restricted to our languages, loaded once on first use.

    Loading takes half a second, so it waits for the first text, under a lock: restricting
    the languages while another thread classifies breaks that thread's scoring.
    """
    if not _loaded:
        with _loading:
            if not _loaded:
                import py3langid

                # Only languages we have stemmers for: a short German passage is not Dutch.
                py3langid.set_languages(list(TEXT_SEARCH_CONFIGS))
                _loaded.append(py3langid)
    return _loaded[0]


def language_of(text: str) -> str:
    """ "de" or "en" (the default for empty text and anything else)."""
    if not text.strip():
        return "en"
    code, _ = _identifier().classify(text)
    return code if code in TEXT_SEARCH_CONFIGS else "en"


def text_search_config(text: str) -> str:
    """The stemmer for this text: German or English (the default for anything else)."""
    return TEXT_SEARCH_CONFIGS[language_of(text)]

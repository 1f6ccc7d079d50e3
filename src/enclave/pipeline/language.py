"""Which language a text is in (German or English), and so which stemmer fits it."""

from __future__ import annotations

import py3langid

# ISO code -> PostgreSQL text-search configuration. Both stemmers ship with PostgreSQL.
TEXT_SEARCH_CONFIGS = {"en": "english", "de": "german"}

# Only languages we have stemmers for: a short German passage must not be called Dutch.
py3langid.set_languages(list(TEXT_SEARCH_CONFIGS))


def language_of(text: str) -> str:
    """ "de" or "en" (the default for empty text and anything else)."""
    if not text.strip():
        return "en"
    code, _ = py3langid.classify(text)
    return code if code in TEXT_SEARCH_CONFIGS else "en"


def text_search_config(text: str) -> str:
    """The stemmer for this text: German or English (the default for anything else)."""
    return TEXT_SEARCH_CONFIGS[language_of(text)]

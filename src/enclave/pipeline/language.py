"""Which PostgreSQL text-search configuration (stemmer) fits a passage."""

from __future__ import annotations

import py3langid

# ISO code -> PostgreSQL text-search configuration. Both stemmers ship with PostgreSQL.
TEXT_SEARCH_CONFIGS = {"en": "english", "de": "german"}
DEFAULT_CONFIG = "english"

# Only languages we have stemmers for: a short German passage must not be called Dutch.
py3langid.set_languages(list(TEXT_SEARCH_CONFIGS))


def text_search_config(text: str) -> str:
    """The stemmer for this text: German or English (the default for anything else)."""
    if not text.strip():
        return DEFAULT_CONFIG
    code, _ = py3langid.classify(text)
    return TEXT_SEARCH_CONFIGS.get(code, DEFAULT_CONFIG)

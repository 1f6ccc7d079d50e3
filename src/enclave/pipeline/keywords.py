"""What the keyword index and keyword queries agree on: stemming, umlaut folding, spellings.

Stemming and stop words run on the original text in PostgreSQL (German or English snowball
configurations); the resulting lexemes are then folded (ä→a, ö→o, ü→u, ß→ss) by the SQL
function ``enclave_fold`` on both sides, so "Müller", "Muller" and a lexeme from an
English-detected passage meet in one posting. Queries typed without umlauts in the German
transliteration ("Gebuehren") get the umlaut spelling added before stemming.
"""

from __future__ import annotations

import re

# ae/oe/ue after a consonant or at the start of a word: "Gebuehren", "oeffnen", not "Quelle"
# (q+u+e) or "neue" (vowel before "ue"), where folding would invent a word.
_TRANSLITERATED = re.compile(r"(?<![aeiouqAEIOUQ])(ae|oe|ue|Ae|Oe|Ue)")
_UMLAUTS = {"ae": "ä", "oe": "ö", "ue": "ü", "Ae": "Ä", "Oe": "Ö", "Ue": "Ü"}


def umlaut_spellings(query: str) -> str:
    """The query plus, for words written with ae/oe/ue, their umlaut spelling."""
    extra = [
        _TRANSLITERATED.sub(lambda m: _UMLAUTS[m.group(1)], word)
        for word in re.findall(r"\w+", query)
        if _TRANSLITERATED.search(word)
    ]
    return " ".join([query, *extra])

